//! The modern virtio-PCI transport (virtio 1.x, "Virtio Over PCI Bus"):
//! vendor-specific capabilities name the regions of the function's BARs
//! that hold the common configuration structure, the notification area,
//! the ISR status byte and the device-specific configuration; the driver
//! reaches them as memory. Legacy (I/O-port, virtio 0.9.5) interfaces are
//! not used: a transitional device (device ID 0x1000-0x103f) is driven
//! through its modern capabilities, and refused without them.
//!
//! Interrupts are not used: MSI-X stays off, queues are polled, and the
//! ISR byte is read (which acknowledges it) when a driver asks.

use super::{
    DeviceType, Features, InterruptStatus, QueueAddresses, Status, Transport, VirtioError,
};
use crate::pci::{Address, ConfigSpace, Function};

/// The PCI vendor ID of virtio devices.
pub const VENDOR_ID: u16 = 0x1af4;
/// Modern device IDs are this plus the virtio device type.
const MODERN_BASE: u16 = 0x1040;
/// The PCI capability ID of the virtio structures.
const CAP_VENDOR: u8 = 0x09;

/// `cfg_type` of the virtio-PCI capabilities.
const CFG_COMMON: u8 = 1;
const CFG_NOTIFY: u8 = 2;
const CFG_ISR: u8 = 3;
const CFG_DEVICE: u8 = 4;

/// The common configuration structure's fields.
mod common {
    pub const DEVICE_FEATURE_SELECT: usize = 0x00;
    pub const DEVICE_FEATURE: usize = 0x04;
    pub const DRIVER_FEATURE_SELECT: usize = 0x08;
    pub const DRIVER_FEATURE: usize = 0x0c;
    pub const NUM_QUEUES: usize = 0x12;
    pub const DEVICE_STATUS: usize = 0x14;
    pub const CONFIG_GENERATION: usize = 0x15;
    pub const CONFIG_MSIX_VECTOR: usize = 0x10;
    pub const QUEUE_SELECT: usize = 0x16;
    pub const QUEUE_SIZE: usize = 0x18;
    pub const QUEUE_MSIX_VECTOR: usize = 0x1a;
    pub const QUEUE_ENABLE: usize = 0x1c;
    pub const QUEUE_NOTIFY_OFF: usize = 0x1e;
    pub const QUEUE_DESC: usize = 0x20;
    pub const QUEUE_DRIVER: usize = 0x28;
    pub const QUEUE_DEVICE: usize = 0x30;
    /// the structure's size up to `queue_device` (virtio 1.0)
    pub const LEN: usize = 0x38;
}

/// Reads of the status register a reset may take before it counts as hung.
const RESET_POLLS: u32 = 1_000_000;
/// Queues whose notification offset the transport remembers; the
/// doorbells of higher ones are looked up when rung.
const CACHED_QUEUES: usize = 16;

/// The virtio device type of a PCI function, if it is a virtio device:
/// modern IDs 0x1040 + type, transitional IDs 0x1000-0x103f by their
/// subsystem ID.
pub fn device_type(f: &Function) -> Option<DeviceType> {
    if f.vendor_id != VENDOR_ID {
        return None;
    }
    match f.device_id {
        0x1000..=0x103f if f.subsystem_id != 0 => Some(DeviceType(u32::from(f.subsystem_id))),
        id @ 0x1041..=0x107f => Some(DeviceType(u32::from(id - MODERN_BASE))),
        _ => None,
    }
}

/// Where one virtio structure lies: a region of a BAR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// the BAR (0-5)
    pub bar: u8,
    /// offset of the structure in the BAR
    pub offset: u32,
    /// its length in bytes
    pub length: u32,
}

/// The virtio structures of a function, from its capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// the common configuration structure
    pub common: Region,
    /// the notification area
    pub notify: Region,
    /// bytes between the doorbells of consecutive `queue_notify_off`s
    pub notify_multiplier: u32,
    /// the ISR status byte
    pub isr: Option<Region>,
    /// the device-specific configuration (absent when it has none)
    pub device: Option<Region>,
}

