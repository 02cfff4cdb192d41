//! 4-level page tables.
//!
//! Physical memory is identity-mapped (virtual = physical) for the first
//! 4 GiB by the boot stub and up to the top of RAM by
//! [`finish_boot_tables`], so page-table frames are reached at their
//! physical addresses. Everything else — linear memories, code, stacks,
//! the heap — is mapped page by page in the upper part of the lower half
//! (above 512 GiB) with [`map`], [`unmap`] and [`protect`].
//!
//! Page tables are read-only in the identity map once
//! [`finish_boot_tables`] returns: every change opens a [`TableWindow`],
//! which clears CR0.WP (ring 0 may then write read-only pages) with
//! interrupts masked, and closes it again. A stray or hostile store into
//! a page table outside a window faults like one into kernel text.

use core::arch::asm;

/// The smallest page size.
pub const PAGE_SIZE: usize = 4096;

/// The first virtual address above the identity map: kernel-managed
/// mappings (heap, stacks, wasm memories and code) live at or above it.
pub const DYNAMIC_BASE: usize = 512 << 30;

/// One past the last usable virtual address of the lower half.
pub const DYNAMIC_END: usize = 1 << 47;

const PRESENT: u64 = 1;
const WRITABLE: u64 = 1 << 1;
const WRITE_THROUGH: u64 = 1 << 3;
const CACHE_DISABLE: u64 = 1 << 4;
const HUGE: u64 = 1 << 7;
const NO_EXECUTE: u64 = 1 << 63;
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

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
    /// the address lies in a large page of the identity map
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

pub use crate::table_window::TableWindow;
use crate::table_window::{protect_tables, tables_protected};

const CR0_WRITE_PROTECT: u64 = 1 << 16;

/// Opens a [`TableWindow`] on this ISA: masks interrupts and clears
/// CR0.WP; returns RFLAGS for [`window_close`].
///
/// # Safety
/// Ring 0 may then store into read-only pages until [`window_close`].
pub(crate) unsafe fn window_open() -> u64 {
    let rflags: u64;
    // SAFETY: reads RFLAGS and masks interrupts; ring 0.
    unsafe { asm!("pushfq", "pop {}", "cli", out(reg) rflags, options(nomem, preserves_flags)) };
    // SAFETY: the caller's contract.
    unsafe { set_cr0_write_protect(false) };
    rflags
}

/// Closes a [`TableWindow`]: sets CR0.WP again, then restores the
/// interrupt flag from `rflags` ([`window_open`]'s).
///
/// # Safety
/// Only after [`window_open`], with what it returned.
pub(crate) unsafe fn window_close(rflags: u64) {
    // SAFETY: restores write protection.
    unsafe { set_cr0_write_protect(true) };
    if rflags & (1 << 9) != 0 {
        // SAFETY: interrupts were enabled before the window.
        unsafe { asm!("sti", options(nomem, nostack)) };
    }
}

/// # Safety
/// Clearing CR0.WP suspends write protection for ring 0.
unsafe fn set_cr0_write_protect(on: bool) {
    let mut cr0: u64;
    // SAFETY: reads a control register.
    unsafe { asm!("mov {}, cr0", out(reg) cr0, options(nomem, nostack, preserves_flags)) };
    if on {
        cr0 |= CR0_WRITE_PROTECT;
    } else {
        cr0 &= !CR0_WRITE_PROTECT;
    }
    // SAFETY: only the WP bit changes (caller's contract).
    unsafe { asm!("mov cr0, {}", in(reg) cr0, options(nostack, preserves_flags)) };
}

/// The physical address of the root page table (PML4) in use.
pub fn root_table() -> u64 {
    root()
}

fn root() -> u64 {
    let cr3: u64;
    // SAFETY: reads a control register.
    unsafe { asm!("mov {}, cr3", out(reg) cr3, options(nomem, nostack, preserves_flags)) };
    cr3 & ADDR_MASK
}

fn table(phys: u64) -> *mut u64 {
    phys as *mut u64
}

fn index(virt: usize, level: u32) -> usize {
    (virt >> (12 + 9 * level)) & 511
}

fn flush(virt: usize) {
    // SAFETY: invalidating a TLB entry is always allowed in ring 0.
    unsafe { asm!("invlpg [{}]", in(reg) virt, options(nostack, preserves_flags)) };
}

fn leaf_bits(access: Access) -> u64 {
    let mut bits = PRESENT;
    if access.write {
        bits |= WRITABLE;
    }
    if !access.execute && super::cpu::has_no_execute() {
        bits |= NO_EXECUTE;
    }
    bits
}

