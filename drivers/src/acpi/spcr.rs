//! The Serial Port Console Redirection table (SPCR): which UART the
//! firmware's console is, where it is and how it is set up.

use super::{AcpiError, PhysMemory, Register, le16, le32, read_table};

const WHAT: &str = "SPCR";
/// Through the terminal type and language: every revision has these.
const MIN_LEN: usize = 64;

/// The UART's programming model, from the SPCR interface type (the DBG2
/// serial port subtypes), reduced to what a driver needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UartKind {
    /// an Arm PL011 (type 0x03), or a UART Linux drives as one
    /// (BCM2835, type 0x10)
    Pl011,
    /// an Arm SBSA generic UART (types 0x0D and 0x0E): a PL011 subset
    /// whose baud rate and framing are fixed by firmware, not to be
    /// reprogrammed
    SbsaGeneric {
        /// type 0x0D: registers only take 32-bit accesses
        only_32bit_access: bool,
    },
    /// a 16550-compatible UART (types 0x00 full, 0x01 subset, 0x12
    /// "parameters in the GAS")
    Ns16550 {
        /// registers are in memory (else I/O ports)
        mmio: bool,
        /// register `n` is at `base + (n << reg_shift)`
        reg_shift: u8,
        /// bytes per access (1, 2, 4 or 8)
        access_bytes: u8,
    },
    /// the Arm debug communications channel (type 0x0F): no registers
    ArmDcc,
    /// any other interface type, unchanged
    Other(u8),
}

/// Where the console UART sits on PCI (SPCR revision 2 and later, when
/// the vendor ID is not 0xFFFF), e.g. AWS Graviton's 16550 behind a BAR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpcrPci {
    /// PCI device ID
    pub device_id: u16,
    /// PCI vendor ID
    pub vendor_id: u16,
    /// bus number
    pub bus: u8,
    /// device number
    pub device: u8,
    /// function number
    pub function: u8,
    /// PCI flags: bit 0 set means the OS must not suppress PNP device
    /// enumeration or disable power management for the device
    pub flags: u32,
    /// PCI segment
    pub segment: u8,
}

/// The console the SPCR describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spcr {
    /// the table's revision
    pub revision: u8,
    /// the interface type as the table has it
    pub interface_type: u8,
    /// what kind of UART that is
    pub kind: UartKind,
    /// where its registers are (`None`: address 0, console disabled or
    /// not memory/I/O-mapped)
    pub base: Option<Register>,
    /// the GAS register bit width
    pub register_bit_width: u8,
    /// the GAS access size (0 undefined, 1 byte, 2 word, 3 dword, 4 qword)
    pub access_size: u8,
    /// interrupt type bits: 0 PC-AT 8259, 1 I/O APIC, 2 I/O SAPIC, 3 Arm
    /// GIC, 4 RISC-V PLIC/APLIC
    pub interrupt_type: u8,
    /// the PC-AT IRQ (with interrupt type bit 0)
    pub irq: u8,
    /// the global system interrupt (GSIV on Arm), when an interrupt type
    /// other than the 8259 is given
    pub gsiv: Option<u32>,
    /// the baud rate firmware set up; `None` when it says "as is" (or an
    /// unknown code)
    pub baud: Option<u32>,
    /// parity (0: none)
    pub parity: u8,
    /// stop bits (1: one)
    pub stop_bits: u8,
    /// flow control bits: 0 DCD, 1 RTS/CTS, 2 XON/XOFF
    pub flow_control: u8,
    /// terminal type: 0 VT100, 1 VT100+, 2 VT-UTF8, 3 ANSI
    pub terminal_type: u8,
    /// the UART's PCI location, when it is a PCI device
    pub pci: Option<SpcrPci>,
    /// the UART's input clock in Hz (revision 3 and later; `None`: not
    /// given)
    pub uart_clock: Option<u32>,
}

/// The bytes per access a GAS asks for: its access size, else its
/// register bit width, else 1.
fn access_bytes(access_size: u8, bit_width: u8) -> u8 {
    match (access_size, bit_width) {
        (1..=4, _) => 1 << (access_size - 1),
        (_, 16) => 2,
        (_, 32) => 4,
        (_, 64) => 8,
        _ => 1,
    }
}

/// The configured baud rate code of SPCR (0: as is).
fn baud(code: u8) -> Option<u32> {
    match code {
        3 => Some(9600),
        4 => Some(19200),
        6 => Some(57600),
        7 => Some(115_200),
        _ => None,
    }
}

/// Reads the SPCR at `addr` (validated, `len` bytes).
pub fn read_spcr(mem: &dyn PhysMemory, addr: u64, len: u32) -> Result<Spcr, AcpiError> {
    let mut buf = [0u8; 88];
    let s = read_table(mem, WHAT, addr, len, MIN_LEN, &mut buf)?;
    let (revision, interface_type) = (s[8], s[36]);
    // The generic address structure at 40: space, bit width, bit offset,
    // access size, address.
    let (space, bit_width, access_size) = (s[40], s[41], s[43]);
    let address = u64::from(le32(s, 44)) | (u64::from(le32(s, 48)) << 32);
    let base = match (space, address) {
        (_, 0) => None,
        (0, a) => Some(Register::Memory(a)),
        (1, a) => u16::try_from(a).ok().map(Register::Io),
        _ => None,
    };
    let bytes = access_bytes(access_size, bit_width);
    let kind = match interface_type {
        0x03 | 0x10 => UartKind::Pl011,
        0x0d => UartKind::SbsaGeneric {
            only_32bit_access: true,
        },
        0x0e => UartKind::SbsaGeneric {
            only_32bit_access: false,
        },
        0x00 | 0x01 | 0x12 => UartKind::Ns16550 {
            mmio: space == 0,
            reg_shift: bytes.trailing_zeros() as u8,
            access_bytes: bytes,
        },
        0x0f => UartKind::ArmDcc,
        t => UartKind::Other(t),
    };
    let interrupt_type = s[52];
    let pci = (s.len() >= 76 && le16(s, 66) != 0xffff).then(|| SpcrPci {
        device_id: le16(s, 64),
        vendor_id: le16(s, 66),
        bus: s[68],
        device: s[69],
        function: s[70],
        flags: le32(s, 71),
        segment: s[75],
    });
    let uart_clock = (revision >= 3 && s.len() >= 80)
        .then(|| le32(s, 76))
        .filter(|c| *c != 0);
    // Revision 4's precise baud rate overrides the code when set.
    let precise = (revision >= 4 && s.len() >= 84)
        .then(|| le32(s, 80))
        .filter(|b| *b != 0);
    Ok(Spcr {
        revision,
        interface_type,
        kind,
        base,
        register_bit_width: bit_width,
        access_size,
        interrupt_type,
        irq: s[53],
        gsiv: (interrupt_type & !1 != 0).then(|| le32(s, 54)),
        baud: precise.or(baud(s[58])),
        parity: s[59],
        stop_bits: s[60],
        flow_control: s[61],
        terminal_type: s[62],
        pci,
        uart_clock,
    })
}
