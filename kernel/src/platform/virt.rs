//! QEMU's AArch64 `virt` board and machines like it (the Raspberry Pi 4
//! among them), described by the device tree the loader passes (`reg`
//! translated through the buses' `ranges`) or by ACPI tables: memory, the
//! initrd and the command line from `/memory`, the reservations and
//! `/chosen`, PL011 or 16550 UARTs (the one `/chosen/stdout-path` names,
//! else the first, carries stdout and stdin, the next stderr; Firecracker's
//! console is an `ns16550a`), a PL031 RTC (none on
//! a Pi: the wall clock then starts at 0), PSCI, the BCM2835 watchdog, a
//! GICv2 (GIC-400) or GICv3, the virtio-mmio transports (`virtio,mmio`)
//! and the PCIe host bridge (`pci-host-ecam-generic`). The register
//! windows the kernel reaches are recorded in the boot information, which
//! the page tables map as device memory. The kernel log goes to the
//! semihosting console when the host enables semihosting, and semihosting's
//! `SYS_EXIT_EXTENDED` ends the VM with a status; PSCI `SYSTEM_OFF`
//! otherwise, or without PSCI the BCM2835 watchdog's reset.
#![allow(unsafe_code)]

use core::fmt::Write;
use core::sync::atomic::{AtomicU32, Ordering};

use basalt_arch::power::{self, PsciConduit};
use basalt_arch::{BootInfo, MemoryKind, MemoryRegion, PhysRange};
use basalt_drivers::console_uart::{ConsoleUart, UartModel};
use basalt_drivers::fdt::{Fdt, FdtError};
use basalt_drivers::gic::{Gicv2, Gicv3};
use basalt_drivers::ns16550::Ns16550Layout;
use basalt_drivers::pl031::Pl031;
use basalt_drivers::virtio::VirtioError;
use basalt_drivers::virtio::mmio::RegisterWindow;
use basalt_drivers::{SerialPort, WallClock};

use alloc::boxed::Box;
use basalt_drivers::pci::Ecam;

use crate::devices::{PciHost, PciRoot, VirtioMmioWindow};
use crate::log::EmergencyLog;

/// A program console: a PL011 or a 16550 in memory.
pub type Console = ConsoleUart;

/// The kernel log: the semihosting console.
pub struct LogChannel;

impl SerialPort for LogChannel {
    fn write_bytes(&mut self, bytes: &[u8]) {
        let _ = power::semihosting_write(bytes);
    }

    fn try_read_byte(&mut self) -> Option<u8> {
        None
    }
}

/// Why the device tree could not be used.
#[derive(Debug, Clone, Copy)]
pub enum BootInfoError {
    /// the loader passed no device tree
    NoDeviceTree,
    /// the device tree lies where the boot page tables do not reach
    Unreachable(u64),
    /// the device tree is malformed
    Fdt(FdtError),
    /// there is no device tree and the ACPI tables are unusable
    Acpi(basalt_drivers::acpi::AcpiError),
}

impl core::fmt::Display for BootInfoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BootInfoError::NoDeviceTree => {
                f.write_str("the loader passed neither a device tree nor ACPI tables")
            }
            BootInfoError::Unreachable(a) => {
                write!(
                    f,
                    "the device tree at {a:#x} is outside the boot identity map"
                )
            }
            BootInfoError::Fdt(e) => write!(f, "device tree: {e}"),
            BootInfoError::Acpi(e) => write!(f, "ACPI tables (no device tree): {e}"),
        }
    }
}

/// What the kernel uses from the device tree besides the boot information.
#[derive(Default)]
struct Machine {
    /// the UARTs (PL011s or 16550s): the console `/chosen/stdout-path`
    /// names (else the first by address), then the next
    uarts: [Option<(UartModel, u64)>; 2],
    /// the BCM2835 power-management block (`brcm,bcm2835-pm-wdt`): its
    /// watchdog resets the machine where there is no PSCI
    pm_watchdog: Option<u64>,
    /// the PL031's register window
    rtc: Option<u64>,
    /// how PSCI is called
    psci: Option<PsciConduit>,
    /// the GIC: its version (2 or 3), distributor, and CPU interface (v2)
    /// or first redistributor (v3)
    gic: Option<(u8, u64, u64)>,
    /// the virtual timer's interrupt ID, from the timer node
    virtual_timer: Option<u32>,
    /// virtio-mmio register windows, in device-tree order
    virtio: [VirtioMmioWindow; MAX_VIRTIO],
    /// how many of `virtio` are filled in
    nvirtio: usize,
    /// the PCIe host bridge
    pcie: Option<PciHost>,
    /// the description came from ACPI, not a device tree
    from_acpi: bool,
    /// the SPCR's console, when it is neither a PL011 nor a 16550 in
    /// memory (its interface type)
    unsupported_console: Option<u8>,
}

