//! PCI and PCI Express: configuration space behind [`ConfigSpace`] (the
//! memory-mapped ECAM window of a PCIe host bridge, [`Ecam`], or on x86 the
//! legacy port pair 0xCF8/0xCFC, [`PortConfig`]), enumeration of buses,
//! devices and functions (following bridges the firmware numbered), base
//! address registers — decoding, sizing, and assigning them from a host
//! bridge's memory windows when no firmware did —, the capability list,
//! and the command register.
//!
//! Everything but the two accessors is plain code over the trait, tested
//! on the host against a simulated configuration space.

use crate::fdt::{PciRange, PciSpace};

/// Where a function sits: bus, device (0-31), function (0-7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Address {
    /// bus number
    pub bus: u8,
    /// device number, below 32
    pub device: u8,
    /// function number, below 8
    pub function: u8,
}

impl Address {
    /// The function `function` of device `device` on `bus`.
    pub const fn new(bus: u8, device: u8, function: u8) -> Address {
        Address {
            bus,
            device,
            function,
        }
    }
}

impl core::fmt::Display for Address {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:02x}:{:02x}.{}", self.bus, self.device, self.function)
    }
}

/// Reads and writes of a configuration space, 32 bits at a time.
///
/// Offsets are 4-byte aligned (lower bits are ignored) and below the
/// space's size (256 bytes through the port mechanism, 4096 through
/// ECAM); a read nothing answers gives all ones, as a master abort does.
pub trait ConfigSpace {
    /// Reads the 32-bit register at `offset` of function `at`.
    fn read32(&self, at: Address, offset: u16) -> u32;
    /// Writes the 32-bit register at `offset` of function `at`.
    fn write32(&self, at: Address, offset: u16, value: u32);

    /// Reads the 16-bit register at `offset` (2-byte aligned).
    fn read16(&self, at: Address, offset: u16) -> u16 {
        (self.read32(at, offset & !3) >> ((offset & 2) * 8)) as u16
    }

    /// Reads the byte at `offset`.
    fn read8(&self, at: Address, offset: u16) -> u8 {
        (self.read32(at, offset & !3) >> ((offset & 3) * 8)) as u8
    }
}

impl<C: ConfigSpace + ?Sized> ConfigSpace for &C {
    fn read32(&self, at: Address, offset: u16) -> u32 {
        (**self).read32(at, offset)
    }
    fn write32(&self, at: Address, offset: u16, value: u32) {
        (**self).write32(at, offset, value)
    }
}

/// The Enhanced Configuration Access Mechanism: every function's 4 KiB of
/// configuration space in one memory window, 1 MiB per bus.
#[derive(Debug)]
pub struct Ecam {
    window: crate::mmio::Window,
    first_bus: u8,
    last_bus: u8,
}

impl Ecam {
    /// The ECAM window mapped (as device memory) at CPU address `virt`,
    /// `len` bytes long, decoding buses from `first_bus` on; buses the
    /// window is too short for are left out.
    ///
    /// # Safety
    /// `[virt, virt + len)` must map the start of a host bridge's ECAM
    /// window as device memory, and nothing else may use it.
    #[allow(unsafe_code)]
    pub unsafe fn new(virt: usize, len: usize, first_bus: u8) -> Ecam {
        let buses = (len >> 20).min(256 - usize::from(first_bus));
        // SAFETY: forwarded contract; every access is checked against
        // `len`.
        let window = unsafe { crate::mmio::Window::new(virt, len) };
        Ecam {
            window,
            first_bus,
            last_bus: (usize::from(first_bus) + buses).saturating_sub(1) as u8,
        }
    }

    /// The buses the window reaches (empty when it is shorter than one
    /// bus).
    pub fn buses(&self) -> core::ops::RangeInclusive<u8> {
        if self.window.len() < 1 << 20 {
            #[allow(clippy::reversed_empty_ranges)]
            return 1..=0;
        }
        self.first_bus..=self.last_bus
    }

    fn offset(&self, at: Address, offset: u16) -> Option<usize> {
        if !self.buses().contains(&at.bus) || at.device >= 32 || at.function >= 8 {
            return None;
        }
        Some(
            usize::from(at.bus - self.first_bus) << 20
                | usize::from(at.device) << 15
                | usize::from(at.function) << 12
                | usize::from(offset & 0xffc),
        )
    }
}

impl ConfigSpace for Ecam {
    fn read32(&self, at: Address, offset: u16) -> u32 {
        self.offset(at, offset)
            .map_or(u32::MAX, |o| self.window.read32(o))
    }

    fn write32(&self, at: Address, offset: u16, value: u32) {
        if let Some(o) = self.offset(at, offset) {
            self.window.write32(o, value)
        }
    }
}

/// The x86 configuration mechanism #1: an address written to port 0xCF8,
/// then 32 bits read or written at port 0xCFC. Reaches the first 256
/// bytes of each function (enough for the capability list). The two
/// steps are made atomic with a lock.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Default)]
pub struct PortConfig {
    _private: (),
}

#[cfg(target_arch = "x86_64")]
static PORT_LOCK: spin::Mutex<()> = spin::Mutex::new(());

#[cfg(target_arch = "x86_64")]
impl PortConfig {
    const ADDRESS: u16 = 0xcf8;
    const DATA: u16 = 0xcfc;