impl Layout {
    /// Reads the virtio vendor capabilities of the function at `at`; the
    /// first well-formed capability of each type counts (the spec lets
    /// devices offer alternatives after it). Fails without a common
    /// configuration or a notification capability.
    pub fn read(cfg: &dyn ConfigSpace, at: Address) -> Result<Layout, VirtioError> {
        let (mut common, mut notify, mut isr, mut device) = (None, None, None, None);
        for (id, offset) in crate::pci::capabilities(cfg, at) {
            if id != CAP_VENDOR {
                continue;
            }
            let offset = u16::from(offset);
            let head = cfg.read32(at, offset);
            let (len, kind) = ((head >> 16) as u8, (head >> 24) as u8);
            let bar = cfg.read8(at, offset + 4);
            if len < 16 || bar > 5 {
                continue;
            }
            let region = Region {
                bar,
                offset: cfg.read32(at, offset + 8),
                length: cfg.read32(at, offset + 12),
            };
            match kind {
                CFG_COMMON if common.is_none() => common = Some(region),
                CFG_NOTIFY if notify.is_none() && len >= 20 => {
                    notify = Some((region, cfg.read32(at, offset + 16)))
                }
                CFG_ISR if isr.is_none() => isr = Some(region),
                CFG_DEVICE if device.is_none() => device = Some(region),
                _ => {}
            }
        }
        let common = common.ok_or(VirtioError::MissingPciCapability("common configuration"))?;
        let (notify, notify_multiplier) =
            notify.ok_or(VirtioError::MissingPciCapability("notification"))?;
        Ok(Layout {
            common,
            notify,
            notify_multiplier,
            isr,
            device,
        })
    }
}

/// Access to one region of a BAR, at every width the structures use: the
/// real device ([`PciRegion`]) or, in tests, a simulated one.
pub trait PciRegisters {
    /// The region's length in bytes.
    fn len(&self) -> usize;
    /// Whether the region has no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Reads the byte at `offset`.
    fn read8(&self, offset: usize) -> u8;
    /// Reads the little-endian 16-bit field at `offset`.
    fn read16(&self, offset: usize) -> u16;
    /// Reads the little-endian 32-bit field at `offset`.
    fn read32(&self, offset: usize) -> u32;
    /// Writes the byte at `offset`.
    fn write8(&self, offset: usize, value: u8);
    /// Writes the little-endian 16-bit field at `offset`.
    fn write16(&self, offset: usize, value: u16);
    /// Writes the little-endian 32-bit field at `offset`.
    fn write32(&self, offset: usize, value: u32);
    /// Orders earlier stores to DMA memory before the next register write.
    fn barrier_before_doorbell(&self);
}

/// A region of a BAR mapped as device memory. Accesses outside it read
/// all ones and write nothing.
#[derive(Debug)]
pub struct PciRegion {
    window: crate::mmio::Window,
}

impl PciRegion {
    /// The region of `len` bytes the CPU reaches at `virt`.
    ///
    /// # Safety
    /// `[virt, virt + len)` must be mapped as device memory onto the BAR
    /// region a [`Layout`] names, of a function the caller drives, and
    /// used by nothing else.
    #[allow(unsafe_code)]
    pub unsafe fn new(virt: usize, len: usize) -> PciRegion {
        // SAFETY: forwarded contract; accesses are checked against `len`.
        let window = unsafe { crate::mmio::Window::new(virt, len) };
        PciRegion { window }
    }
}

impl PciRegisters for PciRegion {
    fn len(&self) -> usize {
        self.window.len()
    }
    fn read8(&self, offset: usize) -> u8 {
        self.window.read8(offset)
    }
    fn read16(&self, offset: usize) -> u16 {
        self.window.read16(offset)
    }
    fn read32(&self, offset: usize) -> u32 {
        self.window.read32(offset)
    }
    fn write8(&self, offset: usize, value: u8) {
        self.window.write8(offset, value)
    }
    fn write16(&self, offset: usize, value: u16) {
        self.window.write16(offset, value)
    }
    fn write32(&self, offset: usize, value: u32) {
        self.window.write32(offset, value)
    }
    fn barrier_before_doorbell(&self) {
        crate::mmio::barrier_before_doorbell()
    }
}

