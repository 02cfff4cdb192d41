//! `Linker::instantiate_pre`: one component linked once and instantiated
//! in many stores (a server's instance per request). Every instance is
//! new — its own resource types, handles and memory — and the imports
//! bound on the first instantiation serve the next ones.

// Tests unwrap freely: a failure is a test failure with the error shown.
#![allow(clippy::unwrap_used)]

mod common;

use basalt_runtime::component::{Component, Linker, Value};
use basalt_runtime::{Error, Store};

/// A component with an imported function, a resource type of its own and
/// a memory, whose exports count calls in its memory and make resources.
const COUNTER: &str = r#"(component
  (import "host-add" (func $add (param "a" u32) (param "b" u32) (result u32)))
  (type $r' (resource (rep i32)))
  (export $r "r" (type $r'))
  (core func $new (canon resource.new $r'))
  (core func $add (canon lower (func $add)))
  (core module $m
    (import "" "new" (func $new (param i32) (result i32)))
    (import "" "add" (func $add (param i32 i32) (result i32)))
    (memory 1)
    (func (export "bump") (result i32)
      (i32.store (i32.const 0) (call $add (i32.load (i32.const 0)) (i32.const 1)))
      (i32.load (i32.const 0)))
    (func (export "make") (result i32) (call $new (i32.const 9))))
  (core instance $i (instantiate $m (with "" (instance
    (export "new" (func $new)) (export "add" (func $add))))))
  (func (export "bump") (result u32) (canon lift (core func $i "bump")))
  (func (export "make") (result (own $r)) (canon lift (core func $i "make")))
)"#;

#[test]
fn every_instance_of_a_pre_is_new() {
    let engine = common::engine();
    let c = Component::new(&engine, &wat::parse_str(COUNTER).unwrap()).unwrap();
    let mut linker: Linker<()> = Linker::new();
    linker.root().func_new("host-add", |_, args| match args {
        [Value::U32(a), Value::U32(b)] => Ok(vec![Value::U32(a + b)]),
        _ => Err(Error::host_trap("host-add: wrong arguments")),
    });
    let pre = linker.instantiate_pre(&c);
    let mut handles = Vec::new();
    for _ in 0..3 {
        let mut store = Store::new(&engine, ());
        let inst = pre.instantiate(&mut store).unwrap();
        let bump = inst.get_func("bump").unwrap();
        // Memory starts over in every instance; the import works in each.
        assert_eq!(bump.call(&mut store, &[]).unwrap(), [Value::U32(1)]);
        assert_eq!(bump.call(&mut store, &[]).unwrap(), [Value::U32(2)]);
        let made = inst
            .get_func("make")
            .unwrap()
            .call(&mut store, &[])
            .unwrap();
        let Value::Own(r) = &made[0] else {
            panic!("expected an owned handle, got {made:?}");
        };
        assert_eq!(r.rep, 9);
        handles.push(r.ty.clone());
    }
    // The resource type is the instance's own each time.
    assert!(handles[0] != handles[1] && handles[1] != handles[2]);
}
