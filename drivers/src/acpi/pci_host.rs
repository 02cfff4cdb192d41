//! The PCI host bridge's windows from the DSDT: the `_CRS` of the device
//! whose `_HID` is `PNP0A08` (PCIe) or `PNP0A03` (PCI), so the kernel can
//! assign BARs firmware left unassigned.
//!
//! Nothing here evaluates AML. The DSDT is searched, straight from memory
//! in chunks, for `Name (_HID, …)` with one of those IDs (as a string or
//! an EISA ID); the enclosing `Device` is the nearest `DeviceOp` before it
//! whose length covers it; its resources are the first `Name (_CRS,
//! Buffer)` in the device's own scope (nested devices are skipped by
//! their length). A bridge whose `_CRS` is a method is passed over.

use super::{AcpiError, HEADER_LEN, PhysMemory, check_table, le16, le32, le64};

const WHAT: &str = "DSDT";
/// How many windows [`PciHostBridge`] holds; more are left out.
pub const MAX_PCI_WINDOWS: usize = 8;
/// How much of a `_CRS` buffer is read: a host bridge's template is a few
/// hundred bytes.
const MAX_CRS_LEN: usize = 1024;
/// How far before a `_HID` its `DeviceOp` may be.
const MAX_HID_DEPTH: u64 = 256;

/// What a host bridge window decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PciWindowKind {
    /// memory space
    Memory {
        /// the memory attribute is "prefetchable"
        prefetchable: bool,
    },
    /// I/O space (on Arm, reached through memory at `min + translation`)
    Io,
    /// a bus number range
    BusNumbers,
}

/// One window of a host bridge: an address space descriptor (Word, DWord
/// or QWord) of its `_CRS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PciWindow {
    /// what it decodes
    pub kind: PciWindowKind,
    /// the first address on the PCI side
    pub min: u64,
    /// the last address on the PCI side
    pub max: u64,
    /// add to a PCI-side address to get the CPU's physical address
    pub translation: u64,
    /// the length the descriptor gives
    pub length: u64,
}

impl PciWindow {
    /// The CPU physical address of the window's start.
    pub fn cpu_base(&self) -> u64 {
        self.min.wrapping_add(self.translation)
    }

    /// The window as the device tree's `ranges` describe one (the form the
    /// PCI code takes windows in); `None` for a bus-number range or an
    /// empty or inverted one.
    pub fn as_pci_range(&self) -> Option<crate::fdt::PciRange> {
        use crate::fdt::{PciRange, PciSpace};
        let space = match self.kind {
            PciWindowKind::Io => PciSpace::Io,
            PciWindowKind::Memory { .. } if self.max > u64::from(u32::MAX) => PciSpace::Memory64,
            PciWindowKind::Memory { .. } => PciSpace::Memory32,
            PciWindowKind::BusNumbers => return None,
        };
        Some(PciRange {
            space,
            prefetchable: matches!(self.kind, PciWindowKind::Memory { prefetchable: true }),
            pci_address: self.min,
            cpu_address: self.cpu_base(),
            size: self.max.checked_sub(self.min)?.checked_add(1)?,
        })
    }
}

const NO_WINDOW: PciWindow = PciWindow {
    kind: PciWindowKind::BusNumbers,
    min: 0,
    max: 0,
    translation: 0,
    length: 0,
};

/// A PCI host bridge's windows, from its `_CRS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PciHostBridge {
    /// the windows; the first `count` are valid
    pub windows: [PciWindow; MAX_PCI_WINDOWS],
    /// how many entries of `windows` are valid
    pub count: usize,
    /// the ECAM base its `_CBA` gives, where it has one (hardware-reduced
    /// machines without an MCFG, such as QEMU's `microvm`)
    pub ecam_base: Option<u64>,
}

impl PciHostBridge {
    /// The valid windows, in `_CRS` order.
    pub fn windows(&self) -> &[PciWindow] {
        &self.windows[..self.count.min(MAX_PCI_WINDOWS)]
    }

    fn first(&self, f: impl Fn(&PciWindow) -> bool) -> Option<PciWindow> {
        self.windows().iter().copied().find(f)
    }

