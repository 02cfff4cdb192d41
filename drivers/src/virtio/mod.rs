//! Virtio 1.x ("modern") devices: the transport abstraction, the split
//! virtqueue, and the device drivers on top of them.
//!
//! A device driver (here [`rng::VirtioRng`]) talks to its device only
//! through the [`Transport`] trait and [`SplitQueue`]s, so the same driver
//! runs over virtio-mmio ([`mmio::MmioTransport`], QEMU `virt` and
//! `microvm`) and over virtio-PCI ([`pci::PciTransport`], QEMU `q35`,
//! `pc` and `virt`'s PCIe bus); [`VirtioTransport`] is either, for code
//! that holds devices of both kinds. The device-independent part of
//! bringing a device up — reset, the status handshake, feature negotiation
//! — is [`begin_init`] and [`finish_init`], written once against the
//! trait.
//!
//! Memory shared with devices comes from the kernel through [`dma::Dma`];
//! completions are polled (interrupts are acknowledged, not waited for).
//! Legacy (virtio 0.9.5) devices are refused.

#[allow(unsafe_code)]
pub mod dma;
pub mod mmio;
pub mod net;
pub mod p9;
pub mod pci;
pub mod queue;
pub mod rng;

pub use dma::{Dma, DmaError, DmaRegion};
pub use queue::{QueueAddresses, QueueError, SplitQueue};

/// A virtio device type (the spec's "Device ID").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceType(pub u32);

impl DeviceType {
    /// network card
    pub const NET: DeviceType = DeviceType(1);
    /// block device
    pub const BLOCK: DeviceType = DeviceType(2);
    /// console
    pub const CONSOLE: DeviceType = DeviceType(3);
    /// entropy source (virtio-rng)
    pub const ENTROPY: DeviceType = DeviceType(4);

    /// A short name for logs.
    pub fn name(self) -> &'static str {
        match self.0 {
            1 => "network",
            2 => "block",
            3 => "console",
            4 => "entropy",
            5 => "memory balloon",
            8 => "SCSI host",
            9 => "9P transport",
            16 => "GPU",
            18 => "input",
            19 => "vsock",
            _ => "unknown",
        }
    }
}

impl core::fmt::Display for DeviceType {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} (id {})", self.name(), self.0)
    }
}

/// Feature bits, device-independent and device-specific alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Features(pub u64);

impl Features {
    /// the device follows virtio 1.x (not legacy); required
    pub const VERSION_1: Features = Features(1 << 32);
    /// the device reaches memory through the platform's IOMMU or address
    /// translation; with none set up (as in Basalt) that is plain physical
    /// addresses, so it may be accepted
    pub const ACCESS_PLATFORM: Features = Features(1 << 33);
    /// indirect descriptor tables (not used)
    pub const INDIRECT_DESC: Features = Features(1 << 28);
    /// `used_event`/`avail_event` notification suppression (not used)
    pub const EVENT_IDX: Features = Features(1 << 29);

    /// Whether every bit of `other` is set.
    pub fn contains(self, other: Features) -> bool {
        self.0 & other.0 == other.0
    }

    /// The bits of both.
    pub fn union(self, other: Features) -> Features {
        Features(self.0 | other.0)
    }

    /// The bits common to both.
    pub fn intersection(self, other: Features) -> Features {
        Features(self.0 & other.0)
    }
}

/// The device status register's bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Status(pub u8);

impl Status {
    /// the guest has noticed the device
    pub const ACKNOWLEDGE: Status = Status(1);
    /// the guest knows how to drive it
    pub const DRIVER: Status = Status(2);
    /// the driver is set up and ready
    pub const DRIVER_OK: Status = Status(4);
    /// feature negotiation is complete
    pub const FEATURES_OK: Status = Status(8);
    /// the device hit an error it cannot recover from without a reset
    pub const DEVICE_NEEDS_RESET: Status = Status(64);
    /// the guest gave up on the device
    pub const FAILED: Status = Status(128);

    /// Whether every bit of `other` is set.
    pub fn contains(self, other: Status) -> bool {
        self.0 & other.0 == other.0
    }

    /// The bits of both.
    pub fn union(self, other: Status) -> Status {
        Status(self.0 | other.0)
    }
}

