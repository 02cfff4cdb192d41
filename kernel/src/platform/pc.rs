//! The x86-64 PC: 16550 UARTs at the COM1-COM3 ports, the CMOS RTC, the
//! PIT for calibration, virtio-mmio transports named in the DSDT or on
//! the command line (`microvm`), PCI through the configuration ports
//! (`q35`, `pc`), and, to leave, QEMU's `isa-debug-exit`, ACPI S5, a
//! keyboard-controller reset and a halt, in that order.

use core::fmt::Write;

use basalt_arch::BootInfo;
use basalt_drivers::WallClock;
use basalt_drivers::uart::{self, PortUart};
use basalt_drivers::virtio::VirtioError;
use basalt_drivers::virtio::mmio::RegisterWindow;

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::devices::{PciHost, PciRoot, VirtioMmioWindow};
use crate::log::EmergencyLog;

/// A program console (COM1, COM2).
pub type Console = PortUart;
/// The kernel log channel (COM3).
pub type LogChannel = PortUart;

/// Why the boot information could not be completed (never, on a PC: the
/// PVH start info says everything).
#[derive(Debug, Clone, Copy)]
pub enum BootInfoError {}

impl core::fmt::Display for BootInfoError {
    fn fmt(&self, _: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {}
    }
}

/// The PVH boot path already filled in everything.
pub fn complete_boot_info(info: &'static BootInfo) -> Result<&'static BootInfo, BootInfoError> {
    Ok(info)
}

/// Writes to the shared console (COM1) without locks (fault and panic
/// reports, the status marker).
pub fn emergency_console_write(bytes: &[u8]) {
    uart::emergency_write(uart::COM1, bytes);
}

/// Nothing to add: the PC's ACPI tables are read where they are used.
pub fn log_firmware_summary() {}

/// Probes COM1 (stdout, stdin) and COM2 (stderr).
pub fn consoles() -> [Option<Console>; 2] {
    [PortUart::probe(uart::COM1), PortUart::probe(uart::COM2)]
}

/// Probes COM3, the kernel log.
pub fn log_channel() -> Option<LogChannel> {
    PortUart::probe(uart::COM3)
}

/// Writes to the kernel log without locks (fault and panic reports).
pub fn emergency_log_write(bytes: &[u8]) {
    uart::emergency_write(uart::COM3, bytes);
}

/// The CMOS RTC's time, in seconds since the Unix epoch.
pub fn wall_clock_seconds() -> Option<u64> {
    basalt_drivers::cmos_rtc::CmosRtc.unix_seconds()
}

/// The cycle counter's frequency measured against the PIT: the median of
/// three 5 ms windows, if it is plausible.
pub fn calibrate_cycles() -> Option<u64> {
    let mut samples = [0u64; 3];
    for s in &mut samples {
        *s = basalt_drivers::pit::measure(5, basalt_arch::cpu::cycles)?;
    }
    samples.sort_unstable();
    let hz = samples[1] * 200;
    // Anything outside 50 MHz ..= 20 GHz is a broken measurement.
    (50_000_000..=20_000_000_000).contains(&hz).then_some(hz)
}

/// The most virtio-mmio transports taken from the command line.
const MAX_VIRTIO: usize = 32;

static VIRTIO: spin::Once<([VirtioMmioWindow; MAX_VIRTIO], usize)> = spin::Once::new();

/// The virtio-mmio transports the machine names: in its DSDT (QEMU's
/// `microvm` with ACPI, the default) or on the command line
/// (`virtio_mmio.device=<size>@<base>:<irq>`, which `microvm` writes when
/// ACPI is off, and Firecracker always); only windows below 4 GiB, where
/// the identity map reaches. Read with the ACPI power-off parameters,
/// before memory setup may reuse the firmware's tables.
pub fn virtio_mmio_windows() -> &'static [VirtioMmioWindow] {
    let (windows, n) = VIRTIO.call_once(find_virtio_mmio);
    &windows[..*n]
}

