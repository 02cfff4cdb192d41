//! The engine hosted on Linux: compile real modules, run them, check
//! results, traps, host calls and precompiled artifacts.

// Tests unwrap freely: a failure is a test failure with the error shown.
#![allow(clippy::unwrap_used, clippy::err_expect)]

mod common;

use common::{call, compile, engine, trap_kind};

use basalt_runtime::{
    AnyRef, Error, Extern, FuncType, Linker, Module, Store, TrapKind, Val, ValType,
};

fn instantiate(wat: &str) -> (Store<Vec<i64>>, basalt_runtime::Instance) {
    let engine = engine();
    let module = compile(&engine, wat);
    let mut store = Store::new(&engine, Vec::new());
    let mut linker: Linker<Vec<i64>> = Linker::new();
    linker.func_new(
        "host",
        "record",
        FuncType::new(&[ValType::I64], &[]),
        |caller, args, _| {
            caller.data_mut().push(args[0].i64().unwrap_or_default());
            Ok(())
        },
    );
    linker.func_new(
        "host",
        "fail",
        FuncType::new(&[ValType::I32], &[]),
        |_, args, _| Err(Error::Exit(args[0].i32().unwrap_or_default())),
    );
    let instance = linker
        .instantiate(&mut store, &module)
        .expect("instantiates");
    (store, instance)
}

const PROGRAM: &str = r#"
(module
  (import "host" "record" (func $record (param i64)))
  (import "host" "fail" (func $fail (param i32)))
  (memory (export "memory") 1 4)
  (global $counter (mut i64) (i64.const 0))
  (table 4 funcref)
  (elem (i32.const 0) $add $fac)
  (type $binop (func (param i64 i64) (result i64)))
  (data (i32.const 16) "hello")
  (func $add (param i64 i64) (result i64) (i64.add (local.get 0) (local.get 1)))
  (func $fac (export "fac") (param i64) (result i64)
    (if (result i64) (i64.le_u (local.get 0) (i64.const 1))
      (then (i64.const 1))
      (else (i64.mul (local.get 0) (call $fac (i64.sub (local.get 0) (i64.const 1)))))))
  (func (export "sum_to") (param $n i32) (result i64) (local $acc i64)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (local.get $n))))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $acc))
  (func (export "indirect") (param i32) (result i64)
    (call_indirect (type $binop) (i64.const 20) (i64.const 22) (local.get 0)))
  (func (export "load_byte") (param i32) (result i32) (i32.load8_u (local.get 0)))
  (func (export "store_far") (param i32) (i32.store (local.get 0) (i32.const 7)))
  (func (export "div") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))
  (func (export "conv") (param f64) (result i32) (i32.trunc_f64_s (local.get 0)))
  (func (export "boom") unreachable)
  (func $recurse (export "recurse") (param i64) (result i64)
    (i64.add (i64.const 1) (call $recurse (local.get 0))))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "size") (result i32) (memory.size))
  (func (export "record_twice") (param i64)
    (call $record (local.get 0))
    (global.set $counter (i64.add (global.get $counter) (i64.const 1)))
    (call $record (global.get $counter)))
  (func (export "exit") (param i32) (call $fail (local.get 0)) unreachable)
  (func (export "fmin") (param f32 f32) (result f32) (f32.min (local.get 0) (local.get 1)))
)
"#;

#[test]
fn runs_integer_code_and_recursion() {
    let (mut store, inst) = instantiate(PROGRAM);
    assert_eq!(
        call(&mut store, inst, "fac", &[Val::I64(20)]).unwrap(),
        vec![Val::I64(2_432_902_008_176_640_000)]
    );
    assert_eq!(
        call(&mut store, inst, "sum_to", &[Val::I32(100_000)]).unwrap(),
        vec![Val::I64(5_000_050_000)]
    );
}

#[test]
fn call_indirect_checks_bounds_null_and_types() {
    let (mut store, inst) = instantiate(PROGRAM);
    assert_eq!(
        call(&mut store, inst, "indirect", &[Val::I32(0)]).unwrap(),
        vec![Val::I64(42)]
    );
    assert_eq!(
        trap_kind(call(&mut store, inst, "indirect", &[Val::I32(1)])),
        TrapKind::BadSignature
    );
    assert_eq!(
        trap_kind(call(&mut store, inst, "indirect", &[Val::I32(2)])),
        TrapKind::IndirectCallToNull
    );
    assert_eq!(
        trap_kind(call(&mut store, inst, "indirect", &[Val::I32(9)])),
        TrapKind::TableOutOfBounds
    );
}

#[test]
fn memory_data_segments_and_guard_pages() {
    let (mut store, inst) = instantiate(PROGRAM);
    assert_eq!(
        call(&mut store, inst, "load_byte", &[Val::I32(16)]).unwrap(),
        vec![Val::I32(i32::from(b'h'))]
    );
    assert_eq!(
        trap_kind(call(&mut store, inst, "load_byte", &[Val::I32(65536)])),
        TrapKind::MemoryOutOfBounds
    );
    assert_eq!(
        trap_kind(call(&mut store, inst, "store_far", &[Val::I32(-1)])),
        TrapKind::MemoryOutOfBounds
    );
    // After a trap the instance still works.
    assert_eq!(
        call(&mut store, inst, "load_byte", &[Val::I32(17)]).unwrap(),
        vec![Val::I32(i32::from(b'e'))]
    );
}

