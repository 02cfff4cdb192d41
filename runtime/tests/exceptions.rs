//! Exception handling, hosted: throwing and catching within and across
//! instances, through indirect calls and deep stacks, rethrowing, what an
//! uncaught exception does to the caller, and what the store keeps.

// Tests unwrap freely: a failure is a test failure with the error shown.
#![allow(clippy::unwrap_used, clippy::err_expect)]

mod common;

use common::{call, compile, engine, trap_kind};

use basalt_runtime::{Error, Linker, Module, Store, TrapKind, Val};

/// Exports a tag and functions that throw it (and one that throws a tag of
/// the same type but another identity).
const THROWER: &str = r#"
(module
  (tag $e (export "e") (param i32 f64 v128))
  (tag $other (export "other") (param i32 f64 v128))
  (func (export "throw") (param i32)
    (throw $e (local.get 0) (f64.const 2.5) (v128.const i32x4 1 2 3 4)))
  (func (export "throw_other") (param i32)
    (throw $other (local.get 0) (f64.const 0) (v128.const i32x4 0 0 0 0)))
  (func (export "nothing") (param i32))
)
"#;

/// Imports the thrower's tag `e` and catches it from calls of every kind.
const CATCHER: &str = r#"
(module
  (import "t" "e" (tag $e (param i32 f64 v128)))
  (import "t" "other" (tag $o (param i32 f64 v128)))
  (import "t" "throw" (func $throw (param i32)))
  (import "t" "throw_other" (func $throw_other (param i32)))
  (import "t" "nothing" (func $nothing (param i32)))
  (type $thrower (func (param i32)))
  (table 3 funcref)
  (elem (i32.const 0) $throw $throw_other $nothing)
  (elem declare func $throw)
  (global $kept (mut exnref) (ref.null exn))

  ;; the payload of $e, or -1 when the callee returned
  (func $catch (export "catch") (param $which i32) (result i32 f64 i32)
    (block $h (result i32 f64 v128)
      (try_table (catch $e $h)
        (call_indirect (type $thrower) (i32.const 7) (local.get $which)))
      (return (i32.const -1) (f64.const 0) (i32.const 0)))
    (i32x4.extract_lane 3))

  ;; values live across the try_call survive the unwinding
  (func (export "live_values") (param $x i64) (result i64)
    (local $a i64) (local $b i64)
    (local.set $a (i64.mul (local.get $x) (i64.const 3)))
    (local.set $b (i64.add (local.get $x) (i64.const 11)))
    (block $h (result i32 f64 v128)
      (try_table (catch $e $h) (call $throw (i32.const 1)))
      (return (i64.const -1)))
    (drop) (drop) (drop)
    (i64.add (local.get $a) (local.get $b)))

  ;; an inner try_table for another tag lets $e through to the outer one
  (func (export "nested") (result i32)
    (block $outer (result i32 f64 v128)
      (block $inner (result i32 f64 v128)
        (try_table (catch $e $outer)
          (try_table (catch $o $inner)
            (call $throw (i32.const 5))))
        (unreachable))
      (unreachable))
    (drop) (drop))

  ;; catch_all catches a tag this module does not know
  (func (export "catch_all") (result i32)
    (block $h
      (try_table (catch_all $h) (call $throw_other (i32.const 1)))
      (return (i32.const 0)))
    (i32.const 1))

  ;; a tag of the same type but another identity is not $e
  (func (export "identity") (result i32)
    (block $h (result i32 f64 v128)
      (try_table (catch $e $h) (call $throw_other (i32.const 1)))
      (return (i32.const 0)))
    (drop) (drop) (drop) (i32.const 1))

  ;; through call_ref
  (func (export "via_ref") (result i32)
    (block $h (result i32 f64 v128)
      (try_table (catch $e $h) (call_ref $thrower (i32.const 9) (ref.func $throw)))
      (return (i32.const 0)))
    (drop) (drop))

  ;; deep recursion, then the throw; the handler at the top resumes with
  ;; its own stack, and recursing again works
  (func $deep (param $n i32)
    (if (i32.eqz (local.get $n)) (then (call $throw (i32.const 77)) (unreachable)))
    (call $deep (i32.sub (local.get $n) (i32.const 1))))
  (func (export "deep") (param i32) (result i32)
    (block $h (result i32 f64 v128)
      (try_table (catch $e $h) (call $deep (local.get 0)))
      (return (i32.const 0)))
    (drop) (drop))

  ;; keep the exception as an exnref, rethrow it later
  (func (export "keep") (result i32)
    (block $h (result i32 f64 v128 exnref)
      (try_table (catch_ref $e $h) (call $throw (i32.const 3)))
      (return (i32.const 0)))
    (global.set $kept)
    (drop) (drop))
  (func (export "rethrow_kept") (result i32)
    (block $h (result i32 f64 v128)
      (try_table (catch $e $h) (throw_ref (global.get $kept)))
      (return (i32.const 0)))
    (drop) (drop))
  (func (export "rethrow_null") (throw_ref (ref.null exn)))

  ;; a throw and catch in a loop, to count what the store keeps
  (func (export "many") (param $n i32) (result i32) (local $sum i32)
    (loop $next
      (block $h (result i32 f64 v128)
        (try_table (catch $e $h) (call $throw (local.get $n)))
        (unreachable))
      (drop) (drop)
      (local.set $sum (i32.add (local.get $sum)))
      (local.tee $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $next))
    (local.get $sum))

  (func (export "uncaught") (call $throw (i32.const 1)))
)
"#;

