//! The network card as an smoltcp interface: claiming the first
//! virtio-net device, routing its interrupt, and getting an address (the
//! command line's static one, or a DHCPv4 lease with its DNS servers).
//!
//! Both users of the card build on this: the listeners the host preopens
//! for a preview1 program (`super`) and the sockets a WASI 0.2 program
//! makes itself (`super::program`). One run has one of them: whichever
//! claims the device first has it.

use alloc::string::String;
use alloc::vec::Vec;
use core::net::Ipv4Addr;

use basalt_drivers::virtio::net::VirtioNet;
use basalt_drivers::virtio::{DeviceType, VirtioTransport};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::dhcpv4;
use smoltcp::wire::{EthernetAddress, IpCidr, Ipv4Cidr};

use super::phy::Phy;
use super::{NetSetupError, now, static_config};
use crate::devices::VirtioLocation;
use crate::mem::FrameDma;

/// The longest halt in a wait when the card's interrupt wakes the CPU (a
/// safety net, not a poll rate).
const HALT_ROUTED_NS: u64 = 1_000_000_000;
/// The longest halt when it does not: the card is then polled this often.
const HALT_POLLED_NS: u64 = 1_000_000;

/// The card, its interface and how it got its address.
pub struct Card {
    /// smoltcp's interface over the card
    pub iface: Interface,
    /// the card as smoltcp drives it
    pub phy: Phy,
    /// the card's interrupt wakes the CPU
    pub routed: bool,
    /// the DHCP client's socket (none with a static address)
    dhcp: Option<SocketHandle>,
    /// an address is set
    configured: bool,
    /// the DNS servers the lease names
    dns: Vec<Ipv4Addr>,
}

impl Card {
    /// Claims the first virtio-net device and makes its interface: with
    /// the command line's static address, or asking for a lease by DHCP
    /// (a socket added to `sockets`; [`Card::configured`] says when it
    /// came).
    pub fn open(sockets: &mut SocketSet<'static>) -> Result<Card, NetSetupError> {
        let cmdline = crate::BOOT_INFO.get().map_or(&[][..], |i| i.cmdline);
        let fixed = static_config(cmdline)?;
        let mut found = crate::devices::claim_virtio(DeviceType::NET).into_iter();
        let (transport, window) = found.next().ok_or(NetSetupError::NoDevice)?;
        if found.len() > 0 {
            kprintln!("net: {} more network devices left unused", found.len());
        }
        let mut nic = VirtioNet::new(transport, &mut FrameDma).map_err(NetSetupError::Device)?;
        let mac = nic.mac();
        kprintln!(
            "net: virtio-net ({}) at {window}: MAC {}, features {:#x}, link {}",
            window.transport(),
            EthernetAddress(mac),
            nic.features().0,
            if nic.link_up() { "up" } else { "down" }
        );
        let routed = route_interrupt(&window, &nic);
        let mut phy = Phy::new(nic);
        let mut config = Config::new(EthernetAddress(mac).into());
        let mut seed = [0u8; 8];
        crate::entropy::fill(&mut seed);
        config.random_seed = u64::from_le_bytes(seed);
        let iface = Interface::new(config, &mut phy, now());
        let mut card = Card {
            iface,
            phy,
            routed,
            dhcp: None,
            configured: false,
            dns: Vec::new(),
        };
        match fixed {
            Some(c) => {
                card.set_address(c.address, c.gateway);
                kprintln!(
                    "net: static address {} (gateway {})",
                    c.address,
                    c.gateway
                        .map_or(String::from("none"), |g| alloc::format!("{g}"))
                );
            }
            None => {
                card.dhcp = Some(sockets.add(dhcpv4::Socket::new()));
                kprintln!("net: asking for an address by DHCP");
            }
        }
        Ok(card)
    }

    /// Whether the card has an address.
    pub fn configured(&self) -> bool {
        self.configured
    }

