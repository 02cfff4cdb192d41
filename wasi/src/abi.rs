//! Layouts and constants of the `wasi_snapshot_preview1` ABI.

use crate::ctx::Descriptor;

/// `clockid::realtime`
pub const CLOCK_REALTIME: u32 = 0;
/// `clockid::monotonic`
pub const CLOCK_MONOTONIC: u32 = 1;

/// `filetype::character_device`
pub const FILETYPE_CHARACTER_DEVICE: u8 = 2;

/// `rights::fd_read`
pub const RIGHT_FD_READ: u64 = 1 << 1;
/// `rights::fd_fdstat_set_flags`
pub const RIGHT_FD_FDSTAT_SET_FLAGS: u64 = 1 << 3;
/// `rights::fd_write`
pub const RIGHT_FD_WRITE: u64 = 1 << 6;
/// `rights::fd_filestat_get`
pub const RIGHT_FD_FILESTAT_GET: u64 = 1 << 21;
/// `rights::poll_fd_readwrite`
pub const RIGHT_POLL_FD_READWRITE: u64 = 1 << 27;

/// The rights the standard streams start with.
pub fn stdio_rights(desc: Descriptor) -> u64 {
    let common = RIGHT_FD_FDSTAT_SET_FLAGS | RIGHT_FD_FILESTAT_GET | RIGHT_POLL_FD_READWRITE;
    match desc {
        Descriptor::Stdin => common | RIGHT_FD_READ,
        Descriptor::Stdout | Descriptor::Stderr => common | RIGHT_FD_WRITE,
    }
}

/// Size of `fdstat`.
pub const FDSTAT_SIZE: u32 = 24;
/// Size of `filestat`.
pub const FILESTAT_SIZE: u32 = 64;
/// Size of `subscription`.
pub const SUBSCRIPTION_SIZE: u32 = 48;
/// Size of `event`.
pub const EVENT_SIZE: u32 = 32;

/// `eventtype::clock`
pub const EVENTTYPE_CLOCK: u8 = 0;
/// `eventtype::fd_read`
pub const EVENTTYPE_FD_READ: u8 = 1;
/// `eventtype::fd_write`
pub const EVENTTYPE_FD_WRITE: u8 = 2;
/// `subclockflags::subscription_clock_abstime`
pub const SUBCLOCK_ABSTIME: u16 = 1;
