//! Focused checks of the function translator for constructs whose spec
//! scripts (`br_table.wast`, `ref_null.wast`, `table.wast`, …) cannot run in
//! full because they also use Wasm 3.0 features.

// Tests unwrap freely: a failure is a test failure with the error shown.
#![allow(clippy::unwrap_used)]

mod common;

use basalt_runtime::{AnyRef, Instance, Linker, Store, TrapKind, Val};
use common::{call, compile, engine, trap_kind as trap};

fn instantiate(wat: &str) -> (Store<()>, Instance) {
    let engine = engine();
    let module = compile(&engine, wat);
    let mut store = Store::new(&engine, ());
    let instance = Linker::new()
        .instantiate(&mut store, &module)
        .expect("instantiates");
    (store, instance)
}

#[test]
fn br_table_with_values_and_loop_targets() {
    let (mut s, i) = instantiate(
        r#"(module
          (func (export "pick") (param i32) (result i32 i64)
            (block $a (result i32 i64)
              (block $b (result i32 i64)
                (block $c (result i32 i64)
                  (i32.const 10) (i64.const 20)
                  (br_table $a $b $c (local.get 0)))
                (drop) (drop) (i32.const 30) (i64.const 40) (br 1))
              (drop) (drop) (i32.const 50) (i64.const 60)))
          (func (export "count") (param i32) (result i32) (local $n i32)
            (loop $top
              (local.set $n (i32.add (local.get $n) (i32.const 1)))
              (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
              (block $out
                (br_table $top $out (i32.eqz (local.get 0)))))
            (local.get $n))
          (func (export "loop_params") (param i32) (result i32)
            (i32.const 0)
            (loop $l (param i32) (result i32)
              (i32.add (local.get 0))
              (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
              (br_if $l (i32.gt_s (local.get 0) (i32.const 0))))
            )
          (func (export "empty_table") (param i32) (result i32)
            (block $d (result i32) (i32.const 7) (br_table $d (local.get 0)))))"#,
    );
    let pick = |s: &mut Store<()>, n| call(s, i, "pick", &[Val::I32(n)]).unwrap();
    assert_eq!(pick(&mut s, 0), vec![Val::I32(10), Val::I64(20)]);
    // $b exits to code that replaces the pair; $c (the default) exits to
    // code that branches straight out of $a.
    assert_eq!(pick(&mut s, 1), vec![Val::I32(50), Val::I64(60)]);
    assert_eq!(pick(&mut s, 2), vec![Val::I32(30), Val::I64(40)]);
    assert_eq!(pick(&mut s, -1), vec![Val::I32(30), Val::I64(40)]);
    assert_eq!(
        call(&mut s, i, "count", &[Val::I32(5)]).unwrap(),
        vec![Val::I32(5)]
    );
    assert_eq!(
        call(&mut s, i, "loop_params", &[Val::I32(4)]).unwrap(),
        vec![Val::I32(10)]
    );
    assert_eq!(
        call(&mut s, i, "empty_table", &[Val::I32(3)]).unwrap(),
        vec![Val::I32(7)]
    );
}

#[test]
fn if_with_params_and_no_else_and_unreachable_nesting() {
    let (mut s, i) = instantiate(
        r#"(module
          (func (export "inc_if") (param i32 i32) (result i32)
            (local.get 0)
            (if (param i32) (result i32) (local.get 1)
              (then (i32.add (i32.const 1)))))
          (func (export "swap_if") (param i32) (result i32 i32)
            (i32.const 1) (i32.const 2)
            (if (param i32 i32) (result i32 i32) (local.get 0)
              (then (local.set 0) (local.get 0) (return (i32.const 9) (local.get 0)))
              (else)))
          (func (export "dead") (param i32) (result i32)
            (block $b (result i32)
              (i32.const 3)
              (br $b)
              (block (result i32)
                (loop (result i32) (if (result i32) (i32.const 1) (then (i32.const 4)) (else (unreachable)))))
              (i32.add)))
          (func (export "then_breaks") (param i32) (result i32)
            (block $b (result i32)
              (if (result i32) (local.get 0)
                (then (br $b (i32.const 11)))
                (else (i32.const 12)))))
          (func (export "both_unreachable") (param i32) (result i32)
            (if (local.get 0) (then (return (i32.const 1))) (else (return (i32.const 2))))
            (i32.const 3)))"#,
    );
    assert_eq!(
        call(&mut s, i, "inc_if", &[Val::I32(5), Val::I32(1)]).unwrap(),
        vec![Val::I32(6)]
    );
    assert_eq!(
        call(&mut s, i, "inc_if", &[Val::I32(5), Val::I32(0)]).unwrap(),
        vec![Val::I32(5)]
    );
    assert_eq!(
        call(&mut s, i, "swap_if", &[Val::I32(1)]).unwrap(),
        vec![Val::I32(9), Val::I32(2)]
    );
    assert_eq!(
        call(&mut s, i, "swap_if", &[Val::I32(0)]).unwrap(),
        vec![Val::I32(1), Val::I32(2)]
    );
    assert_eq!(
        call(&mut s, i, "dead", &[Val::I32(0)]).unwrap(),
        vec![Val::I32(3)]
    );
    assert_eq!(
        call(&mut s, i, "then_breaks", &[Val::I32(1)]).unwrap(),
        vec![Val::I32(11)]
    );
    assert_eq!(
        call(&mut s, i, "then_breaks", &[Val::I32(0)]).unwrap(),
        vec![Val::I32(12)]
    );
    assert_eq!(
        call(&mut s, i, "both_unreachable", &[Val::I32(1)]).unwrap(),
        vec![Val::I32(1)]
    );
    assert_eq!(
        call(&mut s, i, "both_unreachable", &[Val::I32(0)]).unwrap(),
        vec![Val::I32(2)]
    );
}

