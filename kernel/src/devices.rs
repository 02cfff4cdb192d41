//! Devices found at boot besides the consoles, clocks and interrupt
//! controller: the virtio-mmio transports the platform names (each probed
//! once; an entropy device becomes the kernel's virtio-rng, others wait in
//! a list until a driver claims them with [`claim_virtio`]) and the PCIe
//! host bridge, whose ECAM window is recorded and logged for PCI
//! enumeration (issue 6).

use alloc::vec::Vec;
use basalt_drivers::fdt::{PciRange, PciSpace};
use basalt_drivers::virtio::mmio::MmioTransport;
use basalt_drivers::virtio::rng::{RngError, VirtioRng};
use basalt_drivers::virtio::{DeviceType, Transport};
use spin::Mutex;

use crate::kprintln;
use crate::mem::FrameDma;

/// A virtio-mmio register window the platform describes.
#[derive(Debug, Clone, Copy, Default)]
pub struct VirtioMmioWindow {
    /// physical address of the registers
    pub base: u64,
    /// length of the window
    pub size: u64,
    /// the device's interrupt (a GIC interrupt ID on AArch64, an IRQ on
    /// x86-64), not used yet: queues are polled
    pub interrupt: Option<u32>,
}

/// A PCIe host bridge with an ECAM configuration window.
#[derive(Debug, Clone, Copy, Default)]
pub struct PciHost {
    /// physical address of the ECAM window (bus `first_bus` at offset 0)
    pub ecam_base: u64,
    /// length of the ECAM window
    pub ecam_size: u64,
    /// the first bus number the window decodes
    pub first_bus: u8,
    /// the last bus number the window decodes
    pub last_bus: u8,
    /// the bridge's address windows (`ranges`)
    pub ranges: [Option<PciRange>; 8],
}

/// How long one request to virtio-rng may take before it counts as hung.
const RNG_DEADLINE_NS: u64 = 1_000_000_000;

static RNG: Mutex<Option<VirtioRng<MmioTransport>>> = Mutex::new(None);
/// Transports probed at boot that no driver has claimed yet.
static UNCLAIMED: Mutex<Vec<(MmioTransport, VirtioMmioWindow)>> = Mutex::new(Vec::new());
static PROBED: spin::Once<()> = spin::Once::new();

/// Logs the PCIe host bridge and probes every virtio-mmio transport, once.
pub fn init() {
    PROBED.call_once(probe);
}

fn probe() {
    match crate::platform::pci_host() {
        Some(host) => log_pci_host(host),
        None => kprintln!("pcie: no ECAM host bridge described"),
    }
    let windows = crate::platform::virtio_mmio_windows();
    if windows.is_empty() {
        kprintln!("virtio-mmio: no transports described");
        return;
    }
    let mut empty = 0;
    for w in windows {
        let at = WindowText(w);
        let transport = match crate::platform::virtio_register_window(w)
            .and_then(MmioTransport::probe_window)
        {
            Ok(Some(t)) => t,
            Ok(None) => {
                empty += 1;
                continue;
            }
            Err(e) => {
                kprintln!("virtio-mmio: {at}: {e}");
                continue;
            }
        };
        let kind = transport.device_type();
        if kind != DeviceType::ENTROPY {
            kprintln!("virtio-mmio: {kind} device at {at}");
            UNCLAIMED.lock().push((transport, *w));
            continue;
        }
        let mut rng = RNG.lock();
        if rng.is_some() {
            kprintln!("virtio-mmio: {kind} device at {at}: one virtio-rng is enough; left alone");
            continue;
        }
        match VirtioRng::new(transport, &mut FrameDma) {
            Ok(r) => {
                kprintln!("virtio-mmio: {kind} device at {at}: virtio-rng ready");
                *rng = Some(r);
            }
            Err(e) => kprintln!("virtio-mmio: {kind} device at {at}: virtio-rng failed: {e}"),
        }
    }
    kprintln!(
        "virtio-mmio: {} transports probed, {} empty",
        windows.len(),
        empty
    );
}

/// Takes every probed, not yet claimed transport of device type `kind`,
/// in the order the platform listed them. A driver that claims a
/// transport owns it from then on.
pub fn claim_virtio(kind: DeviceType) -> Vec<(MmioTransport, VirtioMmioWindow)> {
    init();
    let mut all = UNCLAIMED.lock();
    let (wanted, rest) = core::mem::take(&mut *all)
        .into_iter()
        .partition(|(t, _)| t.device_type() == kind);
    *all = rest;
    wanted
}

/// A window for the log: `0xa003e00+0x200 (interrupt 79)`.
struct WindowText<'a>(&'a VirtioMmioWindow);

impl core::fmt::Display for WindowText<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:#x}+{:#x}", self.0.base, self.0.size)?;
        match self.0.interrupt {
            Some(n) => write!(f, " (interrupt {n})"),
            None => Ok(()),
        }
    }
}

fn log_pci_host(host: &PciHost) {
    kprintln!(
        "pcie: ECAM host bridge at {:#x} ({} MiB, buses {}-{}); enumeration comes with issue 6",
        host.ecam_base,
        host.ecam_size >> 20,
        host.first_bus,
        host.last_bus
    );
    for r in host.ranges.iter().flatten() {
        let space = match r.space {
            PciSpace::Config => "config",
            PciSpace::Io => "I/O",
            PciSpace::Memory32 => "32-bit memory",
            PciSpace::Memory64 => "64-bit memory",
        };
        kprintln!(
            "pcie:   {space}{} window: CPU {:#x}..{:#x} = PCI {:#x}",
            if r.prefetchable {
                " (prefetchable)"
            } else {
                ""
            },
            r.cpu_address,
            r.cpu_address.saturating_add(r.size),
            r.pci_address
        );
    }
}

/// Fills `buf` from virtio-rng. `None` when there is no (working) device;
/// a device that fails is reported once and dropped, so a hung device
/// costs one deadline, not one per call.
pub fn virtio_random(buf: &mut [u8]) -> Option<()> {
    let mut guard = RNG.lock();
    let rng = guard.as_mut()?;
    let deadline = crate::time::monotonic_ns().saturating_add(RNG_DEADLINE_NS);
    match rng.fill(buf, &mut || crate::time::monotonic_ns() > deadline) {
        Ok(()) => Some(()),
        Err(e) => {
            report_rng_failure(e);
            *guard = None;
            None
        }
    }
}

fn report_rng_failure(e: RngError) {
    kprintln!("virtio-rng: {e}; no longer used");
}