/// A store and linker with the thrower instantiated and registered as `t`.
fn with_thrower() -> (Store<()>, Linker<()>, basalt_runtime::Instance) {
    let engine = engine();
    let mut store = Store::new(&engine, ());
    let mut linker: Linker<()> = Linker::new();
    let t = linker
        .instantiate(&mut store, &compile(&engine, THROWER))
        .unwrap();
    linker.instance(&mut store, "t", t);
    (store, linker, t)
}

fn setup() -> (
    Store<()>,
    basalt_runtime::Instance,
    basalt_runtime::Instance,
) {
    let (mut store, linker, t) = with_thrower();
    let catcher = compile(store.engine(), CATCHER);
    let c = linker.instantiate(&mut store, &catcher).unwrap();
    (store, t, c)
}

#[test]
fn exceptions_cross_instances_with_their_payload() {
    let (mut store, _, c) = setup();
    assert_eq!(
        call(&mut store, c, "catch", &[Val::I32(0)]).unwrap(),
        vec![Val::I32(7), Val::F64(2.5f64.to_bits()), Val::I32(4)]
    );
    assert_eq!(
        call(&mut store, c, "catch", &[Val::I32(2)]).unwrap(),
        vec![Val::I32(-1), Val::F64(0), Val::I32(0)]
    );
    // Not caught here: the other tag, of the same type.
    assert_eq!(
        trap_kind(call(&mut store, c, "catch", &[Val::I32(1)])),
        TrapKind::UncaughtException
    );
    assert_eq!(
        trap_kind(call(&mut store, c, "identity", &[])),
        TrapKind::UncaughtException
    );
    assert_eq!(
        call(&mut store, c, "catch_all", &[]).unwrap(),
        vec![Val::I32(1)]
    );
    assert_eq!(
        call(&mut store, c, "nested", &[]).unwrap(),
        vec![Val::I32(5)]
    );
    assert_eq!(
        call(&mut store, c, "via_ref", &[]).unwrap(),
        vec![Val::I32(9)]
    );
}

