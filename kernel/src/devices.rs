//! Devices found at boot besides the consoles, clocks and interrupt
//! controller: the virtio-mmio transports the platform names and the
//! virtio functions on the PCI buses the platform reaches (the port
//! mechanism on a PC, the host bridge's ECAM window on AArch64, whose
//! unassigned memory BARs are given addresses from the bridge's windows
//! first). Each transport is probed once; an entropy device becomes the
//! kernel's virtio-rng, others wait in a list until a driver claims them
//! with [`claim_virtio`].

use alloc::boxed::Box;
use alloc::vec::Vec;
use basalt_drivers::fdt::{PciRange, PciSpace};
use basalt_drivers::pci::{self, Bar, BarAllocator, Command, ConfigSpace, Function};
use basalt_drivers::virtio::mmio::MmioTransport;
use basalt_drivers::virtio::pci::{Layout, PciRegions, PciRegisters, PciTransport, Region};
use basalt_drivers::virtio::rng::{RngError, VirtioRng};
use basalt_drivers::virtio::{DeviceType, Transport, VirtioError, VirtioTransport};
use spin::Mutex;

use crate::kprintln;
use crate::mem::{FrameDma, MemError};

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

/// The PCI buses the platform reaches, for enumeration.
pub struct PciRoot {
    /// their configuration space
    pub config: Box<dyn ConfigSpace>,
    /// the bus numbers it decodes (enumeration starts at the first)
    pub buses: core::ops::RangeInclusive<u8>,
    /// the host bridge's address windows, which unassigned BARs are
    /// given addresses from and which translate bus addresses to CPU
    /// addresses (empty on a PC: the firmware assigned the BARs, and bus
    /// addresses are CPU addresses)
    pub windows: Vec<PciRange>,
    /// how the configuration space is reached, for the log
    pub mechanism: &'static str,
}

/// Where a probed virtio device is.
#[derive(Debug, Clone, Copy)]
pub enum VirtioLocation {
    /// a virtio-mmio window
    Mmio(VirtioMmioWindow),
    /// a PCI function
    Pci {
        /// bus, device, function
        address: pci::Address,
        /// its legacy interrupt pin (0: none, 1-4: INTA#-INTD#) and the
        /// line the firmware routed it to (0xff: none); not used
        interrupt: (u8, u8),
        /// whether its MSI-X table entry 0 is programmed to wake this CPU
        /// and MSI-X is on (the transport then asks every queue to
        /// signal it)
        msix: bool,
    },
}

impl VirtioLocation {
    /// The transport's name: `virtio-mmio` or `virtio-pci`.
    pub fn transport(&self) -> &'static str {
        match self {
            VirtioLocation::Mmio(_) => "virtio-mmio",
            VirtioLocation::Pci { .. } => "virtio-pci",
        }
    }
}

/// The window (`0xa003e00+0x200 (interrupt 79)`) or the PCI address
/// (`00:01.0 (INTA#, line 10)`).
impl core::fmt::Display for VirtioLocation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            VirtioLocation::Mmio(w) => write!(f, "{}", WindowText(w)),
            VirtioLocation::Pci {
                address,
                msix: true,
                ..
            } => write!(f, "{address} (MSI-X)"),
            VirtioLocation::Pci {
                address,
                interrupt: (pin @ 1..=4, line),
                ..
            } => write!(
                f,
                "{address} (INT{}#, line {line})",
                char::from(b'A' + pin - 1)
            ),
            VirtioLocation::Pci { address, .. } => write!(f, "{address}"),
        }
    }
}

/// How long one request to virtio-rng may take before it counts as hung.
const RNG_DEADLINE_NS: u64 = 1_000_000_000;

static RNG: Mutex<Option<VirtioRng<VirtioTransport>>> = Mutex::new(None);
/// Transports probed at boot that no driver has claimed yet.
static UNCLAIMED: Mutex<Vec<(VirtioTransport, VirtioLocation)>> = Mutex::new(Vec::new());
static PROBED: spin::Once<()> = spin::Once::new();

/// Probes every virtio-mmio transport and enumerates PCI, once.
pub fn init() {
    PROBED.call_once(|| {
        probe_mmio();
        probe_pci();
    });
}