    /// The card's IPv4 address, once it has one.
    pub fn address(&self) -> Option<Ipv4Addr> {
        self.iface.ipv4_addr()
    }

    /// The DNS servers the DHCP lease names (none with a static address).
    pub fn dns_servers(&self) -> &[Ipv4Addr] {
        &self.dns
    }

    fn set_address(&mut self, address: Ipv4Cidr, gateway: Option<Ipv4Addr>) {
        self.iface.update_ip_addrs(|addrs| {
            addrs.clear();
            let _ = addrs.push(IpCidr::Ipv4(address));
        });
        self.iface.routes_mut().remove_default_ipv4_route();
        if let Some(g) = gateway {
            let _ = self.iface.routes_mut().add_default_ipv4_route(g);
        }
        self.configured = true;
    }

    /// Takes in what the DHCP client learnt since the last call (a lease,
    /// or its loss).
    pub fn lease_events(&mut self, sockets: &mut SocketSet<'static>) {
        let Some(h) = self.dhcp else { return };
        let event = match sockets.get_mut::<dhcpv4::Socket<'_>>(h).poll() {
            None => return,
            Some(dhcpv4::Event::Configured(c)) => {
                Some((c.address, c.router, c.dns_servers.iter().copied().collect()))
            }
            Some(dhcpv4::Event::Deconfigured) => None,
        };
        match event {
            Some((address, router, dns)) => {
                kprintln!(
                    "net: DHCP lease {address} (gateway {})",
                    router.map_or(String::from("none"), |g| alloc::format!("{g}"))
                );
                self.set_address(address, router);
                self.dns = dns;
            }
            // smoltcp says so when it starts, too.
            None if !self.configured => {}
            None => {
                kprintln!("net: DHCP lease lost");
                self.iface.update_ip_addrs(|a| a.clear());
                self.iface.routes_mut().remove_default_ipv4_route();
                self.configured = false;
                self.dns.clear();
            }
        }
    }

    /// When a waiter should wake at the latest (monotonic ns): smoltcp's
    /// next timer for `sockets`, `deadline`, a frame already waiting, and
    /// the halt cap (short when the card's interrupt is not routed).
    pub fn next_wake(&mut self, sockets: &SocketSet<'static>, deadline: Option<u64>) -> u64 {
        let now_ns = crate::time::monotonic_ns();
        let cap = if self.routed {
            HALT_ROUTED_NS
        } else {
            HALT_POLLED_NS
        };
        let mut until = now_ns.saturating_add(cap);
        if let Some(d) = deadline {
            until = until.min(d);
        }
        if let Some(delay) = self.iface.poll_delay(now(), sockets) {
            until = until.min(now_ns.saturating_add(delay.total_micros() * 1000));
        }
        if self.phy.has_frame() {
            until = now_ns;
        }
        until
    }
}

/// Routes the card's interrupt to the CPU (so waits halt); whether it
/// wakes the CPU. virtio-mmio interrupts are routed here; on PCI, MSI-X
/// was routed at probe time where the platform can (PCI INTx is not used).
fn route_interrupt(window: &VirtioLocation, nic: &VirtioNet<VirtioTransport>) -> bool {
    let interrupt = match window {
        VirtioLocation::Mmio(w) => w.interrupt,
        VirtioLocation::Pci { .. } => None,
    };
    let msix = matches!(window, VirtioLocation::Pci { msix: true, .. })
        && matches!(nic.transport(), VirtioTransport::Pci(t) if t.msix_active());
    if msix {
        kprintln!("net: MSI-X wakes the CPU");
        return true;
    }
    match interrupt {
        Some(irq) => match crate::platform::route_device_interrupt(irq) {
            Ok(()) => {
                kprintln!("net: interrupt {irq} wakes the CPU");
                true
            }
            Err(e) => {
                kprintln!("net: interrupt {irq} not routed ({e}); polling every 1 ms");
                false
            }
        },
        None => {
            kprintln!("net: no interrupt routed; polling every 1 ms");
            false
        }
    }
}
