//! The Arm GIC in the MADT (signature `APIC`): the distributor (GICD),
//! each CPU's interface (GICC), redistributor ranges (GICR), GICv2m MSI
//! frames and ITSes.
//!
//! The MADT is walked straight from memory one entry at a time, so a
//! machine with hundreds of CPUs needs no buffer to match; every entry's
//! length is checked against the table's.

use super::{AcpiError, HEADER_LEN, PhysMemory, le16, le32, le64};

const WHAT: &str = "MADT";
/// The MADT's fixed part: the header, then the local interrupt controller
/// address and flags (x86 only; zero on Arm).
const ENTRIES_AT: u32 = HEADER_LEN as u32 + 8;
/// Larger MADTs are refused: 4096 CPUs' GICC entries are 320 KiB.
const MAX_MADT_LEN: u32 = 1 << 20;

const GICC: u8 = 0x0b;
const GICD: u8 = 0x0c;
const GIC_MSI_FRAME: u8 = 0x0d;
const GICR: u8 = 0x0e;
const GIC_ITS: u8 = 0x0f;

/// The architecture version of the GIC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GicVersion {
    /// GICv1 (treated as v2 by drivers: same memory-mapped CPU interface)
    V1,
    /// GICv2: memory-mapped CPU interface (GICC)
    V2,
    /// GICv3: redistributors (GICR) and system-register CPU interface
    V3,
    /// GICv4: GICv3 with direct virtual interrupt injection
    V4,
}

/// The GIC distributor (MADT entry type 0xC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GicDistributor {
    /// physical address of the distributor's registers
    pub base: u64,
    /// the GIC's hardware ID
    pub gic_id: u32,
    /// the version field as the table has it: 1–4, or 0 when firmware
    /// leaves it to be discovered from the hardware (ACPI 5.0)
    pub version_field: u8,
}

/// One CPU's GIC interface (MADT entry type 0xB, "GICC").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GicCpuInterface {
    /// the GIC's number for this CPU interface
    pub cpu_interface_number: u32,
    /// ACPI processor UID
    pub uid: u32,
    /// flags: bit 0 enabled, bit 1 performance interrupt edge-triggered,
    /// bit 2 VGIC maintenance interrupt edge-triggered, bit 3 online
    /// capable (ACPI 6.5)
    pub flags: u32,
    /// the performance monitoring interrupt (GSIV; 0: none)
    pub performance_gsiv: u32,
    /// physical address of the memory-mapped CPU interface (GICv2; 0 on
    /// a GICv3 without the legacy interface)
    pub base: u64,
    /// physical address of the virtual CPU interface (GICV; 0: none)
    pub gicv: u64,
    /// physical address of the hypervisor control interface (GICH; 0:
    /// none)
    pub gich: u64,
    /// the VGIC maintenance interrupt (GSIV; 0: none)
    pub vgic_maintenance_gsiv: u32,
    /// physical address of this CPU's redistributor (GICv3) when the
    /// MADT gives them per CPU rather than as GICR ranges; 0 otherwise
    pub gicr_base: u64,
    /// the CPU's MPIDR affinity fields (ACPI 5.1 and later; 0 before)
    pub mpidr: u64,
}

impl GicCpuInterface {
    /// Whether the CPU is enabled (flags bit 0).
    pub fn enabled(&self) -> bool {
        self.flags & 1 != 0
    }

    /// Whether a disabled CPU can be brought online later (flags bit 3).
    pub fn online_capable(&self) -> bool {
        self.flags & (1 << 3) != 0
    }
}

/// A GICv3 redistributor discovery range (MADT entry type 0xE): a region
/// holding consecutive redistributors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GicRedistributor {
    /// physical address of the first redistributor
    pub base: u64,
    /// length of the range in bytes
    pub length: u32,
}

/// A GICv2m MSI frame (MADT entry type 0xD).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GicMsiFrame {
    /// the frame's ID
    pub id: u32,
    /// physical address of the frame
    pub base: u64,
    /// when flags bit 0 is set, the SPIs it raises (`(base, count)`);
    /// otherwise they are read from the frame's `MSI_TYPER`
    pub spis: Option<(u16, u16)>,
}

/// A GICv3 Interrupt Translation Service (MADT entry type 0xF).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GicIts {
    /// the ITS's ID (as IORT refers to it)
    pub id: u32,
    /// physical address of its registers
    pub base: u64,
}