/// Takes a probed transport: an entropy device becomes the kernel's
/// virtio-rng (the first that works), others wait for [`claim_virtio`].
fn adopt(transport: VirtioTransport, at: VirtioLocation) {
    let kind = transport.device_type();
    let bus = at.transport();
    if kind != DeviceType::ENTROPY {
        kprintln!("{bus}: {kind} device at {at}");
        UNCLAIMED.lock().push((transport, at));
        return;
    }
    let mut rng = RNG.lock();
    if rng.is_some() {
        kprintln!("{bus}: {kind} device at {at}: one virtio-rng is enough; left alone");
        return;
    }
    match VirtioRng::new(transport, &mut FrameDma) {
        Ok(r) => {
            kprintln!("{bus}: {kind} device at {at}: virtio-rng ready");
            *rng = Some(r);
        }
        Err(e) => kprintln!("{bus}: {kind} device at {at}: virtio-rng failed: {e}"),
    }
}

fn probe_mmio() {
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
        adopt(transport.into(), VirtioLocation::Mmio(*w));
    }
    kprintln!(
        "virtio-mmio: {} transports probed, {} empty",
        windows.len(),
        empty
    );
}

/// Takes every probed, not yet claimed transport of device type `kind`
/// (virtio-mmio ones in the order the platform listed them, then PCI ones
/// in bus order), with where each is. A driver that claims a transport
/// owns it from then on. Transports give no interrupts: drivers poll
/// their queues (MSI-X stays off; the INTx line, if any, is in the
/// location but not routed).
pub fn claim_virtio(kind: DeviceType) -> Vec<(VirtioTransport, VirtioLocation)> {
    init();
    let mut all = UNCLAIMED.lock();
    let (wanted, rest) = core::mem::take(&mut *all)
        .into_iter()
        .partition(|(t, _)| t.device_type() == kind);
    *all = rest;
    wanted
}

/// Why a virtio-PCI function could not be used.
#[derive(Debug, Clone, Copy)]
enum PciProbeError {
    /// the transport refused it
    Virtio(VirtioError),
    /// a capability names a BAR that is not an assigned memory BAR
    BarUnusable(u8),
    /// a capability names a region past its BAR's end
    RegionOutsideBar(u8),
    /// no host-bridge window holds the BAR
    Unreachable(u64),
    /// the region could not be mapped
    Map(MemError),
}

impl core::fmt::Display for PciProbeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PciProbeError::Virtio(e) => write!(f, "{e}"),
            PciProbeError::BarUnusable(b) => {
                write!(f, "BAR {b} is not an assigned memory BAR")
            }
            PciProbeError::RegionOutsideBar(b) => {
                write!(f, "a capability's region lies outside BAR {b}")
            }
            PciProbeError::Unreachable(a) => {
                write!(f, "bus address {a:#x} is outside the host bridge's windows")
            }
            PciProbeError::Map(e) => write!(f, "cannot map the BAR: {e}"),
        }
    }
}

impl From<VirtioError> for PciProbeError {
    fn from(e: VirtioError) -> Self {
        PciProbeError::Virtio(e)
    }
}

/// The most functions enumerated (the rest are not looked at).
const MAX_PCI_FUNCTIONS: usize = 256;

fn probe_pci() {
    if let Some(host) = crate::platform::pci_host() {
        log_pci_host(host);
    }
    let Some(root) = crate::platform::pci_root() else {
        kprintln!("pci: no configuration space reachable");
        return;
    };
    let cfg = &*root.config;
    let mut functions = Vec::new();
    pci::enumerate(cfg, root.buses.clone(), &mut |f| {
        if functions.len() < MAX_PCI_FUNCTIONS {
            functions.push(*f);
        }
    });
    let mut alloc = BarAllocator::new(&root.windows);
    for f in &functions {
        let mut bars = pci::read_bars(cfg, f);
        let kind = basalt_drivers::virtio::pci::device_type(f);
        let (c, s, p) = f.class;
        kprintln!(
            "pci: {} {:04x}:{:04x} class {c:02x}{s:02x}{p:02x}{}",
            f.address,
            f.vendor_id,
            f.device_id,
            match kind {
                Some(k) => alloc::format!(": virtio {k}"),
                None => alloc::string::String::new(),
            }
        );
        if !alloc.is_empty() {
            let (assigned, failed) = pci::assign_bars(cfg, f, &mut bars, &mut alloc);
            if assigned + failed > 0 {
                kprintln!(
                    "pci: {}: {assigned} memory BARs assigned, {failed} without room",
                    f.address
                );
            }
        }
        let Some(kind) = kind else { continue };
        let mut at = VirtioLocation::Pci {
            address: f.address,
            interrupt: (f.interrupt_pin, f.interrupt_line),
            msix: false,
        };
        match virtio_pci_transport(cfg, f, kind, &bars, &root.windows) {
            Ok((t, msix)) => {
                if let VirtioLocation::Pci { msix: m, .. } = &mut at {
                    *m = msix;
                }
                adopt(t.into(), at)
            }
            Err(e) => kprintln!("virtio-pci: {kind} device at {at}: not used: {e}"),
        }
    }
    kprintln!(
        "pci: {} functions on buses {}-{} ({})",
        functions.len(),
        root.buses.start(),
        root.buses.end(),
        root.mechanism
    );
}

