//! The device-tree reader against a real blob: QEMU 10's `virt` board with
//! two UARTs, an initrd and a command line, dumped with
//! `qemu-system-aarch64 -M virt,dumpdtb=… -cpu max -m 1G -nodefaults
//! -kernel … -initrd … -append basalt.crash=ud -serial null -serial null`
//! and compacted with `dtc -I dtb -O dtb`.

use basalt_drivers::fdt::{Fdt, PciRange, PciSpace};

const BLOB: &[u8] = include_bytes!("data/qemu-virt.dtb");

#[test]
fn reads_what_the_kernel_needs_from_qemu_virt() {
    let fdt = Fdt::new(BLOB).expect("a valid tree");
    let nodes: Vec<_> = fdt.nodes().collect::<Result<_, _>>().expect("walks");
    let memory: Vec<(u64, u64)> = nodes
        .iter()
        .filter(|n| n.string("device_type") == Some(b"memory") && n.is_enabled())
        .flat_map(|n| n.reg().collect::<Vec<_>>())
        .collect();
    assert_eq!(memory, [(0x4000_0000, 0x4000_0000)]);
    let mut uarts: Vec<u64> = nodes
        .iter()
        .filter(|n| n.is_compatible("arm,pl011") && n.is_enabled())
        .filter_map(|n| n.reg().next().map(|r| r.0))
        .collect();
    uarts.sort_unstable();
    assert_eq!(uarts, [0x900_0000, 0x904_0000]);
    let rtc = fdt
        .find_compatible("arm,pl031")
        .expect("walks")
        .expect("rtc");
    assert_eq!(rtc.reg().next(), Some((0x901_0000, 0x1000)));
    let psci = fdt.find_top_level("psci").expect("walks").expect("psci");
    assert_eq!(psci.string("method"), Some(&b"hvc"[..]));
    let chosen = fdt
        .find_top_level("chosen")
        .expect("walks")
        .expect("chosen");
    assert_eq!(chosen.string("bootargs"), Some(&b"basalt.crash=ud"[..]));
    assert_eq!(chosen.number("linux,initrd-start"), Some(0x4800_0000));
    assert_eq!(chosen.number("linux,initrd-end"), Some(0x4801_1800));
}

#[test]
fn finds_the_virtio_mmio_transports_and_the_pcie_host_bridge() {
    let fdt = Fdt::new(BLOB).expect("a valid tree");
    let nodes: Vec<_> = fdt.nodes().collect::<Result<_, _>>().expect("walks");
    let mut virtio: Vec<(u64, u64, Vec<u32>)> = nodes
        .iter()
        .filter(|n| n.is_compatible("virtio,mmio") && n.is_enabled())
        .map(|n| {
            let (base, size) = n.reg().next().expect("reg");
            (base, size, n.gic_interrupts().collect())
        })
        .collect();
    virtio.sort_unstable();
    assert_eq!(virtio.len(), 32);
    for (i, (base, size, irqs)) in virtio.iter().enumerate() {
        assert_eq!(*base, 0xa00_0000 + 0x200 * i as u64);
        assert_eq!(*size, 0x200);
        assert_eq!(*irqs, [48 + i as u32], "SPI 16 + i");
    }
    let pcie = fdt
        .find_compatible("pci-host-ecam-generic")
        .expect("walks")
        .expect("the PCIe host bridge");
    assert_eq!(pcie.reg().next(), Some((0x40_1000_0000, 0x1000_0000)));
    assert_eq!(pcie.cells("bus-range").collect::<Vec<_>>(), [0, 0xff]);
    let ranges: Vec<PciRange> = pcie.pci_ranges().collect();
    assert_eq!(
        ranges.iter().map(|r| r.space).collect::<Vec<_>>(),
        [PciSpace::Io, PciSpace::Memory32, PciSpace::Memory64]
    );
    assert_eq!(ranges[0].cpu_address, 0x3eff_0000);
    assert_eq!(ranges[1].cpu_address, 0x1000_0000);
    assert_eq!(ranges[2].size, 0x80_0000_0000);
}

#[test]
fn every_truncation_of_the_real_blob_is_an_error_or_a_shorter_walk() {
    for len in (0..BLOB.len()).step_by(7) {
        if let Ok(fdt) = Fdt::new(&BLOB[..len]) {
            for n in fdt.nodes().flatten() {
                let _ = n.reg().count();
                let _ = n.properties().count();
            }
        }
    }
}