#[test]
fn memory_grow_maps_new_pages_up_to_the_maximum() {
    let (mut store, inst) = instantiate(PROGRAM);
    assert_eq!(
        call(&mut store, inst, "grow", &[Val::I32(1)]).unwrap(),
        vec![Val::I32(1)]
    );
    assert_eq!(
        call(&mut store, inst, "size", &[]).unwrap(),
        vec![Val::I32(2)]
    );
    assert_eq!(
        call(&mut store, inst, "load_byte", &[Val::I32(65536 + 5)]).unwrap(),
        vec![Val::I32(0)]
    );
    assert_eq!(
        call(&mut store, inst, "grow", &[Val::I32(3)]).unwrap(),
        vec![Val::I32(-1)]
    );
    assert_eq!(
        call(&mut store, inst, "grow", &[Val::I32(2)]).unwrap(),
        vec![Val::I32(2)]
    );
    assert_eq!(
        trap_kind(call(&mut store, inst, "load_byte", &[Val::I32(4 * 65536)])),
        TrapKind::MemoryOutOfBounds
    );
}

const MEMORY64: &str = r#"
(module
  (memory i64 1)
  (table $t i64 2 funcref)
  (type $unit (func (result i32)))
  (elem (table $t) (i64.const 1) func $seven)
  (data (i64.const 65530) "abcdef")
  (func $seven (result i32) (i32.const 7))
  (func (export "load") (param i64) (result i32) (i32.load8_u (local.get 0)))
  (func (export "load_far") (param i64) (result i32)
    (i32.load offset=0xffff_ffff_ffff_fff0 (local.get 0)))
  (func (export "store") (param i64) (i64.store (local.get 0) (i64.const -1)))
  (func (export "grow") (param i64) (result i64) (memory.grow (local.get 0)))
  (func (export "size") (result i64) (memory.size))
  (func (export "fill") (param i64 i64) (memory.fill (local.get 0) (i32.const 9) (local.get 1)))
  (func (export "call") (param i64) (result i32) (call_indirect $t (type $unit) (local.get 0)))
  (func (export "table_grow") (param i64) (result i64) (table.grow $t (ref.null func) (local.get 0)))
)
"#;

#[test]
fn memory64_checks_every_access_explicitly() {
    let (mut store, inst) = instantiate(MEMORY64);
    let load = |store: &mut Store<Vec<i64>>, at: i64| call(store, inst, "load", &[Val::I64(at)]);
    assert_eq!(
        load(&mut store, 65535).unwrap(),
        vec![Val::I32(i32::from(b'f'))]
    );
    // Past the end, and addresses whose low 32 bits are in bounds: a check
    // that truncated or wrapped the index would let these through.
    for at in [65536, 1 << 32, (1 << 32) + 16, i64::MAX, -1] {
        assert_eq!(
            trap_kind(load(&mut store, at)),
            TrapKind::MemoryOutOfBounds,
            "{at:#x}"
        );
    }
    // index + offset overflows 64 bits: a trap, never a wrapped address.
    for at in [0, 0x10, 0x20, -1] {
        assert_eq!(
            trap_kind(call(&mut store, inst, "load_far", &[Val::I64(at)])),
            TrapKind::MemoryOutOfBounds,
            "{at:#x}"
        );
    }
    // The last 8 bytes fit, one more does not (and writes nothing).
    call(&mut store, inst, "store", &[Val::I64(65528)]).unwrap();
    assert_eq!(
        trap_kind(call(&mut store, inst, "store", &[Val::I64(65529)])),
        TrapKind::MemoryOutOfBounds
    );
    assert_eq!(load(&mut store, 65528).unwrap(), vec![Val::I32(0xff)]);
    assert_eq!(
        trap_kind(call(
            &mut store,
            inst,
            "fill",
            &[Val::I64(1 << 32), Val::I64(1)]
        )),
        TrapKind::MemoryOutOfBounds
    );
    // Growing: i64 sizes; past `Config::max_memory_bytes` (4 GiB here) fails.
    assert_eq!(
        call(&mut store, inst, "grow", &[Val::I64(1)]).unwrap(),
        vec![Val::I64(1)]
    );
    assert_eq!(
        call(&mut store, inst, "size", &[]).unwrap(),
        vec![Val::I64(2)]
    );
    assert_eq!(load(&mut store, 65536 + 7).unwrap(), vec![Val::I32(0)]);
    for delta in [1 << 16, 1 << 40, i64::MAX, -1] {
        assert_eq!(
            call(&mut store, inst, "grow", &[Val::I64(delta)]).unwrap(),
            vec![Val::I64(-1)],
            "{delta:#x}"
        );
    }
    // A 64-bit table: i64 indices in call_indirect and table.grow.
    assert_eq!(
        call(&mut store, inst, "call", &[Val::I64(1)]).unwrap(),
        vec![Val::I32(7)]
    );
    for at in [2, 1 << 32, -1] {
        assert_eq!(
            trap_kind(call(&mut store, inst, "call", &[Val::I64(at)])),
            TrapKind::TableOutOfBounds
        );
    }
    assert_eq!(
        call(&mut store, inst, "table_grow", &[Val::I64(3)]).unwrap(),
        vec![Val::I64(2)]
    );
    assert_eq!(
        call(&mut store, inst, "table_grow", &[Val::I64(-1)]).unwrap(),
        vec![Val::I64(-1)]
    );
}

