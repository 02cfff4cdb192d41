//! Layouts and constants of the `wasi_snapshot_preview1` ABI.

use crate::ctx::Descriptor;
use crate::services::FileKind;

/// `clockid::realtime`
pub const CLOCK_REALTIME: u32 = 0;
/// `clockid::monotonic`
pub const CLOCK_MONOTONIC: u32 = 1;
/// `clockid::process_cputime_id`
pub const CLOCK_PROCESS_CPUTIME: u32 = 2;
/// `clockid::thread_cputime_id`
pub const CLOCK_THREAD_CPUTIME: u32 = 3;

/// `filetype::unknown`
pub const FILETYPE_UNKNOWN: u8 = 0;
/// `filetype::block_device`
pub const FILETYPE_BLOCK_DEVICE: u8 = 1;
/// `filetype::character_device`
pub const FILETYPE_CHARACTER_DEVICE: u8 = 2;
/// `filetype::directory`
pub const FILETYPE_DIRECTORY: u8 = 3;
/// `filetype::regular_file`
pub const FILETYPE_REGULAR_FILE: u8 = 4;
/// `filetype::socket_stream`
pub const FILETYPE_SOCKET_STREAM: u8 = 6;
/// `filetype::symbolic_link`
pub const FILETYPE_SYMBOLIC_LINK: u8 = 7;

/// The preview1 `filetype` of a file-system inode.
pub fn filetype(kind: FileKind) -> u8 {
    match kind {
        FileKind::RegularFile => FILETYPE_REGULAR_FILE,
        FileKind::Directory => FILETYPE_DIRECTORY,
        FileKind::SymbolicLink => FILETYPE_SYMBOLIC_LINK,
        FileKind::CharacterDevice => FILETYPE_CHARACTER_DEVICE,
        FileKind::BlockDevice => FILETYPE_BLOCK_DEVICE,
        FileKind::Socket => FILETYPE_SOCKET_STREAM,
        FileKind::Other => FILETYPE_UNKNOWN,
    }
}

/// `rights::fd_datasync`
pub const RIGHT_FD_DATASYNC: u64 = 1 << 0;
/// `rights::fd_read`
pub const RIGHT_FD_READ: u64 = 1 << 1;
/// `rights::fd_seek`
pub const RIGHT_FD_SEEK: u64 = 1 << 2;
/// `rights::fd_fdstat_set_flags`
pub const RIGHT_FD_FDSTAT_SET_FLAGS: u64 = 1 << 3;
/// `rights::fd_sync`
pub const RIGHT_FD_SYNC: u64 = 1 << 4;
/// `rights::fd_tell`
pub const RIGHT_FD_TELL: u64 = 1 << 5;
/// `rights::fd_write`
pub const RIGHT_FD_WRITE: u64 = 1 << 6;
/// `rights::fd_advise`
pub const RIGHT_FD_ADVISE: u64 = 1 << 7;
/// `rights::fd_allocate`
pub const RIGHT_FD_ALLOCATE: u64 = 1 << 8;
/// `rights::path_create_directory`
pub const RIGHT_PATH_CREATE_DIRECTORY: u64 = 1 << 9;
/// `rights::path_create_file`
pub const RIGHT_PATH_CREATE_FILE: u64 = 1 << 10;
/// `rights::path_link_source`
pub const RIGHT_PATH_LINK_SOURCE: u64 = 1 << 11;
/// `rights::path_link_target`
pub const RIGHT_PATH_LINK_TARGET: u64 = 1 << 12;
/// `rights::path_open`
pub const RIGHT_PATH_OPEN: u64 = 1 << 13;
/// `rights::fd_readdir`
pub const RIGHT_FD_READDIR: u64 = 1 << 14;
/// `rights::path_readlink`
pub const RIGHT_PATH_READLINK: u64 = 1 << 15;
/// `rights::path_rename_source`
pub const RIGHT_PATH_RENAME_SOURCE: u64 = 1 << 16;
/// `rights::path_rename_target`
pub const RIGHT_PATH_RENAME_TARGET: u64 = 1 << 17;
/// `rights::path_filestat_get`
pub const RIGHT_PATH_FILESTAT_GET: u64 = 1 << 18;
/// `rights::path_filestat_set_size`
pub const RIGHT_PATH_FILESTAT_SET_SIZE: u64 = 1 << 19;
/// `rights::path_filestat_set_times`
pub const RIGHT_PATH_FILESTAT_SET_TIMES: u64 = 1 << 20;
/// `rights::fd_filestat_get`
pub const RIGHT_FD_FILESTAT_GET: u64 = 1 << 21;
/// `rights::fd_filestat_set_size`
pub const RIGHT_FD_FILESTAT_SET_SIZE: u64 = 1 << 22;
/// `rights::fd_filestat_set_times`
pub const RIGHT_FD_FILESTAT_SET_TIMES: u64 = 1 << 23;
/// `rights::path_symlink`
pub const RIGHT_PATH_SYMLINK: u64 = 1 << 24;
/// `rights::path_remove_directory`
pub const RIGHT_PATH_REMOVE_DIRECTORY: u64 = 1 << 25;
/// `rights::path_unlink_file`
pub const RIGHT_PATH_UNLINK_FILE: u64 = 1 << 26;
/// `rights::poll_fd_readwrite`
pub const RIGHT_POLL_FD_READWRITE: u64 = 1 << 27;
/// `rights::sock_shutdown`
pub const RIGHT_SOCK_SHUTDOWN: u64 = 1 << 28;
/// `rights::sock_accept`
pub const RIGHT_SOCK_ACCEPT: u64 = 1 << 29;