fn find_virtio_mmio() -> ([VirtioMmioWindow; MAX_VIRTIO], usize) {
    let mut acpi = [basalt_drivers::acpi::VirtioMmioDevice::default(); MAX_VIRTIO];
    let (rsdp, ebda, cmdline) = crate::BOOT_INFO
        .get()
        .map_or((None, None, &[][..]), |i| (i.acpi_rsdp, i.ebda, i.cmdline));
    let from_acpi =
        basalt_drivers::acpi::find_virtio_mmio(&Firmware, rsdp, ebda, &mut acpi).unwrap_or(0);
    let from_cmdline =
        basalt_drivers::virtio::mmio::cmdline_devices(cmdline).map(|d| VirtioMmioWindow {
            base: d.base,
            size: d.size,
            interrupt: Some(d.irq),
        });
    let mut windows = [VirtioMmioWindow::default(); MAX_VIRTIO];
    let mut n = 0;
    let found = acpi[..from_acpi]
        .iter()
        .map(|d| VirtioMmioWindow {
            base: d.base,
            size: d.size,
            interrupt: d.irq,
        })
        .chain(from_cmdline);
    for w in found {
        let reachable = w.base.checked_add(w.size).is_some_and(|e| e <= 4 << 30);
        if reachable && n < MAX_VIRTIO && !windows[..n].iter().any(|o| o.base == w.base) {
            windows[n] = w;
            n += 1;
        }
    }
    (windows, n)
}

/// The register window of a transport [`virtio_mmio_windows`] returned.
/// Call once per window (`devices::init` does).
#[allow(unsafe_code)]
pub fn virtio_register_window(w: &VirtioMmioWindow) -> Result<RegisterWindow, VirtioError> {
    // SAFETY: a window the VMM named, below 4 GiB, which the identity map
    // covers (as write-back memory: fine for a VMM's emulated registers,
    // which trap whatever the memory type); the caller probes each window
    // once and the transport built on it is its only user.
    unsafe { RegisterWindow::new(w.base, w.size) }
}

/// No ECAM host bridge is recorded: configuration space is reached
/// through the port mechanism where there is one (see [`pci_root`]), which
/// `q35`'s ECAM would only extend past 256 bytes.
pub fn pci_host() -> Option<&'static PciHost> {
    None
}

/// PCI through configuration mechanism #1 (ports 0xCF8/0xCFC), which
/// every PC chipset has; the firmware (SeaBIOS or OVMF on QEMU's `q35` and
/// `pc`) assigned the BARs, and bus addresses are CPU addresses. Machines
/// without the ports but with PCIe (QEMU's `microvm` with `pcie=on`, Cloud
/// Hypervisor) are reached through the ECAM window of the MCFG, or of the
/// host bridge's `_CBA` in the DSDT where there is no MCFG, BARs given
/// addresses from the host bridge's windows in the DSDT where nothing
/// assigned them. `None` when neither answers (`microvm`, Firecracker).
/// Call once (`devices::init` does).
#[allow(unsafe_code)]
pub fn pci_root() -> Option<PciRoot> {
    use basalt_drivers::pci::{Address, ConfigSpace, PortConfig};
    let config = PortConfig::new();
    if config.read32(Address::new(0, 0, 0), 0) as u16 != 0xffff {
        return Some(PciRoot {
            config: Box::new(config),
            buses: 0..=255,
            windows: Vec::new(),
            mechanism: "configuration ports 0xcf8/0xcfc",
        });
    }
    let tables = PCI_TABLES.call_once(find_pci_tables).as_ref()?;
    let ecam = tables.ecam_windows().first()?;
    let buses = u64::from(ecam.end_bus.saturating_sub(ecam.start_bus)) + 1;
    let len = buses.min(MAX_ECAM_BUSES) << 20;
    // SAFETY: the ECAM window the MCFG names (device registers, not RAM),
    // mapped once, used only by the `Ecam` built on it.
    let virt = match unsafe { crate::mem::map_device(ecam.base, len) } {
        Ok(v) => v,
        Err(e) => {
            kprintln!("pcie: cannot map the ECAM window: {e}");
            return None;
        }
    };
    // SAFETY: `len` bytes from the window's start, just mapped as device
    // memory, for this accessor alone.
    let config = unsafe { basalt_drivers::pci::Ecam::new(virt, len as usize, ecam.start_bus) };
    kprintln!(
        "pcie: ECAM at {:#x} ({}), buses {}-{}",
        ecam.base,
        if tables.ecam_from_dsdt {
            "the host bridge's _CBA"
        } else {
            "MCFG"
        },
        ecam.start_bus,
        ecam.end_bus
    );
    Some(PciRoot {
        buses: config.buses(),
        config: Box::new(config),
        windows: tables
            .pci_host
            .iter()
            .flat_map(|h| h.windows().iter())
            .filter_map(|w| w.as_pci_range())
            .collect(),
        mechanism: "ECAM",
    })
}

