//! 128-bit SIMD through the engine's boundaries — v128 parameters and
//! results of exported functions (array trampolines), v128 globals,
//! host functions taking and returning v128 — plus a compile-only check that
//! every module of the spec suite's `simd_*.wast` scripts builds for AArch64
//! and for the x86-64 baseline (SSE4.1, nothing newer).
//!
//! The scripts' assertions themselves run in `tests/tests/spec.rs`.

// Tests unwrap freely: a failure is a test failure with the error shown.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use basalt_runtime::{
    Arch, Config, Engine, Extern, FuncType, Global, GlobalType, Linker, Module, Store, Target, Val,
    ValType,
};

const V: u128 = 0x0f0e_0d0c_0b0a_0908_0706_0504_0302_0100;

#[test]
fn v128_crosses_calls_globals_and_host_functions() {
    let engine = Engine::new(Config::hosted()).expect("hosted engine");
    let wasm = wat::parse_str(
        r#"(module
          (import "host" "swap" (func $swap (param i32 v128 f64) (result v128 i32)))
          (import "host" "g" (global $hg (mut v128)))
          (global $g (export "g") (mut v128) (v128.const i32x4 1 2 3 4))
          (func (export "add") (param v128 v128) (result v128)
            (i32x4.add (local.get 0) (local.get 1)))
          (func (export "via_host") (param v128) (result v128 i32)
            (call $swap (i32.const 7) (local.get 0) (f64.const 1.5)))
          (func (export "bump") (result v128)
            (global.set $g (i64x2.add (global.get $g) (global.get $hg)))
            (global.get $g))
          (func (export "min") (param v128 v128) (result v128)
            (f32x4.min (local.get 0) (local.get 1))))"#,
    )
    .expect("valid wat");
    let module = Module::new(&engine, &wasm).expect("compiles");
    let mut store = Store::new(&engine, ());
    let mut linker = Linker::new();
    let swap = FuncType::new(
        &[ValType::I32, ValType::V128, ValType::F64],
        &[ValType::V128, ValType::I32],
    );
    linker.func_new("host", "swap", swap, |_, args, results| {
        let (Val::I32(n), Val::V128(v), Val::F64(f)) = (args[0], args[1], args[2]) else {
            panic!("bad host arguments {args:?}");
        };
        assert_eq!(f64::from_bits(f), 1.5);
        results[0] = Val::V128(v.rotate_left(32));
        results[1] = Val::I32(n * 2);
        Ok(())
    });
    let hg = Global::new(
        &mut store,
        GlobalType {
            content: ValType::V128,
            mutable: true,
        },
        Val::V128(1 | (1 << 64)),
    )
    .unwrap();
    linker.define("host", "g", Extern::Global(hg));
    let inst = linker.instantiate(&mut store, &module).expect("links");

    let mut call = |name: &str, args: &[Val]| {
        let f = inst.get_func(&mut store, name).unwrap();
        let mut results: Vec<Val> = f
            .ty(&store)
            .results
            .iter()
            .map(|t| Val::default_for(*t))
            .collect();
        f.call(&mut store, args, &mut results).unwrap();
        results
    };
    let lanes = |l: [u32; 4]| {
        Val::V128(
            l.iter()
                .rev()
                .fold(0u128, |acc, x| (acc << 32) | u128::from(*x)),
        )
    };
    assert_eq!(
        call("add", &[lanes([1, 2, 3, u32::MAX]), lanes([10, 20, 30, 2])]),
        [lanes([11, 22, 33, 1])]
    );
    assert_eq!(
        call("via_host", &[Val::V128(V)]),
        [Val::V128(V.rotate_left(32)), Val::I32(14)]
    );
    assert_eq!(call("bump", &[]), [lanes([2, 2, 4, 4])]);
    // wasm's min, not minps: NaN from either side wins, -0 < +0.
    let nan = 0x7fc0_0000;
    let neg0 = 0x8000_0000;
    let [Val::V128(m)] = call(
        "min",
        &[
            lanes([nan, 1.0f32.to_bits(), 0, 5]),
            lanes([1.0f32.to_bits(), nan, neg0, 3]),
        ],
    )[..] else {
        panic!("one v128 result");
    };
    let m = m.to_le_bytes();
    let lane = |i: usize| u32::from_le_bytes(m[i * 4..i * 4 + 4].try_into().unwrap());
    assert!(f32::from_bits(lane(0)).is_nan());
    assert!(f32::from_bits(lane(1)).is_nan());
    assert_eq!(lane(2), neg0);
    assert_eq!(lane(3), 3);
    let g = inst.get_global(&mut store, "g").unwrap();
    assert_eq!(g.get(&store), lanes([2, 2, 4, 4]));
}

