//! The legacy exception-handling instructions (`try`, `catch`,
//! `catch_all`, `delegate`, `rethrow`), hosted: alone, mixed with
//! `try_table` and `throw_ref` in one function as the spec's legacy
//! appendix describes, and what the store keeps of their exceptions. The
//! spec's own `legacy/` scripts run in the spec suites.

// Tests unwrap freely: a failure is a test failure with the error shown.
#![allow(clippy::unwrap_used)]

mod common;

use common::{call, compile, engine, trap_kind};

use basalt_runtime::{Linker, Store, TrapKind, Val};

/// Flat text form: the `wat` crate no longer reads the folded one.
const MIXED: &str = r#"
(module
  (tag $e (param i32))
  (tag $f (param i32))
  (type $thrower (func (param i32)))
  (table 2 funcref)
  (elem (i32.const 0) $throw_e $throw_f)
  (func $throw_e (param i32) (throw $e (local.get 0)))
  (func $throw_f (param i32) (throw $f (local.get 0)))

  ;; a legacy catch with its payload, through call_indirect; $f is not
  ;; caught here
  (func (export "catch_payload") (param $which i32) (result i32)
    try (result i32)
      (call_indirect (type $thrower) (i32.const 40) (local.get $which))
      i32.const -1
    catch $e
      i32.const 1
      i32.add
    end)

  ;; a try_table inside a legacy handler: it catches the exception the
  ;; handler rethrows, as an exnref, and throws that again to the outer try
  (func (export "try_table_in_handler") (result i32)
    try (result i32)
      try (result i32)
        (call $throw_e (i32.const 5))
        i32.const -1
      catch_all
        (block $h (result exnref)
          (try_table (catch_all_ref $h) rethrow 2)
          unreachable)
        throw_ref
      end
    catch $e
      i32.const 100
      i32.add
    end)

  ;; a legacy try inside a try_table: what the inner catch does not take
  ;; reaches the try_table's clause
  (func (export "try_in_try_table") (result i32)
    (block $h (result i32)
      (try_table (catch $f $h)
        try
          (call $throw_f (i32.const 7))
        catch $e
          drop
        end)
      i32.const -1)
    i32.const 1000
    i32.add)

  ;; delegate to a try_table's label: its clauses take the exception
  (func (export "delegate_to_try_table") (result i32)
    (block $h (result i32)
      (try_table $t (catch $e $h)
        try
          (call $throw_e (i32.const 3))
        delegate $t)
      i32.const -1))

  ;; an exception thrown in a handler leaves its own try
  (func (export "throw_in_handler") (result i32)
    try (result i32)
      try (result i32)
        (call $throw_e (i32.const 1))
        i32.const -1
      catch $e
        (call $throw_f (i32.const 20))
        unreachable
      catch $f
        drop
        i32.const -2
      end
    catch $f
      i32.const 200
      i32.add
    end)

  ;; a cleanup: catch_all, work, rethrow 0 to the caller's handler
  (func $cleanup (param $x i32)
    try
      (call $throw_e (local.get $x))
    catch_all
      rethrow 0
    end)
  (func (export "cleanup") (param $x i32) (result i32)
    try (result i32)
      (call $cleanup (local.get $x))
      i32.const -1
    catch $e
    end)

  ;; n throws caught by a handler without rethrow
  (func (export "many") (param $n i32) (result i32)
    (local $sum i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        try
          (call $throw_e (local.get $n))
        catch $e
          (local.set $sum (i32.add (local.get $sum)))
        end
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $sum))
)
"#;

/// A store with [`MIXED`] instantiated in it.
fn mixed() -> (Store<()>, basalt_runtime::Instance) {
    let engine = engine();
    let mut store = Store::new(&engine, ());
    let linker: Linker<()> = Linker::new();
    let m = linker
        .instantiate(&mut store, &compile(&engine, MIXED))
        .unwrap();
    (store, m)
}

#[test]
fn legacy_and_new_handlers_mix() {
    let (mut store, m) = mixed();
    let i32_of = |r: Vec<Val>| match r[..] {
        [Val::I32(v)] => v,
        _ => panic!("{r:?}"),
    };
    assert_eq!(
        i32_of(call(&mut store, m, "catch_payload", &[Val::I32(0)]).unwrap()),
        41
    );
    assert_eq!(
        trap_kind(call(&mut store, m, "catch_payload", &[Val::I32(1)])),
        TrapKind::UncaughtException
    );
    assert_eq!(
        i32_of(call(&mut store, m, "try_table_in_handler", &[]).unwrap()),
        105
    );
    assert_eq!(
        i32_of(call(&mut store, m, "try_in_try_table", &[]).unwrap()),
        1007
    );
    assert_eq!(
        i32_of(call(&mut store, m, "delegate_to_try_table", &[]).unwrap()),
        3
    );
    assert_eq!(
        i32_of(call(&mut store, m, "throw_in_handler", &[]).unwrap()),
        220
    );
    assert_eq!(
        i32_of(call(&mut store, m, "cleanup", &[Val::I32(9)]).unwrap()),
        9
    );
}

#[test]
fn legacy_handlers_free_what_they_do_not_rethrow() {
    let (mut store, m) = mixed();
    let n = 100_000;
    assert_eq!(
        call(&mut store, m, "many", &[Val::I32(n)]).unwrap(),
        vec![Val::I32((i64::from(n) * i64::from(n + 1) / 2) as i32)]
    );
    assert_eq!(store.live_exceptions(), 0);
    // A handler that rethrows keeps its exception, as `catch_all_ref`
    // does: one object per exception that passed through it.
    call(&mut store, m, "cleanup", &[Val::I32(1)]).unwrap();
    assert_eq!(store.live_exceptions(), 1);
}