#[test]
fn handlers_resume_with_their_frame_intact() {
    let (mut store, _, c) = setup();
    assert_eq!(
        call(&mut store, c, "live_values", &[Val::I64(10)]).unwrap(),
        vec![Val::I64(30 + 21)]
    );
    for depth in [0, 1, 10_000, 3] {
        assert_eq!(
            call(&mut store, c, "deep", &[Val::I32(depth)]).unwrap(),
            vec![Val::I32(77)],
            "depth {depth}"
        );
    }
}

#[test]
fn exnrefs_keep_exceptions_and_rethrow_them() {
    let (mut store, _, c) = setup();
    assert_eq!(store.live_exceptions(), 0);
    assert_eq!(call(&mut store, c, "keep", &[]).unwrap(), vec![Val::I32(3)]);
    assert_eq!(
        store.live_exceptions(),
        1,
        "the exnref in a global keeps it"
    );
    for _ in 0..3 {
        assert_eq!(
            call(&mut store, c, "rethrow_kept", &[]).unwrap(),
            vec![Val::I32(3)]
        );
    }
    assert_eq!(store.live_exceptions(), 1, "rethrowing allocates nothing");
    assert_eq!(
        trap_kind(call(&mut store, c, "rethrow_null", &[])),
        TrapKind::NullReference
    );
}

#[test]
fn caught_exceptions_are_freed() {
    let (mut store, _, c) = setup();
    let n = 100_000;
    assert_eq!(
        call(&mut store, c, "many", &[Val::I32(n)]).unwrap(),
        vec![Val::I32((i64::from(n) * i64::from(n + 1) / 2) as i32)]
    );
    assert_eq!(store.live_exceptions(), 0);
    assert_eq!(
        trap_kind(call(&mut store, c, "uncaught", &[])),
        TrapKind::UncaughtException
    );
    assert_eq!(store.live_exceptions(), 0, "an uncaught exception is freed");
}

#[test]
fn an_uncaught_exception_names_the_thrower_and_loses_nothing() {
    let (mut store, _, c) = setup();
    match call(&mut store, c, "uncaught", &[]) {
        Err(Error::Trap(t)) => {
            assert_eq!(t.kind, TrapKind::UncaughtException);
            assert!(t.func.is_some(), "the throwing function is known");
            assert!(t.to_string().contains("uncaught wasm exception"), "{t}");
        }
        other => panic!("expected an uncaught exception, got {other:?}"),
    }
    // The store and its instances work on afterwards.
    assert_eq!(
        call(&mut store, c, "catch", &[Val::I32(0)]).unwrap()[0],
        Val::I32(7)
    );
}

#[test]
fn precompiled_exception_tables_round_trip() {
    let (mut store, linker, _) = with_thrower();
    let engine = store.engine().clone();
    let wasm = wat::parse_str(CATCHER).unwrap();
    let artifact = Module::compile_artifact(&engine, &wasm).unwrap();
    let module = Module::from_artifact(&engine, &wasm, &artifact).unwrap();
    let c = linker.instantiate(&mut store, &module).unwrap();
    assert_eq!(
        call(&mut store, c, "nested", &[]).unwrap(),
        vec![Val::I32(5)]
    );
    assert_eq!(
        call(&mut store, c, "deep", &[Val::I32(100)]).unwrap(),
        vec![Val::I32(77)]
    );
}

#[test]
fn tag_imports_match_exactly() {
    let (mut store, linker, _) = with_thrower();
    let engine = store.engine().clone();
    let wrong = compile(
        &engine,
        r#"(module (import "t" "e" (tag (param i32 f64))))"#,
    );
    let err = linker
        .instantiate(&mut store, &wrong)
        .err()
        .expect("refused");
    assert!(matches!(err, Error::Link { .. }), "{err}");
    assert!(err.to_string().contains("tag of type"), "{err}");
    let not_a_tag = compile(
        &engine,
        r#"(module (import "t" "throw" (tag (param i32))))"#,
    );
    let err = linker
        .instantiate(&mut store, &not_a_tag)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("expected a tag"), "{err}");
}
