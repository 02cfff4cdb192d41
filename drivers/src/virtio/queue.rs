//! The split virtqueue (virtio 1.x, "Split Virtqueues"): a descriptor
//! table, the available ring the driver writes and the used ring the
//! device writes, each in DMA memory, plus the driver's own bookkeeping
//! (the free-descriptor list and which chains are in flight), which never
//! lives where a device could change it.
//!
//! Everything a device writes (the used ring) is checked before use: a
//! device that reports an id it was never given, a length longer than the
//! buffer, or more completions than the queue holds gets a typed
//! [`QueueError`], not a panic or a corrupted free list.

use core::sync::atomic::{Ordering, fence};

use super::dma::{DMA_PAGE_SIZE, Dma, DmaError, DmaRegion};

/// The largest queue this driver sets up (its bookkeeping is sized for it).
pub const MAX_QUEUE_SIZE: u16 = 256;

/// Descriptor flag: the chain continues at `next`.
const DESC_F_NEXT: u16 = 1;
/// Descriptor flag: the device writes this buffer (else it reads it).
const DESC_F_WRITE: u16 = 2;
/// Available-ring flag: the driver does not want interrupts.
const AVAIL_F_NO_INTERRUPT: u16 = 1;
/// Used-ring flag: the device does not want notifications.
const USED_F_NO_NOTIFY: u16 = 1;
/// Bytes per descriptor: addr (8), len (4), flags (2), next (2).
const DESC_SIZE: usize = 16;
/// Bytes per used-ring element: id (4), len (4).
const USED_ELEM_SIZE: usize = 8;

/// What went wrong with a queue, on the driver's side or the device's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueError {
    /// the size is 0, above [`MAX_QUEUE_SIZE`] or not a power of two
    BadSize(u16),
    /// not enough free descriptors for the chain (needed, free)
    Full {
        /// descriptors the chain needs
        needed: usize,
        /// descriptors free
        free: u16,
    },
    /// a chain must hold at least one buffer
    EmptyChain,
    /// a zero-length buffer
    ZeroLength,
    /// a device-readable buffer after a device-writable one (the spec
    /// wants all readable buffers first)
    ReadableAfterWritable,
    /// the device returned a descriptor id outside the table
    BadUsedId(u32),
    /// the device returned a descriptor that heads no chain in flight
    NotInFlight(u16),
    /// the device says it used more bytes than the chain could take
    BadUsedLength {
        /// the chain's head
        head: u16,
        /// what the device said
        len: u32,
        /// the chain's device-writable bytes
        capacity: u32,
    },
    /// the used index moved further than the queue holds buffers
    UsedIndexJump {
        /// where the driver had read up to
        last_seen: u16,
        /// where the device says it is
        used_idx: u16,
    },
    /// ring memory could not be allocated
    Dma(DmaError),
}

impl core::fmt::Display for QueueError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            QueueError::BadSize(n) => write!(f, "bad queue size {n}"),
            QueueError::Full { needed, free } => {
                write!(f, "queue full ({needed} descriptors needed, {free} free)")
            }
            QueueError::EmptyChain => f.write_str("empty descriptor chain"),
            QueueError::ZeroLength => f.write_str("zero-length buffer"),
            QueueError::ReadableAfterWritable => {
                f.write_str("device-readable buffer after a device-writable one")
            }
            QueueError::BadUsedId(id) => write!(f, "device returned bad descriptor id {id}"),
            QueueError::NotInFlight(id) => {
                write!(f, "device returned descriptor {id}, which it was not given")
            }
            QueueError::BadUsedLength {
                head,
                len,
                capacity,
            } => write!(
                f,
                "device claims {len} bytes written to chain {head} of {capacity} bytes"
            ),
            QueueError::UsedIndexJump {
                last_seen,
                used_idx,
            } => write!(f, "device used index jumped from {last_seen} to {used_idx}"),
            QueueError::Dma(e) => write!(f, "queue memory: {e}"),
        }
    }
}

