//! The virtio-mmio transport, version 2 (virtio 1.x, "Virtio Over MMIO"):
//! a 0x200-byte register window per device, as QEMU's `virt` (32 of
//! them) and `microvm` boards make. Version 1 (legacy) windows are
//! refused; QEMU makes those unless given
//! `-global virtio-mmio.force-legacy=false`.

use super::{
    DeviceType, Features, InterruptStatus, QueueAddresses, Status, Transport, VirtioError,
};
use crate::mmio::Mmio;

pub(crate) const MAGIC_VALUE: usize = 0x000;
pub(crate) const VERSION: usize = 0x004;
pub(crate) const DEVICE_ID: usize = 0x008;
pub(crate) const DEVICE_FEATURES: usize = 0x010;
pub(crate) const DEVICE_FEATURES_SEL: usize = 0x014;
pub(crate) const DRIVER_FEATURES: usize = 0x020;
pub(crate) const DRIVER_FEATURES_SEL: usize = 0x024;
pub(crate) const QUEUE_SEL: usize = 0x030;
pub(crate) const QUEUE_NUM_MAX: usize = 0x034;
pub(crate) const QUEUE_NUM: usize = 0x038;
pub(crate) const QUEUE_READY: usize = 0x044;
pub(crate) const QUEUE_NOTIFY: usize = 0x050;
pub(crate) const INTERRUPT_STATUS: usize = 0x060;
pub(crate) const INTERRUPT_ACK: usize = 0x064;
pub(crate) const STATUS: usize = 0x070;
pub(crate) const QUEUE_DESC_LOW: usize = 0x080;
pub(crate) const QUEUE_DESC_HIGH: usize = 0x084;
pub(crate) const QUEUE_DRIVER_LOW: usize = 0x090;
pub(crate) const QUEUE_DRIVER_HIGH: usize = 0x094;
pub(crate) const QUEUE_DEVICE_LOW: usize = 0x0a0;
pub(crate) const QUEUE_DEVICE_HIGH: usize = 0x0a4;
pub(crate) const CONFIG_GENERATION: usize = 0x0fc;
pub(crate) const CONFIG: usize = 0x100;

/// "virt" in little-endian ASCII.
pub const MAGIC: u32 = 0x7472_6976;
/// The smallest window holding every register (the configuration space
/// follows at 0x100).
pub const MIN_WINDOW: u64 = 0x100;
/// Reads of the status register a reset may take before it counts as hung
/// (QEMU finishes at once).
const RESET_POLLS: u32 = 1_000_000;

/// A virtio-mmio window a VMM names on the kernel command line, as Linux
/// reads them (QEMU `microvm` and Firecracker write these):
/// `virtio_mmio.device=<size>@<base>:<irq>[:<id>]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CmdlineDevice {
    /// physical address of the registers
    pub base: u64,
    /// length of the window
    pub size: u64,
    /// the interrupt line
    pub irq: u32,
}

/// Every well-formed `virtio_mmio.device=` entry of `cmdline`; malformed
/// ones are skipped.
pub fn cmdline_devices(cmdline: &[u8]) -> impl Iterator<Item = CmdlineDevice> + '_ {
    cmdline
        .split(|b| b.is_ascii_whitespace())
        .filter_map(|word| word.strip_prefix(b"virtio_mmio.device="))
        .filter_map(parse_cmdline_device)
}

/// Parses `<size>@<base>:<irq>[:<id>]`: size with an optional `K`, `M` or
/// `G` suffix, numbers decimal or `0x` hex.
fn parse_cmdline_device(spec: &[u8]) -> Option<CmdlineDevice> {
    let at = spec.iter().position(|b| *b == b'@')?;
    let (size, rest) = (&spec[..at], &spec[at + 1..]);
    let mut fields = rest.split(|b| *b == b':');
    let base = number(fields.next()?)?;
    let irq = u32::try_from(number(fields.next()?)?).ok()?;
    if fields.nth(1).is_some() {
        return None;
    }
    let (digits, shift) = match size.last()? {
        b'K' | b'k' => (&size[..size.len() - 1], 10),
        b'M' | b'm' => (&size[..size.len() - 1], 20),
        b'G' | b'g' => (&size[..size.len() - 1], 30),
        _ => (size, 0),
    };
    let size = number(digits)?.checked_mul(1 << shift)?;
    (size > 0).then_some(CmdlineDevice { base, size, irq })
}

