//! 4-level page tables with a 4 KiB granule and 48-bit virtual addresses
//! (TTBR0 only), laid out as on x86-64.
//!
//! Physical memory is identity-mapped (virtual = physical): device memory
//! below 1 GiB (where QEMU `virt` keeps its MMIO), normal memory from
//! 1 GiB to the top of RAM, so page-table frames are reached at their
//! physical addresses. Everything else — linear memories, code, stacks,
//! the heap — is mapped page by page in the dynamic area above 512 GiB
//! with [`map`], [`unmap`] and [`protect`].

use core::arch::asm;

/// The smallest page size.
pub const PAGE_SIZE: usize = 4096;

/// The first virtual address above the identity map: kernel-managed
/// mappings (heap, stacks, wasm memories and code) live at or above it.
pub const DYNAMIC_BASE: usize = 512 << 30;

/// One past the last virtual address the kernel hands out (the same as on
/// x86-64, though TTBR0 covers twice as much).
pub const DYNAMIC_END: usize = 1 << 47;

/// Where RAM may begin: the identity map treats everything below as
/// device memory.
const DEVICE_END: u64 = 1 << 30;

const VALID: u64 = 1;
/// a table at levels 0-2, a page at level 3
const TABLE: u64 = 1 << 1;
const ATTR_DEVICE: u64 = 0;
const ATTR_NORMAL: u64 = 1 << 2;
const READ_ONLY: u64 = 1 << 7;
const INNER_SHAREABLE: u64 = 3 << 8;
const ACCESSED: u64 = 1 << 10;
const PXN: u64 = 1 << 53;
const UXN: u64 = 1 << 54;
const ADDR_MASK: u64 = 0x0000_ffff_ffff_f000;

const NORMAL: u64 = VALID | ATTR_NORMAL | INNER_SHAREABLE | ACCESSED | UXN;
const DEVICE: u64 = VALID | ATTR_DEVICE | ACCESSED | UXN | PXN;

/// What a mapped page allows besides reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// stores allowed
    pub write: bool,
    /// instruction fetch allowed
    pub execute: bool,
}

impl Access {
    /// Read-write data, not executable.
    pub const DATA: Access = Access {
        write: true,
        execute: false,
    };
    /// Read-execute code.
    pub const CODE: Access = Access {
        write: false,
        execute: true,
    };
}

/// Why a page-table change failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    /// the page is already mapped
    AlreadyMapped,
    /// the page is not mapped
    NotMapped,
    /// the address lies in a block of the identity map
    InIdentityMap,
    /// no physical frame for a page table
    OutOfFrames,
}

impl core::fmt::Display for MapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            MapError::AlreadyMapped => "page already mapped",
            MapError::NotMapped => "page not mapped",
            MapError::InIdentityMap => "address inside the identity map",
            MapError::OutOfFrames => "out of physical memory for page tables",
        })
    }
}

/// A source of zero-filled 4 KiB physical frames for page tables.
pub trait FrameSource {
    /// A frame's physical address, or `None` when memory is exhausted.
    fn allocate_frame(&mut self) -> Option<u64>;
}

fn root() -> u64 {
    let ttbr: u64;
    // SAFETY: reads a system register.
    unsafe { asm!("mrs {}, ttbr0_el1", out(reg) ttbr, options(nomem, nostack, preserves_flags)) };
    ttbr & ADDR_MASK
}

fn table(phys: u64) -> *mut u64 {
    phys as *mut u64
}

fn index(virt: usize, level: u32) -> usize {
    (virt >> (12 + 9 * level)) & 511
}

/// Makes page-table stores visible to the table walker.
fn publish() {
    // SAFETY: barriers only.
    unsafe { asm!("dsb ishst", "isb", options(nostack, preserves_flags)) };
}

fn flush(virt: usize) {
    // SAFETY: invalidating a TLB entry is always allowed at EL1.
    unsafe {
        asm!("dsb ishst", "tlbi vaae1is, {}", "dsb ish", "isb", in(reg) virt >> 12, options(nostack, preserves_flags))
    };
}

