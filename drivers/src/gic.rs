//! The Arm GICv2 and GICv3 interrupt controllers, only as far as a CPU that keeps
//! interrupts masked needs it: a private peripheral interrupt (the generic
//! timer's) or a shared peripheral interrupt (a device's, e.g. virtio-mmio)
//! routed to this CPU's interface, so it wakes `wfi`. Nothing is ever
//! acknowledged: the CPU never takes the interrupt, and a level-sensitive
//! line (shared interrupts are configured so) stops being pending when its
//! source drops it.

use crate::mmio::Mmio;

const GICD_CTLR: usize = 0x000;
const GICD_IGROUPR: usize = 0x080;
const GICD_ISENABLER: usize = 0x100;
const GICD_ICENABLER: usize = 0x180;
const GICD_IPRIORITYR: usize = 0x400;
const GICD_ITARGETSR: usize = 0x800;
const GICD_ICFGR: usize = 0xc00;
const GICD_IROUTER: usize = 0x6000;
const GICD_PIDR2: usize = 0xfe8;
const GICC_CTLR: usize = 0x000;
const GICC_PMR: usize = 0x004;
const GICC_IAR: usize = 0x00c;
const GICC_EOIR: usize = 0x010;

/// Why the controller was not taken into use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GicError {
    /// the distributor does not identify as a GICv2 (architecture revision)
    NotGicv2(u32),
    /// the distributor does not identify as a GICv3 or GICv4
    NotGicv3(u32),
    /// the interrupt is not a private peripheral interrupt (16..32)
    NotPpi(u32),
    /// the interrupt is not a shared peripheral interrupt (32..1020)
    NotSpi(u32),
    /// the redistributor did not wake up
    Asleep,
}

impl core::fmt::Display for GicError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            GicError::NotGicv2(rev) => write!(f, "not a GICv2 (architecture revision {rev})"),
            GicError::NotGicv3(rev) => write!(f, "not a GICv3 (architecture revision {rev})"),
            GicError::NotPpi(id) => write!(f, "interrupt {id} is not a private peripheral"),
            GicError::NotSpi(id) => write!(f, "interrupt {id} is not a shared peripheral"),
            GicError::Asleep => f.write_str("the GIC redistributor stayed asleep"),
        }
    }
}

/// Sets the `width`-bit field of interrupt `id` in the distributor's
/// bank of registers at `bank` (32 / `width` interrupts per register).
fn set_field(regs: &Mmio, bank: usize, id: u32, width: u32, value: u32) {
    let per_reg = 32 / width;
    let reg = bank + 4 * (id / per_reg) as usize;
    let shift = (id % per_reg) * width;
    let mask = ((1u64 << width) - 1) as u32;
    let old = regs.read32(reg) & !(mask << shift);
    regs.write32(reg, old | (value & mask) << shift);
}

/// Turns shared interrupt `id` on or off in a distributor (the same
/// registers in a GICv2 and a GICv3). Out-of-range ids are ignored.
fn enable_spi(dist: &Mmio, id: u32, on: bool) {
    if !(32..1020).contains(&id) {
        return;
    }
    let bank = if on { GICD_ISENABLER } else { GICD_ICENABLER };
    dist.write32(bank + 4 * (id / 32) as usize, 1 << (id % 32));
}

/// Configures shared interrupt `id` in a distributor: group 1, middle
/// priority, level-sensitive. (Targeting and enabling differ by version.)
fn configure_spi(dist: &Mmio, id: u32) -> Result<(), GicError> {
    if !(32..1020).contains(&id) {
        return Err(GicError::NotSpi(id));
    }
    set_field(dist, GICD_IGROUPR, id, 1, 1);
    set_field(dist, GICD_IPRIORITYR, id, 8, 0x80);
    set_field(dist, GICD_ICFGR, id, 2, 0);
    Ok(())
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
        // Both groups on, and AckCtl: where the interface sees the kernel
        // as its secure side (a GIC without security extensions), GICC_IAR
        // then acknowledges our group-1 interrupts instead of answering
        // 1022.
        self.cpu.write32(GICC_CTLR, 0b111);
        Ok(())
    }
}

impl Gicv2 {
    /// Acknowledges the highest-priority pending interrupt: the value of
    /// GICC_IAR (the interrupt's id in bits 0..10; 1020..1024: none), to
    /// be given back to [`Gicv2::end`].
    pub fn acknowledge(&self) -> u32 {
        self.cpu.read32(GICC_IAR)
    }

    /// Ends (drops the priority of and deactivates) the interrupt
    /// [`Gicv2::acknowledge`] returned.
    pub fn end(&self, iar: u32) {
        self.cpu.write32(GICC_EOIR, iar);
    }

    /// Turns shared interrupt `id` on or off at the distributor.
    pub fn enable_spi(&self, id: u32, on: bool) {
        enable_spi(&self.dist, id, on);
    }

    /// Routes shared peripheral interrupt `id` (a device's) to this CPU
    /// (CPU interface 0: Basalt runs on one CPU) as level-sensitive, group
    /// 1, middle priority, enabled, so it wakes `wfi` while the CPU masks
    /// it. The distributor and interface must already be on
    /// ([`Gicv2::wake_on_ppi`] turns them on).
    pub fn wake_on_spi(&self, id: u32) -> Result<(), GicError> {
        configure_spi(&self.dist, id)?;
        set_field(&self.dist, GICD_ITARGETSR, id, 8, 1);
        set_field(&self.dist, GICD_ISENABLER, id, 1, 1);
        Ok(())
    }
}

