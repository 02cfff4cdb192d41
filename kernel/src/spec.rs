//! Spec batches: the WebAssembly spec-test commands `basalt wast --in-vm`
//! turned a script into (format in `docs/guest-protocol.md`), run here so
//! memory and stack faults go through this kernel's guard pages and fault
//! handler. Every failing command is logged as `spec-batch: FAIL LINE:
//! reason`, then `spec-batch: P passed F failed`.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use basalt_runtime::{AnyRef, Engine, Error, Instance, Linker, Module, Store, TrapKind, Val};

use crate::bundle::Bundle;

/// Why a batch could not be read.
#[derive(Debug)]
pub enum BatchError {
    /// the first line is not `spec-batch 1`
    Version(String),
    /// a command line is malformed
    Syntax {
        /// 1-based line of the batch
        line: usize,
        /// what is wrong
        what: String,
    },
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchError::Version(v) => write!(
                f,
                "spec batch: first line `{v}` is neither `spec-batch 1` nor `component-batch 1`; use a matching basalt CLI"
            ),
            BatchError::Syntax { line, what } => write!(f, "spec batch line {line}: {what}"),
        }
    }
}

/// An expected result.
enum Want {
    I32(u32),
    I64(u64),
    F32(Nan<u32>),
    F64(Nan<u64>),
    V128(u128),
    V128F32([Nan<u32>; 4]),
    V128F64([Nan<u64>; 2]),
    RefNull,
    FuncAny,
    ExternAny,
    Extern(u32),
    /// any non-null anyref
    AnyAny,
    /// an anyref holding this host value
    Host(u32),
    /// any i31ref
    I31Any,
    /// any i31ref, struct or array
    EqAny,
    /// any GC struct
    StructAny,
    /// any GC array
    ArrayAny,
    /// any of these (relaxed SIMD results)
    Either(Vec<Want>),
}

#[derive(Clone, Copy)]
enum Nan<T> {
    Canonical,
    Arithmetic,
    Bits(T),
}

/// A malformed batch line.
pub(crate) fn syntax(line: usize, what: impl Into<String>) -> BatchError {
    BatchError::Syntax {
        line,
        what: what.into(),
    }
}

/// A hex-encoded UTF-8 name (`~`: empty).
pub(crate) fn unhex(line: usize, s: &str) -> Result<String, BatchError> {
    if s == "~" {
        return Ok(String::new());
    }
    if !s.len().is_multiple_of(2) {
        return Err(syntax(line, format!("odd-length hex `{s}`")));
    }
    let bytes = (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| syntax(line, format!("bad hex `{s}`")))?;
    String::from_utf8(bytes).map_err(|_| syntax(line, "name is not UTF-8"))
}

fn num(line: usize, s: &str) -> Result<u128, BatchError> {
    u128::from_str_radix(s, 16).map_err(|_| syntax(line, format!("bad number `{s}`")))
}

fn nan<T: TryFrom<u128>>(line: usize, s: &str) -> Result<Nan<T>, BatchError> {
    Ok(match s {
        "canon" => Nan::Canonical,
        "arith" => Nan::Arithmetic,
        _ => Nan::Bits(
            T::try_from(num(line, s)?).map_err(|_| syntax(line, format!("`{s}` too large")))?,
        ),
    })
}

fn lanes<T: TryFrom<u128> + Copy, const N: usize>(
    line: usize,
    s: &str,
) -> Result<[Nan<T>; N], BatchError> {
    let v = s
        .split(',')
        .map(|l| nan(line, l))
        .collect::<Result<Vec<_>, _>>()?;
    v.try_into()
        .map_err(|_| syntax(line, format!("`{s}` needs {N} lanes")))
}

fn split(line: usize, s: &str) -> Result<(&str, &str), BatchError> {
    s.split_once(':')
        .ok_or_else(|| syntax(line, format!("value `{s}` has no type")))
}

fn arg(line: usize, s: &str) -> Result<Val, BatchError> {
    let (ty, v) = split(line, s)?;
    Ok(match (ty, v) {
        ("i32", v) => Val::I32(num(line, v)? as u32 as i32),
        ("i64", v) => Val::I64(num(line, v)? as u64 as i64),
        ("f32", v) => Val::F32(num(line, v)? as u32),
        ("f64", v) => Val::F64(num(line, v)? as u64),
        ("v128", v) => Val::V128(num(line, v)?),
        ("funcref", "null") => Val::FuncRef(None),
        ("externref", "null") => Val::ExternRef(None),
        ("exnref", "null") => Val::ExnRef(None),
        ("anyref", "null") => Val::AnyRef(None),
        ("externref", v) => Val::ExternRef(Some(AnyRef::Host(num(line, v)? as u32))),
        ("anyref", v) => Val::AnyRef(Some(AnyRef::Host(num(line, v)? as u32))),
        _ => return Err(syntax(line, format!("unknown argument `{s}`"))),
    })
}