#[test]
fn remainder_and_division_edge_cases() {
    let (mut s, i) = instantiate(
        r#"(module
          (func (export "rem32") (param i32 i32) (result i32) (i32.rem_s (local.get 0) (local.get 1)))
          (func (export "rem64") (param i64 i64) (result i64) (i64.rem_s (local.get 0) (local.get 1)))
          (func (export "div64") (param i64 i64) (result i64) (i64.div_s (local.get 0) (local.get 1)))
          (func (export "remu") (param i32 i32) (result i32) (i32.rem_u (local.get 0) (local.get 1)))
          (func (export "trunc_sat") (param f64) (result i32) (i32.trunc_sat_f64_u (local.get 0)))
          (func (export "trunc_u") (param f32) (result i64) (i64.trunc_f32_u (local.get 0))))"#,
    );
    let r = |s: &mut Store<()>, n: &str, a: &[Val]| call(s, i, n, a);
    assert_eq!(
        r(&mut s, "rem32", &[Val::I32(i32::MIN), Val::I32(-1)]).unwrap(),
        vec![Val::I32(0)]
    );
    assert_eq!(
        r(&mut s, "rem32", &[Val::I32(-7), Val::I32(2)]).unwrap(),
        vec![Val::I32(-1)]
    );
    assert_eq!(
        r(&mut s, "rem64", &[Val::I64(i64::MIN), Val::I64(-1)]).unwrap(),
        vec![Val::I64(0)]
    );
    assert_eq!(
        trap(r(&mut s, "rem64", &[Val::I64(1), Val::I64(0)])),
        TrapKind::IntegerDivisionByZero
    );
    assert_eq!(
        trap(r(&mut s, "div64", &[Val::I64(i64::MIN), Val::I64(-1)])),
        TrapKind::IntegerOverflow
    );
    assert_eq!(
        trap(r(&mut s, "remu", &[Val::I32(1), Val::I32(0)])),
        TrapKind::IntegerDivisionByZero
    );
    assert_eq!(
        r(&mut s, "trunc_sat", &[Val::F64((-5.0f64).to_bits())]).unwrap(),
        vec![Val::I32(0)]
    );
    assert_eq!(
        r(&mut s, "trunc_sat", &[Val::F64(1e12f64.to_bits())]).unwrap(),
        vec![Val::I32(-1)]
    );
    assert_eq!(
        r(&mut s, "trunc_sat", &[Val::F64(f64::NAN.to_bits())]).unwrap(),
        vec![Val::I32(0)]
    );
    assert_eq!(
        trap(r(&mut s, "trunc_u", &[Val::F32((-1.0f32).to_bits())])),
        TrapKind::IntegerOverflow
    );
    assert_eq!(
        trap(r(&mut s, "trunc_u", &[Val::F32(f32::NAN.to_bits())])),
        TrapKind::BadConversionToInteger
    );
}