const GICR_WAKER: usize = 0x014;
/// The redistributor's SGI/PPI frame follows its control frame.
const GICR_SGI_FRAME: u64 = 0x1_0000;
const GICR_IGROUPR0: usize = 0x080;
const GICR_ISENABLER0: usize = 0x100;
const GICR_IPRIORITYR: usize = 0x400;
const GICD_PIDR2_V3: usize = 0xffe8;

/// A GICv3: its distributor and this CPU's redistributor. The CPU
/// interface is a set of system registers, which the arch crate enables
/// (`basalt_arch::cpu::enable_gicv3_cpu_interface`).
pub struct Gicv3 {
    dist: Mmio,
    /// the distributor's physical address, for its registers beyond the
    /// first 4 KiB
    dist_base: u64,
    redist: Mmio,
    sgi: Mmio,
}

impl Gicv3 {
    /// The GICv3 with the distributor at `dist` and the first
    /// redistributor (this CPU's on a one-CPU machine) at `redist`, after
    /// checking the distributor's revision.
    ///
    /// # Safety
    /// Both must be the register windows of the GIC the device tree names
    /// (the redistributor's 128 KiB), identity-mapped as device memory, and
    /// driven by nothing else.
    #[allow(unsafe_code)]
    pub unsafe fn new(dist: u64, redist: u64) -> Result<Gicv3, GicError> {
        // SAFETY: forwarded contract.
        let d = unsafe { Mmio::new(dist) };
        // SAFETY: forwarded contract.
        let r = unsafe { Mmio::new(redist) };
        // SAFETY: forwarded contract (the second 64 KiB frame).
        let sgi = unsafe { Mmio::new(redist + GICR_SGI_FRAME) };
        // The distributor's ID registers sit at the end of its 64 KiB.
        // SAFETY: forwarded contract.
        let id = unsafe { Mmio::new(dist + (GICD_PIDR2_V3 as u64 & !0xfff)) };
        let rev = (id.read32(GICD_PIDR2_V3 & 0xfff) >> 4) & 0xf;
        if rev != 3 && rev != 4 {
            return Err(GicError::NotGicv3(rev));
        }
        Ok(Gicv3 {
            dist: d,
            dist_base: dist,
            redist: r,
            sgi,
        })
    }

    /// Routes private peripheral interrupt `id` to this CPU (group 1,
    /// middle priority, enabled), wakes the redistributor and enables
    /// group 1 with affinity routing in the distributor, so the interrupt
    /// wakes `wfi` even while the CPU masks it (once the CPU interface is
    /// on).
    pub fn wake_on_ppi(&self, id: u32) -> Result<(), GicError> {
        if !(16..32).contains(&id) {
            return Err(GicError::NotPpi(id));
        }
        // ARE, group 1 (non-secure), group 0.
        self.dist.write32(GICD_CTLR, 0x13);
        let waker = self.redist.read32(GICR_WAKER);
        self.redist.write32(GICR_WAKER, waker & !(1 << 1));
        let mut spins = 0u32;
        while self.redist.read32(GICR_WAKER) & (1 << 2) != 0 {
            spins += 1;
            if spins > 1_000_000 {
                return Err(GicError::Asleep);
            }
            core::hint::spin_loop();
        }
        let bit = 1u32 << id;
        let groups = self.sgi.read32(GICR_IGROUPR0);
        self.sgi.write32(GICR_IGROUPR0, groups | bit);
        let prio_reg = GICR_IPRIORITYR + (id as usize & !3);
        let shift = (id % 4) * 8;
        let prio = self.sgi.read32(prio_reg) & !(0xff << shift);
        self.sgi.write32(prio_reg, prio | 0x80 << shift);
        self.sgi.write32(GICR_ISENABLER0, bit);
        Ok(())
    }

    /// Turns shared interrupt `id` on or off at the distributor.
    pub fn enable_spi(&self, id: u32, on: bool) {
        enable_spi(&self.dist, id, on);
    }

    /// Routes shared peripheral interrupt `id` (a device's) to the CPU
    /// with affinity 0.0.0.0 (Basalt runs on one CPU) as level-sensitive,
    /// group 1, middle priority, enabled, so it wakes `wfi` while the CPU
    /// masks it. Affinity routing and the distributor must already be on
    /// ([`Gicv3::wake_on_ppi`] turns them on).
    pub fn wake_on_spi(&self, id: u32) -> Result<(), GicError> {
        configure_spi(&self.dist, id)?;
        let router = GICD_IROUTER + 8 * id as usize;
        // SAFETY: the page of the distributor (its 64 KiB window, per the
        // constructor's contract) that holds this interrupt's router.
        #[allow(unsafe_code)]
        let page = unsafe { Mmio::new(self.dist_base + (router & !0xfff) as u64) };
        page.write32(router & 0xfff, 0);
        page.write32((router & 0xfff) + 4, 0);
        set_field(&self.dist, GICD_ISENABLER, id, 1, 1);
        Ok(())
    }
}
