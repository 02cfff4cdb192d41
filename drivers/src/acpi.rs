//! Just enough ACPI to power the machine off: find the RSDP, walk the
//! RSDT/XSDT to the FADT, read its PM1 control blocks and the DSDT, and
//! pull the `\_S5_` sleep type out of the DSDT's AML. The same walk finds
//! the virtio-mmio devices a DSDT describes (QEMU `microvm`).
//!
//! For Arm servers booted by UEFI with ACPI only (no device tree) the
//! submodules read what the kernel needs to come up: the GIC from the MADT
//! ([`read_madt_gic`]), the generic timer's interrupts from the GTDT
//! ([`read_gtdt`]), the console from the SPCR ([`read_spcr`]), PCIe ECAM
//! windows from the MCFG ([`read_mcfg`]), the PSCI conduit from the FADT
//! ([`Fadt::psci`]), and the PCI host bridge's windows from the DSDT
//! ([`find_pci_host_bridge`]); [`find_arm_platform`] gathers them in one
//! walk.
//!
//! Everything here is plain parsing over a [`PhysMemory`]: no port I/O and
//! no assumptions about how physical memory is reached, so it runs (and is
//! tested) on the host. The register writes belong to the caller. Nothing
//! allocates; every length and count comes from firmware and is checked
//! against the table that holds it.

use core::fmt;

mod arm;
mod gtdt;
mod madt;
mod mcfg;
mod pci_host;
mod spcr;

pub use arm::{ArmPlatform, MAX_ECAM_WINDOWS, PciTables, find_arm_platform, find_pci_tables};
pub use gtdt::{Gtdt, TimerInterrupt, read_gtdt};
pub use madt::{
    Gic, GicCpuInterface, GicDistributor, GicIts, GicMsiFrame, GicRedistributor, GicVersion,
    madt_gic_cpus, madt_gic_its, madt_gic_msi_frames, madt_gic_redistributors, read_madt_gic,
};
pub use mcfg::{EcamWindow, read_mcfg};
pub use pci_host::{
    MAX_PCI_WINDOWS, PciHostBridge, PciWindow, PciWindowKind, find_pci_host_bridge,
    parse_pci_host_resources,
};
pub use spcr::{Spcr, SpcrPci, UartKind, read_spcr};

/// Read access to physical memory.
pub trait PhysMemory {
    /// Fills `buf` from physical address `addr`; false when the range is
    /// not readable.
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool;
}

/// Why the S5 (soft-off) parameters could not be found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcpiError {
    /// no RSDP given by the loader nor found in the BIOS areas
    NoRsdp,
    /// a table or structure lies outside readable memory
    Unreadable {
        /// the table's signature
        what: &'static str,
        /// its physical address
        addr: u64,
    },
    /// a table's checksum does not add up to zero
    BadChecksum {
        /// the table's signature
        what: &'static str,
        /// its physical address
        addr: u64,
    },
    /// a table has the wrong signature or an impossible length
    BadTable {
        /// the table expected
        what: &'static str,
        /// its physical address
        addr: u64,
    },
    /// the RSDT/XSDT lists no FADT
    NoFadt,
    /// the FADT names no DSDT
    NoDsdt,
    /// the FADT names no PM1a control block (nor, on a hardware-reduced
    /// machine, a sleep control register)
    NoPm1aControl,
    /// a PM1 control block lies in an address space other than I/O ports
    /// or memory
    UnsupportedAddressSpace(u8),
    /// the DSDT has no `_S5_` package
    NoS5,
    /// the `_S5_` package's first two elements are not integers
    BadS5,
    /// a structure inside a table (a MADT entry, an MCFG window) has an
    /// impossible length or contents, or runs past the table's end
    BadEntry {
        /// the table that holds it
        what: &'static str,
        /// the structure's physical address
        addr: u64,
    },
    /// the MADT describes no GIC distributor
    NoGicDistributor,
}

