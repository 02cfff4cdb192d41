//! The virtio 9P transport (device type 9): one request queue on which
//! each 9P request is a chain of two buffers, the T-message the device
//! reads and room for the R-message it writes. The device's
//! configuration names the share (its *mount tag*, QEMU's
//! `mount_tag=`).
//!
//! [`Virtio9p`] is a [`Channel`] for [`crate::ninep::Client`]: one request
//! in flight, its completion polled against a deadline. A device that
//! does not answer in time is given up for good (it still owns the
//! buffers), so a hung host costs one deadline, not one per call.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::dma::{DMA_PAGE_SIZE, Dma, DmaRegion};
use super::queue::{Buffer, SplitQueue};
use super::{DeviceType, Features, Transport, VirtioError};
use crate::ninep::Channel;

/// The 9P transport's device type.
pub const DEVICE_TYPE: DeviceType = DeviceType(9);

/// Feature bit 0: the configuration holds a mount tag.
const MOUNT_TAG: Features = Features(1);

/// Entries in the request queue: two per request, one request at a time.
const QUEUE_SIZE: u16 = 4;

/// The message size this driver offers: 128 KiB plus a page for headers,
/// so a read or write of 128 KiB of data is one round trip.
pub const MESSAGE_SIZE: usize = 128 * 1024 + DMA_PAGE_SIZE;

/// The longest mount tag read from the configuration.
const TAG_MAX: usize = 256;

/// A live virtio-9p device.
pub struct Virtio9p<T: Transport> {
    transport: T,
    queue: SplitQueue,
    request: DmaRegion,
    reply: DmaRegion,
    tag: Vec<u8>,
    /// monotonic nanoseconds, for deadlines
    clock: fn() -> u64,
    /// how long one request may take
    timeout_ns: u64,
    /// a request timed out: the device still owns the buffers
    hung: bool,
}

impl<T: Transport> Virtio9p<T> {
    /// Brings up the 9P device behind `transport`: handshake, queue 0,
    /// two [`MESSAGE_SIZE`] buffers from `dma`, and its mount tag.
    /// `clock` reads monotonic nanoseconds; a request not answered within
    /// `timeout_ns` fails.
    pub fn new(
        mut transport: T,
        dma: &mut dyn Dma,
        clock: fn() -> u64,
        timeout_ns: u64,
    ) -> Result<Virtio9p<T>, VirtioError> {
        let found = transport.device_type();
        if found != DEVICE_TYPE {
            return Err(VirtioError::WrongDevice {
                expected: DEVICE_TYPE,
                found,
            });
        }
        let accepted = super::begin_init(&mut transport, MOUNT_TAG, Features::default())?;
        let tag = if accepted.contains(MOUNT_TAG) {
            match read_tag(&mut transport) {
                Ok(t) => t,
                Err(e) => return Err(super::fail(&mut transport, e)),
            }
        } else {
            Vec::new()
        };
        let pages = MESSAGE_SIZE / DMA_PAGE_SIZE;
        // Two entries per request: the request and room for the reply.
        let setup = super::polled_queue(&mut transport, dma, 0, QUEUE_SIZE, 2)
            .and_then(|q| Ok((q, dma.allocate(pages)?, dma.allocate(pages)?)));
        let (queue, request, reply) = match setup {
            Ok(v) => v,
            Err(e) => return Err(super::fail(&mut transport, e)),
        };
        super::finish_init(&mut transport);
        Ok(Virtio9p {
            transport,
            queue,
            request,
            reply,
            tag,
            clock,
            timeout_ns,
            hung: false,
        })
    }

    /// The share's mount tag (empty if the device names none).
    pub fn tag(&self) -> &[u8] {
        &self.tag
    }

    /// The transport, for logs.
    pub fn transport(&self) -> &T {
        &self.transport
    }
}

/// Reads the mount tag: tag_len[2] then that many bytes.
fn read_tag<T: Transport>(t: &mut T) -> Result<Vec<u8>, VirtioError> {
    let len = usize::from(t.read_config_u8(0)?) | usize::from(t.read_config_u8(1)?) << 8;
    let len = len.min(TAG_MAX);
    let mut tag = Vec::with_capacity(len);
    for i in 0..len {
        tag.push(t.read_config_u8(2 + i)?);
    }
    Ok(tag)
}

impl<T: Transport> Channel for Virtio9p<T> {
    fn max_message(&self) -> usize {
        MESSAGE_SIZE
    }

    fn exchange(&mut self, request: &[u8], reply: &mut [u8]) -> Result<usize, String> {
        if self.hung {
            return Err(String::from(
                "the device stopped answering earlier and is no longer used",
            ));
        }
        if request.len() > self.request.len() || reply.len() < MESSAGE_SIZE {
            return Err(String::from("message larger than the transport's buffers"));
        }
        self.request.write_bytes(0, request);
        self.queue
            .add(&[
                Buffer {
                    addr: self.request.phys(),
                    len: request.len() as u32,
                    device_writable: false,
                },
                Buffer {
                    addr: self.reply.phys(),
                    len: MESSAGE_SIZE as u32,
                    device_writable: true,
                },
            ])
            .map_err(|e| format!("{e}"))?;
        if self.queue.should_notify() {
            self.transport.notify(self.queue.index());
        }
        let deadline = (self.clock)().saturating_add(self.timeout_ns);
        let used = loop {
            match self.queue.poll_used() {
                Ok(Some(u)) => break u,
                Ok(None) => {}
                Err(e) => {
                    self.hung = true;
                    return Err(format!("{e}"));
                }
            }
            if (self.clock)() > deadline {
                self.hung = true;
                return Err(format!(
                    "no answer within {} ms",
                    self.timeout_ns / 1_000_000
                ));
            }
            core::hint::spin_loop();
        };
        self.transport.ack_interrupt();
        let n = (used.len as usize).min(MESSAGE_SIZE);
        self.reply.read_bytes(0, &mut reply[..n]);
        Ok(n)
    }
}
