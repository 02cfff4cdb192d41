//! Host tests for the Arm tables, over QEMU's own tables (see
//! `fixtures/README.md`) and hostile variants of them.

use super::tests::{Mem, fadt_body, fix_checksum, rsdp_v2, table};
use super::*;
use std::vec::Vec;

/// QEMU 10 `virt` (AAVMF) tables at the addresses firmware put them.
const VIRT_RSDP: u64 = 0x5c43_0018;
const VIRT_XSDT: u64 = 0x5c43_fe98;
const VIRT_DSDT: u64 = 0x5c43_7518;
const VIRT_MADT: u64 = 0x5c43_fc18;
const VIRT_GTDT: u64 = 0x5c43_d898;
const VIRT_MCFG: u64 = 0x5c43_ff98;
const VIRT_SPCR: u64 = 0x5c43_e818;
const VIRT_FADT: u64 = 0x5c43_fa98;

fn virt_tables(gic_version: u8) -> Vec<(u64, &'static [u8])> {
    let apic: &'static [u8] = if gic_version == 3 {
        include_bytes!("fixtures/qemu-virt/APIC-gicv3.bin")
    } else {
        include_bytes!("fixtures/qemu-virt/APIC-gicv2.bin")
    };
    std::vec![
        (
            VIRT_RSDP,
            &include_bytes!("fixtures/qemu-virt/RSDP.bin")[..]
        ),
        (VIRT_XSDT, include_bytes!("fixtures/qemu-virt/XSDT.bin")),
        (VIRT_FADT, include_bytes!("fixtures/qemu-virt/FACP.bin")),
        (VIRT_DSDT, include_bytes!("fixtures/qemu-virt/DSDT.bin")),
        (VIRT_MADT, apic),
        (0x5c43_fd98, include_bytes!("fixtures/qemu-virt/PPTT.bin")),
        (VIRT_GTDT, include_bytes!("fixtures/qemu-virt/GTDT.bin")),
        (VIRT_MCFG, include_bytes!("fixtures/qemu-virt/MCFG.bin")),
        (VIRT_SPCR, include_bytes!("fixtures/qemu-virt/SPCR.bin")),
        (0x5c43_e898, include_bytes!("fixtures/qemu-virt/DBG2.bin")),
        (0x5c43_e418, include_bytes!("fixtures/qemu-virt/IORT.bin")),
    ]
}

fn mem_of(tables: &[(u64, &[u8])]) -> Mem {
    let mut m = Mem::default();
    for (addr, bytes) in tables {
        m.put(*addr, bytes.to_vec());
    }
    m
}

pub(super) fn virt(gic_version: u8) -> Mem {
    mem_of(&virt_tables(gic_version))
}

/// The machine with the table at `addr` replaced.
fn virt_with(gic_version: u8, addr: u64, bytes: Vec<u8>) -> Mem {
    let mut m = virt(gic_version);
    m.0.retain(|(a, _)| *a != addr);
    m.put(addr, bytes);
    m
}

fn len_of(m: &Mem, addr: u64) -> u32 {
    let mut h = [0u8; 8];
    assert!(m.read(addr, &mut h));
    le32(&h, 4)
}

