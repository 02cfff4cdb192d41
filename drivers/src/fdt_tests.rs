//! Unit tests of `fdt.rs`.
use super::*;
use std::vec::Vec;

/// A tiny FDT writer for the tests.
struct Builder {
    structs: Vec<u8>,
    strings: Vec<u8>,
}

impl Builder {
    fn new() -> Builder {
        Builder {
            structs: Vec::new(),
            strings: Vec::new(),
        }
    }
    fn word(&mut self, w: u32) {
        self.structs.extend_from_slice(&w.to_be_bytes());
    }
    fn pad(&mut self) {
        while !self.structs.len().is_multiple_of(4) {
            self.structs.push(0);
        }
    }
    fn begin(&mut self, name: &str) -> &mut Self {
        self.word(BEGIN_NODE);
        self.structs.extend_from_slice(name.as_bytes());
        self.structs.push(0);
        self.pad();
        self
    }
    fn end(&mut self) -> &mut Self {
        self.word(END_NODE);
        self
    }
    fn prop(&mut self, name: &str, value: &[u8]) -> &mut Self {
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        self.word(PROP);
        self.word(value.len() as u32);
        self.word(off);
        self.structs.extend_from_slice(value);
        self.pad();
        self
    }
    fn cells(&mut self, name: &str, cells: &[u32]) -> &mut Self {
        let v: Vec<u8> = cells.iter().flat_map(|c| c.to_be_bytes()).collect();
        self.prop(name, &v)
    }
    fn finish(&mut self, reservations: &[(u64, u64)]) -> Vec<u8> {
        self.word(END);
        let mut rsv = Vec::new();
        for (a, s) in reservations.iter().chain(&[(0, 0)]) {
            rsv.extend_from_slice(&a.to_be_bytes());
            rsv.extend_from_slice(&s.to_be_bytes());
        }
        let off_rsv = 40u32;
        let off_struct = off_rsv + rsv.len() as u32;
        let off_strings = off_struct + self.structs.len() as u32;
        let total = off_strings + self.strings.len() as u32;
        let mut out = Vec::new();
        for w in [
            MAGIC,
            total,
            off_struct,
            off_strings,
            off_rsv,
            17,
            16,
            0,
            self.strings.len() as u32,
            self.structs.len() as u32,
        ] {
            out.extend_from_slice(&w.to_be_bytes());
        }
        out.extend_from_slice(&rsv);
        out.extend_from_slice(&self.structs);
        out.extend_from_slice(&self.strings);
        out
    }
}

fn sample() -> Vec<u8> {
    let mut b = Builder::new();
    b.begin("")
        .cells("#address-cells", &[2])
        .cells("#size-cells", &[2])
        .prop("compatible", b"linux,dummy-virt\0");
    b.begin("memory@40000000")
        .prop("device_type", b"memory\0")
        .cells("reg", &[0, 0x4000_0000, 0, 0x4000_0000])
        .end();
    b.begin("memory@e000000")
        .prop("device_type", b"memory\0")
        .prop("status", b"disabled\0")
        .cells("reg", &[0, 0xe00_0000, 0, 0x100_0000])
        .end();
    b.begin("pl011@9000000")
        .prop("compatible", b"arm,pl011\0arm,primecell\0")
        .cells("reg", &[0, 0x900_0000, 0, 0x1000])
        .end();
    b.begin("chosen")
        .prop("bootargs", b"basalt.crash=ud\0")
        .cells("linux,initrd-start", &[0x4800_0000])
        .cells("linux,initrd-end", &[0, 0x4801_0000])
        .end();
    b.begin("soc")
        .cells("#address-cells", &[1])
        .cells("#size-cells", &[1])
        .prop("ranges", b"");
    b.begin("uart@1000")
        .prop("compatible", b"arm,pl011\0")
        .cells("reg", &[0x1000, 0x100])
        .end();
    b.end();
    b.end();
    b.finish(&[(0x4000_0000, 0x1000)])
}