/// The address of the level-0 (4 KiB) entry for `virt`, creating missing
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
        if v & PRESENT == 0 {
            let Some(src) = frames.as_deref_mut() else {
                return Err(MapError::NotMapped);
            };
            let f = src.allocate_frame().ok_or(MapError::OutOfFrames)?;
            // SAFETY: a fresh frame for us alone, identity-mapped.
            unsafe { core::ptr::write_bytes(f as *mut u8, 0, PAGE_SIZE) };
            // SAFETY: as above; the entry now points to a zeroed table.
            unsafe { e.write_volatile(f | PRESENT | WRITABLE) };
            // SAFETY: `f` is a page table now, written only in windows.
            unsafe { protect_new_table(f, src) }?;
            t = f;
        } else if v & HUGE != 0 {
            return Err(MapError::InIdentityMap);
        } else {
            t = v & ADDR_MASK;
        }
    }
    Ok(table(t).wrapping_add(index(virt, 0)))
}

/// Makes the new page-table frame `f` read-only in the identity map, once
/// tables are protected.
///
/// # Safety
/// `f` must be a page-table frame, written only inside [`TableWindow`]s.
unsafe fn protect_new_table(f: u64, frames: &mut dyn FrameSource) -> Result<(), MapError> {
    if !tables_protected() {
        return Ok(());
    }
    // SAFETY: forwarded contract.
    unsafe { set_identity_writable(f, false, Some(frames)) }
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
    let _window = TableWindow::open();
    // SAFETY: forwarded contract.
    let e = unsafe { walk(virt, Some(frames)) }?;
    // SAFETY: `e` is a level-0 entry in an identity-mapped table.
    if unsafe { e.read_volatile() } & PRESENT != 0 {
        return Err(MapError::AlreadyMapped);
    }
    // SAFETY: as above.
    unsafe { e.write_volatile((phys & ADDR_MASK) | leaf_bits(access)) };
    Ok(())
}

/// Maps the 4 KiB page at `virt` to the device registers at `phys`,
/// read-write, uncached (PCD and PWT: UC with the default PAT), never
/// executable (PCI BARs, wherever the firmware put them).
///
/// # Safety
/// `virt` must be a page-aligned address in the dynamic area that no Rust
/// reference points into; `phys` device registers the caller owns.
pub unsafe fn map_device(
    virt: usize,
    phys: u64,
    frames: &mut dyn FrameSource,
) -> Result<(), MapError> {
    let _window = TableWindow::open();
    // SAFETY: forwarded contract.
    let e = unsafe { walk(virt, Some(frames)) }?;
    // SAFETY: `e` is a level-0 entry in an identity-mapped table.
    if unsafe { e.read_volatile() } & PRESENT != 0 {
        return Err(MapError::AlreadyMapped);
    }
    let bits = leaf_bits(Access::DATA) | WRITE_THROUGH | CACHE_DISABLE;
    // SAFETY: as above; a not-present entry is never cached in the TLB.
    unsafe { e.write_volatile((phys & ADDR_MASK) | bits) };
    Ok(())
}

/// Unmaps the 4 KiB page at `virt`; returns the frame it mapped.
///
/// # Safety
/// No Rust reference may point into the page.
pub unsafe fn unmap(virt: usize) -> Result<u64, MapError> {
    let _window = TableWindow::open();
    // SAFETY: forwarded contract.
    let e = unsafe { walk(virt, None) }?;
    // SAFETY: `e` is a level-0 entry in an identity-mapped table.
    let v = unsafe { e.read_volatile() };
    if v & PRESENT == 0 {
        return Err(MapError::NotMapped);
    }
    // SAFETY: as above.
    unsafe { e.write_volatile(0) };
    flush(virt);
    Ok(v & ADDR_MASK)
}

/// Changes what the mapped page at `virt` allows.
///
/// # Safety
/// Removing write access from a page Rust code holds `&mut` to is unsound.
pub unsafe fn protect(virt: usize, access: Access) -> Result<(), MapError> {
    let _window = TableWindow::open();
    // SAFETY: forwarded contract.
    let e = unsafe { walk(virt, None) }?;
    // SAFETY: `e` is a level-0 entry in an identity-mapped table.
    let v = unsafe { e.read_volatile() };
    if v & PRESENT == 0 {
        return Err(MapError::NotMapped);
    }
    // SAFETY: as above.
    unsafe { e.write_volatile((v & ADDR_MASK) | leaf_bits(access)) };
    flush(virt);
    Ok(())
}

