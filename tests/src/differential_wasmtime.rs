//! Differential testing of what wasmi does not implement: GC (structs,
//! arrays, `i31`, casts), typed function references and exception
//! handling, with wasmtime (the crate, Cranelift-compiled) as the oracle.
//! A random valid module from `wasm-smith` with those proposals on runs in
//! both engines; every exported function whose parameters can all be
//! zero or null is called, and results (references by nullness), traps,
//! uncaught exceptions, exported globals and memories must agree.
//!
//! Used by `tests/tests/differential.rs` (a bounded run) and the
//! `cargo fuzz` target `differential_wasmtime` in `fuzz/`.

use arbitrary::Unstructured;
use basalt_runtime::{Config, Engine, Error, Extern, Linker, Module, Store, TrapKind, Val};

use crate::differential::{MEMORY_LIMIT, Plain, Verdict, basalt_trap, from_basalt};

/// The `wasm-smith` configuration: Wasm 2.0 with GC (and so typed function
/// references), exception handling and tail calls, no SIMD (wasmi's check
/// covers it), deterministic NaNs, bounded size, no imports.
fn smith_config() -> wasm_smith::Config {
    wasm_smith::Config {
        max_imports: 0,
        min_funcs: 1,
        max_funcs: 12,
        max_instructions: 200,
        max_memories: 1,
        max_tables: 2,
        max_table_elements: 1000,
        max_memory32_bytes: 16 << 20,
        max_memory64_bytes: 16 << 20,
        max_type_size: 200,
        bulk_memory_enabled: true,
        reference_types_enabled: true,
        gc_enabled: true,
        exceptions_enabled: true,
        simd_enabled: false,
        relaxed_simd_enabled: false,
        multi_value_enabled: true,
        saturating_float_to_int_enabled: true,
        sign_extension_ops_enabled: true,
        threads_enabled: false,
        tail_call_enabled: true,
        memory64_enabled: false,
        extended_const_enabled: true,
        wide_arithmetic_enabled: false,
        custom_page_sizes_enabled: false,
        shared_everything_threads_enabled: false,
        canonicalize_nans: true,
        export_everything: true,
        allow_start_export: true,
        ..wasm_smith::Config::default()
    }
}

/// Builds the module of one case from fuzzer bytes.
pub fn module_from(data: &[u8]) -> Option<Vec<u8>> {
    let mut u = Unstructured::new(data);
    let mut module = wasm_smith::Module::new(smith_config(), &mut u).ok()?;
    module.ensure_termination(5_000).ok()?;
    Some(module.to_bytes())
}

/// The oracle's engine: the same proposals, Basalt's limits, and no
/// signal handlers (Basalt's own catch its guard-page faults in this
/// process; wasmtime then checks bounds explicitly).
fn oracle_engine() -> wasmtime::Result<wasmtime::Engine> {
    let mut c = wasmtime::Config::new();
    c.wasm_gc(true)
        .wasm_function_references(true)
        .wasm_exceptions(true)
        .wasm_tail_call(true)
        .wasm_extended_const(true)
        .wasm_reference_types(true)
        .wasm_bulk_memory(true)
        .wasm_multi_value(true)
        .wasm_simd(false)
        .wasm_relaxed_simd(false)
        .signals_based_traps(false)
        .memory_reservation(0)
        .memory_guard_size(0)
        .memory_may_move(true)
        .max_wasm_stack(512 << 10);
    // (Without signals wasmtime turns Cranelift's spectre-mitigated
    // bounds checks off itself: they rely on faults.)
    wasmtime::Engine::new(&c)
}

/// A trap kind as [`basalt_trap`] names it, from a wasmtime error.
fn wasmtime_trap(e: &wasmtime::Error) -> &'static str {
    use wasmtime::Trap as T;
    if e.downcast_ref::<wasmtime::ThrownException>().is_some() {
        return "exception";
    }
    match e.downcast_ref::<T>() {
        Some(T::UnreachableCodeReached) => "unreachable",
        Some(T::MemoryOutOfBounds) => "memory",
        Some(T::TableOutOfBounds) => "table",
        Some(T::IndirectCallToNull) => "null",
        Some(T::IntegerDivisionByZero) => "div0",
        Some(T::IntegerOverflow) => "overflow",
        Some(T::BadConversionToInteger) => "conversion",
        Some(T::StackOverflow) => "stack",
        Some(T::BadSignature) => "signature",
        Some(T::NullReference) => "nullref",
        Some(T::CastFailure) => "cast",
        Some(T::ArrayOutOfBounds) => "array",
        Some(T::AllocationTooLarge) => "gc-heap",
        Some(_) => "other",
        None => {
            if e.to_string().contains("GC heap") {
                "gc-heap"
            } else {
                "error"
            }
        }
    }
}