#[test]
fn arithmetic_traps() {
    let (mut store, inst) = instantiate(PROGRAM);
    assert_eq!(
        call(&mut store, inst, "div", &[Val::I32(7), Val::I32(-2)]).unwrap(),
        vec![Val::I32(-3)]
    );
    assert_eq!(
        trap_kind(call(&mut store, inst, "div", &[Val::I32(1), Val::I32(0)])),
        TrapKind::IntegerDivisionByZero
    );
    assert_eq!(
        trap_kind(call(
            &mut store,
            inst,
            "div",
            &[Val::I32(i32::MIN), Val::I32(-1)]
        )),
        TrapKind::IntegerOverflow
    );
    assert_eq!(
        trap_kind(call(
            &mut store,
            inst,
            "conv",
            &[Val::F64(f64::NAN.to_bits())]
        )),
        TrapKind::BadConversionToInteger
    );
    assert_eq!(
        trap_kind(call(
            &mut store,
            inst,
            "conv",
            &[Val::F64(1e30f64.to_bits())]
        )),
        TrapKind::IntegerOverflow
    );
    assert_eq!(
        trap_kind(call(&mut store, inst, "boom", &[])),
        TrapKind::Unreachable
    );
}

#[test]
fn stack_overflow_is_a_trap() {
    let (mut store, inst) = instantiate(PROGRAM);
    assert_eq!(
        trap_kind(call(&mut store, inst, "recurse", &[Val::I64(0)])),
        TrapKind::StackOverflow
    );
    assert_eq!(
        call(&mut store, inst, "fac", &[Val::I64(5)]).unwrap(),
        vec![Val::I64(120)]
    );
}

#[test]
fn host_functions_see_arguments_state_and_errors() {
    let (mut store, inst) = instantiate(PROGRAM);
    call(&mut store, inst, "record_twice", &[Val::I64(-5)]).unwrap();
    call(&mut store, inst, "record_twice", &[Val::I64(9)]).unwrap();
    assert_eq!(store.data(), &vec![-5, 1, 9, 2]);
    assert_eq!(
        call(&mut store, inst, "exit", &[Val::I32(3)]),
        Err(Error::Exit(3))
    );
}

#[test]
fn float_min_follows_wasm_semantics() {
    let (mut store, inst) = instantiate(PROGRAM);
    let r = call(
        &mut store,
        inst,
        "fmin",
        &[Val::F32((-0.0f32).to_bits()), Val::F32(0.0f32.to_bits())],
    )
    .unwrap();
    assert_eq!(r, vec![Val::F32((-0.0f32).to_bits())]);
}

