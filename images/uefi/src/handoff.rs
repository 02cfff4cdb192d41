//! Filling the handoff record: what the firmware tells (configuration
//! tables, framebuffer, wall clock), the handoff block's allocation, and
//! the memory map, converted after boot services are gone without
//! allocating.

use crate::arch;
use crate::kernel::Loaded;
use crate::{LoadError, PAGE_SIZE, load_error, pages_for};
use basalt_handoff::{
    FLAG_SHARED_CONSOLE, Framebuffer, Handoff, MAGIC, MemoryEntry, MemoryKind, VERSION,
};
use uefi::boot::{self, AllocateType, MemoryType, OpenProtocolAttributes, OpenProtocolParams};
use uefi::mem::memory_map::MemoryMap;
use uefi::proto::console::gop::{GraphicsOutput, PixelFormat};
use uefi::table::cfg::ConfigTableEntry;
use uefi::{Guid, guid};

/// What the loader put in memory, for the record.
pub struct Parts<'a> {
    /// the kernel
    pub kernel: Loaded,
    /// the bundle's address and length
    pub bundle: (u64, u64),
    /// the full command line
    pub cmdline: &'a str,
    /// `FLAG_*` bits besides [`FLAG_SHARED_CONSOLE`]
    pub flags: u64,
    /// the cycle counter when the loader started
    pub start_counter: u64,
}

/// The handoff block, allocated and filled but for the memory map.
#[derive(Debug, Clone, Copy)]
pub struct Prepared {
    record: Handoff,
    block: u64,
    /// the block's length in bytes (whole pages)
    pub block_len: u64,
    map_offset: u64,
    map_capacity: usize,
}

/// The flattened device tree's configuration table GUID.
const DEVICE_TREE_GUID: Guid = guid!("b1b621d5-f19c-41a5-830b-d9152c69aae0");

/// Slack for memory map entries that appear between sizing the block and
/// exiting boot services (our own allocations split free ranges).
const MAP_SLACK: usize = 64;

/// Fills everything the firmware knows and allocates the handoff block.
pub fn prepare(parts: Parts<'_>) -> Result<Prepared, LoadError> {
    let mut record = Handoff {
        magic: MAGIC,
        version: VERSION,
        flags: FLAG_SHARED_CONSOLE | parts.flags,
        kernel_start: parts.kernel.start,
        kernel_len: parts.kernel.len,
        bundle_start: parts.bundle.0,
        bundle_len: parts.bundle.1,
        loader_start_counter: parts.start_counter,
        wall_clock_seconds: i64::MIN,
        ..Handoff::default()
    };
    config_tables(&mut record);
    record.framebuffer = framebuffer();
    if let Ok(t) = uefi::runtime::get_time() {
        record.wall_clock_counter = arch::counter();
        let local = unix_seconds(
            i64::from(t.year()),
            i64::from(t.month()),
            i64::from(t.day()),
            i64::from(t.hour()) * 3600 + i64::from(t.minute()) * 60 + i64::from(t.second()),
        );
        // UEFI's TimeZone is the local time's offset from UTC in minutes.
        record.wall_clock_seconds = local - i64::from(t.time_zone().unwrap_or(0)) * 60;
    }
    record.uefi_system_table = uefi::table::system_table_raw().map_or(0, |p| p.as_ptr() as u64);
    record.loader_name = loader_name();

    let map_len = boot::memory_map(MemoryType::LOADER_DATA)
        .map_err(|e| load_error!("cannot read the firmware's memory map: {:?}", e.status()))?
        .len();
    let map_capacity = map_len + MAP_SLACK;
    let header = size_of::<Handoff>() as u64;
    let cmdline_len = parts.cmdline.len() as u64;
    let map_offset = (header + cmdline_len).next_multiple_of(8);
    let need = map_offset + (map_capacity * size_of::<MemoryEntry>()) as u64;
    let pages = pages_for(need);
    let block = boot::allocate_pages(
        AllocateType::MaxAddress(0xffff_ffff),
        MemoryType::LOADER_DATA,
        pages,
    )
    .or_else(|_| boot::allocate_pages(AllocateType::AnyPages, MemoryType::LOADER_DATA, pages))
    .map_err(|e| load_error!("out of memory for the handoff record: {:?}", e.status()))?;
    let block = block.as_ptr() as u64;
    record.cmdline = block + header;
    record.cmdline_len = cmdline_len;
    record.memory_map = block + map_offset;
    // SAFETY: the block was just allocated, `pages` pages, and holds the
    // record's header then the command line at `header`; nothing else
    // refers to it.
    unsafe {
        core::ptr::copy_nonoverlapping(
            parts.cmdline.as_ptr(),
            (block + header) as *mut u8,
            parts.cmdline.len(),
        );
    }
    Ok(Prepared {
        record,
        block,
        block_len: pages as u64 * PAGE_SIZE,
        map_offset,
        map_capacity,
    })
}

/// Exits boot services, writes the memory map and the record into the
/// block and returns the record's address.
///
/// # Safety
///
/// Nothing of boot services may be used afterwards: no allocation, no
/// protocol, no console; every heap object must have been dropped.
pub unsafe fn exit_and_finish(p: Prepared) -> u64 {
    // SAFETY: the caller guarantees nothing of boot services is used after.
    let map = unsafe { boot::exit_boot_services(None) };
    // SAFETY: the block holds `map_capacity` entries at `map_offset`,
    // 8-byte aligned, allocated for this in `prepare`.
    let entries = unsafe {
        core::slice::from_raw_parts_mut(
            (p.block + p.map_offset) as *mut MemoryEntry,
            p.map_capacity,
        )
    };
    let mut n = 0;
    for d in map.entries() {
        if n == entries.len() {
            // More entries than the slack allows for: the map would be
            // wrong, and nothing can be printed any more.
            arch::halt();
        }
        entries[n] = MemoryEntry {
            start: d.phys_start,
            len: d.page_count * PAGE_SIZE,
            kind: kind_of(d.ty) as u32,
            reserved: 0,
        };
        n += 1;
    }
    core::mem::forget(map);
    let n = merge(&mut entries[..n]);
    let mut record = p.record;
    record.memory_map_len = n as u64;
    record.size = p.map_offset + (n * size_of::<MemoryEntry>()) as u64;
    record.loader_exit_counter = arch::counter();
    // SAFETY: the block starts with room for the record, 8-byte aligned
    // (page aligned), and is ours.
    unsafe { core::ptr::write(p.block as *mut Handoff, record) };
    p.block
}