/// Maps the virtio structures of `f`, turns on its memory decoding and
/// bus mastering, and routes its MSI-X entry 0 to this CPU where the
/// platform can (the `bool`: whether it did).
fn virtio_pci_transport(
    cfg: &dyn ConfigSpace,
    f: &Function,
    kind: DeviceType,
    bars: &[Option<Bar>; 6],
    windows: &[PciRange],
) -> Result<(PciTransport, bool), PciProbeError> {
    let layout = Layout::read(cfg, f.address)?;
    let map = |r: Region| {
        let Some(Bar::Memory { base, size, .. }) =
            bars[usize::from(r.bar)].filter(|b| b.base() != 0)
        else {
            return Err(PciProbeError::BarUnusable(r.bar));
        };
        let (offset, len) = (u64::from(r.offset), u64::from(r.length));
        if len == 0 || offset.saturating_add(len) > size {
            return Err(PciProbeError::RegionOutsideBar(r.bar));
        }
        let bus = base + offset;
        let cpu = pci::cpu_address(windows, bus, len).ok_or(PciProbeError::Unreachable(bus))?;
        // SAFETY: inside a memory BAR of this function (checked), which
        // only this transport drives; each region is mapped once.
        #[allow(unsafe_code)]
        unsafe { crate::mem::map_pci_region(cpu, len) }.map_err(PciProbeError::Map)
    };
    let regions = PciRegions {
        common: map(layout.common)?,
        notify: map(layout.notify)?,
        isr: layout.isr.map(map).transpose()?,
        device: layout.device.map(map).transpose()?,
    };
    pci::enable(
        cfg,
        f.address,
        Command::MEMORY_SPACE.union(Command::BUS_MASTER),
    );
    let mut transport = PciTransport::new(kind, regions, layout.notify_multiplier)?;
    let msix = route_msix(cfg, f, bars, windows).is_some();
    if msix {
        transport.use_msix(0);
    }
    Ok((transport, msix))
}

/// Programs MSI-X table entry 0 of `f` with the platform's message for
/// this CPU, unmasked, and turns MSI-X on; `None` where the platform has
/// no MSI target or the function no usable table.
fn route_msix(
    cfg: &dyn ConfigSpace,
    f: &Function,
    bars: &[Option<Bar>; 6],
    windows: &[PciRange],
) -> Option<()> {
    let (address, data) = crate::platform::msi_message()?;
    let m = pci::msix(cfg, f.address)?;
    let Some(Bar::Memory { base, size, .. }) =
        bars[usize::from(m.table_bar)].filter(|b| b.base() != 0)
    else {
        return None;
    };
    if u64::from(m.table_offset) + pci::MSIX_ENTRY_LEN > size {
        return None;
    }
    let bus = base + u64::from(m.table_offset);
    let cpu = pci::cpu_address(windows, bus, pci::MSIX_ENTRY_LEN)?;
    // SAFETY: the first entry of this function's MSI-X table, inside its
    // memory BAR (checked); only this probe writes it.
    #[allow(unsafe_code)]
    let entry = unsafe { crate::mem::map_pci_region(cpu, pci::MSIX_ENTRY_LEN) }.ok()?;
    entry.write32(0, address as u32);
    entry.write32(4, (address >> 32) as u32);
    entry.write32(8, data);
    entry.write32(12, 0); // vector control: unmasked
    pci::enable_msix(cfg, f.address, &m);
    Some(())
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
        "pcie: ECAM host bridge at {:#x} ({} MiB, buses {}-{})",
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
