//! Fuel metering (`Config::consume_fuel`): what each operator costs, that
//! loops and calls stop when the fuel runs out, and that artifacts carry
//! their instrumentation.

// Tests unwrap freely: a failure is a test failure with the error shown.
#![allow(clippy::unwrap_used, clippy::err_expect)]

mod common;

use common::{call, compile, trap_kind};

use basalt_runtime::{Config, Engine, Error, Linker, Module, Store, TrapKind, Val};

fn fuel_engine() -> Engine {
    Engine::new(Config {
        consume_fuel: true,
        ..Config::hosted()
    })
    .unwrap()
}

const PROGRAM: &str = r#"(module
    (func (export "add") (result i32) (i32.add (i32.const 1) (i32.const 2)))
    (func $count (export "count") (param $n i32) (result i32) (local $i i32)
      (block $out
        (loop $l
          (br_if $out (i32.ge_u (local.get $i) (local.get $n)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $l)))
      (local.get $i))
    (func (export "call_count") (param i32) (result i32) (call $count (local.get 0)))
    (func (export "spin") (loop $l (br $l)))
    (func $rec (export "rec") (call $rec)))"#;

/// Each operator costs one unit but `nop`, `drop`, `block`, `loop`,
/// `else`, `end`, `unreachable` and `return` (wasmtime's count), the same
/// on every run.
#[test]
fn operators_cost_what_wasmtime_charges() {
    let engine = fuel_engine();
    let module = compile(&engine, PROGRAM);
    let mut store = Store::new(&engine, ());
    let instance = Linker::<()>::new()
        .instantiate(&mut store, &module)
        .unwrap();
    store.set_fuel(100);
    assert_eq!(
        call(&mut store, instance, "add", &[]).unwrap(),
        vec![Val::I32(3)]
    );
    // i32.const, i32.const, i32.add
    assert_eq!(store.fuel(), 97);
    store.set_fuel(1000);
    assert_eq!(
        call(&mut store, instance, "count", &[Val::I32(10)]).unwrap(),
        vec![Val::I32(10)]
    );
    // Per iteration: local.get ×2, i32.ge_u, br_if, local.get,
    // i32.const, i32.add, local.set, br = 9; the last test 4; then
    // local.get.
    assert_eq!(store.fuel(), 1000 - (10 * 9 + 4 + 1));
    store.set_fuel(1000);
    call(&mut store, instance, "call_count", &[Val::I32(10)]).unwrap();
    // plus local.get and call
    assert_eq!(store.fuel(), 1000 - (10 * 9 + 4 + 1 + 2));
}

/// An endless loop and an endless recursion stop with `OutOfFuel`, a
/// finite loop with enough fuel finishes, and the store runs code again
/// once refuelled.
#[test]
fn running_out_of_fuel_traps_loops_and_calls() {
    let engine = fuel_engine();
    let module = compile(&engine, PROGRAM);
    let mut store = Store::new(&engine, ());
    let instance = Linker::<()>::new()
        .instantiate(&mut store, &module)
        .unwrap();
    store.set_fuel(1_000_000);
    assert_eq!(
        trap_kind(call(&mut store, instance, "spin", &[])),
        TrapKind::OutOfFuel
    );
    assert_eq!(store.fuel(), 0);
    store.set_fuel(1_000_000);
    let kind = trap_kind(call(&mut store, instance, "rec", &[]));
    // The recursion may hit the stack limit first; either ends it.
    assert!(
        matches!(kind, TrapKind::OutOfFuel | TrapKind::StackOverflow),
        "{kind:?}"
    );
    store.set_fuel(1_000);
    assert_eq!(
        trap_kind(call(&mut store, instance, "count", &[Val::I32(1_000)])),
        TrapKind::OutOfFuel
    );
    store.set_fuel(10_000);
    assert_eq!(
        call(&mut store, instance, "count", &[Val::I32(1_000)]).unwrap(),
        vec![Val::I32(1_000)]
    );
    store.set_fuel(3);
    assert_eq!(
        trap_kind(call(&mut store, instance, "spin", &[])),
        TrapKind::OutOfFuel
    );
}

/// Code from an engine without metering ignores fuel.
#[test]
fn without_metering_fuel_is_not_spent() {
    let engine = common::engine();
    let module = compile(&engine, PROGRAM);
    let mut store = Store::new(&engine, ());
    let instance = Linker::<()>::new()
        .instantiate(&mut store, &module)
        .unwrap();
    store.set_fuel(5);
    assert_eq!(
        call(&mut store, instance, "count", &[Val::I32(1000)]).unwrap(),
        vec![Val::I32(1000)]
    );
    assert_eq!(store.fuel(), 5);
}

/// An artifact records what its code was compiled with, and an engine
/// that wants other instrumentation refuses it with a message saying so.
#[test]
fn artifacts_load_only_with_the_instrumentation_they_were_compiled_with() {
    let wasm = wat::parse_str(PROGRAM).unwrap();
    let metered = fuel_engine();
    let plain = common::engine();
    let artifact = Module::compile_artifact(&metered, &wasm).unwrap();
    Module::from_artifact(&metered, &wasm, &artifact).unwrap();
    let e = Module::from_artifact(&plain, &wasm, &artifact)
        .err()
        .unwrap();
    let Error::Artifact(message) = e else {
        panic!("expected an artifact error, got {e:?}")
    };
    assert!(
        message.contains("compiled with fuel metering")
            && message.contains("wants no interrupt checks and no fuel metering"),
        "{message}"
    );
}

/// Both ISAs compile interrupt checks and fuel metering (the interrupt
/// trampoline uses Cranelift's preserve-all convention on each), and
/// the artifact records them.
#[test]
fn both_isas_compile_the_instrumentation() {
    let wasm = wat::parse_str(PROGRAM).unwrap();
    let aarch64 = basalt_runtime::Target::new(basalt_runtime::Arch::Aarch64, &[]).unwrap();
    for target in [basalt_runtime::Target::host(), aarch64] {
        let arch = target.arch;
        let engine = Engine::new(Config {
            target,
            platform: None,
            interruptible: true,
            consume_fuel: true,
            ..Config::hosted()
        })
        .unwrap();
        let artifact = Module::compile_artifact(&engine, &wasm).unwrap();
        assert!(artifact.len() > 100, "{arch:?}");
    }
}