fn flush_all() {
    // SAFETY: invalidating the TLB is always allowed at EL1.
    unsafe {
        asm!(
            "dsb ishst",
            "tlbi vmalle1is",
            "dsb ish",
            "isb",
            options(nostack, preserves_flags)
        )
    };
}

fn leaf_bits(access: Access) -> u64 {
    let mut bits = NORMAL | TABLE;
    if !access.write {
        bits |= READ_ONLY;
    }
    if !access.execute {
        bits |= PXN;
    }
    bits
}

/// The address of the level-3 (4 KiB) entry for `virt`, creating missing
/// tables when `frames` is given.
///
/// # Safety
/// The page tables must be the kernel's, identity-mapped.
unsafe fn walk(
    virt: usize,
    mut frames: Option<&mut dyn FrameSource>,
) -> Result<*mut u64, MapError> {
    let mut t = root();
    for level in (1..=3).rev() {
        let e = table(t).wrapping_add(index(virt, level));
        // SAFETY: `e` is inside an identity-mapped page table.
        let v = unsafe { e.read_volatile() };
        if v & VALID == 0 {
            let Some(src) = frames.as_deref_mut() else {
                return Err(MapError::NotMapped);
            };
            let f = src.allocate_frame().ok_or(MapError::OutOfFrames)?;
            // SAFETY: a fresh frame for us alone, identity-mapped.
            unsafe { core::ptr::write_bytes(f as *mut u8, 0, PAGE_SIZE) };
            // SAFETY: as above; the entry now points to a zeroed table.
            unsafe { e.write_volatile(f | VALID | TABLE) };
            t = f;
        } else if v & TABLE == 0 {
            return Err(MapError::InIdentityMap);
        } else {
            t = v & ADDR_MASK;
        }
    }
    Ok(table(t).wrapping_add(index(virt, 0)))
}

/// Maps the 4 KiB page at `virt` to the frame `phys`.
///
/// # Safety
/// `virt` must be a page-aligned address in the dynamic area that no Rust
/// reference points into; `phys` a frame the caller owns.
pub unsafe fn map(
    virt: usize,
    phys: u64,
    access: Access,
    frames: &mut dyn FrameSource,
) -> Result<(), MapError> {
    // SAFETY: forwarded contract.
    let e = unsafe { walk(virt, Some(frames)) }?;
    // SAFETY: `e` is a level-3 entry in an identity-mapped table.
    if unsafe { e.read_volatile() } & VALID != 0 {
        return Err(MapError::AlreadyMapped);
    }
    // SAFETY: as above; an invalid entry is never cached, so no TLB
    // maintenance is needed.
    unsafe { e.write_volatile((phys & ADDR_MASK) | leaf_bits(access)) };
    publish();
    Ok(())
}

/// Maps the 4 KiB page at `virt` to the device registers at `phys` as
/// Device-nGnRnE memory, read-write, never executable (PCI BARs and ECAM
/// windows outside the identity map's device gigabyte).
///
/// # Safety
/// `virt` must be a page-aligned address in the dynamic area that no Rust
/// reference points into; `phys` device registers the caller owns.
pub unsafe fn map_device(
    virt: usize,
    phys: u64,
    frames: &mut dyn FrameSource,
) -> Result<(), MapError> {
    // SAFETY: forwarded contract.
    let e = unsafe { walk(virt, Some(frames)) }?;
    // SAFETY: `e` is a level-3 entry in an identity-mapped table.
    if unsafe { e.read_volatile() } & VALID != 0 {
        return Err(MapError::AlreadyMapped);
    }
    // SAFETY: as above; an invalid entry is never cached.
    unsafe { e.write_volatile((phys & ADDR_MASK) | DEVICE | TABLE) };
    publish();
    Ok(())
}