#[test]
fn qemu_virt_gicv2_platform() {
    let m = virt(2);
    let p = find_arm_platform(&m, Some(VIRT_RSDP)).unwrap();
    assert_eq!(p.root, VIRT_XSDT);

    let gic = p.gic.unwrap();
    assert_eq!(gic.version, GicVersion::V2);
    assert_eq!(
        gic.distributor,
        GicDistributor {
            base: 0x0800_0000,
            gic_id: 0,
            version_field: 2
        }
    );
    let cpu = gic.boot_cpu.unwrap();
    assert_eq!(
        cpu,
        GicCpuInterface {
            cpu_interface_number: 0,
            uid: 0,
            flags: 1,
            performance_gsiv: 23,
            base: 0x0801_0000,
            gicv: 0x0804_0000,
            gich: 0x0803_0000,
            vgic_maintenance_gsiv: 0,
            gicr_base: 0,
            mpidr: 0,
        }
    );
    assert!(cpu.enabled() && !cpu.online_capable());
    assert_eq!((gic.enabled_cpus, gic.cpu_entries), (2, 2));
    assert_eq!((gic.redistributor, gic.redistributor_ranges), (None, 0));
    assert_eq!((gic.its, gic.its_count), (None, 0));
    assert_eq!(
        gic.msi_frame,
        Some(GicMsiFrame {
            id: 0,
            base: 0x0802_0000,
            spis: Some((0x50, 0x40))
        })
    );
    assert_eq!(gic.msi_frames, 1);

    let t = p.timer.unwrap();
    let level = |gsiv, always_on| {
        Some(TimerInterrupt {
            gsiv,
            edge: false,
            active_low: false,
            always_on,
        })
    };
    assert_eq!(t.el1_virtual, level(27, false));
    assert_eq!(t.el1_physical, level(30, true));
    assert_eq!(t.secure_el1, level(29, false));
    assert_eq!(t.el2_physical, level(26, false));
    assert_eq!(t.el2_virtual, None);
    assert_eq!((t.cnt_control_base, t.cnt_read_base), (None, None));
    assert_eq!((t.revision, t.platform_timers), (3, 0));

    let c = p.console.unwrap();
    assert_eq!(c.kind, UartKind::Pl011);
    assert_eq!(c.interface_type, 3);
    assert_eq!(c.base, Some(Register::Memory(0x0900_0000)));
    assert_eq!((c.register_bit_width, c.access_size), (32, 3));
    assert_eq!((c.interrupt_type, c.gsiv), (8, Some(33)));
    assert_eq!(c.baud, Some(9600));
    assert_eq!((c.pci, c.uart_clock, c.revision), (None, None, 2));

    assert_eq!(
        p.ecam_windows(),
        [EcamWindow {
            base: 0x40_1000_0000,
            segment: 0,
            start_bus: 0,
            end_bus: 255
        }]
    );
    assert_eq!(
        p.ecam[0].config_address(1, 2, 3),
        Some(0x40_1000_0000 + (1 << 20) + (2 << 15) + (3 << 12))
    );
    assert_eq!(p.ecam[0].range(), (0x40_1000_0000, 256 << 20));

    assert_eq!(p.psci, Some(PsciConduit::Hvc));
    let f = p.fadt.unwrap();
    assert!(f.hardware_reduced);
    assert_eq!((f.version, f.arm_boot_arch), ((6, 3), 3));
    assert_eq!(f.dsdt, VIRT_DSDT);

    let host = p.pci_host.unwrap();
    let w = |kind, min, max, translation, length| PciWindow {
        kind,
        min,
        max,
        translation,
        length,
    };
    let mem = PciWindowKind::Memory {
        prefetchable: false,
    };
    assert_eq!(
        host.windows(),
        [
            w(PciWindowKind::BusNumbers, 0, 0xff, 0, 0x100),
            w(mem, 0x1000_0000, 0x3efe_ffff, 0, 0x2eff_0000),
            w(PciWindowKind::Io, 0, 0xffff, 0x3eff_0000, 0x1_0000),
            w(mem, 0x80_0000_0000, 0xff_ffff_ffff, 0, 0x80_0000_0000),
        ]
    );
    assert_eq!(host.mmio32().map(|w| w.min), Some(0x1000_0000));
    assert_eq!(host.mmio64().map(|w| w.min), Some(0x80_0000_0000));
    assert_eq!(host.io().map(|w| w.cpu_base()), Some(0x3eff_0000));
    assert_eq!(host.buses().map(|w| w.max), Some(0xff));
}