/// The regions a [`PciTransport`] drives, mapped.
#[derive(Debug)]
pub struct PciRegions<R: PciRegisters = PciRegion> {
    /// the common configuration structure
    pub common: R,
    /// the notification area
    pub notify: R,
    /// the ISR status byte
    pub isr: Option<R>,
    /// the device-specific configuration
    pub device: Option<R>,
}

/// A modern virtio-PCI transport.
#[derive(Debug)]
pub struct PciTransport<R: PciRegisters = PciRegion> {
    regs: PciRegions<R>,
    device: DeviceType,
    notify_multiplier: u32,
    /// the `queue_notify_off` of the first queues, once enabled
    notify_offs: [u16; CACHED_QUEUES],
    /// which of the first queues are enabled (bit per queue)
    enabled: u16,
    /// the MSI-X table entry every queue signals, once routed
    msix_entry: Option<u16>,
    /// queues whose MSI-X vector the device refused
    msix_refused: bool,
}

/// virtio's "no MSI-X vector".
const NO_VECTOR: u16 = 0xffff;

impl<R: PciRegisters> PciTransport<R> {
    /// The transport of a `device` whose structures are `regs` (mapped
    /// from a [`Layout`] with `notify_multiplier`). Fails when the
    /// common configuration region is shorter than its fields or the
    /// notification area has no room for one doorbell.
    pub fn new(
        device: DeviceType,
        regs: PciRegions<R>,
        notify_multiplier: u32,
    ) -> Result<PciTransport<R>, VirtioError> {
        if regs.common.len() < common::LEN {
            return Err(VirtioError::WindowTooSmall(regs.common.len() as u64));
        }
        if regs.notify.len() < 2 {
            return Err(VirtioError::WindowTooSmall(regs.notify.len() as u64));
        }
        Ok(PciTransport {
            regs,
            device,
            notify_multiplier,
            notify_offs: [0; CACHED_QUEUES],
            enabled: 0,
            msix_entry: None,
            msix_refused: false,
        })
    }

    /// Makes every queue enabled from now on signal MSI-X table entry
    /// `entry` (which the caller has programmed and the function has
    /// enabled); configuration changes signal nothing.
    pub fn use_msix(&mut self, entry: u16) {
        self.msix_entry = Some(entry);
        self.regs
            .common
            .write16(common::CONFIG_MSIX_VECTOR, NO_VECTOR);
    }

    /// Whether every queue enabled so far took its MSI-X vector.
    pub fn msix_active(&self) -> bool {
        self.msix_entry.is_some() && !self.msix_refused
    }

    /// The doorbell's offset in the notification area for a queue with
    /// `notify_off`, if it lies inside.
    fn doorbell(&self, notify_off: u16) -> Option<usize> {
        let at = u64::from(notify_off) * u64::from(self.notify_multiplier);
        (at + 2 <= self.regs.notify.len() as u64).then_some(at as usize)
    }

    fn write64(&self, offset: usize, value: u64) {
        self.regs.common.write32(offset, value as u32);
        self.regs.common.write32(offset + 4, (value >> 32) as u32);
    }
}

impl<R: PciRegisters> Transport for PciTransport<R> {
    fn device_type(&self) -> DeviceType {
        self.device
    }

    fn status(&mut self) -> Status {
        Status(self.regs.common.read8(common::DEVICE_STATUS))
    }

    fn set_status(&mut self, status: Status) {
        self.regs.common.write8(common::DEVICE_STATUS, status.0);
    }

