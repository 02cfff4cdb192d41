//! Differential testing of code generation: a random valid module (from
//! `wasm-smith`, limited to what Basalt implements) runs in Basalt's
//! runtime and in a second engine, the oracle; every exported function
//! whose parameters can be zero or null is called, and the results,
//! traps, exported globals and memories must agree.
//!
//! Two oracles, each with its own module generator: `wasmi` (an
//! interpreter) for Wasm 2.0 with SIMD, relaxed SIMD, tail calls, extended
//! constants and multiple and 64-bit memories ([`check`]); wasmtime (the
//! crate) for what wasmi lacks, GC, typed function references and
//! exception handling ([`wasmtime_oracle::check`]). Both go through one
//! comparison ([`compare`]) of two [`Side`]s.
//!
//! Used by `tests/tests/differential.rs` (bounded runs in CI) and by the
//! `cargo fuzz` targets `differential` and `differential_wasmtime`.

mod wasmi_oracle;
pub mod wasmtime_oracle;

pub use wasmi_oracle::{check, check_module, module_from};

use basalt_runtime::{
    Config, Engine, Error, Extern, Instance, Linker, Module, Store, TrapKind, Val,
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

/// Why an instantiation or a call failed, in terms both engines share.
#[derive(Debug)]
pub(crate) struct Failure {
    /// the trap's kind as [`basalt_trap`] names it; `error` for a failure
    /// that is not a trap
    pub kind: &'static str,
    /// the engine's own words
    pub message: String,
}

impl Failure {
    /// The stack or the GC heap ran out: sizes differ between engines by
    /// design, so what follows is not comparable.
    fn exhausted(&self) -> bool {
        matches!(self.kind, "stack" | "gc-heap")
    }
}

/// Whether an export can be called with zero and null arguments.
pub(crate) enum Callable {
    /// it is not a function
    NotAFunction,
    /// a parameter cannot be zero or null (a non-nullable reference)
    NoArguments,
    /// it can
    Yes,
}

/// One engine with one module, as the comparison drives it.
pub(crate) trait Side {
    /// Instantiates the module (running its start function).
    fn instantiate(&mut self) -> Result<(), Failure>;
    /// The names of the instance's exports.
    fn export_names(&mut self) -> Vec<String>;
    /// Whether export `name` is a function this side can call.
    fn callable(&mut self, name: &str) -> Callable;
    /// Calls function `name` with zero and null arguments.
    fn call(&mut self, name: &str) -> Result<Vec<Plain>, Failure>;
    /// The bytes of exported memory `name`.
    fn memory(&mut self, name: &str) -> Option<&[u8]>;
    /// The value of exported global `name`.
    fn global(&mut self, name: &str) -> Option<Plain>;
}

/// Instantiates the module on both sides, calls every export both can call
/// and compares what comes out, the state of every exported memory and
/// global after each call included. `oracle` names the second side in
/// messages.
pub(crate) fn compare(ours: &mut dyn Side, theirs: &mut dyn Side, oracle: &str) -> Verdict {
    match (ours.instantiate(), theirs.instantiate()) {
        (Ok(()), Ok(())) => {}
        (Err(a), Err(b)) => {
            if a.exhausted() || b.exhausted() {
                return Verdict::Skipped("stack or GC heap exhausted in the start function");
            }
            // An oracle may report a segment that does not fit as an
            // instantiation error without a trap code (wasmi does);
            // Basalt as the trap the spec gives. Both refused.
            let segment = matches!(a.kind, "table" | "memory") && b.kind == "error";
            return if a.kind == b.kind || segment {
                Verdict::Same
            } else {
                Verdict::Diverged(format!(
                    "start traps differ: basalt {}, {oracle} {}",
                    a.message, b.message
                ))
            };
        }
        (Err(a), Ok(())) if a.exhausted() => {
            return Verdict::Skipped("stack or GC heap exhausted in basalt's start function");
        }
        (Ok(()), Err(b)) if b.exhausted() => {
            return Verdict::Skipped("stack or GC heap exhausted in the oracle's start function");
        }
        (Err(a), Ok(())) => {
            return Verdict::Diverged(format!(
                "basalt fails to instantiate ({}), {oracle} does not",
                a.message
            ));
        }
        (Ok(()), Err(b)) => {
            return Verdict::Diverged(format!(
                "{oracle} fails to instantiate ({}), basalt does not",
                b.message
            ));
        }
    }
    let names = ours.export_names();
    for name in &names {
        match (ours.callable(name), theirs.callable(name)) {
            (Callable::Yes, Callable::Yes) => {}
            (Callable::Yes, Callable::NotAFunction) => {
                return Verdict::Diverged(format!("export {name} is a function only in basalt"));
            }
            _ => continue,
        }
        match (ours.call(name), theirs.call(name)) {
            (Ok(a), Ok(b)) => {
                if a != b {
                    return Verdict::Diverged(format!(
                        "{name}: basalt returns {a:?}, {oracle} {b:?}"
                    ));
                }
            }
            (Err(a), Err(b)) => {
                if a.exhausted() || b.exhausted() {
                    // The state after an exhausted stack or heap is not
                    // comparable either.
                    return Verdict::Skipped("stack or GC heap exhausted");
                }
                if a.kind != b.kind {
                    return Verdict::Diverged(format!(
                        "{name}: basalt traps with {}, {oracle} with {}",
                        a.message, b.message
                    ));
                }
            }
            (Err(a), Ok(_)) if a.exhausted() => {
                return Verdict::Skipped("stack or GC heap exhausted in basalt only");
            }
            (Ok(_), Err(b)) if b.exhausted() => {
                return Verdict::Skipped("stack or GC heap exhausted in the oracle only");
            }
            (a, b) => return Verdict::Diverged(format!("{name}: basalt {a:?}, {oracle} {b:?}")),
        }
        for other in &names {
            if let (Some(a), Some(b)) = (ours.memory(other), theirs.memory(other))
                && a != b
            {
                return Verdict::Diverged(format!("after {name}: memory {other} differs"));
            }
            if let (Some(a), Some(b)) = (ours.global(other), theirs.global(other))
                && a != b
            {
                return Verdict::Diverged(format!(
                    "after {name}: global {other}: basalt {a:?}, {oracle} {b:?}"
                ));
            }
        }
    }
    Verdict::Same
}

/// What both generators share: Wasm 2.0 with tail calls and extended
/// constant expressions, deterministic NaNs, bounded size, every item
/// exported, no imports. Each oracle adds the proposals it implements.
fn base_smith_config() -> wasm_smith::Config {
    wasm_smith::Config {
        max_imports: 0,
        min_funcs: 1,
        max_funcs: 12,
        max_instructions: 200,
        max_tables: 2,
        max_table_elements: 1000,
        max_memory32_bytes: 16 << 20,
        max_memory64_bytes: 16 << 20,
        bulk_memory_enabled: true,
        reference_types_enabled: true,
        multi_value_enabled: true,
        saturating_float_to_int_enabled: true,
        sign_extension_ops_enabled: true,
        threads_enabled: false,
        tail_call_enabled: true,
        extended_const_enabled: true,
        wide_arithmetic_enabled: false,
        custom_page_sizes_enabled: false,
        canonicalize_nans: true,
        export_everything: true,
        allow_start_export: true,
        ..wasm_smith::Config::default()
    }
}

/// Builds a module from fuzzer bytes with `config`, every loop bounded.
fn module_with(config: wasm_smith::Config, data: &[u8]) -> Option<Vec<u8>> {
    let mut u = arbitrary::Unstructured::new(data);
    let mut module = wasm_smith::Module::new(config, &mut u).ok()?;
    module.ensure_termination(5_000).ok()?;
    Some(module.to_bytes())
}

/// Builds and checks the case of `data`: a module from `generate`, run by
/// `check_module`.
fn check_case(
    data: &[u8],
    generate: fn(&[u8]) -> Option<Vec<u8>>,
    check_module: fn(&[u8]) -> Verdict,
) -> Verdict {
    match generate(data) {
        Some(wasm) => check_module(&wasm),
        None => Verdict::Skipped("not enough bytes for a module"),
    }
}

/// The largest a memory may grow in both engines: small enough that two
/// memories in wasmi, which commits what it grows, stay far below the
/// fuzzer's 2 GiB budget.
pub(crate) const MEMORY_LIMIT: usize = 256 << 20;

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

fn from_basalt(v: &Val) -> Plain {
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

/// A Basalt failure in the comparison's terms.
fn basalt_failure(e: Error) -> Failure {
    match e {
        Error::Trap(t) => Failure {
            kind: basalt_trap(&t.kind),
            message: t.to_string(),
        },
        e => Failure {
            kind: "error",
            message: e.to_string(),
        },
    }
}

/// Basalt's side (arguments zero or null: Basalt's types do not say
/// whether a reference may be null, the oracle's [`Side::callable`]
/// decides that): a hosted store with the oracle's memory limit.
pub(crate) struct BasaltSide {
    store: Store<()>,
    module: Module,
    instance: Option<Instance>,
}

impl BasaltSide {
    /// Compiles `wasm`; a module Basalt refuses is the error's text.
    pub(crate) fn new(wasm: &[u8]) -> Result<BasaltSide, String> {
        let mut config = Config::hosted();
        config.max_memory_bytes = MEMORY_LIMIT;
        let engine = Engine::new(config).map_err(|e| format!("engine: {e}"))?;
        let module = Module::new(&engine, wasm).map_err(|e| e.to_string())?;
        Ok(BasaltSide {
            store: Store::new(&engine, ()),
            module,
            instance: None,
        })
    }

    fn export(&mut self, name: &str) -> Option<Extern> {
        self.instance?.get_export(&mut self.store, name)
    }
}

impl Side for BasaltSide {
    fn instantiate(&mut self) -> Result<(), Failure> {
        let instance = Linker::<()>::new()
            .instantiate(&mut self.store, &self.module)
            .map_err(basalt_failure)?;
        self.instance = Some(instance);
        Ok(())
    }

    fn export_names(&mut self) -> Vec<String> {
        self.instance
            .map(|i| i.export_names(&self.store))
            .unwrap_or_default()
    }

    fn callable(&mut self, name: &str) -> Callable {
        match self.export(name) {
            Some(Extern::Func(_)) => Callable::Yes,
            _ => Callable::NotAFunction,
        }
    }

    fn call(&mut self, name: &str) -> Result<Vec<Plain>, Failure> {
        let Some(Extern::Func(func)) = self.export(name) else {
            return Err(Failure {
                kind: "error",
                message: format!("{name} is not a function"),
            });
        };
        let ty = func.ty(&self.store).clone();
        let args: Vec<Val> = ty.params.iter().map(|t| Val::default_for(*t)).collect();
        let mut results: Vec<Val> = ty.results.iter().map(|t| Val::default_for(*t)).collect();
        func.call(&mut self.store, &args, &mut results)
            .map_err(basalt_failure)?;
        Ok(results.iter().map(from_basalt).collect())
    }

    fn memory(&mut self, name: &str) -> Option<&[u8]> {
        match self.export(name) {
            Some(Extern::Memory(m)) => Some(m.data(&self.store)),
            _ => None,
        }
    }

    fn global(&mut self, name: &str) -> Option<Plain> {
        match self.export(name) {
            Some(Extern::Global(g)) => Some(from_basalt(&g.get(&self.store))),
            _ => None,
        }
    }
}