impl From<DmaError> for QueueError {
    fn from(e: DmaError) -> Self {
        QueueError::Dma(e)
    }
}

/// Where a queue's three parts are, for the transport to tell the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueAddresses {
    /// the descriptor table
    pub descriptors: u64,
    /// the available ring ("driver area")
    pub driver: u64,
    /// the used ring ("device area")
    pub device: u64,
}

/// One buffer of a chain, as the device sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buffer {
    /// bus address
    pub addr: u64,
    /// length in bytes
    pub len: u32,
    /// the device writes it (else it only reads it)
    pub device_writable: bool,
}

/// A chain the device has finished with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Used {
    /// the chain's head descriptor, as [`SplitQueue::add`] returned it
    pub head: u16,
    /// bytes the device wrote into the chain's writable buffers
    pub len: u32,
}

/// Byte sizes and offsets of a split queue of `size` entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLayout {
    /// bytes of the descriptor table (16-byte aligned)
    pub descriptors: usize,
    /// bytes of the available ring: flags, idx, ring, used_event
    pub avail: usize,
    /// where the used ring starts in the rings' memory (4-byte aligned,
    /// after the available ring)
    pub used_offset: usize,
    /// bytes of the used ring: flags, idx, ring, avail_event
    pub used: usize,
}

impl QueueLayout {
    /// The layout for `size` entries (a power of two up to
    /// [`MAX_QUEUE_SIZE`]).
    pub fn new(size: u16) -> Result<QueueLayout, QueueError> {
        if size == 0 || size > MAX_QUEUE_SIZE || !size.is_power_of_two() {
            return Err(QueueError::BadSize(size));
        }
        let n = usize::from(size);
        let avail = 6 + 2 * n;
        Ok(QueueLayout {
            descriptors: DESC_SIZE * n,
            avail,
            used_offset: avail.next_multiple_of(4),
            used: 6 + USED_ELEM_SIZE * n,
        })
    }

    /// Bytes of the memory holding both rings.
    pub fn rings(&self) -> usize {
        self.used_offset + self.used
    }
}

/// The ring slot of free-running index `idx` in a queue of `size` (a power
/// of two) entries.
pub fn ring_slot(idx: u16, size: u16) -> usize {
    usize::from(idx & (size - 1))
}

/// How many entries lie between a reader at `seen` and a writer at `idx`
/// of a free-running 16-bit ring index (it wraps at 65536, not at the
/// queue size).
pub fn ring_distance(idx: u16, seen: u16) -> u16 {
    idx.wrapping_sub(seen)
}

fn pages(bytes: usize) -> usize {
    bytes.div_ceil(DMA_PAGE_SIZE)
}

/// A split virtqueue owned by a driver.
pub struct SplitQueue {
    index: u16,
    size: u16,
    layout: QueueLayout,
    desc: DmaRegion,
    rings: DmaRegion,
    /// first free descriptor (meaningful when `num_free > 0`)
    free_head: u16,
    num_free: u16,
    /// the driver's copy of each descriptor's `next` (free list and chains)
    next: [u16; MAX_QUEUE_SIZE as usize],
    /// for each head in flight, its chain's length (0: not in flight)
    chain_len: [u16; MAX_QUEUE_SIZE as usize],
    /// for each head in flight, its writable bytes
    capacity: [u32; MAX_QUEUE_SIZE as usize],
    /// the next available index to publish
    avail_idx: u16,
    /// how far the used ring has been read
    last_used: u16,
}

impl SplitQueue {
    /// A queue `index` of `size` entries in fresh DMA memory, all
    /// descriptors free.
    pub fn new(dma: &mut dyn Dma, index: u16, size: u16) -> Result<SplitQueue, QueueError> {
        let layout = QueueLayout::new(size)?;
        let desc = dma.allocate(pages(layout.descriptors))?;
        let rings = dma.allocate(pages(layout.rings()))?;
        let mut next = [0u16; MAX_QUEUE_SIZE as usize];
        for (i, n) in next.iter_mut().enumerate().take(usize::from(size)) {
            *n = (i as u16).wrapping_add(1) & (size - 1);
        }
        Ok(SplitQueue {
            index,
            size,
            layout,
            desc,
            rings,
            free_head: 0,
            num_free: size,
            next,
            chain_len: [0; MAX_QUEUE_SIZE as usize],
            capacity: [0; MAX_QUEUE_SIZE as usize],
            avail_idx: 0,
            last_used: 0,
        })
    }