/// The Raspberry Pi 4's shape: peripherals at bus addresses behind
/// `/soc`'s `ranges` (one address cell inside, two outside), an alias
/// for the console, a bus without `ranges`.
#[test]
fn translates_reg_through_ranges_and_finds_stdout() {
    let mut b = Builder::new();
    b.begin("")
        .cells("#address-cells", &[2])
        .cells("#size-cells", &[1]);
    b.begin("aliases")
        .prop("serial0", b"/soc/serial@7e201000\0")
        .end();
    b.begin("chosen")
        .prop("stdout-path", b"serial0:115200n8\0")
        .end();
    b.begin("soc")
        .cells("#address-cells", &[1])
        .cells("#size-cells", &[1])
        .cells(
            "ranges",
            &[
                0x7e00_0000,
                0,
                0xfe00_0000,
                0x180_0000,
                0x4000_0000,
                0,
                0xff80_0000,
                0x80_0000,
            ],
        );
    b.begin("serial@7e201000")
        .prop("compatible", b"arm,pl011\0")
        .cells("reg", &[0x7e20_1000, 0x200])
        .end();
    b.begin("gic@40041000")
        .cells("reg", &[0x4004_1000, 0x1000, 0x4004_2000, 0x2000])
        .end();
    b.begin("outside@7f900000")
        .cells("reg", &[0x7f90_0000, 0x100])
        .end();
    b.end();
    b.begin("i2c")
        .cells("#address-cells", &[1])
        .cells("#size-cells", &[0]);
    b.begin("eeprom@50").cells("reg", &[0x50]).end();
    b.end();
    b.end();
    let blob = b.finish(&[]);
    let fdt = Fdt::new(&blob).expect("valid");
    let uart = fdt.stdout_node().expect("ok").expect("stdout");
    assert_eq!(uart.name, b"serial@7e201000");
    assert_eq!(uart.reg().next(), Some((0xfe20_1000, 0x200)));
    assert_eq!(uart.raw_reg().next(), Some((0x7e20_1000, 0x200)));
    let by_base = fdt.find_path(b"/soc/gic").expect("ok").expect("gic");
    assert_eq!(
        by_base.reg().collect::<Vec<_>>(),
        [(0xff84_1000, 0x1000), (0xff84_2000, 0x2000)]
    );
    let outside = fdt.find_path(b"/soc/outside@7f900000").expect("ok");
    assert_eq!(outside.expect("node").reg().next(), None);
    let eeprom = fdt
        .find_path(b"/i2c/eeprom@50")
        .expect("ok")
        .expect("eeprom");
    assert_eq!(eeprom.reg().next(), None);
    assert!(
        fdt.find_path(b"/soc/serial@7e201001")
            .expect("ok")
            .is_none()
    );
    assert!(fdt.find_path(b"/serial@7e201000").expect("ok").is_none());
}

#[test]
fn reads_a_tree() {
    let blob = sample();
    let fdt = Fdt::new(&blob).expect("valid");
    assert_eq!(Fdt::total_size(&blob), Ok(blob.len()));
    let mem: Vec<_> = fdt
        .nodes()
        .map(|n| n.expect("node"))
        .filter(|n| n.string("device_type") == Some(b"memory") && n.is_enabled())
        .flat_map(|n| n.reg().collect::<Vec<_>>())
        .collect();
    assert_eq!(mem, [(0x4000_0000, 0x4000_0000)]);
    let uart = fdt.find_compatible("arm,pl011").expect("ok").expect("uart");
    assert_eq!(uart.reg().next(), Some((0x900_0000, 0x1000)));
    assert!(uart.is_compatible("arm,primecell"));
    assert!(!uart.is_compatible("arm,pl01"));
    let chosen = fdt.find_top_level("chosen").expect("ok").expect("chosen");
    assert_eq!(chosen.string("bootargs"), Some(&b"basalt.crash=ud"[..]));
    assert_eq!(chosen.number("linux,initrd-start"), Some(0x4800_0000));
    assert_eq!(chosen.number("linux,initrd-end"), Some(0x4801_0000));
    let nested: Vec<_> = fdt
        .nodes()
        .map(|n| n.expect("node"))
        .filter(|n| n.name == b"uart@1000")
        .collect();
    assert_eq!(nested.len(), 1);
    assert_eq!(nested[0].depth, 2);
    assert_eq!(nested[0].reg().next(), Some((0x1000, 0x100)));
    assert_eq!(
        fdt.reservations().collect::<Vec<_>>(),
        [(0x4000_0000, 0x1000)]
    );
}