    /// The first memory window below 4 GiB (for 32-bit BARs).
    pub fn mmio32(&self) -> Option<PciWindow> {
        self.first(|w| matches!(w.kind, PciWindowKind::Memory { .. }) && w.max <= 0xffff_ffff)
    }

    /// The first memory window reaching above 4 GiB (for 64-bit BARs).
    pub fn mmio64(&self) -> Option<PciWindow> {
        self.first(|w| matches!(w.kind, PciWindowKind::Memory { .. }) && w.max > 0xffff_ffff)
    }

    /// The first I/O window.
    pub fn io(&self) -> Option<PciWindow> {
        self.first(|w| w.kind == PciWindowKind::Io)
    }

    /// The bus number range.
    pub fn buses(&self) -> Option<PciWindow> {
        self.first(|w| w.kind == PciWindowKind::BusNumbers)
    }
}

/// Decodes the address space descriptors (Word 0x88, DWord 0x87, QWord
/// 0x8A) of a resource template (a `_CRS` buffer's bytes). Other items
/// are skipped; a truncated item, or the end tag, ends the walk; windows
/// whose `max` is below `min`, or of a resource type other than memory,
/// I/O or bus numbers, are left out.
pub fn parse_pci_host_resources(mut r: &[u8]) -> PciHostBridge {
    let mut host = PciHostBridge {
        windows: [NO_WINDOW; MAX_PCI_WINDOWS],
        count: 0,
        ecam_base: None,
    };
    while let Some(&tag) = r.first() {
        let (data, next) = if tag & 0x80 != 0 {
            let Some(len) = r.get(1..3).map(|l| usize::from(le16(l, 0))) else {
                break;
            };
            let Some(data) = r.get(3..3 + len) else { break };
            (data, 3 + len)
        } else {
            if tag >> 3 == 0x0f {
                break; // end tag
            }
            let len = usize::from(tag & 7);
            let Some(data) = r.get(1..1 + len) else { break };
            (data, 1 + len)
        };
        // Address space descriptors: resource type, general flags, type
        // specific flags, then granularity, min, max, translation, length
        // in the descriptor's width.
        let window = match tag {
            0x88 if data.len() >= 13 => Some((
                u64::from(le16(data, 5)),
                u64::from(le16(data, 7)),
                u64::from(le16(data, 9)),
                u64::from(le16(data, 11)),
            )),
            0x87 if data.len() >= 23 => Some((
                u64::from(le32(data, 7)),
                u64::from(le32(data, 11)),
                u64::from(le32(data, 15)),
                u64::from(le32(data, 19)),
            )),
            0x8a if data.len() >= 43 => Some((
                le64(data, 11),
                le64(data, 19),
                le64(data, 27),
                le64(data, 35),
            )),
            _ => None,
        };
        if let Some((min, max, translation, length)) = window {
            let kind = match data[0] {
                0 => Some(PciWindowKind::Memory {
                    prefetchable: (data[2] >> 1) & 3 == 3,
                }),
                1 => Some(PciWindowKind::Io),
                2 => Some(PciWindowKind::BusNumbers),
                _ => None,
            };
            if let Some(kind) = kind
                && max >= min
                && host.count < MAX_PCI_WINDOWS
            {
                host.windows[host.count] = PciWindow {
                    kind,
                    min,
                    max,
                    translation,
                    length,
                };
                host.count += 1;
            }
        }
        r = &r[next..];
    }
    host
}

/// A validated DSDT in memory; offsets are from its start.
struct Aml<'a> {
    mem: &'a dyn PhysMemory,
    addr: u64,
    len: u64,
}

