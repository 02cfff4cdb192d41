//! The ACPI readers over QEMU's real tables (`drivers/src/acpi/fixtures`)
//! with one table replaced by the input: the first byte picks the machine
//! and the table, the second whether its checksum is made right again (so
//! the readers get past it), the rest is the table.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use basalt_tests::parsers::{RSDP_AT, Tables, acpi_machine, fix_checksum, read_all_acpi};

type Machine = std::collections::BTreeMap<u64, Vec<u8>>;

fn machines() -> &'static [Machine] {
    static MACHINES: OnceLock<Vec<Machine>> = OnceLock::new();
    MACHINES.get_or_init(|| {
        let fixtures =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../drivers/src/acpi/fixtures");
        ["qemu-virt", "qemu-q35", "qemu-microvm"]
            .iter()
            .map(|m| acpi_machine(&fixtures.join(m)))
            .collect()
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let [pick, fix, table @ ..] = data else { return };
    let all = machines();
    let machine = &all[usize::from(*pick) % all.len()];
    let addrs: Vec<u64> = machine.keys().copied().collect();
    let at = addrs[usize::from(*pick >> 2) % addrs.len()];
    let mut table = table.to_vec();
    if fix & 1 == 1 {
        if at == RSDP_AT {
            fix_checksum(&mut table, 8, 20);
            fix_checksum(&mut table, 32, 36);
        } else {
            let len = table.len();
            fix_checksum(&mut table, 9, len);
        }
    }
    let mut mem = machine.clone();
    mem.insert(at, table);
    read_all_acpi(&Tables(mem));
});