/// Unmaps the 4 KiB page at `virt`; returns the frame it mapped.
///
/// # Safety
/// No Rust reference may point into the page.
pub unsafe fn unmap(virt: usize) -> Result<u64, MapError> {
    // SAFETY: forwarded contract.
    let e = unsafe { walk(virt, None) }?;
    // SAFETY: `e` is a level-3 entry in an identity-mapped table.
    let v = unsafe { e.read_volatile() };
    if v & VALID == 0 {
        return Err(MapError::NotMapped);
    }
    // SAFETY: as above.
    unsafe { e.write_volatile(0) };
    flush(virt);
    Ok(v & ADDR_MASK)
}

/// Changes what the mapped page at `virt` allows. (Making a page
/// executable does not synchronise the instruction cache: see
/// [`super::cpu::sync_instruction_cache`].)
///
/// # Safety
/// Removing write access from a page Rust code holds `&mut` to is unsound.
pub unsafe fn protect(virt: usize, access: Access) -> Result<(), MapError> {
    // SAFETY: forwarded contract.
    let e = unsafe { walk(virt, None) }?;
    // SAFETY: `e` is a level-3 entry in an identity-mapped table.
    let v = unsafe { e.read_volatile() };
    if v & VALID == 0 {
        return Err(MapError::NotMapped);
    }
    // Only permission bits change, which needs no break-before-make.
    // SAFETY: as above.
    unsafe { e.write_volatile((v & ADDR_MASK) | leaf_bits(access)) };
    flush(virt);
    Ok(())
}

/// The physical address `virt` maps to, if any (any page or block size).
pub fn translate(virt: usize) -> Option<u64> {
    if virt >= 1 << 48 {
        return None;
    }
    let mut t = root();
    for level in (0..=3).rev() {
        let e = table(t).wrapping_add(index(virt, level));
        // SAFETY: page tables are identity-mapped and only read here.
        let v = unsafe { e.read_volatile() };
        if v & VALID == 0 {
            return None;
        }
        let block = level > 0 && v & TABLE == 0;
        if level == 0 || block {
            if level == 3 {
                return None; // no blocks at level 0
            }
            let size_mask = (1u64 << (12 + 9 * level)) - 1;
            return Some((v & ADDR_MASK & !size_mask) | (virt as u64 & size_mask));
        }
        t = v & ADDR_MASK;
    }
    None
}

unsafe extern "C" {
    static __text_start: u8;
    static __text_end: u8;
    static __rodata_end: u8;
    static __kernel_end: u8;
}

fn zeroed(frames: &mut dyn FrameSource) -> Result<u64, MapError> {
    let f = frames.allocate_frame().ok_or(MapError::OutOfFrames)?;
    // SAFETY: a fresh frame for us alone, identity-mapped by the boot
    // tables (RAM below 4 GiB) or by then by ours.
    unsafe { core::ptr::write_bytes(f as *mut u8, 0, PAGE_SIZE) };
    Ok(f)
}

fn set(t: u64, i: usize, v: u64) {
    // SAFETY: `t` is a page-table frame from `zeroed`, identity-mapped,
    // not yet in use by the walker.
    unsafe { table(t).wrapping_add(i).write_volatile(v) };
}

