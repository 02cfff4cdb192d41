//! The handoff: what Basalt's UEFI loader tells the kernel when it jumps in,
//! and the payload a self-contained loader carries.
//!
//! Both sides compile this crate: the loader (`*-unknown-uefi`) writes a
//! [`Handoff`] record and the kernel's boot stub (`arch/`) reads it into its
//! ISA-neutral `BootInfo`. The record is plain `#[repr(C)]` data at a
//! physical address, little-endian, 8-byte aligned, so neither side needs
//! the other's types. Everything it points to (memory map, command line)
//! lies in the same allocation, right after it, and the whole allocation is
//! a [`MemoryKind::LoaderData`] region of the memory map: the kernel keeps
//! it.
//!
//! How the loader enters the kernel:
//! - **x86-64**: the kernel ELF's `PT_LOAD` segments at their physical
//!   addresses, `.bss` zeroed; then a 64-bit jump, paging on (identity, as
//!   UEFI leaves it), interrupts off, to the address in the kernel's
//!   [`ENTRY_NOTE_TYPE`] ELF note, with the handoff's physical address in
//!   `rdi` (System V: the first argument).
//! - **AArch64**: the arm64 Image at a 2 MiB-aligned base + its
//!   `text_offset`, caches cleaned to the point of coherency, MMU and data
//!   cache off, interrupts masked, at EL2 or EL1; then a jump to its first
//!   byte with `x0` holding the handoff's physical address (where the Linux
//!   boot protocol puts a device tree: the first word tells them apart,
//!   [`MAGIC`] against the device tree's `0xd00dfeed`).

#![no_std]

/// The handoff record's first word (`"BSLT"` in memory).
pub const MAGIC: u32 = u32::from_le_bytes(*b"BSLT");

/// The record's version; a kernel refuses another.
pub const VERSION: u32 = 1;

/// The ELF note (name [`ENTRY_NOTE_NAME`]) whose 8-byte descriptor is the
/// x86-64 kernel's 64-bit entry point for loaders, a physical address.
pub const ENTRY_NOTE_TYPE: u32 = 0x4241_0001;

/// The name of the kernel's entry note.
pub const ENTRY_NOTE_NAME: &[u8] = b"Basalt";

/// The handoff record. Addresses are physical; `0` means absent.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Handoff {
    /// [`MAGIC`]
    pub magic: u32,
    /// [`VERSION`]
    pub version: u32,
    /// bytes from the record's start to the end of what it points to
    pub size: u64,
    /// [`FLAG_SHARED_CONSOLE`] and friends
    pub flags: u64,
    /// `memory_map_len` [`MemoryEntry`] records
    pub memory_map: u64,
    /// how many entries `memory_map` holds
    pub memory_map_len: u64,
    /// the kernel command line, UTF-8, not NUL-terminated
    pub cmdline: u64,
    /// its length in bytes
    pub cmdline_len: u64,
    /// where the kernel's image was put
    pub kernel_start: u64,
    /// its size in memory (`.bss` included)
    pub kernel_len: u64,
    /// the bundle (a tar archive, as QEMU's `-initrd` would hold it)
    pub bundle_start: u64,
    /// its length in bytes
    pub bundle_len: u64,
    /// the ACPI RSDP, from the UEFI configuration table
    pub acpi_rsdp: u64,
    /// a flattened device tree, from the UEFI configuration table
    pub device_tree: u64,
    /// the SMBIOS 3.0 (64-bit) entry point, else the 2.x one
    pub smbios: u64,
    /// the UEFI system table (its runtime services stay mapped, identity)
    pub uefi_system_table: u64,
    /// the graphics framebuffer, if the firmware has one
    pub framebuffer: Framebuffer,
    /// the firmware's wall clock when the loader read it, in seconds since
    /// the Unix epoch (UTC); `i64::MIN` when the firmware had none
    pub wall_clock_seconds: i64,
    /// the ISA's cycle counter (`rdtsc`, `cntvct_el0`) when the wall clock
    /// was read
    pub wall_clock_counter: u64,
    /// the cycle counter when the loader started (the boot timeline's
    /// firmware/loader split)
    pub loader_start_counter: u64,
    /// the cycle counter just before the jump into the kernel
    pub loader_exit_counter: u64,
    /// what loaded the kernel, for the kernel log (UTF-8, NUL-padded),
    /// e.g. `"UEFI (EDK II 1.0)"`
    pub loader_name: [u8; 32],
}

