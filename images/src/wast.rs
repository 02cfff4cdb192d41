//! `basalt wast FILE.wast…`: runs WebAssembly spec-test scripts against the
//! runtime, hosted in this process (as `wasmtime wast` does).
//!
//! Every command of a script runs: `module` (text, binary or quoted),
//! `module definition` / `module instance`, `register`, `invoke`, `get`,
//! `assert_return` (with canonical/arithmetic NaN patterns, per lane for
//! `v128`), `assert_trap`, `assert_exhaustion`, `assert_invalid`,
//! `assert_malformed`, `assert_unlinkable` and `assert_uninstantiable`,
//! with the `spectest` host module linked in. A script with components
//! runs in [`crate::wast_component`]. Commands this runner cannot express
//! at all (threads, custom-section assertions) are counted as skipped; features the engine does not
//! implement (the Wasm 3.0 proposals) fail, with the engine's message.
//!
//! The spec-suite test (`tests/tests/spec.rs`) uses this module too: there
//! is one runner.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use ::wast::core::{
    AbstractHeapType, HeapType, NanPattern, V128Const, V128Pattern, WastArgCore, WastRetCore,
};
use ::wast::parser::{self, ParseBuffer};
use ::wast::{QuoteWat, Wast, WastArg, WastDirective, WastExecute, WastInvoke, WastRet};
use basalt_runtime::{
    AnyRef, Config, Engine, Error, Instance, Linker, Module, RefType, Store, Target, TrapKind, Val,
};

use crate::CliError;
use crate::guest::GuestArch;

/// The help text of `basalt wast`.
pub const USAGE: &str = "\
usage: basalt wast [--arch ARCH] [--in-vm] [-v] FILE.wast...

Runs WebAssembly spec-test scripts (core scripts, and component-model scripts
such as the component model's reference tests) against Basalt's runtime in
this process and prints `FILE: N passed, M failed, K skipped` per script and a
total.
Exits with 1 if any command failed.

options:
  --arch ARCH     the ISA to compile for (x86_64, aarch64); hosted runs need this
                  machine's (an aarch64 build runs under qemu-aarch64 elsewhere)
  --in-vm         run the commands inside the booted kernel under QEMU (x86_64,
                  or aarch64 with --arch aarch64)
                  (one VM per core script, one VM for all component scripts;
                  core modules compiled here; assert_invalid and
                  assert_malformed are still checked in this process)
  -v, --verbose   print every failure with its line and reason";

/// How many commands of a script passed, failed and were skipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// commands that did what the script says
    pub passed: usize,
    /// commands that did not
    pub failed: usize,
    /// commands this runner cannot express (components, threads)
    pub skipped: usize,
}

impl Counts {
    /// Adds `other` to these counts.
    pub fn add(&mut self, other: Counts) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        )
    }
}

/// The outcome of one script.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// the counts
    pub counts: Counts,
    /// one `line:col: reason` per failed command
    pub failures: Vec<String>,
}

/// A hosted engine for running scripts: this machine, all its CPU features.
pub fn engine() -> Result<Engine, Error> {
    Engine::new(Config::hosted())
}

/// A hosted engine that generates code for the oldest CPU of this machine's
/// ISA that Basalt supports (on x86-64: SSE4.1, no AVX), so the scripts can
/// check the instruction selections the host's own features would skip.
pub fn baseline_engine() -> Result<Engine, Error> {
    let arch = Target::host().arch;
    Engine::new(Config {
        target: Target::new(arch, arch.required_features())?,
        ..Config::hosted()
    })
}

/// Runs the script at `path` on a thread of its own with a large stack (deep
/// recursion tests) and turns a panic into one failure.
pub fn run_file(engine: &Engine, path: &Path) -> Report {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            return Report {
                counts: Counts {
                    failed: 1,
                    ..Counts::default()
                },
                failures: vec![format!("cannot read: {e}")],
            };
        }
    };
    let engine = engine.clone();
    let joined = std::thread::Builder::new()
        .name(path.display().to_string())
        .stack_size(64 << 20)
        .spawn(move || run_script(&engine, &text))
        .map(|h| h.join());
    match joined {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => Report {
            counts: Counts {
                failed: 1,
                ..Counts::default()
            },
            failures: vec!["the runner panicked".into()],
        },
        Err(e) => Report {
            counts: Counts {
                failed: 1,
                ..Counts::default()
            },
            failures: vec![format!("cannot start a thread: {e}")],
        },
    }
}