/// Makes the identity map's view of frame `phys` writable or read-only,
/// so a frame that holds code is writable nowhere (W^X per frame, not
/// only per mapping). Making it read-only splits the 1 GiB or 2 MiB page
/// around it into smaller ones first, with tables from `frames`; making
/// it writable never splits (a large page is writable already). A frame
/// outside the identity map is left alone.
///
/// # Safety
/// `phys` must be a frame the caller owns, and nothing may write it
/// through the identity map while it is read-only there.
pub unsafe fn set_identity_writable(
    phys: u64,
    writable: bool,
    mut frames: Option<&mut dyn FrameSource>,
) -> Result<(), MapError> {
    let _window = TableWindow::open();
    let virt = (phys & ADDR_MASK) as usize;
    if index(virt, 3) != 0 {
        return Ok(());
    }
    let mut t = root();
    let mut split = false;
    // Tables made by splitting, read-only in turn once tables are
    // protected (levels 2 and 1: at most two).
    let mut new_tables = [0u64; 2];
    let mut made = 0;
    for level in (1..=3).rev() {
        let e = table(t).wrapping_add(index(virt, level));
        // SAFETY: `e` is inside an identity-mapped page table.
        let v = unsafe { e.read_volatile() };
        if v & PRESENT == 0 {
            return Ok(());
        }
        if v & HUGE == 0 {
            t = v & ADDR_MASK;
            continue;
        }
        if writable {
            // A large page of the identity map is writable.
            return Ok(());
        }
        // Split: a table of 512 pages of the next size down, each with
        // the large page's address and permissions.
        let Some(src) = frames.as_deref_mut() else {
            return Err(MapError::InIdentityMap);
        };
        let sub = src.allocate_frame().ok_or(MapError::OutOfFrames)?;
        let span = 1u64 << (12 + 9 * (level - 1));
        let base = v & ADDR_MASK & !((span << 9) - 1);
        let flags = v & !ADDR_MASK & !HUGE;
        let leaf = if level - 1 == 0 { 0 } else { HUGE };
        for i in 0..512u64 {
            // SAFETY: a fresh frame for us alone, identity-mapped.
            unsafe {
                table(sub)
                    .wrapping_add(i as usize)
                    .write_volatile((base + i * span) | flags | leaf)
            };
        }
        // The same translation and permissions, in smaller pieces: the
        // CPU may use either until the flush below.
        // SAFETY: as above; the entry now points to a full table.
        unsafe { e.write_volatile(sub | PRESENT | WRITABLE) };
        split = true;
        if let Some(slot) = new_tables.get_mut(made) {
            *slot = sub;
            made += 1;
        }
        t = sub;
    }
    let e = table(t).wrapping_add(index(virt, 0));
    // SAFETY: a level-0 entry of an identity-mapped table.
    let v = unsafe { e.read_volatile() };
    if v & PRESENT == 0 {
        return Ok(());
    }
    let v = if writable {
        v | WRITABLE
    } else {
        v & !WRITABLE
    };
    // SAFETY: as above.
    unsafe { e.write_volatile(v) };
    if split {
        // Large-page translations and paging-structure caches go too.
        // SAFETY: reloading CR3 with its own value flushes the TLB.
        unsafe { asm!("mov cr3, {}", in(reg) root(), options(nostack)) };
    } else {
        flush(virt);
    }
    for &sub in &new_tables[..made] {
        if let Some(src) = frames.as_deref_mut() {
            // SAFETY: `sub` is a page table of the identity map now. Its
            // own 2 MiB page is split at most once more: this ends.
            unsafe { protect_new_table(sub, src) }?;
        }
    }
    Ok(())
}

