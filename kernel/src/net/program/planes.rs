//! The two networks a program's sockets live on: the loopback (always
//! there) and the network card (when the VM has one), each an smoltcp
//! interface with its own socket set.
//!
//! smoltcp's interfaces do not loop packets to their own addresses back,
//! so the loopback is an interface of its own, over smoltcp's `Loopback`
//! device. The card's interface is brought up on the first call that
//! needs it (a listener, a connection out, a datagram out, a name to
//! look up): the device is claimed and an address is leased then, not at
//! boot, so programs that never touch the network pay nothing.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use basalt_wasi::services::NetError;
use smoltcp::iface::{Config, Context, Interface, PollIngressSingleResult, PollResult};
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::phy::{Loopback, Medium};
use smoltcp::socket::{AnySocket, dns, tcp, udp};
use smoltcp::wire::{DnsQueryType, HardwareAddress, IpAddress, IpCidr};

use super::super::card::Card;
use super::super::{DHCP_DEADLINE_NS, now};

/// The loopback's IPv4 address.
pub const LOOPBACK: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
/// The longest halt in a wait on the loopback alone (only timers wake it).
const HALT_NS: u64 = 10_000_000;
/// Frames taken in from the card per poll (a flood is worked through a
/// budget at a time).
const INGRESS_BUDGET: usize = 256;
/// How long a name lookup may take before it is `timeout`.
const DNS_DEADLINE_NS: u64 = 5_000_000_000;

/// Which network a smoltcp socket of the program lives on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plane {
    /// `127.0.0.1` and `::1`
    Loopback,
    /// the card's leased (or static) IPv4 address
    Card,
}

/// One smoltcp socket of the program: where it lives and its handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handle {
    /// the network of the socket
    pub plane: Plane,
    /// its handle in that network's socket set
    pub socket: SocketHandle,
}

/// The card's side: its interface, sockets and resolver.
struct CardPlane {
    card: Card,
    set: SocketSet<'static>,
    /// the resolver's socket, made on the first lookup
    dns: Option<SocketHandle>,
}

/// Whether the card has been brought up.
enum CardState {
    /// not tried yet
    Untried,
    /// up, with an address
    Up(Box<CardPlane>),
    /// the VM has no card, or it got no address: the card's addresses
    /// cannot be reached
    Absent,
}

/// The loopback and the card.
pub struct Planes {
    iface: Interface,
    dev: Loopback,
    set: SocketSet<'static>,
    card: CardState,
}

/// The loopback's address of a family.
pub fn loopback(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::LOCALHOST)
    } else {
        IpAddr::V4(LOOPBACK)
    }
}

/// Which network reaches `ip`.
pub fn plane_of(ip: IpAddr) -> Plane {
    if ip.is_loopback() {
        Plane::Loopback
    } else {
        Plane::Card
    }
}

impl Planes {
    /// The loopback, up; the card not tried yet.
    pub fn new() -> Planes {
        let mut dev = Loopback::new(Medium::Ip);
        let mut config = Config::new(HardwareAddress::Ip);
        let mut seed = [0u8; 8];
        crate::entropy::fill(&mut seed);
        config.random_seed = u64::from_le_bytes(seed);
        let mut iface = Interface::new(config, &mut dev, now());
        iface.update_ip_addrs(|addrs| {
            let _ = addrs.push(IpCidr::new(IpAddress::Ipv4(LOOPBACK), 8));
            let _ = addrs.push(IpCidr::new(IpAddress::Ipv6(Ipv6Addr::LOCALHOST), 128));
        });
        Planes {
            iface,
            dev,
            set: SocketSet::new(Vec::new()),
            card: CardState::Untried,
        }
    }