fn from_wasmtime(v: &wasmtime::Val) -> Plain {
    match v {
        wasmtime::Val::I32(x) => Plain::I32(*x),
        wasmtime::Val::I64(x) => Plain::I64(*x),
        wasmtime::Val::F32(x) => Plain::F32(*x),
        wasmtime::Val::F64(x) => Plain::F64(*x),
        wasmtime::Val::V128(x) => Plain::V128(x.as_u128()),
        wasmtime::Val::FuncRef(r) => Plain::Ref(r.is_some()),
        wasmtime::Val::ExternRef(r) => Plain::Ref(r.is_some()),
        wasmtime::Val::AnyRef(r) => Plain::Ref(r.is_some()),
        wasmtime::Val::ExnRef(r) => Plain::Ref(r.is_some()),
        wasmtime::Val::ContRef(r) => Plain::Ref(r.is_some()),
    }
}

/// Zero or null of `ty` in both engines; `None` for a non-nullable
/// reference (no value can be made without the module's help).
fn zero(ty: &wasmtime::ValType) -> Option<(Val, wasmtime::Val)> {
    use wasmtime::HeapType as H;
    Some(match ty {
        wasmtime::ValType::I32 => (Val::I32(0), wasmtime::Val::I32(0)),
        wasmtime::ValType::I64 => (Val::I64(0), wasmtime::Val::I64(0)),
        wasmtime::ValType::F32 => (Val::F32(0), wasmtime::Val::F32(0)),
        wasmtime::ValType::F64 => (Val::F64(0), wasmtime::Val::F64(0)),
        wasmtime::ValType::V128 => (Val::V128(0), wasmtime::Val::V128(0u128.into())),
        wasmtime::ValType::Ref(r) => {
            if !r.is_nullable() {
                return None;
            }
            let ours = match r.heap_type().top() {
                H::Func => Val::FuncRef(None),
                H::Extern => Val::ExternRef(None),
                H::Exn => Val::ExnRef(None),
                H::Any => Val::AnyRef(None),
                _ => return None,
            };
            (ours, wasmtime::Val::null_ref(r.heap_type()))
        }
    })
}