#[test]
fn trap_reports_name_the_function() {
    let (mut store, inst) = instantiate("(module (func $oops (export \"run\") unreachable))");
    match call(&mut store, inst, "run", &[]) {
        Err(Error::Trap(t)) => {
            assert_eq!(t.kind, TrapKind::Unreachable);
            assert_eq!(t.func, Some((0, Some("oops".into()))));
            assert_eq!(t.to_string(), "wasm trap: unreachable in function 0 (oops)");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn precompiled_artifacts_round_trip_and_refuse_other_modules() {
    let engine = engine();
    let wasm = wat::parse_str(PROGRAM).unwrap();
    let artifact = Module::compile_artifact(&engine, &wasm).unwrap();
    let module = Module::from_artifact(&engine, &wasm, &artifact).unwrap();
    let mut store = Store::new(&engine, Vec::new());
    let mut linker: Linker<Vec<i64>> = Linker::new();
    linker.func_new(
        "host",
        "record",
        FuncType::new(&[ValType::I64], &[]),
        |_, _, _| Ok(()),
    );
    linker.func_new(
        "host",
        "fail",
        FuncType::new(&[ValType::I32], &[]),
        |_, _, _| Ok(()),
    );
    let inst = linker.instantiate(&mut store, &module).unwrap();
    assert_eq!(
        call(&mut store, inst, "fac", &[Val::I64(10)]).unwrap(),
        vec![Val::I64(3_628_800)]
    );

    let other = wat::parse_str("(module (func (export \"f\")))").unwrap();
    let err = Module::from_artifact(&engine, &other, &artifact)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("different module"), "{err}");
    let mut truncated = artifact.clone();
    truncated.truncate(artifact.len() / 2);
    let err = Module::from_artifact(&engine, &wasm, &truncated)
        .err()
        .expect("refused");
    assert!(
        err.to_string().contains("truncated") || err.to_string().contains("offset"),
        "{err}"
    );
}

#[test]
fn malformed_and_invalid_modules_are_clear_errors() {
    let engine = engine();
    let err = Module::new(&engine, b"\0asm\x01\0\0\0\x01")
        .err()
        .expect("rejected");
    assert!(matches!(err, Error::Invalid { .. }), "{err}");
    let err = Module::new(&engine, b"not wasm at all")
        .err()
        .expect("rejected");
    assert!(err.to_string().starts_with("invalid module"), "{err}");
    let invalid = wat::parse_str("(module (func (result i32) (i64.const 1)))");
    // wat refuses to assemble ill-typed code only at validation, so build bytes directly.
    if let Ok(bytes) = invalid {
        let err = Module::new(&engine, &bytes).err().expect("rejected");
        assert!(matches!(err, Error::Invalid { .. }), "{err}");
    }
}

#[test]
fn unsatisfied_imports_name_the_import() {
    let engine = engine();
    let wasm = wat::parse_str("(module (import \"env\" \"missing\" (func)))").unwrap();
    let module = Module::new(&engine, &wasm).unwrap();
    let mut store: Store<()> = Store::new(&engine, ());
    let err = Linker::new()
        .instantiate(&mut store, &module)
        .err()
        .expect("link error");
    assert_eq!(
        err.to_string(),
        "cannot link import `env::missing`: not defined by the host"
    );
}

#[test]
fn exports_memory_and_globals_to_the_host() {
    let (mut store, inst) = instantiate(PROGRAM);
    let Some(Extern::Memory(mem)) = inst.get_export(&mut store, "memory") else {
        panic!("memory export")
    };
    assert_eq!(&mem.data(&store)[16..21], b"hello");
    mem.data_mut(&mut store)[16] = b'j';
    assert_eq!(
        call(&mut store, inst, "load_byte", &[Val::I32(16)]).unwrap(),
        vec![Val::I32(i32::from(b'j'))]
    );
}

/// Two instances bounce a countdown between each other with tail calls: `b`
/// tail-calls the imported `a`, `a` tail-calls `b` through a shared table.
/// A million hops run in constant stack, each side sees its own globals, and
/// a tail call to a host function returns to the original caller.
#[test]
fn tail_calls_cross_instances_in_constant_stack() {
    let engine = engine();
    let a = wat::parse_str(
        r#"(module
            (type $t (func (param i64) (result i32)))
            (table (export "table") 1 funcref)
            (global $g i32 (i32.const 100))
            (func (export "a") (type $t)
                (if (result i32) (i64.eqz (local.get 0))
                    (then (global.get $g))
                    (else (return_call_indirect (type $t)
                        (i64.sub (local.get 0) (i64.const 1)) (i32.const 0))))))"#,
    )
    .unwrap();
    let b = wat::parse_str(
        r#"(module
            (type $t (func (param i64) (result i32)))
            (import "a" "a" (func $a (type $t)))
            (import "a" "table" (table 1 funcref))
            (import "host" "record" (func $record (param i64)))
            (elem (i32.const 0) $b)
            (global $g i32 (i32.const 200))
            (func $b (export "b") (type $t)
                (if (result i32) (i64.eqz (local.get 0))
                    (then (global.get $g))
                    (else (return_call $a (i64.sub (local.get 0) (i64.const 1))))))
            (func (export "record") (param i64)
                (return_call $record (i64.mul (local.get 0) (i64.const 2)))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, Vec::new());
    let mut linker: Linker<Vec<i64>> = Linker::new();
    linker.func_new(
        "host",
        "record",
        FuncType::new(&[ValType::I64], &[]),
        |caller, args, _| {
            caller.data_mut().push(args[0].i64().unwrap_or_default());
            Ok(())
        },
    );
    let a = linker
        .instantiate(&mut store, &Module::new(&engine, &a).unwrap())
        .unwrap();
    linker.instance(&mut store, "a", a);
    let b = linker
        .instantiate(&mut store, &Module::new(&engine, &b).unwrap())
        .unwrap();
    assert_eq!(
        call(&mut store, b, "b", &[Val::I64(1_000_000)]).unwrap(),
        vec![Val::I32(200)]
    );
    assert_eq!(
        call(&mut store, b, "b", &[Val::I64(1_000_001)]).unwrap(),
        vec![Val::I32(100)]
    );
    assert_eq!(
        call(&mut store, a, "a", &[Val::I64(3)]).unwrap(),
        vec![Val::I32(200)]
    );
    call(&mut store, b, "record", &[Val::I64(21)]).unwrap();
    assert_eq!(store.data(), &vec![42]);
}

/// Several memories, one imported from another instance: each instruction
/// reaches the memory its immediate names, `memory.copy` moves bytes between
/// memories, and growth and out-of-bounds traps are per memory.
#[test]
fn multiple_memories_are_addressed_by_index() {
    let engine = engine();
    let a = wat::parse_str(r#"(module (memory (export "mem") 1) (data (i32.const 8) "shared"))"#)
        .unwrap();
    let b = wat::parse_str(
        r#"(module
            (import "a" "mem" (memory $shared 1))
            (memory $small 1 2)
            (memory $big 2)
            (data (memory $big) (i32.const 65536) "big")
            (func (export "store_small") (param i32 i32)
                (i32.store8 $small (local.get 0) (local.get 1)))
            (func (export "load_small") (param i32) (result i32)
                (i32.load8_u $small (local.get 0)))
            (func (export "load_big") (param i32) (result i32)
                (i32.load8_u $big (local.get 0)))
            (func (export "copy_shared_to_small")
                (memory.copy $small $shared (i32.const 100) (i32.const 8) (i32.const 6)))
            (func (export "grow_small") (result i32) (memory.grow $small (i32.const 1)))
            (func (export "sizes") (result i32 i32 i32)
                (memory.size $shared) (memory.size $small) (memory.size $big)))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, Vec::new());
    let mut linker: Linker<Vec<i64>> = Linker::new();
    let a = linker
        .instantiate(&mut store, &Module::new(&engine, &a).unwrap())
        .unwrap();
    linker.instance(&mut store, "a", a);
    let b = linker
        .instantiate(&mut store, &Module::new(&engine, &b).unwrap())
        .unwrap();
    call(&mut store, b, "store_small", &[Val::I32(5), Val::I32(77)]).unwrap();
    assert_eq!(
        call(&mut store, b, "load_small", &[Val::I32(5)]).unwrap(),
        vec![Val::I32(77)]
    );
    assert_eq!(
        call(&mut store, b, "load_big", &[Val::I32(65536)]).unwrap(),
        vec![Val::I32(i32::from(b'b'))]
    );
    call(&mut store, b, "copy_shared_to_small", &[]).unwrap();
    assert_eq!(
        call(&mut store, b, "load_small", &[Val::I32(100)]).unwrap(),
        vec![Val::I32(i32::from(b's'))]
    );
    assert_eq!(
        call(&mut store, b, "sizes", &[]).unwrap(),
        vec![Val::I32(1), Val::I32(1), Val::I32(2)]
    );
    assert_eq!(
        trap_kind(call(&mut store, b, "load_small", &[Val::I32(65536)])),
        TrapKind::MemoryOutOfBounds
    );
    assert_eq!(
        call(&mut store, b, "grow_small", &[]).unwrap(),
        vec![Val::I32(1)]
    );
    assert_eq!(
        call(&mut store, b, "load_small", &[Val::I32(65536)]).unwrap(),
        vec![Val::I32(0)]
    );
    assert_eq!(
        call(&mut store, b, "grow_small", &[]).unwrap(),
        vec![Val::I32(-1)]
    );
}

/// Typed function references: `call_ref` calls through a reference, a
/// null one traps, and linking compares reference types exactly: a global
/// of `(ref null $i64)` does not satisfy an import of `(ref null $i32)` or
/// of `(ref $i64)` (not nullable), but does satisfy `(ref null func)`.
#[test]
fn call_ref_and_linking_of_typed_references() {
    let engine = engine();
    let a = wat::parse_str(
        r#"(module
            (type $i64 (func (param i64) (result i64)))
            (func $double (type $i64) (i64.mul (local.get 0) (i64.const 2)))
            (global (export "f") (ref null $i64) (ref.func $double))
            (global (export "none") (ref null $i64) (ref.null $i64)))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, Vec::new());
    let mut linker: Linker<Vec<i64>> = Linker::new();
    let a = linker
        .instantiate(&mut store, &Module::new(&engine, &a).unwrap())
        .unwrap();
    linker.instance(&mut store, "a", a);

    for import in [
        "(type $i32 (func (param i32) (result i32))) (import \"a\" \"f\" (global (ref null $i32)))",
        "(type $i64 (func (param i64) (result i64))) (import \"a\" \"f\" (global (ref $i64)))",
    ] {
        let wasm = wat::parse_str(format!("(module {import})")).unwrap();
        let err = linker
            .instantiate(&mut store, &Module::new(&engine, &wasm).unwrap())
            .err()
            .unwrap_or_else(|| panic!("{import} links"));
        assert!(
            matches!(err, Error::Link { .. }) && err.to_string().contains("(ref null (func"),
            "{err}"
        );
    }

    let b = wat::parse_str(
        r#"(module
            (type $i64 (func (param i64) (result i64)))
            (import "a" "f" (global $right (ref null $i64)))
            (import "a" "f" (global $any (ref null func)))
            (import "a" "none" (global $none (ref null $i64)))
            (func (export "right") (param i64) (result i64)
                (call_ref $i64 (local.get 0) (global.get $right)))
            (func (export "null") (param i64) (result i64)
                (call_ref $i64 (local.get 0) (global.get $none))))"#,
    )
    .unwrap();
    let b = linker
        .instantiate(&mut store, &Module::new(&engine, &b).unwrap())
        .unwrap();
    assert_eq!(
        call(&mut store, b, "right", &[Val::I64(21)]).unwrap(),
        vec![Val::I64(42)]
    );
    assert_eq!(
        trap_kind(call(&mut store, b, "null", &[Val::I64(1)])),
        TrapKind::NullReference
    );
}