/// Sorts `entries` by address and merges adjacent entries of one kind, in
/// place; returns how many are left.
fn merge(entries: &mut [MemoryEntry]) -> usize {
    entries.sort_unstable_by_key(|e| e.start);
    let mut out = 0;
    for i in 0..entries.len() {
        let e = entries[i];
        if e.len == 0 {
            continue;
        }
        if out > 0 {
            let last = &mut entries[out - 1];
            if last.kind == e.kind && last.start + last.len == e.start {
                last.len += e.len;
                continue;
            }
        }
        entries[out] = e;
        out += 1;
    }
    out
}

/// What the kernel must make of a UEFI memory type.
fn kind_of(ty: MemoryType) -> MemoryKind {
    match ty {
        MemoryType::CONVENTIONAL
        | MemoryType::BOOT_SERVICES_CODE
        | MemoryType::BOOT_SERVICES_DATA
        | MemoryType::LOADER_CODE => MemoryKind::Usable,
        MemoryType::LOADER_DATA => MemoryKind::LoaderData,
        MemoryType::RUNTIME_SERVICES_CODE | MemoryType::RUNTIME_SERVICES_DATA => {
            MemoryKind::FirmwareRuntime
        }
        MemoryType::ACPI_RECLAIM => MemoryKind::AcpiReclaimable,
        MemoryType::ACPI_NON_VOLATILE => MemoryKind::AcpiNvs,
        MemoryType::UNUSABLE => MemoryKind::Unusable,
        MemoryType::MMIO | MemoryType::MMIO_PORT_SPACE => MemoryKind::Mmio,
        _ => MemoryKind::Reserved,
    }
}

/// ACPI RSDP (2.0, else 1.0), device tree, SMBIOS (3, else 2).
fn config_tables(record: &mut Handoff) {
    uefi::system::with_config_table(|tables: &[ConfigTableEntry]| {
        let find = |guid: Guid| {
            tables
                .iter()
                .find(|t| t.guid == guid)
                .map_or(0, |t| t.address as u64)
        };
        let first = |a: u64, b: u64| if a != 0 { a } else { b };
        record.acpi_rsdp = first(
            find(ConfigTableEntry::ACPI2_GUID),
            find(ConfigTableEntry::ACPI_GUID),
        );
        record.device_tree = find(DEVICE_TREE_GUID);
        record.smbios = first(
            find(ConfigTableEntry::SMBIOS3_GUID),
            find(ConfigTableEntry::SMBIOS_GUID),
        );
    });
}

/// The GOP framebuffer, or zeros when there is none (or no linear one).
fn framebuffer() -> Framebuffer {
    let Ok(handle) = boot::get_handle_for_protocol::<GraphicsOutput>() else {
        return Framebuffer::default();
    };
    // SAFETY: GetProtocol does not take the GOP from the console driver
    // that uses it; the protocol is only read, and closed on drop.
    let gop = unsafe {
        boot::open_protocol::<GraphicsOutput>(
            OpenProtocolParams {
                handle,
                agent: boot::image_handle(),
                controller: None,
            },
            OpenProtocolAttributes::GetProtocol,
        )
    };
    let Ok(mut gop) = gop else {
        return Framebuffer::default();
    };
    let info = gop.current_mode_info();
    let format = match info.pixel_format() {
        PixelFormat::Rgb => 0,
        PixelFormat::Bgr => 1,
        PixelFormat::Bitmask => 2,
        PixelFormat::BltOnly => return Framebuffer::default(),
    };
    let (width, height) = info.resolution();
    let mut fb = gop.frame_buffer();
    Framebuffer {
        base: fb.as_mut_ptr() as u64,
        size: fb.size() as u64,
        width: u32::try_from(width).unwrap_or(0),
        height: u32::try_from(height).unwrap_or(0),
        stride: u32::try_from(info.stride()).unwrap_or(0),
        format,
    }
}

/// `"UEFI <vendor> <major>.<minor>"`, NUL-padded, cut to 32 bytes.
fn loader_name() -> [u8; 32] {
    use core::fmt::Write;
    let mut name = alloc::string::String::from("UEFI ");
    for c in uefi::system::firmware_vendor().iter() {
        name.push(char::from(*c));
    }
    let rev = uefi::system::firmware_revision();
    let _ = write!(name, " {}.{}", rev >> 16, rev & 0xffff);
    let mut out = [0u8; 32];
    let mut len = 0;
    for c in name.chars() {
        let mut buf = [0u8; 4];
        let s = c.encode_utf8(&mut buf);
        if len + s.len() > out.len() {
            break;
        }
        out[len..len + s.len()].copy_from_slice(s.as_bytes());
        len += s.len();
    }
    out
}

/// Seconds since the Unix epoch of a proleptic Gregorian date and the
/// seconds into that day (Howard Hinnant's `days_from_civil`).
fn unix_seconds(year: i64, month: i64, day: i64, seconds_of_day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + seconds_of_day
}