/// The firmware has one console for everything: the kernel log and the
/// program's stdout and stderr share it (see `docs/guest-protocol.md`).
pub const FLAG_SHARED_CONSOLE: u64 = 1 << 0;

/// The loader found the kernel and bundle inside its own file (a
/// self-contained `.efi`), not on the boot partition.
pub const FLAG_EMBEDDED_PAYLOAD: u64 = 1 << 1;

/// A graphics framebuffer (UEFI GOP), for completeness; Basalt's consoles
/// are serial.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Framebuffer {
    /// physical address; 0 when there is none
    pub base: u64,
    /// size in bytes
    pub size: u64,
    /// visible pixels per line
    pub width: u32,
    /// lines
    pub height: u32,
    /// pixels per line in memory
    pub stride: u32,
    /// 0 RGB (red in the lowest byte), 1 BGR, 2 other (bitmask)
    pub format: u32,
}

/// One range of the physical memory map, merged from the firmware's.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryEntry {
    /// first byte
    pub start: u64,
    /// length in bytes
    pub len: u64,
    /// a [`MemoryKind`] as `u32`
    pub kind: u32,
    /// reserved, 0
    pub reserved: u32,
}

/// What a memory range holds, as the kernel must treat it.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryKind {
    /// free RAM (UEFI conventional memory, boot services code and data, the
    /// loader's own code)
    Usable = 1,
    /// not RAM the kernel may take (firmware reserved, unknown types)
    Reserved = 2,
    /// ACPI tables
    AcpiReclaimable = 3,
    /// ACPI non-volatile storage
    AcpiNvs = 4,
    /// defective RAM
    Unusable = 5,
    /// what the loader put there for the kernel: the kernel, the bundle,
    /// this record; RAM the kernel keeps
    LoaderData = 6,
    /// UEFI runtime services code and data: mapped, never reused
    FirmwareRuntime = 7,
    /// memory-mapped I/O the firmware declared
    Mmio = 8,
}

impl MemoryKind {
    /// The kind a `u32` from a [`MemoryEntry`] names (unknown values are
    /// [`MemoryKind::Reserved`]).
    pub fn from_u32(v: u32) -> MemoryKind {
        match v {
            1 => MemoryKind::Usable,
            3 => MemoryKind::AcpiReclaimable,
            4 => MemoryKind::AcpiNvs,
            5 => MemoryKind::Unusable,
            6 => MemoryKind::LoaderData,
            7 => MemoryKind::FirmwareRuntime,
            8 => MemoryKind::Mmio,
            _ => MemoryKind::Reserved,
        }
    }
}

/// The payload a self-contained loader (`basalt image --format efi`)
/// carries in its PE section [`PAYLOAD_SECTION`]: a [`PayloadHeader`],
/// then the kernel, the bundle and the command line at the offsets it
/// gives (from the header's start).
pub const PAYLOAD_SECTION: &[u8; 8] = b".basalt\0";

/// The payload header's first eight bytes.
pub const PAYLOAD_MAGIC: [u8; 8] = *b"BSLTPAY1";

/// The start of a self-contained loader's payload. All fields
/// little-endian.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PayloadHeader {
    /// [`PAYLOAD_MAGIC`]
    pub magic: [u8; 8],
    /// the kernel (x86-64: the ELF; AArch64: the arm64 Image)
    pub kernel_offset: u64,
    /// its length
    pub kernel_len: u64,
    /// the bundle (tar)
    pub bundle_offset: u64,
    /// its length
    pub bundle_len: u64,
    /// the kernel command line (UTF-8)
    pub cmdline_offset: u64,
    /// its length
    pub cmdline_len: u64,
}

impl PayloadHeader {
    /// The header's size in bytes.
    pub const SIZE: usize = 56;

