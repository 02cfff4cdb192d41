//! Hostile components: each lie a component can tell the Canonical ABI —
//! a malformed binary, string and list lengths past memory, invalid
//! UTF-8, a `realloc` that returns a bad pointer, handles dropped while
//! lent, used after being dropped, or kept past the end of a call,
//! re-entering an instance, host values of the wrong type — ends in a trap
//! (or an error) with a clear message, never a fault of the host; and the
//! store stays usable.

// Tests unwrap freely: a failure is a test failure with the error shown.
#![allow(clippy::unwrap_used)]

mod common;

use basalt_runtime::component::{Component, Linker, Value};
use basalt_runtime::{Error, Store};

fn component(engine: &basalt_runtime::Engine, wat: &str) -> Component {
    let bytes = wat::parse_str(wat).expect("valid wat");
    Component::new(engine, &bytes).expect("compiles")
}

/// Instantiates `wat` with `linker` and calls export `name` with `args`.
fn call_with(
    linker: &Linker<()>,
    wat: &str,
    name: &str,
    args: &[Value],
) -> Result<Vec<Value>, Error> {
    let engine = common::engine();
    let bytes = wat::parse_str(wat).expect("valid wat");
    let c = Component::new(&engine, &bytes).expect("compiles");
    let mut store = Store::new(&engine, ());
    let inst = linker.instantiate(&mut store, &c)?;
    let f = inst.get_func(name).expect("export exists");
    f.call(&mut store, args)
}

fn call(wat: &str, name: &str, args: &[Value]) -> Result<Vec<Value>, Error> {
    call_with(&Linker::new(), wat, name, args)
}

/// The trap message `r` ended with; fails the test otherwise.
fn trap(r: Result<Vec<Value>, Error>) -> String {
    match r {
        Err(Error::Trap(t)) => t.to_string(),
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn malformed_binaries_are_refused_with_an_offset() {
    let engine = common::engine();
    let mut bytes = wat::parse_str("(component (core module))").unwrap();
    bytes.truncate(bytes.len() - 1);
    match Component::new(&engine, &bytes) {
        Err(Error::Invalid { .. }) => {}
        other => panic!("expected an invalid-component error, got {:?}", other.err()),
    }
    // A component whose type section is garbage.
    let garbage = [
        0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00, 0x07, 0x03, 0xff, 0xff, 0xff,
    ];
    assert!(matches!(
        Component::new(&engine, &garbage),
        Err(Error::Invalid { .. })
    ));
}

/// A component whose export `f` returns the string at (ptr, len) of
/// memory, as its core function says.
fn string_returner(ptr: u32, len: u32, bytes: &str) -> String {
    format!(
        r#"(component
  (core module $m
    (memory (export "mem") 1)
    (data (i32.const 64) "{bytes}")
    (func (export "f") (result i32)
      (i32.store (i32.const 0) (i32.const {ptr}))
      (i32.store (i32.const 4) (i32.const {len}))
      (i32.const 0)))
  (core instance $i (instantiate $m))
  (func (export "f") (result string)
    (canon lift (core func $i "f") (memory (core memory $i "mem")))))"#
    )
}

#[test]
fn lying_string_lengths_and_bad_utf8_trap() {
    let ok = call(&string_returner(64, 5, "hello"), "f", &[]).unwrap();
    assert_eq!(ok, [Value::String("hello".into())]);
    let t = trap(call(&string_returner(64, 0x7fff_0000, "hello"), "f", &[]));
    assert!(t.contains("out of bounds"), "{t}");
    let t = trap(call(&string_returner(65530, 100, ""), "f", &[]));
    assert!(t.contains("out of bounds"), "{t}");
    let t = trap(call(&string_returner(64, 2, "\\ff\\fe"), "f", &[]));
    assert!(t.contains("invalid utf-8"), "{t}");
}

#[test]
fn lying_list_lengths_trap_without_allocating() {
    let wat = r#"(component
  (core module $m
    (memory (export "mem") 1)
    (func (export "f") (result i32)
      (i32.store (i32.const 0) (i32.const 8))
      (i32.store (i32.const 4) (i32.const 0x40000000))
      (i32.const 0)))
  (core instance $i (instantiate $m))
  (func (export "f") (result (list u64))
    (canon lift (core func $i "f") (memory (core memory $i "mem")))))"#;
    let t = trap(call(wat, "f", &[]));
    assert!(t.contains("out of bounds"), "{t}");
}

