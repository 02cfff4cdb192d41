//! Reading the record Basalt's UEFI loader hands over (`basalt-handoff`)
//! into a [`BootInfo`]: the same on both ISAs.

use basalt_handoff::{Handoff, MAGIC, MemoryEntry, VERSION};

use crate::bootinfo::{BootInfo, MemoryKind, MemoryRegion, PhysRange, WallClockSample};

/// The loader's command line is used up to this many bytes.
const MAX_CMDLINE: u64 = 4096;

/// The most firmware memory-map entries read (the loader merges its map,
/// so real machines stay far below).
const MAX_ENTRIES: u64 = 4096;

/// Reads a value of type `T` at a physical address.
///
/// # Safety
/// `addr` must be identity-mapped readable memory holding a `T`.
unsafe fn read_phys<T: Copy>(addr: u64) -> T {
    // SAFETY: forwarded contract; unaligned reads are allowed on both ISAs
    // for normal memory.
    unsafe { (addr as *const T).read_unaligned() }
}

/// The kind of a handoff memory range, as the kernel treats it: what the
/// loader left for the kernel (the image, the bundle, this record, which
/// the command line points into) and the firmware's runtime services stay
/// out of the frame allocator.
fn kind(entry: &MemoryEntry) -> MemoryKind {
    use basalt_handoff::MemoryKind as H;
    match H::from_u32(entry.kind) {
        H::Usable => MemoryKind::Usable,
        H::AcpiReclaimable => MemoryKind::AcpiReclaimable,
        H::AcpiNvs => MemoryKind::AcpiNvs,
        H::Unusable => MemoryKind::Unusable,
        H::Reserved | H::LoaderData | H::FirmwareRuntime | H::Mmio => MemoryKind::Reserved,
    }
}

/// Fills `info` from the handoff record at `addr`; on a record the kernel
/// cannot use, sets [`BootInfo::boot_error`] instead.
///
/// # Safety
/// `addr` must be the address the loader passed, with the record and
/// everything it points to identity-mapped and left intact by the loader
/// (a `LoaderData` allocation the kernel never reuses).
pub(crate) unsafe fn read(addr: u64, info: &mut BootInfo) {
    // SAFETY: the loader's record (caller's contract).
    let h: Handoff = unsafe { read_phys(addr) };
    if h.magic != MAGIC {
        info.boot_error = Some("the loader's handoff record has a bad magic number");
        return;
    }
    if h.version != VERSION {
        info.boot_error = Some(
            "the loader's handoff record has another version: rebuild the image with this basalt",
        );
        return;
    }
    info.shared_console = h.flags & basalt_handoff::FLAG_SHARED_CONSOLE != 0;
    info.acpi_rsdp = Some(h.acpi_rsdp).filter(|a| *a != 0);
    info.device_tree = Some(h.device_tree).filter(|a| *a != 0);
    info.smbios = Some(h.smbios).filter(|a| *a != 0);
    info.uefi_system_table = Some(h.uefi_system_table).filter(|a| *a != 0);
    info.loader_counters = Some((h.loader_start_counter, h.loader_exit_counter));
    if h.wall_clock_seconds != i64::MIN {
        info.wall_clock = Some(WallClockSample {
            unix_seconds: h.wall_clock_seconds,
            counter: h.wall_clock_counter,
        });
    }
    if h.kernel_len > 0 {
        info.kernel_image = PhysRange {
            start: h.kernel_start,
            len: h.kernel_len,
        };
    }
    if h.bundle_len > 0 {
        info.initrd = Some(PhysRange {
            start: h.bundle_start,
            len: h.bundle_len,
        });
    }
    if h.cmdline != 0 && h.cmdline_len > 0 {
        // SAFETY: the command line lies in the record's allocation, which
        // the kernel keeps (a reserved region of the memory map).
        info.cmdline = unsafe {
            core::slice::from_raw_parts(
                h.cmdline as *const u8,
                h.cmdline_len.min(MAX_CMDLINE) as usize,
            )
        };
    }
    let name_len = h
        .loader_name
        .iter()
        .position(|b| *b == 0)
        .unwrap_or(h.loader_name.len());
    // The name is copied into the boot stub's own static storage.
    info.loader_name = store_name(&h.loader_name[..name_len]);
    let entry_size = size_of::<MemoryEntry>() as u64;
    for i in 0..h.memory_map_len.min(MAX_ENTRIES) {
        // SAFETY: entry `i` of the loader's map, inside its record.
        let e: MemoryEntry = unsafe { read_phys(h.memory_map + i * entry_size) };
        if e.len == 0 {
            continue;
        }
        let region = MemoryRegion {
            range: PhysRange {
                start: e.start,
                len: e.len,
            },
            kind: kind(&e),
        };
        if !info.push_region(region) {
            // Too many ranges: keep the usable ones we have; the rest of
            // the map is lost, never misread.
            break;
        }
    }
}

static NAME: spin::Once<([u8; 32], usize)> = spin::Once::new();

fn store_name(bytes: &[u8]) -> &'static str {
    let (buf, len) = NAME.call_once(|| {
        let mut buf = [0u8; 32];
        let n = bytes.len().min(32);
        buf[..n].copy_from_slice(&bytes[..n]);
        (buf, n)
    });
    match core::str::from_utf8(&buf[..*len]) {
        Ok(s) => s,
        Err(e) => core::str::from_utf8(&buf[..e.valid_up_to()]).unwrap_or(""),
    }
}