impl Aml<'_> {
    /// Reads up to `buf.len()` bytes at `off`, clipped to the table's
    /// end; returns how many.
    fn read(&self, off: u64, buf: &mut [u8]) -> Result<usize, AcpiError> {
        let n = (self.len.saturating_sub(off)).min(buf.len() as u64) as usize;
        let unreadable = AcpiError::Unreadable {
            what: WHAT,
            addr: self.addr,
        };
        if n > 0 {
            let at = self.addr.checked_add(off).ok_or(unreadable)?;
            if !self.mem.read(at, &mut buf[..n]) {
                return Err(unreadable);
            }
        }
        Ok(n)
    }

    /// The first offset in `[from, to)` where one of `pats` starts, and
    /// which one.
    fn find(&self, from: u64, to: u64, pats: &[&[u8]]) -> Result<Option<(u64, usize)>, AcpiError> {
        const CHUNK: usize = 4096;
        const OVERLAP: usize = 16;
        let mut buf = [0u8; CHUNK + OVERLAP];
        let to = to.min(self.len);
        let mut off = from;
        while off < to {
            let n = self.read(off, &mut buf)?;
            let b = &buf[..n];
            let limit = ((to - off) as usize).min(CHUNK).min(n);
            for i in 0..limit {
                for (k, p) in pats.iter().enumerate() {
                    if b[i..].starts_with(p) {
                        return Ok(Some((off + i as u64, k)));
                    }
                }
            }
            off += CHUNK as u64;
        }
        Ok(None)
    }

    /// The first offset in `[from, to)` where `pat` starts, outside the
    /// devices nested there (skipped whole by their length).
    fn find_in_scope(&self, mut from: u64, to: u64, pat: &[u8]) -> Result<Option<u64>, AcpiError> {
        let device: &[u8] = b"\x5b\x82";
        loop {
            match self.find(from, to, &[pat, device])? {
                None => return Ok(None),
                Some((at, 0)) => return Ok(Some(at)),
                Some((at, _)) => match self.device(at)? {
                    Some((_, nested_end)) if nested_end > at + 2 => from = nested_end,
                    _ => from = at + 2,
                },
            }
        }
    }

    /// Decodes the integer constant (`Zero`, `One`, `Ones` or a byte,
    /// word, dword or qword prefix) at `off`.
    fn integer(&self, off: u64) -> Result<Option<u64>, AcpiError> {
        let mut b = [0u8; 9];
        let n = self.read(off, &mut b)?;
        let width = match b[0] {
            0x00 => return Ok(Some(0)),
            0x01 => return Ok(Some(1)),
            0xff => return Ok(Some(u64::MAX)),
            0x0a => 1,
            0x0b => 2,
            0x0c => 4,
            0x0e => 8,
            _ => return Ok(None),
        };
        if n < 1 + width {
            return Ok(None);
        }
        let mut le = [0u8; 8];
        le[..width].copy_from_slice(&b[1..=width]);
        Ok(Some(u64::from_le_bytes(le)))
    }

    /// Decodes the `PkgLength` at `off`: `(length, bytes it takes)`.
    fn pkg_length(&self, off: u64) -> Result<Option<(u64, u64)>, AcpiError> {
        let mut b = [0u8; 4];
        let n = self.read(off, &mut b)?;
        let lead = b[0];
        let extra = usize::from(lead >> 6);
        if n == 0 || n < 1 + extra {
            return Ok(None);
        }
        let mut len = if extra == 0 {
            u64::from(lead & 0x3f)
        } else {
            u64::from(lead & 0x0f)
        };
        for (i, byte) in b[1..=extra].iter().enumerate() {
            len |= u64::from(*byte) << (4 + 8 * i);
        }
        Ok(Some((len, 1 + extra as u64)))
    }

    /// The `Device` at `off` (its `DeviceOp`): the offset after its name
    /// and the offset of its end.
    fn device(&self, off: u64) -> Result<Option<(u64, u64)>, AcpiError> {
        let Some((len, n)) = self.pkg_length(off + 2)? else {
            return Ok(None);
        };
        let end = off + 2 + len;
        let mut name = off + 2 + n;
        let mut b = [0u8; 1];
        // Root and parent prefixes, then a NameSeg, a dual or a multi name
        // path.
        for _ in 0..=255 {
            if self.read(name, &mut b)? == 0 {
                return Ok(None);
            }
            match b[0] {
                b'\\' | b'^' => name += 1,
                0x2e => return Ok(Some((name + 9, end))),
                0x2f => {
                    if self.read(name + 1, &mut b)? == 0 {
                        return Ok(None);
                    }
                    return Ok(Some((name + 2 + 4 * u64::from(b[0]), end)));
                }
                _ => return Ok(Some((name + 4, end))),
            }
        }
        Ok(None)
    }
}

