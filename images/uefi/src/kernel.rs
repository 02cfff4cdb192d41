//! Checking the kernel's ISA and putting it where it runs: an x86-64 ELF's
//! `PT_LOAD` segments at their physical addresses, or an arm64 Image at a
//! 2 MiB-aligned base plus its `text_offset`.

use crate::{LoadError, PAGE_SIZE, load_error, pages_for};
use alloc::vec::Vec;
use uefi::Status;
use uefi::boot::{self, AllocateType, MemoryType};
use uefi::mem::memory_map::MemoryMap;

/// The kernel in memory.
#[derive(Debug, Clone, Copy)]
pub struct Loaded {
    /// its first byte (x86-64: the lowest segment; AArch64: base +
    /// text_offset)
    pub start: u64,
    /// its size in memory
    pub len: u64,
    /// where to jump
    pub entry: u64,
}

/// The ISAs a kernel file can be for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// ELF64, `e_machine` 62
    X86_64,
    /// arm64 Image (or an AArch64 ELF, which this loader cannot boot)
    Aarch64,
}

impl Isa {
    fn name(self) -> &'static str {
        match self {
            Isa::X86_64 => "x86_64",
            Isa::Aarch64 => "aarch64",
        }
    }
}

/// The ISA this loader runs on.
#[cfg(target_arch = "x86_64")]
pub const THIS_ISA: Isa = Isa::X86_64;
/// The ISA this loader runs on.
#[cfg(target_arch = "aarch64")]
pub const THIS_ISA: Isa = Isa::Aarch64;

