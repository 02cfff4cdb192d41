//! Host tests over QEMU `microvm`'s hardware-reduced tables with PCIe
//! (`fixtures/qemu-microvm`, the Cloud Hypervisor shape): no MCFG, the
//! ECAM window only in the host bridge's `_CBA`.

use super::tests::{Mem, fix_checksum};
use super::*;
use std::vec::Vec;

const MICROVM_RSDP: u64 = 0xf_41d0;
const MICROVM_XSDT: u64 = 0x1fff_ff9c;
const MICROVM_FADT: u64 = 0x1fff_fe3e;
const MICROVM_DSDT: u64 = 0x1fff_f2c0;
const MICROVM_MADT: u64 = 0x1fff_ff4a;
const DSDT: &[u8] = include_bytes!("fixtures/qemu-microvm/DSDT.bin");

fn microvm_with_dsdt(dsdt: Vec<u8>) -> Mem {
    let mut m = Mem::default();
    m.put(
        MICROVM_RSDP,
        include_bytes!("fixtures/qemu-microvm/RSDP.bin").to_vec(),
    );
    m.put(
        MICROVM_XSDT,
        include_bytes!("fixtures/qemu-microvm/XSDT.bin").to_vec(),
    );
    m.put(
        MICROVM_FADT,
        include_bytes!("fixtures/qemu-microvm/FACP.bin").to_vec(),
    );
    m.put(
        MICROVM_MADT,
        include_bytes!("fixtures/qemu-microvm/APIC.bin").to_vec(),
    );
    m.put(MICROVM_DSDT, dsdt);
    m
}

#[test]
fn microvm_ecam_comes_from_the_host_bridges_cba() {
    let m = microvm_with_dsdt(DSDT.to_vec());
    let t = find_pci_tables(&m, Some(MICROVM_RSDP), None).unwrap();
    assert!(t.ecam_from_dsdt);
    assert_eq!(
        t.ecam_windows(),
        [EcamWindow {
            base: 0xe000_0000,
            segment: 0,
            start_bus: 0,
            end_bus: 255,
        }]
    );
    let host = t.pci_host.unwrap();
    assert_eq!(host.ecam_base, Some(0xe000_0000));
    let mmio32 = host.mmio32().unwrap();
    assert_eq!((mmio32.min, mmio32.max), (0xc000_0000, 0xdfff_ffff));
    assert!(host.mmio64().is_some());
}

#[test]
fn an_mcfg_wins_over_the_cba() {
    // QEMU's `virt` has both; the MCFG's window is the one used.
    let virt = arm_tests::virt(3);
    let t = find_pci_tables(&virt, Some(0x5c43_0018), None).unwrap();
    assert!(!t.ecam_from_dsdt);
    assert_eq!(t.ecam_windows().len(), 1);
    assert_eq!(t.ecam_windows()[0].base, 0x40_1000_0000);
}

#[test]
fn a_cba_that_is_not_a_constant_is_no_window() {
    // `Return (Local0)` instead of `Return (0xe0000000)`: nothing here
    // evaluates AML, so the bridge has no ECAM base and the machine no
    // window (its configuration space stays unreachable, as it would be
    // without `_CBA`).
    let mut dsdt = DSDT.to_vec();
    let at = dsdt.windows(4).position(|w| w == b"_CBA").unwrap();
    assert_eq!(dsdt[at + 5], 0xa4);
    dsdt[at + 6] = 0x60; // Local0
    fix_checksum(&mut dsdt, 9);
    let t = find_pci_tables(&microvm_with_dsdt(dsdt), Some(MICROVM_RSDP), None).unwrap();
    assert!(!t.ecam_from_dsdt);
    assert_eq!(t.ecam_windows(), []);
    assert_eq!(t.pci_host.unwrap().ecam_base, None);
}

#[test]
fn a_cba_cut_off_by_the_table_end_is_no_window() {
    let at = DSDT.windows(4).position(|w| w == b"_CBA").unwrap();
    // The table ends inside the integer (its length field says so).
    let mut dsdt = DSDT[..at + 9].to_vec();
    let len = dsdt.len() as u32;
    dsdt[4..8].copy_from_slice(&len.to_le_bytes());
    fix_checksum(&mut dsdt, 9);
    let t = find_pci_tables(&microvm_with_dsdt(dsdt), Some(MICROVM_RSDP), None).unwrap();
    assert_eq!(t.ecam_windows(), []);
}