/// A component taking a string argument, whose `realloc` returns `ret`.
fn realloc_returning(ret: &str) -> String {
    format!(
        r#"(component
  (core module $m
    (memory (export "mem") 1)
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) ({ret}))
    (func (export "f") (param i32 i32) (result i32) (local.get 1)))
  (core instance $i (instantiate $m))
  (func (export "f") (param "s" string) (result u32)
    (canon lift (core func $i "f") (memory (core memory $i "mem"))
      (realloc (core func $i "realloc")))))"#
    )
}

#[test]
fn realloc_out_of_bounds_or_misaligned_traps() {
    let s = [Value::String("héllo".into())];
    assert_eq!(
        call(&realloc_returning("i32.const 16"), "f", &s).unwrap(),
        [Value::U32(6)]
    );
    let t = trap(call(&realloc_returning("i32.const -1"), "f", &s));
    assert!(t.contains("realloc return: beyond end of memory"), "{t}");
    let wat = realloc_returning("i32.const 1").replace("string", "(list u32)");
    let t = trap(call(&wat, "f", &[Value::List(vec![Value::U32(1)])]));
    assert!(t.contains("realloc return: result not aligned"), "{t}");
    let t = trap(call(&realloc_returning("unreachable"), "f", &s));
    assert!(t.contains("unreachable"), "{t}");
}

