//! The virtio network device (virtio-net, device type 1; virtio 1.x
//! §5.1): queue 0 receives, queue 1 transmits, and every frame travels
//! behind a 12-byte `virtio_net_hdr`.
//!
//! The receive queue is kept full of [`BUFFER_LEN`]-byte device-writable
//! buffers (up to 256 of them, so bursts are not dropped); each one comes
//! back to the queue as soon as its frame is copied out. The transmit
//! queue has buffers of its own, reclaimed when the device is done with
//! them. Negotiated when offered: the MAC address, the link status,
//! mergeable receive buffers (a frame spread over several buffers is put
//! back together) and partially checksummed frames from the device
//! (`GUEST_CSUM`: the checksum is completed here before anyone sees the
//! frame). Transmit checksum offload (`CSUM`) is not used: frames go out
//! fully checksummed.
//!
//! Completions are found by polling; the device's interrupt only says
//! when to poll ([`VirtioNet::ack_interrupt`]). Whatever the device
//! writes is checked: a length beyond a buffer, an unknown id, a header
//! asking for an impossible checksum give a typed [`NetDeviceError`],
//! never a panic.

use alloc::vec::Vec;

use super::dma::{DMA_PAGE_SIZE, Dma, DmaRegion};
use super::queue::{Buffer, MAX_QUEUE_SIZE, SplitQueue};
use super::{DeviceType, Features, InterruptStatus, QueueError, Transport, VirtioError};

/// The device checksums what it sends (not used: see the module docs).
pub const F_CSUM: Features = Features(1 << 0);
/// The driver accepts frames whose checksum is only partly computed.
pub const F_GUEST_CSUM: Features = Features(1 << 1);
/// The configuration holds the device's MAC address.
pub const F_MAC: Features = Features(1 << 5);
/// A received frame may span several receive buffers.
pub const F_MRG_RXBUF: Features = Features(1 << 15);
/// The configuration holds the link status.
pub const F_STATUS: Features = Features(1 << 16);

/// Bytes of the `virtio_net_hdr` in front of every frame (virtio 1.x).
pub const NET_HDR_LEN: usize = 12;
/// Bytes of every receive and transmit buffer.
pub const BUFFER_LEN: usize = 2048;
/// The largest Ethernet frame (without frame check sequence) sent or
/// received: 1500 bytes of payload, 14 of header.
pub const MAX_FRAME: usize = 1514;

/// The receive queue's index.
const RX_QUEUE: u16 = 0;
/// The transmit queue's index.
const TX_QUEUE: u16 = 1;
/// Header flag: the checksum at `csum_start + csum_offset` is partial.
const HDR_F_NEEDS_CSUM: u8 = 1;
/// Configuration status bit: the link is up.
const STATUS_LINK_UP: u16 = 1;
/// Buffers per DMA page.
const BUFFERS_PER_PAGE: usize = DMA_PAGE_SIZE / BUFFER_LEN;
/// Pages per DMA allocation of buffers (kept small: contiguous runs of
/// physical memory may be scarce).
const PAGES_PER_CHUNK: usize = 16;

/// What went wrong receiving or sending a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetDeviceError {
    /// the device misused a queue: it is broken and needs a reset
    Queue(QueueError),
    /// a received buffer shorter than the header (frame dropped)
    ShortBuffer {
        /// bytes the device said it wrote
        len: u32,
    },
    /// a merged frame whose buffer count is 0, or more than the device
    /// has returned (frame dropped)
    BadBufferCount {
        /// the header's `num_buffers`
        claimed: u16,
        /// buffers actually found
        found: u16,
    },
    /// a received frame larger than the caller's buffer (frame dropped)
    FrameTooLong {
        /// the frame's length
        len: usize,
        /// room the caller gave
        room: usize,
    },
    /// a header asking to complete a checksum outside the frame (frame
    /// dropped)
    BadChecksumRequest {
        /// the header's `csum_start`
        start: u16,
        /// the header's `csum_offset`
        offset: u16,
        /// the frame's length
        len: usize,
    },
    /// a frame to send larger than [`MAX_FRAME`] or empty
    BadFrameLength(usize),
}