impl fmt::Display for AcpiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcpiError::NoRsdp => {
                f.write_str("no RSDP (none from the loader, none in 0xe0000-0xfffff or the EBDA)")
            }
            AcpiError::Unreadable { what, addr } => {
                write!(f, "{what} at {addr:#x} is not readable memory")
            }
            AcpiError::BadChecksum { what, addr } => {
                write!(f, "{what} at {addr:#x} has a bad checksum")
            }
            AcpiError::BadTable { what, addr } => {
                write!(f, "no valid {what} at {addr:#x}")
            }
            AcpiError::NoFadt => f.write_str("no FADT (FACP) in the RSDT/XSDT"),
            AcpiError::NoDsdt => f.write_str("the FADT names no DSDT"),
            AcpiError::NoPm1aControl => f.write_str("the FADT names no PM1a control block"),
            AcpiError::UnsupportedAddressSpace(s) => {
                write!(f, "PM1 control block in unsupported address space {s}")
            }
            AcpiError::NoS5 => f.write_str("no \\_S5_ object in the DSDT"),
            AcpiError::BadS5 => f.write_str("the \\_S5_ package does not start with two integers"),
            AcpiError::BadEntry { what, addr } => {
                write!(f, "malformed {what} entry at {addr:#x}")
            }
            AcpiError::NoGicDistributor => f.write_str("the MADT describes no GIC distributor"),
        }
    }
}

/// Where a register lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Register {
    /// an I/O port
    Io(u16),
    /// a physical memory address
    Memory(u64),
}

impl fmt::Display for Register {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Register::Io(p) => write!(f, "I/O port {p:#x}"),
            Register::Memory(a) => write!(f, "memory {a:#x}"),
        }
    }
}

/// The register(s) that put the machine to sleep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SleepControl {
    /// the PM1 control blocks (16 bits each; `SLP_TYP` in bits 10–12)
    Pm1 {
        /// PM1a control
        a: Register,
        /// PM1b control, when the machine has one
        b: Option<Register>,
    },
    /// a hardware-reduced machine's sleep control register (8 bits;
    /// `SLP_TYP` in bits 2–4, `SLP_EN` bit 5), e.g. QEMU's microvm
    SleepRegister(Register),
}

/// Everything needed to enter S5 (soft-off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SleepS5 {
    /// where to write
    pub control: SleepControl,
    /// `SLP_TYPa` from `\_S5_`
    pub slp_typ_a: u8,
    /// `SLP_TYPb` from `\_S5_`
    pub slp_typ_b: u8,
    /// the SMI command port that switches to ACPI mode (0: none, always on)
    pub smi_command: u16,
    /// the value to write to `smi_command` to enable ACPI
    pub acpi_enable: u8,
}

/// `SCI_EN`, bit 0 of PM1 control: ACPI mode is on.
pub const SCI_EN: u16 = 1;
/// `SLP_EN`, bit 13 of PM1 control: enter the sleep state in `SLP_TYP`.
pub const SLP_EN: u16 = 1 << 13;

impl SleepS5 {
    /// The value for PM1a control: `SLP_TYPa << 10 | SLP_EN`.
    pub fn pm1a_value(&self) -> u16 {
        (u16::from(self.slp_typ_a & 7) << 10) | SLP_EN
    }

    /// The value for PM1b control: `SLP_TYPb << 10 | SLP_EN`.
    pub fn pm1b_value(&self) -> u16 {
        (u16::from(self.slp_typ_b & 7) << 10) | SLP_EN
    }

    /// The value for a sleep control register: `SLP_TYPa << 2 | SLP_EN`
    /// (bit 5).
    pub fn sleep_register_value(&self) -> u8 {
        ((self.slp_typ_a & 7) << 2) | 1 << 5
    }
}

const HEADER_LEN: usize = 36;
/// Larger tables are refused (a DSDT is tens of KiB; this bounds the scan).
const MAX_TABLE_LEN: u32 = 16 << 20;

fn checksum_ok(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b)) == 0
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from(le32(b, at)) | (u64::from(le32(b, at + 4)) << 32)
}

/// Reads `len` bytes at `addr` into a fixed buffer, streaming through it
/// with `f` so no allocation is needed.
fn for_each_chunk(
    mem: &dyn PhysMemory,
    what: &'static str,
    addr: u64,
    len: u64,
    mut f: impl FnMut(u64, &[u8]),
) -> Result<(), AcpiError> {
    let mut buf = [0u8; 512];
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(buf.len() as u64) as usize;
        let at = addr
            .checked_add(done)
            .ok_or(AcpiError::Unreadable { what, addr })?;
        if !mem.read(at, &mut buf[..n]) {
            return Err(AcpiError::Unreadable { what, addr });
        }
        f(done, &buf[..n]);
        done += n as u64;
    }
    Ok(())
}