/// Declared subtypes and recursion groups of function types: `call_indirect`
/// and `call_ref` accept a function whose type declares the expected one
/// as a supertype; imports match by subtyping, with types compared
/// canonically (whole recursion groups) across modules.
#[test]
fn subtypes_and_recursion_groups_of_function_types() {
    let engine = engine();
    let types = r#"
        (type $base (sub (func (result i32))))
        (type $derived (sub $base (func (result i32))))
        (rec (type $r1 (func (param (ref null $r2)))) (type $r2 (func (result (ref null $r1)))))"#;
    let a = wat::parse_str(format!(
        r#"(module {types}
            (func $base (export "base") (type $base) (i32.const 1))
            (func $derived (export "derived") (type $derived) (i32.const 2))
            (func $r1 (export "r1") (type $r1))
            (table 2 funcref)
            (elem (i32.const 0) $base $derived)
            (func (export "as_base") (param i32) (result i32)
                (call_indirect (type $base) (local.get 0)))
            (func (export "as_derived") (param i32) (result i32)
                (call_indirect (type $derived) (local.get 0)))
            (func (export "ref_as_base") (result i32)
                (call_ref $base (ref.func $derived))))"#
    ))
    .unwrap();
    let mut store = Store::new(&engine, Vec::new());
    let mut linker: Linker<Vec<i64>> = Linker::new();
    let a = linker
        .instantiate(&mut store, &Module::new(&engine, &a).unwrap())
        .unwrap();
    linker.instance(&mut store, "a", a);
    for (name, arg, want) in [("as_base", 0, 1), ("as_base", 1, 2), ("as_derived", 1, 2)] {
        assert_eq!(
            call(&mut store, a, name, &[Val::I32(arg)]).unwrap(),
            vec![Val::I32(want)],
            "{name}({arg})"
        );
    }
    assert_eq!(
        trap_kind(call(&mut store, a, "as_derived", &[Val::I32(0)])),
        TrapKind::BadSignature,
        "a function of the supertype is not of the subtype"
    );
    assert_eq!(
        call(&mut store, a, "ref_as_base", &[]).unwrap(),
        vec![Val::I32(2)]
    );

    // Importing by a supertype links; by a subtype, or by a group of
    // another shape, it does not.
    let good = wat::parse_str(format!(
        r#"(module {types}
            (import "a" "derived" (func (type $base)))
            (import "a" "derived" (func (type $derived)))
            (import "a" "r1" (func (type $r1))))"#
    ))
    .unwrap();
    linker
        .instantiate(&mut store, &Module::new(&engine, &good).unwrap())
        .unwrap();
    for import in [
        r#"(import "a" "base" (func (type $derived)))"#,
        r#"(import "a" "r1" (func (type $lone)))"#,
    ] {
        let wasm = wat::parse_str(format!(
            r#"(module {types} (type $lone (func (param (ref null $r2)))) {import})"#
        ))
        .unwrap();
        let err = linker
            .instantiate(&mut store, &Module::new(&engine, &wasm).unwrap())
            .err()
            .unwrap_or_else(|| panic!("{import} links"));
        assert!(matches!(err, Error::Link { .. }), "{import}: {err}");
    }
}

