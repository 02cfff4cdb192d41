//! 4-level page tables with a 4 KiB granule and 48-bit virtual addresses
//! (TTBR0 only), laid out as on x86-64.
//!
//! Physical memory is identity-mapped (virtual = physical): RAM as normal
//! memory, wherever the memory map puts it (1 GiB up on QEMU `virt`, from
//! 0 on the Raspberry Pi), the device windows the firmware tables name as
//! device memory, page 0 never, so page-table frames are reached at their
//! physical addresses. Everything else — linear memories, code, stacks,
//! the heap — is mapped page by page in the dynamic area above 512 GiB
//! with [`map`], [`unmap`] and [`protect`].
//!
//! Page tables are read-only in the identity map once
//! [`finish_boot_tables`] returns. The kernel stores into them through
//! the *writer map*: RAM mapped read-write once more in the upper half
//! (TTBR1, at [`WRITER_BASE`]), whose walks are off (TCR_EL1.EPD1) except
//! while a [`TableWindow`] is open, with interrupts masked. A stray or
//! hostile store into a page table outside a window faults like one into
//! kernel text.

use core::arch::asm;

/// The smallest page size.
pub const PAGE_SIZE: usize = 4096;

/// The first virtual address above the identity map: kernel-managed
/// mappings (heap, stacks, wasm memories and code) live at or above it.
pub const DYNAMIC_BASE: usize = 512 << 30;

/// One past the last virtual address the kernel hands out (the same as on
/// x86-64, though TTBR0 covers twice as much).
pub const DYNAMIC_END: usize = 1 << 47;

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

/// Where the writer map puts physical address 0: the bottom of the upper
/// half with a 48-bit TTBR1 range.
pub const WRITER_BASE: usize = 0xffff_0000_0000_0000;

pub use crate::table_window::TableWindow;
use crate::table_window::{protect_tables, tables_protected, window_is_open};

/// TCR_EL1.EPD1: no walks through TTBR1.
const TCR_EPD1: u64 = 1 << 23;
/// TCR_EL1 for TTBR1 walks: T1SZ 16, inner and outer write-back
/// cacheable, inner shareable, 4 KiB granule.
const TCR_TTBR1: u64 = (16 << 16) | (1 << 24) | (1 << 26) | (3 << 28) | (2 << 30);
const TCR_TTBR1_MASK: u64 = (0x3f << 16) | (1 << 22) | (0xff << 24);

/// Opens a [`TableWindow`] on this ISA: masks IRQs and FIQs and turns on
/// walks through TTBR1 (the writer map); returns DAIF for
/// [`window_close`]. Inside, every table address this module computes is
/// a writer-map address.
///
/// # Safety
/// The writer map then reaches all RAM read-write until [`window_close`].
pub(crate) unsafe fn window_open() -> u64 {
    let daif: u64;
    // SAFETY: reads DAIF and masks IRQs and FIQs; EL1.
    unsafe {
        asm!("mrs {}, daif", "msr daifset, #3", out(reg) daif, options(nomem, nostack, preserves_flags))
    };
    // SAFETY: TTBR1's tables (the writer map) are the kernel's.
    unsafe { set_tcr_bits(0, TCR_EPD1) };
    daif
}

/// Closes a [`TableWindow`]: turns TTBR1 walks off, drops the writer
/// map's translations from the TLB, restores DAIF ([`window_open`]'s).
///
/// # Safety
/// Only after [`window_open`], with what it returned.
pub(crate) unsafe fn window_close(daif: u64) {
    // SAFETY: stops walks through TTBR1.
    unsafe { set_tcr_bits(TCR_EPD1, 0) };
    flush_all();
    // SAFETY: restores the interrupt mask from before the window.
    unsafe { asm!("msr daif, {}", in(reg) daif, options(nomem, nostack)) };
}

/// Sets the bits `set` of TCR_EL1 and clears `clear`.
///
/// # Safety
/// The new translation regime must map everything in use.
unsafe fn set_tcr_bits(set: u64, clear: u64) {
    let tcr: u64;
    // SAFETY: reads a system register.
    unsafe { asm!("mrs {}, tcr_el1", out(reg) tcr, options(nomem, nostack, preserves_flags)) };
    // SAFETY: caller's contract; stores to tables are complete first.
    unsafe {
        asm!("dsb ishst", "msr tcr_el1, {}", "isb", in(reg) (tcr | set) & !clear, options(nostack, preserves_flags))
    };
}