/// Checks a system description table's signature, length and checksum and
/// returns its length.
fn check_table(
    mem: &dyn PhysMemory,
    what: &'static str,
    sig: &[u8; 4],
    addr: u64,
) -> Result<u32, AcpiError> {
    let mut h = [0u8; HEADER_LEN];
    if !mem.read(addr, &mut h) {
        return Err(AcpiError::Unreadable { what, addr });
    }
    let len = le32(&h, 4);
    if &h[0..4] != sig || (len as usize) < HEADER_LEN || len > MAX_TABLE_LEN {
        return Err(AcpiError::BadTable { what, addr });
    }
    let mut sum = 0u8;
    for_each_chunk(mem, what, addr, u64::from(len), |_, c| {
        sum = c.iter().fold(sum, |a, b| a.wrapping_add(*b));
    })?;
    if sum != 0 {
        return Err(AcpiError::BadChecksum { what, addr });
    }
    Ok(len)
}

/// Reads the start of a validated table (`len` bytes at `addr`) into
/// `buf`: `min(len, buf.len())` bytes. A table shorter than `min` is
/// refused.
fn read_table<'a>(
    mem: &dyn PhysMemory,
    what: &'static str,
    addr: u64,
    len: u32,
    min: usize,
    buf: &'a mut [u8],
) -> Result<&'a [u8], AcpiError> {
    let n = (len as usize).min(buf.len());
    if (len as usize) < min || n < min {
        return Err(AcpiError::BadTable { what, addr });
    }
    let b = &mut buf[..n];
    if !mem.read(addr, b) {
        return Err(AcpiError::Unreadable { what, addr });
    }
    Ok(b)
}

/// A validated RSDP: where the root table is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rsdp {
    /// where the RSDP itself is
    pub addr: u64,
    /// the RSDT (32-bit pointers)
    pub rsdt: u32,
    /// the XSDT (64-bit pointers), ACPI 2.0 and later
    pub xsdt: Option<u64>,
}

/// Validates the RSDP at `addr` (signature and checksums).
pub fn read_rsdp(mem: &dyn PhysMemory, addr: u64) -> Result<Rsdp, AcpiError> {
    let what = "RSDP";
    let mut r = [0u8; 36];
    if !mem.read(addr, &mut r[..20]) {
        return Err(AcpiError::Unreadable { what, addr });
    }
    if &r[0..8] != b"RSD PTR " {
        return Err(AcpiError::BadTable { what, addr });
    }
    if !checksum_ok(&r[..20]) {
        return Err(AcpiError::BadChecksum { what, addr });
    }
    let rsdt = le32(&r, 16);
    let mut xsdt = None;
    if r[15] >= 2 {
        if !mem.read(addr, &mut r) {
            return Err(AcpiError::Unreadable { what, addr });
        }
        let len = le32(&r, 20) as usize;
        if len < 36 {
            return Err(AcpiError::BadTable { what, addr });
        }
        if !checksum_ok(&r) {
            return Err(AcpiError::BadChecksum { what, addr });
        }
        let x = le64(&r, 24);
        if x != 0 {
            xsdt = Some(x);
        }
    }
    Ok(Rsdp { addr, rsdt, xsdt })
}

/// Searches `[start, start + len)` on 16-byte boundaries for a valid RSDP.
fn scan_rsdp(mem: &dyn PhysMemory, start: u64, len: u64) -> Option<Rsdp> {
    let mut at = start;
    while at + 20 <= start + len {
        let mut sig = [0u8; 8];
        if mem.read(at, &mut sig)
            && &sig == b"RSD PTR "
            && let Ok(r) = read_rsdp(mem, at)
        {
            return Some(r);
        }
        at += 16;
    }
    None
}