const ELF_MAGIC: &[u8; 4] = b"\x7fELF";
const IMAGE_MAGIC: &[u8; 4] = b"ARM\x64";
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;
const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(off..off.checked_add(2)?)?.try_into().ok()?,
    ))
}
fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}
fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(off..off.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// The ISA a kernel file is for, from its header.
pub fn isa_of(kernel: &[u8]) -> Result<Isa, LoadError> {
    if kernel.get(..4) == Some(ELF_MAGIC) {
        return match u16_at(kernel, 18) {
            Some(EM_X86_64) => Ok(Isa::X86_64),
            Some(EM_AARCH64) => Ok(Isa::Aarch64),
            Some(m) => Err(load_error!(
                "the kernel is an ELF for machine {m}, neither x86_64 nor aarch64: the image is corrupt"
            )),
            None => Err(truncated("its ELF header")),
        };
    }
    if kernel.get(56..60) == Some(IMAGE_MAGIC) {
        return Ok(Isa::Aarch64);
    }
    Err(LoadError::new(
        "the kernel is neither an ELF nor an arm64 Image (bad header): the image is corrupt or truncated; make it again with `basalt image`",
    ))
}

/// Fails unless the kernel is for the ISA this loader runs on.
pub fn check_isa(kernel: &[u8]) -> Result<(), LoadError> {
    let isa = isa_of(kernel)?;
    if isa != THIS_ISA {
        return Err(load_error!(
            "this image holds a kernel for {} but this machine is {}: make the image with `basalt image --arch {}`",
            isa.name(),
            THIS_ISA.name(),
            THIS_ISA.name()
        ));
    }
    Ok(())
}

fn truncated(what: &str) -> LoadError {
    load_error!(
        "the kernel is truncated or corrupt ({what} lies beyond the file's end): make the image again with `basalt image`"
    )
}

/// Loads the kernel for this ISA.
pub fn load(kernel: &[u8]) -> Result<Loaded, LoadError> {
    match THIS_ISA {
        Isa::X86_64 => load_elf(kernel),
        Isa::Aarch64 => load_image(kernel),
    }
}

/// One `PT_LOAD` segment.
#[derive(Debug, Clone, Copy)]
struct Segment {
    offset: u64,
    paddr: u64,
    filesz: u64,
    memsz: u64,
}

/// Loads an x86-64 ELF's `PT_LOAD` segments at their physical addresses;
/// the entry is the descriptor of its `Basalt` entry note.
fn load_elf(elf: &[u8]) -> Result<Loaded, LoadError> {
    if elf.get(4) != Some(&2) || elf.get(5) != Some(&1) {
        return Err(LoadError::new(
            "the kernel is not a little-endian 64-bit ELF: the image is corrupt",
        ));
    }
    let phoff = u64_at(elf, 32).ok_or_else(|| truncated("its ELF header"))?;
    let phentsize = u16_at(elf, 54).ok_or_else(|| truncated("its ELF header"))?;
    let phnum = u16_at(elf, 56).ok_or_else(|| truncated("its ELF header"))?;
    if phentsize < 56 {
        return Err(LoadError::new(
            "the kernel's ELF program headers are corrupt",
        ));
    }
    let mut segments = Vec::new();
    let mut entry = None;
    for i in 0..u64::from(phnum) {
        let at = phoff
            .checked_add(i * u64::from(phentsize))
            .and_then(|a| usize::try_from(a).ok())
            .ok_or_else(|| truncated("a program header"))?;
        let ph = elf
            .get(at..at + 56)
            .ok_or_else(|| truncated("a program header"))?;
        let field = |o: usize| u64_at(ph, o).unwrap_or(0);
        let (kind, offset, filesz) = (u32_at(ph, 0).unwrap_or(0), field(8), field(32));
        let data = offset
            .checked_add(filesz)
            .filter(|&end| end <= elf.len() as u64)
            .and_then(|_| {
                elf.get(usize::try_from(offset).ok()?..usize::try_from(offset + filesz).ok()?)
            })
            .ok_or_else(|| truncated("a segment"))?;
        match kind {
            PT_LOAD => {
                let memsz = field(40);
                if memsz < filesz {
                    return Err(LoadError::new(
                        "the kernel has a segment larger in the file than in memory: the image is corrupt",
                    ));
                }
                segments.push(Segment {
                    offset,
                    paddr: field(24),
                    filesz,
                    memsz,
                });
            }
            PT_NOTE => {
                if let Some(e) = entry_note(data) {
                    entry = Some(e);
                }
            }
            _ => {}
        }
    }
    let entry = entry.ok_or_else(|| {
        LoadError::new(
            "the kernel has no Basalt entry note: it is not a Basalt kernel that boots from UEFI (make the image again with `basalt image`)",
        )
    })?;
    segments.retain(|s| s.memsz > 0);
    if segments.is_empty() {
        return Err(LoadError::new(
            "the kernel has no loadable segments: the image is corrupt",
        ));
    }
    segments.sort_unstable_by_key(|s| s.paddr);

    // Whole pages, with segments that share a page merged into one range.
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for s in &segments {
        let start = s.paddr & !(PAGE_SIZE - 1);
        let end = s
            .paddr
            .checked_add(s.memsz)
            .and_then(|e| e.checked_next_multiple_of(PAGE_SIZE))
            .ok_or_else(|| LoadError::new("the kernel has a segment past the end of memory"))?;
        match ranges.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => ranges.push((start, end)),
        }
    }
    for &(start, end) in &ranges {
        allocate_at(start, end)?;
    }
    for s in &segments {
        let len = usize::try_from(s.memsz).map_err(|_| truncated("a segment"))?;
        // SAFETY: the pages holding [paddr, paddr + memsz) were allocated
        // above for the kernel; UEFI maps memory identity, so the physical
        // address is the pointer. Nothing else refers to them.
        let dest = unsafe { core::slice::from_raw_parts_mut(s.paddr as *mut u8, len) };
        let filesz = s.filesz as usize;
        let src = &elf[s.offset as usize..s.offset as usize + filesz];
        dest[..filesz].copy_from_slice(src);
        dest[filesz..].fill(0);
    }
    let start = ranges.first().map_or(0, |r| r.0);
    let end = ranges.last().map_or(0, |r| r.1);
    Ok(Loaded {
        start,
        len: end - start,
        entry,
    })
}

/// The descriptor of the `Basalt` / `ENTRY_NOTE_TYPE` note in a `PT_NOTE`
/// segment's bytes.
fn entry_note(mut notes: &[u8]) -> Option<u64> {
    while notes.len() >= 12 {
        let namesz = usize::try_from(u32_at(notes, 0)?).ok()?;
        let descsz = usize::try_from(u32_at(notes, 4)?).ok()?;
        let kind = u32_at(notes, 8)?;
        let name_end = 12usize.checked_add(namesz)?;
        let desc_start = name_end.checked_next_multiple_of(4)?;
        let desc_end = desc_start.checked_add(descsz)?;
        let name = notes.get(12..name_end)?;
        let desc = notes.get(desc_start..desc_end)?;
        let name = name.strip_suffix(b"\0").unwrap_or(name);
        if kind == basalt_handoff::ENTRY_NOTE_TYPE && name == basalt_handoff::ENTRY_NOTE_NAME {
            return u64_at(desc, 0);
        }
        notes = notes.get(desc_end.checked_next_multiple_of(4)?..)?;
    }
    None
}