fn number(text: &[u8]) -> Option<u64> {
    let text = core::str::from_utf8(text).ok()?;
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// 32-bit register access to one virtio-mmio window: the real device
/// ([`RegisterWindow`]) or, in tests, a simulated one.
pub trait Registers {
    /// Reads the 32-bit register at `offset`.
    fn read32(&self, offset: usize) -> u32;
    /// Reads the byte at `offset` (device configuration).
    fn read8(&self, offset: usize) -> u8;
    /// Writes the 32-bit register at `offset`.
    fn write32(&self, offset: usize, value: u32);
    /// Orders earlier stores to DMA memory before the next register write.
    fn barrier_before_doorbell(&self);
}

/// A virtio-mmio register window in device memory.
#[derive(Debug)]
pub struct RegisterWindow {
    regs: Mmio,
    len: u64,
}

impl RegisterWindow {
    /// The window of `len` bytes at physical address `base` (a device
    /// tree's `reg`, or a `virtio_mmio.device=` entry).
    ///
    /// # Safety
    /// `[base, base + len)` must be a virtio-mmio window, identity-mapped
    /// as device memory, and driven by no one else.
    #[allow(unsafe_code)]
    pub unsafe fn new(base: u64, len: u64) -> Result<RegisterWindow, VirtioError> {
        if len < MIN_WINDOW {
            return Err(VirtioError::WindowTooSmall(len));
        }
        // SAFETY: forwarded contract; the transport reads and writes only
        // offsets below `len.min(0x1000)` (checked for configuration
        // reads, constant below 0x100 otherwise).
        let regs = unsafe { Mmio::new(base) };
        Ok(RegisterWindow { regs, len })
    }
}

impl Registers for RegisterWindow {
    fn read32(&self, offset: usize) -> u32 {
        self.regs.read32(offset)
    }
    fn read8(&self, offset: usize) -> u8 {
        self.regs.read8(offset)
    }
    fn write32(&self, offset: usize, value: u32) {
        self.regs.write32(offset, value)
    }
    fn barrier_before_doorbell(&self) {
        crate::mmio::barrier_before_doorbell()
    }
}

/// A version-2 virtio-mmio transport with a device behind it.
#[derive(Debug)]
pub struct MmioTransport<R: Registers = RegisterWindow> {
    regs: R,
    device: DeviceType,
    /// bytes of device configuration the window holds
    config_len: usize,
}

impl MmioTransport<RegisterWindow> {
    /// Probes the window: `Ok(None)` when no device sits behind it (QEMU
    /// `virt` makes 32 windows, most of them empty).
    pub fn probe_window(
        window: RegisterWindow,
    ) -> Result<Option<MmioTransport<RegisterWindow>>, VirtioError> {
        let config_len = (window.len.min(0x1000) as usize).saturating_sub(CONFIG);
        MmioTransport::probe(window, config_len)
    }
}

impl<R: Registers> MmioTransport<R> {
    /// Probes `regs` (with `config_len` bytes of device configuration):
    /// the magic value, then the device ID (0: no device, `Ok(None)`), then
    /// the version, which must be 2.
    pub fn probe(regs: R, config_len: usize) -> Result<Option<MmioTransport<R>>, VirtioError> {
        let magic = regs.read32(MAGIC_VALUE);
        if magic != MAGIC {
            return Err(VirtioError::BadMagic(magic));
        }
        let device = regs.read32(DEVICE_ID);
        if device == 0 {
            return Ok(None);
        }
        match regs.read32(VERSION) {
            2 => {}
            1 => return Err(VirtioError::LegacyTransport),
            v => return Err(VirtioError::UnsupportedVersion(v)),
        }
        Ok(Some(MmioTransport {
            regs,
            device: DeviceType(device),
            config_len,
        }))
    }

    fn write64(&self, low: usize, high: usize, value: u64) {
        self.regs.write32(low, value as u32);
        self.regs.write32(high, (value >> 32) as u32);
    }
}

impl<R: Registers> Transport for MmioTransport<R> {
    fn device_type(&self) -> DeviceType {
        self.device
    }

    fn status(&mut self) -> Status {
        Status(self.regs.read32(STATUS) as u8)
    }

    fn set_status(&mut self, status: Status) {
        self.regs.write32(STATUS, u32::from(status.0));
    }

    fn reset(&mut self) -> Result<(), VirtioError> {
        self.regs.write32(STATUS, 0);
        for _ in 0..RESET_POLLS {
            if self.regs.read32(STATUS) == 0 {
                return Ok(());
            }
            core::hint::spin_loop();
        }
        Err(VirtioError::ResetTimeout)
    }

    fn device_features(&mut self) -> Features {
        self.regs.write32(DEVICE_FEATURES_SEL, 0);
        let low = self.regs.read32(DEVICE_FEATURES);
        self.regs.write32(DEVICE_FEATURES_SEL, 1);
        let high = self.regs.read32(DEVICE_FEATURES);
        Features(u64::from(high) << 32 | u64::from(low))
    }

    fn set_driver_features(&mut self, features: Features) {
        self.regs.write32(DRIVER_FEATURES_SEL, 0);
        self.regs.write32(DRIVER_FEATURES, features.0 as u32);
        self.regs.write32(DRIVER_FEATURES_SEL, 1);
        self.regs
            .write32(DRIVER_FEATURES, (features.0 >> 32) as u32);
    }

    fn max_queue_size(&mut self, queue: u16) -> u16 {
        self.regs.write32(QUEUE_SEL, u32::from(queue));
        if self.regs.read32(QUEUE_READY) != 0 {
            return 0;
        }
        self.regs.read32(QUEUE_NUM_MAX).min(u32::from(u16::MAX)) as u16
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
        self.regs.write32(QUEUE_NUM, u32::from(size));
        self.write64(QUEUE_DESC_LOW, QUEUE_DESC_HIGH, at.descriptors);
        self.write64(QUEUE_DRIVER_LOW, QUEUE_DRIVER_HIGH, at.driver);
        self.write64(QUEUE_DEVICE_LOW, QUEUE_DEVICE_HIGH, at.device);
        self.regs.write32(QUEUE_READY, 1);
        Ok(())
    }

    fn notify(&mut self, queue: u16) {
        self.regs.barrier_before_doorbell();
        self.regs.write32(QUEUE_NOTIFY, u32::from(queue));
    }

    fn ack_interrupt(&mut self) -> InterruptStatus {
        let pending = self.regs.read32(INTERRUPT_STATUS);
        if pending != 0 {
            self.regs.write32(INTERRUPT_ACK, pending);
        }
        InterruptStatus(pending)
    }

    fn config_generation(&mut self) -> u32 {
        self.regs.read32(CONFIG_GENERATION)
    }

    fn read_config_u8(&mut self, offset: usize) -> Result<u8, VirtioError> {
        if offset >= self.config_len {
            return Err(VirtioError::ConfigOutOfRange(offset));
        }
        Ok(self.regs.read8(CONFIG + offset))
    }

    fn read_config_u32(&mut self, offset: usize) -> Result<u32, VirtioError> {
        if !offset.is_multiple_of(4) || offset.saturating_add(4) > self.config_len {
            return Err(VirtioError::ConfigOutOfRange(offset));
        }
        Ok(self.regs.read32(CONFIG + offset))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::virtio::dma::host::at_phys;
    use crate::virtio::queue::{QueueLayout, ring_slot};
    use crate::virtio::{begin_init, finish_init};
    use std::cell::{Cell, RefCell};
    use std::vec::Vec;

    /// A simulated virtio-mmio device, register by register, as QEMU's
    /// behaves: it records what the driver wrote and, when `serve` is set,
    /// answers queue 0 notifications by filling writable buffers with
    /// `fill` bytes.
    pub(crate) struct FakeMmio {
        pub version: u32,
        pub device_id: u32,
        pub features: u64,
        /// features the device refuses (clears FEATURES_OK when accepted)
        pub refuse: u64,
        pub queue_max: u32,
        pub status: Cell<u32>,
        pub device_sel: Cell<u32>,
        pub driver_sel: Cell<u32>,
        pub driver_features: Cell<u64>,
        pub queue_sel: Cell<u32>,
        pub queue_num: Cell<u32>,
        pub queue_ready: Cell<u32>,
        pub addrs: Cell<[u64; 3]>,
        pub interrupt: Cell<u32>,
        pub notifies: Cell<u32>,
        pub barriers: Cell<u32>,
        /// every status value written, in order
        pub status_log: RefCell<Vec<u32>>,
        /// answer notifications
        pub serve: Cell<bool>,
        /// the byte written into buffers (incremented per request)
        pub fill: Cell<u8>,
        /// how many bytes of each request to fill (None: all)
        pub short: Cell<Option<u32>>,
        last_avail: Cell<u16>,
        used_idx: Cell<u16>,
    }

    impl FakeMmio {
        pub(crate) fn new(device_id: u32) -> FakeMmio {
            FakeMmio {
                version: 2,
                device_id,
                features: Features::VERSION_1.0 | Features::EVENT_IDX.0,
                refuse: 0,
                queue_max: 1024,
                status: Cell::new(0),
                device_sel: Cell::new(0),
                driver_sel: Cell::new(0),
                driver_features: Cell::new(0),
                queue_sel: Cell::new(0),
                queue_num: Cell::new(0),
                queue_ready: Cell::new(0),
                addrs: Cell::new([0; 3]),
                interrupt: Cell::new(0),
                notifies: Cell::new(0),
                barriers: Cell::new(0),
                status_log: RefCell::new(Vec::new()),
                serve: Cell::new(true),
                fill: Cell::new(0x5a),
                short: Cell::new(None),
                last_avail: Cell::new(0),
                used_idx: Cell::new(0),
            }
        }

        /// Plays the device's half of queue 0: answers every available
        /// request.
        pub(crate) fn process_now(&self) {
            let size = self.queue_num.get() as u16;
            let l = QueueLayout::new(size).expect("driver set a valid size");
            let [d, a, _] = self.addrs.get();
            let desc = at_phys(d, l.descriptors);
            let avail = at_phys(a, l.avail);
            while avail.read_u16(2) != self.last_avail.get() {
                let seen = self.last_avail.get();
                let head = avail.read_u16(4 + 2 * ring_slot(seen, size));
                self.last_avail.set(seen.wrapping_add(1));
                let at = usize::from(head) * 16;
                let addr = desc.read_u64(at);
                let len = desc.read_u32(at + 8);
                let n = self.short.get().map_or(len, |s| s.min(len));
                let bytes = std::vec![self.fill.get(); n as usize];
                at_phys(addr, len as usize).write_bytes(0, &bytes);
                self.fill.set(self.fill.get().wrapping_add(1));
                self.complete_raw(u32::from(head), n);
            }
        }

        /// Puts `(id, len)` on queue 0's used ring, whatever the driver
        /// gave (a misbehaving device).
        pub(crate) fn complete_raw(&self, id: u32, len: u32) {
            let size = self.queue_num.get() as u16;
            let l = QueueLayout::new(size).expect("driver set a valid size");
            let used = at_phys(self.addrs.get()[2], l.used);
            let i = self.used_idx.get();
            let slot = ring_slot(i, size);
            used.write_u32(4 + 8 * slot, id);
            used.write_u32(8 + 8 * slot, len);
            self.used_idx.set(i.wrapping_add(1));
            used.write_u16(2, i.wrapping_add(1));
            self.interrupt.set(self.interrupt.get() | 1);
        }
    }

    impl Registers for &FakeMmio {
        fn read32(&self, offset: usize) -> u32 {
            match offset {
                MAGIC_VALUE => MAGIC,
                VERSION => self.version,
                DEVICE_ID => self.device_id,
                DEVICE_FEATURES => (self.features >> (32 * self.device_sel.get().min(1))) as u32,
                QUEUE_NUM_MAX if self.queue_sel.get() == 0 => self.queue_max,
                QUEUE_READY => self.queue_ready.get(),
                INTERRUPT_STATUS => self.interrupt.get(),
                STATUS => self.status.get(),
                CONFIG_GENERATION => 7,
                o if o >= CONFIG => 0x0403_0201,
                _ => 0,
            }
        }
        fn read8(&self, offset: usize) -> u8 {
            (offset - CONFIG + 1) as u8
        }
        fn write32(&self, offset: usize, value: u32) {
            let set_half = |old: u64, sel: u32, v: u32| {
                if sel == 0 {
                    old & !0xffff_ffff | u64::from(v)
                } else {
                    old & 0xffff_ffff | u64::from(v) << 32
                }
            };
            let mut addrs = self.addrs.get();
            match offset {
                DEVICE_FEATURES_SEL => self.device_sel.set(value),
                DRIVER_FEATURES_SEL => self.driver_sel.set(value),
                DRIVER_FEATURES => self.driver_features.set(set_half(
                    self.driver_features.get(),
                    self.driver_sel.get(),
                    value,
                )),
                QUEUE_SEL => self.queue_sel.set(value),
                QUEUE_NUM => self.queue_num.set(value),
                QUEUE_READY => self.queue_ready.set(value),
                QUEUE_DESC_LOW | QUEUE_DESC_HIGH => {
                    addrs[0] = set_half(addrs[0], (offset == QUEUE_DESC_HIGH).into(), value)
                }
                QUEUE_DRIVER_LOW | QUEUE_DRIVER_HIGH => {
                    addrs[1] = set_half(addrs[1], (offset == QUEUE_DRIVER_HIGH).into(), value)
                }
                QUEUE_DEVICE_LOW | QUEUE_DEVICE_HIGH => {
                    addrs[2] = set_half(addrs[2], (offset == QUEUE_DEVICE_HIGH).into(), value)
                }
                QUEUE_NOTIFY => {
                    self.notifies.set(self.notifies.get() + 1);
                    if self.serve.get() {
                        self.process_now();
                    }
                }
                INTERRUPT_ACK => self.interrupt.set(self.interrupt.get() & !value),
                STATUS => {
                    self.status_log.borrow_mut().push(value);
                    let mut v = value;
                    if v & u32::from(Status::FEATURES_OK.0) != 0
                        && self.driver_features.get() & self.refuse != 0
                    {
                        v &= !u32::from(Status::FEATURES_OK.0);
                    }
                    if value == 0 {
                        self.queue_ready.set(0);
                        self.driver_features.set(0);
                    }
                    self.status.set(v);
                }
                _ => {}
            }
            self.addrs.set(addrs);
        }
        fn barrier_before_doorbell(&self) {
            self.barriers.set(self.barriers.get() + 1);
        }
    }

    #[test]
    fn command_line_entries_are_read_as_linux_reads_them() {
        let line = b"console=ttyS0 virtio_mmio.device=512@0xfeb00e00:12 \
            virtio_mmio.device=4K@0x1001e000:5:3 virtio_mmio.device=1M@4096:7 \
            virtio_mmio.device=oops virtio_mmio.device=0@0x1000:1 \
            virtio_mmio.device=512@0xfeb00000 virtio_mmio.device=512@0x1:2:3:4 \
            xvirtio_mmio.device=512@0x2000:1";
        let found: Vec<_> = cmdline_devices(line).collect();
        assert_eq!(
            found,
            [
                CmdlineDevice {
                    base: 0xfeb0_0e00,
                    size: 512,
                    irq: 12
                },
                CmdlineDevice {
                    base: 0x1001_e000,
                    size: 4096,
                    irq: 5
                },
                CmdlineDevice {
                    base: 4096,
                    size: 1 << 20,
                    irq: 7
                },
            ]
        );
        assert_eq!(cmdline_devices(b"").count(), 0);
        assert_eq!(
            cmdline_devices(b"virtio_mmio.device=99999999999G@0x0:1").count(),
            0,
            "overflowing size"
        );
    }

    #[test]
    fn probing_checks_magic_id_and_version() {
        let dev = FakeMmio::new(0);
        assert!(matches!(MmioTransport::probe(&dev, 0x100), Ok(None)));
        let mut dev = FakeMmio::new(4);
        dev.version = 1;
        assert_eq!(
            MmioTransport::probe(&dev, 0x100).err(),
            Some(VirtioError::LegacyTransport)
        );
        dev.version = 3;
        assert_eq!(
            MmioTransport::probe(&dev, 0x100).err(),
            Some(VirtioError::UnsupportedVersion(3))
        );
        dev.version = 2;
        let t = MmioTransport::probe(&dev, 0x100)
            .expect("ok")
            .expect("device");
        assert_eq!(t.device_type(), DeviceType::ENTROPY);
    }

    struct NoMagic;
    impl Registers for NoMagic {
        fn read32(&self, _: usize) -> u32 {
            0xffff_ffff
        }
        fn read8(&self, _: usize) -> u8 {
            0xff
        }
        fn write32(&self, _: usize, _: u32) {}
        fn barrier_before_doorbell(&self) {}
    }

    #[test]
    fn a_window_without_the_magic_is_refused() {
        assert_eq!(
            MmioTransport::probe(NoMagic, 0x100).err(),
            Some(VirtioError::BadMagic(0xffff_ffff))
        );
    }

    #[test]
    fn the_handshake_goes_in_order() {
        let dev = FakeMmio::new(4);
        let mut t = MmioTransport::probe(&dev, 0x100)
            .expect("ok")
            .expect("device");
        let f = begin_init(&mut t, Features::default(), Features::default()).expect("init");
        assert_eq!(f, Features::VERSION_1, "EVENT_IDX was not wanted");
        assert_eq!(dev.driver_features.get(), Features::VERSION_1.0);
        finish_init(&mut t);
        assert_eq!(*dev.status_log.borrow(), [0, 1, 3, 11, 15]);
    }

    #[test]
    fn a_device_without_version_1_is_failed() {
        let mut dev = FakeMmio::new(4);
        dev.features = Features::EVENT_IDX.0;
        let mut t = MmioTransport::probe(&dev, 0x100)
            .expect("ok")
            .expect("device");
        assert_eq!(
            begin_init(&mut t, Features::default(), Features::default()),
            Err(VirtioError::MissingFeatures(Features::VERSION_1.0))
        );
        assert_eq!(*dev.status_log.borrow(), [0, 1, 3, 3 | 128]);
    }

    #[test]
    fn features_ok_is_checked_again() {
        let mut dev = FakeMmio::new(4);
        dev.refuse = Features::VERSION_1.0;
        let mut t = MmioTransport::probe(&dev, 0x100)
            .expect("ok")
            .expect("device");
        assert_eq!(
            begin_init(&mut t, Features::default(), Features::default()),
            Err(VirtioError::FeaturesRejected)
        );
        assert_eq!(*dev.status_log.borrow(), [0, 1, 3, 11, 3 | 128]);
    }

    #[test]
    fn queues_are_programmed_and_notified() {
        let dev = FakeMmio::new(4);
        let mut t = MmioTransport::probe(&dev, 0x100)
            .expect("ok")
            .expect("device");
        assert_eq!(t.max_queue_size(1), 0);
        assert_eq!(t.max_queue_size(0), 1024);
        let at = QueueAddresses {
            descriptors: 0x1_2345_6000,
            driver: 0x7000,
            device: 0x7018,
        };
        assert_eq!(
            t.enable_queue(0, 2048, at),
            Err(VirtioError::QueueTooLarge(2048, 1024))
        );
        assert_eq!(
            t.enable_queue(3, 8, at),
            Err(VirtioError::QueueUnavailable(3))
        );
        t.enable_queue(0, 8, at).expect("enable");
        assert_eq!(dev.addrs.get(), [0x1_2345_6000, 0x7000, 0x7018]);
        assert_eq!(dev.queue_num.get(), 8);
        assert_eq!(dev.queue_ready.get(), 1);
        assert_eq!(t.max_queue_size(0), 0, "already enabled");
        dev.serve.set(false);
        t.notify(0);
        assert_eq!((dev.notifies.get(), dev.barriers.get()), (1, 1));
        dev.interrupt.set(3);
        assert_eq!(t.ack_interrupt(), InterruptStatus(3));
        assert_eq!(dev.interrupt.get(), 0);
        assert_eq!(t.ack_interrupt(), InterruptStatus(0));
    }

    #[test]
    fn configuration_reads_stay_in_the_window() {
        let dev = FakeMmio::new(1);
        let mut t = MmioTransport::probe(&dev, 8).expect("ok").expect("device");
        assert_eq!(t.config_generation(), 7);
        assert_eq!(t.read_config_u8(0), Ok(1));
        assert_eq!(t.read_config_u8(7), Ok(8));
        assert_eq!(t.read_config_u8(8), Err(VirtioError::ConfigOutOfRange(8)));
        assert_eq!(t.read_config_u32(4), Ok(0x0403_0201));
        assert_eq!(t.read_config_u32(2), Err(VirtioError::ConfigOutOfRange(2)));
        assert_eq!(t.read_config_u32(8), Err(VirtioError::ConfigOutOfRange(8)));
    }
}