/// What the kernel needs of the GIC to take interrupts on the boot CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gic {
    /// the version: the distributor's field, or, when that is 0, v3 if
    /// the MADT names any redistributor and v2 otherwise
    pub version: GicVersion,
    /// the distributor (the first, should firmware list several)
    pub distributor: GicDistributor,
    /// the boot CPU's interface: the enabled GICC whose MPIDR matches the
    /// one asked for, else the first enabled one
    pub boot_cpu: Option<GicCpuInterface>,
    /// how many GICC entries are enabled
    pub enabled_cpus: u32,
    /// how many GICC entries there are, enabled or not
    pub cpu_entries: u32,
    /// the first redistributor range (GICv3; `None` when redistributors
    /// are given per CPU, in [`GicCpuInterface::gicr_base`])
    pub redistributor: Option<GicRedistributor>,
    /// how many redistributor ranges there are
    pub redistributor_ranges: u32,
    /// the first GICv2m MSI frame
    pub msi_frame: Option<GicMsiFrame>,
    /// how many MSI frames there are
    pub msi_frames: u32,
    /// the first ITS
    pub its: Option<GicIts>,
    /// how many ITSes there are
    pub its_count: u32,
}

/// MPIDR's affinity fields (Aff3, Aff2, Aff1, Aff0).
const MPIDR_AFFINITY: u64 = 0xff_00ff_ffff;

/// Calls `f` with each MADT entry's type, bytes and address, in order;
/// stops early when `f` returns false. An entry shorter than its 2-byte
/// header, or running past the table, is an error: a zero length would
/// otherwise never advance.
fn for_each_entry(
    mem: &dyn PhysMemory,
    addr: u64,
    len: u32,
    mut f: impl FnMut(u8, &[u8], u64) -> bool,
) -> Result<(), AcpiError> {
    if !(ENTRIES_AT..=MAX_MADT_LEN).contains(&len) {
        return Err(AcpiError::BadTable { what: WHAT, addr });
    }
    let mut buf = [0u8; 256];
    let mut at = ENTRIES_AT;
    while at < len {
        let entry = addr
            .checked_add(u64::from(at))
            .ok_or(AcpiError::Unreadable { what: WHAT, addr })?;
        let bad = AcpiError::BadEntry {
            what: WHAT,
            addr: entry,
        };
        if len - at < 2 {
            return Err(bad);
        }
        if !mem.read(entry, &mut buf[..2]) {
            return Err(AcpiError::Unreadable { what: WHAT, addr });
        }
        let (kind, n) = (buf[0], u32::from(buf[1]));
        if n < 2 || n > len - at {
            return Err(bad);
        }
        let e = &mut buf[..n as usize];
        if !mem.read(entry, e) {
            return Err(AcpiError::Unreadable { what: WHAT, addr });
        }
        if !f(kind, e, entry) {
            break;
        }
        at += n;
    }
    Ok(())
}

/// Decodes a GICC entry; `None` when it is shorter than ACPI 5.0's 40
/// bytes. Fields later versions added read as 0 when absent.
fn gicc(e: &[u8]) -> Option<GicCpuInterface> {
    if e.len() < 40 {
        return None;
    }
    let opt32 = |at: usize| if e.len() >= at + 4 { le32(e, at) } else { 0 };
    let opt64 = |at: usize| if e.len() >= at + 8 { le64(e, at) } else { 0 };
    Some(GicCpuInterface {
        cpu_interface_number: le32(e, 4),
        uid: le32(e, 8),
        flags: le32(e, 12),
        performance_gsiv: le32(e, 20),
        base: le64(e, 32),
        gicv: opt64(40),
        gich: opt64(48),
        vgic_maintenance_gsiv: opt32(56),
        gicr_base: opt64(60),
        mpidr: opt64(68),
    })
}

fn gicd(e: &[u8]) -> Option<GicDistributor> {
    (e.len() >= 21).then(|| GicDistributor {
        gic_id: le32(e, 4),
        base: le64(e, 8),
        version_field: e[20],
    })
}

fn gicr(e: &[u8]) -> Option<GicRedistributor> {
    (e.len() >= 16).then(|| GicRedistributor {
        base: le64(e, 4),
        length: le32(e, 12),
    })
}

fn msi_frame(e: &[u8]) -> Option<GicMsiFrame> {
    (e.len() >= 24).then(|| GicMsiFrame {
        id: le32(e, 4),
        base: le64(e, 8),
        spis: (le32(e, 16) & 1 != 0).then(|| (le16(e, 22), le16(e, 20))),
    })
}

fn its(e: &[u8]) -> Option<GicIts> {
    (e.len() >= 16).then(|| GicIts {
        id: le32(e, 4),
        base: le64(e, 8),
    })
}

/// Puts the entries of type `kind` that `decode` accepts into `out`;
/// returns how many. An entry of that type too short to decode is an
/// error.
fn collect<T: Copy>(
    mem: &dyn PhysMemory,
    addr: u64,
    len: u32,
    kind: u8,
    decode: fn(&[u8]) -> Option<T>,
    out: &mut [T],
) -> Result<usize, AcpiError> {
    let mut n = 0;
    let mut short = None;
    for_each_entry(mem, addr, len, |k, e, at| {
        if k != kind {
            return true;
        }
        match decode(e) {
            Some(v) if n < out.len() => {
                out[n] = v;
                n += 1;
            }
            Some(_) => {}
            None => short = Some(at),
        }
        n < out.len() && short.is_none()
    })?;
    match short {
        Some(at) => Err(AcpiError::BadEntry {
            what: WHAT,
            addr: at,
        }),
        None => Ok(n),
    }
}