/// The host bridge IDs after `Name (_HID, …)`: strings and EISA IDs.
const HOST_HIDS: [&[u8]; 4] = [
    b"\x08_HID\x0dPNP0A08\x00",
    b"\x08_HID\x0dPNP0A03\x00",
    b"\x08_HID\x0c\x41\xd0\x0a\x08",
    b"\x08_HID\x0c\x41\xd0\x0a\x03",
];

/// Reads the `_CRS` of the device whose `_HID` is at `hid`, if it has a
/// static one with at least one window.
fn host_bridge_at(aml: &Aml<'_>, hid: u64) -> Result<Option<PciHostBridge>, AcpiError> {
    // The nearest DeviceOp before the `_HID` whose scope holds it.
    let lo = hid.saturating_sub(MAX_HID_DEPTH).max(HEADER_LEN as u64);
    let mut at = hid;
    let mut scope = None;
    while at > lo {
        at -= 1;
        let mut op = [0u8; 2];
        if aml.read(at, &mut op)? == 2
            && op == [0x5b, 0x82]
            && let Some((body, end)) = aml.device(at)?
            && body <= hid
            && end > hid
        {
            scope = Some((body, end.min(aml.len)));
            break;
        }
    }
    let Some((body, end)) = scope else {
        return Ok(None);
    };
    // The first `Name (_CRS, Buffer)` in the device's own scope.
    let crs: &[u8] = b"\x08_CRS\x11";
    let Some(at) = aml.find_in_scope(body, end, crs)? else {
        return Ok(None);
    };
    // Buffer: PkgLength, BufferSize (an integer), then the bytes.
    let pkg = at + crs.len() as u64;
    let Some((len, n)) = aml.pkg_length(pkg)? else {
        return Ok(None);
    };
    let buffer_end = (pkg + len).min(end);
    let mut size = [0u8; 1];
    aml.read(pkg + n, &mut size)?;
    let size_len = match size[0] {
        0x00 | 0x01 | 0xff => 1,
        0x0a => 2,
        0x0b => 3,
        0x0c => 5,
        _ => return Ok(None),
    };
    let start = pkg + n + size_len;
    let mut buf = [0u8; MAX_CRS_LEN];
    let want = (buffer_end.saturating_sub(start) as usize).min(MAX_CRS_LEN);
    let got = aml.read(start, &mut buf[..want])?;
    let mut host = parse_pci_host_resources(&buf[..got]);
    host.ecam_base = ecam_base(aml, body, end)?;
    Ok((host.count > 0).then_some(host))
}

/// The host bridge's `_CBA` (its ECAM base, PCI Firmware Specification
/// 4.1.3) in the device's own scope: `Name (_CBA, n)` or a method whose
/// body is `Return (n)`, as QEMU's `microvm` and `virt` write it.
fn ecam_base(aml: &Aml<'_>, body: u64, end: u64) -> Result<Option<u64>, AcpiError> {
    let Some(at) = aml.find_in_scope(body, end, b"_CBA")? else {
        return Ok(None);
    };
    let mut before = [0u8; 1];
    aml.read(at.saturating_sub(1), &mut before)?;
    // After a NameOp the integer follows the name; in a method, the
    // method flags and a ReturnOp (0xa4) come first.
    let value = if before[0] == 0x08 {
        at + 4
    } else {
        let mut tail = [0u8; 2];
        aml.read(at + 4, &mut tail)?;
        if tail[1] != 0xa4 {
            return Ok(None);
        }
        at + 6
    };
    aml.integer(value)
}

/// Finds the first PCI host bridge with a static, non-empty `_CRS` in the
/// DSDT at `dsdt` (validated here) and reads its windows; `None` when
/// there is none.
pub fn find_pci_host_bridge(
    mem: &dyn PhysMemory,
    dsdt: u64,
) -> Result<Option<PciHostBridge>, AcpiError> {
    let len = check_table(mem, WHAT, b"DSDT", dsdt)?;
    let aml = Aml {
        mem,
        addr: dsdt,
        len: u64::from(len),
    };
    let mut from = HEADER_LEN as u64;
    while let Some((hid, _)) = aml.find(from, aml.len, &HOST_HIDS)? {
        if let Some(host) = host_bridge_at(&aml, hid)? {
            return Ok(Some(host));
        }
        from = hid + 1;
    }
    Ok(None)
}