/// GC's references without a heap: `i31ref`s (also in constant
/// expressions), `ref.eq`, the free conversions between `externref` and
/// `anyref`, and type tests and casts of abstract and function types.
#[test]
fn i31_refs_conversions_and_casts() {
    let engine = engine();
    let mut store = Store::new(&engine, Vec::new());
    let wasm = wat::parse_str(
        r#"(module
            (type $f (sub (func)))
            (type $g (sub $f (func)))
            (func $g (type $g)) (elem declare func $g)
            (global $seven i31ref (ref.i31 (i32.const 7)))
            (func (export "i31") (param i32) (result i32 i32)
                (i31.get_s (ref.i31 (local.get 0))) (i31.get_u (ref.i31 (local.get 0))))
            (func (export "seven") (result i32) (i31.get_u (global.get $seven)))
            (func (export "null_i31") (result i32) (i31.get_s (ref.null i31)))
            (func (export "eq") (param i32 i32) (result i32)
                (ref.eq (ref.i31 (local.get 0)) (ref.i31 (local.get 1))))
            (func (export "internalize") (param externref) (result anyref)
                (any.convert_extern (local.get 0)))
            (func (export "externalize") (param anyref) (result externref)
                (extern.convert_any (local.get 0)))
            (func (export "is_i31") (param anyref) (result i32) (ref.test (ref i31) (local.get 0)))
            (func (export "is_eq") (param anyref) (result i32) (ref.test (ref null eq) (local.get 0)))
            (func (export "is_struct") (param anyref) (result i32) (ref.test (ref struct) (local.get 0)))
            (func (export "cast_i31") (param anyref) (result i32)
                (i31.get_u (ref.cast (ref i31) (local.get 0))))
            (func (export "is_f") (result i32) (ref.test (ref $f) (ref.func $g)))
            (func (export "is_g_null") (result i32) (ref.test (ref null $g) (ref.null $f)))
            (func (export "on_cast") (param anyref) (result i32)
                (block $yes (result i31ref)
                    (br_on_cast $yes anyref i31ref (local.get 0))
                    (drop) (return (i32.const -1)))
                (i31.get_u)))"#,
    )
    .unwrap();
    let linker: Linker<Vec<i64>> = Linker::new();
    let i = linker
        .instantiate(&mut store, &Module::new(&engine, &wasm).unwrap())
        .unwrap();
    let host = |n| Val::AnyRef(Some(AnyRef::Host(n)));
    let i31 = |n| Val::AnyRef(Some(AnyRef::I31(n)));
    assert_eq!(
        call(&mut store, i, "i31", &[Val::I32(-5)]).unwrap(),
        vec![Val::I32(-5), Val::I32(0x7fff_fffb)]
    );
    assert_eq!(
        call(&mut store, i, "seven", &[]).unwrap(),
        vec![Val::I32(7)]
    );
    assert_eq!(
        trap_kind(call(&mut store, i, "null_i31", &[])),
        TrapKind::NullReference
    );
    assert_eq!(
        call(&mut store, i, "eq", &[Val::I32(3), Val::I32(3 | 1 << 31)]).unwrap(),
        vec![Val::I32(1)],
        "ref.i31 keeps 31 bits"
    );
    assert_eq!(
        call(
            &mut store,
            i,
            "internalize",
            &[Val::ExternRef(Some(AnyRef::Host(9)))]
        )
        .unwrap(),
        vec![host(9)]
    );
    assert_eq!(
        call(&mut store, i, "externalize", &[i31(4)]).unwrap(),
        vec![Val::ExternRef(Some(AnyRef::I31(4)))]
    );
    for (name, arg, want) in [
        ("is_i31", i31(1), 1),
        ("is_i31", host(1), 0),
        ("is_i31", Val::AnyRef(None), 0),
        ("is_eq", Val::AnyRef(None), 1),
        ("is_eq", host(1), 0),
        ("is_struct", i31(1), 0),
        ("cast_i31", i31(12), 12),
        ("on_cast", i31(6), 6),
        ("on_cast", host(6), -1),
    ] {
        assert_eq!(
            call(&mut store, i, name, &[arg]).unwrap(),
            vec![Val::I32(want)],
            "{name}({arg:?})"
        );
    }
    assert_eq!(
        trap_kind(call(&mut store, i, "cast_i31", &[host(3)])),
        TrapKind::CastFailure
    );
    assert_eq!(call(&mut store, i, "is_f", &[]).unwrap(), vec![Val::I32(1)]);
    assert_eq!(
        call(&mut store, i, "is_g_null", &[]).unwrap(),
        vec![Val::I32(1)]
    );
}