    /// The port mechanism (every PC chipset has it).
    pub fn new() -> PortConfig {
        PortConfig { _private: () }
    }

    fn select(at: Address, offset: u16) -> Option<u32> {
        (offset < 256 && at.device < 32 && at.function < 8).then(|| {
            1 << 31
                | u32::from(at.bus) << 16
                | u32::from(at.device) << 11
                | u32::from(at.function) << 8
                | u32::from(offset & 0xfc)
        })
    }
}

#[cfg(target_arch = "x86_64")]
impl ConfigSpace for PortConfig {
    fn read32(&self, at: Address, offset: u16) -> u32 {
        let Some(address) = Self::select(at, offset) else {
            return u32::MAX;
        };
        let _guard = PORT_LOCK.lock();
        crate::portio::outl(Self::ADDRESS, address);
        crate::portio::inl(Self::DATA)
    }

    fn write32(&self, at: Address, offset: u16, value: u32) {
        let Some(address) = Self::select(at, offset) else {
            return;
        };
        let _guard = PORT_LOCK.lock();
        crate::portio::outl(Self::ADDRESS, address);
        crate::portio::outl(Self::DATA, value);
    }
}

/// Configuration-space offsets of the common header.
mod reg {
    pub const ID: u16 = 0x00;
    pub const COMMAND: u16 = 0x04;
    pub const STATUS: u16 = 0x06;
    pub const CLASS: u16 = 0x08;
    pub const HEADER_TYPE: u16 = 0x0e;
    pub const BAR0: u16 = 0x10;
    pub const BUSES: u16 = 0x18;
    pub const SUBSYSTEM: u16 = 0x2c;
    pub const CAPABILITIES: u16 = 0x34;
    pub const INTERRUPT: u16 = 0x3c;
}

/// Command-register bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Command(pub u16);

impl Command {
    /// respond to I/O-space accesses
    pub const IO_SPACE: Command = Command(1);
    /// respond to memory-space accesses
    pub const MEMORY_SPACE: Command = Command(1 << 1);
    /// may master the bus (DMA, MSI)
    pub const BUS_MASTER: Command = Command(1 << 2);
    /// INTx assertion disabled
    pub const INTX_DISABLE: Command = Command(1 << 10);

    /// The bits of both.
    pub fn union(self, other: Command) -> Command {
        Command(self.0 | other.0)
    }
}

/// Status bit: the function has a capability list.
const STATUS_CAPABILITIES: u16 = 1 << 4;

/// What identifies a function: its IDs, class and header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Function {
    /// where it sits
    pub address: Address,
    /// vendor ID
    pub vendor_id: u16,
    /// device ID
    pub device_id: u16,
    /// revision ID
    pub revision: u8,
    /// base class, subclass, programming interface
    pub class: (u8, u8, u8),
    /// header type (0: endpoint, 1: PCI-to-PCI bridge, 2: CardBus
    /// bridge), without the multi-function bit
    pub header_type: u8,
    /// the multi-function bit of the header type
    pub multifunction: bool,
    /// subsystem vendor ID (endpoints; 0 otherwise)
    pub subsystem_vendor_id: u16,
    /// subsystem ID (endpoints; 0 otherwise)
    pub subsystem_id: u16,
    /// legacy interrupt pin (0: none, 1-4: INTA#-INTD#)
    pub interrupt_pin: u8,
    /// interrupt line the firmware routed it to (0xff: unknown)
    pub interrupt_line: u8,
}

impl Function {
    /// Reads the function at `at`, if one answers.
    pub fn read(cfg: &dyn ConfigSpace, at: Address) -> Option<Function> {
        let id = cfg.read32(at, reg::ID);
        let vendor_id = id as u16;
        if vendor_id == 0xffff || vendor_id == 0 {
            return None;
        }
        let class = cfg.read32(at, reg::CLASS);
        let header = cfg.read8(at, reg::HEADER_TYPE);
        let header_type = header & 0x7f;
        let subsystem = if header_type == 0 {
            cfg.read32(at, reg::SUBSYSTEM)
        } else {
            0
        };
        let interrupt = cfg.read16(at, reg::INTERRUPT);
        Some(Function {
            address: at,
            vendor_id,
            device_id: (id >> 16) as u16,
            revision: class as u8,
            class: ((class >> 24) as u8, (class >> 16) as u8, (class >> 8) as u8),
            header_type,
            multifunction: header & 0x80 != 0,
            subsystem_vendor_id: subsystem as u16,
            subsystem_id: (subsystem >> 16) as u16,
            interrupt_pin: (interrupt >> 8) as u8,
            interrupt_line: interrupt as u8,
        })
    }

    /// Whether it is a PCI-to-PCI bridge.
    pub fn is_bridge(&self) -> bool {
        self.header_type == 1
    }

    /// How many base address registers the header has (6 for endpoints,
    /// 2 for bridges).
    pub fn bar_count(&self) -> usize {
        match self.header_type {
            0 => 6,
            1 => 2,
            _ => 0,
        }
    }
}

