//! Differential testing of code generation: a random valid module (from
//! `wasm-smith`, limited to what Basalt implements) runs in Basalt's
//! runtime and in `wasmi` (an interpreter, the oracle); every exported
//! function is called with zero arguments' worth of values and the results,
//! traps, globals and memory must agree.
//!
//! Used by `tests/tests/differential.rs` (a bounded run in CI) and by the
//! `cargo fuzz` target in `fuzz/`.

use arbitrary::Unstructured;
use basalt_runtime::{
    Config, Engine, Error, Extern, Linker, Module, Store, TrapKind, Val, ValType,
};

/// How one case ended.
#[derive(Debug)]
pub enum Verdict {
    /// both engines agreed on everything
    Same,
    /// the case could not be judged (why)
    Skipped(&'static str),
    /// the engines disagree (what)
    Diverged(String),
}

/// The `wasm-smith` configuration: Wasm 2.0 with SIMD and relaxed SIMD,
/// tail calls, extended constant expressions, multiple and 64-bit
/// memories and tables, deterministic NaNs, bounded size, no imports.
fn smith_config() -> wasm_smith::Config {
    wasm_smith::Config {
        max_imports: 0,
        min_funcs: 1,
        max_funcs: 12,
        max_instructions: 200,
        max_memories: 2,
        max_tables: 2,
        max_table_elements: 1000,
        max_memory32_bytes: 16 << 20,
        max_memory64_bytes: 16 << 20,
        bulk_memory_enabled: true,
        reference_types_enabled: true,
        simd_enabled: true,
        multi_value_enabled: true,
        saturating_float_to_int_enabled: true,
        sign_extension_ops_enabled: true,
        relaxed_simd_enabled: true,
        exceptions_enabled: false,
        threads_enabled: false,
        tail_call_enabled: true,
        gc_enabled: false,
        memory64_enabled: true,
        extended_const_enabled: true,
        wide_arithmetic_enabled: false,
        custom_page_sizes_enabled: false,
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

/// A value both engines can be compared on.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Plain {
    I32(i32),
    I64(i64),
    F32(u32),
    F64(u64),
    V128(u128),
    /// a reference: only nullness is comparable across engines
    Ref(bool),
}

/// A trap kind both engines can be compared on.
pub(crate) fn basalt_trap(kind: &TrapKind) -> &'static str {
    match kind {
        TrapKind::StackOverflow => "stack",
        TrapKind::IntegerOverflow => "overflow",
        TrapKind::MemoryOutOfBounds => "memory",
        TrapKind::IntegerDivisionByZero => "div0",
        TrapKind::BadConversionToInteger => "conversion",
        TrapKind::Unreachable => "unreachable",
        TrapKind::TableOutOfBounds => "table",
        TrapKind::IndirectCallToNull => "null",
        TrapKind::BadSignature => "signature",
        TrapKind::HostError => "host",
        TrapKind::NullReference => "nullref",
        TrapKind::UncaughtException => "exception",
        TrapKind::CastFailure => "cast",
        TrapKind::ArrayOutOfBounds => "array",
        TrapKind::GcHeapFull => "gc-heap",
        TrapKind::Interrupted => "interrupted",
        TrapKind::OutOfFuel => "fuel",
        TrapKind::Unknown(_) => "unknown",
    }
}

fn wasmi_trap(e: &wasmi::Error) -> &'static str {
    use wasmi::TrapCode as T;
    match e.as_trap_code() {
        Some(T::UnreachableCodeReached) => "unreachable",
        Some(T::MemoryOutOfBounds) => "memory",
        Some(T::TableOutOfBounds) => "table",
        Some(T::IndirectCallToNull) => "null",
        Some(T::IntegerDivisionByZero) => "div0",
        Some(T::IntegerOverflow) => "overflow",
        Some(T::BadConversionToInteger) => "conversion",
        Some(T::StackOverflow) => "stack",
        Some(T::BadSignature) => "signature",
        Some(_) => "other",
        None => "error",
    }
}

pub(crate) fn from_basalt(v: &Val) -> Plain {
    match *v {
        Val::I32(x) => Plain::I32(x),
        Val::I64(x) => Plain::I64(x),
        Val::F32(x) => Plain::F32(x),
        Val::F64(x) => Plain::F64(x),
        Val::V128(x) => Plain::V128(x),
        Val::FuncRef(r) => Plain::Ref(r.is_some()),
        Val::ExternRef(r) => Plain::Ref(r.is_some()),
        Val::ExnRef(r) => Plain::Ref(r.is_some()),
        Val::AnyRef(r) => Plain::Ref(r.is_some()),
    }
}