/// Finds the RSDP: at `hint` (the loader's, e.g. PVH `rsdp_paddr`) when
/// given, else in the first KiB of the EBDA (at `ebda`, as the BIOS data
/// area's word at 0x40e says) and then in 0xe0000–0xfffff.
pub fn find_rsdp(
    mem: &dyn PhysMemory,
    hint: Option<u64>,
    ebda: Option<u64>,
) -> Result<Rsdp, AcpiError> {
    // A bad hint is reported only if the scan finds nothing either.
    let hinted = match hint.filter(|a| *a != 0).map(|a| read_rsdp(mem, a)) {
        Some(Ok(r)) => return Ok(r),
        Some(Err(e)) => e,
        None => AcpiError::NoRsdp,
    };
    if let Some(r) = ebda.and_then(|e| scan_rsdp(mem, e, 1024)) {
        return Ok(r);
    }
    scan_rsdp(mem, 0xe_0000, 0x2_0000).ok_or(hinted)
}

/// Finds the table with signature `sig` through the XSDT (preferred) or
/// the RSDT; returns its address and length.
pub fn find_table(
    mem: &dyn PhysMemory,
    rsdp: &Rsdp,
    sig: &[u8; 4],
    what: &'static str,
) -> Result<Option<(u64, u32)>, AcpiError> {
    let (root, root_what, root_sig, width) = match rsdp.xsdt {
        Some(x) => (x, "XSDT", b"XSDT", 8u64),
        None => (u64::from(rsdp.rsdt), "RSDT", b"RSDT", 4u64),
    };
    let len = check_table(mem, root_what, root_sig, root)?;
    let count = (u64::from(len) - HEADER_LEN as u64) / width;
    for i in 0..count {
        let mut p = [0u8; 8];
        let at = root + HEADER_LEN as u64 + i * width;
        if !mem.read(at, &mut p[..width as usize]) {
            return Err(AcpiError::Unreadable {
                what: root_what,
                addr: root,
            });
        }
        let addr = u64::from_le_bytes(p);
        let mut s = [0u8; 4];
        if addr == 0 || !mem.read(addr, &mut s) || &s != sig {
            continue;
        }
        let len = check_table(mem, what, sig, addr)?;
        return Ok(Some((addr, len)));
    }
    Ok(None)
}

/// The FADT fields power-off needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fadt {
    /// the DSDT's address (X_DSDT when set)
    pub dsdt: u64,
    /// SMI_CMD
    pub smi_command: u16,
    /// ACPI_ENABLE
    pub acpi_enable: u8,
    /// PM1a control block (X_PM1a_CNT_BLK when set)
    pub pm1a_control: Option<Register>,
    /// PM1b control block (X_PM1b_CNT_BLK when set)
    pub pm1b_control: Option<Register>,
    /// `HW_REDUCED_ACPI` (flags bit 20): no PM1 blocks, no SMI_CMD
    pub hardware_reduced: bool,
    /// SLEEP_CONTROL_REG (ACPI 5.0 and later)
    pub sleep_control: Option<Register>,
    /// the table's revision (major version) and FADT minor version
    /// (ACPI 5.1 and later; 0 before)
    pub version: (u8, u8),
    /// `ARM_BOOT_ARCH` (ACPI 5.1 and later; 0 before): bit 0 PSCI
    /// compliant, bit 1 PSCI uses HVC rather than SMC
    pub arm_boot_arch: u16,
}

/// How PSCI calls reach the firmware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsciConduit {
    /// `smc #0`: the secure monitor (EL3) implements PSCI
    Smc,
    /// `hvc #0`: the hypervisor (EL2) implements PSCI
    Hvc,
}

/// `ARM_BOOT_ARCH` bit 0: PSCI is implemented.
pub const ARM_PSCI_COMPLIANT: u16 = 1;
/// `ARM_BOOT_ARCH` bit 1: PSCI is called with HVC instead of SMC.
pub const ARM_PSCI_USE_HVC: u16 = 1 << 1;

impl Fadt {
    /// The PSCI conduit `ARM_BOOT_ARCH` names, or `None` when the firmware
    /// does not say it implements PSCI.
    pub fn psci(&self) -> Option<PsciConduit> {
        if self.arm_boot_arch & ARM_PSCI_COMPLIANT == 0 {
            None
        } else if self.arm_boot_arch & ARM_PSCI_USE_HVC != 0 {
            Some(PsciConduit::Hvc)
        } else {
            Some(PsciConduit::Smc)
        }
    }
}