/// Whether table addresses are writer-map addresses now.
fn through_writer_map() -> bool {
    window_is_open()
}

/// The physical address of the root page table (TTBR0) in use.
pub fn root_table() -> u64 {
    root()
}

fn root() -> u64 {
    let ttbr: u64;
    // SAFETY: reads a system register.
    unsafe { asm!("mrs {}, ttbr0_el1", out(reg) ttbr, options(nomem, nostack, preserves_flags)) };
    ttbr & ADDR_MASK
}

/// Where the page table at `phys` is reached: through the writer map
/// inside a window, else through the identity map (read-only there once
/// tables are protected).
fn table(phys: u64) -> *mut u64 {
    if through_writer_map() {
        (WRITER_BASE + phys as usize) as *mut u64
    } else {
        phys as *mut u64
    }
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
            publish();
            // SAFETY: as above; the entry now points to a zeroed table.
            unsafe { e.write_volatile(f | VALID | TABLE) };
            // SAFETY: `f` is a page table now, written only in windows.
            unsafe { protect_new_table(f, src) }?;
            t = f;
        } else if v & TABLE == 0 {
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
    let _window = TableWindow::open();
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
    let _window = TableWindow::open();
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
    let _window = TableWindow::open();
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

/// Makes the identity map's view of frame `phys` writable or read-only,
/// so a frame that holds code or a page table is writable nowhere else
/// (W^X per frame, not only per mapping). Making it read-only splits the
/// 1 GiB or 2 MiB block around it into smaller ones first, with tables
/// from `frames` (break-before-make: for the moment between, the block is
/// unmapped, so the switch runs with interrupts masked and touches no
/// memory but the entry, reached through the writer map); making it
/// writable never splits. A frame outside the identity map is left alone.
/// Splits need the writer map, so they fail before the tables are
/// protected.
///
/// # Safety
/// `phys` must be a frame the caller owns, and nothing may write it
/// through the identity map while it is read-only there; one CPU.
pub unsafe fn set_identity_writable(
    phys: u64,
    writable: bool,
    mut frames: Option<&mut dyn FrameSource>,
) -> Result<(), MapError> {
    let _window = TableWindow::open();
    let virt = (phys & ADDR_MASK) as usize;
    if virt >= DYNAMIC_BASE {
        return Ok(());
    }
    // Tables made by splitting, read-only in turn (levels 2 and 3: at
    // most two).
    let mut new_tables = [0u64; 2];
    let mut made = 0;
    let mut t = root();
    for level in (1..=3).rev() {
        let e = table(t).wrapping_add(index(virt, level));
        // SAFETY: `e` is inside a page table, reached in the window.
        let v = unsafe { e.read_volatile() };
        if v & VALID == 0 {
            return Ok(());
        }
        if v & TABLE != 0 {
            t = v & ADDR_MASK;
            continue;
        }
        if writable {
            // A block of RAM in the identity map is writable.
            return Ok(());
        }
        let Some(src) = frames.as_deref_mut().filter(|_| through_writer_map()) else {
            return Err(MapError::InIdentityMap);
        };
        let sub = zeroed(src)?;
        let span = 1u64 << (12 + 9 * (level - 1));
        let block = span << 9;
        let base = v & ADDR_MASK & !(block - 1);
        let attrs = v & !ADDR_MASK & !TABLE;
        // Level-3 entries are pages (bit 1 set); above, blocks.
        let kind = if level - 1 == 0 { TABLE } else { 0 };
        for i in 0..512u64 {
            set(sub, i as usize, (base + i * span) | attrs | kind);
        }
        publish();
        // SAFETY: break-before-make on one entry: invalid, the block's
        // translations gone, then the table; interrupts are masked (the
        // window) and nothing in between touches memory but `e`, which
        // the writer map reaches outside the block.
        unsafe {
            asm!(
                "str xzr, [{entry}]",
                "dsb ishst",
                "tlbi vaae1is, {page}",
                "dsb ish",
                "str {new}, [{entry}]",
                "dsb ishst",
                "isb",
                entry = in(reg) e,
                page = in(reg) virt >> 12,
                new = in(reg) sub | VALID | TABLE,
                options(nostack)
            )
        };
        if let Some(slot) = new_tables.get_mut(made) {
            *slot = sub;
            made += 1;
        }
        t = sub;
    }
    let e = table(t).wrapping_add(index(virt, 0));
    // SAFETY: a level-3 entry of a page table, reached in the window.
    let v = unsafe { e.read_volatile() };
    if v & VALID != 0 {
        // Only a permission bit changes: no break-before-make.
        let v = if writable {
            v & !READ_ONLY
        } else {
            v | READ_ONLY
        };
        // SAFETY: as above.
        unsafe { e.write_volatile(v) };
        flush(virt);
    }
    for &sub in &new_tables[..made] {
        if let Some(src) = frames.as_deref_mut() {
            // SAFETY: `sub` is a page table of the identity map now. Its
            // own 2 MiB block is split at most once more: this ends.
            unsafe { protect_new_table(sub, src) }?;
        }
    }
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

/// Page tables for [`boot_device_window`]: 2 MiB entries for the GiB
/// blocks of the boot stub's map it splits.
#[repr(C, align(4096))]
struct BootL2([[u64; 512]; BOOT_L2_TABLES]);

const BOOT_L2_TABLES: usize = 2;

/// How many of `BOOT_L2`'s tables are in use, and for which GiB each is.
static BOOT_L2_USED: spin::Mutex<[Option<u64>; BOOT_L2_TABLES]> =
    spin::Mutex::new([None; BOOT_L2_TABLES]);

static mut BOOT_L2: BootL2 = BootL2([[0; 512]; BOOT_L2_TABLES]);

/// Makes the device registers `[start, start + len)` device memory
/// (Device-nGnRnE) in the boot stub's map, which maps the first 4 GiB in
/// normal-memory GiB blocks above the first (QEMU `virt`'s device GiB):
/// on a Raspberry Pi 4 the peripherals sit at 0xfc000000-0xff7fffff, in
/// the fourth GiB, and the console is used before the kernel's own tables
/// ([`finish_boot_tables`]) replace the boot map. The GiB block becomes a
/// table of 2 MiB blocks (break-before-make: it must hold nothing in use,
/// so a block holding the kernel image is left alone, and `false`
/// returned), and the 2 MiB blocks the window touches become device
/// memory. Windows already in device memory, or unmapped, are left as
/// they are (`true`).
///
/// # Safety
/// Early boot, boot tables in use, one thread; nothing may use RAM in the
/// 2 MiB blocks the window touches.
pub unsafe fn boot_device_window(start: u64, len: u64) -> bool {
    const GIB: u64 = 1 << 30;
    const BLOCK: u64 = 2 << 20;
    let Some(last) = len.checked_sub(1).and_then(|l| start.checked_add(l)) else {
        return false;
    };
    if last >= 512 * GIB {
        return false;
    }
    let image =
        ((&raw const __text_start) as u64 & !(BLOCK - 1))..((&raw const __kernel_end) as u64);
    let l0 = root();
    // SAFETY: the boot stub's L0 table, identity-mapped.
    let l0e = unsafe { table(l0).read_volatile() };
    if l0e & (VALID | TABLE) != VALID | TABLE {
        return false;
    }
    let l1 = l0e & ADDR_MASK;
    let mut used = BOOT_L2_USED.lock();
    let mut gib = start / GIB;
    while gib <= last / GIB {
        let base = gib * GIB;
        let e = table(l1).wrapping_add(gib as usize);
        // SAFETY: an entry of the boot L1 table.
        let v = unsafe { e.read_volatile() };
        let l2 = if v & VALID == 0 || (v & TABLE == 0 && v & ATTR_NORMAL == 0) {
            // unmapped, or a device block already
            gib += 1;
            continue;
        } else if v & TABLE != 0 {
            v & ADDR_MASK
        } else {
            if image.start < base + GIB && base < image.end {
                return false;
            }
            let Some(slot) = used.iter().position(Option::is_none) else {
                return false;
            };
            used[slot] = Some(gib);
            // SAFETY: a table of the static pool, free until now (slot).
            let t = unsafe { (&raw mut BOOT_L2.0[slot]) as u64 };
            for i in 0..512u64 {
                set(
                    t,
                    i as usize,
                    (base + i * BLOCK) | (v & !ADDR_MASK & !TABLE),
                );
            }
            // Break, then make: the block goes, the table comes.
            // SAFETY: the GiB holds nothing in use (not the image; the
            // caller's contract for the rest).
            unsafe { e.write_volatile(0) };
            flush_all();
            // SAFETY: as above.
            unsafe { e.write_volatile(t | VALID | TABLE) };
            publish();
            t
        };
        let from = start.max(base);
        let to = last.min(base + GIB - 1);
        for i in ((from - base) / BLOCK)..=((to - base) / BLOCK) {
            let at = base + i * BLOCK;
            if image.start < at + BLOCK && at < image.end {
                return false;
            }
            let e = table(l2).wrapping_add(i as usize);
            // SAFETY: an entry of a 2 MiB table of the boot map.
            let v = unsafe { e.read_volatile() };
            if v & VALID == 0 || v & TABLE != 0 || v & ATTR_NORMAL == 0 {
                continue;
            }
            // SAFETY: break-before-make of a block nothing uses (contract).
            unsafe { e.write_volatile(0) };
            flush(at as usize);
            // SAFETY: as above.
            unsafe { e.write_volatile(at | (DEVICE & !TABLE)) };
            publish();
        }
        gib += 1;
    }
    true
}

/// What one page of the identity map holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Unmapped,
    Device,
    Normal,
    /// the kernel's text: read-only, executable
    Text,
    /// the kernel's read-only data
    ReadOnly,
}

impl Kind {
    /// The identity map's entry bits for this kind (0: unmapped).
    fn bits(self) -> u64 {
        match self {
            Kind::Unmapped => 0,
            Kind::Device => DEVICE,
            Kind::Normal => NORMAL | PXN,
            Kind::Text => NORMAL | READ_ONLY,
            Kind::ReadOnly => NORMAL | READ_ONLY | PXN,
        }
    }

    /// The writer map's entry bits for this kind: RAM read-write, never
    /// executable; the kernel's text and read-only data, devices and
    /// holes not at all.
    fn writer_bits(self) -> u64 {
        match self {
            Kind::Normal => NORMAL | PXN,
            Kind::Text | Kind::ReadOnly | Kind::Unmapped | Kind::Device => 0,
        }
    }
}

/// The identity map's layout: RAM (and the image, initrd and firmware
/// data within its span) normal memory, the device windows the firmware
/// tables name Device-nGnRnE, page 0 and everything else unmapped.
struct Layout<'a> {
    ram: core::ops::Range<u64>,
    text: core::ops::Range<u64>,
    rodata: core::ops::Range<u64>,
    devices: &'a [crate::bootinfo::PhysRange],
}

