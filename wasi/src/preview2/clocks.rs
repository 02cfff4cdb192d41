//! `wasi:clocks` and `wasi:random`.

use alloc::sync::Arc;
use alloc::vec;

use basalt_runtime::component::{Linker, Value};

use super::io::{PollTarget, new_pollable};
use super::{Types, def, iface, one, trap, u64_arg};
use crate::WasiCtx;

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
            h.cx.check_random_len(n).map_err(|m| trap(&m))?;
            let len = usize::try_from(n).map_err(|_| trap("random bytes: length too large"))?;
            let mut buf = vec![0u8; len];
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
    // One seed per program, drawn on first use: the interface returns the
    // same value on every call, as wasmtime's does.
    def(&mut i, "insecure-seed", get, types, |h, _| {
        let (lo, hi) = match h.cx.insecure_seed {
            Some(seed) => seed,
            None => {
                let (mut lo, mut hi) = ([0u8; 8], [0u8; 8]);
                h.cx.services.entropy.fill(&mut lo);
                h.cx.services.entropy.fill(&mut hi);
                let seed = (u64::from_le_bytes(lo), u64::from_le_bytes(hi));
                h.cx.insecure_seed = Some(seed);
                seed
            }
        };
        one(Value::Tuple(vec![Value::U64(lo), Value::U64(hi)]))
    });
}