/// The most virtio-mmio transports recorded (QEMU `virt` has 32; arrays
/// longer than 32 have no `Default`).
const MAX_VIRTIO: usize = 32;

static MACHINE: spin::Once<Machine> = spin::Once::new();
static BOOT_INFO: spin::Once<BootInfo> = spin::Once::new();

/// Whether `[start, start + len)` is memory the boot tables identity-map:
/// the first 4 GiB, and the GiB blocks holding the image and the device
/// tree wherever the loader put them (below 512 GiB). The boot tables map
/// whole GiB blocks, so checking one address in each block the range
/// touches is enough.
fn boot_mapped(start: u64, len: u64) -> bool {
    const GIB: u64 = 1 << 30;
    let Some(last) = len.checked_sub(1).and_then(|l| start.checked_add(l)) else {
        return false;
    };
    let identity = |a: u64| basalt_arch::paging::translate(a as usize) == Some(a);
    let mut at = start;
    while at / GIB < last / GIB {
        if !identity(at) {
            return false;
        }
        at = (at / GIB + 1) * GIB;
    }
    identity(at) && identity(last)
}

/// Reads the machine's description into a complete [`BootInfo`]: the
/// device tree when the loader passed one (its memory stays reserved: the
/// command line points into it), else the ACPI tables a UEFI loader found
/// (servers such as AWS Graviton describe themselves with ACPI alone).
pub fn complete_boot_info(info: &'static BootInfo) -> Result<&'static BootInfo, BootInfoError> {
    let Some(dtb) = info.device_tree else {
        let rsdp = info.acpi_rsdp.ok_or(BootInfoError::NoDeviceTree)?;
        return complete_from_acpi(info, rsdp);
    };
    if !boot_mapped(dtb, 64) {
        return Err(BootInfoError::Unreachable(dtb));
    }
    // SAFETY: the header's first 64 bytes are RAM the boot tables map.
    let header = unsafe { core::slice::from_raw_parts(dtb as *const u8, 64) };
    let size = Fdt::total_size(header).map_err(BootInfoError::Fdt)? as u64;
    if !boot_mapped(dtb, size) {
        return Err(BootInfoError::Unreachable(dtb));
    }
    // SAFETY: the whole blob is mapped RAM (checked); the frame allocator
    // never hands it out (it is carved out of the memory map below), so it
    // stays intact for the kernel's life.
    let blob: &'static [u8] =
        unsafe { core::slice::from_raw_parts(dtb as *const u8, size as usize) };
    let fdt = Fdt::new(blob).map_err(BootInfoError::Fdt)?;
    let mut out = info.clone();
    // A UEFI loader's memory map is the truth (the firmware's own
    // reservations are in it, not in the tree's `/memory`); the tree it
    // passes on lies in firmware memory that map may call free.
    let firmware_map = !out.regions().is_empty();
    if firmware_map {
        out.carve_out(PhysRange {
            start: dtb,
            len: size,
        });
    }
    let mut machine = Machine::default();
    let mut holes = [PhysRange::default(); 16];
    holes[0] = PhysRange {
        start: dtb,
        len: size,
    };
    let mut nholes = 1;
    for (start, len) in fdt.reservations() {
        if nholes < holes.len() {
            holes[nholes] = PhysRange { start, len };
            nholes += 1;
        }
    }
    // `/reserved-memory`'s children with a `reg` are reservations too
    // (those with only a `size` are for Linux to place).
    let mut in_reserved = false;
    for node in fdt.nodes() {
        let node = node.map_err(BootInfoError::Fdt)?;
        if node.depth == 1 {
            in_reserved = node.base_name() == b"reserved-memory";
        } else if in_reserved && node.depth == 2 && node.is_enabled() {
            for (start, len) in node.reg() {
                if nholes < holes.len() && len > 0 {
                    holes[nholes] = PhysRange { start, len };
                    nholes += 1;
                }
            }
        }
    }
    let mut uarts = [(UartModel::Pl011, 0u64, 0u64); 8];
    let mut nuarts = 0;
    let stdout = fdt.stdout_node().map_err(BootInfoError::Fdt)?;
    let stdout_uart = stdout
        .filter(|n| uart_model(n).is_some() && n.is_enabled())
        .and_then(|n| n.reg().next());
    for node in fdt.nodes() {
        let node = node.map_err(BootInfoError::Fdt)?;
        if !node.is_enabled() {
            continue;
        }
        if node.string("device_type") == Some(b"memory") {
            if firmware_map {
                continue;
            }
            for (start, len) in node.reg() {
                push_usable(&mut out, PhysRange { start, len }, &holes[..nholes]);
            }
        } else if node.depth == 1 && node.base_name() == b"chosen" {
            if let Some(args) = node.string("bootargs")
                && info.cmdline.is_empty()
            {
                out.cmdline = args;
            }
            if info.initrd.is_some() {
                continue;
            }
            if let (Some(s), Some(e)) = (
                node.number("linux,initrd-start"),
                node.number("linux,initrd-end"),
            ) && e > s
            {
                out.initrd = Some(PhysRange {
                    start: s,
                    len: e - s,
                });
            }
        } else if node.depth == 1 && node.base_name() == b"psci" {
            machine.psci = match node.string("method") {
                Some(b"hvc") => Some(PsciConduit::Hvc),
                Some(b"smc") => Some(PsciConduit::Smc),
                _ => None,
            };
        } else if let Some(model) = uart_model(&node) {
            if let Some((base, _)) = node.reg().next()
                && nuarts < uarts.len()
            {
                uarts[nuarts] = (model, base, model.window_len());
                nuarts += 1;
            }
        } else if node.is_compatible("brcm,bcm2835-pm-wdt") || node.is_compatible("brcm,bcm2835-pm")
        {
            if let Some((base, len)) = node.reg().next()
                && machine.pm_watchdog.is_none()
            {
                machine.pm_watchdog = Some(base);
                out.push_device_window(PhysRange { start: base, len });
            }
        } else if let Some(version) = gic_version(&node) {
            let mut reg = node.reg();
            if let (Some(d), Some(c)) = (reg.next(), reg.next()) {
                machine.gic = Some((version, d.0, c.0));
                out.push_device_window(PhysRange {
                    start: d.0,
                    len: d.1,
                });
                out.push_device_window(PhysRange {
                    start: c.0,
                    len: c.1,
                });
            }
        } else if node.is_compatible("arm,armv8-timer") {
            // interrupts: secure, non-secure, virtual, hypervisor; each
            // <type number flags>, type 1 = PPI (IDs from 16)
            let cell = |i: usize| {
                node.property("interrupts")
                    .and_then(|v| v.get(i * 4..i * 4 + 4))
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            };
            if cell(6) == Some(1) {
                machine.virtual_timer = cell(7).map(|n| n.saturating_add(16));
            }
        } else if node.is_compatible("virtio,mmio") {
            if let Some((base, size)) = node.reg().next()
                && base.checked_add(size).is_some()
                && machine.nvirtio < MAX_VIRTIO
                && out.push_device_window(PhysRange {
                    start: base,
                    len: size,
                })
            {
                machine.virtio[machine.nvirtio] = VirtioMmioWindow {
                    base,
                    size,
                    interrupt: node.gic_interrupts().next(),
                };
                machine.nvirtio += 1;
            }
        } else if node.is_compatible("pci-host-ecam-generic") && machine.pcie.is_none() {
            if let Some((ecam_base, ecam_size)) = node.reg().next() {
                let mut buses = node.cells("bus-range");
                let (first, last) = (buses.next().unwrap_or(0), buses.next().unwrap_or(255));
                let mut host = PciHost {
                    ecam_base,
                    ecam_size,
                    first_bus: first.min(255) as u8,
                    last_bus: last.min(255) as u8,
                    ranges: [None; 8],
                };
                for (slot, r) in host.ranges.iter_mut().zip(node.pci_ranges()) {
                    *slot = Some(r);
                }
                machine.pcie = Some(host);
            }
        } else if node.is_compatible("arm,pl031")
            && machine.rtc.is_none()
            && let Some((base, len)) = node.reg().next()
        {
            machine.rtc = Some(base);
            out.push_device_window(PhysRange { start: base, len });
        }
    }
    // The console stdout-path names, if a UART driven here, first; then
    // the others by address.
    let uarts = &mut uarts[..nuarts];
    uarts.sort_unstable_by_key(|(_, base, _)| (Some(*base) != stdout_uart.map(|s| s.0), *base));
    for (slot, &(model, base, len)) in machine.uarts.iter_mut().zip(uarts.iter()) {
        *slot = Some((model, base));
        out.push_device_window(PhysRange { start: base, len });
    }
    MACHINE.call_once(|| machine);
    map_boot_device_windows(&out);
    Ok(BOOT_INFO.call_once(|| out))
}

/// Makes the device windows device memory in the boot stub's map too,
/// which maps the first 4 GiB as normal memory above the first GiB: the
/// console is used before the kernel's tables replace that map (a
/// Raspberry Pi's peripherals lie in the fourth GiB). A window that cannot
/// be remapped stays as it was (QEMU does not tell the difference; a board
/// may).
fn map_boot_device_windows(info: &BootInfo) {
    for w in info.device_windows() {
        // SAFETY: early boot on the boot tables, one thread; device
        // windows hold registers, not RAM the kernel uses.
        if !unsafe { basalt_arch::paging::boot_device_window(w.start, w.len) } {
            BOOT_MAP_NORMAL_WINDOWS.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// How many device windows stayed normal memory in the boot map.
static BOOT_MAP_NORMAL_WINDOWS: core::sync::atomic::AtomicUsize =
    core::sync::atomic::AtomicUsize::new(0);

/// ACPI tables as the firmware left them: in RAM the boot tables map.
struct FirmwareTables;

impl basalt_drivers::acpi::PhysMemory for FirmwareTables {
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        if !boot_mapped(addr, buf.len() as u64) {
            return false;
        }
        // SAFETY: normal memory the boot tables identity-map (checked),
        // only read.
        let src = unsafe { core::slice::from_raw_parts(addr as *const u8, buf.len()) };
        buf.copy_from_slice(src);
        true
    }
}

/// The machine from ACPI alone: the console from the SPCR, the GIC from
/// the MADT, the virtual timer's interrupt from the GTDT, PSCI from the
/// FADT, the ECAM window from the MCFG with the host bridge's windows from
/// the DSDT, and the virtio-mmio devices the DSDT lists. The memory map,
/// command line and bundle are the loader's.
fn complete_from_acpi(
    info: &'static BootInfo,
    rsdp: u64,
) -> Result<&'static BootInfo, BootInfoError> {
    use basalt_drivers::acpi::{self, GicVersion, Register, UartKind};
    let platform =
        acpi::find_arm_platform(&FirmwareTables, Some(rsdp)).map_err(BootInfoError::Acpi)?;
    let mut machine = Machine::default();
    if let Some(spcr) = &platform.console {
        // A 16550 on PCI (Graviton's) is used where the firmware put its
        // BAR: the SPCR's address is that BAR's.
        match (spcr.kind, spcr.base) {
            (UartKind::Pl011, Some(Register::Memory(base))) => {
                machine.uarts[0] = Some((UartModel::Pl011, base));
            }
            (
                UartKind::Ns16550 {
                    mmio: true,
                    reg_shift,
                    access_bytes,
                },
                Some(Register::Memory(base)),
            ) => {
                let layout = Ns16550Layout {
                    reg_shift,
                    access_bytes,
                };
                machine.uarts[0] = Some((UartModel::Ns16550(layout), base));
            }
            _ => machine.unsupported_console = Some(spcr.interface_type),
        }
    }
    machine.psci = platform.psci.map(|c| match c {
        acpi::PsciConduit::Hvc => PsciConduit::Hvc,
        acpi::PsciConduit::Smc => PsciConduit::Smc,
    });
    if let Some(gic) = &platform.gic {
        let dist = gic.distributor.base;
        let second = match gic.version {
            GicVersion::V1 | GicVersion::V2 => gic.boot_cpu.map(|c| (2, c.base)),
            GicVersion::V3 | GicVersion::V4 => gic
                .redistributor
                .map(|r| r.base)
                .or(gic.boot_cpu.map(|c| c.gicr_base))
                .map(|r| (3, r)),
        };
        machine.gic = second
            .map(|(v, b)| (v, dist, b))
            .filter(|(_, _, b)| *b != 0);
    }
    machine.virtual_timer = platform.timer.and_then(|t| t.el1_virtual).map(|t| t.gsiv);
    let mut devices = [acpi::VirtioMmioDevice::default(); MAX_VIRTIO];
    let n = acpi::find_virtio_mmio(&FirmwareTables, Some(rsdp), None, &mut devices).unwrap_or(0);
    for d in &devices[..n] {
        if d.base.checked_add(d.size).is_some() && machine.nvirtio < MAX_VIRTIO {
            machine.virtio[machine.nvirtio] = VirtioMmioWindow {
                base: d.base,
                size: d.size,
                interrupt: d.irq,
            };
            machine.nvirtio += 1;
        }
    }
    if let Some(ecam) = platform.ecam_windows().first() {
        let mut host = PciHost {
            ecam_base: ecam.base,
            ecam_size: (u64::from(ecam.end_bus) - u64::from(ecam.start_bus) + 1) << 20,
            first_bus: ecam.start_bus,
            last_bus: ecam.end_bus,
            ranges: [None; 8],
        };
        let ranges = platform
            .pci_host
            .iter()
            .flat_map(|h| h.windows().iter())
            .filter_map(|w| w.as_pci_range());
        for (slot, r) in host.ranges.iter_mut().zip(ranges) {
            *slot = Some(r);
        }
        machine.pcie = Some(host);
    }
    machine.from_acpi = true;
    let mut out = info.clone();
    // The registers the kernel reaches through the identity map: the
    // console, the GIC (a v2 distributor and CPU interface, or a v3
    // distributor and one redistributor's two frames).
    if let Some((model, base)) = machine.uarts[0] {
        out.push_device_window(PhysRange {
            start: base,
            len: model.window_len(),
        });
    }
    if let Some((version, dist, second)) = machine.gic {
        out.push_device_window(PhysRange {
            start: dist,
            len: 0x10000,
        });
        out.push_device_window(PhysRange {
            start: second,
            len: if version == 2 { 0x2000 } else { 0x20000 },
        });
    }
    for w in &machine.virtio[..machine.nvirtio] {
        out.push_device_window(PhysRange {
            start: w.base,
            len: w.size,
        });
    }
    MACHINE.call_once(|| machine);
    map_boot_device_windows(&out);
    Ok(BOOT_INFO.call_once(|| out))
}

/// Says on the kernel log where the machine's description came from and
/// what of it the kernel could not use.
pub fn log_firmware_summary() {
    let Some(m) = MACHINE.get() else { return };
    let source = if m.from_acpi { "ACPI" } else { "device tree" };
    // Called before the heap exists: nothing here may allocate.
    struct Hex(Option<u64>);
    impl core::fmt::Display for Hex {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            match self.0 {
                Some(a) => write!(f, "{a:#x}"),
                None => f.write_str("none"),
            }
        }
    }
    let hex = Hex;
    struct Uart(Option<(UartModel, u64)>);
    impl core::fmt::Display for Uart {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            match self.0 {
                Some((UartModel::Pl011, base)) => write!(f, "{base:#x}"),
                Some((model, base)) => write!(f, "{base:#x} ({model})"),
                None => f.write_str("none"),
            }
        }
    }
    kprintln!(
        "firmware tables: {source}: console {}, GICv{} at {} and {}, virtual timer {:?}, PSCI {:?}, BCM2835 watchdog {}, {} virtio-mmio, PCIe ECAM {}",
        Uart(m.uarts[0]),
        m.gic.map_or(0, |g| g.0),
        hex(m.gic.map(|g| g.1)),
        hex(m.gic.map(|g| g.2)),
        m.virtual_timer,
        m.psci,
        hex(m.pm_watchdog),
        m.nvirtio,
        hex(m.pcie.as_ref().map(|p| p.ecam_base))
    );
    let normal = BOOT_MAP_NORMAL_WINDOWS.load(Ordering::Relaxed);
    if normal > 0 {
        kprintln!(
            "firmware tables: {normal} device windows were normal memory until the kernel's page tables (they share a block with the kernel image)"
        );
    }
    if m.rtc.is_none() && !m.from_acpi {
        kprintln!(
            "firmware tables: no PL031 real-time clock: the wall clock starts at 0 (1970) unless the loader read the time"
        );
    }
    if let Some(kind) = m.unsupported_console {
        kprintln!(
            "firmware tables: the SPCR names a console of interface type {kind:#x}, which this kernel does not drive"
        );
    }
}