impl Layout<'_> {
    fn kind(&self, page: u64) -> Kind {
        if page < PAGE_SIZE as u64 {
            Kind::Unmapped
        } else if self.text.contains(&page) {
            Kind::Text
        } else if self.rodata.contains(&page) {
            Kind::ReadOnly
        } else if self
            .devices
            .iter()
            .any(|d| d.start & !(PAGE_SIZE as u64 - 1) <= page && page < d.end())
        {
            Kind::Device
        } else if self.ram.contains(&page) {
            Kind::Normal
        } else {
            Kind::Unmapped
        }
    }

    /// Whether `[start, start + len)` holds one kind throughout: no edge
    /// of any range falls strictly inside it.
    fn uniform(&self, start: u64, len: u64) -> bool {
        let end = start + len;
        let inside = |e: u64| start < e && e < end;
        let page = PAGE_SIZE as u64;
        !(inside(page)
            || inside(self.ram.start)
            || inside(self.ram.end)
            || inside(self.text.start)
            || inside(self.text.end)
            || inside(self.rodata.end)
            || self
                .devices
                .iter()
                .any(|d| inside(d.start & !(page - 1)) || inside(d.end().next_multiple_of(page))))
    }

    /// Fills the table `t` of `level` (2: 1 GiB entries, 1: 2 MiB) for
    /// the addresses from `base`, with the entry bits `bits` gives each
    /// kind (0: unmapped), splitting entries that mix kinds.
    fn fill(
        &self,
        t: u64,
        level: u32,
        base: u64,
        bits: fn(Kind) -> u64,
        frames: &mut dyn FrameSource,
    ) -> Result<(), MapError> {
        let span = 1u64 << (12 + 9 * level);
        for i in 0..512u64 {
            let at = base + i * span;
            if self.uniform(at, span) {
                let b = bits(self.kind(at));
                if b != 0 {
                    set(t, i as usize, at | b | if level == 0 { TABLE } else { 0 });
                }
                continue;
            }
            let sub = zeroed(frames)?;
            self.fill(sub, level - 1, at, bits, frames)?;
            set(t, i as usize, sub | VALID | TABLE);
        }
        Ok(())
    }
}

