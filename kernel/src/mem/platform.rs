//! The runtime's [`Platform`] over the kernel's page tables: linear
//! memories, code and stacks get address-space reservations above 1 TiB;
//! only committed pages are backed by frames.
#![allow(unsafe_code)]

use alloc::vec::Vec;

use basalt_arch::paging::{self, Access, PAGE_SIZE};
use basalt_runtime::platform::{Platform, PlatformError};
use spin::Mutex;

/// Reservations start at 1 TiB.
const RESERVE_BASE: usize = 1 << 40;
/// Unmapped space left between reservations.
const GAP: usize = 64 << 10;

struct Areas {
    next: usize,
    free: Vec<(usize, usize)>,
}

static AREAS: Mutex<Areas> = Mutex::new(Areas {
    next: RESERVE_BASE,
    free: Vec::new(),
});

/// Reserves `size` bytes (page multiple) of unmapped address space.
pub fn reserve_area(size: usize) -> Option<usize> {
    let size = size.next_multiple_of(PAGE_SIZE);
    let mut a = AREAS.lock();
    if let Some(i) = a.free.iter().position(|(_, s)| *s == size) {
        return Some(a.free.swap_remove(i).0);
    }
    let base = a.next;
    let next = base.checked_add(size)?.checked_add(GAP)?;
    if next > paging::DYNAMIC_END {
        return None;
    }
    a.next = next;
    Some(base)
}

/// Gives back an area [`reserve_area`] handed out (unmapped).
pub fn release_area(base: usize, size: usize) {
    AREAS
        .lock()
        .free
        .push((base, size.next_multiple_of(PAGE_SIZE)));
}

/// The kernel's memory services for the wasm runtime.
pub struct KernelPlatform;

/// The platform the kernel's engine uses.
pub static KERNEL_PLATFORM: KernelPlatform = KernelPlatform;

fn err(e: super::MemError) -> PlatformError {
    PlatformError(match e {
        super::MemError::OutOfMemory => "out of physical memory",
        super::MemError::BadRange => "address range outside a reservation",
        super::MemError::NoMemoryMap => "no memory map",
        super::MemError::Map(_) => "page-table update failed",
    })
}

impl Platform for KernelPlatform {
    fn page_size(&self) -> usize {
        PAGE_SIZE
    }

    fn reserve(&self, size: usize) -> Result<usize, PlatformError> {
        reserve_area(size).ok_or(PlatformError("virtual address space exhausted"))
    }

    fn commit(&self, addr: usize, len: usize) -> Result<(), PlatformError> {
        // SAFETY: reservations handed out by `reserve` are referenced only
        // through the runtime's raw pointers, which expect the change.
        unsafe { super::map_zeroed_for(addr, len, Access::DATA, super::Pool::Program) }.map_err(err)
    }

    fn decommit(&self, addr: usize, len: usize) -> Result<(), PlatformError> {
        // SAFETY: as in `commit`; the runtime stops using the pages first.
        unsafe { super::unmap(addr, len) }.map_err(err)
    }

    fn make_executable(&self, addr: usize, len: usize) -> Result<(), PlatformError> {
        // SAFETY: code pages are written before this and never again
        // (W^X).
        unsafe { super::protect(addr, len, Access::CODE) }.map_err(err)?;
        // Instruction fetch sees the stores (a no-op where the ISA keeps
        // them coherent, as x86-64 does).
        basalt_arch::cpu::sync_instruction_cache(addr, len);
        Ok(())
    }

    fn release(&self, addr: usize, size: usize) {
        // SAFETY: the runtime releases a reservation only when done with it.
        if unsafe { super::unmap(addr, size.next_multiple_of(PAGE_SIZE)) }.is_ok() {
            release_area(addr, size);
        }
    }
}
