//! The virtio entropy device (virtio-rng, device type 4): one queue of
//! device-writable buffers the device fills with random bytes. No
//! configuration, no device features.
//!
//! Requests are polled with a deadline the caller checks: a device that
//! never answers gives [`RngError::Timeout`], never a hang.

use super::dma::{DMA_PAGE_SIZE, Dma, DmaRegion};
use super::queue::{Buffer, SplitQueue};
use super::{DeviceType, Features, QueueError, Transport, VirtioError};

/// Entries in the request queue (one request is in flight at a time).
const QUEUE_SIZE: u16 = 4;
/// The largest request, in bytes (the buffer is one page).
const REQUEST_MAX: usize = DMA_PAGE_SIZE;

/// Why random bytes could not be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RngError {
    /// the device did not answer before the deadline; `filled` bytes of
    /// the caller's buffer were written
    Timeout {
        /// bytes written before the deadline passed
        filled: usize,
    },
    /// the device misused the queue (it needs a reset)
    Queue(QueueError),
}

impl core::fmt::Display for RngError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RngError::Timeout { filled } => write!(
                f,
                "virtio-rng did not answer in time ({filled} bytes received)"
            ),
            RngError::Queue(e) => write!(f, "virtio-rng: {e}"),
        }
    }
}

impl From<QueueError> for RngError {
    fn from(e: QueueError) -> Self {
        RngError::Queue(e)
    }
}

/// A virtio-rng device, set up and live.
pub struct VirtioRng<T: Transport> {
    transport: T,
    queue: SplitQueue,
    buffer: DmaRegion,
    /// a request that timed out and is still the device's: its buffer must
    /// not be handed out again until it comes back
    pending: Option<u16>,
}

impl<T: Transport> VirtioRng<T> {
    /// Brings up the entropy device behind `transport`: handshake,
    /// request queue 0 and a one-page buffer from `dma`.
    pub fn new(mut transport: T, dma: &mut dyn Dma) -> Result<VirtioRng<T>, VirtioError> {
        let found = transport.device_type();
        if found != DeviceType::ENTROPY {
            return Err(VirtioError::WrongDevice {
                expected: DeviceType::ENTROPY,
                found,
            });
        }
        super::begin_init(&mut transport, Features::default(), Features::default())?;
        let setup = super::polled_queue(&mut transport, dma, 0, QUEUE_SIZE, 1)
            .and_then(|q| Ok((q, dma.allocate(REQUEST_MAX / DMA_PAGE_SIZE)?)));
        let (queue, buffer) = match setup {
            Ok(v) => v,
            Err(e) => return Err(super::fail(&mut transport, e)),
        };
        super::finish_init(&mut transport);
        Ok(VirtioRng {
            transport,
            queue,
            buffer,
            pending: None,
        })
    }

    /// Fills `out` with bytes from the device, request after request,
    /// polling for each; `expired` is asked between polls and ends the
    /// wait with [`RngError::Timeout`] when it says so.
    pub fn fill(
        &mut self,
        out: &mut [u8],
        expired: &mut dyn FnMut() -> bool,
    ) -> Result<(), RngError> {
        let mut filled = 0;
        while filled < out.len() {
            let want = (out.len() - filled).min(REQUEST_MAX);
            let head = match self.pending {
                Some(head) => head,
                None => {
                    let head = self.queue.add(&[Buffer {
                        addr: self.buffer.phys(),
                        len: want as u32,
                        device_writable: true,
                    }])?;
                    if self.queue.should_notify() {
                        self.transport.notify(self.queue.index());
                    }
                    head
                }
            };
            self.pending = Some(head);
            let used = loop {
                if let Some(u) = self.queue.poll_used()? {
                    break u;
                }
                if expired() {
                    return Err(RngError::Timeout { filled });
                }
                core::hint::spin_loop();
            };
            self.pending = None;
            self.transport.ack_interrupt();
            // A late answer to an earlier, larger request may hold more
            // than is wanted now.
            let got = (used.len as usize).min(out.len() - filled);
            self.buffer.read_bytes(0, &mut out[filled..filled + got]);
            filled += got;
        }
        Ok(())
    }