/// Replaces the boot stub's tables with the kernel's, from the memory map
/// and the device windows in `info`: page 0 unmapped (so null pointers
/// fault, also where RAM starts at 0, as on the Raspberry Pi), RAM from
/// the lowest to the highest usable address normal memory, read-write and
/// not executable, the kernel image W^X (text read-execute, read-only data
/// read-only), the device windows Device-nGnRnE; 1 GiB blocks where one
/// kind fills the block, else 2 MiB blocks, else 4 KiB pages. Everything
/// else stays unmapped. Only the first 512 GiB are mapped.
///
/// # Safety
/// Called once, early, while only the boot tables exist and nothing lives
/// in page 0.
pub unsafe fn finish_boot_tables(
    info: &crate::bootinfo::BootInfo,
    frames: &mut dyn FrameSource,
) -> Result<(), MapError> {
    use crate::bootinfo::MemoryKind;
    let text = ((&raw const __text_start) as u64)..((&raw const __text_end) as u64);
    let rodata = text.end..((&raw const __rodata_end) as u64);
    let image_end = (&raw const __kernel_end) as u64;
    // The span of RAM: usable memory and what the loader left in RAM that
    // the kernel keeps reading (ACPI data, the image, the bundle, the
    // device tree or handoff record).
    let mut lo = text.start;
    let mut hi = image_end;
    let mut widen = |r: crate::bootinfo::PhysRange| {
        if r.len > 0 {
            lo = lo.min(r.start);
            hi = hi.max(r.end());
        }
    };
    for r in info.regions() {
        if matches!(
            r.kind,
            MemoryKind::Usable | MemoryKind::AcpiReclaimable | MemoryKind::AcpiNvs
        ) {
            widen(r.range);
        }
    }
    if let Some(initrd) = info.initrd {
        widen(initrd);
    }
    if let Some(dt) = info.device_tree {
        widen(crate::bootinfo::PhysRange { start: dt, len: 1 });
    }
    let page = PAGE_SIZE as u64;
    let layout = Layout {
        ram: (lo & !(page - 1))..hi.next_multiple_of(page).min(512 << 30),
        text,
        rodata,
        devices: info.device_windows(),
    };
    let l0 = zeroed(frames)?;
    let l1 = zeroed(frames)?;
    set(l0, 0, l1 | VALID | TABLE);
    layout.fill(l1, 2, 0, Kind::bits, frames)?;
    // The writer map: RAM once more, read-write, through TTBR1.
    let writer_l0 = zeroed(frames)?;
    let writer_l1 = zeroed(frames)?;
    set(writer_l0, 0, writer_l1 | VALID | TABLE);
    layout.fill(writer_l1, 2, 0, Kind::writer_bits, frames)?;
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
    // TTBR1 gets the writer map, its walks off (EPD1) outside windows.
    // SAFETY: nothing uses the upper half, and its walks are off.
    unsafe {
        asm!("msr ttbr1_el1, {}", "isb", in(reg) writer_l0, options(nostack, preserves_flags))
    };
    // SAFETY: as above; EPD1 stays set.
    unsafe { set_tcr_bits(TCR_TTBR1 | TCR_EPD1, TCR_TTBR1_MASK & !TCR_TTBR1) };
    flush_all();
    // From here on every table, the writer map's too, is read-only in the
    // identity map, and stores into one need a window.
    protect_tables();
    let _window = TableWindow::open();
    // SAFETY: the live tables, protected from their roots down; tables
    // made by splits on the way are protected as they are made.
    unsafe { protect_tree(l0, 3, frames) }?;
    // SAFETY: as above, for the writer map.
    unsafe { protect_tree(writer_l0, 3, frames) }
}

/// Makes the table `t` of `level` (3: the root) and every table below it
/// read-only in the identity map.
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
        if v & (VALID | TABLE) == VALID | TABLE {
            // SAFETY: a table entry above level 3 points to the next
            // table down.
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