    /// The queue's index on its device.
    pub fn index(&self) -> u16 {
        self.index
    }

    /// How many entries the queue has.
    pub fn size(&self) -> u16 {
        self.size
    }

    /// Descriptors not in flight.
    pub fn num_free(&self) -> u16 {
        self.num_free
    }

    /// Where the device finds the queue's parts.
    pub fn addresses(&self) -> QueueAddresses {
        QueueAddresses {
            descriptors: self.desc.phys(),
            driver: self.rings.phys(),
            device: self.rings.phys() + self.layout.used_offset as u64,
        }
    }

    /// Asks the device not to interrupt on completions (the driver polls);
    /// a hint the device may ignore.
    pub fn set_interrupts_suppressed(&mut self, suppressed: bool) {
        let flags = if suppressed { AVAIL_F_NO_INTERRUPT } else { 0 };
        self.rings.write_u16(0, flags);
    }

    /// Makes `chain` available to the device and returns its head, the id
    /// [`SplitQueue::poll_used`] reports it by. Device-readable buffers
    /// come first. The caller then notifies the device (through its
    /// transport) if [`SplitQueue::should_notify`] says so.
    pub fn add(&mut self, chain: &[Buffer]) -> Result<u16, QueueError> {
        if chain.is_empty() {
            return Err(QueueError::EmptyChain);
        }
        if chain.len() > usize::from(self.num_free) {
            return Err(QueueError::Full {
                needed: chain.len(),
                free: self.num_free,
            });
        }
        let mut writable_seen = false;
        let mut capacity = 0u32;
        for b in chain {
            if b.len == 0 {
                return Err(QueueError::ZeroLength);
            }
            if b.device_writable {
                writable_seen = true;
                capacity = capacity.saturating_add(b.len);
            } else if writable_seen {
                return Err(QueueError::ReadableAfterWritable);
            }
        }
        let head = self.free_head;
        let mut i = head;
        for (k, b) in chain.iter().enumerate() {
            let last = k + 1 == chain.len();
            let mut flags = if b.device_writable { DESC_F_WRITE } else { 0 };
            if !last {
                flags |= DESC_F_NEXT;
            }
            let at = usize::from(i) * DESC_SIZE;
            self.desc.write_u64(at, b.addr);
            self.desc.write_u32(at + 8, b.len);
            self.desc.write_u16(at + 12, flags);
            self.desc
                .write_u16(at + 14, if last { 0 } else { self.next[usize::from(i)] });
            if !last {
                i = self.next[usize::from(i)];
            }
        }
        // `i` is the chain's tail; the free list continues after it.
        self.free_head = self.next[usize::from(i)];
        self.num_free -= chain.len() as u16;
        self.chain_len[usize::from(head)] = chain.len() as u16;
        self.capacity[usize::from(head)] = capacity;
        let slot = ring_slot(self.avail_idx, self.size);
        self.rings.write_u16(4 + 2 * slot, head);
        // The descriptors and the ring entry before the index that
        // publishes them.
        fence(Ordering::Release);
        self.avail_idx = self.avail_idx.wrapping_add(1);
        self.rings.write_u16(2, self.avail_idx);
        // The index before reading the device's notification flag.
        fence(Ordering::SeqCst);
        Ok(head)
    }

    /// Whether the device wants to be told of new buffers (it may say it
    /// is polling); read after [`SplitQueue::add`].
    pub fn should_notify(&self) -> bool {
        self.rings.read_u16(self.layout.used_offset) & USED_F_NO_NOTIFY == 0
    }

