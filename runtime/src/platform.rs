//! What the engine needs of the machine it runs on.
//!
//! The kernel implements [`Platform`] over its page tables; the hosted build
//! ([`host`], `std` feature) over `mmap`/`mprotect`. Fault handling is the
//! other half: a platform's synchronous fault handler calls
//! [`crate::handle_fault`] and, when that says so, resumes at the returned
//! program counter and stack pointer.

use core::fmt;

/// A failure of the platform to provide or change memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformError(pub &'static str);

impl fmt::Display for PlatformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Memory services for linear memories and code.
///
/// Addresses and lengths are multiples of [`Platform::page_size`].
pub trait Platform: Send + Sync {
    /// The page granularity of the other calls.
    fn page_size(&self) -> usize;
    /// Reserves `size` bytes of address space, inaccessible; returns its base.
    fn reserve(&self, size: usize) -> Result<usize, PlatformError>;
    /// Makes `[addr, addr + len)` of a reservation readable and writable,
    /// zero-filled.
    fn commit(&self, addr: usize, len: usize) -> Result<(), PlatformError>;
    /// Makes `[addr, addr + len)` inaccessible again and discards its contents.
    fn decommit(&self, addr: usize, len: usize) -> Result<(), PlatformError>;
    /// Turns committed read-write pages into read-execute pages (code), and
    /// makes the new instructions visible to instruction fetch.
    fn make_executable(&self, addr: usize, len: usize) -> Result<(), PlatformError>;
    /// Gives a whole reservation back.
    fn release(&self, addr: usize, size: usize);
}

#[cfg(feature = "std")]
pub mod host;