    fn set_of(&mut self, plane: Plane) -> &mut SocketSet<'static> {
        match (plane, &mut self.card) {
            (Plane::Card, CardState::Up(c)) => &mut c.set,
            // A card handle exists only once the card is up; the loopback
            // set is the only other.
            _ => &mut self.set,
        }
    }

    fn set_ref(&self, plane: Plane) -> &SocketSet<'static> {
        match (plane, &self.card) {
            (Plane::Card, CardState::Up(c)) => &c.set,
            _ => &self.set,
        }
    }

    /// Adds `socket` to `plane`'s set.
    pub fn add<S: AnySocket<'static>>(&mut self, plane: Plane, socket: S) -> Handle {
        Handle {
            plane,
            socket: self.set_of(plane).add(socket),
        }
    }

    /// Removes a socket.
    pub fn remove(&mut self, h: Handle) {
        self.set_of(h.plane).remove(h.socket);
    }

    /// A TCP socket.
    pub fn tcp(&mut self, h: Handle) -> &mut tcp::Socket<'static> {
        self.set_of(h.plane)
            .get_mut::<tcp::Socket<'static>>(h.socket)
    }

    /// A TCP socket, to look at.
    pub fn tcp_ref(&self, h: Handle) -> &tcp::Socket<'static> {
        self.set_ref(h.plane).get::<tcp::Socket<'static>>(h.socket)
    }

    /// A UDP socket.
    pub fn udp(&mut self, h: Handle) -> &mut udp::Socket<'static> {
        self.set_of(h.plane)
            .get_mut::<udp::Socket<'static>>(h.socket)
    }

    /// A UDP socket, to look at.
    pub fn udp_ref(&self, h: Handle) -> &udp::Socket<'static> {
        self.set_ref(h.plane).get::<udp::Socket<'static>>(h.socket)
    }

    /// The interface context of `plane` (for connecting).
    pub fn context(&mut self, plane: Plane) -> &mut Context {
        match (plane, &mut self.card) {
            (Plane::Card, CardState::Up(c)) => c.card.iface.context(),
            _ => self.iface.context(),
        }
    }

    /// The card's address, if it is up (never brings it up).
    pub fn card_address(&self) -> Option<Ipv4Addr> {
        match &self.card {
            CardState::Up(c) => c.card.address(),
            _ => None,
        }
    }

    /// Brings the card up if it was not tried yet; whether it is up.
    pub fn want_card(&mut self) -> bool {
        if matches!(self.card, CardState::Untried) {
            self.card = match bring_up() {
                Ok(c) => CardState::Up(Box::new(c)),
                Err(why) => {
                    kprintln!("net: the program's sockets have the loopback only: {why}");
                    CardState::Absent
                }
            };
        }
        matches!(self.card, CardState::Up(_))
    }

    /// Drives both networks: the loopback until nothing moves, the card
    /// through one budget of frames in and everything out.
    pub fn poll(&mut self) {
        for _ in 0..64 {
            if self.iface.poll(now(), &mut self.dev, &mut self.set) == PollResult::None {
                break;
            }
        }
        if let CardState::Up(c) = &mut self.card {
            c.poll();
        }
    }

    /// Closed connections of `closing` that finished their goodbyes are
    /// removed (and dropped from the list).
    pub fn reap(&mut self, closing: &mut Vec<Handle>) {
        closing.retain(|h| {
            let done = matches!(
                self.tcp_ref(*h).state(),
                tcp::State::Closed | tcp::State::TimeWait
            );
            if done {
                self.remove(*h);
            }
            !done
        });
    }

    /// When a waiter should wake at the latest (monotonic ns): the next
    /// timer of either network, a frame waiting on the card, `deadline`,
    /// and the halt cap.
    pub fn next_wake(&mut self, deadline: Option<u64>) -> u64 {
        let now_ns = crate::time::monotonic_ns();
        let mut until = match &mut self.card {
            CardState::Up(c) => c.card.next_wake(&c.set, deadline),
            _ => now_ns.saturating_add(HALT_NS),
        };
        if let Some(d) = deadline {
            until = until.min(d);
        }
        if let Some(delay) = self.iface.poll_delay(now(), &self.set) {
            until = until.min(now_ns.saturating_add(delay.total_micros() * 1000));
        }
        until
    }

    /// Looks `name` up through the DNS servers the card's lease names:
    /// its IPv4 addresses.
    pub fn resolve(&mut self, name: &str) -> Result<Vec<IpAddr>, NetError> {
        if !self.want_card() {
            return Err(NetError::ResolverPermanent);
        }
        let CardState::Up(c) = &mut self.card else {
            return Err(NetError::ResolverPermanent);
        };
        let servers: Vec<IpAddress> = c
            .card
            .dns_servers()
            .iter()
            .map(|a| IpAddress::Ipv4(*a))
            .collect();
        if servers.is_empty() {
            // A static address names no resolver.
            return Err(NetError::ResolverPermanent);
        }
        let h = match c.dns {
            Some(h) => h,
            None => {
                let h = c.set.add(dns::Socket::new(&servers, vec![]));
                c.dns = Some(h);
                h
            }
        };
        let dns_socket = c.set.get_mut::<dns::Socket<'static>>(h);
        dns_socket.update_servers(&servers);
        let query = dns_socket
            .start_query(c.card.iface.context(), name, DnsQueryType::A)
            .map_err(|e| match e {
                dns::StartQueryError::NoFreeSlot => NetError::ResolverTemporary,
                dns::StartQueryError::InvalidName | dns::StartQueryError::NameTooLong => {
                    NetError::NameUnresolvable
                }
            })?;
        let deadline = crate::time::monotonic_ns().saturating_add(DNS_DEADLINE_NS);
        loop {
            c.poll();
            match c
                .set
                .get_mut::<dns::Socket<'static>>(h)
                .get_query_result(query)
            {
                Ok(addrs) => {
                    return Ok(addrs
                        .iter()
                        .map(|a| match a {
                            IpAddress::Ipv4(v4) => IpAddr::V4(*v4),
                            IpAddress::Ipv6(v6) => IpAddr::V6(*v6),
                        })
                        .collect());
                }
                Err(dns::GetQueryResultError::Failed) => return Err(NetError::NameUnresolvable),
                Err(dns::GetQueryResultError::Pending) => {}
            }
            if crate::time::monotonic_ns() >= deadline {
                c.set.get_mut::<dns::Socket<'static>>(h).cancel_query(query);
                return Err(NetError::Timeout);
            }
            let until = c.card.next_wake(&c.set, Some(deadline));
            crate::time::halt_until(crate::deadline::cap(until));
            crate::deadline::stop_if_passed();
        }
    }
}

