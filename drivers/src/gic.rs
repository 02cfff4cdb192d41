//! The Arm GICv2 interrupt controller, only as far as a CPU that keeps
//! interrupts masked needs it: a private peripheral interrupt (the generic
//! timer's) routed to this CPU's interface, so it wakes `wfi`. Nothing is
//! ever acknowledged: the CPU never takes the interrupt, and a level-
//! sensitive line stops being pending when its source drops it.

use crate::mmio::Mmio;

const GICD_CTLR: usize = 0x000;
const GICD_IGROUPR: usize = 0x080;
const GICD_ISENABLER: usize = 0x100;
const GICD_IPRIORITYR: usize = 0x400;
const GICD_PIDR2: usize = 0xfe8;
const GICC_CTLR: usize = 0x000;
const GICC_PMR: usize = 0x004;

/// Why the controller was not taken into use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GicError {
    /// the distributor does not identify as a GICv2 (architecture revision)
    NotGicv2(u32),
    /// the interrupt is not a private peripheral interrupt (16..32)
    NotPpi(u32),
}

impl core::fmt::Display for GicError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            GicError::NotGicv2(rev) => write!(f, "not a GICv2 (architecture revision {rev})"),
            GicError::NotPpi(id) => write!(f, "interrupt {id} is not a private peripheral"),
        }
    }
}

/// A GICv2: its distributor and this CPU's interface.
pub struct Gicv2 {
    dist: Mmio,
    cpu: Mmio,
}

impl Gicv2 {
    /// The GICv2 with the distributor at `dist` and the CPU interface at
    /// `cpu` (the device tree's first two `reg` entries), after checking
    /// the distributor's revision.
    ///
    /// # Safety
    /// Both must be the register windows of the GIC the device tree names,
    /// identity-mapped as device memory, and driven by nothing else.
    #[allow(unsafe_code)]
    pub unsafe fn new(dist: u64, cpu: u64) -> Result<Gicv2, GicError> {
        // SAFETY: forwarded contract.
        let dist = unsafe { Mmio::new(dist) };
        // SAFETY: forwarded contract.
        let cpu = unsafe { Mmio::new(cpu) };
        let rev = (dist.read32(GICD_PIDR2) >> 4) & 0xf;
        if rev != 2 && rev != 1 {
            return Err(GicError::NotGicv2(rev));
        }
        Ok(Gicv2 { dist, cpu })
    }

    /// Routes private peripheral interrupt `id` to this CPU's interface
    /// (group 1, middle priority, enabled) and enables the distributor and
    /// the interface, so the interrupt wakes `wfi` even while the CPU masks
    /// it.
    pub fn wake_on_ppi(&self, id: u32) -> Result<(), GicError> {
        if !(16..32).contains(&id) {
            return Err(GicError::NotPpi(id));
        }
        let bit = 1u32 << id;
        // Group 1 (read-as-zero, write-ignored where only the secure world
        // may change groups; firmware then already made it group 1).
        let groups = self.dist.read32(GICD_IGROUPR);
        self.dist.write32(GICD_IGROUPR, groups | bit);
        let prio_reg = GICD_IPRIORITYR + (id as usize & !3);
        let shift = (id % 4) * 8;
        let prio = self.dist.read32(prio_reg) & !(0xff << shift);
        self.dist.write32(prio_reg, prio | 0x80 << shift);
        self.dist.write32(GICD_ISENABLER, bit);
        self.dist.write32(GICD_CTLR, 0b11);
        self.cpu.write32(GICC_PMR, 0xff);
        self.cpu.write32(GICC_CTLR, 0b11);
        Ok(())
    }
}