const RESOURCES: &str = r#"(component
  (type $r' (resource (rep i32)))
  (export $r "r" (type $r'))
  (core func $new (canon resource.new $r'))
  (core func $drop (canon resource.drop $r'))
  (core func $rep (canon resource.rep $r'))
  (core module $m
    (import "" "new" (func $new (param i32) (result i32)))
    (import "" "drop" (func $drop (param i32)))
    (import "" "rep" (func $rep (param i32) (result i32)))
    (func (export "use-after-drop") (result i32)
      (local $h i32)
      (local.set $h (call $new (i32.const 42)))
      (call $drop (local.get $h))
      (call $rep (local.get $h)))
    (func (export "double-drop")
      (local $h i32)
      (local.set $h (call $new (i32.const 7)))
      (call $drop (local.get $h))
      (call $drop (local.get $h)))
    (func (export "forged") (result i32) (call $rep (i32.const 1000)))
    (func (export "make") (result i32) (call $new (i32.const 5)))
    (func (export "keep-borrow") (param i32)))
  (core instance $i (instantiate $m (with "" (instance
    (export "new" (func $new)) (export "drop" (func $drop)) (export "rep" (func $rep))))))
  (func (export "use-after-drop") (result u32) (canon lift (core func $i "use-after-drop")))
  (func (export "double-drop") (canon lift (core func $i "double-drop")))
  (func (export "forged") (result u32) (canon lift (core func $i "forged")))
  (func (export "make") (result (own $r)) (canon lift (core func $i "make")))
  (func (export "keep-borrow") (param "r" (borrow $r)) (canon lift (core func $i "keep-borrow")))
)"#;

#[test]
fn dropped_and_forged_handles_trap() {
    let t = trap(call(RESOURCES, "use-after-drop", &[]));
    assert!(t.contains("unknown handle index 1"), "{t}");
    let t = trap(call(RESOURCES, "double-drop", &[]));
    assert!(t.contains("unknown handle index"), "{t}");
    let t = trap(call(RESOURCES, "forged", &[]));
    assert!(t.contains("unknown handle index 1000"), "{t}");
}

#[test]
fn a_borrow_its_implementer_receives_is_the_representation() {
    // The component implements the type: lowering a borrow into it passes
    // the representation, so nothing is left to drop.
    let engine = common::engine();
    let c = component(&engine, RESOURCES);
    let mut store = Store::new(&engine, ());
    let inst = Linker::new().instantiate(&mut store, &c).unwrap();
    let made = inst
        .get_func("make")
        .unwrap()
        .call(&mut store, &[])
        .unwrap();
    let Value::Own(r) = &made[0] else {
        panic!("expected an owned handle, got {made:?}");
    };
    assert_eq!(r.rep, 5);
    let keep = inst.get_func("keep-borrow").unwrap();
    keep.call(&mut store, &[Value::Borrow(r.clone())]).unwrap();
    // A resource of another type is refused before anything runs.
    let other = Component::new(&engine, &wat::parse_str(RESOURCES).unwrap()).unwrap();
    let inst2 = Linker::new().instantiate(&mut store, &other).unwrap();
    let foreign = inst2
        .get_func("make")
        .unwrap()
        .call(&mut store, &[])
        .unwrap();
    let err = keep.call(
        &mut store,
        &[match &foreign[0] {
            Value::Own(r) => Value::Borrow(r.clone()),
            v => panic!("{v:?}"),
        }],
    );
    assert!(matches!(err, Err(Error::Host(_))), "{err:?}");
}

/// A component that lends its own handle to an imported function and
/// drops it during the call (through a re-entrant export), or keeps a
/// borrowed handle past the end of a call.
const LENDER: &str = r#"(component
  (import "host-take" (func $take (param "x" u32)))
  (type $r (resource (rep i32)))
  (core func $new (canon resource.new $r))
  (core func $drop (canon resource.drop $r))
  (core module $mem (memory (export "mem") 1))
  (core instance $mem (instantiate $mem))
  (core func $take (canon lower (func $take)))
  (core module $m
    (import "" "new" (func $new (param i32) (result i32)))
    (import "" "drop" (func $drop (param i32)))
    (import "" "take" (func $take (param i32)))
    (func (export "drop-own-while-borrowed") (param i32)
      (call $drop (local.get 0)))
    (func (export "reenter") (call $take (i32.const 1))))
  (core instance $i (instantiate $m (with "" (instance
    (export "new" (func $new)) (export "drop" (func $drop)) (export "take" (func $take))))))
  (func (export "reenter") (canon lift (core func $i "reenter")))
)"#;

#[test]
fn reentering_an_instance_traps() {
    // The host's import calls back into the same instance while it runs.
    use std::sync::{Arc, Mutex};
    type Slot = Arc<Mutex<Option<basalt_runtime::component::ComponentFunc<()>>>>;
    let engine = common::engine();
    let c = component(&engine, LENDER);
    let mut store = Store::new(&engine, ());
    let slot: Slot = Arc::new(Mutex::new(None));
    let mut linker = Linker::new();
    let inner = slot.clone();
    linker.root().func_new("host-take", move |store, _args| {
        let f = inner.lock().unwrap().clone().expect("set before the call");
        f.call_in(store, &[])
    });
    let inst = linker.instantiate(&mut store, &c).unwrap();
    let f = inst.get_func("reenter").unwrap();
    *slot.lock().unwrap() = Some(f.clone());
    let t = trap(f.call(&mut store, &[]));
    assert!(t.contains("cannot enter component instance"), "{t}");
    // The instance left its call: entering it again gets as far again.
    let t = trap(f.call(&mut store, &[]));
    assert!(t.contains("cannot enter component instance"), "{t}");
}

#[test]
fn host_values_of_the_wrong_type_are_refused() {
    let mut linker = Linker::new();
    linker.root().func_new("host-take", |_, _| {
        Ok(vec![Value::String("not a unit".into())])
    });
    let wat = LENDER;
    let r = call_with(&linker, wat, "reenter", &[]);
    let t = trap(r);
    assert!(
        t.contains("wrong number of values") || t.contains("where"),
        "{t}"
    );
}

#[test]
fn a_borrow_kept_past_the_end_of_its_call_traps() {
    // The component borrows a host resource and neither drops nor
    // returns the handle: the call traps when it returns.
    let wat = r#"(component
  (import "hr" (type $hr (sub resource)))
  (core func $drop (canon resource.drop $hr))
  (core module $m
    (import "" "drop" (func $drop (param i32)))
    (func (export "keep") (param i32))
    (func (export "give-back") (param i32) (call $drop (local.get 0))))
  (core instance $i (instantiate $m (with "" (instance (export "drop" (func $drop))))))
  (func (export "keep") (param "r" (borrow $hr)) (canon lift (core func $i "keep")))
  (func (export "give-back") (param "r" (borrow $hr)) (canon lift (core func $i "give-back")))
)"#;
    let engine = common::engine();
    let c = component(&engine, wat);
    let mut store = Store::new(&engine, ());
    let mut linker = Linker::new();
    let hr = linker.root().resource("hr", |_, _| Ok(()));
    let inst = linker.instantiate(&mut store, &c).unwrap();
    let r = Value::Borrow(basalt_runtime::component::Resource { ty: hr, rep: 9 });
    let give_back = inst.get_func("give-back").unwrap();
    give_back
        .call(&mut store, std::slice::from_ref(&r))
        .unwrap();
    let t = trap(inst.get_func("keep").unwrap().call(&mut store, &[r]));
    assert!(
        t.contains("borrow handles still remain at the end of the call"),
        "{t}"
    );
}