/// Why a virtio device cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VirtioError {
    /// the register window does not say "virt"
    BadMagic(u32),
    /// a legacy (version 1) virtio-mmio transport; QEMU makes these unless
    /// told `-global virtio-mmio.force-legacy=false`
    LegacyTransport,
    /// a transport version this driver does not know
    UnsupportedVersion(u32),
    /// the transport has no device behind it
    NoDevice,
    /// a driver was given a device of another type
    WrongDevice {
        /// what the driver drives
        expected: DeviceType,
        /// what the transport holds
        found: DeviceType,
    },
    /// the device does not offer features the driver needs (those bits)
    MissingFeatures(u64),
    /// the device cleared FEATURES_OK: it cannot work with the subset the
    /// driver accepted
    FeaturesRejected,
    /// the device did not finish a reset in time
    ResetTimeout,
    /// the device has no such queue, or it is already in use
    QueueUnavailable(u16),
    /// the queue is larger than the device allows (size, maximum)
    QueueTooLarge(u16, u16),
    /// a device-configuration read outside the window
    ConfigOutOfRange(usize),
    /// the register window is shorter than the transport's registers
    WindowTooSmall(u64),
    /// a queue could not be set up or was misused by the device
    Queue(QueueError),
    /// a virtio-PCI function lacks this capability (or has only
    /// malformed ones): no modern interface
    MissingPciCapability(&'static str),
    /// the device put this queue's doorbell outside its notification area
    DoorbellOutOfRange(u16),
}

impl core::fmt::Display for VirtioError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            VirtioError::BadMagic(m) => write!(f, "not a virtio-mmio window (magic {m:#x})"),
            VirtioError::LegacyTransport => f.write_str(
                "legacy virtio-mmio transport (version 1) not supported; QEMU needs -global virtio-mmio.force-legacy=false",
            ),
            VirtioError::UnsupportedVersion(v) => {
                write!(f, "unsupported virtio-mmio version {v}")
            }
            VirtioError::NoDevice => f.write_str("no device behind the transport"),
            VirtioError::WrongDevice { expected, found } => {
                write!(f, "expected a {expected} device, found {found}")
            }
            VirtioError::MissingFeatures(bits) => {
                write!(f, "device lacks required features {bits:#x}")
            }
            VirtioError::FeaturesRejected => {
                f.write_str("device rejected the negotiated features (FEATURES_OK cleared)")
            }
            VirtioError::ResetTimeout => f.write_str("device reset did not complete"),
            VirtioError::QueueUnavailable(q) => write!(f, "queue {q} unavailable"),
            VirtioError::QueueTooLarge(n, max) => {
                write!(f, "queue size {n} above the device's maximum {max}")
            }
            VirtioError::ConfigOutOfRange(o) => {
                write!(f, "device configuration offset {o:#x} out of range")
            }
            VirtioError::WindowTooSmall(n) => {
                write!(f, "register window of {n:#x} bytes is too small")
            }
            VirtioError::Queue(e) => write!(f, "{e}"),
            VirtioError::MissingPciCapability(what) => {
                write!(f, "no virtio-PCI {what} capability (legacy-only device?)")
            }
            VirtioError::DoorbellOutOfRange(q) => {
                write!(f, "queue {q}'s doorbell lies outside the notification area")
            }
        }
    }
}

impl From<QueueError> for VirtioError {
    fn from(e: QueueError) -> Self {
        VirtioError::Queue(e)
    }
}

impl From<DmaError> for VirtioError {
    fn from(e: DmaError) -> Self {
        VirtioError::Queue(QueueError::Dma(e))
    }
}

/// Which interrupt causes a device signalled (virtio-mmio's
/// InterruptStatus; the ISR status byte on PCI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InterruptStatus(pub u32);

impl InterruptStatus {
    /// a queue has new used buffers
    pub const QUEUE: u32 = 1;
    /// the device configuration changed
    pub const CONFIG: u32 = 2;
}

