//! GC, hosted: structs and arrays (packed fields included), objects in
//! constant expressions, casts of objects along declared subtypes, objects
//! seen by the host, and what happens when the GC heap is full.

// Tests unwrap freely: a failure is a test failure with the error shown.
#![allow(clippy::unwrap_used)]

mod common;

use common::{call, compile, trap_kind};

use basalt_runtime::{AnyRef, Config, Engine, Linker, Store, TrapKind, Val};

const PROGRAM: &str = r#"
(module
  (type $point (sub (struct (field $x (mut i32)) (field $y (mut i32)))))
  (type $point3 (sub $point (struct (field $x (mut i32)) (field $y (mut i32)) (field $z i8))))
  (type $bytes (array (mut i8)))
  (type $points (array (mut (ref null $point))))
  (data $hello "hello")
  (global $origin (ref $point) (struct.new $point (i32.const 0) (i32.const 0)))
  (global $fixed (ref $bytes) (array.new_fixed $bytes 3 (i32.const 1) (i32.const 2) (i32.const 300)))

  (func (export "point_sum") (param i32 i32) (result i32)
    (local $p (ref $point))
    (local.set $p (struct.new $point (local.get 0) (local.get 1)))
    (struct.set $point $x (local.get $p) (i32.add (struct.get $point $x (local.get $p)) (i32.const 100)))
    (i32.add (struct.get $point $x (local.get $p)) (struct.get $point $y (local.get $p))))

  (func (export "packed") (param i32) (result i32 i32)
    (local $p (ref $point3))
    (local.set $p (struct.new $point3 (i32.const 1) (i32.const 2) (local.get 0)))
    (struct.get_s $point3 $z (local.get $p)) (struct.get_u $point3 $z (local.get $p)))

  (func (export "fixed") (param i32) (result i32) (array.get_u $bytes (global.get $fixed) (local.get 0)))

  (func (export "hello") (param i32) (result i32)
    (array.get_u $bytes (array.new_data $bytes $hello (i32.const 0) (i32.const 5)) (local.get 0)))

  (func (export "fill_copy") (result i32)
    (local $a (ref $bytes)) (local $b (ref $bytes))
    (local.set $a (array.new $bytes (i32.const 7) (i32.const 10)))
    (local.set $b (array.new_default $bytes (i32.const 10)))
    (array.fill $bytes (local.get $b) (i32.const 2) (i32.const 9) (i32.const 3))
    (array.copy $bytes $bytes (local.get $a) (i32.const 0) (local.get $b) (i32.const 1) (i32.const 4))
    ;; a = 0 9 9 9 7 7 7 7 7 7: 0 * 100 + 9 * 10 + len 10
    (i32.add (i32.mul (array.get_u $bytes (local.get $a) (i32.const 0)) (i32.const 100))
      (i32.add (i32.mul (array.get_u $bytes (local.get $a) (i32.const 1)) (i32.const 10))
        (array.len (local.get $a)))))

  (func (export "out_of_bounds") (param i32) (result i32)
    (array.get_u $bytes (array.new_default $bytes (i32.const 4)) (local.get 0)))

  (func (export "null_struct") (result i32) (struct.get $point $x (ref.null $point)))

  (func (export "casts") (result i32 i32 i32 i32)
    (local $a anyref)
    (local.set $a (struct.new $point3 (i32.const 1) (i32.const 2) (i32.const 3)))
    (ref.test (ref $point) (local.get $a))
    (ref.test (ref $point3) (struct.new_default $point))
    (ref.test (ref struct) (local.get $a))
    (ref.test (ref array) (local.get $a)))

  (func (export "downcast") (param anyref) (result i32)
    (struct.get $point3 $x (ref.cast (ref $point3) (local.get 0))))

  (func (export "make_point") (result anyref) (struct.new $point3 (i32.const 5) (i32.const 6) (i32.const 7)))
  (func (export "make_bytes") (result anyref) (array.new_default $bytes (i32.const 2)))

  (func (export "allocate") (param $n i32) (param $size i32)
    (loop $again
      (drop (array.new_default $bytes (local.get $size)))
      (br_if $again (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))

  (func (export "array_of_refs") (result i32)
    (local $ps (ref $points))
    (local.set $ps (array.new $points (ref.null $point) (i32.const 3)))
    (array.set $points (local.get $ps) (i32.const 1) (global.get $origin))
    (ref.eq (array.get $points (local.get $ps) (i32.const 1)) (global.get $origin)))
)
"#;

fn setup(config: Config) -> (Store<()>, basalt_runtime::Instance) {
    let engine = Engine::new(config).unwrap();
    let mut store = Store::new(&engine, ());
    let i = Linker::<()>::new()
        .instantiate(&mut store, &compile(&engine, PROGRAM))
        .unwrap();
    (store, i)
}

#[test]
fn structs_and_arrays() {
    let (mut store, i) = setup(Config::hosted());
    let i32s = |v: &[i32]| v.iter().map(|x| Val::I32(*x)).collect::<Vec<_>>();
    assert_eq!(
        call(&mut store, i, "point_sum", &i32s(&[1, 2])).unwrap(),
        i32s(&[103])
    );
    assert_eq!(
        call(&mut store, i, "packed", &i32s(&[0x1ff])).unwrap(),
        i32s(&[-1, 255])
    );
    for (at, want) in [(0, 1), (1, 2), (2, 300 & 0xff)] {
        assert_eq!(
            call(&mut store, i, "fixed", &i32s(&[at])).unwrap(),
            i32s(&[want])
        );
    }
    assert_eq!(
        call(&mut store, i, "hello", &i32s(&[4])).unwrap(),
        i32s(&[i32::from(b'o')])
    );
    assert_eq!(
        call(&mut store, i, "fill_copy", &[]).unwrap(),
        i32s(&[9 * 10 + 10])
    );
    assert_eq!(
        trap_kind(call(&mut store, i, "out_of_bounds", &i32s(&[4]))),
        TrapKind::ArrayOutOfBounds
    );
    assert_eq!(
        trap_kind(call(&mut store, i, "null_struct", &[])),
        TrapKind::NullReference
    );
    assert_eq!(
        call(&mut store, i, "array_of_refs", &[]).unwrap(),
        i32s(&[1])
    );
}

#[test]
fn casts_follow_declared_subtypes_and_the_host_sees_objects() {
    let (mut store, i) = setup(Config::hosted());
    assert_eq!(
        call(&mut store, i, "casts", &[]).unwrap(),
        vec![Val::I32(1), Val::I32(0), Val::I32(1), Val::I32(0)]
    );
    let p = call(&mut store, i, "make_point", &[]).unwrap();
    assert!(
        matches!(p[0], Val::AnyRef(Some(AnyRef::Struct(_)))),
        "{p:?}"
    );
    assert_eq!(
        call(&mut store, i, "downcast", &p).unwrap(),
        vec![Val::I32(5)]
    );
    let b = call(&mut store, i, "make_bytes", &[]).unwrap();
    assert!(matches!(b[0], Val::AnyRef(Some(AnyRef::Array(_)))), "{b:?}");
    assert_eq!(
        trap_kind(call(&mut store, i, "downcast", &b)),
        TrapKind::CastFailure
    );
    assert_eq!(
        trap_kind(call(
            &mut store,
            i,
            "downcast",
            &[Val::AnyRef(Some(AnyRef::I31(5)))]
        )),
        TrapKind::CastFailure
    );
}

/// Without a collector, a store's objects live as long as the store; an
/// allocation beyond its limit traps instead of exhausting the machine,
/// and the store works on.
#[test]
fn a_full_gc_heap_traps_and_loses_nothing() {
    let (mut store, i) = setup(Config {
        max_memory_bytes: 4 << 20,
        ..Config::hosted()
    });
    call(&mut store, i, "allocate", &[Val::I32(10), Val::I32(1000)]).unwrap();
    assert_eq!(
        trap_kind(call(
            &mut store,
            i,
            "allocate",
            &[Val::I32(100), Val::I32(100_000)]
        )),
        TrapKind::GcHeapFull
    );
    assert_eq!(
        call(&mut store, i, "fixed", &[Val::I32(1)]).unwrap(),
        vec![Val::I32(2)]
    );
}

/// An array a constant expression sizes (a global's initializer) is made
/// in the GC heap before its elements: a length the heap cannot hold is
/// the heap-full trap at instantiation, not an allocation of the whole
/// array's worth of values first (64 GiB here, which aborted the process).
#[test]
fn a_huge_array_in_a_constant_expression_traps() {
    let engine = Engine::new(Config::hosted()).unwrap();
    for init in [
        "(array.new_default $a (i32.const -1))",
        "(array.new $a (i64.const 7) (i32.const 0x7fffffff))",
    ] {
        let wat = format!(
            r#"(module (type $a (array (mut i64)))
                 (global (export "g") (ref $a) {init}))"#
        );
        let mut store = Store::new(&engine, ());
        let r = Linker::<()>::new().instantiate(&mut store, &compile(&engine, &wat));
        match r {
            Err(basalt_runtime::Error::Trap(t)) => assert_eq!(t.kind, TrapKind::GcHeapFull),
            other => panic!("{init}: expected the heap-full trap, got {other:?}"),
        }
    }
    // A small one still works, with its elements.
    let wat = r#"(module (type $a (array (mut i64)))
        (global $g (ref $a) (array.new $a (i64.const 7) (i32.const 1000)))
        (func (export "sum") (result i64)
          (i64.add (array.get $a (global.get $g) (i32.const 0))
                   (array.get $a (global.get $g) (i32.const 999)))))"#;
    let mut store = Store::new(&engine, ());
    let i = Linker::<()>::new()
        .instantiate(&mut store, &compile(&engine, wat))
        .unwrap();
    assert_eq!(call(&mut store, i, "sum", &[]).unwrap(), vec![Val::I64(14)]);
}