#[test]
fn reads_virtio_mmio_and_pci_host_nodes() {
    let mut b = Builder::new();
    b.begin("")
        .cells("#address-cells", &[2])
        .cells("#size-cells", &[2]);
    b.begin("virtio_mmio@a000000")
        .prop("compatible", b"virtio,mmio\0")
        .cells("reg", &[0, 0xa00_0000, 0, 0x200])
        .cells("interrupts", &[0, 0x10, 1, 1, 14, 4, 2, 0, 0])
        .end();
    b.begin("pcie@10000000")
        .prop("compatible", b"pci-host-ecam-generic\0")
        .prop("device_type", b"pci\0")
        .cells("#address-cells", &[3])
        .cells("#size-cells", &[2])
        .cells("bus-range", &[0, 0xff])
        .cells("reg", &[0x40, 0x1000_0000, 0, 0x1000_0000])
        .cells(
            "ranges",
            &[
                0x0100_0000,
                0,
                0,
                0,
                0x3eff_0000,
                0,
                0x1_0000, // I/O
                0x0200_0000,
                0,
                0x1000_0000,
                0,
                0x1000_0000,
                0,
                0x2eff_0000, // mem32
                0x4300_0000,
                0x80,
                0,
                0x80,
                0,
                0x80,
                0, // prefetchable mem64
                0x0300_0000,
                1, // truncated entry: ignored
            ],
        )
        .end();
    b.begin("odd")
        .cells("#address-cells", &[2])
        .cells("ranges", &[0x0200_0000, 0, 0, 0, 0, 0, 1])
        .end();
    b.end();
    let blob = b.finish(&[]);
    let fdt = Fdt::new(&blob).expect("valid");
    let virtio = fdt
        .find_compatible("virtio,mmio")
        .expect("ok")
        .expect("node");
    assert_eq!(virtio.reg().next(), Some((0xa00_0000, 0x200)));
    assert_eq!(virtio.gic_interrupts().collect::<Vec<_>>(), [48, 30]);
    assert_eq!(virtio.cells("interrupts").count(), 9);
    let pci = fdt
        .find_compatible("pci-host-ecam-generic")
        .expect("ok")
        .expect("node");
    assert_eq!(pci.reg().next(), Some((0x40_1000_0000, 0x1000_0000)));
    assert_eq!(pci.cells("bus-range").collect::<Vec<_>>(), [0, 0xff]);
    let ranges: Vec<_> = pci.pci_ranges().collect();
    assert_eq!(
        ranges,
        [
            PciRange {
                space: PciSpace::Io,
                prefetchable: false,
                pci_address: 0,
                cpu_address: 0x3eff_0000,
                size: 0x1_0000
            },
            PciRange {
                space: PciSpace::Memory32,
                prefetchable: false,
                pci_address: 0x1000_0000,
                cpu_address: 0x1000_0000,
                size: 0x2eff_0000
            },
            PciRange {
                space: PciSpace::Memory64,
                prefetchable: true,
                pci_address: 0x80_0000_0000,
                cpu_address: 0x80_0000_0000,
                size: 0x80_0000_0000
            },
        ]
    );
    let odd = fdt
        .nodes()
        .map(|n| n.expect("node"))
        .find(|n| n.name == b"odd")
        .expect("odd");
    assert_eq!(odd.pci_ranges().count(), 0, "not three address cells");
}

#[test]
fn refuses_bad_headers() {
    assert_eq!(Fdt::new(&[]).err(), Some(FdtError::Truncated));
    assert_eq!(Fdt::new(&[0; 64]).err(), Some(FdtError::BadMagic));
    let mut blob = sample();
    let too_long = (blob.len() as u32 + 1).to_be_bytes();
    blob[4..8].copy_from_slice(&too_long);
    assert_eq!(Fdt::new(&blob).err(), Some(FdtError::Truncated));
    let mut blob = sample();
    blob[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(Fdt::new(&blob).err(), Some(FdtError::BadBlock));
    let mut blob = sample();
    blob[20..24].copy_from_slice(&1u32.to_be_bytes());
    assert_eq!(Fdt::new(&blob).err(), Some(FdtError::UnsupportedVersion(1)));
}

fn exercise(blob: &[u8]) {
    let Ok(fdt) = Fdt::new(blob) else { return };
    let _ = fdt.reservations().take(1000).count();
    for n in fdt.nodes().take(10_000) {
        let Ok(n) = n else { break };
        let _ = n.properties().count();
        let _ = n.reg().count();
        let _ = n.is_compatible("arm,pl011");
        let _ = n.number("#address-cells");
        let _ = n.string("bootargs");
        let _ = n.gic_interrupts().count();
        let _ = n.pci_ranges().count();
        let _ = n.cells("reg").count();
    }
    let _ = fdt.find_compatible("arm,pl031");
    let _ = fdt.find_top_level("chosen");
}

#[test]
fn survives_every_truncation_and_byte_flip() {
    let blob = sample();
    for len in 0..blob.len() {
        exercise(&blob[..len]);
    }
    for i in 0..blob.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut b = blob.clone();
            b[i] ^= flip;
            exercise(&b);
        }
    }
}

#[test]
fn survives_pseudo_random_bytes() {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for round in 0..2000 {
        let mut blob = sample();
        // Keep the header sane half the time so the walk is reached.
        let from = if round % 2 == 0 { 40 } else { 0 };
        for _ in 0..8 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let i = from + (x as usize) % (blob.len() - from);
            blob[i] = (x >> 32) as u8;
        }
        exercise(&blob);
    }
}

#[test]
fn reports_deep_nesting_and_missing_end() {
    let mut b = Builder::new();
    for _ in 0..20 {
        b.begin("n");
    }
    let blob = b.finish(&[]);
    let fdt = Fdt::new(&blob).expect("header");
    assert!(fdt.nodes().any(|n| n.err() == Some(FdtError::TooDeep)));
    let mut b = Builder::new();
    b.begin("");
    let blob = b.finish(&[]);
    let fdt = Fdt::new(&blob).expect("header");
    assert_eq!(
        fdt.nodes().last().map(|r| r.err()),
        Some(Some(FdtError::UnexpectedEnd))
    );
}
