//! `wasi_snapshot_preview1` error numbers.

use core::fmt;

/// A WASI preview1 `errno`, as the guest sees it.
///
/// Only the values Basalt returns are named; the numbering is the one fixed
/// by the `wasi_snapshot_preview1` witx definitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Errno {
    /// Argument list too long.
    TooBig = 1,
    /// Permission denied.
    Acces = 2,
    /// Resource unavailable, or operation would block.
    Again = 6,
    /// Bad file descriptor.
    Badf = 8,
    /// Bad address: a guest pointer or length leaves linear memory.
    Fault = 21,
    /// Invalid argument.
    Inval = 28,
    /// I/O error.
    Io = 29,
    /// Is a directory.
    Isdir = 31,
    /// No such file or directory.
    Noent = 44,
    /// Not enough space.
    Nomem = 48,
    /// Function not supported (yet) by Basalt.
    Nosys = 52,
    /// Not a directory.
    Notdir = 54,
    /// Not a socket.
    Notsock = 57,
    /// Not supported.
    Notsup = 58,
    /// Value too large to be stored in data type.
    Overflow = 61,
    /// Invalid seek (the descriptor is a stream).
    Spipe = 67,
    /// Capabilities insufficient.
    Notcapable = 72,
}

impl Errno {
    /// The raw value returned to the guest.
    pub fn raw(self) -> u16 {
        self as u16
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?} ({})", self.raw())
    }
}