#[test]
fn qemu_virt_gicv3_platform() {
    let m = virt(3);
    let p = find_arm_platform(&m, Some(VIRT_RSDP)).unwrap();
    let gic = p.gic.unwrap();
    assert_eq!(gic.version, GicVersion::V3);
    assert_eq!(gic.distributor.base, 0x0800_0000);
    assert_eq!(
        gic.redistributor,
        Some(GicRedistributor {
            base: 0x080a_0000,
            length: 0xf6_0000
        })
    );
    assert_eq!(
        gic.its,
        Some(GicIts {
            id: 0,
            base: 0x0808_0000
        })
    );
    assert_eq!((gic.msi_frame, gic.msi_frames), (None, 0));
    let cpu = gic.boot_cpu.unwrap();
    assert_eq!((cpu.base, cpu.gicr_base, cpu.mpidr), (0, 0, 0));
    assert_eq!(p.timer.unwrap().el1_virtual.map(|t| t.gsiv), Some(27));
    assert_eq!(p.psci, Some(PsciConduit::Hvc));

    // The per-kind walks see the same entries.
    let len = len_of(&m, VIRT_MADT);
    let mut cpus = [GicCpuInterface::default(); 4];
    assert_eq!(madt_gic_cpus(&m, VIRT_MADT, len, &mut cpus), Ok(2));
    assert_eq!(cpus.map(|c| c.mpidr)[..2], [0, 1]);
    let mut one = [GicCpuInterface::default(); 1];
    assert_eq!(madt_gic_cpus(&m, VIRT_MADT, len, &mut one), Ok(1));
    let mut r = [GicRedistributor::default(); 2];
    assert_eq!(madt_gic_redistributors(&m, VIRT_MADT, len, &mut r), Ok(1));
    let mut i = [GicIts::default(); 2];
    assert_eq!(madt_gic_its(&m, VIRT_MADT, len, &mut i), Ok(1));
    let mut f = [GicMsiFrame::default(); 2];
    assert_eq!(madt_gic_msi_frames(&m, VIRT_MADT, len, &mut f), Ok(0));

    // The boot CPU is picked by MPIDR when asked.
    let g = read_madt_gic(&m, VIRT_MADT, len, Some(0x8000_0001)).unwrap();
    assert_eq!(g.boot_cpu.map(|c| c.uid), Some(1));
    let g = read_madt_gic(&m, VIRT_MADT, len, Some(7)).unwrap();
    assert_eq!(g.boot_cpu.map(|c| c.uid), Some(0));
}

/// QEMU 10 `q35` (OVMF) tables, for the x86 readers.
fn q35() -> Mem {
    mem_of(&[
        (0x1f77_d014, include_bytes!("fixtures/qemu-q35/RSDP.bin")),
        (0x1f77_c074, include_bytes!("fixtures/qemu-q35/RSDT.bin")),
        (0x1f77_c0e8, include_bytes!("fixtures/qemu-q35/XSDT.bin")),
        (0x1f77_8000, include_bytes!("fixtures/qemu-q35/FACP.bin")),
        (0x1f77_9000, include_bytes!("fixtures/qemu-q35/DSDT.bin")),
        (0x1f7d_c000, include_bytes!("fixtures/qemu-q35/FACS.bin")),
        (0x1f77_7000, include_bytes!("fixtures/qemu-q35/APIC.bin")),
        (0x1f77_6000, include_bytes!("fixtures/qemu-q35/HPET.bin")),
        (0x1f77_5000, include_bytes!("fixtures/qemu-q35/MCFG.bin")),
        (0x1f77_4000, include_bytes!("fixtures/qemu-q35/WAET.bin")),
        (0x1f77_3000, include_bytes!("fixtures/qemu-q35/BGRT.bin")),
    ])
}