/// The most buses of an ECAM window mapped (1 MiB each).
const MAX_ECAM_BUSES: u64 = 16;

/// The MCFG and the DSDT's host bridge, read with the other firmware
/// tables before memory setup.
static PCI_TABLES: spin::Once<Option<basalt_drivers::acpi::PciTables>> = spin::Once::new();

fn find_pci_tables() -> Option<basalt_drivers::acpi::PciTables> {
    let (rsdp, ebda) = crate::BOOT_INFO
        .get()
        .map_or((None, None), |i| (i.acpi_rsdp, i.ebda));
    match basalt_drivers::acpi::find_pci_tables(&Firmware, rsdp, ebda) {
        Ok(tables) => Some(tables),
        Err(e) => {
            kprintln!("pcie: no MCFG host bridge: {e}");
            None
        }
    }
}

/// Why a device's interrupt could not be routed to this CPU.
#[derive(Debug, Clone, Copy)]
pub enum InterruptRouteError {
    /// no I/O APIC serves this interrupt line
    NoIoApic(u32),
    /// the I/O APIC or local APIC refused
    Apic(basalt_arch::cpu::IoApicError),
}

impl core::fmt::Display for InterruptRouteError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            InterruptRouteError::NoIoApic(irq) => write!(f, "no I/O APIC serves IRQ {irq}"),
            InterruptRouteError::Apic(e) => write!(f, "{e}"),
        }
    }
}

/// The most I/O APICs used.
const MAX_IO_APICS: usize = 4;

static IO_APICS: spin::Once<([basalt_drivers::acpi::IoApic; MAX_IO_APICS], usize)> =
    spin::Once::new();

/// The I/O APICs: the MADT's, else the PC's one at 0xfec00000 serving
/// GSIs 0-23 (`microvm` without ACPI, Firecracker). Read with the other
/// firmware tables, before memory setup.
fn io_apics() -> &'static [basalt_drivers::acpi::IoApic] {
    let (apics, n) = IO_APICS.call_once(|| {
        let mut out = [basalt_drivers::acpi::IoApic::default(); MAX_IO_APICS];
        let (rsdp, ebda) = crate::BOOT_INFO
            .get()
            .map_or((None, None), |i| (i.acpi_rsdp, i.ebda));
        let n = basalt_drivers::acpi::find_io_apics(&Firmware, rsdp, ebda, &mut out).unwrap_or(0);
        if n > 0 {
            return (out, n);
        }
        out[0] = basalt_drivers::acpi::IoApic {
            address: 0xfec0_0000,
            gsi_base: 0,
        };
        (out, 1)
    });
    &apics[..*n]
}

/// Routes a device's interrupt line (a global system interrupt, as the
/// DSDT or `virtio_mmio.device=` names it; interrupt source overrides,
/// which only concern ISA IRQs, are not applied) through the I/O APIC
/// serving it to this CPU, so it wakes `hlt`.
#[allow(unsafe_code)]
pub fn route_device_interrupt(irq: u32) -> Result<(), InterruptRouteError> {
    let apic = io_apics()
        .iter()
        .filter(|a| a.gsi_base <= irq && a.address.checked_add(0x20).is_some_and(|e| e <= 4 << 30))
        .max_by_key(|a| a.gsi_base)
        .ok_or(InterruptRouteError::NoIoApic(irq))?;
    // SAFETY: an I/O APIC the firmware (or the PC's fixed layout) names,
    // below 4 GiB where the identity map reaches; the kernel's one thread
    // programs it only here.
    unsafe { basalt_arch::cpu::route_io_apic_pin(apic.address, irq - apic.gsi_base) }
        .map_err(InterruptRouteError::Apic)
}

/// The MSI message (address, data) a PCI function writes to wake this
/// CPU: the local APIC's, at the device vector.
pub fn msi_message() -> Option<(u64, u32)> {
    basalt_arch::cpu::msi_message()
}

/// Nothing to route: the local APIC timer is the CPU's own (the arch
/// crate sets it up).
pub fn init_timer_wakeup() {}