fn from_wasmi(v: &wasmi::Val) -> Plain {
    match v {
        wasmi::Val::I32(x) => Plain::I32(*x),
        wasmi::Val::I64(x) => Plain::I64(*x),
        wasmi::Val::F32(x) => Plain::F32(x.to_bits()),
        wasmi::Val::F64(x) => Plain::F64(x.to_bits()),
        wasmi::Val::V128(x) => Plain::V128(x.as_u128()),
        wasmi::Val::FuncRef(r) => Plain::Ref(!r.is_null()),
        wasmi::Val::ExternRef(r) => Plain::Ref(!r.is_null()),
    }
}

fn zero(ty: &ValType) -> (Val, wasmi::Val) {
    use wasmi::ValType as W;
    match ty {
        ValType::I32 => (Val::I32(0), wasmi::Val::default_for_ty(W::I32)),
        ValType::I64 => (Val::I64(0), wasmi::Val::default_for_ty(W::I64)),
        ValType::F32 => (Val::F32(0), wasmi::Val::default_for_ty(W::F32)),
        ValType::F64 => (Val::F64(0), wasmi::Val::default_for_ty(W::F64)),
        ValType::V128 => (Val::V128(0), wasmi::Val::default_for_ty(W::V128)),
        ValType::Ref(basalt_runtime::RefType::FuncRef) => {
            (Val::FuncRef(None), wasmi::Val::default_for_ty(W::FuncRef))
        }
        ValType::Ref(_) => (
            Val::ExternRef(None),
            wasmi::Val::default_for_ty(W::ExternRef),
        ),
    }
}

/// The largest a memory may grow in both engines: small enough that two
/// memories in wasmi, which commits what it grows, stay far below the
/// fuzzer's 2 GiB budget.
pub(crate) const MEMORY_LIMIT: usize = 256 << 20;

/// Whether `wasm` uses `relaxed_madd` or `relaxed_nmadd`: the one relaxed
/// choice where the engines differ by design (Basalt rounds the multiply
/// and the add separately on every CPU, wasmi fuses them), so results may
/// differ in the last bit. Every other relaxed instruction gets the same
/// result in both: that of the instruction it relaxes.
fn uses_relaxed_multiply_add(wasm: &[u8]) -> bool {
    use wasmparser::{Operator, Parser, Payload};
    for payload in Parser::new(0).parse_all(wasm) {
        let Ok(Payload::CodeSectionEntry(body)) = payload else {
            continue;
        };
        let Ok(mut ops) = body.get_operators_reader() else {
            continue;
        };
        while let Ok(op) = ops.read() {
            if matches!(
                op,
                Operator::F32x4RelaxedMadd
                    | Operator::F32x4RelaxedNmadd
                    | Operator::F64x2RelaxedMadd
                    | Operator::F64x2RelaxedNmadd
            ) {
                return true;
            }
        }
    }
    false
}