/// Replaces the boot stub's tables with the kernel's: page 0 unmapped (so
/// null pointers fault), the rest of the first GiB device memory, the
/// kernel image mapped W^X with 4 KiB pages (text read-execute, read-only
/// data read-only, the rest read-write and not executable), and RAM from
/// 1 GiB up to `top_of_ram` (at most 512 GiB) read-write, not executable,
/// in 1 GiB and 2 MiB blocks.
///
/// # Safety
/// Called once, early, while only the boot tables exist and nothing lives
/// in page 0.
pub unsafe fn finish_boot_tables(
    top_of_ram: u64,
    frames: &mut dyn FrameSource,
) -> Result<(), MapError> {
    let text = ((&raw const __text_start) as u64)..((&raw const __text_end) as u64);
    let rodata = text.end..((&raw const __rodata_end) as u64);
    let image = (text.start & !((2 << 20) - 1))..((&raw const __kernel_end) as u64);
    let l0 = zeroed(frames)?;
    let l1 = zeroed(frames)?;
    set(l0, 0, l1 | VALID | TABLE);
    // The first GiB: device memory, page 0 unmapped.
    let l2 = zeroed(frames)?;
    let l3 = zeroed(frames)?;
    for j in 1..512u64 {
        set(l3, j as usize, (j << 12) | DEVICE | TABLE);
    }
    set(l2, 0, l3 | VALID | TABLE);
    for i in 1..512u64 {
        set(l2, i as usize, (i << 21) | DEVICE);
    }
    set(l1, 0, l2 | VALID | TABLE);
    // RAM.
    let top = top_of_ram.min(512 << 30);
    let mut gib = DEVICE_END >> 30;
    while gib << 30 < top {
        let base = gib << 30;
        if image.end <= base || image.start >= base + (1 << 30) {
            set(l1, gib as usize, base | NORMAL | PXN);
            gib += 1;
            continue;
        }
        let l2 = zeroed(frames)?;
        for i in 0..512u64 {
            let block = base + (i << 21);
            if image.end <= block || image.start >= block + (2 << 20) {
                set(l2, i as usize, block | NORMAL | PXN);
                continue;
            }
            let l3 = zeroed(frames)?;
            for j in 0..512u64 {
                let phys = block + (j << 12);
                let bits = if text.contains(&phys) {
                    NORMAL | READ_ONLY
                } else if rodata.contains(&phys) {
                    NORMAL | READ_ONLY | PXN
                } else {
                    NORMAL | PXN
                };
                set(l3, j as usize, phys | bits | TABLE);
            }
            set(l2, i as usize, l3 | VALID | TABLE);
        }
        set(l1, gib as usize, l2 | VALID | TABLE);
        gib += 1;
    }
    // SAFETY: the new tables map everything the kernel uses at the same
    // addresses with the same memory types; TTBR0 switches atomically and
    // the TLB is flushed before anything relies on the new permissions.
    unsafe {
        asm!(
            "dsb ish",
            "msr ttbr0_el1, {}",
            "isb",
            "tlbi vmalle1is",
            "dsb ish",
            "isb",
            in(reg) l0,
            options(nostack)
        )
    };
    Ok(())
}

/// Unmaps every 4 KiB page in `[start, end)` (page-aligned, inside the
/// dynamic area), calling `freed` with each frame that was mapped and with
/// each page-table frame that became unused. Skips unmapped parts quickly.
///
/// # Safety
/// No Rust reference may point into the range.
pub unsafe fn unmap_range(start: usize, end: usize, freed: &mut dyn FnMut(u64)) {
    if start >= end || start < DYNAMIC_BASE || end > DYNAMIC_END {
        return;
    }
    // SAFETY: forwarded contract; the root table is the kernel's.
    unsafe { unmap_level(root(), 3, 0, start, end, freed) };
    // Freed page-table frames may sit in walk caches.
    flush_all();
}

/// # Safety
/// `t` is a live page table of `level` covering addresses from `base`.
unsafe fn unmap_level(
    t: u64,
    level: u32,
    base: usize,
    start: usize,
    end: usize,
    freed: &mut dyn FnMut(u64),
) {
    let span = 1usize << (12 + 9 * level);
    let first = (start.max(base) - base) / span;
    let last = ((end - 1).min(base + 512 * span - 1) - base) / span;
    for i in first..=last {
        let e = table(t).wrapping_add(i);
        // SAFETY: `e` lies in an identity-mapped page table.
        let v = unsafe { e.read_volatile() };
        if v & VALID == 0 || (level > 0 && v & TABLE == 0) {
            continue;
        }
        let va = base + i * span;
        if level == 0 {
            // SAFETY: as above.
            unsafe { e.write_volatile(0) };
            flush(va);
            freed(v & ADDR_MASK);
            continue;
        }
        // SAFETY: a valid table entry points to the next-level table.
        unsafe { unmap_level(v & ADDR_MASK, level - 1, va, start, end, freed) };
        if start <= va && va + span <= end {
            // The whole sub-table was cleared: give its frame back.
            // SAFETY: as above.
            unsafe { e.write_volatile(0) };
            freed(v & ADDR_MASK);
        }
    }
}
