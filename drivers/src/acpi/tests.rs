//! Host tests with synthetic firmware tables.

use super::*;
use std::vec::Vec;

/// Physical memory made of a few byte regions.
#[derive(Default)]
pub(super) struct Mem(pub(super) Vec<(u64, Vec<u8>)>);

impl Mem {
    pub(super) fn put(&mut self, addr: u64, bytes: Vec<u8>) {
        self.0.push((addr, bytes));
    }
}

impl PhysMemory for Mem {
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        for (start, bytes) in &self.0 {
            let end = start + bytes.len() as u64;
            if addr >= *start && addr + buf.len() as u64 <= end {
                let off = (addr - start) as usize;
                buf.copy_from_slice(&bytes[off..off + buf.len()]);
                return true;
            }
        }
        false
    }
}

pub(super) fn fix_checksum(bytes: &mut [u8], at: usize) {
    bytes[at] = 0;
    let sum = bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b));
    bytes[at] = 0u8.wrapping_sub(sum);
}

/// A table with a header, `body` after it and a correct checksum.
pub(super) fn table(sig: &[u8; 4], revision: u8, body: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(sig);
    t.extend_from_slice(&((HEADER_LEN + body.len()) as u32).to_le_bytes());
    t.push(revision);
    t.push(0); // checksum
    t.extend_from_slice(b"BASALT");
    t.extend_from_slice(b"TESTTABL");
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(b"BSLT");
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(body);
    fix_checksum(&mut t, 9);
    t
}

fn rsdp_v1(rsdt: u32) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend_from_slice(b"RSD PTR ");
    r.push(0);
    r.extend_from_slice(b"BASALT");
    r.push(0); // revision
    r.extend_from_slice(&rsdt.to_le_bytes());
    fix_checksum(&mut r, 8);
    r
}

pub(super) fn rsdp_v2(rsdt: u32, xsdt: u64) -> Vec<u8> {
    let mut r = rsdp_v1(rsdt);
    r[15] = 2;
    fix_checksum(&mut r, 8);
    r.extend_from_slice(&36u32.to_le_bytes());
    r.extend_from_slice(&xsdt.to_le_bytes());
    r.extend_from_slice(&[0, 0, 0, 0]);
    fix_checksum(&mut r, 32);
    r
}

/// A 244-byte FADT body (ACPI 5 layout) with the given fields.
pub(super) fn fadt_body(dsdt: u32, smi: u32, enable: u8, pm1a: u32, pm1b: u32) -> Vec<u8> {
    let mut f = std::vec![0u8; 276 - HEADER_LEN];
    let at = |o: usize| o - HEADER_LEN;
    f[at(40)..at(44)].copy_from_slice(&dsdt.to_le_bytes());
    f[at(48)..at(52)].copy_from_slice(&smi.to_le_bytes());
    f[at(52)] = enable;
    f[at(64)..at(68)].copy_from_slice(&pm1a.to_le_bytes());
    f[at(68)..at(72)].copy_from_slice(&pm1b.to_le_bytes());
    f[at(89)] = 2;
    f
}

fn set_gas(fadt_body: &mut [u8], offset: usize, space: u8, addr: u64) {
    let o = offset - HEADER_LEN;
    fadt_body[o] = space;
    fadt_body[o + 1] = 16;
    fadt_body[o + 4..o + 12].copy_from_slice(&addr.to_le_bytes());
}

/// AML: `Name (\_S5_, Package (4) { a, b, 0, 0 })` with encoded elements,
/// between some unrelated bytes (including a stray `_S5_` string).
fn dsdt_with_s5(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut aml = Vec::new();
    aml.extend_from_slice(&[0x10, 0x05, b'\\', b'_', b'S', b'B', b'_']); // Scope
    aml.extend_from_slice(&[0x0d, b'_', b'S', b'5', b'_', 0]); // a string, not a name
    aml.extend_from_slice(&[0x08, b'\\', b'_', b'S', b'5', b'_', 0x12]);
    let elems: Vec<u8> = [a, b, &[0x00], &[0x00]].concat();
    aml.push((2 + elems.len()) as u8); // PkgLength (one byte)
    aml.push(4); // NumElements
    aml.extend_from_slice(&elems);
    aml.extend_from_slice(&[0xa4, 0x00]); // Return (Zero)
    table(b"DSDT", 2, &aml)
}

const RSDP_AT: u64 = 0xf_5a20;
const RSDT_AT: u64 = 0x7ffe_0000;
const XSDT_AT: u64 = 0x7ffe_0100;
const FADT_AT: u64 = 0x7ffe_1000;
const DSDT_AT: u64 = 0x7ffe_2000;

