//! Times WASI 0.2 host calls from inside the program (`bench/wasi_p2.py`
//! runs it under Basalt and under `wasmtime run`).
//!
//! `hostcall [N] [BYTES]` makes, each `N` times (default 100,000):
//! - `wasi:io/streams` `output-stream.blocking-write-and-flush` on stdout
//!   with a `BYTES`-long (default 1024) `list<u8>` — run it with stdout
//!   sent to `/dev/null`;
//! - `wasi:filesystem/types` `descriptor.stat-at` on the first preopened
//!   directory with a `BYTES`-long `string` path, `./` repeated, which
//!   names the directory itself (skipped without a preopen);
//! - `wasi:clocks/monotonic-clock` `now` (a host call with no argument,
//!   the floor);
//!
//! and prints on stderr one line `{"write_ns": W, "stat_ns": S, "now_ns":
//! C, "calls": N, "bytes": BYTES}`: nanoseconds per call, measured with
//! the monotonic clock around each loop (`stat_ns` is `null` without a
//! preopen).
//!
//! The imports are declared by hand, as the Canonical ABI lowers them, so
//! nothing but the host call itself is in the loop (no libc, no buffering);
//! `wasm-component-ld` finds their types in the WASI 0.2 world the standard
//! library already imports.

use std::process::ExitCode;

#[link(wasm_import_module = "wasi:cli/stdout@0.2.0")]
unsafe extern "C" {
    /// `get-stdout: func() -> output-stream`: an owned handle.
    #[link_name = "get-stdout"]
    fn get_stdout() -> i32;
}

#[link(wasm_import_module = "wasi:io/streams@0.2.0")]
unsafe extern "C" {
    /// `blocking-write-and-flush: func(contents: list<u8>) ->
    /// result<_, stream-error>`, lowered: the borrowed stream, the list's
    /// address and length, and where to store the result (3 flat values).
    #[link_name = "[method]output-stream.blocking-write-and-flush"]
    fn blocking_write_and_flush(stream: i32, ptr: *const u8, len: usize, ret: *mut u32);
}

#[link(wasm_import_module = "wasi:filesystem/preopens@0.2.0")]
unsafe extern "C" {
    /// `get-directories: func() -> list<tuple<descriptor, string>>`,
    /// lowered: where to store the list's address and length; the host
    /// allocates the list through the module's `cabi_realloc`.
    #[link_name = "get-directories"]
    fn get_directories(ret: *mut u32);
}

#[link(wasm_import_module = "wasi:filesystem/types@0.2.0")]
unsafe extern "C" {
    /// `stat-at: func(path-flags: path-flags, path: string) ->
    /// result<descriptor-stat, error-code>`, lowered: the borrowed
    /// descriptor, the flags, the string's address and length, and where
    /// to store the result (a discriminant, then the payload at offset 8).
    #[link_name = "[method]descriptor.stat-at"]
    fn stat_at(dir: i32, flags: i32, ptr: *const u8, len: usize, ret: *mut u64);
}

#[link(wasm_import_module = "wasi:clocks/monotonic-clock@0.2.0")]
unsafe extern "C" {
    /// `now: func() -> instant`, nanoseconds.
    #[link_name = "now"]
    fn now() -> u64;
}

/// The first preopened directory's descriptor, if there is one.
fn first_preopen() -> Option<i32> {
    let mut list = [0u32; 2];
    // SAFETY: `list` has room for the list's address and length.
    unsafe { get_directories(list.as_mut_ptr()) };
    let [ptr, len] = list;
    if len == 0 {
        return None;
    }
    // SAFETY: the host stored `len` > 0 elements of 12 bytes (descriptor,
    // name address, name length) at `ptr`, in this program's memory.
    Some(unsafe { *(ptr as usize as *const i32) })
}

/// Stats `path` under `dir` once (following no symlinks); `false` if the
/// call returns an error.
fn stat(dir: i32, path: &str) -> bool {
    // 8-aligned room for `result<descriptor-stat, error-code>`.
    let mut ret = [0u64; 16];
    // SAFETY: `path` is live for the call and `ret` is large and aligned
    // enough for the result, as the lowered signature requires.
    unsafe { stat_at(dir, 0, path.as_ptr(), path.len(), ret.as_mut_ptr()) };
    ret[0] & 0xff == 0
}

/// Writes `data` to `stream` once; `false` if the stream reports an error.
fn write(stream: i32, data: &[u8]) -> bool {
    let mut ret = [0u32; 3];
    // SAFETY: `data` is live for the call and `ret` has room for the
    // result's three flat values, as the lowered signature requires.
    unsafe { blocking_write_and_flush(stream, data.as_ptr(), data.len(), ret.as_mut_ptr()) };
    ret[0] == 0
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parse = |i: usize, default: u64| args.get(i).map_or(Some(default), |s| s.parse().ok());
    let (Some(calls), Some(bytes)) = (parse(0, 100_000), parse(1, 1024)) else {
        eprintln!("usage: hostcall [N] [BYTES]");
        return ExitCode::from(2);
    };
    let data: Vec<u8> = (0..bytes).map(|i| b'a' + (i % 26) as u8).collect();
    // SAFETY: a call without arguments.
    let stdout = unsafe { get_stdout() };
    // SAFETY: calls without arguments.
    let t0 = unsafe { now() };
    for _ in 0..calls {
        if !write(stdout, &data) {
            eprintln!("hostcall: writing to stdout failed");
            return ExitCode::FAILURE;
        }
    }
    // SAFETY: as above.
    let t1 = unsafe { now() };
    let write_ns = (t1 - t0) as f64 / calls.max(1) as f64;
    // A path of `bytes` bytes that names the directory itself: `./` again
    // and again, so the host reads all of it and the call succeeds.
    let path = "./".repeat((bytes as usize / 2).max(1));
    let stat_ns = match first_preopen() {
        Some(dir) => {
            // SAFETY: as above.
            let s0 = unsafe { now() };
            for _ in 0..calls {
                if !stat(dir, &path) {
                    eprintln!("hostcall: stat-at failed");
                    return ExitCode::FAILURE;
                }
            }
            // SAFETY: as above.
            let s1 = unsafe { now() };
            format!("{:.1}", (s1 - s0) as f64 / calls.max(1) as f64)
        }
        None => "null".to_string(),
    };
    // SAFETY: as above.
    let t2 = unsafe { now() };
    let mut sink = 0u64;
    for _ in 0..calls {
        // SAFETY: as above.
        sink = sink.wrapping_add(unsafe { now() });
    }
    // SAFETY: as above.
    let t3 = unsafe { now() };
    std::hint::black_box(sink);
    eprintln!(
        "{{\"write_ns\": {write_ns:.1}, \"stat_ns\": {stat_ns}, \"now_ns\": {:.1}, \"calls\": {calls}, \"bytes\": {bytes}}}",
        (t3 - t2) as f64 / calls.max(1) as f64
    );
    ExitCode::SUCCESS
}