/// Reads a generic address structure at `at` of the FADT.
fn gas(f: &[u8], at: usize) -> Result<Option<Register>, AcpiError> {
    if f.len() < at + 12 {
        return Ok(None);
    }
    let addr = le64(f, at + 4);
    if addr == 0 {
        return Ok(None);
    }
    match f[at] {
        0 => Ok(Some(Register::Memory(addr))),
        1 => u16::try_from(addr)
            .map(|p| Some(Register::Io(p)))
            .map_err(|_| AcpiError::UnsupportedAddressSpace(1)),
        s => Err(AcpiError::UnsupportedAddressSpace(s)),
    }
}

fn io_block(f: &[u8], at: usize) -> Option<Register> {
    if f.len() < at + 4 {
        return None;
    }
    let p = le32(f, at);
    u16::try_from(p).ok().filter(|p| *p != 0).map(Register::Io)
}

/// Parses the FADT at `addr` (already validated, `len` bytes).
pub fn read_fadt(mem: &dyn PhysMemory, addr: u64, len: u32) -> Result<Fadt, AcpiError> {
    let what = "FADT";
    let mut f = [0u8; 276];
    let n = (len as usize).min(f.len());
    if n < 116 {
        return Err(AcpiError::BadTable { what, addr });
    }
    if !mem.read(addr, &mut f[..n]) {
        return Err(AcpiError::Unreadable { what, addr });
    }
    let f = &f[..n];
    let x_dsdt = if f.len() >= 148 { le64(f, 140) } else { 0 };
    let dsdt = if x_dsdt != 0 {
        x_dsdt
    } else {
        u64::from(le32(f, 40))
    };
    let pm1a_control = match gas(f, 172)? {
        Some(r) => Some(r),
        None => io_block(f, 64),
    };
    let pm1b_control = match gas(f, 184)? {
        Some(r) => Some(r),
        None => io_block(f, 68),
    };
    Ok(Fadt {
        dsdt,
        smi_command: u16::try_from(le32(f, 48)).unwrap_or(0),
        acpi_enable: f[52],
        pm1a_control,
        pm1b_control,
        hardware_reduced: le32(f, 112) & (1 << 20) != 0,
        sleep_control: gas(f, 244)?,
        version: (f[8], f.get(131).copied().unwrap_or(0)),
        arm_boot_arch: if f.len() >= 131 { le16(f, 129) } else { 0 },
    })
}

/// Decodes one AML integer constant at the start of `b`: ZeroOp, OneOp,
/// OnesOp, BytePrefix, WordPrefix or DWordPrefix. Returns its low byte.
fn aml_small_int(b: &[u8]) -> Option<(u8, usize)> {
    match *b.first()? {
        0x00 => Some((0, 1)),
        0x01 => Some((1, 1)),
        0xff => Some((0xff, 1)),
        0x0a => Some((*b.get(1)?, 2)),
        0x0b => {
            b.get(2)?;
            Some((b[1], 3))
        }
        0x0c => {
            b.get(4)?;
            Some((b[1], 5))
        }
        _ => None,
    }
}

/// Finds `_S5_` in DSDT AML bytes and decodes SLP_TYPa and SLP_TYPb.
///
/// The object is `NameOp "_S5_" PackageOp PkgLength NumElements elem…`;
/// the name may carry a root (`\`) prefix. A byte-pattern search is enough
/// here: firmware writes `\_S5_` as a plain named package.
pub fn parse_s5(aml: &[u8]) -> Result<(u8, u8), AcpiError> {
    let mut found = false;
    let mut from = 0;
    while let Some(pos) = aml[from..].windows(4).position(|w| w == b"_S5_") {
        let at = from + pos;
        from = at + 1;
        // Must be a name definition: NameOp (0x08) right before, or `\`
        // then NameOp.
        let named = (at >= 1 && aml[at - 1] == 0x08)
            || (at >= 2 && aml[at - 1] == b'\\' && aml[at - 2] == 0x08);
        let rest = &aml[at + 4..];
        if !named || rest.first() != Some(&0x12) {
            continue;
        }
        found = true;
        // PkgLength: the top two bits of the lead byte say how many more
        // bytes follow.
        let Some(lead) = rest.get(1) else { continue };
        let pkg_len_bytes = 1 + usize::from(lead >> 6);
        let mut p = 1 + pkg_len_bytes + 1; // PackageOp, PkgLength, NumElements
        let Some((a, n)) = rest.get(p..).and_then(aml_small_int) else {
            continue;
        };
        p += n;
        let Some((b, _)) = rest.get(p..).and_then(aml_small_int) else {
            continue;
        };
        return Ok((a, b));
    }
    Err(if found {
        AcpiError::BadS5
    } else {
        AcpiError::NoS5
    })
}