/// Runs one module in both engines and compares.
pub fn check_module(wasm: &[u8]) -> Verdict {
    let Ok(wengine) = oracle_engine() else {
        return Verdict::Diverged("the oracle's engine cannot be made".into());
    };
    let Ok(wmodule) = wasmtime::Module::new(&wengine, wasm) else {
        return Verdict::Skipped("wasmtime rejects the module");
    };
    let mut config = Config::hosted();
    config.max_memory_bytes = MEMORY_LIMIT;
    let engine = match Engine::new(config) {
        Ok(e) => e,
        Err(e) => return Verdict::Diverged(format!("engine: {e}")),
    };
    let module = match Module::new(&engine, wasm) {
        Ok(m) => m,
        Err(e) => {
            return Verdict::Diverged(format!("basalt rejects a module wasmtime accepts: {e}"));
        }
    };
    let limits = wasmtime::StoreLimitsBuilder::new()
        .table_elements(basalt_runtime::vm::MAX_TABLE_ELEMENTS as usize)
        .memory_size(MEMORY_LIMIT)
        .build();
    let mut wstore = wasmtime::Store::new(&wengine, limits);
    wstore.limiter(|l| l);
    let winstance = wasmtime::Instance::new(&mut wstore, &wmodule, &[]);
    let mut store = Store::new(&engine, ());
    let instance = Linker::<()>::new().instantiate(&mut store, &module);
    let (winstance, instance) = match (winstance, instance) {
        (Ok(w), Ok(b)) => (w, b),
        (Err(w), Err(Error::Trap(t))) => {
            let (a, b) = (basalt_trap(&t.kind), wasmtime_trap(&w));
            if a == "stack" || b == "stack" || a == "gc-heap" || b == "gc-heap" {
                return Verdict::Skipped("stack or GC heap exhausted in the start function");
            }
            return if a == b {
                Verdict::Same
            } else {
                Verdict::Diverged(format!("start traps differ: basalt {t}, wasmtime {w:?}"))
            };
        }
        (Err(w), Err(e)) => {
            return Verdict::Diverged(format!("instantiation: basalt {e}, wasmtime {w:?}"));
        }
        (Err(w), Ok(_)) => {
            if wasmtime_trap(&w) == "gc-heap" {
                return Verdict::Skipped("GC heap exhausted in wasmtime's start function");
            }
            return Verdict::Diverged(format!(
                "wasmtime fails to instantiate ({w:?}), basalt does not"
            ));
        }
        (Ok(_), Err(e)) => {
            return Verdict::Diverged(format!(
                "basalt fails to instantiate ({e}), wasmtime does not"
            ));
        }
    };

    let names = instance.export_names(&store);
    for name in &names {
        let Some(Extern::Func(func)) = instance.get_export(&mut store, name) else {
            continue;
        };
        let Some(wfunc) = winstance.get_func(&mut wstore, name) else {
            return Verdict::Diverged(format!("export {name} is a function only in basalt"));
        };
        let wty = wfunc.ty(&wstore);
        let Some((args, wargs)): Option<(Vec<Val>, Vec<wasmtime::Val>)> =
            wty.params().map(|t| zero(&t)).collect()
        else {
            continue;
        };
        let Some((mut results, mut wresults)): Option<(Vec<Val>, Vec<wasmtime::Val>)> = wty
            .results()
            .map(|t| zero(&t).or(Some((Val::I32(0), wasmtime::Val::I32(0)))))
            .collect()
        else {
            continue;
        };
        let ours = func.call(&mut store, &args, &mut results);
        let theirs = wfunc.call(&mut wstore, &wargs, &mut wresults);
        match (ours, theirs) {
            (Ok(()), Ok(())) => {
                let a: Vec<Plain> = results.iter().map(from_basalt).collect();
                let b: Vec<Plain> = wresults.iter().map(from_wasmtime).collect();
                if a != b {
                    return Verdict::Diverged(format!(
                        "{name}: basalt returns {a:?}, wasmtime {b:?}"
                    ));
                }
            }
            (Err(Error::Trap(t)), Err(w)) => {
                let (a, b) = (basalt_trap(&t.kind), wasmtime_trap(&w));
                if a == "stack" || b == "stack" || a == "gc-heap" || b == "gc-heap" {
                    // Stack depths and GC heap sizes differ by design; the
                    // state after either is not comparable.
                    return Verdict::Skipped("stack or GC heap exhausted");
                }
                if a != b {
                    return Verdict::Diverged(format!(
                        "{name}: basalt traps with {t}, wasmtime with {w:?}"
                    ));
                }
                if b == "exception" {
                    // Leave no pending exception behind in the oracle.
                    let _ = wstore.take_pending_exception();
                }
            }
            (Err(Error::Trap(t)), Ok(()))
                if matches!(t.kind, TrapKind::StackOverflow | TrapKind::GcHeapFull) =>
            {
                return Verdict::Skipped("stack or GC heap exhausted in basalt only");
            }
            (Ok(()), Err(w)) if matches!(wasmtime_trap(&w), "stack" | "gc-heap") => {
                return Verdict::Skipped("stack or GC heap exhausted in wasmtime only");
            }
            (a, b) => {
                return Verdict::Diverged(format!("{name}: basalt {a:?}, wasmtime {b:?}"));
            }
        }
        // The state after each call: exported memories and globals.
        for other in &names {
            match (
                instance.get_export(&mut store, other),
                winstance.get_export(&mut wstore, other),
            ) {
                (Some(Extern::Memory(m)), Some(wasmtime::Extern::Memory(wm)))
                    if m.data(&store) != wm.data(&wstore) =>
                {
                    return Verdict::Diverged(format!("after {name}: memory {other} differs"));
                }
                (Some(Extern::Global(g)), Some(wasmtime::Extern::Global(wg))) => {
                    let (a, b) = (
                        from_basalt(&g.get(&store)),
                        from_wasmtime(&wg.get(&mut wstore)),
                    );
                    if a != b {
                        return Verdict::Diverged(format!(
                            "after {name}: global {other}: basalt {a:?}, wasmtime {b:?}"
                        ));
                    }
                }
                _ => {}
            }
        }
    }
    Verdict::Same
}

/// Builds and checks the case of `data`.
pub fn check(data: &[u8]) -> Verdict {
    match module_from(data) {
        Some(wasm) => check_module(&wasm),
        None => Verdict::Skipped("not enough bytes for a module"),
    }
}