    fn reset(&mut self) -> Result<(), VirtioError> {
        self.enabled = 0;
        self.regs.common.write8(common::DEVICE_STATUS, 0);
        for _ in 0..RESET_POLLS {
            if self.regs.common.read8(common::DEVICE_STATUS) == 0 {
                return Ok(());
            }
            core::hint::spin_loop();
        }
        Err(VirtioError::ResetTimeout)
    }

    fn device_features(&mut self) -> Features {
        let c = &self.regs.common;
        c.write32(common::DEVICE_FEATURE_SELECT, 0);
        let low = c.read32(common::DEVICE_FEATURE);
        c.write32(common::DEVICE_FEATURE_SELECT, 1);
        let high = c.read32(common::DEVICE_FEATURE);
        Features(u64::from(high) << 32 | u64::from(low))
    }

    fn set_driver_features(&mut self, features: Features) {
        let c = &self.regs.common;
        c.write32(common::DRIVER_FEATURE_SELECT, 0);
        c.write32(common::DRIVER_FEATURE, features.0 as u32);
        c.write32(common::DRIVER_FEATURE_SELECT, 1);
        c.write32(common::DRIVER_FEATURE, (features.0 >> 32) as u32);
    }

    fn max_queue_size(&mut self, queue: u16) -> u16 {
        let c = &self.regs.common;
        if queue >= c.read16(common::NUM_QUEUES) {
            return 0;
        }
        c.write16(common::QUEUE_SELECT, queue);
        if c.read16(common::QUEUE_ENABLE) != 0 {
            return 0;
        }
        c.read16(common::QUEUE_SIZE)
    }

    fn enable_queue(
        &mut self,
        queue: u16,
        size: u16,
        at: QueueAddresses,
    ) -> Result<(), VirtioError> {
        let max = self.max_queue_size(queue);
        if max == 0 {
            return Err(VirtioError::QueueUnavailable(queue));
        }
        if size > max {
            return Err(VirtioError::QueueTooLarge(size, max));
        }
        // `max_queue_size` selected the queue.
        let notify_off = self.regs.common.read16(common::QUEUE_NOTIFY_OFF);
        if self.doorbell(notify_off).is_none() {
            return Err(VirtioError::DoorbellOutOfRange(queue));
        }
        let c = &self.regs.common;
        c.write16(common::QUEUE_SIZE, size);
        self.write64(common::QUEUE_DESC, at.descriptors);
        self.write64(common::QUEUE_DRIVER, at.driver);
        self.write64(common::QUEUE_DEVICE, at.device);
        if let Some(entry) = self.msix_entry {
            c.write16(common::QUEUE_MSIX_VECTOR, entry);
            // A device out of vectors answers NO_VECTOR: the queue is
            // then polled.
            if c.read16(common::QUEUE_MSIX_VECTOR) != entry {
                self.msix_refused = true;
            }
        }
        self.regs.common.write16(common::QUEUE_ENABLE, 1);
        if let Some(slot) = self.notify_offs.get_mut(usize::from(queue)) {
            *slot = notify_off;
            self.enabled |= 1 << queue;
        }
        Ok(())
    }

    fn notify(&mut self, queue: u16) {
        let notify_off = match self.notify_offs.get(usize::from(queue)) {
            // A queue never enabled has no doorbell: nothing to ring.
            Some(_) if self.enabled & (1 << queue) == 0 => return,
            Some(off) => *off,
            None => {
                let c = &self.regs.common;
                c.write16(common::QUEUE_SELECT, queue);
                if c.read16(common::QUEUE_ENABLE) == 0 {
                    return;
                }
                c.read16(common::QUEUE_NOTIFY_OFF)
            }
        };
        let Some(at) = self.doorbell(notify_off) else {
            return;
        };
        self.regs.notify.barrier_before_doorbell();
        self.regs.notify.write16(at, queue);
    }

    fn ack_interrupt(&mut self) -> InterruptStatus {
        InterruptStatus(self.regs.isr.as_ref().map_or(0, |r| u32::from(r.read8(0))))
    }

