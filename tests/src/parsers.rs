//! The parsers of outside input that run on the host, driven over whole
//! inputs for the smoke runs (`tests/tests/parsers_survive_garbage.rs`)
//! and the `cargo fuzz` targets (`fuzz/`): a device tree walked through
//! every accessor, and ACPI tables read by every reader.

use std::collections::BTreeMap;
use std::path::Path;

use basalt_drivers::acpi::{self, IoApic, PhysMemory, VirtioMmioDevice};
use basalt_drivers::fdt::Fdt;

/// Reads `blob` as a device tree through every accessor the kernel uses.
pub fn walk_device_tree(blob: &[u8]) {
    let Ok(fdt) = Fdt::new(blob) else { return };
    let _ = fdt.reservations().count();
    let _ = fdt.stdout_node();
    let _ = fdt.find_compatible("arm,pl011");
    let _ = fdt.find_path(b"/soc/serial@7e201000");
    for node in fdt.nodes().take(10_000) {
        let Ok(node) = node else { break };
        let _ = node.base_name();
        let _ = node.properties().count();
        let _ = node.is_compatible("ns16550a");
        let _ = node.is_enabled();
        let _ = node.string("device_type");
        let _ = node.number("reg-shift");
        let _ = node.reg().take(64).count();
        let _ = node.raw_reg().take(64).count();
        let _ = node.translate(0x1000, 0x10);
        let _ = node.cells("interrupts").take(64).count();
        let _ = node.gic_interrupts().take(64).count();
        let _ = node.pci_ranges().take(64).count();
    }
}

/// Physical memory holding ACPI tables at addresses.
pub struct Tables(pub BTreeMap<u64, Vec<u8>>);

impl PhysMemory for Tables {
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        let Some((start, bytes)) = self.0.range(..=addr).next_back() else {
            return false;
        };
        let off = (addr - start) as usize;
        match bytes.get(off..off + buf.len()) {
            Some(src) => {
                buf.copy_from_slice(src);
                true
            }
            None => false,
        }
    }
}

/// Sets byte `at` of `t` so its first `len` bytes sum to zero (an ACPI
/// checksum); nothing if `t` is shorter.
pub fn fix_checksum(t: &mut [u8], at: usize, len: usize) {
    if t.len() <= at {
        return;
    }
    t[at] = 0;
    let sum = t[..len.min(t.len())]
        .iter()
        .fold(0u8, |a, b| a.wrapping_add(*b));
    t[at] = 0u8.wrapping_sub(sum);
}

/// Where [`acpi_machine`] puts the RSDP.
pub const RSDP_AT: u64 = 0xe_0000;

/// A machine's tables from a fixture directory (one `SIG.bin` per table),
/// laid out afresh: every table at its own address, the XSDT, FADT and
/// RSDP pointing at them, checksums right.
pub fn acpi_machine(dir: &Path) -> BTreeMap<u64, Vec<u8>> {
    let mut files = BTreeMap::new();
    for e in std::fs::read_dir(dir).expect("fixtures") {
        let p = e.expect("entry").path();
        let sig = p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        files.insert(sig, std::fs::read(&p).expect("read"));
    }
    let mut mem = BTreeMap::new();
    let mut next = 0x1000_0000u64;
    let mut place = |bytes: Vec<u8>, mem: &mut BTreeMap<u64, Vec<u8>>| {
        let at = next;
        next += (bytes.len() as u64).next_multiple_of(0x1000) + 0x1000;
        mem.insert(at, bytes);
        at
    };
    let dsdt = files.get("DSDT").map(|d| place(d.clone(), &mut mem));
    let facs = files.get("FACS").map(|f| place(f.clone(), &mut mem));
    let mut entries = Vec::new();
    for (sig, bytes) in &files {
        if ["RSDP", "RSDT", "XSDT", "DSDT", "FACS"].contains(&sig.as_str()) {
            continue;
        }
        let mut t = bytes.clone();
        if sig == "FACP" {
            let put32 = |t: &mut Vec<u8>, at: usize, v: u64| {
                if t.len() >= at + 4 {
                    t[at..at + 4].copy_from_slice(&(v as u32).to_le_bytes());
                }
            };
            let put64 = |t: &mut Vec<u8>, at: usize, v: u64| {
                if t.len() >= at + 8 {
                    t[at..at + 8].copy_from_slice(&v.to_le_bytes());
                }
            };
            if let Some(d) = dsdt {
                put32(&mut t, 40, d);
                put64(&mut t, 140, d);
            }
            if let Some(f) = facs {
                put32(&mut t, 36, f);
                put64(&mut t, 132, f);
            }
            let len = t.len();
            fix_checksum(&mut t, 9, len);
        }
        // Arm's tables (SPCR, GTDT…) first or last does not matter.
        entries.push(place(t, &mut mem));
    }
    let mut xsdt = files["XSDT"][..36].to_vec();
    for e in &entries {
        xsdt.extend_from_slice(&e.to_le_bytes());
    }
    let len = xsdt.len() as u32;
    xsdt[4..8].copy_from_slice(&len.to_le_bytes());
    let len = xsdt.len();
    fix_checksum(&mut xsdt, 9, len);
    let xsdt_at = place(xsdt, &mut mem);
    let mut rsdp = files["RSDP"].clone();
    rsdp[16..20].copy_from_slice(&0u32.to_le_bytes());
    rsdp[24..32].copy_from_slice(&xsdt_at.to_le_bytes());
    fix_checksum(&mut rsdp, 8, 20);
    fix_checksum(&mut rsdp, 32, 36);
    mem.insert(RSDP_AT, rsdp);
    mem
}

/// Runs every ACPI reader the kernel has over `mem`.
pub fn read_all_acpi(mem: &Tables) {
    let _ = acpi::find_arm_platform(mem, Some(RSDP_AT));
    let _ = acpi::find_pci_tables(mem, Some(RSDP_AT), None);
    let _ = acpi::find_s5(mem, Some(RSDP_AT), None);
    let mut devices = [VirtioMmioDevice::default(); 32];
    let _ = acpi::find_virtio_mmio(mem, Some(RSDP_AT), None, &mut devices);
    let mut apics = [IoApic::default(); 4];
    let _ = acpi::find_io_apics(mem, Some(RSDP_AT), None, &mut apics);
}