/// Relaxed SIMD gives one fixed result wherever the proposal allows
/// several: the deterministic instruction's, and an unfused multiply-add.
#[test]
fn relaxed_simd_picks_the_deterministic_results() {
    let engine = Engine::new(Config::hosted()).expect("hosted engine");
    let wasm = wat::parse_str(
        r#"(module
          (func (export "madd") (param v128 v128 v128) (result v128)
            (f32x4.relaxed_madd (local.get 0) (local.get 1) (local.get 2)))
          (func (export "swizzle") (param v128 v128) (result v128)
            (i8x16.relaxed_swizzle (local.get 0) (local.get 1)))
          (func (export "trunc") (param v128) (result v128)
            (i32x4.relaxed_trunc_f32x4_s (local.get 0)))
          (func (export "q15") (param v128 v128) (result v128)
            (i16x8.relaxed_q15mulr_s (local.get 0) (local.get 1)))
          (func (export "dot_add") (param v128 v128 v128) (result v128)
            (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get 0) (local.get 1) (local.get 2))))"#,
    )
    .expect("valid wat");
    let module = Module::new(&engine, &wasm).expect("compiles");
    let mut store = Store::new(&engine, ());
    let inst = Linker::new()
        .instantiate(&mut store, &module)
        .expect("links");
    let mut call = |name: &str, args: &[Val]| -> u128 {
        let f = inst.get_func(&mut store, name).unwrap();
        let mut results = [Val::V128(0)];
        f.call(&mut store, args, &mut results).unwrap();
        let Val::V128(v) = results[0] else {
            panic!("a v128 result");
        };
        v
    };
    let f32s = |l: [f32; 4]| {
        Val::V128(
            l.iter()
                .rev()
                .fold(0u128, |acc, x| (acc << 32) | u128::from(x.to_bits())),
        )
    };
    // (1 + 2^-23)^2 - (1 + 2^-22): exactly 2^-46 when fused, 0 when the
    // product is rounded first.
    let a = f32::from_bits(0x3f80_0001);
    let c = -f32::from_bits(0x3f80_0002);
    assert_eq!(call("madd", &[f32s([a; 4]), f32s([a; 4]), f32s([c; 4])]), 0);
    // Out-of-range indices select zero, as i8x16.swizzle.
    let bytes = Val::V128(u128::from_le_bytes(core::array::from_fn(|i| i as u8 + 1)));
    let indices = Val::V128(u128::from_le_bytes(core::array::from_fn(|i| {
        if i % 2 == 0 {
            15 - i as u8
        } else {
            0x80 | i as u8
        }
    })));
    let swizzled = call("swizzle", &[bytes, indices]).to_le_bytes();
    for (i, b) in swizzled.iter().enumerate() {
        assert_eq!(*b, if i % 2 == 0 { 16 - i as u8 } else { 0 }, "lane {i}");
    }
    // NaN and out-of-range lanes saturate, as i32x4.trunc_sat_f32x4_s.
    let t = call("trunc", &[f32s([f32::NAN, 3e9, -3e9, -1.5])]).to_le_bytes();
    let lane = |i: usize| i32::from_le_bytes(t[i * 4..i * 4 + 4].try_into().unwrap());
    assert_eq!(
        [lane(0), lane(1), lane(2), lane(3)],
        [0, i32::MAX, i32::MIN, -1]
    );
    // -1.0 * -1.0 in Q15 saturates to 0x7fff.
    let min = Val::V128(u128::from_le_bytes(
        [0x00, 0x80].repeat(8).try_into().unwrap(),
    ));
    let q = call("q15", &[min, min]).to_le_bytes();
    assert!(q.chunks(2).all(|l| l == [0xff, 0x7f]));
    // Signed bytes times 7-bit bytes, four products summed into each i32
    // lane, plus the accumulator.
    let x = Val::V128(u128::from_le_bytes([0x80; 16]));
    let y = Val::V128(u128::from_le_bytes([0x7f; 16]));
    let acc = Val::V128(u128::from_le_bytes(
        [1, 0, 0, 0].repeat(4).try_into().unwrap(),
    ));
    let d = call("dot_add", &[x, y, acc]).to_le_bytes();
    for l in d.chunks(4) {
        assert_eq!(
            i32::from_le_bytes(l.try_into().unwrap()),
            -128 * 127 * 4 + 1
        );
    }
}

fn suite_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("BASALT_SPEC_TESTSUITE") {
        return Some(PathBuf::from(dir));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    [
        root.join("../shared/testsuite/spec"),
        root.join("../../shared/testsuite/spec"),
    ]
    .into_iter()
    .find(|p| p.is_dir())
}

/// Every valid module of the SIMD scripts, as binary.
fn simd_modules(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("simd_") && n.ends_with(".wast"))
        })
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let buf = wast::parser::ParseBuffer::new(&text).unwrap();
        let script: wast::Wast<'_> = wast::parser::parse(&buf).unwrap();
        for d in script.directives {
            if let wast::WastDirective::Module(mut m) = d
                && let Ok(bytes) = m.encode()
            {
                out.push((path.display().to_string(), bytes));
            }
        }
    }
    out
}

#[test]
fn simd_spec_modules_compile_for_aarch64_and_baseline_x86_64() {
    let Some(dir) = suite_dir() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "spec test suite not found (set BASALT_SPEC_TESTSUITE)"
        );
        eprintln!("spec test suite not found; skipping (set BASALT_SPEC_TESTSUITE)");
        return;
    };
    let modules = simd_modules(&dir);
    assert!(
        modules.len() > 100,
        "too few simd_*.wast modules in {dir:?}"
    );
    let targets = [
        Target::new(Arch::Aarch64, &[]).unwrap(),
        Target::new(Arch::X86_64, Arch::X86_64.required_features()).unwrap(),
    ];
    for target in targets {
        let engine = Engine::new(Config {
            target,
            platform: None,
            max_wasm_stack: 1 << 20,
            max_memory_bytes: 4 << 30,
            interruptible: false,
            consume_fuel: false,
        })
        .unwrap();
        for (file, wasm) in &modules {
            if let Err(e) = Module::compile_artifact(&engine, wasm) {
                // Wasm 3.0 (multiple memories) stays refused, by name.
                assert!(file.contains("multi"), "{file}: {e} ({})", engine.target());
            }
        }
    }
}