    /// Whether the device has finished with a chain [`SplitQueue::poll_used`]
    /// has not returned yet.
    pub fn has_used(&self) -> bool {
        let used_idx = self.rings.read_u16(self.layout.used_offset + 2);
        ring_distance(used_idx, self.last_used) != 0
    }

    /// The next chain the device has finished with, if any; its
    /// descriptors are free again. A device error leaves the queue as it
    /// was (the same error comes again): the device is broken and needs a
    /// reset.
    pub fn poll_used(&mut self) -> Result<Option<Used>, QueueError> {
        let used = self.layout.used_offset;
        let used_idx = self.rings.read_u16(used + 2);
        let pending = ring_distance(used_idx, self.last_used);
        if pending == 0 {
            return Ok(None);
        }
        if pending > self.size {
            return Err(QueueError::UsedIndexJump {
                last_seen: self.last_used,
                used_idx,
            });
        }
        // The index before the element it covers (and before the data
        // the device wrote into our buffers).
        fence(Ordering::Acquire);
        let elem = used + 4 + USED_ELEM_SIZE * ring_slot(self.last_used, self.size);
        let id = self.rings.read_u32(elem);
        let len = self.rings.read_u32(elem + 4);
        if id >= u32::from(self.size) {
            return Err(QueueError::BadUsedId(id));
        }
        let head = id as u16;
        let n = self.chain_len[usize::from(head)];
        if n == 0 {
            return Err(QueueError::NotInFlight(head));
        }
        let capacity = self.capacity[usize::from(head)];
        if len > capacity {
            return Err(QueueError::BadUsedLength {
                head,
                len,
                capacity,
            });
        }
        let mut tail = head;
        for _ in 1..n {
            tail = self.next[usize::from(tail)];
        }
        if self.num_free > 0 {
            self.next[usize::from(tail)] = self.free_head;
        }
        self.free_head = head;
        self.num_free += n;
        self.chain_len[usize::from(head)] = 0;
        self.capacity[usize::from(head)] = 0;
        self.last_used = self.last_used.wrapping_add(1);
        Ok(Some(Used { head, len }))
    }
}

/// A device's side of a split queue, simulated on the host for tests and
/// fuzzing (feature `simulated`): it reads what the driver made available
/// and writes the used ring as a device would — or as a hostile one would.
#[cfg(any(test, feature = "simulated"))]
pub mod simulated {
    use super::super::dma::host::at_phys;
    use super::*;
    use std::vec::Vec;

    /// The device's side of a queue, as QEMU would play it: reads the
    /// available ring and the descriptor chains, writes the used ring.
    pub struct FakeDevice {
        size: u16,
        desc: DmaRegion,
        avail: DmaRegion,
        used: DmaRegion,
        last_avail: u16,
        used_idx: u16,
    }

