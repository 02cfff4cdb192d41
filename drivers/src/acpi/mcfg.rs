//! The PCI Express memory-mapped configuration table (MCFG): where each
//! PCI segment's ECAM window is.

use super::{AcpiError, HEADER_LEN, PhysMemory, le16, le64};

const WHAT: &str = "MCFG";
/// The header and 8 reserved bytes.
const ENTRIES_AT: u32 = HEADER_LEN as u32 + 8;
const ENTRY_LEN: u32 = 16;

/// One ECAM window: configuration space of buses `start_bus..=end_bus`
/// of a PCI segment, 1 MiB per bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EcamWindow {
    /// physical address of bus 0's configuration space (as the MCFG
    /// gives it: bus `start_bus` is at `base + (start_bus << 20)`)
    pub base: u64,
    /// the PCI segment group
    pub segment: u16,
    /// the first bus decoded
    pub start_bus: u8,
    /// the last bus decoded
    pub end_bus: u8,
}

impl EcamWindow {
    /// Where the configuration space of `bus`, `device`, `function`
    /// starts, or `None` when the window does not decode that bus or the
    /// device/function is out of range.
    pub fn config_address(&self, bus: u8, device: u8, function: u8) -> Option<u64> {
        if bus < self.start_bus || bus > self.end_bus || device > 31 || function > 7 {
            return None;
        }
        let off = (u64::from(bus) << 20) | (u64::from(device) << 15) | (u64::from(function) << 12);
        self.base.checked_add(off)
    }

    /// The physical range the window decodes: `(start, length)`.
    pub fn range(&self) -> (u64, u64) {
        let buses = u64::from(self.end_bus.saturating_sub(self.start_bus)) + 1;
        (
            self.base.wrapping_add(u64::from(self.start_bus) << 20),
            buses << 20,
        )
    }
}

/// Reads the ECAM windows of the MCFG at `addr` (validated, `len` bytes)
/// into `out`; returns how many (at most `out.len()`).
///
/// The table must hold a whole number of entries; an entry whose end bus
/// is below its start bus, whose base is 0 or not 1 MiB-aligned, or whose
/// window would wrap the address space is an error.
pub fn read_mcfg(
    mem: &dyn PhysMemory,
    addr: u64,
    len: u32,
    out: &mut [EcamWindow],
) -> Result<usize, AcpiError> {
    if len < ENTRIES_AT || !(len - ENTRIES_AT).is_multiple_of(ENTRY_LEN) {
        return Err(AcpiError::BadTable { what: WHAT, addr });
    }
    let count = ((len - ENTRIES_AT) / ENTRY_LEN) as usize;
    let mut n = 0;
    for i in 0..count.min(out.len()) {
        let at = addr
            .checked_add(u64::from(ENTRIES_AT) + i as u64 * u64::from(ENTRY_LEN))
            .ok_or(AcpiError::Unreadable { what: WHAT, addr })?;
        let mut e = [0u8; ENTRY_LEN as usize];
        if !mem.read(at, &mut e) {
            return Err(AcpiError::Unreadable { what: WHAT, addr });
        }
        let w = EcamWindow {
            base: le64(&e, 0),
            segment: le16(&e, 8),
            start_bus: e[10],
            end_bus: e[11],
        };
        let end = w
            .base
            .checked_add((u64::from(w.end_bus) + 1) << 20)
            .and_then(|e| e.checked_sub(1));
        if w.end_bus < w.start_bus || w.base == 0 || w.base & 0xf_ffff != 0 || end.is_none() {
            return Err(AcpiError::BadEntry {
                what: WHAT,
                addr: at,
            });
        }
        out[n] = w;
        n += 1;
    }
    Ok(n)
}