#[test]
fn qemu_q35_tables_still_read_as_before() {
    let m = q35();
    let s5 = find_s5(&m, Some(0x1f77_d014), None).unwrap();
    assert_eq!(
        s5.control,
        SleepControl::Pm1 {
            a: Register::Io(0x604),
            b: None
        }
    );
    assert_eq!((s5.slp_typ_a, s5.slp_typ_b), (0, 0));
    let mut io = [IoApic::default(); 2];
    assert_eq!(find_io_apics(&m, Some(0x1f77_d014), None, &mut io), Ok(1));
    assert_eq!(
        io[0],
        IoApic {
            address: 0xfec0_0000,
            gsi_base: 0
        }
    );
    let mut v = [VirtioMmioDevice::default(); 2];
    assert_eq!(find_virtio_mmio(&m, Some(0x1f77_d014), None, &mut v), Ok(0));

    // The RSDT, as an ACPI 1.0 loader would walk it, finds the same FADT.
    let rsdp = read_rsdp(&m, 0x1f77_d014).unwrap();
    let v1 = Rsdp { xsdt: None, ..rsdp };
    assert_eq!(
        find_table(&m, &v1, b"FACP", "FADT"),
        find_table(&m, &rsdp, b"FACP", "FADT")
    );
    let fadt = read_fadt(&m, 0x1f77_8000, 244).unwrap();
    assert_eq!((fadt.psci(), fadt.hardware_reduced), (None, false));

    // The MCFG reads the same way on x86.
    let mut w = [EcamWindow::default(); 2];
    assert_eq!(read_mcfg(&m, 0x1f77_5000, 60, &mut w), Ok(1));
    assert_eq!((w[0].base, w[0].end_bus), (0xb000_0000, 0xff));

    // No GIC on a PC; q35's PCI0 `_CRS` is in a later `Scope`, which the
    // byte search does not follow.
    assert_eq!(
        find_arm_platform(&m, Some(0x1f77_d014)),
        Err(AcpiError::NoGicDistributor)
    );
    assert_eq!(find_pci_host_bridge(&m, 0x1f77_9000), Ok(None));
}

#[test]
fn absent_tables_are_none_and_no_rsdp_is_an_error() {
    assert_eq!(find_arm_platform(&virt(2), None), Err(AcpiError::NoRsdp));
    // An XSDT that lists only the FADT.
    let mut m = virt(2);
    m.0.retain(|(a, _)| *a != VIRT_XSDT);
    m.put(VIRT_XSDT, table(b"XSDT", 1, &VIRT_FADT.to_le_bytes()));
    let p = find_arm_platform(&m, Some(VIRT_RSDP)).unwrap();
    assert_eq!((p.gic, p.timer, p.console), (None, None, None));
    // No MCFG: the window is the host bridge's `_CBA`.
    assert_eq!(
        p.ecam_windows(),
        [EcamWindow {
            base: 0x40_1000_0000,
            segment: 0,
            start_bus: 0,
            end_bus: 255,
        }]
    );
    assert_eq!(p.psci, Some(PsciConduit::Hvc));
    assert!(p.pci_host.is_some());
}

/// `t` cut to `len` bytes (but never below its header) with its length
/// field set to `len` and the checksum fixed.
fn relength(t: &[u8], len: u32) -> Vec<u8> {
    let mut t = t[..(len as usize).max(HEADER_LEN).min(t.len())].to_vec();
    t[4..8].copy_from_slice(&len.to_le_bytes());
    fix_checksum(&mut t, 9);
    t
}

/// A MADT with the virt header and fixed part and `entries` after.
fn madt(entries: &[u8]) -> Vec<u8> {
    let mut body = std::vec![0u8; 8];
    body.extend_from_slice(entries);
    table(b"APIC", 4, &body)
}

