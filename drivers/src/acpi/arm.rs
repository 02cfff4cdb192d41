//! Everything an Arm machine booted with ACPI alone (no device tree)
//! tells the kernel, gathered in one walk from the RSDP.

use super::{
    AcpiError, EcamWindow, Fadt, Gic, Gtdt, PciHostBridge, PhysMemory, PsciConduit, Spcr,
    find_pci_host_bridge, find_table, read_fadt, read_gtdt, read_madt_gic, read_mcfg, read_rsdp,
    read_spcr,
};

/// How many ECAM windows [`ArmPlatform`] holds; more are left out.
pub const MAX_ECAM_WINDOWS: usize = 8;

/// The platform an Arm machine's ACPI tables describe. A field is `None`
/// when its table is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArmPlatform {
    /// the root table's address (the XSDT's, else the RSDT's)
    pub root: u64,
    /// the FADT (hardware-reduced flag, sleep control register, DSDT)
    pub fadt: Option<Fadt>,
    /// how to make PSCI calls (FADT `ARM_BOOT_ARCH`); `None` when the
    /// FADT is absent or does not claim PSCI
    pub psci: Option<PsciConduit>,
    /// the GIC (MADT), with the first enabled CPU as the boot CPU
    pub gic: Option<Gic>,
    /// the generic timer's interrupts (GTDT)
    pub timer: Option<Gtdt>,
    /// the console UART (SPCR)
    pub console: Option<Spcr>,
    /// the PCIe ECAM windows (MCFG); the first `ecam_count` are valid
    pub ecam: [EcamWindow; MAX_ECAM_WINDOWS],
    /// how many entries of `ecam` are valid
    pub ecam_count: usize,
    /// the first PCI host bridge the DSDT describes with a static `_CRS`
    /// (its windows for assigning BARs)
    pub pci_host: Option<PciHostBridge>,
}

impl ArmPlatform {
    /// The valid ECAM windows.
    pub fn ecam_windows(&self) -> &[EcamWindow] {
        &self.ecam[..self.ecam_count.min(MAX_ECAM_WINDOWS)]
    }
}

/// Reads the platform from the ACPI tables under the RSDP at `rsdp_hint`
/// (from the UEFI configuration table; Arm has no BIOS area to scan).
///
/// A table that is present but malformed is an error (firmware that
/// lies about one table is not trusted about the platform); an absent
/// table leaves its field `None`.
pub fn find_arm_platform(
    mem: &dyn PhysMemory,
    rsdp_hint: Option<u64>,
) -> Result<ArmPlatform, AcpiError> {
    let rsdp = read_rsdp(mem, rsdp_hint.filter(|a| *a != 0).ok_or(AcpiError::NoRsdp)?)?;
    let fadt = match find_table(mem, &rsdp, b"FACP", "FADT")? {
        Some((addr, len)) => Some(read_fadt(mem, addr, len)?),
        None => None,
    };
    let gic = match find_table(mem, &rsdp, b"APIC", "MADT")? {
        Some((addr, len)) => Some(read_madt_gic(mem, addr, len, None)?),
        None => None,
    };
    let timer = match find_table(mem, &rsdp, b"GTDT", "GTDT")? {
        Some((addr, len)) => Some(read_gtdt(mem, addr, len)?),
        None => None,
    };
    let console = match find_table(mem, &rsdp, b"SPCR", "SPCR")? {
        Some((addr, len)) => Some(read_spcr(mem, addr, len)?),
        None => None,
    };
    let PciTables {
        ecam,
        ecam_count,
        pci_host,
        ..
    } = pci_tables(mem, &rsdp, fadt.as_ref())?;
    Ok(ArmPlatform {
        root: rsdp.xsdt.unwrap_or(u64::from(rsdp.rsdt)),
        psci: fadt.and_then(|f| f.psci()),
        fadt,
        gic,
        timer,
        console,
        ecam,
        ecam_count,
        pci_host,
    })
}

/// Where PCIe is, on any ISA: the MCFG's ECAM windows and the first host
/// bridge's windows from the DSDT (for BARs no firmware assigned).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PciTables {
    /// the ECAM windows; the first `ecam_count` are valid
    pub ecam: [EcamWindow; MAX_ECAM_WINDOWS],
    /// how many entries of `ecam` are valid
    pub ecam_count: usize,
    /// the first PCI host bridge the DSDT describes with a static `_CRS`
    pub pci_host: Option<PciHostBridge>,
    /// the ECAM window is the host bridge's `_CBA` (there is no MCFG)
    pub ecam_from_dsdt: bool,
}

impl PciTables {
    /// The valid ECAM windows.
    pub fn ecam_windows(&self) -> &[EcamWindow] {
        &self.ecam[..self.ecam_count.min(MAX_ECAM_WINDOWS)]
    }
}

fn pci_tables(
    mem: &dyn PhysMemory,
    rsdp: &super::Rsdp,
    fadt: Option<&Fadt>,
) -> Result<PciTables, AcpiError> {
    let mut ecam = [EcamWindow::default(); MAX_ECAM_WINDOWS];
    let mut ecam_count = match find_table(mem, rsdp, b"MCFG", "MCFG")? {
        Some((addr, len)) => read_mcfg(mem, addr, len, &mut ecam)?,
        None => 0,
    };
    let pci_host = match fadt {
        Some(f) if f.dsdt != 0 => find_pci_host_bridge(mem, f.dsdt)?,
        _ => None,
    };
    let mut ecam_from_dsdt = false;
    // Without an MCFG, the host bridge's `_CBA` and bus range name the
    // window (QEMU's `microvm` with `pcie=on` publishes no MCFG).
    if ecam_count == 0
        && let Some(host) = &pci_host
        && let Some(base) = host.ecam_base
    {
        let (start_bus, end_bus) = host
            .buses()
            .map_or((0, 0), |b| (b.min.min(255) as u8, b.max.min(255) as u8));
        ecam[0] = EcamWindow {
            base,
            segment: 0,
            start_bus,
            end_bus,
        };
        ecam_count = 1;
        ecam_from_dsdt = true;
    }
    Ok(PciTables {
        ecam,
        ecam_count,
        pci_host,
        ecam_from_dsdt,
    })
}

/// The PCIe tables (MCFG, the DSDT's host bridge) of any machine, found
/// from the RSDP (at `rsdp_hint`, else by the PC's scan, see
/// [`super::find_rsdp`]): for PCs whose configuration space is reached only
/// through ECAM, such as QEMU's `microvm` with `pcie=on` and Cloud
/// Hypervisor.
pub fn find_pci_tables(
    mem: &dyn PhysMemory,
    rsdp_hint: Option<u64>,
    ebda: Option<u64>,
) -> Result<PciTables, AcpiError> {
    let rsdp = super::find_rsdp(mem, rsdp_hint, ebda)?;
    let fadt = match find_table(mem, &rsdp, b"FACP", "FADT")? {
        Some((addr, len)) => Some(read_fadt(mem, addr, len)?),
        None => None,
    };
    pci_tables(mem, &rsdp, fadt.as_ref())
}
