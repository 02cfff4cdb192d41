//! Prints, for each standard stream, what `fd_fdstat_get` and
//! `fd_filestat_get` say it is, and whether wasi-libc's `isatty` (a
//! character device without the seek and tell rights) calls it a
//! terminal: one line per stream, the same under every runtime that
//! tells the truth about the same redirections.

#[link(wasm_import_module = "wasi_snapshot_preview1")]
unsafe extern "C" {
    fn fd_fdstat_get(fd: u32, out: *mut u8) -> u16;
    fn fd_filestat_get(fd: u32, out: *mut u8) -> u16;
}

const RIGHT_FD_SEEK: u64 = 1 << 2;
const RIGHT_FD_TELL: u64 = 1 << 5;
const FILETYPE_CHARACTER_DEVICE: u8 = 2;

fn kind(filetype: u8) -> &'static str {
    match filetype {
        0 => "unknown",
        1 => "block-device",
        2 => "character-device",
        3 => "directory",
        4 => "regular-file",
        5 => "socket-dgram",
        6 => "socket-stream",
        7 => "symbolic-link",
        _ => "invalid",
    }
}

fn main() {
    for (fd, name) in [(0, "stdin"), (1, "stdout"), (2, "stderr")] {
        let mut fdstat = [0u8; 24];
        let mut filestat = [0u8; 64];
        // SAFETY: each buffer is as large as the call's result.
        let fdstat_errno = unsafe { fd_fdstat_get(fd, fdstat.as_mut_ptr()) };
        // SAFETY: as above.
        let filestat_errno = unsafe { fd_filestat_get(fd, filestat.as_mut_ptr()) };
        let rights = u64::from_le_bytes(fdstat[8..16].try_into().unwrap());
        let seekable = rights & (RIGHT_FD_SEEK | RIGHT_FD_TELL) != 0;
        let terminal = fdstat_errno == 0 && fdstat[0] == FILETYPE_CHARACTER_DEVICE && !seekable;
        let fdstat_kind = if fdstat_errno == 0 {
            kind(fdstat[0])
        } else {
            "error"
        };
        let filestat_kind = if filestat_errno == 0 {
            kind(filestat[16])
        } else {
            "error"
        };
        println!(
            "{name}: fdstat {fdstat_kind} (errno {fdstat_errno}), filestat {filestat_kind} (errno {filestat_errno}), seek/tell {}, terminal {}",
            if seekable { "yes" } else { "no" },
            if terminal { "yes" } else { "no" },
        );
    }
}