/// The rights that mean something on a socket (listening or connected).
pub const SOCKET_RIGHTS: u64 = RIGHT_FD_READ
    | RIGHT_FD_WRITE
    | RIGHT_FD_FDSTAT_SET_FLAGS
    | RIGHT_FD_FILESTAT_GET
    | RIGHT_POLL_FD_READWRITE
    | RIGHT_SOCK_SHUTDOWN
    | RIGHT_SOCK_ACCEPT;

/// The rights that mean something on a regular file.
pub const FILE_RIGHTS: u64 = RIGHT_FD_DATASYNC
    | RIGHT_FD_READ
    | RIGHT_FD_SEEK
    | RIGHT_FD_FDSTAT_SET_FLAGS
    | RIGHT_FD_SYNC
    | RIGHT_FD_TELL
    | RIGHT_FD_WRITE
    | RIGHT_FD_ADVISE
    | RIGHT_FD_ALLOCATE
    | RIGHT_FD_FILESTAT_GET
    | RIGHT_FD_FILESTAT_SET_SIZE
    | RIGHT_FD_FILESTAT_SET_TIMES
    | RIGHT_POLL_FD_READWRITE;

/// The rights that mean something on a directory.
pub const DIRECTORY_RIGHTS: u64 = RIGHT_FD_FDSTAT_SET_FLAGS
    | RIGHT_FD_SYNC
    | RIGHT_FD_DATASYNC
    | RIGHT_PATH_CREATE_DIRECTORY
    | RIGHT_PATH_CREATE_FILE
    | RIGHT_PATH_LINK_SOURCE
    | RIGHT_PATH_LINK_TARGET
    | RIGHT_PATH_OPEN
    | RIGHT_FD_READDIR
    | RIGHT_PATH_READLINK
    | RIGHT_PATH_RENAME_SOURCE
    | RIGHT_PATH_RENAME_TARGET
    | RIGHT_PATH_FILESTAT_GET
    | RIGHT_PATH_FILESTAT_SET_SIZE
    | RIGHT_PATH_FILESTAT_SET_TIMES
    | RIGHT_FD_FILESTAT_GET
    | RIGHT_FD_FILESTAT_SET_TIMES
    | RIGHT_PATH_SYMLINK
    | RIGHT_PATH_REMOVE_DIRECTORY
    | RIGHT_PATH_UNLINK_FILE;

/// The rights the standard streams start with.
pub fn stdio_rights(desc: &Descriptor) -> u64 {
    let common = RIGHT_FD_FDSTAT_SET_FLAGS | RIGHT_FD_FILESTAT_GET | RIGHT_POLL_FD_READWRITE;
    match desc {
        Descriptor::Stdin => common | RIGHT_FD_READ,
        _ => common | RIGHT_FD_WRITE,
    }
}

/// `lookupflags::symlink_follow`
pub const LOOKUP_SYMLINK_FOLLOW: u32 = 1;

/// `oflags::creat`
pub const OFLAGS_CREAT: u16 = 1;
/// `oflags::directory`
pub const OFLAGS_DIRECTORY: u16 = 2;
/// `oflags::excl`
pub const OFLAGS_EXCL: u16 = 4;
/// `oflags::trunc`
pub const OFLAGS_TRUNC: u16 = 8;

/// `fdflags::append`
pub const FDFLAGS_APPEND: u16 = 1;
/// `fdflags::dsync`
pub const FDFLAGS_DSYNC: u16 = 2;
/// `fdflags::nonblock`
pub const FDFLAGS_NONBLOCK: u16 = 4;
/// `fdflags::rsync`
pub const FDFLAGS_RSYNC: u16 = 8;
/// `fdflags::sync`
pub const FDFLAGS_SYNC: u16 = 16;

/// `fstflags::atim`
pub const FSTFLAGS_ATIM: u16 = 1;
/// `fstflags::atim_now`
pub const FSTFLAGS_ATIM_NOW: u16 = 2;
/// `fstflags::mtim`
pub const FSTFLAGS_MTIM: u16 = 4;
/// `fstflags::mtim_now`
pub const FSTFLAGS_MTIM_NOW: u16 = 8;

/// `whence::set`
pub const WHENCE_SET: u8 = 0;
/// `whence::cur`
pub const WHENCE_CUR: u8 = 1;
/// `whence::end`
pub const WHENCE_END: u8 = 2;

/// `preopentype::dir`
pub const PREOPENTYPE_DIR: u8 = 0;

/// Size of `fdstat`.
pub const FDSTAT_SIZE: u32 = 24;
/// Size of `filestat`.
pub const FILESTAT_SIZE: u32 = 64;
/// Size of the fixed part of `dirent` (the name follows).
pub const DIRENT_SIZE: u32 = 24;
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
/// `eventrwflags::fd_readwrite_hangup`
pub const EVENTRWFLAGS_HANGUP: u16 = 1;

/// `riflags::recv_peek`
pub const RIFLAGS_RECV_PEEK: u16 = 1;
/// `riflags::recv_waitall`
pub const RIFLAGS_RECV_WAITALL: u16 = 2;
/// `sdflags::rd`
pub const SDFLAGS_RD: u8 = 1;
/// `sdflags::wr`
pub const SDFLAGS_WR: u8 = 2;