/// Runs the script `text` on the current thread.
pub fn run_script(engine: &Engine, text: &str) -> Report {
    let unfolded = crate::legacy_try::unfold(text);
    let text: &str = &unfolded;
    let mut report = Report::default();
    let fail_all = |report: &mut Report, msg: String| {
        report.counts.failed += 1;
        report.failures.push(msg);
    };
    // names.wast deliberately uses bidi control characters in names.
    let mut lexer = ::wast::lexer::Lexer::new(text);
    lexer.allow_confusing_unicode(true);
    let buf = match ParseBuffer::new_with_lexer(lexer) {
        Ok(b) => b,
        Err(e) => {
            fail_all(&mut report, format!("lex error: {e}"));
            return report;
        }
    };
    let wast: Wast<'_> = match parser::parse(&buf) {
        Ok(w) => w,
        Err(e) => {
            fail_all(&mut report, format!("parse error: {e}"));
            return report;
        }
    };
    let components = wast
        .directives
        .iter()
        .any(crate::wast_component::is_component_directive);
    let mut core_runner;
    let mut component_runner;
    let run: &mut dyn FnMut(WastDirective<'_>) -> Outcome = if components {
        component_runner = crate::wast_component::ComponentRunner::new(engine);
        &mut |d| component_runner.directive(d)
    } else {
        core_runner = Runner::new(engine);
        &mut |d| core_runner.directive(d)
    };
    for directive in wast.directives {
        let (line, col) = directive.span().linecol_in(text);
        match run(directive) {
            Ok(Step::Done) => report.counts.passed += 1,
            Ok(Step::Skipped) => report.counts.skipped += 1,
            Err(msg) => {
                report.counts.failed += 1;
                report
                    .failures
                    .push(format!("{}:{}: {msg}", line + 1, col + 1));
            }
        }
    }
    report
}

/// `basalt wast [--arch ARCH] [-v] FILE.wast…`: returns the exit code.
pub fn command(args: Vec<OsString>) -> Result<i32, CliError> {
    let mut files = Vec::new();
    let mut verbose = false;
    let mut in_vm = false;
    let mut arch = None;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        match arg.to_str() {
            Some("--arch") => {
                let name = it
                    .next()
                    .and_then(|a| a.into_string().ok())
                    .ok_or_else(|| usage("--arch needs a value"))?;
                arch = Some(match name.as_str() {
                    "x86_64" | "x86-64" | "amd64" => GuestArch::X86_64,
                    "aarch64" | "arm64" => GuestArch::Aarch64,
                    other => return Err(usage(format!("unknown --arch `{other}`"))),
                });
            }
            Some("-v" | "--verbose") => verbose = true,
            Some("--in-vm") => in_vm = true,
            Some("-h" | "--help") => {
                println!("{USAGE}");
                return Ok(0);
            }
            Some(flag) if flag.starts_with('-') => {
                return Err(usage(format!("unknown option `{flag}`")));
            }
            _ => files.push(PathBuf::from(arg)),
        }
    }
    if files.is_empty() {
        return Err(usage("no FILE.wast given"));
    }
    if in_vm {
        return crate::spec_batch::command(&files, arch.unwrap_or(GuestArch::X86_64), verbose);
    }
    let host = std::env::consts::ARCH;
    if let Some(wanted) = arch.map(GuestArch::name)
        && wanted != host
    {
        return Err(usage(format!(
            "`basalt wast` runs hosted, in this process: --arch {wanted} must run \
             on {wanted} (this machine is {host}); --in-vm runs it in a VM"
        )));
    }
    let engine = engine().map_err(|e| CliError::Module(format!("cannot create an engine: {e}")))?;
    let mut total = Counts::default();
    for file in &files {
        let report = run_file(&engine, file);
        println!("{}: {}", file.display(), report.counts);
        if verbose {
            for f in &report.failures {
                println!("  {}:{f}", file.display());
            }
        }
        total.add(report.counts);
    }
    let plural = if files.len() == 1 { "" } else { "s" };
    println!("total: {total} ({} file{plural})", files.len());
    Ok(if total.failed > 0 { 1 } else { 0 })
}