#[test]
fn hostile_madts_are_typed_errors_and_terminate() {
    let gicd = [
        0x0c, 24, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0,
    ];
    let check = |entries: &[u8]| {
        let m = virt_with(2, VIRT_MADT, madt(entries));
        find_arm_platform(&m, Some(VIRT_RSDP)).map(|p| p.gic)
    };
    let at = VIRT_MADT + 44;
    // A zero-length entry must not loop forever.
    let zero = [&gicd[..], &[0x0b, 0, 0, 0]].concat();
    assert_eq!(
        check(&zero),
        Err(AcpiError::BadEntry {
            what: "MADT",
            addr: at + 24
        })
    );
    // An entry longer than what is left of the table.
    let long = [&gicd[..], &[0x0b, 80, 0, 0]].concat();
    assert_eq!(
        check(&long),
        Err(AcpiError::BadEntry {
            what: "MADT",
            addr: at + 24
        })
    );
    // A GICC too short to hold its fields; a one-byte tail.
    let short = [&gicd[..], &[0x0b, 8, 0, 0, 0, 0, 0, 0]].concat();
    assert_eq!(
        check(&short),
        Err(AcpiError::BadEntry {
            what: "MADT",
            addr: at + 24
        })
    );
    assert!(matches!(
        check(&[&gicd[..], &[0x0b]].concat()),
        Err(AcpiError::BadEntry { .. })
    ));
    // No distributor at all.
    assert_eq!(check(&[]), Err(AcpiError::NoGicDistributor));
    // Only a distributor, version 0 and no redistributors: v2, no CPU.
    let mut v0 = gicd;
    v0[20] = 0;
    let g = check(&v0).unwrap().unwrap();
    assert_eq!(
        (g.version, g.boot_cpu, g.cpu_entries),
        (GicVersion::V2, None, 0)
    );
    // Lying lengths passed in directly: too long to be a MADT, longer
    // than readable memory, shorter than the fixed part.
    let m = virt(2);
    assert_eq!(
        read_madt_gic(&m, VIRT_MADT, u32::MAX, None),
        Err(AcpiError::BadTable {
            what: "MADT",
            addr: VIRT_MADT
        })
    );
    assert!(matches!(
        read_madt_gic(&m, VIRT_MADT, 4096, None),
        Err(AcpiError::Unreadable { .. } | AcpiError::BadEntry { .. })
    ));
    assert!(matches!(
        read_madt_gic(&m, VIRT_MADT, 40, None),
        Err(AcpiError::BadTable { .. })
    ));
}

#[test]
fn a_bad_checksum_or_signature_is_reported() {
    let mut spcr = include_bytes!("fixtures/qemu-virt/SPCR.bin").to_vec();
    spcr[44] ^= 1;
    let m = virt_with(2, VIRT_SPCR, spcr);
    assert_eq!(
        find_arm_platform(&m, Some(VIRT_RSDP)),
        Err(AcpiError::BadChecksum {
            what: "SPCR",
            addr: VIRT_SPCR
        })
    );
    let mut gtdt = include_bytes!("fixtures/qemu-virt/GTDT.bin").to_vec();
    gtdt[4..8].copy_from_slice(&(32u32).to_le_bytes());
    fix_checksum(&mut gtdt, 9);
    let m = virt_with(2, VIRT_GTDT, gtdt);
    assert_eq!(
        find_arm_platform(&m, Some(VIRT_RSDP)),
        Err(AcpiError::BadTable {
            what: "GTDT",
            addr: VIRT_GTDT
        })
    );
}

#[test]
fn every_truncation_of_every_table_is_an_error_or_a_value_never_a_panic() {
    for (addr, bytes) in virt_tables(3) {
        if addr == VIRT_RSDP || bytes.len() > 4096 {
            continue;
        }
        for len in 0..=bytes.len() as u32 {
            let m = virt_with(3, addr, relength(bytes, len));
            let r = find_arm_platform(&m, Some(VIRT_RSDP));
            // Cut inside the fixed part, the table is refused.
            if len < 44 && [VIRT_MADT, VIRT_MCFG].contains(&addr) {
                assert!(r.is_err(), "{addr:#x} {len}");
            }
        }
    }
}