/// Searches the DSDT at `addr` (validated, `len` bytes) for `_S5_`,
/// streaming it in chunks that overlap enough to hold the object's head.
fn s5_in_dsdt(mem: &dyn PhysMemory, addr: u64, len: u32) -> Result<(u8, u8), AcpiError> {
    const CHUNK: usize = 4096;
    const OVERLAP: usize = 32;
    let mut buf = [0u8; CHUNK + OVERLAP];
    let body = u64::from(len) - HEADER_LEN as u64;
    let start = addr + HEADER_LEN as u64;
    let mut off = 0u64;
    let mut bad = false;
    while off < body {
        let n = ((body - off) as usize).min(buf.len());
        if !mem.read(start + off, &mut buf[..n]) {
            return Err(AcpiError::Unreadable { what: "DSDT", addr });
        }
        match parse_s5(&buf[..n]) {
            Ok(v) => return Ok(v),
            Err(AcpiError::BadS5) => bad = true,
            Err(_) => {}
        }
        if n < buf.len() {
            break;
        }
        off += CHUNK as u64;
    }
    Err(if bad {
        AcpiError::BadS5
    } else {
        AcpiError::NoS5
    })
}

/// Finds everything needed to enter S5: RSDP (at `rsdp_hint` or by
/// scanning, see [`find_rsdp`]), FADT, PM1 control blocks, DSDT and its
/// `\_S5_`.
pub fn find_s5(
    mem: &dyn PhysMemory,
    rsdp_hint: Option<u64>,
    ebda: Option<u64>,
) -> Result<SleepS5, AcpiError> {
    let rsdp = find_rsdp(mem, rsdp_hint, ebda)?;
    let (fadt_addr, fadt_len) =
        find_table(mem, &rsdp, b"FACP", "FADT")?.ok_or(AcpiError::NoFadt)?;
    let fadt = read_fadt(mem, fadt_addr, fadt_len)?;
    let control = match (fadt.pm1a_control, fadt.sleep_control) {
        (Some(a), _) if !fadt.hardware_reduced => SleepControl::Pm1 {
            a,
            b: fadt.pm1b_control,
        },
        (_, Some(r)) => SleepControl::SleepRegister(r),
        (Some(a), None) => SleepControl::Pm1 {
            a,
            b: fadt.pm1b_control,
        },
        (None, None) => return Err(AcpiError::NoPm1aControl),
    };
    if fadt.dsdt == 0 {
        return Err(AcpiError::NoDsdt);
    }
    let dsdt_len = check_table(mem, "DSDT", b"DSDT", fadt.dsdt)?;
    let (slp_typ_a, slp_typ_b) = s5_in_dsdt(mem, fadt.dsdt, dsdt_len)?;
    Ok(SleepS5 {
        control,
        slp_typ_a,
        slp_typ_b,
        smi_command: fadt.smi_command,
        acpi_enable: fadt.acpi_enable,
    })
}

/// A virtio-mmio device a DSDT describes: a `Device` with `_HID
/// "LNRO0005"` and a `_CRS` of a fixed 32-bit memory range and an
/// interrupt, as QEMU's `microvm` writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VirtioMmioDevice {
    /// physical address of the registers
    pub base: u64,
    /// length of the window
    pub size: u64,
    /// the interrupt (a GSI), if the resources name one
    pub irq: Option<u32>,
}

/// The hardware ID of a virtio-mmio device in ACPI.
const VIRTIO_MMIO_HID: &[u8] = b"LNRO0005";