/// The GIC version a node describes, if it is a GICv2 or GICv3.
fn gic_version(node: &basalt_drivers::fdt::Node<'_>) -> Option<u8> {
    if node.is_compatible("arm,cortex-a15-gic") || node.is_compatible("arm,gic-400") {
        Some(2)
    } else if node.is_compatible("arm,gic-v3") {
        Some(3)
    } else {
        None
    }
}

/// Adds `range` minus `holes` to the memory map as usable RAM.
fn push_usable(info: &mut BootInfo, range: PhysRange, holes: &[PhysRange]) {
    let mut pieces = [PhysRange::default(); 20];
    pieces[0] = range;
    let mut n = 1;
    for hole in holes.iter().filter(|h| h.len > 0) {
        let mut i = 0;
        while i < n {
            let r = pieces[i];
            if hole.end() <= r.start || hole.start >= r.end() {
                i += 1;
                continue;
            }
            let left = PhysRange {
                start: r.start,
                len: hole.start.saturating_sub(r.start),
            };
            let right_start = hole.end().min(r.end());
            let right = PhysRange {
                start: right_start,
                len: r.end() - right_start,
            };
            pieces[i] = left;
            if right.len > 0 && n < pieces.len() {
                pieces[n] = right;
                n += 1;
            }
            i += 1;
        }
    }
    for p in pieces[..n].iter().filter(|p| p.len > 0) {
        info.push_region(MemoryRegion {
            range: *p,
            kind: MemoryKind::Usable,
        });
    }
}