fn usage(msg: impl Into<String>) -> CliError {
    CliError::Usage(format!("{}\n\n{USAGE}", msg.into()))
}

/// What a command came to, when it did not fail.
pub(crate) enum Step {
    Done,
    Skipped,
}

pub(crate) type Outcome = Result<Step, String>;

/// State of one script.
struct Runner<'e> {
    engine: &'e Engine,
    store: Store<()>,
    linker: Linker<()>,
    named: HashMap<String, Instance>,
    definitions: HashMap<String, Module>,
    current: Option<Instance>,
}

impl<'e> Runner<'e> {
    fn new(engine: &'e Engine) -> Self {
        let mut store = Store::new(engine, ());
        let mut linker = Linker::new();
        define_spectest(&mut store, &mut linker);
        Runner {
            engine,
            store,
            linker,
            named: HashMap::new(),
            definitions: HashMap::new(),
            current: None,
        }
    }

    fn instance(&self, id: Option<::wast::token::Id<'_>>) -> Result<Instance, String> {
        match id {
            Some(id) => self
                .named
                .get(id.name())
                .copied()
                .ok_or_else(|| format!("no module named {}", id.name())),
            None => self.current.ok_or_else(|| "no current module".to_string()),
        }
    }

    fn instantiate(&mut self, bytes: &[u8]) -> Result<Instance, Error> {
        let module = Module::new(self.engine, bytes)?;
        self.linker.instantiate(&mut self.store, &module)
    }

    fn directive(&mut self, d: WastDirective<'_>) -> Outcome {
        match d {
            WastDirective::Module(QuoteWat::QuoteComponent(..))
            | WastDirective::ModuleDefinition(QuoteWat::QuoteComponent(..)) => Ok(Step::Skipped),
            WastDirective::Module(QuoteWat::Wat(::wast::Wat::Component(_)))
            | WastDirective::ModuleDefinition(QuoteWat::Wat(::wast::Wat::Component(_))) => {
                Ok(Step::Skipped)
            }
            WastDirective::Module(mut m) => {
                let name = m.name().map(|n| n.name().to_string());
                let bytes = m.encode().map_err(|e| format!("encode: {e}"))?;
                let inst = self
                    .instantiate(&bytes)
                    .map_err(|e| format!("module: {e}"))?;
                self.current = Some(inst);
                if let Some(n) = name {
                    self.named.insert(n, inst);
                }
                Ok(Step::Done)
            }
            WastDirective::ModuleDefinition(mut m) => {
                let name = m.name().map(|n| n.name().to_string());
                let bytes = m.encode().map_err(|e| format!("encode: {e}"))?;
                let module =
                    Module::new(self.engine, &bytes).map_err(|e| format!("module: {e}"))?;
                if let Some(n) = name {
                    self.definitions.insert(n, module);
                }
                Ok(Step::Done)
            }
            WastDirective::ModuleInstance {
                instance, module, ..
            } => {
                let module = module
                    .and_then(|m| self.definitions.get(m.name()))
                    .cloned()
                    .ok_or("module instance of an unknown definition")?;
                let inst = self
                    .linker
                    .instantiate(&mut self.store, &module)
                    .map_err(|e| format!("instance: {e}"))?;
                self.current = Some(inst);
                if let Some(n) = instance {
                    self.named.insert(n.name().to_string(), inst);
                }
                Ok(Step::Done)
            }
            WastDirective::Register { name, module, .. } => {
                let inst = self.instance(module)?;
                self.linker.instance(&mut self.store, name, inst);
                Ok(Step::Done)
            }
            WastDirective::Invoke(i) => {
                self.invoke(&i)?.map_err(|e| format!("failed: {e}"))?;
                Ok(Step::Done)
            }
            WastDirective::AssertReturn { exec, results, .. } => {
                let got = self.execute(exec)?.map_err(|e| format!("failed: {e}"))?;
                check_results(&got, &results).map(|()| Step::Done)
            }
            WastDirective::AssertTrap { exec, message, .. } => match self.execute(exec)? {
                Ok(v) => Err(format!("expected trap `{message}`, got {v:?}")),
                Err(Error::Trap(t)) if trap_matches(t.kind, message) => Ok(Step::Done),
                // assert_uninstantiable: failing segment initialisation
                Err(Error::Instantiate(_)) => Ok(Step::Done),
                Err(e) => Err(format!("expected trap `{message}`, got error {e}")),
            },
            WastDirective::AssertExhaustion { call, message, .. } => match self.invoke(&call)? {
                Err(Error::Trap(t)) if t.kind == TrapKind::StackOverflow => Ok(Step::Done),
                other => Err(format!("expected `{message}`, got {other:?}")),
            },
            WastDirective::AssertInvalid {
                module, message, ..
            }
            | WastDirective::AssertMalformed {
                module, message, ..
            } => self.assert_rejected(module, message),
            WastDirective::AssertUnlinkable {
                mut module,
                message,
                ..
            } => {
                let bytes = module.encode().map_err(|e| format!("encode: {e}"))?;
                match self.instantiate(&bytes) {
                    Ok(_) => Err(format!("expected unlinkable `{message}`")),
                    Err(Error::Link { .. } | Error::Instantiate(_)) => Ok(Step::Done),
                    Err(e) => Err(format!("expected unlinkable `{message}`, got {e}")),
                }
            }
            WastDirective::AssertException { exec, .. } => {
                let outcome = match exec {
                    WastExecute::Invoke(call) => self.invoke(&call)?.map(|_| ()),
                    WastExecute::Wat(mut module) => {
                        let bytes = module.encode().map_err(|e| format!("encode: {e}"))?;
                        self.instantiate(&bytes).map(|_| ())
                    }
                    WastExecute::Get { .. } => return Err("assert_exception on a global".into()),
                };
                match outcome {
                    Err(Error::Trap(t)) if t.kind == TrapKind::UncaughtException => Ok(Step::Done),
                    other => Err(format!("expected an uncaught exception, got {other:?}")),
                }
            }
            // Threads, stack switching and custom-section annotations are
            // outside what this runner models.
            WastDirective::Thread(_)
            | WastDirective::Wait { .. }
            | WastDirective::AssertSuspension { .. }
            | WastDirective::AssertInvalidCustom { .. }
            | WastDirective::AssertMalformedCustom { .. } => Ok(Step::Skipped),
        }
    }