impl CardPlane {
    fn poll(&mut self) {
        let now = now();
        self.card.phy.nic().ack_interrupt();
        self.card.iface.poll_maintenance(now);
        for _ in 0..INGRESS_BUDGET {
            let result =
                self.card
                    .iface
                    .poll_ingress_single(now, &mut self.card.phy, &mut self.set);
            if matches!(result, PollIngressSingleResult::None) {
                break;
            }
        }
        while self
            .card
            .iface
            .poll_egress(now, &mut self.card.phy, &mut self.set)
            == PollResult::SocketStateChanged
        {}
        self.card.lease_events(&mut self.set);
    }
}

/// Claims the card and waits (up to [`DHCP_DEADLINE_NS`]) for its
/// address.
fn bring_up() -> Result<CardPlane, super::super::NetSetupError> {
    let mut set = SocketSet::new(Vec::new());
    let card = Card::open(&mut set)?;
    let mut plane = CardPlane {
        card,
        set,
        dns: None,
    };
    let deadline = crate::time::monotonic_ns().saturating_add(DHCP_DEADLINE_NS);
    loop {
        plane.poll();
        if plane.card.configured() {
            return Ok(plane);
        }
        if crate::time::monotonic_ns() >= deadline {
            return Err(super::super::NetSetupError::DhcpTimeout(
                DHCP_DEADLINE_NS / 1_000_000_000,
            ));
        }
        let until = plane.card.next_wake(&plane.set, Some(deadline));
        crate::time::halt_until(until);
    }
}