fn uart(i: usize) -> Option<ConsoleUart> {
    let (model, base) = MACHINE.get()?.uarts[i]?;
    // SAFETY: a UART the firmware tables name, recorded as a device
    // window (device memory in the identity map); only the console statics
    // drive it.
    unsafe { ConsoleUart::new(model, base) }.ok()
}

/// The programming model of a UART node this kernel drives: a PL011, or a
/// 16550 (`ns16550a`, as Firecracker names its console, or `ns16550`)
/// with the node's `reg-shift` and `reg-io-width` (default 0 and 1).
fn uart_model(node: &basalt_drivers::fdt::Node<'_>) -> Option<UartModel> {
    if node.is_compatible("arm,pl011") {
        Some(UartModel::Pl011)
    } else if node.is_compatible("ns16550a") || node.is_compatible("ns16550") {
        let reg_shift = node
            .number("reg-shift")
            .unwrap_or(0)
            .min(u64::from(u8::MAX)) as u8;
        let access_bytes = node
            .number("reg-io-width")
            .unwrap_or(1)
            .min(u64::from(u8::MAX)) as u8;
        Some(UartModel::Ns16550(Ns16550Layout {
            reg_shift,
            access_bytes,
        }))
    } else {
        None
    }
}

/// Writes to the shared console (the first PL011) without locks: a second
/// handle on the same registers, used only for reports that may interrupt
/// the first's user.
pub fn emergency_console_write(bytes: &[u8]) {
    if let Some(port) = uart(0) {
        port.emergency_write(bytes);
    }
}