    fn config_generation(&mut self) -> u32 {
        u32::from(self.regs.common.read8(common::CONFIG_GENERATION))
    }

    fn read_config_u8(&mut self, offset: usize) -> Result<u8, VirtioError> {
        match &self.regs.device {
            Some(d) if offset < d.len() => Ok(d.read8(offset)),
            _ => Err(VirtioError::ConfigOutOfRange(offset)),
        }
    }

    fn read_config_u32(&mut self, offset: usize) -> Result<u32, VirtioError> {
        match &self.regs.device {
            Some(d) if offset.is_multiple_of(4) && offset.saturating_add(4) <= d.len() => {
                Ok(d.read32(offset))
            }
            _ => Err(VirtioError::ConfigOutOfRange(offset)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::tests::{FakeConfig, FakeFunction};
    use crate::virtio::dma::host::HostDma;
    use crate::virtio::mmio::tests::FakeMmio;
    use crate::virtio::mmio::{self as m, Registers};
    use crate::virtio::rng::VirtioRng;
    use crate::virtio::{begin_init, finish_init};
    use std::cell::Cell;

    /// What a region of the fake BAR is.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Which {
        Common,
        Notify,
        Isr,
        Device,
    }

    /// The same simulated device as the virtio-mmio tests', seen through
    /// virtio-PCI's structures: each common-configuration field maps onto
    /// the virtio-mmio register that means the same.
    struct FakePci {
        dev: FakeMmio,
        num_queues: u16,
        notify_off: u16,
        notify_len: usize,
        /// the last doorbell offset rung
        rung_at: Cell<Option<usize>>,
    }

    impl FakePci {
        fn new(device_id: u32) -> FakePci {
            FakePci {
                dev: FakeMmio::new(device_id),
                num_queues: 1,
                notify_off: 3,
                notify_len: 0x1000,
                rung_at: Cell::new(None),
            }
        }

        fn regions(&self) -> PciRegions<Fake<'_>> {
            let r = |which| Fake { pci: self, which };
            PciRegions {
                common: r(Which::Common),
                notify: r(Which::Notify),
                isr: Some(r(Which::Isr)),
                device: Some(r(Which::Device)),
            }
        }

        fn transport(&self) -> PciTransport<Fake<'_>> {
            PciTransport::new(DeviceType(self.dev.device_id), self.regions(), 4).expect("valid")
        }
    }