/// A q35-like machine: RSDP in the BIOS area, RSDT → FADT → DSDT.
fn machine(fadt: Vec<u8>, dsdt: Vec<u8>) -> Mem {
    let mut m = Mem::default();
    let mut bios = std::vec![0u8; 0x2_0000];
    let r = rsdp_v1(RSDT_AT as u32);
    let o = (RSDP_AT - 0xe_0000) as usize;
    bios[o..o + r.len()].copy_from_slice(&r);
    m.put(0xe_0000, bios);
    let mut rsdt_body = Vec::new();
    rsdt_body.extend_from_slice(&0x7ffe_3000u32.to_le_bytes()); // some other table
    rsdt_body.extend_from_slice(&(FADT_AT as u32).to_le_bytes());
    m.put(RSDT_AT, table(b"RSDT", 1, &rsdt_body));
    m.put(0x7ffe_3000, table(b"APIC", 1, &[0; 8]));
    m.put(FADT_AT, fadt);
    m.put(DSDT_AT, dsdt);
    m
}

fn qemu_like() -> Mem {
    let fadt = table(b"FACP", 1, &fadt_body(DSDT_AT as u32, 0xb2, 0xf1, 0x604, 0));
    machine(fadt, dsdt_with_s5(&[0x00], &[0x00]))
}

#[test]
fn finds_s5_by_scanning_the_bios_area() {
    let s5 = find_s5(&qemu_like(), None, None).unwrap();
    assert_eq!(
        s5,
        SleepS5 {
            control: SleepControl::Pm1 {
                a: Register::Io(0x604),
                b: None
            },
            slp_typ_a: 0,
            slp_typ_b: 0,
            smi_command: 0xb2,
            acpi_enable: 0xf1,
        }
    );
    assert_eq!(s5.pm1a_value(), 1 << 13);
}

#[test]
fn uses_the_loaders_rsdp_and_the_xsdt_and_x_fields() {
    let mut body = fadt_body(0, 0, 0, 0x604, 0x608);
    set_gas(&mut body, 172, 1, 0x1004);
    set_gas(&mut body, 184, 0, 0xfed0_0010);
    let x_dsdt = 0x1_0000_0000u64 + DSDT_AT;
    body[140 - HEADER_LEN..148 - HEADER_LEN].copy_from_slice(&x_dsdt.to_le_bytes());
    let mut m = Mem::default();
    let rsdp_at = 0x9000;
    m.put(rsdp_at, rsdp_v2(0xdead_0000, XSDT_AT));
    m.put(XSDT_AT, table(b"XSDT", 1, &FADT_AT.to_le_bytes()));
    m.put(FADT_AT, table(b"FACP", 6, &body));
    m.put(x_dsdt, dsdt_with_s5(&[0x0a, 0x05], &[0x0b, 0x07, 0x00]));
    let s5 = find_s5(&m, Some(rsdp_at), None).unwrap();
    assert_eq!(
        s5.control,
        SleepControl::Pm1 {
            a: Register::Io(0x1004),
            b: Some(Register::Memory(0xfed0_0010))
        }
    );
    assert_eq!((s5.slp_typ_a, s5.slp_typ_b), (5, 7));
    assert_eq!(s5.pm1a_value(), 5 << 10 | 1 << 13);
    assert_eq!(s5.pm1b_value(), 7 << 10 | 1 << 13);
}

#[test]
fn finds_the_rsdp_in_the_ebda() {
    let mut m = Mem::default();
    let mut ebda = std::vec![0u8; 1024];
    let r = rsdp_v1(RSDT_AT as u32);
    ebda[0x40..0x40 + r.len()].copy_from_slice(&r);
    m.put(0x9_f000, ebda);
    assert_eq!(find_rsdp(&m, None, None), Err(AcpiError::NoRsdp));
    let rsdp = find_rsdp(&m, None, Some(0x9_f000)).unwrap();
    assert_eq!(rsdp.addr, 0x9_f040);
    assert_eq!(rsdp.rsdt, RSDT_AT as u32);
}

#[test]
fn one_op_and_ones_op_and_dword_elements_decode() {
    assert_eq!(
        parse_s5(&[
            0x08, b'_', b'S', b'5', b'_', 0x12, 0x06, 0x04, 0x01, 0x0c, 3, 0, 0, 0
        ]),
        Ok((1, 3))
    );
    assert_eq!(
        parse_s5(&[0x08, b'_', b'S', b'5', b'_', 0x12, 0x04, 0x02, 0xff, 0x00]),
        Ok((0xff, 0))
    );
    // A two-byte PkgLength.
    assert_eq!(
        parse_s5(&[
            0x08, b'_', b'S', b'5', b'_', 0x12, 0x40, 0x00, 0x02, 0x0a, 6, 0x0a, 6
        ]),
        Ok((6, 6))
    );
}