#[test]
fn flipped_bytes_with_fixed_checksums_never_panic() {
    for (addr, bytes) in virt_tables(2) {
        if addr == VIRT_RSDP || addr == VIRT_DSDT {
            continue;
        }
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut t = bytes.to_vec();
                t[i] ^= flip;
                fix_checksum(&mut t, 9);
                let m = virt_with(2, addr, t);
                let _ = find_arm_platform(&m, Some(VIRT_RSDP));
            }
        }
    }
    // The DSDT around the host bridge (its `_HID`, `_CRS` and nested
    // device).
    let dsdt: &[u8] = include_bytes!("fixtures/qemu-virt/DSDT.bin");
    let m = virt(2);
    for i in (0xa80..0x13e0).step_by(3) {
        for flip in [0x01u8, 0xff] {
            let mut t = dsdt.to_vec();
            t[i] ^= flip;
            fix_checksum(&mut t, 9);
            let mut m2 = Mem::default();
            m2.put(VIRT_DSDT, t);
            let _ = find_pci_host_bridge(&m2, VIRT_DSDT);
        }
    }
    assert!(find_pci_host_bridge(&m, VIRT_DSDT).unwrap().is_some());
}

#[test]
fn truncated_resource_templates_never_panic() {
    let dsdt: &[u8] = include_bytes!("fixtures/qemu-virt/DSDT.bin");
    // QEMU virt's PCI0 `_CRS`: NameOp `_CRS` BufferOp, a two-byte
    // PkgLength, BytePrefix 0x74 (the size), then the template.
    let at = dsdt
        .windows(10)
        .position(|w| w == b"\x08_CRS\x11\x48\x07\x0a\x74")
        .unwrap();
    let template = &dsdt[at + 10..at + 10 + 0x74];
    assert_eq!(parse_pci_host_resources(template).count, 4);
    // Cut before the last descriptor ends, fewer windows; the end tag
    // (2 bytes) is not needed.
    for n in 0..template.len() {
        let count = parse_pci_host_resources(&template[..n]).count;
        assert!(count < 4 || n >= template.len() - 2, "{n}: {count}");
    }
}

/// An SPCR with the given interface type, GAS and PCI fields.
fn spcr(revision: u8, kind: u8, gas: [u8; 12], pci: Option<(u16, u16, u8, u8, u8)>) -> Vec<u8> {
    let mut b = std::vec![0u8; 88 - HEADER_LEN];
    let at = |o: usize| o - HEADER_LEN;
    b[at(36)] = kind;
    b[at(40)..at(52)].copy_from_slice(&gas);
    b[at(52)] = 8; // GIC
    b[at(54)..at(58)].copy_from_slice(&42u32.to_le_bytes());
    b[at(58)] = 7; // 115200
    b[at(60)] = 1;
    let (dev, ven, bus, d, f) = pci.unwrap_or((0xffff, 0xffff, 0, 0, 0));
    b[at(64)..at(66)].copy_from_slice(&dev.to_le_bytes());
    b[at(66)..at(68)].copy_from_slice(&ven.to_le_bytes());
    b[at(68)] = bus;
    b[at(69)] = d;
    b[at(70)] = f;
    b[at(76)..at(80)].copy_from_slice(&1_843_200u32.to_le_bytes());
    b[at(80)..at(84)].copy_from_slice(&1_500_000u32.to_le_bytes());
    table(b"SPCR", revision, &b)
}

fn gas(space: u8, bit_width: u8, access: u8, addr: u64) -> [u8; 12] {
    let mut g = [0u8; 12];
    g[0] = space;
    g[1] = bit_width;
    g[3] = access;
    g[4..].copy_from_slice(&addr.to_le_bytes());
    g
}

fn read_spcr_bytes(t: Vec<u8>) -> Result<Spcr, AcpiError> {
    let mut m = Mem::default();
    let len = t.len() as u32;
    m.put(0x1000, t);
    read_spcr(&m, 0x1000, len)
}