    /// The header as little-endian bytes.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut out = [0u8; Self::SIZE];
        out[..8].copy_from_slice(&self.magic);
        let fields = [
            self.kernel_offset,
            self.kernel_len,
            self.bundle_offset,
            self.bundle_len,
            self.cmdline_offset,
            self.cmdline_len,
        ];
        for (i, f) in fields.iter().enumerate() {
            out[8 + i * 8..16 + i * 8].copy_from_slice(&f.to_le_bytes());
        }
        out
    }

    /// Reads a header, checking the magic and that every part lies inside
    /// `payload` (the whole section).
    pub fn parse(payload: &[u8]) -> Result<PayloadHeader, PayloadError> {
        let head = payload.get(..Self::SIZE).ok_or(PayloadError::Truncated)?;
        if head[..8] != PAYLOAD_MAGIC {
            return Err(PayloadError::BadMagic);
        }
        let field = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&head[8 + i * 8..16 + i * 8]);
            u64::from_le_bytes(b)
        };
        let h = PayloadHeader {
            magic: PAYLOAD_MAGIC,
            kernel_offset: field(0),
            kernel_len: field(1),
            bundle_offset: field(2),
            bundle_len: field(3),
            cmdline_offset: field(4),
            cmdline_len: field(5),
        };
        for (off, len) in [
            (h.kernel_offset, h.kernel_len),
            (h.bundle_offset, h.bundle_len),
            (h.cmdline_offset, h.cmdline_len),
        ] {
            let end = off.checked_add(len).ok_or(PayloadError::OutOfBounds)?;
            if end > payload.len() as u64 {
                return Err(PayloadError::OutOfBounds);
            }
        }
        Ok(h)
    }

    /// The kernel's bytes in `payload` (checked by [`PayloadHeader::parse`]).
    pub fn kernel<'a>(&self, payload: &'a [u8]) -> &'a [u8] {
        slice(payload, self.kernel_offset, self.kernel_len)
    }

    /// The bundle's bytes in `payload`.
    pub fn bundle<'a>(&self, payload: &'a [u8]) -> &'a [u8] {
        slice(payload, self.bundle_offset, self.bundle_len)
    }

    /// The command line's bytes in `payload`.
    pub fn cmdline<'a>(&self, payload: &'a [u8]) -> &'a [u8] {
        slice(payload, self.cmdline_offset, self.cmdline_len)
    }
}

fn slice(payload: &[u8], offset: u64, len: u64) -> &[u8] {
    let start = usize::try_from(offset).unwrap_or(usize::MAX);
    let end = start.saturating_add(usize::try_from(len).unwrap_or(usize::MAX));
    payload.get(start..end).unwrap_or(&[])
}

/// Why a payload could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadError {
    /// shorter than its header
    Truncated,
    /// it does not start with [`PAYLOAD_MAGIC`]
    BadMagic,
    /// a part lies beyond the section's end
    OutOfBounds,
}

impl core::fmt::Display for PayloadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            PayloadError::Truncated => "the payload is shorter than its header",
            PayloadError::BadMagic => "the payload does not start with BSLTPAY1",
            PayloadError::OutOfBounds => "a part of the payload lies beyond its end",
        })
    }
}

/// Where the files of an image live on its EFI system partition.
pub mod esp {
    /// The x86-64 loader, the path UEFI firmware boots by default.
    pub const LOADER_X86_64: &str = "EFI/BOOT/BOOTX64.EFI";
    /// The AArch64 loader.
    pub const LOADER_AARCH64: &str = "EFI/BOOT/BOOTAA64.EFI";
    /// The kernel (x86-64: ELF; AArch64: arm64 Image).
    pub const KERNEL: &str = "basalt/kernel";
    /// The bundle.
    pub const BUNDLE: &str = "basalt/bundle.tar";
    /// The kernel command line (optional, UTF-8).
    pub const CMDLINE: &str = "basalt/cmdline";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_layout_is_fixed() {
        assert_eq!(size_of::<MemoryEntry>(), 24);
        assert_eq!(size_of::<Framebuffer>(), 32);
        assert_eq!(size_of::<Handoff>(), 216);
        assert_eq!(align_of::<Handoff>(), 8);
    }

    #[test]
    fn a_payload_header_round_trips_and_is_bounds_checked() {
        let h = PayloadHeader {
            magic: PAYLOAD_MAGIC,
            kernel_offset: 56,
            kernel_len: 4,
            bundle_offset: 60,
            bundle_len: 2,
            cmdline_offset: 62,
            cmdline_len: 0,
        };
        let mut payload = h.to_bytes().to_vec();
        payload.extend_from_slice(b"kernbu");
        let back = PayloadHeader::parse(&payload).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.kernel(&payload), b"kern");
        assert_eq!(back.bundle(&payload), b"bu");
        assert_eq!(
            PayloadHeader::parse(&payload[..60]),
            Err(PayloadError::OutOfBounds)
        );
        assert_eq!(
            PayloadHeader::parse(&payload[..10]),
            Err(PayloadError::Truncated)
        );
        payload[0] = b'X';
        assert_eq!(PayloadHeader::parse(&payload), Err(PayloadError::BadMagic));
    }
}