/// How a driver reaches its device: virtio-mmio registers, or the
/// virtio-PCI capabilities. Everything a device driver needs goes through
/// here, so drivers do not care which it is.
pub trait Transport {
    /// The device type behind the transport.
    fn device_type(&self) -> DeviceType;
    /// Reads the device status.
    fn status(&mut self) -> Status;
    /// Writes the device status (bits are only ever added, except by
    /// [`Transport::reset`]).
    fn set_status(&mut self, status: Status);
    /// Resets the device (status 0) and waits, boundedly, until it says it
    /// is done.
    fn reset(&mut self) -> Result<(), VirtioError>;
    /// All 64 feature bits the device offers.
    fn device_features(&mut self) -> Features;
    /// Tells the device which features the driver accepts.
    fn set_driver_features(&mut self, features: Features);
    /// The largest size queue `queue` may have; 0 when it does not exist
    /// or is already enabled.
    fn max_queue_size(&mut self, queue: u16) -> u16;
    /// Tells the device where queue `queue` of `size` entries lives and
    /// enables it.
    fn enable_queue(
        &mut self,
        queue: u16,
        size: u16,
        at: QueueAddresses,
    ) -> Result<(), VirtioError>;
    /// Tells the device that queue `queue` has new available buffers.
    /// Orders earlier stores to queue memory before the doorbell.
    fn notify(&mut self, queue: u16);
    /// Reads and acknowledges the pending interrupt causes.
    fn ack_interrupt(&mut self) -> InterruptStatus;
    /// The configuration generation, which changes when the device
    /// changes its configuration (re-read multi-field values until it is
    /// stable).
    fn config_generation(&mut self) -> u32;
    /// Reads a byte of the device-specific configuration.
    fn read_config_u8(&mut self, offset: usize) -> Result<u8, VirtioError>;
    /// Reads a little-endian 32-bit field of the device-specific
    /// configuration (4-byte aligned).
    fn read_config_u32(&mut self, offset: usize) -> Result<u32, VirtioError>;
}

/// A probed transport of either kind, so that devices found on
/// virtio-mmio and on PCI can wait in one list and one driver type
/// (`VirtioRng<VirtioTransport>`) serves both. Implements [`Transport`]
/// by delegation.
#[derive(Debug)]
pub enum VirtioTransport {
    /// a virtio-mmio window
    Mmio(mmio::MmioTransport),
    /// a virtio-PCI function
    Pci(pci::PciTransport),
}

impl From<mmio::MmioTransport> for VirtioTransport {
    fn from(t: mmio::MmioTransport) -> Self {
        VirtioTransport::Mmio(t)
    }
}

impl From<pci::PciTransport> for VirtioTransport {
    fn from(t: pci::PciTransport) -> Self {
        VirtioTransport::Pci(t)
    }
}

/// Calls `$body` with `$t` bound to the inner transport.
macro_rules! delegate {
    ($self:expr, $t:ident => $body:expr) => {
        match $self {
            VirtioTransport::Mmio($t) => $body,
            VirtioTransport::Pci($t) => $body,
        }
    };
}

impl Transport for VirtioTransport {
    fn device_type(&self) -> DeviceType {
        delegate!(self, t => t.device_type())
    }
    fn status(&mut self) -> Status {
        delegate!(self, t => t.status())
    }
    fn set_status(&mut self, status: Status) {
        delegate!(self, t => t.set_status(status))
    }
    fn reset(&mut self) -> Result<(), VirtioError> {
        delegate!(self, t => t.reset())
    }
    fn device_features(&mut self) -> Features {
        delegate!(self, t => t.device_features())
    }
    fn set_driver_features(&mut self, features: Features) {
        delegate!(self, t => t.set_driver_features(features))
    }
    fn max_queue_size(&mut self, queue: u16) -> u16 {
        delegate!(self, t => t.max_queue_size(queue))
    }
    fn enable_queue(
        &mut self,
        queue: u16,
        size: u16,
        at: QueueAddresses,
    ) -> Result<(), VirtioError> {
        delegate!(self, t => t.enable_queue(queue, size, at))
    }
    fn notify(&mut self, queue: u16) {
        delegate!(self, t => t.notify(queue))
    }
    fn ack_interrupt(&mut self) -> InterruptStatus {
        delegate!(self, t => t.ack_interrupt())
    }
    fn config_generation(&mut self) -> u32 {
        delegate!(self, t => t.config_generation())
    }
    fn read_config_u8(&mut self, offset: usize) -> Result<u8, VirtioError> {
        delegate!(self, t => t.read_config_u8(offset))
    }
    fn read_config_u32(&mut self, offset: usize) -> Result<u32, VirtioError> {
        delegate!(self, t => t.read_config_u32(offset))
    }
}