    fn assert_rejected(&mut self, mut module: QuoteWat<'_>, message: &str) -> Outcome {
        if matches!(
            module,
            QuoteWat::QuoteComponent(..) | QuoteWat::Wat(::wast::Wat::Component(_))
        ) {
            return Ok(Step::Skipped);
        }
        let bytes = match module.encode() {
            Ok(b) => b,
            // The text itself is malformed: rejected before reaching us.
            Err(_) => return Ok(Step::Done),
        };
        match Module::new(self.engine, &bytes) {
            Ok(_) => Err(format!("expected rejection `{message}`, module compiled")),
            Err(Error::Invalid { .. }) => Ok(Step::Done),
            Err(e) => Err(format!("expected rejection `{message}`, got {e}")),
        }
    }

    fn execute(&mut self, exec: WastExecute<'_>) -> Result<Result<Vec<Val>, Error>, String> {
        match exec {
            WastExecute::Invoke(i) => self.invoke(&i),
            WastExecute::Wat(mut w) => {
                let bytes = w.encode().map_err(|e| format!("encode: {e}"))?;
                Ok(self.instantiate(&bytes).map(|_| Vec::new()))
            }
            WastExecute::Get { module, global, .. } => {
                let inst = self.instance(module)?;
                let g = inst
                    .get_global(&mut self.store, global)
                    .ok_or_else(|| format!("no global {global}"))?;
                Ok(Ok(vec![g.get(&self.store)]))
            }
        }
    }

    fn invoke(&mut self, i: &WastInvoke<'_>) -> Result<Result<Vec<Val>, Error>, String> {
        let inst = self.instance(i.module)?;
        let f = inst
            .get_func(&mut self.store, i.name)
            .ok_or_else(|| format!("no function {}", i.name))?;
        let args = i.args.iter().map(arg).collect::<Result<Vec<_>, _>>()?;
        let mut results: Vec<Val> = f
            .ty(&self.store)
            .results
            .iter()
            .map(|t| Val::default_for(*t))
            .collect();
        Ok(f.call(&mut self.store, &args, &mut results)
            .map(|()| results))
    }
}