/// The first UART (stdout, stdin) and the second (stderr).
pub fn consoles() -> [Option<Console>; 2] {
    [uart(0), uart(1)]
}

/// The semihosting console, if the host offers it.
pub fn log_channel() -> Option<LogChannel> {
    power::semihosting_present().then_some(LogChannel)
}

/// Writes to the kernel log without locks (fault and panic reports).
pub fn emergency_log_write(bytes: &[u8]) {
    let _ = power::semihosting_write(bytes);
}

/// The PL031's time, in seconds since the Unix epoch.
pub fn wall_clock_seconds() -> Option<u64> {
    let base = MACHINE.get()?.rtc?;
    // SAFETY: the RTC the device tree names, in device memory.
    unsafe { Pl031::new(base) }?.unix_seconds()
}

/// The virtio-mmio transports the firmware tables name (device windows in
/// the identity map).
pub fn virtio_mmio_windows() -> &'static [VirtioMmioWindow] {
    MACHINE.get().map_or(&[], |m| &m.virtio[..m.nvirtio])
}

/// The register window of a transport [`virtio_mmio_windows`] returned.
/// Call once per window (`devices::init` does).
pub fn virtio_register_window(w: &VirtioMmioWindow) -> Result<RegisterWindow, VirtioError> {
    // SAFETY: a virtio-mmio window the device tree names, recorded as a
    // device window, which the identity map covers as device memory; the
    // caller probes each window once and the transport built on it is
    // its only user.
    unsafe { RegisterWindow::new(w.base, w.size) }
}

