//! smoltcp's view of the virtio-net driver: a [`Device`] whose receive
//! token holds a copy of one frame and whose transmit token queues one
//! frame on the device.

use alloc::boxed::Box;
use alloc::vec;

use basalt_drivers::virtio::VirtioTransport;
use basalt_drivers::virtio::net::{MAX_FRAME, NetDeviceError, VirtioNet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::time::Instant;

/// How many dropped frames are logged one by one (then only counted).
const LOGGED_DROPS: u32 = 10;

/// The network card as smoltcp drives it.
pub struct Phy {
    nic: VirtioNet<VirtioTransport>,
    /// the frame a receive token hands out
    rx: Box<[u8; MAX_FRAME]>,
    /// where a transmit token's frame is built
    tx: Box<[u8; MAX_FRAME]>,
    /// the device misused a queue: it is no longer driven
    broken: bool,
    drops_logged: u32,
}

impl Phy {
    /// Wraps a live driver.
    pub fn new(nic: VirtioNet<VirtioTransport>) -> Phy {
        Phy {
            nic,
            rx: Box::new([0; MAX_FRAME]),
            tx: Box::new([0; MAX_FRAME]),
            broken: false,
            drops_logged: 0,
        }
    }

    /// The driver.
    pub fn nic(&mut self) -> &mut VirtioNet<VirtioTransport> {
        &mut self.nic
    }

    /// Whether a received frame waits.
    pub fn has_frame(&self) -> bool {
        !self.broken && self.nic.has_frame()
    }

    fn report(&mut self, e: NetDeviceError) {
        if e.is_fatal() {
            kprintln!("net: {e}; the device is no longer used");
            self.broken = true;
        } else if self.drops_logged < LOGGED_DROPS {
            self.drops_logged += 1;
            kprintln!("net: frame dropped: {e}");
        }
    }
}

/// A received frame.
pub struct Rx<'a> {
    frame: &'a [u8],
}

impl RxToken for Rx<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(self.frame)
    }
}

/// Room for one frame to send.
pub struct Tx<'a> {
    nic: &'a mut VirtioNet<VirtioTransport>,
    buf: &'a mut [u8; MAX_FRAME],
    broken: &'a mut bool,
}

impl TxToken for Tx<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        if len > MAX_FRAME {
            // smoltcp keeps to the MTU it was given; should it not, the
            // frame is built and dropped.
            let mut big = vec![0u8; len];
            let r = f(&mut big);
            kprintln!("net: frame of {len} bytes not sent (larger than {MAX_FRAME})");
            return r;
        }
        let r = f(&mut self.buf[..len]);
        match self.nic.send(&self.buf[..len]) {
            Ok(true) => {}
            // Full: the frame is lost, as on a busy wire; TCP resends.
            Ok(false) => {}
            Err(e) => {
                if e.is_fatal() {
                    kprintln!("net: {e}; the device is no longer used");
                    *self.broken = true;
                }
            }
        }
        r
    }
}

impl Device for Phy {
    type RxToken<'a> = Rx<'a>;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _: Instant) -> Option<(Rx<'_>, Tx<'_>)> {
        if self.broken {
            return None;
        }
        let len = loop {
            match self.nic.receive(&mut self.rx[..]) {
                Ok(Some(n)) => break n,
                Ok(None) => return None,
                Err(e) => {
                    self.report(e);
                    if self.broken {
                        return None;
                    }
                }
            }
        };
        Some((
            Rx {
                frame: &self.rx[..len],
            },
            Tx {
                nic: &mut self.nic,
                buf: &mut self.tx,
                broken: &mut self.broken,
            },
        ))
    }

    fn transmit(&mut self, _: Instant) -> Option<Tx<'_>> {
        if self.broken {
            return None;
        }
        match self.nic.can_send() {
            Ok(true) => Some(Tx {
                nic: &mut self.nic,
                buf: &mut self.tx,
                broken: &mut self.broken,
            }),
            Ok(false) => None,
            Err(e) => {
                self.report(e);
                None
            }
        }
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MAX_FRAME;
        caps
    }
}