/// Runs one module in both engines and compares.
pub fn check_module(wasm: &[u8]) -> Verdict {
    if uses_relaxed_multiply_add(wasm) {
        return Verdict::Skipped("relaxed multiply-add (wasmi fuses it, Basalt does not)");
    }
    // The oracle first: a module it rejects is not a case.
    let mut wconfig = wasmi::Config::default();
    wconfig.wasm_tail_call(true);
    wconfig.wasm_extended_const(true);
    wconfig.wasm_multi_memory(true);
    wconfig.wasm_memory64(true);
    wconfig.wasm_relaxed_simd(true);
    let wengine = wasmi::Engine::new(&wconfig);
    let Ok(wmodule) = wasmi::Module::new(&wengine, wasm) else {
        return Verdict::Skipped("wasmi rejects the module");
    };
    let mut config = Config::hosted();
    config.max_memory_bytes = MEMORY_LIMIT;
    let engine = match Engine::new(config) {
        Ok(e) => e,
        Err(e) => return Verdict::Diverged(format!("engine: {e}")),
    };
    let module = match Module::new(&engine, wasm) {
        Ok(m) => m,
        Err(e) => return Verdict::Diverged(format!("basalt rejects a module wasmi accepts: {e}")),
    };
    // The oracle gets Basalt's limits, so a guest growing a table or a
    // memory without bound fails to grow in both (and does not exhaust the
    // fuzzer's memory inside wasmi, which allocates what it grows).
    let limits = wasmi::StoreLimitsBuilder::new()
        .table_elements(basalt_runtime::vm::MAX_TABLE_ELEMENTS as usize)
        .memory_size(MEMORY_LIMIT)
        .build();
    let mut wstore = wasmi::Store::new(&wengine, limits);
    wstore.limiter(|limits| limits);
    let wlinker = wasmi::Linker::<wasmi::StoreLimits>::new(&wengine);
    let winstance = wlinker.instantiate_and_start(&mut wstore, &wmodule);
    let mut store = Store::new(&engine, ());
    let instance = Linker::<()>::new().instantiate(&mut store, &module);
    let (winstance, instance) = match (winstance, instance) {
        (Ok(w), Ok(b)) => (w, b),
        (Err(w), Err(Error::Trap(t))) => {
            let (a, b) = (basalt_trap(&t.kind), wasmi_trap(&w));
            if a == "stack" || b == "stack" {
                return Verdict::Skipped("stack overflow in the start function");
            }
            // wasmi reports a segment that does not fit as an instantiation
            // error without a trap code; Basalt as the trap the spec
            // gives (`table.init`/`memory.init` out of bounds). Both refused.
            let segment = matches!(
                t.kind,
                TrapKind::TableOutOfBounds | TrapKind::MemoryOutOfBounds
            );
            return if a == b || (b == "error" && segment) {
                Verdict::Same
            } else {
                Verdict::Diverged(format!("start traps differ: basalt {t}, wasmi {w}"))
            };
        }
        (Err(w), Err(e)) => {
            return Verdict::Diverged(format!("instantiation: basalt {e}, wasmi {w}"));
        }
        (Err(w), Ok(_)) => {
            return Verdict::Diverged(format!("wasmi fails to instantiate ({w}), basalt does not"));
        }
        (Ok(_), Err(e)) => {
            return Verdict::Diverged(format!("basalt fails to instantiate ({e}), wasmi does not"));
        }
    };

    let names = instance.export_names(&store);
    for name in &names {
        let Some(Extern::Func(func)) = instance.get_export(&mut store, name) else {
            continue;
        };
        let Some(wfunc) = winstance.get_func(&wstore, name) else {
            return Verdict::Diverged(format!("export {name} is a function only in basalt"));
        };
        let ty = func.ty(&store).clone();
        let (args, wargs): (Vec<Val>, Vec<wasmi::Val>) = ty.params.iter().map(zero).unzip();
        let (mut results, mut wresults): (Vec<Val>, Vec<wasmi::Val>) =
            ty.results.iter().map(zero).unzip();
        let ours = func.call(&mut store, &args, &mut results);
        let theirs = wfunc.call(&mut wstore, &wargs, &mut wresults);
        match (ours, theirs) {
            (Ok(()), Ok(())) => {
                let a: Vec<Plain> = results.iter().map(from_basalt).collect();
                let b: Vec<Plain> = wresults.iter().map(from_wasmi).collect();
                if a != b {
                    return Verdict::Diverged(format!("{name}: basalt returns {a:?}, wasmi {b:?}"));
                }
            }
            (Err(Error::Trap(t)), Err(w)) => {
                let (a, b) = (basalt_trap(&t.kind), wasmi_trap(&w));
                if a == "stack" || b == "stack" {
                    // Stack depths differ between a compiler and an
                    // interpreter; the state after an exhausted stack is
                    // not comparable either.
                    return Verdict::Skipped("stack overflow");
                }
                if a != b {
                    return Verdict::Diverged(format!(
                        "{name}: basalt traps with {t}, wasmi with {w}"
                    ));
                }
            }
            (Err(Error::Trap(t)), Ok(())) if t.kind == TrapKind::StackOverflow => {
                return Verdict::Skipped("stack overflow in basalt only");
            }
            (Ok(()), Err(w)) if wasmi_trap(&w) == "stack" => {
                return Verdict::Skipped("stack overflow in wasmi only");
            }
            (a, b) => return Verdict::Diverged(format!("{name}: basalt {a:?}, wasmi {b:?}")),
        }
        // The state after each call: exported memories and globals.
        for other in &names {
            match (
                instance.get_export(&mut store, other),
                winstance.get_export(&wstore, other),
            ) {
                (Some(Extern::Memory(m)), Some(wasmi::Extern::Memory(wm)))
                    if m.data(&store) != wm.data(&wstore) =>
                {
                    return Verdict::Diverged(format!("after {name}: memory {other} differs"));
                }
                (Some(Extern::Global(g)), Some(wasmi::Extern::Global(wg))) => {
                    let (a, b) = (from_basalt(&g.get(&store)), from_wasmi(&wg.get(&wstore)));
                    if a != b {
                        return Verdict::Diverged(format!(
                            "after {name}: global {other}: basalt {a:?}, wasmi {b:?}"
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