#[test]
fn spcr_uart_kinds() {
    // Graviton-like: a 16550 behind a PCI BAR, 32-bit registers.
    let s = read_spcr_bytes(spcr(
        2,
        0x00,
        gas(0, 32, 3, 0x80_1000_0000),
        Some((0x8250, 0x1d0f, 0, 1, 0)),
    ))
    .unwrap();
    assert_eq!(
        s.kind,
        UartKind::Ns16550 {
            mmio: true,
            reg_shift: 2,
            access_bytes: 4
        }
    );
    assert_eq!(s.base, Some(Register::Memory(0x80_1000_0000)));
    assert_eq!(
        s.pci,
        Some(SpcrPci {
            device_id: 0x8250,
            vendor_id: 0x1d0f,
            bus: 0,
            device: 1,
            function: 0,
            flags: 0,
            segment: 0
        })
    );
    assert_eq!(
        (s.baud, s.gsiv, s.uart_clock),
        (Some(115_200), Some(42), None)
    );

    // A port-mapped 16550 with byte access; undefined access size falls
    // back to the bit width.
    let s = read_spcr_bytes(spcr(2, 0x01, gas(1, 8, 0, 0x3f8), None)).unwrap();
    assert_eq!(
        s.kind,
        UartKind::Ns16550 {
            mmio: false,
            reg_shift: 0,
            access_bytes: 1
        }
    );
    assert_eq!(s.base, Some(Register::Io(0x3f8)));
    let s = read_spcr_bytes(spcr(2, 0x12, gas(0, 32, 0, 0x1000_0000), None)).unwrap();
    assert_eq!(
        s.kind,
        UartKind::Ns16550 {
            mmio: true,
            reg_shift: 2,
            access_bytes: 4
        }
    );

    // SBSA generic UARTs; revision 4's clock and precise baud rate.
    let s = read_spcr_bytes(spcr(4, 0x0e, gas(0, 32, 3, 0x0900_0000), None)).unwrap();
    assert_eq!(
        s.kind,
        UartKind::SbsaGeneric {
            only_32bit_access: false
        }
    );
    assert_eq!((s.uart_clock, s.baud), (Some(1_843_200), Some(1_500_000)));
    let s = read_spcr_bytes(spcr(2, 0x0d, gas(0, 32, 3, 0x0900_0000), None)).unwrap();
    assert_eq!(
        s.kind,
        UartKind::SbsaGeneric {
            only_32bit_access: true
        }
    );
    let s = read_spcr_bytes(spcr(2, 0x0f, gas(0, 0, 0, 0), None)).unwrap();
    assert_eq!((s.kind, s.base), (UartKind::ArmDcc, None));
    let s = read_spcr_bytes(spcr(2, 0x15, gas(9, 0, 0, 5), None)).unwrap();
    assert_eq!((s.kind, s.base), (UartKind::Other(0x15), None));

    // An I/O port address that does not fit 16 bits is not a base.
    let s = read_spcr_bytes(spcr(2, 0x00, gas(1, 8, 1, 0x1_0000), None)).unwrap();
    assert_eq!(s.base, None);
    // Too short for the fixed fields.
    assert!(matches!(
        read_spcr_bytes(relength(&spcr(2, 0, gas(0, 8, 1, 1), None), 60)),
        Err(AcpiError::BadTable { .. })
    ));
}

fn mcfg(entries: &[(u64, u16, u8, u8)]) -> Vec<u8> {
    let mut b = std::vec![0u8; 8];
    for (base, seg, start, end) in entries {
        b.extend_from_slice(&base.to_le_bytes());
        b.extend_from_slice(&seg.to_le_bytes());
        b.extend_from_slice(&[*start, *end, 0, 0, 0, 0]);
    }
    table(b"MCFG", 1, &b)
}

fn read_mcfg_bytes(t: Vec<u8>, out: &mut [EcamWindow]) -> Result<usize, AcpiError> {
    let mut m = Mem::default();
    let len = t.len() as u32;
    m.put(0x2000, t);
    read_mcfg(&m, 0x2000, len, out)
}