/// The physical address `virt` maps to, if any (any page size).
pub fn translate(virt: usize) -> Option<u64> {
    if ((1 << 47)..0xffff_8000_0000_0000).contains(&virt) {
        return None;
    }
    let mut t = root();
    for level in (0..=3).rev() {
        let e = table(t).wrapping_add(index(virt, level));
        // SAFETY: page tables are identity-mapped and only read here.
        let v = unsafe { e.read_volatile() };
        if v & PRESENT == 0 {
            return None;
        }
        if level == 0 || (level <= 2 && v & HUGE != 0) {
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

/// Turns the boot stub's tables into the kernel's: page 0 unmapped (so
/// null pointers fault), the kernel image mapped W^X with 4 KiB pages
/// (text read-execute, read-only data read-only, the rest read-write and
/// not executable), all other memory not executable, and the identity map
/// extended up to `top_of_ram` (at most 512 GiB) with 1 GiB or 2 MiB pages.
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
    let image_end = (&raw const __kernel_end) as u64;
    let nx = if super::cpu::has_no_execute() {
        NO_EXECUTE
    } else {
        0
    };
    let pml4 = table(root());
    let entry = |t: *mut u64, i: usize| t.wrapping_add(i);
    // The boot tables are identity-mapped and only this CPU touches them;
    // PML4[0] -> PDPT -> PD[0..4] map 0..4 GiB with 2 MiB pages.
    // SAFETY: every `e` passed below is an entry of those tables or of a
    // fresh frame from `frames`.
    let read = |e: *mut u64| unsafe { e.read_volatile() };
    // SAFETY: as above.
    let write = |e: *mut u64, v: u64| unsafe { e.write_volatile(v) };
    let pdpt = table(read(pml4) & ADDR_MASK);
    // 2 MiB pages covering page 0 and the image become 4 KiB pages.
    let small_pages = image_end.div_ceil(2 << 20);
    for gib in 0..4usize {
        let pd = table(read(entry(pdpt, gib)) & ADDR_MASK);
        for i in 0..512usize {
            let base = ((gib as u64) << 30) + ((i as u64) << 21);
            let e = entry(pd, i);
            if base >= small_pages << 21 {
                write(e, read(e) | nx);
                continue;
            }
            let pt = frames.allocate_frame().ok_or(MapError::OutOfFrames)?;
            for j in 0..512u64 {
                let phys = base + (j << 12);
                let bits = if phys == 0 {
                    0
                } else if text.contains(&phys) {
                    PRESENT
                } else if rodata.contains(&phys) {
                    PRESENT | nx
                } else {
                    PRESENT | WRITABLE | nx
                };
                write(entry(table(pt), j as usize), phys | bits);
            }
            write(e, pt | PRESENT | WRITABLE);
        }
    }
    let top = top_of_ram.min(512 << 30);
    let mut gib = 4u64;
    while gib << 30 < top {
        let e = entry(pdpt, gib as usize);
        if super::cpu::has_huge_pages() {
            write(e, (gib << 30) | PRESENT | WRITABLE | HUGE | nx);
        } else {
            let f = frames.allocate_frame().ok_or(MapError::OutOfFrames)?;
            for i in 0..512u64 {
                write(
                    entry(table(f), i as usize),
                    ((gib << 30) + (i << 21)) | PRESENT | WRITABLE | HUGE | nx,
                );
            }
            write(e, f | PRESENT | WRITABLE);
        }
        gib += 1;
    }
    // SAFETY: reloading CR3 flushes the TLB; the tables stay valid.
    unsafe { asm!("mov cr3, {}", in(reg) root(), options(nostack)) };
    // From here on every table is read-only in the identity map, and
    // stores into one need a window (CR0.WP, which the loader path may
    // have left clear, on).
    protect_tables();
    // SAFETY: turns write protection on (it may be on already).
    unsafe { set_cr0_write_protect(true) };
    let _window = TableWindow::open();
    // SAFETY: the live tables, protected from their root down; tables
    // made by splits on the way are protected as they are made.
    unsafe { protect_tree(root(), 3, frames) }
}

/// Makes the table `t` of `level` and every table below it read-only in
/// the identity map.
///
/// # Safety
/// `t` is a live page table; a window is open.
unsafe fn protect_tree(t: u64, level: u32, frames: &mut dyn FrameSource) -> Result<(), MapError> {
    // SAFETY: `t` is a page table (contract), from now on written only
    // in windows.
    unsafe { set_identity_writable(t, false, Some(frames)) }?;
    if level == 0 {
        return Ok(());
    }
    for i in 0..512 {
        // SAFETY: an entry of the live table `t`.
        let v = unsafe { table(t).wrapping_add(i).read_volatile() };
        if v & PRESENT != 0 && v & HUGE == 0 {
            // SAFETY: a present entry above level 0 that is no large
            // page points to the next table down.
            unsafe { protect_tree(v & ADDR_MASK, level - 1, frames) }?;
        }
    }
    Ok(())
}

/// Unmaps every 4 KiB page in `[start, end)` (page-aligned, inside the
/// dynamic area), calling `freed` with each frame that was mapped and with
/// each page-table frame that became unused. Skips unmapped parts quickly.
///
/// # Safety
/// No Rust reference may point into the range.
pub unsafe fn unmap_range(start: usize, end: usize, freed: &mut dyn FnMut(u64)) {
    let _window = TableWindow::open();
    if start >= end || start < DYNAMIC_BASE || end > DYNAMIC_END {
        return;
    }
    // SAFETY: forwarded contract; the root table is the kernel's.
    unsafe { unmap_level(root(), 3, 0, start, end, freed) };
    // Freed page-table frames may sit in paging-structure caches.
    // SAFETY: reloading CR3 with its own value flushes the TLB.
    unsafe { asm!("mov cr3, {}", in(reg) root(), options(nostack)) };
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
        if v & PRESENT == 0 || (level > 0 && v & HUGE != 0) {
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
        // SAFETY: a present, non-huge entry points to the next-level table.
        unsafe { unmap_level(v & ADDR_MASK, level - 1, va, start, end, freed) };
        if start <= va && va + span <= end {
            // The whole sub-table was cleared: give its frame back.
            // SAFETY: as above.
            unsafe { e.write_volatile(0) };
            freed(v & ADDR_MASK);
        }
    }
}

/// One page-table page.
#[repr(C, align(4096))]
struct TablePage([u64; 512]);

/// The tables [`with_firmware_map`] switches to: a PML4, a PDPT and (for
/// CPUs without 1 GiB pages) four page directories of 2 MiB pages.
struct FirmwareTables {
    pml4: TablePage,
    pdpt: TablePage,
    pds: [TablePage; 4],
}

/// The firmware-call tables, behind a cell so they can be filled in place.
struct FirmwareTablesCell(core::cell::UnsafeCell<FirmwareTables>);

// SAFETY: only [`with_firmware_map`] touches the tables, on one CPU with
// interrupts off (its contract).
unsafe impl Sync for FirmwareTablesCell {}

static FIRMWARE_TABLES: FirmwareTablesCell =
    FirmwareTablesCell(core::cell::UnsafeCell::new(FirmwareTables {
        pml4: TablePage([0; 512]),
        pdpt: TablePage([0; 512]),
        pds: [
            TablePage([0; 512]),
            TablePage([0; 512]),
            TablePage([0; 512]),
            TablePage([0; 512]),
        ],
    }));

/// Runs `f` on page tables that map the identity range (the first
/// 512 GiB, or the first 4 GiB without 1 GiB pages) readable, writable and
/// executable, the dynamic area as it is, then switches back: for calling
/// UEFI runtime services, whose code lies in firmware memory the kernel's
/// own map keeps not executable.
///
/// # Safety
/// Interrupts must be off, only this CPU may run, and the kernel's image
/// must lie in the identity range (it does: it is loaded below 4 GiB). `f`
/// runs with W^X suspended for the identity range.
pub unsafe fn with_firmware_map<R>(f: impl FnOnce() -> R) -> R {
    let kernel_root = root();
    // SAFETY: one CPU with interrupts off (caller's contract) is the only
    // user of the static, and nothing else borrows it.
    let tables = unsafe { &mut *FIRMWARE_TABLES.0.get() };
    let current = table(kernel_root);
    for (i, e) in tables.pml4.0.iter_mut().enumerate().skip(1) {
        let entry = current.wrapping_add(i);
        // SAFETY: an entry of the live PML4 (one page, `i` < 512).
        *e = unsafe { entry.read_volatile() };
    }
    // The static lies in the kernel image (.bss), which is identity-mapped:
    // its addresses are physical ones.
    let pdpt_phys = (&raw const tables.pdpt) as u64;
    if super::cpu::has_huge_pages() {
        for (gib, e) in tables.pdpt.0.iter_mut().enumerate() {
            *e = ((gib as u64) << 30) | PRESENT | WRITABLE | HUGE;
        }
    } else {
        for (gib, pd) in tables.pds.iter_mut().enumerate() {
            for (i, e) in pd.0.iter_mut().enumerate() {
                *e = (((gib as u64) << 30) + ((i as u64) << 21)) | PRESENT | WRITABLE | HUGE;
            }
            tables.pdpt.0[gib] = (&raw const *pd) as u64 | PRESENT | WRITABLE;
        }
    }
    tables.pml4.0[0] = pdpt_phys | PRESENT | WRITABLE;
    let pml4_phys = (&raw const tables.pml4) as u64;
    // SAFETY: tables that map the identity range (where this code, its
    // stack and the static lie) and the dynamic area as before.
    unsafe { asm!("mov cr3, {}", in(reg) pml4_phys, options(nostack)) };
    let result = f();
    // SAFETY: the kernel's own tables, unchanged meanwhile.
    unsafe { asm!("mov cr3, {}", in(reg) kernel_root, options(nostack)) };
    result
}