/// The PCIe host bridge the device tree names.
pub fn pci_host() -> Option<&'static PciHost> {
    MACHINE.get()?.pcie.as_ref()
}

/// The most buses of the ECAM window mapped (1 MiB each): `virt` has one
/// root bus, and a bus behind a bridge needs firmware to number it, which
/// `virt` under `-kernel` does not run.
const MAX_ECAM_BUSES: u64 = 16;

/// PCI through the host bridge's ECAM window, mapped as device memory
/// (QEMU puts it at 256 GiB, outside the identity map), for its first
/// buses; BARs are unassigned (no firmware ran) and get addresses from
/// the bridge's memory windows. Call once (`devices::init` does).
pub fn pci_root() -> Option<PciRoot> {
    let host = pci_host()?;
    let buses = u64::from(host.last_bus.saturating_sub(host.first_bus)) + 1;
    let len = (buses.min(MAX_ECAM_BUSES) << 20).min(host.ecam_size);
    // SAFETY: the ECAM window the device tree names (device registers,
    // not RAM), mapped once, used only by the `Ecam` built on it.
    let virt = match unsafe { crate::mem::map_device(host.ecam_base, len) } {
        Ok(v) => v,
        Err(e) => {
            kprintln!("pcie: cannot map the ECAM window: {e}");
            return None;
        }
    };
    // SAFETY: `len` bytes from the window's start, just mapped as device
    // memory, for this accessor alone.
    let ecam = unsafe { Ecam::new(virt, len as usize, host.first_bus) };
    Some(PciRoot {
        buses: ecam.buses(),
        config: Box::new(ecam),
        windows: host.ranges.iter().flatten().copied().collect(),
        mechanism: "ECAM",
    })
}