    struct Fake<'a> {
        pci: &'a FakePci,
        which: Which,
    }

    impl Fake<'_> {
        fn mmio(&self) -> &FakeMmio {
            &self.pci.dev
        }
    }

    impl PciRegisters for Fake<'_> {
        fn len(&self) -> usize {
            match self.which {
                Which::Common => common::LEN,
                Which::Notify => self.pci.notify_len,
                Which::Isr => 1,
                Which::Device => 8,
            }
        }
        fn read8(&self, offset: usize) -> u8 {
            let d = self.mmio();
            match (self.which, offset) {
                (Which::Common, common::DEVICE_STATUS) => (&d).read32(m::STATUS) as u8,
                (Which::Common, common::CONFIG_GENERATION) => {
                    (&d).read32(m::CONFIG_GENERATION) as u8
                }
                (Which::Isr, 0) => {
                    let pending = (&d).read32(m::INTERRUPT_STATUS);
                    (&d).write32(m::INTERRUPT_ACK, pending);
                    pending as u8
                }
                (Which::Device, o) => (&d).read8(m::CONFIG + o),
                _ => panic!("unexpected byte read at {offset:#x}"),
            }
        }
        fn read16(&self, offset: usize) -> u16 {
            let d = self.mmio();
            assert!(self.which == Which::Common, "16-bit read elsewhere");
            match offset {
                common::NUM_QUEUES => self.pci.num_queues,
                common::QUEUE_SIZE => match d.queue_num.get() {
                    0 => (&d).read32(m::QUEUE_NUM_MAX) as u16,
                    n => n as u16,
                },
                common::QUEUE_ENABLE => (&d).read32(m::QUEUE_READY) as u16,
                common::QUEUE_NOTIFY_OFF => self.pci.notify_off,
                _ => panic!("unexpected 16-bit read at {offset:#x}"),
            }
        }
        fn read32(&self, offset: usize) -> u32 {
            let d = self.mmio();
            match (self.which, offset) {
                (Which::Common, common::DEVICE_FEATURE) => (&d).read32(m::DEVICE_FEATURES),
                (Which::Device, o) => (&d).read32(m::CONFIG + o),
                _ => panic!("unexpected 32-bit read at {offset:#x}"),
            }
        }
        fn write8(&self, offset: usize, value: u8) {
            assert!(self.which == Which::Common && offset == common::DEVICE_STATUS);
            (&self.mmio()).write32(m::STATUS, u32::from(value));
        }
        fn write16(&self, offset: usize, value: u16) {
            let d = self.mmio();
            let v = u32::from(value);
            match (self.which, offset) {
                (Which::Common, common::QUEUE_SELECT) => (&d).write32(m::QUEUE_SEL, v),
                (Which::Common, common::QUEUE_SIZE) => (&d).write32(m::QUEUE_NUM, v),
                (Which::Common, common::QUEUE_ENABLE) => (&d).write32(m::QUEUE_READY, v),
                (Which::Notify, o) => {
                    self.pci.rung_at.set(Some(o));
                    (&d).write32(m::QUEUE_NOTIFY, v)
                }
                _ => panic!("unexpected 16-bit write at {offset:#x}"),
            }
        }
        fn write32(&self, offset: usize, value: u32) {
            assert!(self.which == Which::Common, "32-bit write elsewhere");
            let target = match offset {
                common::DEVICE_FEATURE_SELECT => m::DEVICE_FEATURES_SEL,
                common::DRIVER_FEATURE_SELECT => m::DRIVER_FEATURES_SEL,
                common::DRIVER_FEATURE => m::DRIVER_FEATURES,
                0x20 => m::QUEUE_DESC_LOW,
                0x24 => m::QUEUE_DESC_HIGH,
                0x28 => m::QUEUE_DRIVER_LOW,
                0x2c => m::QUEUE_DRIVER_HIGH,
                0x30 => m::QUEUE_DEVICE_LOW,
                0x34 => m::QUEUE_DEVICE_HIGH,
                _ => panic!("unexpected 32-bit write at {offset:#x}"),
            };
            (&self.mmio()).write32(target, value);
        }
        fn barrier_before_doorbell(&self) {
            (&self.mmio()).barrier_before_doorbell();
        }
    }

    /// A virtio capability: cfg_type, bar, offset, length (and the
    /// notification multiplier).
    fn cap(kind: u8, bar: u8, offset: u32, length: u32, extra: Option<u32>) -> std::vec::Vec<u8> {
        let len = if extra.is_some() { 20 } else { 16 };
        let mut b = std::vec![len, kind, bar, 0, 0, 0];
        b.extend_from_slice(&offset.to_le_bytes());
        b.extend_from_slice(&length.to_le_bytes());
        if let Some(x) = extra {
            b.extend_from_slice(&x.to_le_bytes());
        }
        b
    }

    fn function(device_id: u16, subsystem: u16) -> Function {
        Function {
            address: Address::new(0, 1, 0),
            vendor_id: VENDOR_ID,
            device_id,
            revision: 1,
            class: (0, 0xff, 0),
            header_type: 0,
            multifunction: false,
            subsystem_vendor_id: VENDOR_ID,
            subsystem_id: subsystem,
            interrupt_pin: 1,
            interrupt_line: 10,
        }
    }

    #[test]
    fn device_types_come_from_modern_ids_or_the_subsystem() {
        assert_eq!(device_type(&function(0x1044, 0)), Some(DeviceType::ENTROPY));
        assert_eq!(device_type(&function(0x1049, 1)), Some(DeviceType(9)));
        assert_eq!(device_type(&function(0x1005, 4)), Some(DeviceType::ENTROPY));
        assert_eq!(device_type(&function(0x1009, 9)), Some(DeviceType(9)));
        assert_eq!(device_type(&function(0x1005, 0)), None);
        assert_eq!(device_type(&function(0x1040, 0)), None);
        assert_eq!(device_type(&function(0x1080, 0)), None);
        let mut other = function(0x1044, 0);
        other.vendor_id = 0x8086;
        assert_eq!(device_type(&other), None);
    }

    #[test]
    fn the_layout_is_read_from_the_vendor_capabilities() {
        let cfg = FakeConfig::default();
        let at = Address::new(0, 1, 0);
        cfg.add(
            at,
            FakeFunction::new(VENDOR_ID, 0x1005, 0x00ff00)
                .capability(0x98, 0x11, &[0, 0])
                .capability(0x84, CAP_VENDOR, &cap(CFG_DEVICE, 4, 0x3000, 0x1000, None))
                .capability(
                    0x70,
                    CAP_VENDOR,
                    &cap(CFG_NOTIFY, 4, 0x2000, 0x1000, Some(4)),
                )
                .capability(0x60, CAP_VENDOR, &cap(CFG_ISR, 4, 0x1000, 0x1000, None))
                .capability(0x50, CAP_VENDOR, &cap(CFG_COMMON, 4, 0, 0x1000, None))
                // a second common configuration and one in no BAR: ignored
                .capability(0x40, CAP_VENDOR, &cap(CFG_COMMON, 2, 0, 0x1000, None))
                .capability(0xa8, CAP_VENDOR, &cap(CFG_COMMON, 7, 0, 0x1000, None)),
        );
        let layout = Layout::read(&cfg, at).expect("layout");
        assert_eq!(
            layout,
            Layout {
                common: Region {
                    bar: 4,
                    offset: 0,
                    length: 0x1000
                },
                notify: Region {
                    bar: 4,
                    offset: 0x2000,
                    length: 0x1000
                },
                notify_multiplier: 4,
                isr: Some(Region {
                    bar: 4,
                    offset: 0x1000,
                    length: 0x1000
                }),
                device: Some(Region {
                    bar: 4,
                    offset: 0x3000,
                    length: 0x1000
                }),
            }
        );
    }

    #[test]
    fn a_device_without_modern_capabilities_is_refused() {
        let cfg = FakeConfig::default();
        let at = Address::new(0, 1, 0);
        cfg.add(at, FakeFunction::new(VENDOR_ID, 0x1005, 0x00ff00));
        assert_eq!(
            Layout::read(&cfg, at),
            Err(VirtioError::MissingPciCapability("common configuration"))
        );
        let at = Address::new(0, 2, 0);
        cfg.add(
            at,
            FakeFunction::new(VENDOR_ID, 0x1005, 0x00ff00)
                .capability(0x40, CAP_VENDOR, &cap(CFG_COMMON, 4, 0, 0x1000, None))
                // a notification capability too short for its multiplier
                .capability(0x50, CAP_VENDOR, &cap(CFG_NOTIFY, 4, 0x2000, 0x1000, None)),
        );
        assert_eq!(
            Layout::read(&cfg, at),
            Err(VirtioError::MissingPciCapability("notification"))
        );
    }

    #[test]
    fn short_regions_are_refused() {
        let pci = FakePci::new(4);
        let mut regs = pci.regions();
        regs.common = Fake {
            pci: &pci,
            which: Which::Isr,
        };
        assert_eq!(
            PciTransport::new(DeviceType::ENTROPY, regs, 4).err(),
            Some(VirtioError::WindowTooSmall(1))
        );
    }

    #[test]
    fn the_handshake_goes_in_order() {
        let pci = FakePci::new(4);
        let mut t = pci.transport();
        assert_eq!(t.device_type(), DeviceType::ENTROPY);
        let f = begin_init(&mut t, Features::default(), Features::default()).expect("init");
        assert_eq!(f, Features::VERSION_1);
        assert_eq!(pci.dev.driver_features.get(), Features::VERSION_1.0);
        finish_init(&mut t);
        assert_eq!(*pci.dev.status_log.borrow(), [0, 1, 3, 11, 15]);
    }

    #[test]
    fn queues_are_programmed_and_rung_at_their_doorbell() {
        let mut pci = FakePci::new(4);
        pci.dev.queue_max = 256;
        let mut t = pci.transport();
        assert_eq!(t.max_queue_size(1), 0, "only one queue");
        assert_eq!(t.max_queue_size(0), 256);
        let at = QueueAddresses {
            descriptors: 0x1_2345_6000,
            driver: 0x7000,
            device: 0x7018,
        };
        assert_eq!(
            t.enable_queue(0, 512, at),
            Err(VirtioError::QueueTooLarge(512, 256))
        );
        assert_eq!(
            t.enable_queue(1, 8, at),
            Err(VirtioError::QueueUnavailable(1))
        );
        t.notify(0);
        assert_eq!(pci.dev.notifies.get(), 0, "not enabled: no doorbell");
        t.enable_queue(0, 8, at).expect("enable");
        assert_eq!(pci.dev.addrs.get(), [0x1_2345_6000, 0x7000, 0x7018]);
        assert_eq!(pci.dev.queue_num.get(), 8);
        assert_eq!(pci.dev.queue_ready.get(), 1);
        assert_eq!(t.max_queue_size(0), 0, "already enabled");
        pci.dev.serve.set(false);
        t.notify(0);
        assert_eq!((pci.dev.notifies.get(), pci.dev.barriers.get()), (1, 1));
        assert_eq!(pci.rung_at.get(), Some(3 * 4), "notify_off × multiplier");
        pci.dev.interrupt.set(1);
        assert_eq!(t.ack_interrupt(), InterruptStatus(1));
        assert_eq!(
            t.ack_interrupt(),
            InterruptStatus(0),
            "reading acknowledged"
        );

        pci.notify_len = 12;
        pci.dev.queue_ready.set(0);
        let mut t = pci.transport();
        assert_eq!(
            t.enable_queue(0, 8, at),
            Err(VirtioError::DoorbellOutOfRange(0))
        );
        assert_eq!(pci.dev.queue_ready.get(), 0, "left disabled");
    }

    #[test]
    fn configuration_reads_stay_in_the_region() {
        let pci = FakePci::new(9);
        let mut t = pci.transport();
        assert_eq!(t.config_generation(), 7);
        assert_eq!(t.read_config_u8(0), Ok(1));
        assert_eq!(t.read_config_u8(7), Ok(8));
        assert_eq!(t.read_config_u8(8), Err(VirtioError::ConfigOutOfRange(8)));
        assert_eq!(t.read_config_u32(4), Ok(0x0403_0201));
        assert_eq!(t.read_config_u32(2), Err(VirtioError::ConfigOutOfRange(2)));
        assert_eq!(t.read_config_u32(8), Err(VirtioError::ConfigOutOfRange(8)));
        let mut regs = pci.regions();
        regs.device = None;
        let mut t = PciTransport::new(DeviceType(9), regs, 4).expect("valid");
        assert_eq!(t.read_config_u8(0), Err(VirtioError::ConfigOutOfRange(0)));
    }

    #[test]
    fn virtio_rng_runs_over_pci() {
        let pci = FakePci::new(4);
        let mut rng = VirtioRng::new(pci.transport(), &mut HostDma).expect("rng");
        assert_eq!(pci.dev.status.get(), 15, "DRIVER_OK");
        let mut out = [0u8; 5000];
        rng.fill(&mut out, &mut || false).expect("fill");
        assert!(out[..4096].iter().all(|b| *b == 0x5a));
        assert!(out[4096..].iter().all(|b| *b == 0x5b));
        assert_eq!(pci.dev.notifies.get(), 2);
        assert_eq!(pci.rung_at.get(), Some(12));
    }
}