fn want(line: usize, s: &str) -> Result<Want, BatchError> {
    if let Some(alternatives) = s.strip_prefix("either:") {
        return alternatives
            .split('|')
            .map(|a| {
                if a.starts_with("either:") {
                    Err(syntax(line, "nested `either`"))
                } else {
                    want(line, a)
                }
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Want::Either);
    }
    let (ty, v) = split(line, s)?;
    Ok(match (ty, v) {
        ("i32", v) => Want::I32(num(line, v)? as u32),
        ("i64", v) => Want::I64(num(line, v)? as u64),
        ("f32", v) => Want::F32(nan(line, v)?),
        ("f64", v) => Want::F64(nan(line, v)?),
        ("v128", v) => Want::V128(num(line, v)?),
        ("v128f32", v) => Want::V128F32(lanes(line, v)?),
        ("v128f64", v) => Want::V128F64(lanes(line, v)?),
        ("ref", "null") => Want::RefNull,
        ("funcref", "any") => Want::FuncAny,
        ("externref", "any") => Want::ExternAny,
        ("externref", v) => Want::Extern(num(line, v)? as u32),
        ("anyref", "any") => Want::AnyAny,
        ("anyref", v) => Want::Host(num(line, v)? as u32),
        ("i31ref", "any") => Want::I31Any,
        ("eqref", "any") => Want::EqAny,
        ("structref", "any") => Want::StructAny,
        ("arrayref", "any") => Want::ArrayAny,
        _ => return Err(syntax(line, format!("unknown result `{s}`"))),
    })
}

fn f32_ok(p: Nan<u32>, bits: u32) -> bool {
    match p {
        Nan::Canonical => bits & 0x7fff_ffff == 0x7fc0_0000,
        Nan::Arithmetic => bits & 0x7fc0_0000 == 0x7fc0_0000,
        Nan::Bits(b) => b == bits,
    }
}

fn f64_ok(p: Nan<u64>, bits: u64) -> bool {
    match p {
        Nan::Canonical => bits & 0x7fff_ffff_ffff_ffff == 0x7ff8_0000_0000_0000,
        Nan::Arithmetic => bits & 0x7ff8_0000_0000_0000 == 0x7ff8_0000_0000_0000,
        Nan::Bits(b) => b == bits,
    }
}

fn matches(w: &Want, g: &Val) -> bool {
    match (w, g) {
        (Want::Either(alternatives), _) => alternatives.iter().any(|a| matches(a, g)),
        (Want::I32(a), Val::I32(b)) => *a == *b as u32,
        (Want::I64(a), Val::I64(b)) => *a == *b as u64,
        (Want::F32(p), Val::F32(b)) => f32_ok(*p, *b),
        (Want::F64(p), Val::F64(b)) => f64_ok(*p, *b),
        (Want::V128(a), Val::V128(b)) => a == b,
        (Want::V128F32(l), Val::V128(b)) => (0..4).all(|i| f32_ok(l[i], (b >> (32 * i)) as u32)),
        (Want::V128F64(l), Val::V128(b)) => (0..2).all(|i| f64_ok(l[i], (b >> (64 * i)) as u64)),
        (
            Want::RefNull,
            Val::FuncRef(None) | Val::ExternRef(None) | Val::ExnRef(None) | Val::AnyRef(None),
        ) => true,
        (Want::FuncAny, Val::FuncRef(Some(_))) => true,
        (Want::ExternAny, Val::ExternRef(Some(_))) => true,
        (Want::Extern(a), Val::ExternRef(Some(AnyRef::Host(b)))) => a == b,
        (Want::AnyAny, Val::AnyRef(Some(_))) => true,
        (Want::Host(a), Val::AnyRef(Some(AnyRef::Host(b)))) => a == b,
        (Want::I31Any, Val::AnyRef(Some(AnyRef::I31(_)))) => true,
        (Want::EqAny, Val::AnyRef(Some(AnyRef::I31(_) | AnyRef::Struct(_) | AnyRef::Array(_)))) => {
            true
        }
        (Want::StructAny, Val::AnyRef(Some(AnyRef::Struct(_)))) => true,
        (Want::ArrayAny, Val::AnyRef(Some(AnyRef::Array(_)))) => true,
        _ => false,
    }
}

/// The state of one script.
struct Runner<'b> {
    engine: &'b Engine,
    bundle: &'b Bundle<'b>,
    store: Store<()>,
    linker: Linker<()>,
    named: BTreeMap<String, Instance>,
    definitions: BTreeMap<String, Module>,
    current: Option<Instance>,
}