/// The generic timer states its frequency (CNTFRQ); nothing to measure.
pub fn calibrate_cycles() -> Option<u64> {
    None
}

/// Routes the virtual timer's interrupt through the GIC so sleeps can
/// halt in `wfi`; without a GIC (or on failure) the timer code falls back
/// to the event stream.
pub fn init_timer_wakeup() {
    let Some(m) = MACHINE.get() else { return };
    let (Some((version, dist, cpu)), Some(id)) = (m.gic, m.virtual_timer) else {
        return;
    };
    let routed = if version == 2 {
        // SAFETY: the GIC the device tree names, in device memory; only
        // this function touches it.
        unsafe { Gicv2::new(dist, cpu) }.and_then(|g| g.wake_on_ppi(id))
    } else {
        // SAFETY: as above (distributor and first redistributor).
        unsafe { Gicv3::new(dist, cpu) }.and_then(|g| g.wake_on_ppi(id))
    };
    match routed {
        Ok(()) if version == 2 || basalt_arch::cpu::enable_gicv3_cpu_interface() => {
            basalt_arch::cpu::timer_interrupt_routed();
            // Interrupts are taken only while ticks run (`start_ticks`).
            basalt_arch::traps::set_irq_hook(on_interrupt);
            basalt_arch::cpu::set_before_halt_hook(unmask_devices);
        }
        Ok(()) => kprintln!("timer: no GICv3 CPU interface"),
        Err(e) => kprintln!("timer: no wake-up interrupt: {e}"),
    }
}

/// Device interrupts the handler turned off (a bit per id, 32..1024):
/// they are level-sensitive, so each stays off until the next halt, by
/// when the driver has looked at its device ([`unmask_devices`]).
static MASKED_DEVICES: [AtomicU32; 32] = [const { AtomicU32::new(0) }; 32];

/// The kernel's IRQ handler (taken only while ticks run): acknowledges
/// the interrupt at the GIC; the virtual timer's becomes a tick; a
/// device's is turned off until the next halt and wakes it; then ends it.
fn on_interrupt() {
    let Some(m) = MACHINE.get() else { return };
    let Some((version, dist, cpu)) = m.gic else {
        return;
    };
    // SAFETY: the GIC the machine description names, in device memory;
    // the kernel's one thread programs it only with interrupts masked or
    // from this handler.
    let v2 = (version == 2)
        .then(|| unsafe { Gicv2::new(dist, cpu) }.ok())
        .flatten();
    let iar = match &v2 {
        Some(g) => g.acknowledge(),
        None => basalt_arch::cpu::gicv3_acknowledge(),
    };
    let id = iar & 0x00ff_ffff;
    if (1020..1024).contains(&id) {
        return; // spurious: nothing to end
    }
    if Some(id) == m.virtual_timer {
        basalt_arch::cpu::timer_tick();
    } else if (32..1024).contains(&id) {
        match &v2 {
            Some(g) => g.enable_spi(id, false),
            None => {
                // SAFETY: as above.
                if let Ok(g) = unsafe { Gicv3::new(dist, cpu) } {
                    g.enable_spi(id, false);
                }
            }
        }
        MASKED_DEVICES[(id / 32) as usize].fetch_or(1 << (id % 32), Ordering::SeqCst);
        basalt_arch::cpu::note_wake();
    }
    match &v2 {
        Some(g) => g.end(iar),
        None => basalt_arch::cpu::gicv3_end(iar),
    }
}

/// Turns the device interrupts [`on_interrupt`] turned off back on (before
/// a halt, interrupts masked): one still asserted is pending again and
/// wakes the halt.
fn unmask_devices() {
    let Some((version, dist, cpu)) = MACHINE.get().and_then(|m| m.gic) else {
        return;
    };
    for (bank, bits) in MASKED_DEVICES.iter().enumerate() {
        let mut masked = bits.swap(0, Ordering::SeqCst);
        while masked != 0 {
            let id = bank as u32 * 32 + masked.trailing_zeros();
            masked &= masked - 1;
            if version == 2 {
                // SAFETY: as in `on_interrupt`.
                if let Ok(g) = unsafe { Gicv2::new(dist, cpu) } {
                    g.enable_spi(id, true);
                }
                // SAFETY: as in `on_interrupt`.
            } else if let Ok(g) = unsafe { Gicv3::new(dist, cpu) } {
                g.enable_spi(id, true);
            }
        }
    }
}

/// Why a device's interrupt could not be routed to this CPU.
#[derive(Debug, Clone, Copy)]
pub enum InterruptRouteError {
    /// the device tree names no GIC, or the timer's interrupt could not be
    /// routed (so the GIC is not on)
    NoGic,
    /// the GIC refused
    Gic(basalt_drivers::gic::GicError),
}