/// The features a driver accepts of those `offered`: the driver's
/// `wanted` ones the device offers, plus [`Features::ACCESS_PLATFORM`]
/// when offered (a device that asks for it may refuse a driver that
/// declines). Fails when an entry of `required` (always including
/// [`Features::VERSION_1`]) is not offered.
pub fn negotiate(
    offered: Features,
    wanted: Features,
    required: Features,
) -> Result<Features, VirtioError> {
    let required = required.union(Features::VERSION_1);
    let missing = required.0 & !offered.0;
    if missing != 0 {
        return Err(VirtioError::MissingFeatures(missing));
    }
    Ok(offered.intersection(wanted.union(required).union(Features::ACCESS_PLATFORM)))
}

/// The first half of bringing a device up (virtio 1.x §3.1.1): reset,
/// ACKNOWLEDGE, DRIVER, feature negotiation, FEATURES_OK and its
/// re-check. The driver then sets up its queues and calls
/// [`finish_init`]. On failure the device is left with FAILED set.
pub fn begin_init<T: Transport + ?Sized>(
    t: &mut T,
    wanted: Features,
    required: Features,
) -> Result<Features, VirtioError> {
    t.reset()?;
    let mut status = Status::ACKNOWLEDGE;
    t.set_status(status);
    status = status.union(Status::DRIVER);
    t.set_status(status);
    let accepted = match negotiate(t.device_features(), wanted, required) {
        Ok(f) => f,
        Err(e) => return Err(fail(t, e)),
    };
    t.set_driver_features(accepted);
    status = status.union(Status::FEATURES_OK);
    t.set_status(status);
    if !t.status().contains(Status::FEATURES_OK) {
        return Err(fail(t, VirtioError::FeaturesRejected));
    }
    Ok(accepted)
}

/// Sets up queue `index` for a driver that polls it: the largest power of
/// two up to both `wanted` entries and the device's maximum, interrupts
/// suppressed, enabled in the device. Fails with
/// [`VirtioError::QueueUnavailable`] when the device offers fewer than
/// `needed` entries. The caller marks the device failed on error.
pub fn polled_queue<T: Transport + ?Sized>(
    t: &mut T,
    dma: &mut dyn Dma,
    index: u16,
    wanted: u16,
    needed: u16,
) -> Result<SplitQueue, VirtioError> {
    let max = t.max_queue_size(index);
    if max == 0 || max < needed {
        return Err(VirtioError::QueueUnavailable(index));
    }
    let size = wanted.min(1 << max.ilog2());
    let mut q = SplitQueue::new(dma, index, size)?;
    q.set_interrupts_suppressed(true);
    t.enable_queue(index, size, q.addresses())?;
    Ok(q)
}

/// The last step of bringing a device up: DRIVER_OK. The device is live.
pub fn finish_init<T: Transport + ?Sized>(t: &mut T) {
    let status = t.status();
    t.set_status(status.union(Status::DRIVER_OK));
}

/// Marks the device FAILED (the driver gives up on it) and returns `e`.
pub fn fail<T: Transport + ?Sized>(t: &mut T, e: VirtioError) -> VirtioError {
    let status = t.status();
    t.set_status(status.union(Status::FAILED));
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_requires_version_1() {
        let offered = Features(1 << 28 | 1 << 29);
        assert_eq!(
            negotiate(offered, Features::default(), Features::default()),
            Err(VirtioError::MissingFeatures(1 << 32))
        );
    }

    #[test]
    fn negotiation_takes_only_wanted_and_offered_bits() {
        let offered = Features::VERSION_1
            .union(Features::EVENT_IDX)
            .union(Features::INDIRECT_DESC)
            .union(Features(1 << 5));
        let wanted = Features(1 << 5 | 1 << 6);
        assert_eq!(
            negotiate(offered, wanted, Features::default()),
            Ok(Features::VERSION_1.union(Features(1 << 5)))
        );
        assert_eq!(
            negotiate(offered, wanted, Features(1 << 6)),
            Err(VirtioError::MissingFeatures(1 << 6))
        );
    }

    #[test]
    fn negotiation_accepts_access_platform_when_offered() {
        let offered = Features::VERSION_1.union(Features::ACCESS_PLATFORM);
        assert_eq!(
            negotiate(offered, Features::default(), Features::default()),
            Ok(offered)
        );
        assert_eq!(
            negotiate(
                Features::VERSION_1,
                Features::default(),
                Features::default()
            ),
            Ok(Features::VERSION_1)
        );
    }
}