/// Ends the VM after the status marker: the debug-exit device with
/// `value` (QEMU exits with `value << 1 | 1`), else ACPI power-off, else a
/// controller reset (QEMU's `-no-reboot`, Firecracker), else a halt (the
/// host has the marker).
pub fn leave(value: u32) -> ! {
    basalt_drivers::debug_exit::exit(value);
    acpi_power_off();
    uefi_power_off();
    let _ = EmergencyLog.write_str("power: resetting through the keyboard controller\n");
    basalt_drivers::i8042::reset();
    basalt_arch::cpu::halt_forever()
}

/// Powers off through UEFI's `ResetSystem` when a UEFI loader booted the
/// kernel (after ACPI S5 failed: a reset would only boot the image again).
fn uefi_power_off() {
    let Some(table) = crate::BOOT_INFO.get().and_then(|i| i.uefi_system_table) else {
        return;
    };
    let _ = EmergencyLog.write_str("power: powering off via UEFI ResetSystem\n");
    if let Err(e) = basalt_arch::power::uefi_reset_shutdown(table) {
        let _ = writeln!(EmergencyLog, "power: UEFI ResetSystem failed: {e}");
    }
}

/// Physical memory as the firmware left it, for the ACPI table parser.
struct Firmware;

impl basalt_drivers::acpi::PhysMemory for Firmware {
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        basalt_arch::power::read_firmware(addr, buf)
    }
}

fn pm_register(r: basalt_drivers::acpi::Register) -> basalt_arch::power::PmRegister {
    use basalt_arch::power::PmRegister;
    use basalt_drivers::acpi::Register;
    match r {
        Register::Io(p) => PmRegister::Io(p),
        Register::Memory(a) => PmRegister::Memory(a),
    }
}

/// The S5 parameters, read once while the firmware's tables are intact.
static S5: spin::Once<Result<basalt_drivers::acpi::SleepS5, basalt_drivers::acpi::AcpiError>> =
    spin::Once::new();

fn find_s5() -> Result<basalt_drivers::acpi::SleepS5, basalt_drivers::acpi::AcpiError> {
    let (rsdp, ebda) = crate::BOOT_INFO
        .get()
        .map_or((None, None), |i| (i.acpi_rsdp, i.ebda));
    basalt_drivers::acpi::find_s5(&Firmware, rsdp, ebda)
}

/// Reads the ACPI power-off parameters (and the virtio-mmio devices the
/// DSDT describes) now, before memory setup: some machines (QEMU's
/// microvm) put their tables in memory the map calls usable, and the
/// program may reuse it before the run ends.
pub fn prepare_power_off() {
    S5.call_once(find_s5);
    VIRTIO.call_once(find_virtio_mmio);
    PCI_TABLES.call_once(find_pci_tables);
    io_apics();
}

/// Enters ACPI S5 (soft-off); returns, after saying why on the kernel log,
/// only when the machine is still running. Allocates nothing, so it works
/// from the panic path too.
fn acpi_power_off() {
    use basalt_drivers::acpi::SleepControl;
    let s5 = match *S5.call_once(find_s5) {
        Ok(s5) => s5,
        Err(e) => {
            let _ = writeln!(EmergencyLog, "power: no ACPI power-off: {e}");
            return;
        }
    };
    let result = match s5.control {
        SleepControl::Pm1 { a, b } => {
            let _ = writeln!(
                EmergencyLog,
                "power: powering off via ACPI S5 (PM1a control at {a}, SLP_TYPa {})",
                s5.slp_typ_a
            );
            basalt_arch::power::acpi_sleep(&basalt_arch::power::AcpiSleep {
                pm1a: pm_register(a),
                pm1b: b.map(pm_register),
                pm1a_value: s5.pm1a_value(),
                pm1b_value: s5.pm1b_value(),
                smi_command: s5.smi_command,
                acpi_enable: s5.acpi_enable,
            })
        }
        SleepControl::SleepRegister(r) => {
            let _ = writeln!(
                EmergencyLog,
                "power: powering off via ACPI S5 (sleep control register at {r}, SLP_TYP {})",
                s5.slp_typ_a
            );
            basalt_arch::power::acpi_sleep_register(pm_register(r), s5.sleep_register_value())
        }
    };
    if let Err(e) = result {
        let _ = writeln!(EmergencyLog, "power: ACPI power-off failed: {e}");
    }
}