impl core::fmt::Display for NetDeviceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            NetDeviceError::Queue(e) => write!(f, "virtio-net: {e}"),
            NetDeviceError::ShortBuffer { len } => write!(
                f,
                "virtio-net: received buffer of {len} bytes, shorter than its header"
            ),
            NetDeviceError::BadBufferCount { claimed, found } => write!(
                f,
                "virtio-net: frame claims {claimed} buffers, {found} returned"
            ),
            NetDeviceError::FrameTooLong { len, room } => {
                write!(
                    f,
                    "virtio-net: received frame of {len} bytes, room for {room}"
                )
            }
            NetDeviceError::BadChecksumRequest { start, offset, len } => write!(
                f,
                "virtio-net: checksum at {start}+{offset} outside a {len}-byte frame"
            ),
            NetDeviceError::BadFrameLength(n) => {
                write!(f, "virtio-net: cannot send a frame of {n} bytes")
            }
        }
    }
}

impl From<QueueError> for NetDeviceError {
    fn from(e: QueueError) -> Self {
        NetDeviceError::Queue(e)
    }
}

impl NetDeviceError {
    /// Whether the device is broken (a queue error) rather than one frame
    /// bad: after this, the device needs a reset.
    pub fn is_fatal(&self) -> bool {
        matches!(self, NetDeviceError::Queue(_))
    }
}

/// Counters, for logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    /// frames received and handed out
    pub rx_frames: u64,
    /// frames received and dropped as malformed
    pub rx_dropped: u64,
    /// frames queued for sending
    pub tx_frames: u64,
}

/// A set of equal buffers in DMA memory, addressed by slot number.
struct BufferPool {
    chunks: Vec<DmaRegion>,
}

impl BufferPool {
    /// `count` buffers of [`BUFFER_LEN`] bytes.
    fn new(dma: &mut dyn Dma, count: usize) -> Result<BufferPool, VirtioError> {
        let per_chunk = PAGES_PER_CHUNK * BUFFERS_PER_PAGE;
        let mut chunks = Vec::new();
        let mut left = count;
        while left > 0 {
            let n = left.min(per_chunk);
            chunks.push(dma.allocate(n.div_ceil(BUFFERS_PER_PAGE))?);
            left -= n;
        }
        Ok(BufferPool { chunks })
    }

    fn locate(&self, slot: u16) -> (&DmaRegion, usize) {
        let per_chunk = PAGES_PER_CHUNK * BUFFERS_PER_PAGE;
        let i = usize::from(slot);
        (&self.chunks[i / per_chunk], (i % per_chunk) * BUFFER_LEN)
    }

    /// The bus address of buffer `slot`.
    fn phys(&self, slot: u16) -> u64 {
        let (region, offset) = self.locate(slot);
        region.phys() + offset as u64
    }

    fn read(&self, slot: u16, at: usize, out: &mut [u8]) {
        let (region, offset) = self.locate(slot);
        region.read_bytes(offset + at, out);
    }

    fn write(&self, slot: u16, at: usize, data: &[u8]) {
        let (region, offset) = self.locate(slot);
        region.write_bytes(offset + at, data);
    }
}

/// The `virtio_net_hdr` fields the receive path uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NetHeader {
    /// `flags` (bit 0: checksum needed, bit 1: data valid)
    pub flags: u8,
    /// where checksumming starts
    pub csum_start: u16,
    /// where, after `csum_start`, the checksum goes
    pub csum_offset: u16,
    /// buffers of the frame (mergeable receive buffers)
    pub num_buffers: u16,
}

impl NetHeader {
    /// Reads the header's little-endian fields.
    pub fn parse(b: &[u8; NET_HDR_LEN]) -> NetHeader {
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        NetHeader {
            flags: b[0],
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
            num_buffers: u16_at(10),
        }
    }
}

