//! The Generic Timer Description Table (GTDT): which interrupts the Arm
//! generic timer raises, and where its memory-mapped frames are.

use super::{AcpiError, PhysMemory, le32, le64, read_table};

const WHAT: &str = "GTDT";
/// Through the EL2 timer's flags: ACPI 5.0's table. Later revisions add
/// `CntReadBase`, platform timers and the virtual EL2 timer.
const MIN_LEN: usize = 80;

/// One timer interrupt: its GSIV (the GIC interrupt ID, a PPI) and how
/// it is signalled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerInterrupt {
    /// the interrupt ID (for the per-CPU timers, a PPI: 16–31)
    pub gsiv: u32,
    /// flags bit 0: edge-triggered (else level)
    pub edge: bool,
    /// flags bit 1: active low (else active high)
    pub active_low: bool,
    /// flags bit 2: the timer keeps running in low-power states
    pub always_on: bool,
}

impl TimerInterrupt {
    fn new(gsiv: u32, flags: u32) -> Option<Self> {
        (gsiv != 0).then_some(TimerInterrupt {
            gsiv,
            edge: flags & 1 != 0,
            active_low: flags & 2 != 0,
            always_on: flags & 4 != 0,
        })
    }
}

/// The GTDT's per-CPU timers and memory-mapped counter frames. A timer
/// whose GSIV is 0 is absent (`None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gtdt {
    /// the table's revision
    pub revision: u8,
    /// physical address of `CNTControlBase`, when the table gives one
    /// (0 and all-ones mean none)
    pub cnt_control_base: Option<u64>,
    /// physical address of `CNTReadBase` (revision 2 and later)
    pub cnt_read_base: Option<u64>,
    /// the secure EL1 physical timer
    pub secure_el1: Option<TimerInterrupt>,
    /// the non-secure EL1 physical timer (`CNTP`)
    pub el1_physical: Option<TimerInterrupt>,
    /// the EL1 virtual timer (`CNTV`): the one a guest kernel uses
    pub el1_virtual: Option<TimerInterrupt>,
    /// the non-secure EL2 physical timer (`CNTHP`)
    pub el2_physical: Option<TimerInterrupt>,
    /// the non-secure EL2 virtual timer (`CNTHV`; revision 3 and later)
    pub el2_virtual: Option<TimerInterrupt>,
    /// how many platform timers (GT blocks, SBSA watchdogs) follow
    /// (revision 2 and later); they are not decoded here
    pub platform_timers: u32,
}

fn address(a: u64) -> Option<u64> {
    (a != 0 && a != u64::MAX).then_some(a)
}

/// Reads the GTDT at `addr` (validated, `len` bytes).
pub fn read_gtdt(mem: &dyn PhysMemory, addr: u64, len: u32) -> Result<Gtdt, AcpiError> {
    let mut buf = [0u8; 104];
    let g = read_table(mem, WHAT, addr, len, MIN_LEN, &mut buf)?;
    let timer = |at: usize| TimerInterrupt::new(le32(g, at), le32(g, at + 4));
    let (cnt_read_base, platform_timers) = if g.len() >= 96 {
        (address(le64(g, 80)), le32(g, 88))
    } else {
        (None, 0)
    };
    // The platform timers must fit in the table: each is at least a GT
    // block with no frames (20 bytes).
    if platform_timers != 0 {
        let offset = le32(g, 92);
        let room = len.checked_sub(offset).filter(|_| offset >= 96);
        if room.is_none_or(|r| platform_timers > r / 20) {
            return Err(AcpiError::BadTable { what: WHAT, addr });
        }
    }
    Ok(Gtdt {
        revision: g[8],
        cnt_control_base: address(le64(g, 36)),
        cnt_read_base,
        secure_el1: timer(48),
        el1_physical: timer(56),
        el1_virtual: timer(64),
        el2_physical: timer(72),
        el2_virtual: if g.len() >= 104 { timer(96) } else { None },
        platform_timers,
    })
}