/// Every CPU's GIC interface (GICC entries, enabled or not, in table
/// order) of the MADT at `addr` (validated, `len` bytes), put into `out`;
/// returns how many (at most `out.len()`).
pub fn madt_gic_cpus(
    mem: &dyn PhysMemory,
    addr: u64,
    len: u32,
    out: &mut [GicCpuInterface],
) -> Result<usize, AcpiError> {
    collect(mem, addr, len, GICC, gicc, out)
}

/// The GICv3 redistributor ranges (GICR entries) of the MADT, put into
/// `out`; returns how many.
pub fn madt_gic_redistributors(
    mem: &dyn PhysMemory,
    addr: u64,
    len: u32,
    out: &mut [GicRedistributor],
) -> Result<usize, AcpiError> {
    collect(mem, addr, len, GICR, gicr, out)
}

/// The GICv2m MSI frames of the MADT, put into `out`; returns how many.
pub fn madt_gic_msi_frames(
    mem: &dyn PhysMemory,
    addr: u64,
    len: u32,
    out: &mut [GicMsiFrame],
) -> Result<usize, AcpiError> {
    collect(mem, addr, len, GIC_MSI_FRAME, msi_frame, out)
}

/// The GICv3 ITSes of the MADT, put into `out`; returns how many.
pub fn madt_gic_its(
    mem: &dyn PhysMemory,
    addr: u64,
    len: u32,
    out: &mut [GicIts],
) -> Result<usize, AcpiError> {
    collect(mem, addr, len, GIC_ITS, its, out)
}

/// Reads the GIC from the MADT at `addr` (validated, `len` bytes): the
/// distributor, its version, the boot CPU's interface and the first
/// redistributor range, MSI frame and ITS, with counts of each.
///
/// `boot_mpidr` (the boot CPU's `MPIDR_EL1`) picks the boot CPU's GICC;
/// without it, or when none matches, the first enabled GICC is taken.
pub fn read_madt_gic(
    mem: &dyn PhysMemory,
    addr: u64,
    len: u32,
    boot_mpidr: Option<u64>,
) -> Result<Gic, AcpiError> {
    let mut distributor = None;
    let (mut first_enabled, mut matching) = (None, None);
    let (mut enabled_cpus, mut cpu_entries) = (0u32, 0u32);
    let (mut redistributor, mut redistributor_ranges) = (None, 0u32);
    let (mut msi, mut msi_frames) = (None, 0u32);
    let (mut first_its, mut its_count) = (None, 0u32);
    let mut any_gicr_base = false;
    let mut short = None;
    for_each_entry(mem, addr, len, |kind, e, at| {
        let ok = match kind {
            GICD => gicd(e).map(|d| {
                distributor.get_or_insert(d);
            }),
            GICC => gicc(e).map(|c| {
                cpu_entries += 1;
                any_gicr_base |= c.gicr_base != 0;
                if c.enabled() {
                    enabled_cpus += 1;
                    first_enabled.get_or_insert(c);
                    if boot_mpidr.is_some_and(|m| m & MPIDR_AFFINITY == c.mpidr & MPIDR_AFFINITY) {
                        matching.get_or_insert(c);
                    }
                }
            }),
            GICR => gicr(e).map(|r| {
                redistributor_ranges += 1;
                redistributor.get_or_insert(r);
            }),
            GIC_MSI_FRAME => msi_frame(e).map(|m| {
                msi_frames += 1;
                msi.get_or_insert(m);
            }),
            GIC_ITS => its(e).map(|i| {
                its_count += 1;
                first_its.get_or_insert(i);
            }),
            _ => Some(()),
        };
        if ok.is_none() {
            short = Some(at);
        }
        ok.is_some()
    })?;
    if let Some(at) = short {
        return Err(AcpiError::BadEntry {
            what: WHAT,
            addr: at,
        });
    }
    let distributor = distributor.ok_or(AcpiError::NoGicDistributor)?;
    let version = match distributor.version_field {
        1 => GicVersion::V1,
        2 => GicVersion::V2,
        3 => GicVersion::V3,
        4 => GicVersion::V4,
        _ if redistributor.is_some() || any_gicr_base => GicVersion::V3,
        _ => GicVersion::V2,
    };
    Ok(Gic {
        version,
        distributor,
        boot_cpu: matching.or(first_enabled),
        enabled_cpus,
        cpu_entries,
        redistributor,
        redistributor_ranges,
        msi_frame: msi,
        msi_frames,
        its: first_its,
        its_count,
    })
}
