//! Helpers the runtime's integration tests share: compile text format,
//! call an export, expect a trap.

// Each test binary uses its own subset of these.
#![allow(dead_code)]

use basalt_runtime::{Config, Engine, Error, Instance, Module, Store, TrapKind, Val};

/// An engine generating code for this machine, as `basalt run --hosted`.
pub fn engine() -> Engine {
    Engine::new(Config::hosted()).expect("hosted engine")
}

/// Compiles the text-format module `wat` with `engine`.
pub fn compile(engine: &Engine, wat: &str) -> Module {
    let wasm = wat::parse_str(wat).expect("valid wat");
    Module::new(engine, &wasm).expect("compiles")
}

/// Calls export `name` of `instance` with `args`; returns its results.
pub fn call<T: 'static>(
    store: &mut Store<T>,
    instance: Instance,
    name: &str,
    args: &[Val],
) -> Result<Vec<Val>, Error> {
    let f = instance.get_func(store, name).expect("export exists");
    let mut results: Vec<Val> = f
        .ty(store)
        .results
        .iter()
        .map(|t| Val::default_for(*t))
        .collect();
    f.call(store, args, &mut results)?;
    Ok(results)
}

/// The kind of trap `r` ended with; panics (fails the test) otherwise.
pub fn trap_kind(r: Result<Vec<Val>, Error>) -> TrapKind {
    match r {
        Err(Error::Trap(t)) => t.kind,
        other => panic!("expected a trap, got {other:?}"),
    }
}