/// `memory.copy` between two memories copies in place: 100,000 one-byte
/// copies out of a 1 GiB second memory finish at once (each used to copy
/// the whole source first), and copies between two imports of one memory
/// behave as `memmove`.
#[test]
fn memory_copy_between_memories_copies_in_place() {
    let engine = engine();
    let module = compile(
        &engine,
        r#"(module
            (memory $small 1)
            (memory $big 16384)
            (func (export "many") (result i32) (local $i i32)
              (i32.store8 $big (i32.const 0x3fff_fff0) (i32.const 7))
              (loop $again
                (memory.copy $small $big (i32.and (local.get $i) (i32.const 0xfff)) (i32.const 0x3fff_fff0) (i32.const 1))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br_if $again (i32.lt_u (local.get $i) (i32.const 100000)))
                )
              (i32.add (i32.load8_u $small (i32.const 0)) (i32.load8_u $small (i32.const 4095))))
            (func (export "out_of_bounds")
              (memory.copy $small $big (i32.const 65535) (i32.const 0) (i32.const 2))))"#,
    );
    let mut store = Store::new(&engine, ());
    let instance = Linker::<()>::new()
        .instantiate(&mut store, &module)
        .unwrap();
    let started = std::time::Instant::now();
    let r = call(&mut store, instance, "many", &[]).unwrap();
    assert_eq!(r, vec![Val::I32(14)]);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(
        trap_kind(call(&mut store, instance, "out_of_bounds", &[])),
        TrapKind::MemoryOutOfBounds
    );

    // One memory imported twice: an overlapping copy is a memmove.
    let exporter = compile(&engine, r#"(module (memory (export "m") 1))"#);
    let twice = compile(
        &engine,
        r#"(module
            (import "e" "m" (memory $a 1))
            (import "e" "m" (memory $b 1))
            (func (export "shift") (result i64)
              (i64.store $a (i32.const 0) (i64.const 0x0807060504030201))
              (memory.copy $a $b (i32.const 1) (i32.const 0) (i32.const 7))
              (i64.load $b (i32.const 0))))"#,
    );
    let mut store = Store::new(&engine, ());
    let mut linker = Linker::<()>::new();
    let e = linker.instantiate(&mut store, &exporter).unwrap();
    linker.instance(&mut store, "e", e);
    let i = linker.instantiate(&mut store, &twice).unwrap();
    assert_eq!(
        call(&mut store, i, "shift", &[]).unwrap(),
        vec![Val::I64(0x0706050403020101)]
    );
}