#[test]
fn missing_or_malformed_pieces_are_typed_errors() {
    assert_eq!(find_s5(&Mem::default(), None, None), Err(AcpiError::NoRsdp));

    // RSDP checksum broken: the scan skips it and finds nothing.
    let mut m = qemu_like();
    m.0[0].1[(RSDP_AT - 0xe_0000) as usize + 8] ^= 1;
    assert_eq!(find_s5(&m, None, None), Err(AcpiError::NoRsdp));
    assert_eq!(
        find_s5(&m, Some(RSDP_AT), None),
        Err(AcpiError::BadChecksum {
            what: "RSDP",
            addr: RSDP_AT
        })
    );

    // A bad FADT checksum.
    let mut fadt = table(b"FACP", 1, &fadt_body(DSDT_AT as u32, 0, 0, 0x604, 0));
    fadt[50] ^= 0x40;
    let m = machine(fadt, dsdt_with_s5(&[0], &[0]));
    assert_eq!(
        find_s5(&m, None, None),
        Err(AcpiError::BadChecksum {
            what: "FADT",
            addr: FADT_AT
        })
    );

    // No PM1a block.
    let m = machine(
        table(b"FACP", 1, &fadt_body(DSDT_AT as u32, 0, 0, 0, 0)),
        dsdt_with_s5(&[0], &[0]),
    );
    assert_eq!(find_s5(&m, None, None), Err(AcpiError::NoPm1aControl));

    // PM1a in PCI configuration space.
    let mut body = fadt_body(DSDT_AT as u32, 0, 0, 0x604, 0);
    set_gas(&mut body, 172, 2, 0x1234);
    let m = machine(table(b"FACP", 5, &body), dsdt_with_s5(&[0], &[0]));
    assert_eq!(
        find_s5(&m, None, None),
        Err(AcpiError::UnsupportedAddressSpace(2))
    );

    // DSDT pointer to nowhere, and a DSDT without `_S5_`.
    let m = machine(
        table(b"FACP", 1, &fadt_body(0x5000_0000, 0, 0, 0x604, 0)),
        dsdt_with_s5(&[0], &[0]),
    );
    assert_eq!(
        find_s5(&m, None, None),
        Err(AcpiError::Unreadable {
            what: "DSDT",
            addr: 0x5000_0000
        })
    );
    let m = machine(
        table(b"FACP", 1, &fadt_body(DSDT_AT as u32, 0, 0, 0x604, 0)),
        table(b"DSDT", 2, &[0x10, 0x05, b'\\', b'_', b'S', b'B', b'_']),
    );
    assert_eq!(find_s5(&m, None, None), Err(AcpiError::NoS5));

    // `_S5_` whose elements are not integer constants.
    let m = machine(
        table(b"FACP", 1, &fadt_body(DSDT_AT as u32, 0, 0, 0x604, 0)),
        dsdt_with_s5(&[0x0d, b'x', 0], &[0]),
    );
    assert_eq!(find_s5(&m, None, None), Err(AcpiError::BadS5));

    // No FADT at all.
    let mut m = qemu_like();
    m.0.retain(|(a, _)| *a != FADT_AT);
    m.put(FADT_AT, table(b"SSDT", 1, &[]));
    assert_eq!(find_s5(&m, None, None), Err(AcpiError::NoFadt));

    // A table whose length field is absurd.
    let mut rsdt = table(b"RSDT", 1, &(FADT_AT as u32).to_le_bytes());
    rsdt[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut m = qemu_like();
    m.0.retain(|(a, _)| *a != RSDT_AT);
    m.put(RSDT_AT, rsdt);
    assert_eq!(
        find_s5(&m, None, None),
        Err(AcpiError::BadTable {
            what: "RSDT",
            addr: RSDT_AT
        })
    );
}

#[test]
fn truncated_aml_never_panics() {
    let full = [
        0x08, b'\\', b'_', b'S', b'5', b'_', 0x12, 0x40, 0x00, 0x02, 0x0b, 6, 0, 0x0c, 1, 2, 3, 4,
    ];
    for n in 0..full.len() {
        let r = parse_s5(&full[..n]);
        assert!(r.is_err(), "{n}: {r:?}");
    }
    assert_eq!(parse_s5(&full), Ok((6, 1)));
}

#[test]
fn s5_across_a_chunk_boundary_is_found() {
    let mut aml = std::vec![0xa3u8; 4096 - 3]; // Noop
    aml.extend_from_slice(&[
        0x08, b'_', b'S', b'5', b'_', 0x12, 0x06, 0x04, 0x0a, 2, 0x0a, 3, 0, 0,
    ]);
    let m = machine(
        table(b"FACP", 1, &fadt_body(DSDT_AT as u32, 0, 0, 0x604, 0)),
        table(b"DSDT", 2, &aml),
    );
    let s5 = find_s5(&m, None, None).unwrap();
    assert_eq!((s5.slp_typ_a, s5.slp_typ_b), (2, 3));
}

#[test]
fn a_hardware_reduced_machine_uses_its_sleep_control_register() {
    // As QEMU's microvm: no PM1 blocks, HW_REDUCED_ACPI, the GED's sleep
    // control register in memory, `_S5_` type 5.
    let mut body = fadt_body(DSDT_AT as u32, 0, 0, 0, 0);
    body[112 - HEADER_LEN..116 - HEADER_LEN].copy_from_slice(&(1u32 << 20).to_le_bytes());
    set_gas(&mut body, 244, 0, 0xfea0_0000);
    let m = machine(table(b"FACP", 5, &body), dsdt_with_s5(&[0x0a, 5], &[0]));
    let s5 = find_s5(&m, None, None).unwrap();
    assert_eq!(
        s5.control,
        SleepControl::SleepRegister(Register::Memory(0xfea0_0000))
    );
    assert_eq!(s5.sleep_register_value(), 5 << 2 | 1 << 5);

    // Hardware-reduced without the register: nothing to write.
    let mut body = fadt_body(DSDT_AT as u32, 0, 0, 0, 0);
    body[112 - HEADER_LEN..116 - HEADER_LEN].copy_from_slice(&(1u32 << 20).to_le_bytes());
    let m = machine(table(b"FACP", 5, &body), dsdt_with_s5(&[0x0a, 5], &[0]));
    assert_eq!(find_s5(&m, None, None), Err(AcpiError::NoPm1aControl));
}

/// QEMU 10 `microvm`'s DSDT with one `-device virtio-rng-device` (and
/// `-global virtio-mmio.force-legacy=false`), read from guest memory.
const MICROVM_DSDT: &[u8] = include_bytes!("../../tests/data/qemu-microvm-dsdt.aml");

#[test]
fn finds_the_virtio_device_in_qemus_microvm_dsdt() {
    let mut out = [VirtioMmioDevice::default(); 4];
    let n = parse_virtio_mmio(&MICROVM_DSDT[HEADER_LEN..], &mut out, 0);
    assert_eq!(
        &out[..n],
        [VirtioMmioDevice {
            base: 0xfeb0_2e00,
            size: 0x200,
            irq: Some(47)
        }]
    );
    // The whole walk, from the RSDP, over the same bytes.
    let fadt = table(b"FACP", 1, &fadt_body(DSDT_AT as u32, 0, 0, 0x604, 0));
    let m = machine(fadt, MICROVM_DSDT.to_vec());
    let mut out = [VirtioMmioDevice::default(); 4];
    assert_eq!(find_virtio_mmio(&m, None, None, &mut out), Ok(1));
    assert_eq!(out[0].base, 0xfeb0_2e00);
}

/// AML for `Device (VRnn) { Name (_HID, hid) Name (_UID, n) Name (_CRS,
/// ResourceTemplate () { Memory32Fixed (base, 0x200) irq })`.
fn virtio_device(hid: &[u8], n: u8, base: u32, irq: &[u8]) -> Vec<u8> {
    let mut crs = std::vec![0x86, 9, 0, 1];
    crs.extend_from_slice(&base.to_le_bytes());
    crs.extend_from_slice(&0x200u32.to_le_bytes());
    crs.extend_from_slice(irq);
    crs.extend_from_slice(&[0x79, 0]);
    let mut body = std::vec![0x08, b'_', b'H', b'I', b'D', 0x0d];
    body.extend_from_slice(hid);
    body.push(0);
    body.extend_from_slice(&[0x08, b'_', b'U', b'I', b'D', 0x0a, n]);
    body.extend_from_slice(&[0x08, b'_', b'C', b'R', b'S', 0x11]);
    body.push((1 + 2 + crs.len()) as u8); // PkgLength (one byte)
    body.extend_from_slice(&[0x0a, crs.len() as u8]);
    body.extend_from_slice(&crs);
    let mut dev = std::vec![
        0x5b,
        0x82,
        (1 + 4 + body.len()) as u8,
        b'V',
        b'R',
        b'0',
        b'0' + n
    ];
    dev.extend_from_slice(&body);
    dev
}

#[test]
fn finds_several_devices_skips_others_and_reads_both_interrupt_forms() {
    let extended = [0x89, 6, 0, 1, 1, 12, 0, 0, 0];
    let legacy = [0x22, 0x20, 0x00]; // IRQ 5
    let mut aml = Vec::new();
    aml.extend(virtio_device(b"LNRO0005", 0, 0xd000_0000, &extended));
    aml.extend(virtio_device(b"PNP0501", 1, 0xd000_1000, &extended));
    aml.extend(virtio_device(b"LNRO0005", 2, 0xd000_2000, &legacy));
    aml.extend(virtio_device(b"LNRO0005", 3, 0xd000_3000, &[]));
    let mut out = [VirtioMmioDevice::default(); 8];
    let n = parse_virtio_mmio(&aml, &mut out, 0);
    let found: Vec<_> = out[..n].iter().map(|d| (d.base, d.irq)).collect();
    assert_eq!(
        found,
        [
            (0xd000_0000, Some(12)),
            (0xd000_2000, Some(5)),
            (0xd000_3000, None)
        ]
    );
    // A second pass over the same bytes adds nothing; a full `out` stops.
    assert_eq!(parse_virtio_mmio(&aml, &mut out, n), n);
    let mut small = [VirtioMmioDevice::default(); 2];
    assert_eq!(parse_virtio_mmio(&aml, &mut small, 0), 2);
}

#[test]
fn a_device_across_a_chunk_boundary_is_found_once() {
    let mut aml = std::vec![0xa3u8; 4096 - 20]; // Noop
    aml.extend(virtio_device(b"LNRO0005", 0, 0xd000_0000, &[]));
    aml.extend(std::vec![0xa3u8; 5000]);
    aml.extend(virtio_device(b"LNRO0005", 1, 0xd000_1000, &[]));
    let m = machine(
        table(b"FACP", 1, &fadt_body(DSDT_AT as u32, 0, 0, 0x604, 0)),
        table(b"DSDT", 2, &aml),
    );
    let mut out = [VirtioMmioDevice::default(); 4];
    assert_eq!(find_virtio_mmio(&m, None, None, &mut out), Ok(2));
    assert_eq!((out[0].base, out[1].base), (0xd000_0000, 0xd000_1000));
}

#[test]
fn truncated_or_corrupted_virtio_aml_never_panics() {
    let body = &MICROVM_DSDT[HEADER_LEN..];
    let mut out = [VirtioMmioDevice::default(); 4];
    for n in 0..body.len() {
        parse_virtio_mmio(&body[..n], &mut out, 0);
    }
    for i in 0..body.len() {
        for flip in [0x01u8, 0x40, 0x80, 0xff] {
            let mut b = body.to_vec();
            b[i] ^= flip;
            parse_virtio_mmio(&b, &mut out, 0);
        }
    }
}

#[test]
fn madt_io_apics_are_found_among_other_entries() {
    let mut body = Vec::new();
    // a local APIC (type 0, 8 bytes)
    body.extend_from_slice(&[0, 8, 0, 0, 1, 0, 0, 0]);
    // two I/O APICs: 0xfec00000 from GSI 0, 0xfec10000 from GSI 24
    body.extend_from_slice(&[1, 12, 0, 0, 0, 0, 0xc0, 0xfe, 0, 0, 0, 0]);
    // an interrupt source override (type 2, 10 bytes)
    body.extend_from_slice(&[2, 10, 0, 0, 2, 0, 0, 0, 0, 0]);
    body.extend_from_slice(&[1, 12, 1, 0, 0, 0, 0xc1, 0xfe, 24, 0, 0, 0]);
    let mut out = [IoApic::default(); 4];
    assert_eq!(parse_madt_io_apics(&body, &mut out), 2);
    assert_eq!(
        out[..2],
        [
            IoApic {
                address: 0xfec0_0000,
                gsi_base: 0
            },
            IoApic {
                address: 0xfec1_0000,
                gsi_base: 24
            }
        ]
    );
    // A truncated or zero-length entry ends the walk without a panic.
    assert_eq!(parse_madt_io_apics(&body[..body.len() - 3], &mut out), 1);
    assert_eq!(parse_madt_io_apics(&[1, 0, 5], &mut out), 0);
    let mut one = [IoApic::default(); 1];
    assert_eq!(parse_madt_io_apics(&body, &mut one), 1);
}