/// Calls `visit` with every function on the buses of `buses`, starting
/// at its first bus and descending through bridges whose secondary bus
/// the firmware set (inside `buses`, each bus once). Bridges nobody
/// numbered are reported, not followed.
pub fn enumerate(
    cfg: &dyn ConfigSpace,
    buses: core::ops::RangeInclusive<u8>,
    visit: &mut dyn FnMut(&Function),
) {
    let mut seen = [0u64; 4];
    if !buses.is_empty() {
        scan_bus(cfg, *buses.start(), &buses, &mut seen, visit);
    }
}

fn scan_bus(
    cfg: &dyn ConfigSpace,
    bus: u8,
    buses: &core::ops::RangeInclusive<u8>,
    seen: &mut [u64; 4],
    visit: &mut dyn FnMut(&Function),
) {
    let bit = 1u64 << (bus % 64);
    if seen[usize::from(bus / 64)] & bit != 0 {
        return;
    }
    seen[usize::from(bus / 64)] |= bit;
    for device in 0..32 {
        let Some(first) = Function::read(cfg, Address::new(bus, device, 0)) else {
            continue;
        };
        let functions = if first.multifunction { 8 } else { 1 };
        for function in 0..functions {
            let f = if function == 0 {
                first
            } else {
                match Function::read(cfg, Address::new(bus, device, function)) {
                    Some(f) => f,
                    None => continue,
                }
            };
            visit(&f);
            if f.is_bridge() {
                let secondary = cfg.read8(f.address, reg::BUSES + 1);
                if secondary > bus && buses.contains(&secondary) {
                    scan_bus(cfg, secondary, buses, seen, visit);
                }
            }
        }
    }
}

/// A decoded base address register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bar {
    /// a memory region
    Memory {
        /// its bus address (0: not assigned)
        base: u64,
        /// its size, a power of two
        size: u64,
        /// a 64-bit register pair (the next register holds the high half)
        is_64: bool,
        /// prefetchable
        prefetchable: bool,
    },
    /// an I/O-port region
    Io {
        /// its first port (0: not assigned)
        base: u32,
        /// its size, a power of two
        size: u32,
    },
}

impl Bar {
    /// The bus address (0: not assigned).
    pub fn base(&self) -> u64 {
        match *self {
            Bar::Memory { base, .. } => base,
            Bar::Io { base, .. } => u64::from(base),
        }
    }

    /// The size in bytes.
    pub fn size(&self) -> u64 {
        match *self {
            Bar::Memory { size, .. } => size,
            Bar::Io { size, .. } => u64::from(size),
        }
    }
}

impl core::fmt::Display for Bar {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Bar::Memory {
                base,
                size,
                is_64,
                prefetchable,
            } => write!(
                f,
                "{}-bit{} memory at {base:#x}+{size:#x}",
                if is_64 { 64 } else { 32 },
                if prefetchable { " prefetchable" } else { "" }
            ),
            Bar::Io { base, size } => write!(f, "I/O at {base:#x}+{size:#x}"),
        }
    }
}

/// Reads and sizes the function's base address registers (decoding is
/// turned off while the sizing patterns are in them, then the command
/// register is restored). Entry `i` is BAR `i`; the upper half of a
/// 64-bit BAR and unimplemented BARs are `None`.
pub fn read_bars(cfg: &dyn ConfigSpace, f: &Function) -> [Option<Bar>; 6] {
    let mut bars = [None; 6];
    let at = f.address;
    let count = f.bar_count();
    if count == 0 {
        return bars;
    }
    let command = cfg.read16(at, reg::COMMAND);
    let off = command & !(Command::IO_SPACE.0 | Command::MEMORY_SPACE.0);
    if off != command {
        cfg.write32(at, reg::COMMAND, u32::from(off));
    }
    let mut i = 0;
    while i < count {
        let offset = reg::BAR0 + 4 * i as u16;
        let low = cfg.read32(at, offset);
        cfg.write32(at, offset, u32::MAX);
        let low_mask = cfg.read32(at, offset);
        cfg.write32(at, offset, low);
        if low & 1 == 1 {
            let mask = low_mask & !3;
            if mask != 0 {
                // Devices may implement only the low 16 bits of an I/O BAR.
                let mask = if mask & 0xffff_0000 == 0 {
                    mask | 0xffff_0000
                } else {
                    mask
                };
                bars[i] = Some(Bar::Io {
                    base: low & !3,
                    size: (!mask).wrapping_add(1),
                });
            }
            i += 1;
            continue;
        }
        let is_64 = (low >> 1) & 3 == 2 && i + 1 < count;
        let prefetchable = low & 8 != 0;
        let (base, mask) = if is_64 {
            let high_offset = offset + 4;
            let high = cfg.read32(at, high_offset);
            cfg.write32(at, high_offset, u32::MAX);
            let high_mask = cfg.read32(at, high_offset);
            cfg.write32(at, high_offset, high);
            (
                u64::from(high) << 32 | u64::from(low & !0xf),
                u64::from(high_mask) << 32 | u64::from(low_mask & !0xf),
            )
        } else {
            (
                u64::from(low & !0xf),
                0xffff_ffff_0000_0000 | u64::from(low_mask & !0xf),
            )
        };
        if mask & 0xffff_ffff != 0 || (is_64 && mask != 0) {
            let size = (!mask).wrapping_add(1);
            if size.is_power_of_two() {
                bars[i] = Some(Bar::Memory {
                    base,
                    size,
                    is_64,
                    prefetchable,
                });
            }
        }
        i += if is_64 { 2 } else { 1 };
    }
    if off != command {
        cfg.write32(at, reg::COMMAND, u32::from(command));
    }
    bars
}