/// The bytes after an AML `PkgLength` at the start of `b`, up to its end
/// (clipped to `b`): the lead byte's top two bits say how many bytes
/// follow it; the length counts itself.
fn aml_package(b: &[u8]) -> Option<&[u8]> {
    let lead = *b.first()?;
    let extra = usize::from(lead >> 6);
    let mut len = if extra == 0 {
        usize::from(lead & 0x3f)
    } else {
        usize::from(lead & 0x0f)
    };
    for i in 0..extra {
        len |= usize::from(*b.get(1 + i)?) << (4 + 8 * i);
    }
    let body = b.get(1 + extra..)?;
    let body_len = len.checked_sub(1 + extra)?;
    Some(&body[..body_len.min(body.len())])
}

/// Reads a resource template (the bytes of a `_CRS` buffer): the first
/// fixed 32-bit memory range and the first interrupt.
fn parse_resources(mut r: &[u8]) -> (Option<(u64, u64)>, Option<u32>) {
    let (mut memory, mut irq) = (None, None);
    while let Some(&tag) = r.first() {
        if tag & 0x80 != 0 {
            // Large item: tag, 16-bit length, data.
            let Some(len) = r
                .get(1..3)
                .map(|l| usize::from(u16::from_le_bytes([l[0], l[1]])))
            else {
                break;
            };
            let Some(data) = r.get(3..3 + len) else { break };
            match tag {
                // Memory32Fixed: information, base, length.
                0x86 if len >= 9 && memory.is_none() => {
                    memory = Some((u64::from(le32(data, 1)), u64::from(le32(data, 5))));
                }
                // Extended interrupt: flags, count, interrupt numbers.
                0x89 if len >= 6 && data[1] >= 1 && irq.is_none() => {
                    irq = Some(le32(data, 2));
                }
                _ => {}
            }
            r = &r[3 + len..];
        } else {
            // Small item: tag in bits 3-6, length in bits 0-2.
            let len = usize::from(tag & 7);
            let Some(data) = r.get(1..1 + len) else { break };
            match tag >> 3 {
                0x0f => break, // end tag
                // IRQ: a 16-bit mask of ISA interrupts.
                0x04 if len >= 2 && irq.is_none() => {
                    let mask = u16::from_le_bytes([data[0], data[1]]);
                    irq = (mask != 0).then(|| mask.trailing_zeros());
                }
                _ => {}
            }
            r = &r[1 + len..];
        }
    }
    (memory, irq)
}

/// Finds virtio-mmio devices in DSDT AML bytes and puts them into `out`
/// (skipping ones already there); returns how many `out` holds.
///
/// A byte-pattern search, as for `\_S5_`: `Name (_HID, "LNRO0005")`, then
/// the first `Name (_CRS, Buffer)` before the next `_HID`. Nothing here
/// evaluates AML, so a device whose resources are computed by a method is
/// not found.
pub fn parse_virtio_mmio(aml: &[u8], out: &mut [VirtioMmioDevice], mut n: usize) -> usize {
    let hid: &[u8] = b"\x08_HID\x0d";
    let mut from = 0;
    while let Some(pos) = aml[from..].windows(hid.len()).position(|w| w == hid) {
        let at = from + pos + hid.len();
        from = at;
        let id_end = at + VIRTIO_MMIO_HID.len();
        if aml.get(at..id_end) != Some(VIRTIO_MMIO_HID) || aml.get(id_end) != Some(&0) {
            continue;
        }
        let after = &aml[at..];
        // Up to the next device's `_HID` (a string or an EISA ID).
        let end = after
            .windows(5)
            .position(|w| w == b"\x08_HID")
            .unwrap_or(after.len());
        let scope = &after[..end];
        let crs: &[u8] = b"\x08_CRS\x11";
        let Some(c) = scope.windows(crs.len()).position(|w| w == crs) else {
            continue;
        };
        // Buffer: PkgLength, BufferSize (an integer), then the bytes.
        let Some(buffer) = aml_package(&scope[c + crs.len()..]) else {
            continue;
        };
        let size_len = match buffer.first() {
            Some(0x00 | 0x01 | 0xff) => 1,
            Some(0x0a) => 2,
            Some(0x0b) => 3,
            Some(0x0c) => 5,
            _ => continue,
        };
        let Some(template) = buffer.get(size_len..) else {
            continue;
        };
        let (Some((base, size)), irq) = parse_resources(template) else {
            continue;
        };
        if size == 0 || out[..n].iter().any(|d| d.base == base) || n >= out.len() {
            continue;
        }
        out[n] = VirtioMmioDevice { base, size, irq };
        n += 1;
    }
    n
}