#[test]
fn references_tables_and_globals() {
    let (mut s, i) = instantiate(
        r#"(module
          (type $t (func (result i32)))
          (table $a 2 funcref)
          (table $b 3 10 externref)
          (global $g (mut funcref) (ref.null func))
          (global $f (mut f64) (f64.const 1.5))
          (elem declare func $seven)
          (func $seven (result i32) (i32.const 7))
          (func (export "null_checks") (result i32)
            (i32.add
              (ref.is_null (ref.null func))
              (i32.shl (ref.is_null (ref.func $seven)) (i32.const 1))))
          (func (export "via_global") (result i32)
            (global.set $g (ref.func $seven))
            (table.set $a (i32.const 1) (global.get $g))
            (call_indirect $a (type $t) (i32.const 1)))
          (func (export "ext") (param externref) (result externref)
            (table.set $b (i32.const 2) (local.get 0))
            (table.get $b (i32.const 2)))
          (func (export "grow") (param externref i32) (result i32 i32)
            (table.grow $b (local.get 0) (local.get 1))
            (table.size $b))
          (func (export "fill") (param i32 externref i32)
            (table.fill $b (local.get 0) (local.get 1) (local.get 2)))
          (func (export "typed_select") (param i32) (result externref)
            (select (result externref) (ref.null extern) (table.get $b (i32.const 2)) (local.get 0)))
          (func (export "fglobal") (result f64)
            (global.set $f (f64.mul (global.get $f) (f64.const 2)))
            (global.get $f)))"#,
    );
    assert_eq!(
        call(&mut s, i, "null_checks", &[]).unwrap(),
        vec![Val::I32(1)]
    );
    assert_eq!(
        call(&mut s, i, "via_global", &[]).unwrap(),
        vec![Val::I32(7)]
    );
    assert_eq!(
        call(&mut s, i, "ext", &[Val::ExternRef(Some(AnyRef::Host(42)))]).unwrap(),
        vec![Val::ExternRef(Some(AnyRef::Host(42)))]
    );
    assert_eq!(
        call(&mut s, i, "typed_select", &[Val::I32(0)]).unwrap(),
        vec![Val::ExternRef(Some(AnyRef::Host(42)))]
    );
    assert_eq!(
        call(&mut s, i, "grow", &[Val::ExternRef(None), Val::I32(2)]).unwrap(),
        vec![Val::I32(3), Val::I32(5)]
    );
    assert_eq!(
        call(&mut s, i, "grow", &[Val::ExternRef(None), Val::I32(6)]).unwrap(),
        vec![Val::I32(-1), Val::I32(5)]
    );
    assert_eq!(
        trap(call(
            &mut s,
            i,
            "fill",
            &[
                Val::I32(4),
                Val::ExternRef(Some(AnyRef::Host(1))),
                Val::I32(2)
            ]
        )),
        TrapKind::TableOutOfBounds
    );
    assert_eq!(
        call(&mut s, i, "fglobal", &[]).unwrap(),
        vec![Val::F64(3.0f64.to_bits())]
    );
}

#[test]
fn narrow_memory_accesses_and_bulk_memory() {
    let (mut s, i) = instantiate(
        r#"(module
          (memory 1)
          (data $d "\01\02\03\04\80\ff")
          (func (export "init") (memory.init $d (i32.const 100) (i32.const 0) (i32.const 6)) (data.drop $d))
          (func (export "init_again") (memory.init $d (i32.const 0) (i32.const 0) (i32.const 1)))
          (func (export "s8") (param i32) (result i64) (i64.load8_s (local.get 0)))
          (func (export "u16") (param i32) (result i32) (i32.load16_u offset=2 (local.get 0)))
          (func (export "s32") (param i32) (result i64) (i64.load32_s (local.get 0)))
          (func (export "st16") (param i32 i64) (i64.store16 offset=1 (local.get 0) (local.get 1)))
          (func (export "u32") (param i32) (result i64) (i64.load32_u (local.get 0)))
          (func (export "big_offset") (param i32) (result i32) (i32.load offset=0xffff_fff0 (local.get 0)))
          (func (export "copy") (param i32 i32 i32) (memory.copy (local.get 0) (local.get 1) (local.get 2))))"#,
    );
    call(&mut s, i, "init", &[]).unwrap();
    assert_eq!(
        call(&mut s, i, "s8", &[Val::I32(104)]).unwrap(),
        vec![Val::I64(-128)]
    );
    assert_eq!(
        call(&mut s, i, "u16", &[Val::I32(102)]).unwrap(),
        vec![Val::I32(0xff80)]
    );
    assert_eq!(
        call(&mut s, i, "s32", &[Val::I32(102)]).unwrap(),
        vec![Val::I64(i64::from(0xff80_0403u32 as i32))]
    );
    call(&mut s, i, "st16", &[Val::I32(199), Val::I64(0x1234_5678)]).unwrap();
    assert_eq!(
        call(&mut s, i, "u32", &[Val::I32(200)]).unwrap(),
        vec![Val::I64(0x5678)]
    );
    assert_eq!(
        trap(call(&mut s, i, "init_again", &[])),
        TrapKind::MemoryOutOfBounds
    );
    assert_eq!(
        trap(call(&mut s, i, "big_offset", &[Val::I32(0)])),
        TrapKind::MemoryOutOfBounds
    );
    call(
        &mut s,
        i,
        "copy",
        &[Val::I32(300), Val::I32(100), Val::I32(6)],
    )
    .unwrap();
    assert_eq!(
        call(&mut s, i, "s8", &[Val::I32(305)]).unwrap(),
        vec![Val::I64(-1)]
    );
    assert_eq!(
        trap(call(
            &mut s,
            i,
            "copy",
            &[Val::I32(65530), Val::I32(0), Val::I32(7)]
        )),
        TrapKind::MemoryOutOfBounds
    );
}
