//! `wasi:clocks` and `wasi:random`.

use alloc::sync::Arc;
use alloc::vec;

use basalt_runtime::component::{Linker, Value};

use super::io::{PollTarget, new_pollable};
use super::{Types, def, iface, one, trap, u64_arg};
use crate::WasiCtx;

/// The most bytes one `get-random-bytes` may ask for: a guest cannot make
/// the host allocate without bound.
pub const MAX_RANDOM_BYTES: u64 = 64 << 20;

fn datetime(ns: u64) -> Value {
    Value::Record(vec![
        Value::U64(ns / 1_000_000_000),
        Value::U32((ns % 1_000_000_000) as u32),
    ])
}

pub(super) fn add<T: 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut WasiCtx,
    types: &Arc<Types>,
) {
    let mut i = linker.instance(&iface("clocks", "monotonic-clock"));
    def(&mut i, "now", get, types, |h, _| {
        one(Value::U64(h.cx.services.clocks.monotonic_ns()))
    });
    def(&mut i, "resolution", get, types, |h, _| {
        one(Value::U64(h.cx.services.clocks.resolution_ns()))
    });
    def(&mut i, "subscribe-instant", get, types, |h, a| {
        new_pollable(h, PollTarget::Deadline(u64_arg(a, 0)?))
    });
    def(&mut i, "subscribe-duration", get, types, |h, a| {
        let at =
            h.cx.services
                .clocks
                .monotonic_ns()
                .saturating_add(u64_arg(a, 0)?);
        new_pollable(h, PollTarget::Deadline(at))
    });

    let mut i = linker.instance(&iface("clocks", "wall-clock"));
    def(&mut i, "now", get, types, |h, _| {
        one(datetime(h.cx.services.clocks.realtime_ns()))
    });
    def(&mut i, "resolution", get, types, |h, _| {
        one(datetime(h.cx.services.clocks.resolution_ns()))
    });

    for name in ["random", "insecure"] {
        let mut i = linker.instance(&iface("random", name));
        let bytes_fn = if name == "random" {
            "get-random-bytes"
        } else {
            "get-insecure-random-bytes"
        };
        let u64_fn = if name == "random" {
            "get-random-u64"
        } else {
            "get-insecure-random-u64"
        };
        def(&mut i, bytes_fn, get, types, |h, a| {
            let n = u64_arg(a, 0)?;
            if n > MAX_RANDOM_BYTES {
                return Err(trap(
                    "a request for more random bytes than the host allows (64 MiB)",
                ));
            }
            let mut buf = vec![0u8; n as usize];
            h.cx.services.entropy.fill(&mut buf);
            one(Value::Bytes(buf))
        });
        def(&mut i, u64_fn, get, types, |h, _| {
            let mut b = [0u8; 8];
            h.cx.services.entropy.fill(&mut b);
            one(Value::U64(u64::from_le_bytes(b)))
        });
    }
    let mut i = linker.instance(&iface("random", "insecure-seed"));
    def(&mut i, "insecure-seed", get, types, |h, _| {
        let mut b = [0u8; 16];
        h.cx.services.entropy.fill(&mut b);
        let lo = u64::from_le_bytes(b[..8].try_into().unwrap_or_default());
        let hi = u64::from_le_bytes(b[8..].try_into().unwrap_or_default());
        one(Value::Tuple(vec![Value::U64(lo), Value::U64(hi)]))
    });
}