/// Links the `spectest` module the scripts import from.
pub(crate) fn define_spectest(store: &mut Store<()>, linker: &mut Linker<()>) {
    basalt_runtime::spectest::define(store, linker);
}

fn arg(a: &WastArg<'_>) -> Result<Val, String> {
    let WastArg::Core(a) = a else {
        return Err("component argument".into());
    };
    Ok(match a {
        WastArgCore::I32(v) => Val::I32(*v),
        WastArgCore::I64(v) => Val::I64(*v),
        WastArgCore::F32(v) => Val::F32(v.bits),
        WastArgCore::F64(v) => Val::F64(v.bits),
        WastArgCore::V128(v) => Val::V128(v128_bits(v)),
        WastArgCore::RefNull(h) => match null_kind(h) {
            Some(RefType::FuncRef) => Val::FuncRef(None),
            Some(RefType::ExternRef) => Val::ExternRef(None),
            Some(RefType::ExnRef) => Val::ExnRef(None),
            Some(RefType::AnyRef) => Val::AnyRef(None),
            None => return Err(format!("unsupported null type {h:?}")),
        },
        WastArgCore::RefExtern(n) => Val::ExternRef(Some(AnyRef::Host(*n))),
        WastArgCore::RefHost(n) => Val::AnyRef(Some(AnyRef::Host(*n))),
    })
}

pub(crate) fn v128_bits(v: &V128Const) -> u128 {
    u128::from_le_bytes(v.to_le_bytes())
}

pub(crate) fn null_kind(h: &HeapType<'_>) -> Option<RefType> {
    match h {
        HeapType::Abstract {
            ty: AbstractHeapType::Func | AbstractHeapType::NoFunc,
            ..
        } => Some(RefType::FuncRef),
        HeapType::Abstract {
            ty: AbstractHeapType::Extern | AbstractHeapType::NoExtern,
            ..
        } => Some(RefType::ExternRef),
        HeapType::Abstract {
            ty: AbstractHeapType::Exn | AbstractHeapType::NoExn,
            ..
        } => Some(RefType::ExnRef),
        HeapType::Abstract {
            ty:
                AbstractHeapType::Any
                | AbstractHeapType::Eq
                | AbstractHeapType::I31
                | AbstractHeapType::Struct
                | AbstractHeapType::Array
                | AbstractHeapType::None,
            ..
        } => Some(RefType::AnyRef),
        _ => None,
    }
}

fn f32_matches(p: &NanPattern<::wast::token::F32>, bits: u32) -> bool {
    match p {
        NanPattern::CanonicalNan => bits & 0x7fff_ffff == 0x7fc0_0000,
        NanPattern::ArithmeticNan => bits & 0x7fc0_0000 == 0x7fc0_0000,
        NanPattern::Value(v) => v.bits == bits,
    }
}

fn f64_matches(p: &NanPattern<::wast::token::F64>, bits: u64) -> bool {
    match p {
        NanPattern::CanonicalNan => bits & 0x7fff_ffff_ffff_ffff == 0x7ff8_0000_0000_0000,
        NanPattern::ArithmeticNan => bits & 0x7ff8_0000_0000_0000 == 0x7ff8_0000_0000_0000,
        NanPattern::Value(v) => v.bits == bits,
    }
}

/// Whether the 128 bits `v` match a per-lane pattern.
fn v128_matches(p: &V128Pattern, v: u128) -> bool {
    let b = v.to_le_bytes();
    let lane = |i: usize, n: usize| -> u64 {
        let mut x = [0u8; 8];
        x[..n].copy_from_slice(&b[i * n..i * n + n]);
        u64::from_le_bytes(x)
    };
    match p {
        V128Pattern::I8x16(l) => (0..16).all(|i| lane(i, 1) as u8 == l[i] as u8),
        V128Pattern::I16x8(l) => (0..8).all(|i| lane(i, 2) as u16 == l[i] as u16),
        V128Pattern::I32x4(l) => (0..4).all(|i| lane(i, 4) as u32 == l[i] as u32),
        V128Pattern::I64x2(l) => (0..2).all(|i| lane(i, 8) == l[i] as u64),
        V128Pattern::F32x4(l) => (0..4).all(|i| f32_matches(&l[i], lane(i, 4) as u32)),
        V128Pattern::F64x2(l) => (0..2).all(|i| f64_matches(&l[i], lane(i, 8))),
    }
}