/// Adds `bits` to the command register (the status half is written as
/// zeros, which changes none of its write-one-to-clear bits).
pub fn enable(cfg: &dyn ConfigSpace, at: Address, bits: Command) {
    let command = cfg.read16(at, reg::COMMAND);
    cfg.write32(at, reg::COMMAND, u32::from(command | bits.0));
}

/// The MSI-X capability's ID.
pub const CAP_MSIX: u8 = 0x11;

/// Where a function's MSI-X table is and how long it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Msix {
    /// the capability's offset in configuration space
    pub capability: u8,
    /// table entries (vectors)
    pub entries: u16,
    /// the BAR holding the table
    pub table_bar: u8,
    /// the table's offset in that BAR
    pub table_offset: u32,
}

/// The size of one MSI-X table entry: address low, address high, data,
/// vector control.
pub const MSIX_ENTRY_LEN: u64 = 16;

/// The MSI-X capability of `at`, if it has one.
pub fn msix(cfg: &dyn ConfigSpace, at: Address) -> Option<Msix> {
    let (_, offset) = capabilities(cfg, at).find(|(id, _)| *id == CAP_MSIX)?;
    let control = cfg.read16(at, u16::from(offset) + 2);
    let table = cfg.read32(at, u16::from(offset) + 4);
    let table_bar = (table & 7) as u8;
    (table_bar < 6).then_some(Msix {
        capability: offset,
        entries: (control & 0x7ff) + 1,
        table_bar,
        table_offset: table & !7,
    })
}

/// Turns MSI-X on for `at` (message control: enable, function unmasked),
/// which also turns its INTx pin off.
pub fn enable_msix(cfg: &dyn ConfigSpace, at: Address, m: &Msix) {
    let offset = u16::from(m.capability);
    // Message control is the upper half of the capability's first dword.
    let head = cfg.read32(at, offset);
    let control = ((head >> 16) as u16 | 1 << 15) & !(1 << 14);
    cfg.write32(at, offset, (head & 0xffff) | u32::from(control) << 16);
}

/// The capability list: `(id, offset)` of each entry, at most 48 of them
/// (a looping list ends there), only offsets inside the standard
/// 256 bytes past the header.
pub fn capabilities(cfg: &dyn ConfigSpace, at: Address) -> Capabilities<'_> {
    let next = if cfg.read16(at, reg::STATUS) & STATUS_CAPABILITIES != 0 {
        cfg.read8(at, reg::CAPABILITIES) & 0xfc
    } else {
        0
    };
    Capabilities {
        cfg,
        at,
        next,
        left: 48,
    }
}

/// The iterator [`capabilities`] returns.
pub struct Capabilities<'a> {
    cfg: &'a dyn ConfigSpace,
    at: Address,
    next: u8,
    left: u8,
}

impl Iterator for Capabilities<'_> {
    type Item = (u8, u8);

    fn next(&mut self) -> Option<(u8, u8)> {
        if self.next < 0x40 || self.left == 0 {
            return None;
        }
        self.left -= 1;
        let offset = self.next;
        let head = self.cfg.read16(self.at, u16::from(offset));
        self.next = (head >> 8) as u8 & 0xfc;
        Some((head as u8, offset))
    }
}

/// A host bridge's memory window BARs are assigned from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Space {
    pci_base: u64,
    end: u64,
    next: u64,
}

impl Space {
    fn allocate(&mut self, size: u64) -> Option<u64> {
        let at = self.next.checked_next_multiple_of(size)?;
        let end = at.checked_add(size)?;
        if end > self.end {
            return None;
        }
        self.next = end;
        Some(at)
    }
}

/// Hands out bus addresses for memory BARs the firmware left unassigned,
/// from a host bridge's windows (its device tree's `ranges`): 32-bit BARs
/// from the 32-bit window, 64-bit ones from the 64-bit window when there
/// is one, else from the 32-bit window.
#[derive(Debug, Clone, Default)]
pub struct BarAllocator {
    mem32: Option<Space>,
    mem64: Option<Space>,
}

impl BarAllocator {
    /// An allocator over the memory windows among `ranges` (the first of
    /// each kind; I/O windows are not used).
    pub fn new<'a>(ranges: impl IntoIterator<Item = &'a PciRange>) -> BarAllocator {
        let mut a = BarAllocator::default();
        for r in ranges {
            let Some(end) = r.pci_address.checked_add(r.size) else {
                continue;
            };
            let space = Space {
                pci_base: r.pci_address,
                end,
                next: r.pci_address,
            };
            match r.space {
                // A window below 4 GiB serves 32-bit BARs, whatever the
                // bridge calls it.
                PciSpace::Memory32 | PciSpace::Memory64 if end <= 1 << 32 => {
                    a.mem32.get_or_insert(space);
                }
                PciSpace::Memory64 => {
                    a.mem64.get_or_insert(space);
                }
                _ => {}
            }
        }
        a
    }

    /// A bus address for `bar`, naturally aligned; `None` for I/O BARs or
    /// when no window has room.
    pub fn allocate(&mut self, bar: &Bar) -> Option<u64> {
        let Bar::Memory { size, is_64, .. } = *bar else {
            return None;
        };
        if !size.is_power_of_two() {
            return None;
        }
        if is_64 && let Some(at) = self.mem64.as_mut().and_then(|s| s.allocate(size)) {
            return Some(at);
        }
        self.mem32.as_mut().and_then(|s| s.allocate(size))
    }

    /// Whether the allocator has any window.
    pub fn is_empty(&self) -> bool {
        self.mem32.is_none() && self.mem64.is_none()
    }
}