#[test]
fn mcfg_windows_and_hostile_entries() {
    let mut out = [EcamWindow::default(); 2];
    let t = mcfg(&[
        (0x3000_0000, 0, 0, 0x3f),
        (0x40_0000_0000, 1, 0x10, 0x1f),
        (0x50_0000_0000, 2, 0, 0xff),
    ]);
    // More windows than room: the first ones.
    assert_eq!(read_mcfg_bytes(t, &mut out), Ok(2));
    assert_eq!(out[1].segment, 1);
    assert_eq!(out[1].config_address(0x0f, 0, 0), None);
    assert_eq!(out[1].config_address(0x10, 32, 0), None);
    assert_eq!(out[1].range(), (0x40_0100_0000, 16 << 20));
    // End bus below start bus; base 0; base not 1 MiB-aligned; a window
    // that wraps the address space.
    for bad in [
        (0x3000_0000, 0, 5, 4),
        (0, 0, 0, 1),
        (0x3000_1000, 0, 0, 1),
        (u64::MAX - 0xf_ffff, 0, 0, 1),
    ] {
        assert_eq!(
            read_mcfg_bytes(mcfg(&[bad]), &mut out),
            Err(AcpiError::BadEntry {
                what: "MCFG",
                addr: 0x2000 + 44
            }),
            "{bad:x?}"
        );
    }
    // A length that is not a whole number of entries, or shorter than the
    // fixed part.
    let t = mcfg(&[(0x3000_0000, 0, 0, 0x3f)]);
    assert!(matches!(
        read_mcfg_bytes(relength(&t, 50), &mut out),
        Err(AcpiError::BadTable { .. })
    ));
    assert!(matches!(
        read_mcfg_bytes(relength(&t, 40), &mut out),
        Err(AcpiError::BadTable { .. })
    ));
    // An absurd count with too little memory behind it.
    let mut m = Mem::default();
    m.put(0x2000, t);
    assert!(matches!(
        read_mcfg(&m, 0x2000, 44 + 16 * 1_000_000, &mut out),
        Err(AcpiError::Unreadable { .. })
    ));
}

#[test]
fn gtdt_platform_timer_counts_are_checked() {
    let real: &[u8] = include_bytes!("fixtures/qemu-virt/GTDT.bin");
    let with = |count: u32, offset: u32| {
        let mut t = real.to_vec();
        t[88..92].copy_from_slice(&count.to_le_bytes());
        t[92..96].copy_from_slice(&offset.to_le_bytes());
        fix_checksum(&mut t, 9);
        let mut m = Mem::default();
        m.put(0x3000, t);
        read_gtdt(&m, 0x3000, real.len() as u32)
    };
    assert!(matches!(
        with(u32::MAX, 104),
        Err(AcpiError::BadTable { .. })
    ));
    assert!(matches!(with(1, 104), Err(AcpiError::BadTable { .. })));
    assert!(matches!(with(1, 20), Err(AcpiError::BadTable { .. })));
    assert!(matches!(with(1, u32::MAX), Err(AcpiError::BadTable { .. })));
    assert_eq!(
        with(0, 0).map(|g| g.el1_virtual.map(|t| t.gsiv)),
        Ok(Some(27))
    );
}

#[test]
fn psci_conduit_from_arm_boot_flags() {
    let fadt = |flags: u16| {
        let mut b = fadt_body(0, 0, 0, 0, 0);
        b[129 - HEADER_LEN..131 - HEADER_LEN].copy_from_slice(&flags.to_le_bytes());
        let t = table(b"FACP", 6, &b);
        let mut m = Mem::default();
        m.put(0x4000, t);
        read_fadt(&m, 0x4000, 276).unwrap().psci()
    };
    assert_eq!(fadt(0), None);
    assert_eq!(fadt(1), Some(PsciConduit::Smc));
    assert_eq!(fadt(3), Some(PsciConduit::Hvc));
    assert_eq!(fadt(2), None);
}

#[test]
fn a_synthetic_rsdp_reaches_the_real_tables() {
    // The loader hands over a different RSDP copy (ACPI 2.0, XSDT).
    let mut m = virt(3);
    m.put(0x9000, rsdp_v2(0, VIRT_XSDT));
    let p = find_arm_platform(&m, Some(0x9000)).unwrap();
    assert_eq!(p.gic.map(|g| g.version), Some(GicVersion::V3));
}