/// Completes a partial checksum (virtio's `NEEDS_CSUM`): the 16-bit
/// ones'-complement sum of `frame[start..]`, whose checksum field at
/// `start + offset` holds the pseudo-header's sum, folded, complemented
/// and stored in that field.
pub fn complete_checksum(frame: &mut [u8], start: u16, offset: u16) -> Result<(), NetDeviceError> {
    let bad = NetDeviceError::BadChecksumRequest {
        start,
        offset,
        len: frame.len(),
    };
    let s = usize::from(start);
    let field = s + usize::from(offset);
    if field + 2 > frame.len() {
        return Err(bad);
    }
    let mut sum: u64 = 0;
    let mut words = frame[s..].chunks_exact(2);
    for w in &mut words {
        sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        sum += u64::from(u16::from_be_bytes([*last, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let checksum = !(sum as u16);
    frame[field..field + 2].copy_from_slice(&checksum.to_be_bytes());
    Ok(())
}

/// A live virtio-net device.
pub struct VirtioNet<T: Transport> {
    transport: T,
    features: Features,
    mac: [u8; 6],
    rx: SplitQueue,
    rx_buffers: BufferPool,
    /// which buffer each receive-queue head carries
    rx_slot: [u16; MAX_QUEUE_SIZE as usize],
    tx: SplitQueue,
    tx_buffers: BufferPool,
    /// which buffer each transmit-queue head carries
    tx_slot: [u16; MAX_QUEUE_SIZE as usize],
    /// transmit buffers not in flight
    tx_free: Vec<u16>,
    stats: NetStats,
}

impl<T: Transport> VirtioNet<T> {
    /// Brings up the network device behind `transport`: handshake and
    /// feature negotiation, the MAC address, the receive queue filled
    /// with buffers and the transmit queue, all from `dma`.
    pub fn new(mut transport: T, dma: &mut dyn Dma) -> Result<VirtioNet<T>, VirtioError> {
        let found = transport.device_type();
        if found != DeviceType::NET {
            return Err(VirtioError::WrongDevice {
                expected: DeviceType::NET,
                found,
            });
        }
        let wanted = F_MAC.union(F_STATUS).union(F_MRG_RXBUF).union(F_GUEST_CSUM);
        let features = super::begin_init(&mut transport, wanted, Features::default())?;
        match Self::set_up(&mut transport, features, dma) {
            Ok(parts) => {
                super::finish_init(&mut transport);
                let (mac, rx, rx_buffers, rx_slot, tx, tx_buffers, tx_free) = parts;
                Ok(VirtioNet {
                    transport,
                    features,
                    mac,
                    rx,
                    rx_buffers,
                    rx_slot,
                    tx,
                    tx_buffers,
                    tx_slot: [0; MAX_QUEUE_SIZE as usize],
                    tx_free,
                    stats: NetStats::default(),
                })
            }
            Err(e) => Err(super::fail(&mut transport, e)),
        }
    }

    #[allow(clippy::type_complexity)]
    fn set_up(
        transport: &mut T,
        features: Features,
        dma: &mut dyn Dma,
    ) -> Result<
        (
            [u8; 6],
            SplitQueue,
            BufferPool,
            [u16; MAX_QUEUE_SIZE as usize],
            SplitQueue,
            BufferPool,
            Vec<u16>,
        ),
        VirtioError,
    > {
        let mut mac = [0u8; 6];
        if features.contains(F_MAC) {
            // Re-read until the configuration generation is stable.
            loop {
                let before = transport.config_generation();
                for (i, b) in mac.iter_mut().enumerate() {
                    *b = transport.read_config_u8(i)?;
                }
                if transport.config_generation() == before {
                    break;
                }
            }
        } else {
            // A locally administered address of our own.
            mac = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
        }
        let mut queue = |index: u16| -> Result<(SplitQueue, u16), VirtioError> {
            let max = transport.max_queue_size(index);
            if max == 0 {
                return Err(VirtioError::QueueUnavailable(index));
            }
            let size = MAX_QUEUE_SIZE.min(1 << max.ilog2());
            let q = SplitQueue::new(dma, index, size)?;
            transport.enable_queue(index, size, q.addresses())?;
            Ok((q, size))
        };
        let (mut rx, rx_size) = queue(RX_QUEUE)?;
        let (tx, tx_size) = queue(TX_QUEUE)?;
        let rx_buffers = BufferPool::new(dma, usize::from(rx_size))?;
        let tx_buffers = BufferPool::new(dma, usize::from(tx_size))?;
        let mut rx_slot = [0u16; MAX_QUEUE_SIZE as usize];
        for slot in 0..rx_size {
            let head = rx.add(&[Buffer {
                addr: rx_buffers.phys(slot),
                len: BUFFER_LEN as u32,
                device_writable: true,
            }])?;
            rx_slot[usize::from(head)] = slot;
        }
        let tx_free = (0..tx_size).rev().collect();
        Ok((mac, rx, rx_buffers, rx_slot, tx, tx_buffers, tx_free))
    }

    /// The device's MAC address (or a locally administered one when the
    /// device names none).
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// The features both sides agreed on.
    pub fn features(&self) -> Features {
        self.features
    }

    /// Whether the link is up (always, when the device reports no
    /// status).
    pub fn link_up(&mut self) -> bool {
        if !self.features.contains(F_STATUS) {
            return true;
        }
        let lo = self.transport.read_config_u8(6).unwrap_or(1);
        let hi = self.transport.read_config_u8(7).unwrap_or(0);
        u16::from_le_bytes([lo, hi]) & STATUS_LINK_UP != 0
    }

    /// Counters so far.
    pub fn stats(&self) -> NetStats {
        self.stats
    }

    /// The transport, for logs.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Reads and acknowledges the device's interrupt causes. Call before
    /// draining the queues, so a completion after the acknowledgement
    /// raises the interrupt again.
    pub fn ack_interrupt(&mut self) -> InterruptStatus {
        self.transport.ack_interrupt()
    }

    /// Whether a received frame waits (without taking it).
    pub fn has_frame(&self) -> bool {
        self.rx.has_used()
    }

    /// Copies the next received frame (without its header, its checksum
    /// completed if the device left it partial) into `out` and gives its
    /// buffers back to the device: `Ok(Some(len))`, or `Ok(None)` when
    /// none waits. A malformed frame is dropped and reported; the next
    /// call goes on with the frame after it.
    pub fn receive(&mut self, out: &mut [u8]) -> Result<Option<usize>, NetDeviceError> {
        let Some(first) = self.rx.poll_used()? else {
            return Ok(None);
        };
        let result = self.take_frame(first.head, first.len, out);
        if self.rx.should_notify() {
            self.transport.notify(RX_QUEUE);
        }
        match result {
            Ok(n) => {
                self.stats.rx_frames += 1;
                Ok(Some(n))
            }
            Err(e) => {
                if !e.is_fatal() {
                    self.stats.rx_dropped += 1;
                }
                Err(e)
            }
        }
    }

    /// Gives receive buffer `slot` back to the device.
    fn recycle(&mut self, slot: u16) -> Result<(), NetDeviceError> {
        let head = self.rx.add(&[Buffer {
            addr: self.rx_buffers.phys(slot),
            len: BUFFER_LEN as u32,
            device_writable: true,
        }])?;
        self.rx_slot[usize::from(head)] = slot;
        Ok(())
    }

    fn take_frame(&mut self, head: u16, len: u32, out: &mut [u8]) -> Result<usize, NetDeviceError> {
        let slot = self.rx_slot[usize::from(head)];
        if (len as usize) < NET_HDR_LEN {
            self.recycle(slot)?;
            return Err(NetDeviceError::ShortBuffer { len });
        }
        let mut raw = [0u8; NET_HDR_LEN];
        self.rx_buffers.read(slot, 0, &mut raw);
        let header = NetHeader::parse(&raw);
        let buffers = if self.features.contains(F_MRG_RXBUF) {
            header.num_buffers
        } else {
            1
        };
        // Copy the pieces out, giving each buffer back as it is read.
        let mut filled = 0usize;
        let mut total = 0usize;
        let mut piece = (slot, NET_HDR_LEN, len as usize - NET_HDR_LEN);
        let mut found = 1u16;
        let mut trouble = None;
        if buffers == 0 {
            trouble = Some(NetDeviceError::BadBufferCount {
                claimed: 0,
                found: 1,
            });
        }
        loop {
            let (slot, at, n) = piece;
            total += n;
            if trouble.is_none() {
                if filled + n <= out.len() {
                    self.rx_buffers.read(slot, at, &mut out[filled..filled + n]);
                    filled += n;
                } else {
                    trouble = Some(NetDeviceError::FrameTooLong {
                        len: total,
                        room: out.len(),
                    });
                }
            }
            self.recycle(slot)?;
            if found >= buffers {
                break;
            }
            match self.rx.poll_used()? {
                Some(u) => {
                    found += 1;
                    piece = (self.rx_slot[usize::from(u.head)], 0, u.len as usize);
                }
                None => {
                    return Err(NetDeviceError::BadBufferCount {
                        claimed: buffers,
                        found,
                    });
                }
            }
        }
        if let Some(NetDeviceError::FrameTooLong { room, .. }) = trouble {
            return Err(NetDeviceError::FrameTooLong { len: total, room });
        }
        if let Some(e) = trouble {
            return Err(e);
        }
        if header.flags & HDR_F_NEEDS_CSUM != 0 {
            complete_checksum(&mut out[..filled], header.csum_start, header.csum_offset)?;
        }
        Ok(filled)
    }

    /// Takes back transmit buffers the device has finished with.
    fn reclaim(&mut self) -> Result<(), NetDeviceError> {
        while let Some(u) = self.tx.poll_used()? {
            self.tx_free.push(self.tx_slot[usize::from(u.head)]);
        }
        Ok(())
    }

    /// Whether [`VirtioNet::send`] would take a frame now.
    pub fn can_send(&mut self) -> Result<bool, NetDeviceError> {
        self.reclaim()?;
        Ok(!self.tx_free.is_empty())
    }

    /// Queues `frame` (an Ethernet frame without its frame check
    /// sequence) for sending: `Ok(true)` when taken, `Ok(false)` when every
    /// transmit buffer is in flight (try again after the device catches
    /// up).
    pub fn send(&mut self, frame: &[u8]) -> Result<bool, NetDeviceError> {
        if frame.is_empty() || frame.len() > MAX_FRAME {
            return Err(NetDeviceError::BadFrameLength(frame.len()));
        }
        self.reclaim()?;
        let Some(slot) = self.tx_free.pop() else {
            return Ok(false);
        };
        // A zero header: no checksum offload, no segmentation.
        self.tx_buffers.write(slot, 0, &[0u8; NET_HDR_LEN]);
        self.tx_buffers.write(slot, NET_HDR_LEN, frame);
        let head = match self.tx.add(&[Buffer {
            addr: self.tx_buffers.phys(slot),
            len: (NET_HDR_LEN + frame.len()) as u32,
            device_writable: false,
        }]) {
            Ok(h) => h,
            Err(e) => {
                self.tx_free.push(slot);
                return Err(e.into());
            }
        };
        self.tx_slot[usize::from(head)] = slot;
        if self.tx.should_notify() {
            self.transport.notify(TX_QUEUE);
        }
        self.stats.tx_frames += 1;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::virtio::dma::host::{HostDma, at_phys};
    use crate::virtio::queue::simulated::FakeDevice;
    use crate::virtio::{QueueAddresses, Status};
    use std::cell::Cell;
    use std::vec;

    /// A virtio-net device as the driver sees it through the transport;
    /// the queues' device side is played by [`FakeDevice`]s.
    struct FakeNet {
        features: Features,
        status: Cell<Status>,
        accepted: Cell<Features>,
        queues: Cell<[Option<(u16, QueueAddresses)>; 2]>,
        queue_max: u16,
        notifies: Cell<[u32; 2]>,
        interrupt: Cell<u32>,
        config: [u8; 8],
    }

    impl FakeNet {
        fn new(features: Features) -> FakeNet {
            FakeNet {
                features,
                status: Cell::new(Status::default()),
                accepted: Cell::new(Features::default()),
                queues: Cell::new([None, None]),
                queue_max: 256,
                notifies: Cell::new([0; 2]),
                interrupt: Cell::new(0),
                config: [0x52, 0x54, 0, 0x12, 0x34, 0x56, 1, 0],
            }
        }
    }

    impl Transport for &FakeNet {
        fn device_type(&self) -> DeviceType {
            DeviceType::NET
        }
        fn status(&mut self) -> Status {
            self.status.get()
        }
        fn set_status(&mut self, status: Status) {
            self.status.set(status);
        }
        fn reset(&mut self) -> Result<(), VirtioError> {
            self.status.set(Status::default());
            Ok(())
        }
        fn device_features(&mut self) -> Features {
            self.features
        }
        fn set_driver_features(&mut self, features: Features) {
            self.accepted.set(features);
        }
        fn max_queue_size(&mut self, queue: u16) -> u16 {
            if queue < 2 { self.queue_max } else { 0 }
        }
        fn enable_queue(
            &mut self,
            queue: u16,
            size: u16,
            at: QueueAddresses,
        ) -> Result<(), VirtioError> {
            let mut q = self.queues.get();
            q[usize::from(queue)] = Some((size, at));
            self.queues.set(q);
            Ok(())
        }
        fn notify(&mut self, queue: u16) {
            let mut n = self.notifies.get();
            n[usize::from(queue)] += 1;
            self.notifies.set(n);
        }
        fn ack_interrupt(&mut self) -> InterruptStatus {
            InterruptStatus(self.interrupt.replace(0))
        }
        fn config_generation(&mut self) -> u32 {
            3
        }
        fn read_config_u8(&mut self, offset: usize) -> Result<u8, VirtioError> {
            self.config
                .get(offset)
                .copied()
                .ok_or(VirtioError::ConfigOutOfRange(offset))
        }
        fn read_config_u32(&mut self, offset: usize) -> Result<u32, VirtioError> {
            Err(VirtioError::ConfigOutOfRange(offset))
        }
    }

    fn all_features() -> Features {
        Features::VERSION_1
            .union(F_MAC)
            .union(F_STATUS)
            .union(F_MRG_RXBUF)
            .union(F_GUEST_CSUM)
            .union(F_CSUM)
    }

    /// The device side of both queues, with every receive buffer the
    /// driver posted taken (head, address) in order.
    struct Wire {
        rx: FakeDevice,
        tx: FakeDevice,
        posted: std::collections::VecDeque<(u16, u64)>,
    }

    impl Wire {
        fn new(dev: &FakeNet) -> Wire {
            let [rx, tx] = dev.queues.get();
            let (rs, ra) = rx.expect("rx queue");
            let (ts, ta) = tx.expect("tx queue");
            let mut w = Wire {
                rx: FakeDevice::new(rs, ra),
                tx: FakeDevice::new(ts, ta),
                posted: Default::default(),
            };
            w.take_posted();
            w
        }

        fn take_posted(&mut self) {
            while let Some((head, chain)) = self.rx.take() {
                assert_eq!(chain.len(), 1);
                assert_eq!(chain[0].len as usize, BUFFER_LEN);
                self.posted.push_back((head, chain[0].addr));
            }
        }

        /// Delivers `bytes` (header included) into the next posted buffer
        /// without completing it; returns its head.
        fn fill(&mut self, bytes: &[u8]) -> u16 {
            let (head, addr) = self.posted.pop_front().expect("a posted buffer");
            at_phys(addr, BUFFER_LEN).write_bytes(0, bytes);
            head
        }

        /// Delivers one frame in one buffer.
        fn deliver(&mut self, header: [u8; NET_HDR_LEN], frame: &[u8]) {
            let mut b = header.to_vec();
            b.extend_from_slice(frame);
            let head = self.fill(&b);
            self.rx.complete(u32::from(head), b.len() as u32);
        }
    }

    fn header(flags: u8, start: u16, offset: u16, buffers: u16) -> [u8; NET_HDR_LEN] {
        let mut h = [0u8; NET_HDR_LEN];
        h[0] = flags;
        h[6..8].copy_from_slice(&start.to_le_bytes());
        h[8..10].copy_from_slice(&offset.to_le_bytes());
        h[10..12].copy_from_slice(&buffers.to_le_bytes());
        h
    }

    #[test]
    fn negotiates_what_it_handles_and_fills_the_receive_queue() {
        let dev = FakeNet::new(all_features());
        let mut net = VirtioNet::new(&dev, &mut HostDma).expect("net");
        assert_eq!(net.mac(), [0x52, 0x54, 0, 0x12, 0x34, 0x56]);
        assert!(net.link_up());
        assert!(!net.features().contains(F_CSUM), "no transmit offload");
        drop(net);
        assert_eq!(
            dev.accepted.get(),
            Features::VERSION_1
                .union(F_MAC)
                .union(F_STATUS)
                .union(F_MRG_RXBUF)
                .union(F_GUEST_CSUM)
        );
        assert!(dev.status.get().contains(Status::DRIVER_OK));
        let wire = Wire::new(&dev);
        assert_eq!(wire.posted.len(), 256, "every receive buffer posted");
        let mut addrs: Vec<u64> = wire.posted.iter().map(|p| p.1).collect();
        addrs.sort_unstable();
        addrs.dedup();
        assert_eq!(addrs.len(), 256, "distinct buffers");
    }

    #[test]
    fn a_device_without_version_1_or_of_another_kind_is_refused() {
        let dev = FakeNet::new(F_MAC);
        assert_eq!(
            VirtioNet::new(&dev, &mut HostDma).err(),
            Some(VirtioError::MissingFeatures(Features::VERSION_1.0))
        );
        assert!(dev.status.get().contains(Status::FAILED));
    }

    #[test]
    fn without_mac_or_status_the_driver_makes_do() {
        let mut dev = FakeNet::new(Features::VERSION_1);
        dev.config[6] = 0; // link down, but not negotiated
        let mut net = VirtioNet::new(&dev, &mut HostDma).expect("net");
        assert_eq!(net.mac(), [2, 0, 0, 0, 0, 1]);
        assert!(net.link_up());
    }

    #[test]
    fn frames_are_received_and_buffers_recycled() {
        let mut dev = FakeNet::new(all_features());
        dev.queue_max = 4;
        let mut net = VirtioNet::new(&dev, &mut HostDma).expect("net");
        let mut wire = Wire::new(&dev);
        let mut out = [0u8; MAX_FRAME];
        assert_eq!(net.receive(&mut out), Ok(None));
        for round in 0..10u8 {
            wire.deliver(header(0, 0, 0, 1), &[round; 60]);
            assert!(net.has_frame());
            assert_eq!(net.receive(&mut out), Ok(Some(60)));
            assert_eq!(out[..60], [round; 60]);
            wire.take_posted();
            assert_eq!(wire.posted.len(), 4, "the buffer came back");
        }
        assert_eq!(net.stats().rx_frames, 10);
    }

    #[test]
    fn merged_frames_are_put_back_together() {
        let dev = FakeNet::new(all_features());
        let mut net = VirtioNet::new(&dev, &mut HostDma).expect("net");
        let mut wire = Wire::new(&dev);
        let mut first = header(0, 0, 0, 2).to_vec();
        first.extend_from_slice(&[1u8; 1000]);
        let a = wire.fill(&first);
        let b = wire.fill(&[2u8; 500]);
        wire.rx.complete(u32::from(a), first.len() as u32);
        wire.rx.complete(u32::from(b), 500);
        let mut out = [0u8; MAX_FRAME];
        assert_eq!(net.receive(&mut out), Ok(Some(1500)));
        assert!(out[..1000].iter().all(|x| *x == 1));
        assert!(out[1000..1500].iter().all(|x| *x == 2));
        // A frame claiming more buffers than returned is an error, and
        // the next frame still arrives.
        wire.deliver(header(0, 0, 0, 3), &[9; 10]);
        assert_eq!(
            net.receive(&mut out),
            Err(NetDeviceError::BadBufferCount {
                claimed: 3,
                found: 1
            })
        );
        wire.deliver(header(0, 0, 0, 1), &[7; 10]);
        assert_eq!(net.receive(&mut out), Ok(Some(10)));
        // Zero buffers claimed is refused too.
        wire.deliver(header(0, 0, 0, 0), &[7; 10]);
        assert!(matches!(
            net.receive(&mut out),
            Err(NetDeviceError::BadBufferCount { claimed: 0, .. })
        ));
        assert_eq!(net.stats().rx_dropped, 2);
    }

    #[test]
    fn misbehaving_devices_get_typed_errors() {
        let dev = FakeNet::new(all_features());
        let mut net = VirtioNet::new(&dev, &mut HostDma).expect("net");
        let mut wire = Wire::new(&dev);
        let mut out = [0u8; 64];
        // Shorter than the header.
        let h = wire.fill(&[0; 4]);
        wire.rx.complete(u32::from(h), 4);
        assert_eq!(
            net.receive(&mut out),
            Err(NetDeviceError::ShortBuffer { len: 4 })
        );
        // Larger than the caller's room.
        wire.deliver(header(0, 0, 0, 1), &[1; 100]);
        assert_eq!(
            net.receive(&mut out),
            Err(NetDeviceError::FrameTooLong { len: 100, room: 64 })
        );
        // A checksum outside the frame.
        wire.deliver(header(HDR_F_NEEDS_CSUM, 30, 16, 1), &[1; 40]);
        assert_eq!(
            net.receive(&mut out),
            Err(NetDeviceError::BadChecksumRequest {
                start: 30,
                offset: 16,
                len: 40
            })
        );
        // A length beyond the buffer: the queue reports it, fatally.
        let h = wire.fill(&[0; 16]);
        wire.rx.complete(u32::from(h), BUFFER_LEN as u32 + 1);
        let e = net.receive(&mut out).expect_err("bad length");
        assert!(e.is_fatal(), "{e}");
        // An id never given.
        let dev = FakeNet::new(all_features());
        let mut net = VirtioNet::new(&dev, &mut HostDma).expect("net");
        let mut wire = Wire::new(&dev);
        wire.rx.complete(999, 20);
        assert_eq!(
            net.receive(&mut out),
            Err(NetDeviceError::Queue(QueueError::BadUsedId(999)))
        );
    }

    #[test]
    fn partial_checksums_are_completed() {
        // An IPv4 UDP datagram 10.0.2.2:1234 -> 10.0.2.15:5678, "hi!"
        let mut frame = vec![0u8; 14];
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip = [
            0x45, 0, 0, 31, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 2, 2, 10, 0, 2, 15,
        ];
        frame.extend_from_slice(&ip);
        let udp = [0x04, 0xd2, 0x16, 0x2e, 0, 11, 0, 0, b'h', b'i', b'!'];
        frame.extend_from_slice(&udp);
        // The reference: the full checksum over pseudo-header + segment.
        let full = |seg: &[u8]| {
            let mut pseudo = vec![10, 0, 2, 2, 10, 0, 2, 15, 0, 17, 0, 11];
            pseudo.extend_from_slice(seg);
            let mut v = vec![0u8; 2];
            v.extend_from_slice(&pseudo);
            complete_checksum(&mut v, 0, 0).expect("in range");
            [v[0], v[1]]
        };
        let expected = full(&udp);
        // The device's partial value: the pseudo-header's sum, uncomplemented.
        let pseudo_sum: u32 = [0x0a00u32, 0x0202, 0x0a00, 0x020f, 17, 11].iter().sum();
        let folded = ((pseudo_sum & 0xffff) + (pseudo_sum >> 16)) as u16;
        frame[34 + 6..34 + 8].copy_from_slice(&folded.to_be_bytes());
        complete_checksum(&mut frame, 34, 6).expect("in range");
        assert_eq!(frame[40..42], expected);
        assert_eq!(
            complete_checksum(&mut frame, 44, 0),
            Err(NetDeviceError::BadChecksumRequest {
                start: 44,
                offset: 0,
                len: 45
            })
        );
    }

    #[test]
    fn frames_are_sent_with_a_header_and_buffers_reclaimed() {
        let mut dev = FakeNet::new(all_features());
        dev.queue_max = 2;
        let mut net = VirtioNet::new(&dev, &mut HostDma).expect("net");
        let mut wire = Wire::new(&dev);
        assert_eq!(net.send(&[]), Err(NetDeviceError::BadFrameLength(0)));
        assert_eq!(
            net.send(&[0; MAX_FRAME + 1]),
            Err(NetDeviceError::BadFrameLength(MAX_FRAME + 1))
        );
        assert_eq!(net.send(&[0xaa; 60]), Ok(true));
        assert_eq!(net.send(&[0xbb; 1514]), Ok(true));
        assert_eq!(net.can_send(), Ok(false));
        assert_eq!(net.send(&[0xcc; 60]), Ok(false), "both buffers in flight");
        let (h1, c1) = wire.tx.take().expect("first");
        assert_eq!(c1.len(), 1);
        assert_eq!(c1[0].len as usize, NET_HDR_LEN + 60);
        let mut seen = vec![0u8; NET_HDR_LEN + 60];
        at_phys(c1[0].addr, seen.len()).read_bytes(0, &mut seen);
        assert_eq!(seen[..NET_HDR_LEN], [0; NET_HDR_LEN]);
        assert!(seen[NET_HDR_LEN..].iter().all(|b| *b == 0xaa));
        wire.tx.complete(u32::from(h1), 0);
        assert_eq!(net.can_send(), Ok(true));
        assert_eq!(net.send(&[0xcc; 60]), Ok(true));
        assert_eq!(net.stats().tx_frames, 3);
        drop(net);
        assert_eq!(dev.notifies.get()[1], 3);
    }
}