    /// One buffer of a chain the fake device took.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct SeenBuffer {
        /// the buffer's bus address
        pub addr: u64,
        /// its length in bytes
        pub len: u32,
        /// its descriptor flags (`NEXT`, `WRITE`)
        pub flags: u16,
        /// the next descriptor of the chain, if `NEXT`
        pub next: u16,
    }

    impl FakeDevice {
        /// The device of a queue of `size` at `a`, which a host allocator
        /// ([`HostDma`](super::super::dma::host::HostDma) or
        /// [`HostDmaArena`](super::super::dma::host::HostDmaArena)) made: its
        /// bus addresses are where the process finds it.
        pub fn new(size: u16, a: QueueAddresses) -> FakeDevice {
            let l = QueueLayout::new(size).expect("size");
            FakeDevice {
                size,
                desc: at_phys(a.descriptors, l.descriptors),
                avail: at_phys(a.driver, l.avail),
                used: at_phys(a.device, l.used),
                last_avail: 0,
                used_idx: 0,
            }
        }

        /// The next chain the driver made available: its head and buffers.
        pub fn take(&mut self) -> Option<(u16, Vec<SeenBuffer>)> {
            let idx = self.avail.read_u16(2);
            if idx == self.last_avail {
                return None;
            }
            let head = self
                .avail
                .read_u16(4 + 2 * ring_slot(self.last_avail, self.size));
            self.last_avail = self.last_avail.wrapping_add(1);
            let mut chain = Vec::new();
            let mut i = head;
            loop {
                let at = usize::from(i) * DESC_SIZE;
                let b = SeenBuffer {
                    addr: self.desc.read_u64(at),
                    len: self.desc.read_u32(at + 8),
                    flags: self.desc.read_u16(at + 12),
                    next: self.desc.read_u16(at + 14),
                };
                chain.push(b);
                assert!(chain.len() <= usize::from(self.size), "descriptor loop");
                if b.flags & DESC_F_NEXT == 0 {
                    break;
                }
                i = b.next;
            }
            Some((head, chain))
        }

        /// Completes chain `id` with `len` bytes written.
        pub fn complete(&mut self, id: u32, len: u32) {
            let slot = ring_slot(self.used_idx, self.size);
            self.used.write_u32(4 + 8 * slot, id);
            self.used.write_u32(8 + 8 * slot, len);
            self.used_idx = self.used_idx.wrapping_add(1);
            self.used.write_u16(2, self.used_idx);
        }

        /// Sets the used index directly (a misbehaving device).
        pub fn set_used_idx(&mut self, idx: u16) {
            self.used_idx = idx;
            self.used.write_u16(2, idx);
        }

        /// Says "do not notify me".
        pub fn set_no_notify(&mut self, on: bool) {
            self.used
                .write_u16(0, if on { USED_F_NO_NOTIFY } else { 0 });
        }

        /// The driver's available-ring flags.
        pub fn avail_flags(&self) -> u16 {
            self.avail.read_u16(0)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::dma::host::HostDma;
    use super::simulated::FakeDevice;
    use super::*;
    use std::vec::Vec;

    fn buf(addr: u64, len: u32, w: bool) -> Buffer {
        Buffer {
            addr,
            len,
            device_writable: w,
        }
    }

    fn queue(size: u16) -> (SplitQueue, FakeDevice) {
        let q = SplitQueue::new(&mut HostDma, 0, size).expect("queue");
        let d = FakeDevice::new(size, q.addresses());
        (q, d)
    }

    #[test]
    fn layout_follows_the_spec() {
        let l = QueueLayout::new(8).expect("8");
        assert_eq!(l.descriptors, 128);
        assert_eq!(l.avail, 6 + 16);
        assert_eq!(l.used_offset, 24);
        assert_eq!(l.used, 6 + 64);
        let l = QueueLayout::new(256).expect("256");
        assert_eq!(l.descriptors, 4096);
        assert!(l.rings() <= 4096, "both rings fit one page");
        assert_eq!(QueueLayout::new(1).expect("1").used_offset, 8);
        for bad in [0, 3, 100, 512, u16::MAX] {
            assert_eq!(QueueLayout::new(bad), Err(QueueError::BadSize(bad)));
        }
    }

    #[test]
    fn index_arithmetic_wraps_at_65536() {
        assert_eq!(ring_slot(0, 8), 0);
        assert_eq!(ring_slot(9, 8), 1);
        assert_eq!(ring_slot(u16::MAX, 8), 7);
        assert_eq!(ring_slot(u16::MAX, 256), 255);
        assert_eq!(ring_distance(5, 3), 2);
        assert_eq!(ring_distance(1, u16::MAX), 2);
        assert_eq!(ring_distance(0, 0), 0);
        assert_eq!(ring_distance(3, 5), u16::MAX - 1);
    }

    #[test]
    fn chains_are_linked_and_flagged() {
        let (mut q, mut d) = queue(8);
        let head = q
            .add(&[
                buf(0x1000, 16, false),
                buf(0x2000, 32, true),
                buf(0x3000, 8, true),
            ])
            .expect("add");
        assert_eq!(q.num_free(), 5);
        assert!(q.should_notify());
        let (h, chain) = d.take().expect("available");
        assert_eq!(h, head);
        let addrs: Vec<_> = chain.iter().map(|b| (b.addr, b.len)).collect();
        assert_eq!(addrs, [(0x1000, 16), (0x2000, 32), (0x3000, 8)]);
        let flags: Vec<_> = chain.iter().map(|b| b.flags).collect();
        assert_eq!(
            flags,
            [DESC_F_NEXT, DESC_F_NEXT | DESC_F_WRITE, DESC_F_WRITE]
        );
        assert!(d.take().is_none());
        assert_eq!(q.poll_used(), Ok(None));
        d.complete(u32::from(head), 40);
        assert_eq!(q.poll_used(), Ok(Some(Used { head, len: 40 })));
        assert_eq!(q.num_free(), 8);
        assert_eq!(q.poll_used(), Ok(None));
    }

    #[test]
    fn the_free_list_survives_out_of_order_completion() {
        let (mut q, mut d) = queue(4);
        let a = q.add(&[buf(0xa000, 1, true)]).expect("a");
        let b = q
            .add(&[buf(0xb000, 1, false), buf(0xb100, 1, true)])
            .expect("b");
        let c = q.add(&[buf(0xc000, 1, true)]).expect("c");
        assert_eq!(q.num_free(), 0);
        assert_eq!(
            q.add(&[buf(0xd000, 1, true)]),
            Err(QueueError::Full { needed: 1, free: 0 })
        );
        for _ in 0..3 {
            d.take().expect("chain");
        }
        for (id, len) in [(b, 1), (a, 0), (c, 1)] {
            d.complete(u32::from(id), len);
        }
        let done: Vec<_> = core::iter::from_fn(|| q.poll_used().expect("ok"))
            .map(|u| u.head)
            .collect();
        assert_eq!(done, [b, a, c]);
        assert_eq!(q.num_free(), 4);
        // All four descriptors are usable again, in one chain.
        let all = [
            buf(1, 1, false),
            buf(2, 1, false),
            buf(3, 1, true),
            buf(4, 1, true),
        ];
        let head = q.add(&all).expect("whole table");
        let (_, chain) = d.take().expect("chain");
        assert_eq!(
            chain.iter().map(|b| b.addr).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        let mut ids: Vec<_> = chain.iter().map(|b| b.next).collect();
        ids.pop();
        ids.push(head);
        ids.sort_unstable();
        assert_eq!(ids, [0, 1, 2, 3], "each descriptor once");
    }

    #[test]
    fn indices_wrap_around() {
        let (mut q, mut d) = queue(4);
        for i in 0..70_000u32 {
            let head = q.add(&[buf(0x1000, 64, true)]).expect("add");
            let (h, _) = d.take().expect("taken");
            assert_eq!(h, head);
            d.complete(u32::from(h), i % 65);
            assert_eq!(q.poll_used(), Ok(Some(Used { head, len: i % 65 })));
        }
        assert_eq!(q.num_free(), 4);
    }

    #[test]
    fn bad_chains_are_refused() {
        let (mut q, _) = queue(8);
        assert_eq!(q.add(&[]), Err(QueueError::EmptyChain));
        assert_eq!(q.add(&[buf(1, 0, true)]), Err(QueueError::ZeroLength));
        assert_eq!(
            q.add(&[buf(1, 1, true), buf(2, 1, false)]),
            Err(QueueError::ReadableAfterWritable)
        );
        let nine = [buf(1, 1, true); 9];
        assert_eq!(q.add(&nine), Err(QueueError::Full { needed: 9, free: 8 }));
        assert_eq!(q.num_free(), 8, "nothing was taken");
    }

    #[test]
    fn a_misbehaving_device_gets_typed_errors() {
        let (mut q, mut d) = queue(8);
        let head = q.add(&[buf(0x1000, 16, true)]).expect("add");
        d.take().expect("chain");
        d.complete(99, 1);
        assert_eq!(q.poll_used(), Err(QueueError::BadUsedId(99)));
        assert_eq!(q.poll_used(), Err(QueueError::BadUsedId(99)), "sticky");

        let (mut q, mut d) = queue(8);
        let head2 = q.add(&[buf(0x1000, 16, true)]).expect("add");
        assert_eq!(head, head2);
        d.complete(u32::from(head2) + 1, 1);
        assert_eq!(q.poll_used(), Err(QueueError::NotInFlight(head2 + 1)));

        let (mut q, mut d) = queue(8);
        let head = q.add(&[buf(0x1000, 16, true)]).expect("add");
        d.complete(u32::from(head), 17);
        assert_eq!(
            q.poll_used(),
            Err(QueueError::BadUsedLength {
                head,
                len: 17,
                capacity: 16
            })
        );

        let (mut q, mut d) = queue(8);
        d.set_used_idx(9);
        assert_eq!(
            q.poll_used(),
            Err(QueueError::UsedIndexJump {
                last_seen: 0,
                used_idx: 9
            })
        );
    }

    #[test]
    fn notification_and_interrupt_flags() {
        let (mut q, mut d) = queue(2);
        d.set_no_notify(true);
        q.add(&[buf(1, 1, true)]).expect("add");
        assert!(!q.should_notify());
        d.set_no_notify(false);
        assert!(q.should_notify());
        assert_eq!(d.avail_flags(), 0);
        q.set_interrupts_suppressed(true);
        assert_eq!(d.avail_flags(), AVAIL_F_NO_INTERRUPT);
    }

    /// A device that mixes faithful completions with hostile used-ring
    /// writes (ids out of range, chains not in flight, completed twice,
    /// lengths too long, index jumps), 20,000 steps from a fixed seed:
    /// the driver answers each with a value or a typed error, its free
    /// count never exceeds the queue, and after a faithful run every
    /// descriptor is free again. (The smoke run of what a `cargo fuzz`
    /// target would search.)
    #[test]
    fn random_used_rings_never_break_the_queue() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let (mut q, mut d) = queue(16);
        // Chains the device took and may complete: (head, capacity).
        let mut taken: Vec<(u16, u32)> = Vec::new();
        let mut hostile_since_reset = false;
        for _ in 0..20_000 {
            match next(4) {
                0 | 1 => {
                    let n = 1 + next(3) as usize;
                    let chain: Vec<Buffer> = (0..n)
                        .map(|i| buf(0x1000 * (i as u64 + 1), 1 + next(4096) as u32, i + 1 == n))
                        .collect();
                    if q.add(&chain).is_ok() {
                        let (head, seen) = d.take().expect("the chain just added");
                        let capacity = seen
                            .iter()
                            .filter(|b| b.flags & DESC_F_WRITE != 0)
                            .map(|b| b.len)
                            .sum();
                        taken.push((head, capacity));
                    }
                }
                2 if !taken.is_empty() => {
                    let (head, capacity) = taken.swap_remove(next(taken.len() as u64) as usize);
                    let len = next(u64::from(capacity) + 1) as u32;
                    d.complete(u32::from(head), len);
                }
                _ => {
                    hostile_since_reset = true;
                    match next(4) {
                        0 => d.complete(next(1 << 20) as u32, 1),
                        1 => d.complete(next(16) as u32, next(1 << 16) as u32),
                        2 => d.set_used_idx(next(1 << 16) as u16),
                        _ => d.complete(u32::from(next(16) as u16), 0),
                    }
                }
            }
            loop {
                match q.poll_used() {
                    Ok(Some(used)) => assert!(used.head < 16),
                    Ok(None) => break,
                    Err(_) => {
                        // A broken device is reset: a fresh queue.
                        (q, d) = queue(16);
                        taken.clear();
                        hostile_since_reset = false;
                        break;
                    }
                }
                assert!(q.num_free() <= 16);
            }
            assert!(q.num_free() <= 16);
        }
        // Faithful completions of what is still out free every descriptor,
        // unless an unnoticed hostile write (a plausible id completed
        // twice) already reused one.
        for (head, _) in taken.drain(..) {
            d.complete(u32::from(head), 0);
        }
        while let Ok(Some(_)) = q.poll_used() {}
        if !hostile_since_reset {
            assert_eq!(q.num_free(), 16);
        }
    }
}