/// Gives every implemented, unassigned memory BAR of `f` an address from
/// `alloc`, writing it to the register and into `bars`. Returns how many
/// were assigned and how many could not be (no room).
pub fn assign_bars(
    cfg: &dyn ConfigSpace,
    f: &Function,
    bars: &mut [Option<Bar>; 6],
    alloc: &mut BarAllocator,
) -> (usize, usize) {
    let (mut assigned, mut failed) = (0, 0);
    for (i, slot) in bars.iter_mut().enumerate() {
        let Some(bar @ Bar::Memory { base: 0, is_64, .. }) = *slot else {
            continue;
        };
        let Some(at) = alloc.allocate(&bar) else {
            failed += 1;
            continue;
        };
        let offset = reg::BAR0 + 4 * i as u16;
        let flags = cfg.read32(f.address, offset) & 0xf;
        cfg.write32(f.address, offset, at as u32 & !0xf | flags);
        if is_64 {
            cfg.write32(f.address, offset + 4, (at >> 32) as u32);
        }
        if let Some(Bar::Memory { base, .. }) = slot {
            *base = at;
        }
        assigned += 1;
    }
    (assigned, failed)
}

/// The CPU address at which the bus range `[pci, pci + len)` is seen
/// through the host bridge's memory windows (`ranges`); `None` when no
/// window holds all of it. With no windows described (a PC), bus
/// addresses are CPU addresses.
pub fn cpu_address(ranges: &[PciRange], pci: u64, len: u64) -> Option<u64> {
    let end = pci.checked_add(len)?;
    let mut memory = ranges
        .iter()
        .filter(|r| matches!(r.space, PciSpace::Memory32 | PciSpace::Memory64))
        .peekable();
    if memory.peek().is_none() {
        return Some(pci);
    }
    memory.find_map(|r| {
        let window_end = r.pci_address.checked_add(r.size)?;
        (r.pci_address <= pci && end <= window_end)
            .then(|| r.cpu_address.checked_add(pci - r.pci_address))
            .flatten()
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::string::ToString;
    use std::vec::Vec;

    /// One simulated function: 256 bytes of registers, and for each BAR
    /// the bits software may write (0: not implemented).
    #[derive(Clone)]
    pub(crate) struct FakeFunction {
        pub regs: [u32; 64],
        pub bar_masks: [u32; 6],
    }

    impl FakeFunction {
        pub(crate) fn new(vendor: u16, device: u16, class: u32) -> FakeFunction {
            let mut regs = [0; 64];
            regs[0] = u32::from(device) << 16 | u32::from(vendor);
            regs[2] = class << 8 | 1;
            FakeFunction {
                regs,
                bar_masks: [0; 6],
            }
        }

        /// Gives BAR `i` a memory region of `size` bytes at `base`
        /// (64-bit: also uses BAR `i + 1`).
        pub(crate) fn memory_bar(mut self, i: usize, size: u64, base: u64, is_64: bool) -> Self {
            let mask = !(size - 1);
            self.bar_masks[i] = mask as u32 & !0xf;
            let kind = if is_64 { 0b1100 } else { 0 };
            self.regs[4 + i] = base as u32 & !0xf | kind;
            if is_64 {
                self.bar_masks[i + 1] = (mask >> 32) as u32;
                self.regs[5 + i] = (base >> 32) as u32;
            }
            self
        }

        /// Gives BAR `i` an I/O region of `size` ports at `base`.
        pub(crate) fn io_bar(mut self, i: usize, size: u32, base: u32) -> Self {
            self.bar_masks[i] = !(size - 1) & 0xffff & !3;
            self.regs[4 + i] = base | 1;
            self
        }

        /// Appends capability `id` with `body` (bytes after the id/next
        /// pair) at `offset`, linking it at the end of the list.
        pub(crate) fn capability(mut self, offset: u8, id: u8, body: &[u8]) -> Self {
            let mut bytes = std::vec![id, 0];
            bytes.extend_from_slice(body);
            self.set_bytes(offset, &bytes);
            self.regs[1] |= u32::from(STATUS_CAPABILITIES) << 16;
            let mut link = reg::CAPABILITIES as u8;
            loop {
                let next = self.byte(link);
                if next == 0 {
                    break;
                }
                link = next + 1;
            }
            self.set_bytes(link, &[offset]);
            self
        }

        fn byte(&self, at: u8) -> u8 {
            (self.regs[usize::from(at / 4)] >> (8 * (at % 4))) as u8
        }

        fn set_bytes(&mut self, at: u8, bytes: &[u8]) {
            for (i, b) in bytes.iter().enumerate() {
                let a = usize::from(at) + i;
                let shift = 8 * (a % 4);
                let r = &mut self.regs[a / 4];
                *r = *r & !(0xff << shift) | u32::from(*b) << shift;
            }
        }
    }

    /// A simulated configuration space; records every write.
    #[derive(Default)]
    pub(crate) struct FakeConfig {
        pub functions: RefCell<BTreeMap<Address, FakeFunction>>,
        pub writes: RefCell<Vec<(Address, u16, u32)>>,
    }

    impl FakeConfig {
        pub(crate) fn add(&self, at: Address, f: FakeFunction) {
            self.functions.borrow_mut().insert(at, f);
        }

        pub(crate) fn reg(&self, at: Address, offset: u16) -> u32 {
            self.functions.borrow()[&at].regs[usize::from(offset / 4)]
        }
    }

    impl ConfigSpace for FakeConfig {
        fn read32(&self, at: Address, offset: u16) -> u32 {
            self.functions
                .borrow()
                .get(&at)
                .map_or(u32::MAX, |f| f.regs[usize::from(offset / 4) % 64])
        }

        fn write32(&self, at: Address, offset: u16, value: u32) {
            self.writes.borrow_mut().push((at, offset, value));
            let mut all = self.functions.borrow_mut();
            let Some(f) = all.get_mut(&at) else { return };
            let i = usize::from(offset / 4) % 64;
            match i {
                1 => f.regs[1] = f.regs[1] & 0xffff_0000 | value & 0xffff,
                4..=9 => {
                    let mask = f.bar_masks[i - 4];
                    let low_bits = if f.regs[i] & 1 == 1 { 3 } else { 0xf };
                    let is_high_half = i > 4 && f.regs[i - 1] & 0b111 == 0b100;
                    let keep = if is_high_half { 0 } else { low_bits };
                    f.regs[i] = value & mask | f.regs[i] & keep;
                }
                0 | 2 | 3 | 11 => {}
                _ => f.regs[i] = value,
            }
        }
    }

    #[test]
    fn msix_is_found_and_enabled_without_touching_the_rest() {
        let cfg = FakeConfig::default();
        let at = Address::new(0, 2, 0);
        // table size 4 (encoded 3), function masked; table in BAR 1 at 0x800
        let control: u16 = 3 | 1 << 14;
        let mut body = control.to_le_bytes().to_vec();
        body.extend_from_slice(&(0x800u32 | 1).to_le_bytes());
        body.extend_from_slice(&(0xc00u32 | 1).to_le_bytes()); // the pending-bit array
        cfg.add(
            at,
            FakeFunction::new(0x1af4, 0x1041, 0x020000).capability(0x40, CAP_MSIX, &body),
        );
        let m = msix(&cfg, at).expect("MSI-X");
        assert_eq!(
            m,
            Msix {
                capability: 0x40,
                entries: 4,
                table_bar: 1,
                table_offset: 0x800
            }
        );
        enable_msix(&cfg, at, &m);
        let head = cfg.reg(at, 0x40);
        assert_eq!(head & 0xff, u32::from(CAP_MSIX), "the ID stays");
        assert_eq!(head >> 16, 3 | 1 << 15, "enabled, unmasked, size kept");
        assert_eq!(msix(&cfg, Address::new(0, 3, 0)), None);
    }

    fn virtio_rng_like() -> FakeFunction {
        FakeFunction::new(0x1af4, 0x1005, 0x00ff00)
            .io_bar(0, 0x20, 0xc040)
            .memory_bar(1, 0x1000, 0xfebf_e000, false)
            .memory_bar(4, 0x4000, 0xfebf_8000, true)
    }

    #[test]
    fn functions_are_read_and_enumerated_across_bridges() {
        let cfg = FakeConfig::default();
        cfg.add(
            Address::new(0, 0, 0),
            FakeFunction::new(0x8086, 0x29c0, 0x060000),
        );
        let mut multi = FakeFunction::new(0x8086, 0x2918, 0x060100);
        multi.regs[3] = 0x80 << 16;
        cfg.add(Address::new(0, 31, 0), multi);
        cfg.add(
            Address::new(0, 31, 3),
            FakeFunction::new(0x8086, 0x2930, 0x0c0500),
        );
        // Function 1 of a single-function device is not looked at.
        cfg.add(Address::new(0, 0, 1), FakeFunction::new(1, 2, 0));
        let mut bridge = FakeFunction::new(0x1b36, 0x000c, 0x060400);
        bridge.regs[3] = 1 << 16;
        bridge.regs[6] = 0x0002_0200; // primary 0, secondary 2, subordinate 2
        cfg.add(Address::new(0, 2, 0), bridge);
        let mut rng = virtio_rng_like();
        rng.regs[11] = 0x0004_1af4;
        rng.regs[15] = 0x0000_010b;
        cfg.add(Address::new(2, 0, 0), rng);
        // A bus nothing points to is not scanned.
        cfg.add(Address::new(5, 0, 0), FakeFunction::new(3, 4, 0));
        // A bridge whose secondary bus points back is not followed.
        let mut looping = FakeFunction::new(0x1b36, 0x000c, 0x060400);
        looping.regs[3] = 1 << 16;
        cfg.add(Address::new(2, 1, 0), looping);

        let mut found = Vec::new();
        enumerate(&cfg, 0..=255, &mut |f| found.push(*f));
        let at: Vec<_> = found.iter().map(|f| f.address.to_string()).collect();
        assert_eq!(
            at,
            [
                "00:00.0", "00:02.0", "02:00.0", "02:01.0", "00:1f.0", "00:1f.3"
            ]
        );
        let rng = found[2];
        assert_eq!((rng.vendor_id, rng.device_id), (0x1af4, 0x1005));
        assert_eq!(rng.class, (0, 0xff, 0));
        assert_eq!(rng.revision, 1);
        assert_eq!((rng.subsystem_vendor_id, rng.subsystem_id), (0x1af4, 4));
        assert_eq!((rng.interrupt_pin, rng.interrupt_line), (1, 11));
        assert!(found[1].is_bridge() && found[4].multifunction);
        assert_eq!(found[1].bar_count(), 2);

        let mut few = Vec::new();
        enumerate(&cfg, 0..=1, &mut |f| few.push(f.address));
        assert_eq!(few.len(), 4, "bus 2 is outside the range");
    }

    #[test]
    fn bars_are_decoded_and_sized_with_decoding_off() {
        let cfg = FakeConfig::default();
        let at = Address::new(0, 1, 0);
        let mut f = virtio_rng_like();
        f.regs[1] = 0x0010_0007;
        cfg.add(at, f);
        let func = Function::read(&cfg, at).expect("present");
        let bars = read_bars(&cfg, &func);
        assert_eq!(
            bars,
            [
                Some(Bar::Io {
                    base: 0xc040,
                    size: 0x20
                }),
                Some(Bar::Memory {
                    base: 0xfebf_e000,
                    size: 0x1000,
                    is_64: false,
                    prefetchable: false
                }),
                None,
                None,
                Some(Bar::Memory {
                    base: 0xfebf_8000,
                    size: 0x4000,
                    is_64: true,
                    prefetchable: true
                }),
                None,
            ]
        );
        // Every register is back as it was, and decoding was off while
        // the sizing patterns were in the BARs.
        assert_eq!(cfg.reg(at, 0x04), 0x0010_0007);
        assert_eq!(cfg.reg(at, 0x14), 0xfebf_e000);
        assert_eq!(cfg.reg(at, 0x20), 0xfebf_800c);
        let writes = cfg.writes.borrow();
        assert_eq!(writes.first(), Some(&(at, 0x04, 0x0004)));
        assert_eq!(writes.last(), Some(&(at, 0x04, 0x0007)));
        assert_eq!(
            bars[4].expect("bar 4").to_string(),
            "64-bit prefetchable memory at 0xfebf8000+0x4000"
        );
    }

    #[test]
    fn a_64_bit_bar_above_4_gib_keeps_its_high_half() {
        let cfg = FakeConfig::default();
        let at = Address::new(0, 3, 0);
        cfg.add(
            at,
            FakeFunction::new(1, 1, 0).memory_bar(2, 1 << 33, 0x80_0000_0000, true),
        );
        let func = Function::read(&cfg, at).expect("present");
        assert_eq!(
            read_bars(&cfg, &func)[2],
            Some(Bar::Memory {
                base: 0x80_0000_0000,
                size: 1 << 33,
                is_64: true,
                prefetchable: true
            })
        );
    }

    #[test]
    fn unassigned_bars_get_addresses_from_the_windows() {
        let ranges = [
            PciRange {
                space: PciSpace::Io,
                prefetchable: false,
                pci_address: 0,
                cpu_address: 0x3eff_0000,
                size: 0x1_0000,
            },
            PciRange {
                space: PciSpace::Memory32,
                prefetchable: false,
                pci_address: 0x1000_0000,
                cpu_address: 0x1000_0000,
                size: 0x2eff_0000,
            },
            PciRange {
                space: PciSpace::Memory64,
                prefetchable: true,
                pci_address: 0x80_0000_0000,
                cpu_address: 0x80_0000_0000,
                size: 0x80_0000_0000,
            },
        ];
        let cfg = FakeConfig::default();
        let at = Address::new(0, 1, 0);
        cfg.add(
            at,
            FakeFunction::new(0x1af4, 0x1005, 0x00ff00)
                .io_bar(0, 0x20, 0)
                .memory_bar(1, 0x1000, 0, false)
                .memory_bar(4, 0x4000, 0, true),
        );
        let at2 = Address::new(0, 2, 0);
        cfg.add(
            at2,
            FakeFunction::new(0x1af4, 0x1041, 0x020000).memory_bar(0, 0x2000, 0, false),
        );
        let mut alloc = BarAllocator::new(&ranges);
        assert!(!alloc.is_empty());
        let f = Function::read(&cfg, at).expect("present");
        let mut bars = read_bars(&cfg, &f);
        assert_eq!(assign_bars(&cfg, &f, &mut bars, &mut alloc), (2, 0));
        assert_eq!(bars[1].map(|b| b.base()), Some(0x1000_0000));
        assert_eq!(bars[4].map(|b| b.base()), Some(0x80_0000_0000));
        assert_eq!(bars[0].map(|b| b.base()), Some(0), "I/O left alone");
        assert_eq!(read_bars(&cfg, &f), bars, "the registers agree");
        let f2 = Function::read(&cfg, at2).expect("present");
        let mut bars2 = read_bars(&cfg, &f2);
        assert_eq!(assign_bars(&cfg, &f2, &mut bars2, &mut alloc), (1, 0));
        assert_eq!(bars2[0].map(|b| b.base()), Some(0x1000_2000), "aligned");

        assert_eq!(cpu_address(&ranges, 0x1000_2000, 0x2000), Some(0x1000_2000));
        assert_eq!(cpu_address(&ranges, 0x3eff_0000, 0x1000), None);
        assert_eq!(cpu_address(&[], 0xfebf_8000, 0x4000), Some(0xfebf_8000));
        let shifted = [PciRange {
            cpu_address: 0x4_0000_0000,
            ..ranges[1]
        }];
        assert_eq!(
            cpu_address(&shifted, 0x1000_1000, 0x10),
            Some(0x4_0000_1000)
        );

        let mut full = BarAllocator::new(&ranges[1..2]);
        let huge = Bar::Memory {
            base: 0,
            size: 1 << 31,
            is_64: true,
            prefetchable: true,
        };
        assert_eq!(full.allocate(&huge), None, "no 64-bit window, no room");
        assert!(BarAllocator::new(&ranges[..1]).is_empty());
    }

    #[test]
    fn the_capability_list_is_walked_boundedly() {
        let cfg = FakeConfig::default();
        let at = Address::new(0, 1, 0);
        cfg.add(
            at,
            FakeFunction::new(1, 1, 0)
                .capability(0x84, 0x09, &[0x14, 1])
                .capability(0x70, 0x11, &[0, 0])
                .capability(0x40, 0x05, &[0, 0]),
        );
        let caps: Vec<_> = capabilities(&cfg, at).collect();
        assert_eq!(caps, [(0x09, 0x84), (0x11, 0x70), (0x05, 0x40)]);
        // A list that loops ends after 48 entries.
        let looping = Address::new(0, 2, 0);
        cfg.add(
            looping,
            FakeFunction::new(1, 1, 0).capability(0x40, 0x09, &[0, 0]),
        );
        cfg.functions
            .borrow_mut()
            .get_mut(&looping)
            .expect("added")
            .regs[16] |= 0x40 << 8;
        assert_eq!(capabilities(&cfg, looping).count(), 48);
        // No capability bit, no list.
        let none = Address::new(0, 3, 0);
        cfg.add(none, FakeFunction::new(1, 1, 0));
        assert_eq!(capabilities(&cfg, none).count(), 0);
    }

    #[test]
    fn enabling_adds_command_bits_and_clears_no_status() {
        let cfg = FakeConfig::default();
        let at = Address::new(0, 1, 0);
        let mut f = FakeFunction::new(1, 1, 0);
        f.regs[1] = 0xf900_0001;
        cfg.add(at, f);
        enable(&cfg, at, Command::MEMORY_SPACE.union(Command::BUS_MASTER));
        assert_eq!(cfg.writes.borrow().last(), Some(&(at, 0x04, 0x0007)));
    }

    #[test]
    fn ecam_reads_and_writes_the_window_and_nothing_past_it() {
        let mut memory = std::vec![0u32; (1 << 20) / 4 + 4];
        let base = memory.as_mut_ptr() as usize;
        {
            #[allow(unsafe_code)]
            // SAFETY: the window is the first MiB of `memory`, which
            // outlives `ecam` (this block) and is touched only through it
            // until the checks below.
            let ecam = unsafe { Ecam::new(base, 1 << 20, 0) };
            let at = Address::new(0, 1, 2);
            ecam.write32(at, 0x10, 0xfebf_8000);
            assert_eq!(ecam.read32(at, 0x10), 0xfebf_8000);
            assert_eq!(ecam.read16(at, 0x12), 0xfebf);
            assert_eq!(ecam.read8(at, 0x11), 0x80);
            ecam.write32(Address::new(1, 0, 0), 0, 7);
            assert_eq!(ecam.read32(Address::new(1, 0, 0), 0), u32::MAX);
        }
        assert_eq!(memory[(1 << 15 | 2 << 12 | 0x10) / 4], 0xfebf_8000);
        assert_eq!(memory[(1 << 20) / 4], 0, "nothing written past the window");
    }

    #[test]
    fn ecam_offsets_follow_bus_device_function() {
        // Only the arithmetic: a window of two buses at a fake address is
        // never touched for functions outside it.
        #[allow(unsafe_code)]
        // SAFETY: no access below reaches memory: every address is
        // outside the window or the test only computes offsets.
        let ecam = unsafe { Ecam::new(0x1000_0000, 2 << 20, 4) };
        assert_eq!(ecam.buses(), 4..=5);
        assert_eq!(ecam.offset(Address::new(4, 0, 0), 0x10), Some(0x10));
        assert_eq!(
            ecam.offset(Address::new(5, 31, 7), 0xfff),
            Some(1 << 20 | 31 << 15 | 7 << 12 | 0xffc)
        );
        assert_eq!(ecam.offset(Address::new(6, 0, 0), 0), None);
        assert_eq!(ecam.offset(Address::new(3, 0, 0), 0), None);
        assert_eq!(ecam.read32(Address::new(6, 0, 0), 0), u32::MAX);
        #[allow(unsafe_code)]
        // SAFETY: as above.
        let short = unsafe { Ecam::new(0x1000_0000, 4096, 0) };
        assert!(short.buses().is_empty());
    }
}
