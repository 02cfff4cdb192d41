//! Times WASI 0.2 host calls from inside the program (`bench/wasi_p2.py`
//! runs it under Basalt and under `wasmtime run`).
//!
//! `hostcall [N] [BYTES]` makes `N` calls (default 100,000) of
//! `wasi:io/streams` `output-stream.blocking-write-and-flush` on stdout,
//! each with a `BYTES`-long (default 1024) `list<u8>` argument — run it
//! with stdout sent to `/dev/null` — and `N` calls of
//! `wasi:clocks/monotonic-clock` `now` (a host call with no argument, the
//! floor), and prints on stderr one line
//! `{"write_ns": W, "now_ns": C, "calls": N, "bytes": BYTES}`: nanoseconds
//! per call, measured with the monotonic clock around each loop.
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

#[link(wasm_import_module = "wasi:clocks/monotonic-clock@0.2.0")]
unsafe extern "C" {
    /// `now: func() -> instant`, nanoseconds.
    #[link_name = "now"]
    fn now() -> u64;
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
    let mut sink = 0u64;
    for _ in 0..calls {
        // SAFETY: as above.
        sink = sink.wrapping_add(unsafe { now() });
    }
    // SAFETY: as above.
    let t2 = unsafe { now() };
    std::hint::black_box(sink);
    let per = |a: u64, b: u64| (b - a) as f64 / calls.max(1) as f64;
    eprintln!(
        "{{\"write_ns\": {:.1}, \"now_ns\": {:.1}, \"calls\": {calls}, \"bytes\": {bytes}}}",
        per(t0, t1),
        per(t1, t2)
    );
    ExitCode::SUCCESS
}
