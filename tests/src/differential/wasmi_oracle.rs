//! The `wasmi` oracle (an interpreter) for Wasm 2.0 with SIMD, relaxed
//! SIMD, tail calls, extended constant expressions and multiple and
//! 64-bit memories and tables.

use super::{
    BasaltSide, Callable, Failure, MEMORY_LIMIT, Plain, Side, Verdict, base_smith_config,
    check_case, compare, module_with,
};

/// The `wasm-smith` configuration: the shared one with SIMD and relaxed
/// SIMD, two memories, 64-bit memories and tables.
fn smith_config() -> wasm_smith::Config {
    wasm_smith::Config {
        max_memories: 2,
        simd_enabled: true,
        relaxed_simd_enabled: true,
        exceptions_enabled: false,
        gc_enabled: false,
        memory64_enabled: true,
        ..base_smith_config()
    }
}

/// Builds the module of one case from fuzzer bytes.
pub fn module_from(data: &[u8]) -> Option<Vec<u8>> {
    module_with(smith_config(), data)
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

/// wasmi's side, with Basalt's limits, so a guest growing a table or a
/// memory without bound fails to grow in both (and does not exhaust the
/// fuzzer's memory inside wasmi, which allocates what it grows).
struct WasmiSide {
    store: wasmi::Store<wasmi::StoreLimits>,
    module: wasmi::Module,
    instance: Option<wasmi::Instance>,
}

impl WasmiSide {
    fn new(wasm: &[u8]) -> Option<WasmiSide> {
        let mut config = wasmi::Config::default();
        config.wasm_tail_call(true);
        config.wasm_extended_const(true);
        config.wasm_multi_memory(true);
        config.wasm_memory64(true);
        config.wasm_relaxed_simd(true);
        let engine = wasmi::Engine::new(&config);
        let module = wasmi::Module::new(&engine, wasm).ok()?;
        let limits = wasmi::StoreLimitsBuilder::new()
            .table_elements(basalt_runtime::vm::MAX_TABLE_ELEMENTS as usize)
            .memory_size(MEMORY_LIMIT)
            .build();
        let mut store = wasmi::Store::new(&engine, limits);
        store.limiter(|limits| limits);
        Some(WasmiSide {
            store,
            module,
            instance: None,
        })
    }

    fn export(&self, name: &str) -> Option<wasmi::Extern> {
        self.instance?.get_export(&self.store, name)
    }
}

fn wasmi_failure(e: wasmi::Error) -> Failure {
    Failure {
        kind: wasmi_trap(&e),
        message: e.to_string(),
    }
}

fn wasmi_zero(ty: &wasmi::ValType) -> wasmi::Val {
    wasmi::Val::default_for_ty(*ty)
}

impl Side for WasmiSide {
    fn instantiate(&mut self) -> Result<(), Failure> {
        let linker = wasmi::Linker::<wasmi::StoreLimits>::new(self.store.engine());
        let instance = linker
            .instantiate_and_start(&mut self.store, &self.module)
            .map_err(wasmi_failure)?;
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
        match self.export(name) {
            Some(wasmi::Extern::Func(_)) => Callable::Yes,
            _ => Callable::NotAFunction,
        }
    }

    fn call(&mut self, name: &str) -> Result<Vec<Plain>, Failure> {
        let Some(wasmi::Extern::Func(func)) = self.export(name) else {
            return Err(Failure {
                kind: "error",
                message: format!("{name} is not a function"),
            });
        };
        let ty = func.ty(&self.store);
        let args: Vec<wasmi::Val> = ty.params().iter().map(wasmi_zero).collect();
        let mut results: Vec<wasmi::Val> = ty.results().iter().map(wasmi_zero).collect();
        func.call(&mut self.store, &args, &mut results)
            .map_err(wasmi_failure)?;
        Ok(results.iter().map(from_wasmi).collect())
    }

    fn memory(&mut self, name: &str) -> Option<&[u8]> {
        match self.export(name) {
            Some(wasmi::Extern::Memory(m)) => Some(m.data(&self.store)),
            _ => None,
        }
    }

    fn global(&mut self, name: &str) -> Option<Plain> {
        match self.export(name) {
            Some(wasmi::Extern::Global(g)) => Some(from_wasmi(&g.get(&self.store))),
            _ => None,
        }
    }
}

/// Runs one module in Basalt and wasmi and compares.
pub fn check_module(wasm: &[u8]) -> Verdict {
    if uses_relaxed_multiply_add(wasm) {
        return Verdict::Skipped("relaxed multiply-add (wasmi fuses it, Basalt does not)");
    }
    // The oracle first: a module it rejects is not a case.
    let Some(mut theirs) = WasmiSide::new(wasm) else {
        return Verdict::Skipped("wasmi rejects the module");
    };
    let mut ours = match BasaltSide::new(wasm) {
        Ok(s) => s,
        Err(e) => return Verdict::Diverged(format!("basalt rejects a module wasmi accepts: {e}")),
    };
    compare(&mut ours, &mut theirs, "wasmi")
}

/// Builds and checks the case of `data`.
pub fn check(data: &[u8]) -> Verdict {
    check_case(data, module_from, check_module)
}