type Outcome = Result<(), String>;

impl Runner<'_> {
    fn module(&self, n: usize) -> Result<Module, String> {
        let wasm = self
            .bundle
            .get(&format!("spec/{n}.wasm"))
            .ok_or_else(|| format!("no spec/{n}.wasm in the bundle"))?;
        let art = self
            .bundle
            .get(&format!("spec/{n}.cwasm"))
            .ok_or_else(|| format!("no spec/{n}.cwasm in the bundle"))?;
        Module::from_artifact(self.engine, wasm, art).map_err(|e| format!("module {n}: {e}"))
    }

    fn instance(&self, r: &str) -> Result<Instance, String> {
        if r == "-" {
            return self.current.ok_or_else(|| "no current module".into());
        }
        self.named
            .get(r)
            .copied()
            .ok_or_else(|| format!("no module named {r}"))
    }

    fn instantiate(&mut self, n: usize) -> Result<Result<Instance, Error>, String> {
        let m = self.module(n)?;
        Ok(self.linker.instantiate(&mut self.store, &m))
    }

    fn invoke(
        &mut self,
        inst: &str,
        func: &str,
        args: &[Val],
    ) -> Result<Result<Vec<Val>, Error>, String> {
        let inst = self.instance(inst)?;
        let f = inst
            .get_func(&mut self.store, func)
            .ok_or_else(|| format!("no function {func}"))?;
        let mut results: Vec<Val> = f
            .ty(&self.store)
            .results
            .iter()
            .map(|t| Val::default_for(*t))
            .collect();
        Ok(f.call(&mut self.store, args, &mut results)
            .map(|()| results))
    }

    fn set_current(&mut self, inst: Instance, name: &str) {
        self.current = Some(inst);
        if name != "-" {
            self.named.insert(String::from(name), inst);
        }
    }

    /// Runs one command line: how many commands it counts as (0 or 1), and
    /// how it went.
    fn command(&mut self, n: usize, text: &str) -> Result<(usize, Outcome), BatchError> {
        let (head, expect) = match text.split_once(" = ") {
            Some((h, e)) => (h, Some(e)),
            None => match text.strip_suffix(" =") {
                Some(h) => (h, Some("")),
                None => (text, None),
            },
        };
        let (head, message) = match head.split_once(" ! ") {
            Some((h, m)) => (h, Some(unhex(n, m)?)),
            None => (head, None),
        };
        let w: Vec<&str> = head.split(' ').collect();
        if w.len() < 2 {
            return Err(syntax(n, "a command needs a kind and a script line"));
        }
        let line: usize = w[1]
            .parse()
            .map_err(|_| syntax(n, format!("bad script line `{}`", w[1])))?;
        let idx = |i: usize| -> Result<usize, BatchError> {
            w.get(i)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| syntax(n, "missing module index"))
        };
        let word = |i: usize| -> Result<&str, BatchError> {
            w.get(i)
                .copied()
                .ok_or_else(|| syntax(n, format!("`{}` needs more fields", w[0])))
        };
        let name = |i: usize| -> Result<String, BatchError> {
            let s = word(i)?;
            if s == "-" {
                Ok(String::from("-"))
            } else {
                unhex(n, s)
            }
        };
        let wants = match expect {
            Some(e) => e
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(|s| want(n, s))
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        let call_args = |from: usize| -> Result<Vec<Val>, BatchError> {
            w[from.min(w.len())..].iter().map(|a| arg(n, a)).collect()
        };
        let outcome: Outcome = match w[0] {
            "module" => {
                let (m, nm) = (idx(2)?, name(3)?);
                (|| {
                    let inst = self.instantiate(m)?.map_err(|e| format!("module: {e}"))?;
                    self.set_current(inst, &nm);
                    Ok(())
                })()
            }
            "define" => {
                let (m, nm) = (idx(2)?, name(3)?);
                match self.module(m) {
                    Ok(module) => {
                        self.definitions.insert(nm, module);
                    }
                    Err(e) => {
                        kprintln!("spec-batch: FAIL {line}: {e}");
                        return Ok((1, Err(e)));
                    }
                }
                return Ok((0, Ok(())));
            }
            "instance" => {
                let (def, nm) = (name(2)?, name(3)?);
                (|| {
                    let module = self
                        .definitions
                        .get(&def)
                        .cloned()
                        .ok_or("module instance of an unknown definition")?;
                    let inst = self
                        .linker
                        .instantiate(&mut self.store, &module)
                        .map_err(|e| format!("instance: {e}"))?;
                    self.set_current(inst, &nm);
                    Ok(())
                })()
            }
            "register" => {
                let (as_name, inst) = (name(2)?, name(3)?);
                self.instance(&inst).map(|i| {
                    self.linker.instance(&mut self.store, &as_name, i);
                })
            }
            "invoke" | "return" | "trap" | "exhaust" | "exception" => {
                let (inst, func, args) = (name(2)?, name(3)?, call_args(4)?);
                match (w[0], self.invoke(&inst, &func, &args)) {
                    (_, Err(e)) => Err(e),
                    ("invoke", Ok(r)) => r.map(|_| ()).map_err(|e| format!("failed: {e}")),
                    ("return", Ok(Ok(got))) => check(&wants, &got),
                    ("return", Ok(Err(e))) => Err(format!("failed: {e}")),
                    ("trap", Ok(r)) => {
                        let msg = message.unwrap_or_default();
                        match r {
                            Err(Error::Trap(t)) if t.kind.matches_spec_message(&msg) => Ok(()),
                            Ok(v) => Err(format!("expected trap `{msg}`, got {v:?}")),
                            Err(e) => Err(format!("expected trap `{msg}`, got error {e}")),
                        }
                    }
                    ("exception", Ok(r)) => match r {
                        Err(Error::Trap(t)) if t.kind == TrapKind::UncaughtException => Ok(()),
                        other => Err(format!("expected an uncaught exception, got {other:?}")),
                    },
                    (_, Ok(r)) => match r {
                        Err(Error::Trap(t)) if t.kind == TrapKind::StackOverflow => Ok(()),
                        other => Err(format!("expected stack exhaustion, got {other:?}")),
                    },
                }
            }
            "get" => {
                let (inst, global) = (name(2)?, name(3)?);
                (|| {
                    let i = self.instance(&inst)?;
                    let g = i
                        .get_global(&mut self.store, &global)
                        .ok_or_else(|| format!("no global {global}"))?;
                    check(&wants, &[g.get(&self.store)])
                })()
            }
            "instantiate" => {
                let m = idx(2)?;
                self.instantiate(m)
                    .and_then(|r| r.map(|_| ()).map_err(|e| format!("failed: {e}")))
            }
            "uninstantiable" | "unlinkable" => {
                let m = idx(2)?;
                match self.instantiate(m) {
                    Err(e) => Err(e),
                    Ok(Ok(_)) => Err(format!("expected {}, instantiated", w[0])),
                    Ok(Err(Error::Trap(_) | Error::Instantiate(_))) if w[0] == "uninstantiable" => {
                        Ok(())
                    }
                    Ok(Err(Error::Link { .. } | Error::Instantiate(_))) if w[0] == "unlinkable" => {
                        Ok(())
                    }
                    Ok(Err(e)) => Err(format!("expected {}, got {e}", w[0])),
                }
            }
            other => return Err(syntax(n, format!("unknown command `{other}`"))),
        };
        if let Err(e) = &outcome {
            kprintln!("spec-batch: FAIL {line}: {e}");
        }
        Ok((1, outcome))
    }
}