    /// The transport, for logs.
    pub fn transport(&self) -> &T {
        &self.transport
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::virtio::dma::host::HostDma;
    use crate::virtio::mmio::MmioTransport;
    use crate::virtio::mmio::tests::FakeMmio;
    use crate::virtio::{Features, Status};

    fn never() -> impl FnMut() -> bool {
        || false
    }

    #[test]
    fn fills_a_buffer_request_by_request() {
        let dev = FakeMmio::new(4);
        let t = MmioTransport::probe(&dev, 0).expect("ok").expect("device");
        let mut rng = VirtioRng::new(t, &mut HostDma).expect("rng");
        assert_eq!(dev.status.get(), 15, "DRIVER_OK");
        assert_eq!(dev.queue_num.get(), u32::from(QUEUE_SIZE));
        let mut out = [0u8; 5000];
        rng.fill(&mut out, &mut never()).expect("fill");
        assert!(out[..4096].iter().all(|b| *b == 0x5a));
        assert!(out[4096..].iter().all(|b| *b == 0x5b));
        assert_eq!(dev.notifies.get(), 2);
        assert_eq!(dev.interrupt.get(), 0, "acknowledged");
    }

    #[test]
    fn short_answers_are_topped_up() {
        let dev = FakeMmio::new(4);
        dev.short.set(Some(3));
        let t = MmioTransport::probe(&dev, 0).expect("ok").expect("device");
        let mut rng = VirtioRng::new(t, &mut HostDma).expect("rng");
        let mut out = [0u8; 8];
        rng.fill(&mut out, &mut never()).expect("fill");
        assert_eq!(out, [0x5a, 0x5a, 0x5a, 0x5b, 0x5b, 0x5b, 0x5c, 0x5c]);
    }

    #[test]
    fn a_silent_device_times_out_and_is_waited_for_next_time() {
        let dev = FakeMmio::new(4);
        let t = MmioTransport::probe(&dev, 0).expect("ok").expect("device");
        let mut rng = VirtioRng::new(t, &mut HostDma).expect("rng");
        dev.serve.set(false);
        let mut polls = 0;
        let mut out = [0u8; 16];
        let r = rng.fill(&mut out, &mut || {
            polls += 1;
            polls > 100
        });
        assert_eq!(r, Err(RngError::Timeout { filled: 0 }));
        assert_eq!(dev.notifies.get(), 1);
        // The device answers late; the next call takes that answer instead
        // of posting the same buffer twice.
        dev.serve.set(true);
        dev.process_now();
        rng.fill(&mut out, &mut never()).expect("fill");
        assert_eq!(dev.notifies.get(), 1, "no second request was needed");
        assert_eq!(out, [0x5a; 16]);
    }

    #[test]
    fn only_entropy_devices_and_modern_ones() {
        let dev = FakeMmio::new(1);
        let t = MmioTransport::probe(&dev, 0).expect("ok").expect("device");
        assert_eq!(
            VirtioRng::new(t, &mut HostDma).err(),
            Some(VirtioError::WrongDevice {
                expected: DeviceType::ENTROPY,
                found: DeviceType::NET
            })
        );
        let mut dev = FakeMmio::new(4);
        dev.features = 0;
        let t = MmioTransport::probe(&dev, 0).expect("ok").expect("device");
        assert_eq!(
            VirtioRng::new(t, &mut HostDma).err(),
            Some(VirtioError::MissingFeatures(Features::VERSION_1.0))
        );
        assert!(Status(dev.status.get() as u8).contains(Status::FAILED));
    }

    #[test]
    fn a_device_with_a_tiny_queue_gets_a_tiny_queue() {
        let mut dev = FakeMmio::new(4);
        dev.queue_max = 3;
        let t = MmioTransport::probe(&dev, 0).expect("ok").expect("device");
        let mut rng = VirtioRng::new(t, &mut HostDma).expect("rng");
        assert_eq!(dev.queue_num.get(), 2);
        let mut out = [0u8; 4];
        rng.fill(&mut out, &mut never()).expect("fill");
        assert_eq!(out, [0x5a; 4]);
    }

    #[test]
    fn a_lying_device_gets_a_queue_error() {
        let dev = FakeMmio::new(4);
        let t = MmioTransport::probe(&dev, 0).expect("ok").expect("device");
        let mut rng = VirtioRng::new(t, &mut HostDma).expect("rng");
        dev.serve.set(false);
        let mut out = [0u8; 4];
        let _ = rng.fill(&mut out, &mut || true);
        dev.complete_raw(3, 4);
        assert_eq!(
            rng.fill(&mut out, &mut never()),
            Err(RngError::Queue(QueueError::NotInFlight(3)))
        );
    }
}
