//! `wasi_snapshot_preview1` error numbers.

use core::fmt;

/// A WASI preview1 `errno`, as the guest sees it.
///
/// Only the values Basalt returns are named; the numbering is the one fixed
/// by the `wasi_snapshot_preview1` witx definitions (`success` is 0,
/// `2big` 1, … `notcapable` 76).
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
    /// Device or resource busy.
    Busy = 10,
    /// Connection reset.
    Connreset = 15,
    /// File exists.
    Exist = 20,
    /// Bad address: a guest pointer or length leaves linear memory.
    Fault = 21,
    /// File too large.
    Fbig = 22,
    /// Illegal byte sequence (a path that is not UTF-8).
    Ilseq = 25,
    /// Invalid argument.
    Inval = 28,
    /// I/O error.
    Io = 29,
    /// Is a directory.
    Isdir = 31,
    /// Too many levels of symbolic links.
    Loop = 32,
    /// Too many open files.
    Mfile = 33,
    /// Too many links.
    Mlink = 34,
    /// Filename too long.
    Nametoolong = 37,
    /// No such file or directory.
    Noent = 44,
    /// No buffer space available.
    Nobufs = 42,
    /// Not enough space.
    Nomem = 48,
    /// No space left on device.
    Nospc = 51,
    /// Function not supported (yet) by Basalt.
    Nosys = 52,
    /// The socket is not connected.
    Notconn = 53,
    /// Not a directory.
    Notdir = 54,
    /// Directory not empty.
    Notempty = 55,
    /// Not a socket.
    Notsock = 57,
    /// Not supported.
    Notsup = 58,
    /// Value too large to be stored in data type.
    Overflow = 61,
    /// Operation not permitted (also: a path that leaves its directory).
    Perm = 63,
    /// Broken pipe: sending after shutting down writing.
    Pipe = 64,
    /// Read-only file system.
    Rofs = 69,
    /// Invalid seek (the descriptor is a stream).
    Spipe = 70,
    /// Cross-device link.
    Xdev = 75,
    /// Capabilities insufficient.
    Notcapable = 76,
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

#[cfg(test)]
mod tests {
    use super::Errno;

    /// The values the witx definitions (and wasi-libc's `__WASI_ERRNO_*`) fix.
    #[test]
    fn numbering_is_the_witx_one() {
        assert_eq!(Errno::Exist.raw(), 20);
        assert_eq!(Errno::Ilseq.raw(), 25);
        assert_eq!(Errno::Nametoolong.raw(), 37);
        assert_eq!(Errno::Noent.raw(), 44);
        assert_eq!(Errno::Notempty.raw(), 55);
        assert_eq!(Errno::Perm.raw(), 63);
        assert_eq!(Errno::Spipe.raw(), 70);
        assert_eq!(Errno::Xdev.raw(), 75);
        assert_eq!(Errno::Notcapable.raw(), 76);
    }
}