/// An endless loop and an endless recursion through calls are stopped
/// once another thread raises the store's interrupt request, the check
/// decides (it may let the code go on), and the store runs code again
/// afterwards.
#[test]
fn an_interrupt_request_stops_endless_loops_and_calls() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    let engine = basalt_runtime::Engine::new(basalt_runtime::Config {
        interruptible: true,
        ..basalt_runtime::Config::hosted()
    })
    .unwrap();
    let module = compile(
        &engine,
        r#"(module
            (func (export "spin") (loop $l (br $l)))
            (func $ping (export "ping") (param i32) (result i32)
              (if (result i32) (i32.eqz (local.get 0))
                (then (return_call $pong (i32.const 1)))
                (else (return_call $pong (i32.const 0)))))
            (func $pong (param i32) (result i32) (return_call $ping (local.get 0)))
            (func $seven (export "seven") (result i32) (i32.const 7))
            (func (export "ok") (result i32) (call $seven)))"#,
    );
    let mut store = Store::new(&engine, ());
    let handle = store.interrupt_handle();
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    // Raises the request every millisecond until the test ends.
    let raiser = std::thread::spawn(move || {
        while !d.load(Ordering::Relaxed) {
            handle.interrupt();
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    });
    let asked = Arc::new(AtomicU32::new(0));
    let a = asked.clone();
    // Lets the code go on twice, then stops it.
    store.set_interrupt_check(move || a.fetch_add(1, Ordering::Relaxed) % 3 == 2);
    let instance = Linker::<()>::new()
        .instantiate(&mut store, &module)
        .unwrap();
    assert_eq!(
        trap_kind(call(&mut store, instance, "spin", &[])),
        TrapKind::Interrupted
    );
    assert_eq!(asked.load(Ordering::Relaxed), 3);
    assert_eq!(
        trap_kind(call(&mut store, instance, "ping", &[Val::I32(0)])),
        TrapKind::Interrupted
    );
    assert_eq!(asked.load(Ordering::Relaxed), 6);
    done.store(true, Ordering::Relaxed);
    raiser.join().unwrap();
    // A request raised while nothing ran is seen by the next check: not
    // in a function that calls nothing and has no loop (`seven` has no
    // check: it ends after a bounded number of steps), at the entry of
    // one that calls.
    store.interrupt_handle().interrupt();
    asked.store(2, Ordering::Relaxed);
    assert_eq!(
        call(&mut store, instance, "seven", &[]).unwrap(),
        vec![Val::I32(7)]
    );
    assert_eq!(asked.load(Ordering::Relaxed), 2, "no check in a leaf");
    assert_eq!(
        trap_kind(call(&mut store, instance, "ok", &[])),
        TrapKind::Interrupted
    );
    assert_eq!(
        call(&mut store, instance, "ok", &[]).unwrap(),
        vec![Val::I32(7)]
    );
}

/// Without a check, a raised request stops the code at once.
#[test]
fn without_a_check_a_raised_request_stops() {
    let engine = basalt_runtime::Engine::new(basalt_runtime::Config {
        interruptible: true,
        ..basalt_runtime::Config::hosted()
    })
    .unwrap();
    let module = compile(
        &engine,
        r#"(module (func (export "spin") (loop $l (br $l))))"#,
    );
    let mut store = Store::new(&engine, ());
    let handle = store.interrupt_handle();
    let instance = Linker::<()>::new()
        .instantiate(&mut store, &module)
        .unwrap();
    let raiser = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        handle.interrupt();
    });
    assert_eq!(
        trap_kind(call(&mut store, instance, "spin", &[])),
        TrapKind::Interrupted
    );
    raiser.join().unwrap();
}

/// An engine that is not `interruptible` compiles no checks: a raised
/// request is never seen, and a long loop runs to its end.
#[test]
fn without_interruptible_code_the_check_is_never_asked() {
    let engine = engine();
    let module = compile(
        &engine,
        r#"(module (func (export "count") (result i32) (local $i i32)
             (loop $l
               (local.set $i (i32.add (local.get $i) (i32.const 1)))
               (br_if $l (i32.lt_u (local.get $i) (i32.const 1000000))))
             (local.get $i)))"#,
    );
    let mut store = Store::new(&engine, ());
    store.set_interrupt_check(|| true);
    store.interrupt_handle().interrupt();
    let instance = Linker::<()>::new()
        .instantiate(&mut store, &module)
        .unwrap();
    assert_eq!(
        call(&mut store, instance, "count", &[]).unwrap(),
        vec![Val::I32(1_000_000)]
    );
}