/// Finds the virtio-mmio devices the DSDT describes (RSDP as for
/// [`find_s5`]) and puts them into `out`; returns how many.
pub fn find_virtio_mmio(
    mem: &dyn PhysMemory,
    rsdp_hint: Option<u64>,
    ebda: Option<u64>,
    out: &mut [VirtioMmioDevice],
) -> Result<usize, AcpiError> {
    let rsdp = find_rsdp(mem, rsdp_hint, ebda)?;
    let (fadt_addr, fadt_len) =
        find_table(mem, &rsdp, b"FACP", "FADT")?.ok_or(AcpiError::NoFadt)?;
    let fadt = read_fadt(mem, fadt_addr, fadt_len)?;
    if fadt.dsdt == 0 {
        return Err(AcpiError::NoDsdt);
    }
    let len = check_table(mem, "DSDT", b"DSDT", fadt.dsdt)?;
    // Chunks overlap by more than one device's definition (about 80 bytes
    // as QEMU writes it), so none is cut in two; duplicates are dropped.
    const CHUNK: usize = 4096;
    const OVERLAP: usize = 512;
    let mut buf = [0u8; CHUNK + OVERLAP];
    let body = u64::from(len) - HEADER_LEN as u64;
    let start = fadt.dsdt + HEADER_LEN as u64;
    let mut n = 0;
    let mut off = 0u64;
    while off < body {
        let count = ((body - off) as usize).min(buf.len());
        if !mem.read(start + off, &mut buf[..count]) {
            return Err(AcpiError::Unreadable {
                what: "DSDT",
                addr: fadt.dsdt,
            });
        }
        n = parse_virtio_mmio(&buf[..count], out, n);
        if count < buf.len() {
            break;
        }
        off += CHUNK as u64;
    }
    Ok(n)
}

/// An I/O APIC the MADT describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IoApic {
    /// physical address of its registers
    pub address: u64,
    /// the first global system interrupt it serves (its pin 0)
    pub gsi_base: u32,
}

/// The I/O APIC entries (type 1) of a MADT's body (after the 36-byte
/// header and the 8 bytes of local APIC address and flags), put into
/// `out`; returns how many. Malformed entries end the walk.
pub fn parse_madt_io_apics(entries: &[u8], out: &mut [IoApic]) -> usize {
    let mut n = 0;
    let mut at = 0;
    while at + 2 <= entries.len() && n < out.len() {
        let (kind, len) = (entries[at], usize::from(entries[at + 1]));
        if len < 2 || at + len > entries.len() {
            break;
        }
        if kind == 1 && len >= 12 {
            out[n] = IoApic {
                address: u64::from(le32(entries, at + 4)),
                gsi_base: le32(entries, at + 8),
            };
            n += 1;
        }
        at += len;
    }
    n
}

/// Finds the I/O APICs the MADT describes (RSDP as for [`find_s5`]) and
/// puts them into `out`; returns how many (0 without a MADT).
pub fn find_io_apics(
    mem: &dyn PhysMemory,
    rsdp_hint: Option<u64>,
    ebda: Option<u64>,
    out: &mut [IoApic],
) -> Result<usize, AcpiError> {
    let rsdp = find_rsdp(mem, rsdp_hint, ebda)?;
    let Some((addr, len)) = find_table(mem, &rsdp, b"APIC", "MADT")? else {
        return Ok(0);
    };
    let mut body = [0u8; 1024];
    let skip = HEADER_LEN + 8;
    let count = (len as usize).saturating_sub(skip).min(body.len());
    if !mem.read(addr + skip as u64, &mut body[..count]) {
        return Err(AcpiError::Unreadable { what: "MADT", addr });
    }
    Ok(parse_madt_io_apics(&body[..count], out))
}

#[cfg(test)]
mod arm_tests;
#[cfg(test)]
mod microvm_tests;
#[cfg(test)]
mod tests;
