//! The wasmtime oracle (the crate, Cranelift-compiled) for what wasmi does
//! not implement: GC (structs, arrays, `i31`, casts), typed function
//! references and exception handling. Results are compared by nullness
//! for references; an uncaught exception is the trap `exception` on both
//! sides.

use super::{
    BasaltSide, Callable, Failure, MEMORY_LIMIT, Plain, Side, Verdict, base_smith_config,
    check_case, compare, module_with,
};

/// The `wasm-smith` configuration: the shared one with GC (and so typed
/// function references) and exception handling, one memory, no SIMD
/// (wasmi's check covers it).
fn smith_config() -> wasm_smith::Config {
    wasm_smith::Config {
        max_memories: 1,
        max_type_size: 200,
        gc_enabled: true,
        exceptions_enabled: true,
        simd_enabled: false,
        relaxed_simd_enabled: false,
        memory64_enabled: false,
        shared_everything_threads_enabled: false,
        ..base_smith_config()
    }
}

/// Builds the module of one case from fuzzer bytes.
pub fn module_from(data: &[u8]) -> Option<Vec<u8>> {
    module_with(smith_config(), data)
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

/// Zero or null of `ty`; `None` for a non-nullable reference (no value
/// can be made without the module's help).
fn wasmtime_zero(ty: &wasmtime::ValType) -> Option<wasmtime::Val> {
    Some(match ty {
        wasmtime::ValType::I32 => wasmtime::Val::I32(0),
        wasmtime::ValType::I64 => wasmtime::Val::I64(0),
        wasmtime::ValType::F32 => wasmtime::Val::F32(0),
        wasmtime::ValType::F64 => wasmtime::Val::F64(0),
        wasmtime::ValType::V128 => wasmtime::Val::V128(0u128.into()),
        wasmtime::ValType::Ref(r) if r.is_nullable() => wasmtime::Val::null_ref(r.heap_type()),
        wasmtime::ValType::Ref(_) => return None,
    })
}

fn wasmtime_failure(e: wasmtime::Error) -> Failure {
    Failure {
        kind: wasmtime_trap(&e),
        message: format!("{e:?}"),
    }
}

/// wasmtime's side, with Basalt's table and memory limits.
struct WasmtimeSide {
    store: wasmtime::Store<wasmtime::StoreLimits>,
    module: wasmtime::Module,
    instance: Option<wasmtime::Instance>,
}

impl WasmtimeSide {
    fn new(wasm: &[u8]) -> Option<WasmtimeSide> {
        let engine = oracle_engine().ok()?;
        let module = wasmtime::Module::new(&engine, wasm).ok()?;
        let limits = wasmtime::StoreLimitsBuilder::new()
            .table_elements(basalt_runtime::vm::MAX_TABLE_ELEMENTS as usize)
            .memory_size(MEMORY_LIMIT)
            .build();
        let mut store = wasmtime::Store::new(&engine, limits);
        store.limiter(|l| l);
        Some(WasmtimeSide {
            store,
            module,
            instance: None,
        })
    }

    fn export(&mut self, name: &str) -> Option<wasmtime::Extern> {
        self.instance?.get_export(&mut self.store, name)
    }
}

impl Side for WasmtimeSide {
    fn instantiate(&mut self) -> Result<(), Failure> {
        let instance = wasmtime::Instance::new(&mut self.store, &self.module, &[])
            .map_err(wasmtime_failure)?;
        self.instance = Some(instance);
        Ok(())
    }

    fn export_names(&mut self) -> Vec<String> {
        self.module
            .exports()
            .map(|e| e.name().to_string())
            .collect()
    }

    fn callable(&mut self, name: &str) -> Callable {
        let Some(wasmtime::Extern::Func(func)) = self.export(name) else {
            return Callable::NotAFunction;
        };
        if func
            .ty(&self.store)
            .params()
            .all(|t| wasmtime_zero(&t).is_some())
        {
            Callable::Yes
        } else {
            Callable::NoArguments
        }
    }

    fn call(&mut self, name: &str) -> Result<Vec<Plain>, Failure> {
        let Some(wasmtime::Extern::Func(func)) = self.export(name) else {
            return Err(Failure {
                kind: "error",
                message: format!("{name} is not a function"),
            });
        };
        let ty = func.ty(&self.store);
        let args: Vec<wasmtime::Val> = ty.params().filter_map(|t| wasmtime_zero(&t)).collect();
        // Placeholders, overwritten by the call.
        let mut results = vec![wasmtime::Val::I32(0); ty.results().len()];
        match func.call(&mut self.store, &args, &mut results) {
            Ok(()) => Ok(results.iter().map(from_wasmtime).collect()),
            Err(e) => {
                let failure = wasmtime_failure(e);
                if failure.kind == "exception" {
                    // Leave no pending exception behind.
                    let _ = self.store.take_pending_exception();
                }
                Err(failure)
            }
        }
    }

    fn memory(&mut self, name: &str) -> Option<&[u8]> {
        match self.export(name) {
            Some(wasmtime::Extern::Memory(m)) => Some(m.data(&self.store)),
            _ => None,
        }
    }

    fn global(&mut self, name: &str) -> Option<Plain> {
        match self.export(name) {
            Some(wasmtime::Extern::Global(g)) => Some(from_wasmtime(&g.get(&mut self.store))),
            _ => None,
        }
    }
}

/// Runs one module in Basalt and wasmtime and compares.
pub fn check_module(wasm: &[u8]) -> Verdict {
    // The oracle first: a module it rejects is not a case.
    let Some(mut theirs) = WasmtimeSide::new(wasm) else {
        return Verdict::Skipped("wasmtime rejects the module");
    };
    let mut ours = match BasaltSide::new(wasm) {
        Ok(s) => s,
        Err(e) => {
            return Verdict::Diverged(format!("basalt rejects a module wasmtime accepts: {e}"));
        }
    };
    compare(&mut ours, &mut theirs, "wasmtime")
}

/// Builds and checks the case of `data`.
pub fn check(data: &[u8]) -> Verdict {
    check_case(data, module_from, check_module)
}