impl core::fmt::Display for InterruptRouteError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            InterruptRouteError::NoGic => f.write_str("no usable GIC"),
            InterruptRouteError::Gic(e) => write!(f, "{e}"),
        }
    }
}

/// No MSI target: `virt`'s GICv2m or ITS are not driven, so PCI devices
/// are polled here.
pub fn msi_message() -> Option<(u64, u32)> {
    None
}

/// Routes a device's interrupt (a GIC interrupt ID from the device tree,
/// a shared peripheral interrupt) to this CPU, level-sensitive, so it
/// wakes `wfi` like the timer's (never taken: interrupts stay masked).
/// Needs the GIC [`init_timer_wakeup`] turned on.
pub fn route_device_interrupt(id: u32) -> Result<(), InterruptRouteError> {
    let m = MACHINE.get().ok_or(InterruptRouteError::NoGic)?;
    let (version, dist, cpu) = m.gic.ok_or(InterruptRouteError::NoGic)?;
    if !crate::time::sleeps_halt() {
        return Err(InterruptRouteError::NoGic);
    }
    let routed = if version == 2 {
        // SAFETY: the GIC the device tree names, in device memory; only
        // the kernel's one thread touches it, here and in
        // `init_timer_wakeup`, never at once.
        unsafe { Gicv2::new(dist, cpu) }.and_then(|g| g.wake_on_spi(id))
    } else {
        // SAFETY: as above (distributor and first redistributor).
        unsafe { Gicv3::new(dist, cpu) }.and_then(|g| g.wake_on_spi(id))
    };
    routed.map_err(InterruptRouteError::Gic)
}

/// Nothing to read ahead: PSCI needs no tables.
pub fn prepare_power_off() {}

/// Ends the VM after the status marker: semihosting's exit with QEMU
/// status `value << 1 | 1` (the same statuses as x86-64's debug-exit
/// device), else PSCI `SYSTEM_OFF`, else the BCM2835 watchdog's reset
/// (a Raspberry Pi has no PSCI under a bare `kernel=`; QEMU with
/// `-no-reboot` turns the reset into an exit), else a halt (the host has
/// the marker).
pub fn leave(value: u32) -> ! {
    let _ = power::semihosting_exit(value << 1 | 1);
    let m = MACHINE.get();
    if let Some(conduit) = m.and_then(|m| m.psci) {
        let _ = writeln!(
            EmergencyLog,
            "power: powering off via PSCI SYSTEM_OFF ({conduit:?})"
        );
        let e = power::psci_system_off(conduit);
        let _ = writeln!(EmergencyLog, "power: {e}");
    } else if let Some(base) = m.and_then(|m| m.pm_watchdog) {
        let _ = writeln!(
            EmergencyLog,
            "power: no PSCI; resetting through the BCM2835 watchdog at {base:#x} (halt partition 63)"
        );
        // SAFETY: the power-management block the device tree names,
        // recorded as a device window; nothing else drives it, and the
        // kernel is done.
        unsafe { bcm2835_watchdog_halt(base) };
    } else {
        let _ = writeln!(
            EmergencyLog,
            "power: no PSCI and no BCM2835 watchdog in the device tree"
        );
    }
    basalt_arch::cpu::halt_forever()
}

/// Resets the machine the way Linux's `bcm2835_wdt` powers off: "halt"
/// (partition 63) in PM_RSTS for the firmware, then a full reset after 10
/// watchdog ticks. Every write carries the password 0x5a in the top byte.
///
/// # Safety
/// `base` is the BCM2835 power-management block, identity-mapped as
/// device memory.
unsafe fn bcm2835_watchdog_halt(base: u64) {
    const PASSWORD: u32 = 0x5a00_0000;
    const RSTC: u64 = 0x1c;
    const RSTS: u64 = 0x20;
    const WDOG: u64 = 0x24;
    const RSTC_WRCFG_CLR: u32 = 0xffff_ffcf;
    const RSTC_WRCFG_FULL_RESET: u32 = 0x20;
    const RSTS_HALT: u32 = 0x555;
    let read = |off: u64| {
        // SAFETY: a register of the block (contract), a 32-bit access.
        unsafe { ((base + off) as *const u32).read_volatile() }
    };
    let write = |off: u64, v: u32| {
        // SAFETY: as above.
        unsafe { ((base + off) as *mut u32).write_volatile(v) }
    };
    write(RSTS, PASSWORD | read(RSTS) | RSTS_HALT);
    write(WDOG, PASSWORD | 10);
    write(
        RSTC,
        PASSWORD | (read(RSTC) & RSTC_WRCFG_CLR) | RSTC_WRCFG_FULL_RESET,
    );
}