/// Allocates `[start, end)` (page-aligned) as `LOADER_DATA`, or says who
/// holds it.
fn allocate_at(start: u64, end: u64) -> Result<(), LoadError> {
    let pages = pages_for(end - start);
    match boot::allocate_pages(AllocateType::Address(start), MemoryType::LOADER_DATA, pages) {
        Ok(_) => Ok(()),
        Err(e) if e.status() == Status::OUT_OF_RESOURCES => Err(load_error!(
            "out of memory: the kernel needs {:#x}..{:#x} ({} MiB); give the machine more memory",
            start,
            end,
            (end - start) >> 20
        )),
        Err(e) => {
            let held = holders(start, end);
            Err(if held.is_empty() {
                load_error!(
                    "the kernel must be loaded at {start:#x}..{end:#x} but that is not free RAM on this machine ({:?}): give it more memory",
                    e.status()
                )
            } else {
                load_error!(
                    "the kernel must be loaded at {start:#x}..{end:#x} but the firmware holds that memory{held} ({:?}): this firmware cannot boot this kernel",
                    e.status()
                )
            })
        }
    }
}

/// The firmware's memory map entries overlapping `[start, end)` that are
/// not free, as ` (TYPE start..end, …)`.
fn holders(start: u64, end: u64) -> alloc::string::String {
    use core::fmt::Write;
    let mut out = alloc::string::String::new();
    let Ok(map) = boot::memory_map(MemoryType::LOADER_DATA) else {
        return out;
    };
    for d in map.entries() {
        let (s, e) = (d.phys_start, d.phys_start + d.page_count * PAGE_SIZE);
        if s < end && e > start && d.ty != MemoryType::CONVENTIONAL {
            let sep = if out.is_empty() { ": " } else { ", " };
            let _ = write!(out, "{sep}{:?} {s:#x}..{e:#x}", d.ty);
        }
    }
    out
}

/// The arm64 Image boot alignment.
const IMAGE_ALIGN: u64 = 2 << 20;

/// Puts an arm64 Image at a 2 MiB-aligned base + `text_offset`, its
/// `image_size` (or the file's length when 0) zeroed past the file.
fn load_image(image: &[u8]) -> Result<Loaded, LoadError> {
    let text_offset = u64_at(image, 8).ok_or_else(|| truncated("its Image header"))?;
    let image_size = match u64_at(image, 16).ok_or_else(|| truncated("its Image header"))? {
        0 => image.len() as u64,
        n => n,
    };
    if image_size < image.len() as u64 || text_offset > (1 << 30) || image_size > (1 << 40) {
        return Err(LoadError::new(
            "the kernel's arm64 Image header is corrupt (image_size smaller than the file, or absurd sizes): make the image again with `basalt image`",
        ));
    }
    let need = text_offset + image_size;
    let pages = pages_for(need + IMAGE_ALIGN);
    let raw = boot::allocate_pages(AllocateType::AnyPages, MemoryType::LOADER_DATA, pages)
        .map_err(|e| {
            load_error!(
                "out of memory: the kernel needs {} MiB ({:?}); give the machine more memory",
                (need + IMAGE_ALIGN) >> 20,
                e.status()
            )
        })?;
    let raw_start = raw.as_ptr() as u64;
    let base = raw_start.next_multiple_of(IMAGE_ALIGN);
    let start = base + text_offset;
    // Give back what the alignment left over on either side.
    let used_end = (start + image_size).next_multiple_of(PAGE_SIZE);
    let raw_end = raw_start + pages as u64 * PAGE_SIZE;
    if base > raw_start {
        // SAFETY: [raw_start, base) is the start of the allocation above,
        // whole pages that nothing refers to.
        let _ = unsafe { boot::free_pages(raw, pages_for(base - raw_start)) };
    }
    if let Some(tail) = core::ptr::NonNull::new(used_end as *mut u8)
        && raw_end > used_end
    {
        // SAFETY: [used_end, raw_end) is the end of the allocation above,
        // whole pages past the Image that nothing refers to.
        let _ = unsafe { boot::free_pages(tail, pages_for(raw_end - used_end)) };
    }
    let len = usize::try_from(image_size).map_err(|_| truncated("the Image"))?;
    // SAFETY: [base, base + text_offset + image_size) lies inside the
    // pages just allocated (2 MiB extra cover the alignment); identity
    // mapped, owned by nobody else.
    let dest = unsafe { core::slice::from_raw_parts_mut(start as *mut u8, len) };
    dest[..image.len()].copy_from_slice(image);
    dest[image.len()..].fill(0);
    Ok(Loaded {
        start,
        len: image_size,
        entry: start,
    })
}