fn check(wants: &[Want], got: &[Val]) -> Outcome {
    if wants.len() != got.len() || !wants.iter().zip(got).all(|(w, g)| matches(w, g)) {
        return Err(format!("results {got:?} do not match the script's"));
    }
    Ok(())
}

/// Runs the batch `text` (modules from `bundle`); returns the exit code.
pub fn run(engine: &Engine, bundle: &Bundle<'_>, text: &[u8]) -> Result<i32, BatchError> {
    let text = core::str::from_utf8(text).map_err(|_| syntax(0, "the batch is not UTF-8"))?;
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    if first == crate::spec_component::HEADER {
        return crate::spec_component::run(engine, bundle, text);
    }
    if first != "spec-batch 1" {
        return Err(BatchError::Version(first.to_string()));
    }
    let mut store = Store::new(engine, ());
    let mut linker = Linker::new();
    basalt_runtime::spectest::define(&mut store, &mut linker);
    let mut runner = Runner {
        engine,
        bundle,
        store,
        linker,
        named: BTreeMap::new(),
        definitions: BTreeMap::new(),
        current: None,
    };
    let (mut passed, mut failed) = (0usize, 0usize);
    for (i, l) in lines.enumerate() {
        if l.is_empty() {
            continue;
        }
        match runner.command(i + 2, l)? {
            (0, _) => {}
            (_, Ok(())) => passed += 1,
            (_, Err(_)) => failed += 1,
        }
    }
    kprintln!("spec-batch: {passed} passed {failed} failed");
    Ok(if failed == 0 { 0 } else { 1 })
}