fn check_results(got: &[Val], want: &[WastRet<'_>]) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!("expected {} results, got {got:?}", want.len()));
    }
    for (g, w) in got.iter().zip(want) {
        let WastRet::Core(w) = w else {
            return Err("component result".into());
        };
        if !result_matches(w, g) {
            let got = match g {
                Val::V128(v) => format!("v128 {v:#034x}"),
                other => format!("{other:?}"),
            };
            return Err(format!("expected {w:?}, got {got}"));
        }
    }
    Ok(())
}

/// Whether `g` is the result `w` allows (any of the alternatives of an
/// `either`, as relaxed SIMD scripts give them).
fn result_matches(w: &WastRetCore<'_>, g: &Val) -> bool {
    match (w, g) {
        (WastRetCore::Either(alternatives), _) => alternatives.iter().any(|a| result_matches(a, g)),
        (WastRetCore::I32(a), Val::I32(b)) => a == b,
        (WastRetCore::I64(a), Val::I64(b)) => a == b,
        (WastRetCore::F32(p), Val::F32(b)) => f32_matches(p, *b),
        (WastRetCore::F64(p), Val::F64(b)) => f64_matches(p, *b),
        (WastRetCore::V128(p), Val::V128(b)) => v128_matches(p, *b),
        (
            WastRetCore::RefNull(_),
            Val::FuncRef(None) | Val::ExternRef(None) | Val::ExnRef(None) | Val::AnyRef(None),
        ) => true,
        (WastRetCore::RefExtern(None), Val::ExternRef(Some(_))) => true,
        (WastRetCore::RefExtern(Some(n)), Val::ExternRef(Some(AnyRef::Host(m)))) => n == m,
        (WastRetCore::RefHost(n), Val::AnyRef(Some(AnyRef::Host(m)))) => n == m,
        (WastRetCore::RefAny, Val::AnyRef(Some(_))) => true,
        (WastRetCore::RefI31, Val::AnyRef(Some(AnyRef::I31(_)))) => true,
        (
            WastRetCore::RefEq,
            Val::AnyRef(Some(AnyRef::I31(_) | AnyRef::Struct(_) | AnyRef::Array(_))),
        ) => true,
        (WastRetCore::RefStruct, Val::AnyRef(Some(AnyRef::Struct(_)))) => true,
        (WastRetCore::RefArray, Val::AnyRef(Some(AnyRef::Array(_)))) => true,
        (WastRetCore::RefFunc(_), Val::FuncRef(Some(_))) => true,
        _ => false,
    }
}

/// Whether a trap of `kind` is what the script's `message` describes.
fn trap_matches(kind: TrapKind, message: &str) -> bool {
    kind.matches_spec_message(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v128_lane_patterns_and_counts() {
        let engine = engine().expect("hosted engine");
        let script = r#"
          (module
            (func (export "nan") (result v128)
              (f32x4.div (v128.const f32x4 0 1 0 -1) (v128.const f32x4 0 1 0 1)))
            (func (export "id") (param v128) (result v128) (local.get 0)))
          (assert_return (invoke "nan")
            (v128.const f32x4 nan:canonical 1 nan:arithmetic -1))
          (assert_return (invoke "id" (v128.const i16x8 1 2 3 4 5 6 7 -1))
            (v128.const i8x16 1 0 2 0 3 0 4 0 5 0 6 0 7 0 -1 -1))
          (assert_return (invoke "id" (v128.const i64x2 1 2)) (v128.const i64x2 1 3))
          (assert_trap (invoke "id" (v128.const i64x2 1 2)) "unreachable")
          (assert_invalid (module (func (result v128) (i32.const 0))) "type mismatch")
        "#;
        let report = run_script(&engine, script);
        assert_eq!(
            report.counts,
            Counts {
                passed: 4,
                failed: 2,
                skipped: 0
            },
            "{:?}",
            report.failures
        );
        assert!(
            report.failures[0].starts_with("10:"),
            "{:?}",
            report.failures
        );
    }
}
