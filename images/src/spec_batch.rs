//! `basalt wast --in-vm`: runs spec-test scripts inside the booted x86-64
//! kernel, so traps come from the kernel's guard pages and fault handler.
//!
//! The host turns a script into a *spec batch* (format in
//! `docs/guest-protocol.md`): every module is compiled here (compiling under
//! TCG is slow) and goes into the bundle as `spec/N.wasm` + `spec/N.cwasm`;
//! the commands go into `spec.batch` as text lines. The kernel runs them with
//! its own `spectest` module, compares results itself and prints
//! `spec-batch: P passed F failed`.
//!
//! Stays on the host: `assert_invalid` and `assert_malformed` (validation
//! only, no code runs) and modules that do not compile (counted as failures
//! here, as the hosted runner does). Skipped as in the hosted runner:
//! components, threads, custom-section assertions.

use std::path::Path;
use std::time::Duration;

use ::wast::core::{NanPattern, V128Pattern, WastArgCore, WastRetCore};
use ::wast::parser::{self, ParseBuffer};
use ::wast::{QuoteWat, Wast, WastArg, WastDirective, WastExecute, WastInvoke, WastRet};
use basalt_runtime::{Engine, Error, Module, RefType, Target};

use crate::CliError;
use crate::bundle::{Entry, write_tar};
use crate::guest::{self, GuestArch};
use crate::vm::{self, Accel, VmIo, VmOptions};
use crate::wast::{Counts, Report, null_kind, v128_bits};

/// The version of the batch format written on its first line.
pub const BATCH_VERSION: u32 = 1;

/// A script turned into what the kernel runs.
pub struct Batch {
    /// the command lines (`spec.batch`), first line included
    pub text: String,
    /// `(wasm, artifact)` per module, in index order
    pub modules: Vec<(Vec<u8>, Vec<u8>)>,
    /// commands decided on the host (validation-only ones, compile failures)
    pub host: Report,
}

/// A name hex-encoded for a batch line (`~`: empty).
pub(crate) fn hex(s: &str) -> String {
    if s.is_empty() {
        return "~".into();
    }
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// An instance reference of a batch line: its hex name, or `-`.
pub(crate) fn inst_ref(id: Option<::wast::token::Id<'_>>) -> String {
    id.map(|i| hex(i.name())).unwrap_or_else(|| "-".into())
}

fn arg(a: &WastArg<'_>) -> Result<String, String> {
    let WastArg::Core(a) = a else {
        return Err("component argument".into());
    };
    Ok(match a {
        WastArgCore::I32(v) => format!("i32:{:x}", *v as u32),
        WastArgCore::I64(v) => format!("i64:{:x}", *v as u64),
        WastArgCore::F32(v) => format!("f32:{:x}", v.bits),
        WastArgCore::F64(v) => format!("f64:{:x}", v.bits),
        WastArgCore::V128(v) => format!("v128:{:x}", v128_bits(v)),
        WastArgCore::RefNull(h) => match null_kind(h) {
            Some(RefType::FuncRef) => "funcref:null".into(),
            Some(RefType::ExternRef) => "externref:null".into(),
            Some(RefType::ExnRef) => "exnref:null".into(),
            Some(RefType::AnyRef) => "anyref:null".into(),
            None => return Err(format!("unsupported null type {h:?}")),
        },
        WastArgCore::RefExtern(n) => format!("externref:{n:x}"),
        WastArgCore::RefHost(n) => format!("anyref:{n:x}"),
    })
}

fn f32_pat(p: &NanPattern<::wast::token::F32>) -> String {
    match p {
        NanPattern::CanonicalNan => "canon".into(),
        NanPattern::ArithmeticNan => "arith".into(),
        NanPattern::Value(v) => format!("{:x}", v.bits),
    }
}

fn f64_pat(p: &NanPattern<::wast::token::F64>) -> String {
    match p {
        NanPattern::CanonicalNan => "canon".into(),
        NanPattern::ArithmeticNan => "arith".into(),
        NanPattern::Value(v) => format!("{:x}", v.bits),
    }
}

fn ret(r: &WastRet<'_>) -> Result<String, String> {
    let WastRet::Core(r) = r else {
        return Err("component result".into());
    };
    ret_core(r)
}

/// A result in the batch's notation; `either:A|B|…` for alternatives.
fn ret_core(r: &WastRetCore<'_>) -> Result<String, String> {
    let lanes = |n: usize, bytes: &[u8]| -> u128 {
        let mut b = [0u8; 16];
        b[..n].copy_from_slice(&bytes[..n]);
        u128::from_le_bytes(b)
    };
    Ok(match r {
        WastRetCore::I32(v) => format!("i32:{:x}", *v as u32),
        WastRetCore::I64(v) => format!("i64:{:x}", *v as u64),
        WastRetCore::F32(p) => format!("f32:{}", f32_pat(p)),
        WastRetCore::F64(p) => format!("f64:{}", f64_pat(p)),
        WastRetCore::V128(p) => match p {
            V128Pattern::F32x4(l) => {
                format!(
                    "v128f32:{}",
                    l.iter().map(f32_pat).collect::<Vec<_>>().join(",")
                )
            }
            V128Pattern::F64x2(l) => {
                format!(
                    "v128f64:{}",
                    l.iter().map(f64_pat).collect::<Vec<_>>().join(",")
                )
            }
            V128Pattern::I8x16(l) => {
                let b: Vec<u8> = l.iter().map(|x| *x as u8).collect();
                format!("v128:{:x}", lanes(16, &b))
            }
            V128Pattern::I16x8(l) => {
                let b: Vec<u8> = l.iter().flat_map(|x| x.to_le_bytes()).collect();
                format!("v128:{:x}", lanes(16, &b))
            }
            V128Pattern::I32x4(l) => {
                let b: Vec<u8> = l.iter().flat_map(|x| x.to_le_bytes()).collect();
                format!("v128:{:x}", lanes(16, &b))
            }
            V128Pattern::I64x2(l) => {
                let b: Vec<u8> = l.iter().flat_map(|x| x.to_le_bytes()).collect();
                format!("v128:{:x}", lanes(16, &b))
            }
        },
        WastRetCore::RefNull(_) => "ref:null".into(),
        WastRetCore::RefExtern(None) => "externref:any".into(),
        WastRetCore::RefExtern(Some(n)) => format!("externref:{n:x}"),
        WastRetCore::RefFunc(_) => "funcref:any".into(),
        WastRetCore::RefHost(n) => format!("anyref:{n:x}"),
        WastRetCore::RefAny => "anyref:any".into(),
        WastRetCore::RefEq => "eqref:any".into(),
        WastRetCore::RefI31 => "i31ref:any".into(),
        WastRetCore::RefStruct => "structref:any".into(),
        WastRetCore::RefArray => "arrayref:any".into(),
        WastRetCore::Either(alternatives) => {
            let mut each = Vec::with_capacity(alternatives.len());
            for a in alternatives {
                if matches!(a, WastRetCore::Either(_)) {
                    return Err("nested either".into());
                }
                each.push(ret_core(a)?);
            }
            format!("either:{}", each.join("|"))
        }
        other => return Err(format!("unsupported result {other:?}")),
    })
}

fn invoke_tail(i: &WastInvoke<'_>) -> Result<String, String> {
    let mut s = format!("{} {}", inst_ref(i.module), hex(i.name));
    for a in &i.args {
        s.push(' ');
        s.push_str(&arg(a)?);
    }
    Ok(s)
}

struct Builder<'e> {
    engine: &'e Engine,
    batch: Batch,
}

impl Builder<'_> {
    /// Compiles a module for the guest; its index, or the host failure.
    fn module(&mut self, wat: &mut QuoteWat<'_>) -> Result<usize, String> {
        let bytes = wat.encode().map_err(|e| format!("encode: {e}"))?;
        self.compiled(bytes)
    }

    fn compiled(&mut self, bytes: Vec<u8>) -> Result<usize, String> {
        let art =
            Module::compile_artifact(self.engine, &bytes).map_err(|e| format!("module: {e}"))?;
        self.batch.modules.push((bytes, art));
        Ok(self.batch.modules.len() - 1)
    }

    fn line(&mut self, l: String) {
        self.batch.text.push_str(&l);
        self.batch.text.push('\n');
    }

    /// Adds one directive; `Ok(true)` when it was decided on the host.
    fn directive(&mut self, line: usize, d: WastDirective<'_>) -> Result<Option<bool>, String> {
        let is_component = |m: &QuoteWat<'_>| {
            matches!(
                m,
                QuoteWat::QuoteComponent(..) | QuoteWat::Wat(::wast::Wat::Component(_))
            )
        };
        match d {
            WastDirective::Module(m) | WastDirective::ModuleDefinition(m) if is_component(&m) => {
                Ok(Some(false))
            }
            WastDirective::Module(mut m) => {
                let name = inst_ref(m.name());
                let n = self.module(&mut m)?;
                self.line(format!("module {line} {n} {name}"));
                Ok(None)
            }
            WastDirective::ModuleDefinition(mut m) => {
                // The kernel instantiates it by index later; nothing to run.
                let name = m.name().map(|n| n.name().to_string());
                let n = self.module(&mut m)?;
                self.line(format!(
                    "define {line} {n} {}",
                    name.as_deref().map(hex).unwrap_or("-".into())
                ));
                Ok(Some(true))
            }
            WastDirective::ModuleInstance {
                instance, module, ..
            } => {
                let module = module.ok_or("module instance of an unnamed definition")?;
                self.line(format!(
                    "instance {line} {} {}",
                    hex(module.name()),
                    inst_ref(instance)
                ));
                Ok(None)
            }
            WastDirective::Register { name, module, .. } => {
                self.line(format!(
                    "register {line} {} {}",
                    hex(name),
                    inst_ref(module)
                ));
                Ok(None)
            }
            WastDirective::Invoke(i) => {
                let t = invoke_tail(&i)?;
                self.line(format!("invoke {line} {t}"));
                Ok(None)
            }
            WastDirective::AssertReturn { exec, results, .. } => {
                let rs = results.iter().map(ret).collect::<Result<Vec<_>, _>>()?;
                let head = match exec {
                    WastExecute::Invoke(i) => format!("return {line} {}", invoke_tail(&i)?),
                    WastExecute::Get { module, global, .. } => {
                        format!("get {line} {} {}", inst_ref(module), hex(global))
                    }
                    WastExecute::Wat(mut w) => {
                        let bytes = w.encode().map_err(|e| format!("encode: {e}"))?;
                        let n = self.compiled(bytes)?;
                        format!("instantiate {line} {n}")
                    }
                };
                let mut l = head;
                l.push_str(" =");
                for r in rs {
                    l.push(' ');
                    l.push_str(&r);
                }
                self.line(l);
                Ok(None)
            }
            WastDirective::AssertTrap { exec, message, .. } => {
                match exec {
                    WastExecute::Invoke(i) => {
                        let t = invoke_tail(&i)?;
                        self.line(format!("trap {line} {t} ! {}", hex(message)));
                    }
                    WastExecute::Wat(mut w) => {
                        let bytes = w.encode().map_err(|e| format!("encode: {e}"))?;
                        let art = Module::compile_artifact(self.engine, &bytes)
                            .map_err(|e| format!("expected trap `{message}`, got error {e}"))?;
                        self.batch.modules.push((bytes, art));
                        let n = self.batch.modules.len() - 1;
                        self.line(format!("uninstantiable {line} {n}"));
                    }
                    WastExecute::Get { .. } => return Err("assert_trap on a global".into()),
                }
                Ok(None)
            }
            WastDirective::AssertExhaustion { call, .. } => {
                let t = invoke_tail(&call)?;
                self.line(format!("exhaust {line} {t}"));
                Ok(None)
            }
            WastDirective::AssertUnlinkable {
                mut module,
                message,
                ..
            } => {
                let bytes = module.encode().map_err(|e| format!("encode: {e}"))?;
                match Module::compile_artifact(self.engine, &bytes) {
                    Ok(art) => {
                        self.batch.modules.push((bytes, art));
                        let n = self.batch.modules.len() - 1;
                        self.line(format!("unlinkable {line} {n}"));
                        Ok(None)
                    }
                    // refused before linking: a failure, as in the hosted runner
                    Err(e) => Err(format!("expected unlinkable `{message}`, got {e}")),
                }
            }
            WastDirective::AssertInvalid {
                mut module,
                message,
                ..
            }
            | WastDirective::AssertMalformed {
                mut module,
                message,
                ..
            } => {
                if is_component(&module) {
                    return Ok(Some(false));
                }
                let Ok(bytes) = module.encode() else {
                    return Ok(Some(true));
                };
                match Module::new(self.engine, &bytes) {
                    Ok(_) => Err(format!("expected rejection `{message}`, module compiled")),
                    Err(Error::Invalid { .. }) => Ok(Some(true)),
                    Err(e) => Err(format!("expected rejection `{message}`, got {e}")),
                }
            }
            WastDirective::AssertException { exec, .. } => match exec {
                WastExecute::Invoke(i) => {
                    let t = invoke_tail(&i)?;
                    self.line(format!("exception {line} {t}"));
                    Ok(None)
                }
                _ => Err("assert_exception on a module or global".into()),
            },
            WastDirective::Thread(_)
            | WastDirective::Wait { .. }
            | WastDirective::AssertSuspension { .. }
            | WastDirective::AssertInvalidCustom { .. }
            | WastDirective::AssertMalformedCustom { .. } => Ok(Some(false)),
        }
    }
}

/// Turns the script `text` into a batch; modules are compiled for the
/// guest with `engine`.
pub fn build(engine: &Engine, text: &str) -> Batch {
    let unfolded = crate::legacy_try::unfold(text);
    let text: &str = &unfolded;
    let mut b = Builder {
        engine,
        batch: Batch {
            text: format!("spec-batch {BATCH_VERSION}\n"),
            modules: Vec::new(),
            host: Report::default(),
        },
    };
    let mut lexer = ::wast::lexer::Lexer::new(text);
    lexer.allow_confusing_unicode(true);
    let buf = match ParseBuffer::new_with_lexer(lexer) {
        Ok(buf) => buf,
        Err(e) => {
            b.batch.host.counts.failed += 1;
            b.batch.host.failures.push(format!("lex error: {e}"));
            return b.batch;
        }
    };
    let wast: Wast<'_> = match parser::parse(&buf) {
        Ok(w) => w,
        Err(e) => {
            b.batch.host.counts.failed += 1;
            b.batch.host.failures.push(format!("parse error: {e}"));
            return b.batch;
        }
    };
    for d in wast.directives {
        let (line, col) = d.span().linecol_in(text);
        match b.directive(line + 1, d) {
            Ok(None) => {}
            Ok(Some(true)) => b.batch.host.counts.passed += 1,
            Ok(Some(false)) => b.batch.host.counts.skipped += 1,
            Err(msg) => {
                b.batch.host.counts.failed += 1;
                b.batch
                    .host
                    .failures
                    .push(format!("{}:{}: (host) {msg}", line + 1, col + 1));
            }
        }
    }
    b.batch
}

/// The engine that compiles modules for a TCG guest of `arch`.
pub fn guest_engine(arch: GuestArch) -> Result<Engine, Error> {
    let target: Target = crate::run::guest_target(arch, Accel::Tcg);
    Engine::new(basalt_runtime::Config {
        target,
        platform: None,
        max_wasm_stack: 1 << 20,
        max_memory_bytes: 4 << 30,
        interruptible: false,
        consume_fuel: false,
    })
}

/// A report of one failure only.
fn failure(why: String) -> Report {
    Report {
        counts: Counts {
            failed: 1,
            ..Counts::default()
        },
        failures: vec![why],
    }
}

/// Boots `entries` as a bundle in a VM of `arch` (with kernel `kernel`)
/// and returns the kernel's log, or why the VM gave no summary.
fn boot_batch(arch: GuestArch, kernel: &Path, entries: &[Entry]) -> Result<Vec<String>, String> {
    let opts = VmOptions {
        timeout: Some(Duration::from_secs(600)),
        ..VmOptions::new(arch, kernel.to_path_buf())
    };
    let io = VmIo {
        stdin: None,
        stdout: Box::new(std::io::sink()),
        stderr: Box::new(std::io::sink()),
    };
    let vm_report =
        vm::boot(&opts, &write_tar(entries), io).map_err(|e| format!("cannot boot: {e}"))?;
    let summary = vm_report
        .kernel_log
        .iter()
        .any(|l| summary_of(l.strip_prefix("spec-batch: ").unwrap_or("")).is_some());
    match (&vm_report.status, summary) {
        (vm::Status::Exit(_), true) => Ok(vm_report.kernel_log),
        (status, _) => Err(format!(
            "the VM ended without a summary ({status:?}):\n{}",
            vm_report.log_text()
        )),
    }
}

/// `P passed F failed`.
fn summary_of(s: &str) -> Option<(usize, usize)> {
    let w: Vec<&str> = s.split(' ').collect();
    match w[..] {
        [p, "passed", f, "failed"] => Some((p.parse().ok()?, f.parse().ok()?)),
        _ => None,
    }
}

/// Runs the script at `path` in a VM of `arch` (booting the kernel ELF
/// `kernel`, compiled by `engine` for it): host counts plus the kernel's.
/// A component script boots a VM of its own, as
/// [`run_component_files_in_vm`] would.
pub fn run_file_in_vm(engine: &Engine, arch: GuestArch, kernel: &Path, path: &Path) -> Report {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return failure(format!("cannot read: {e}")),
    };
    if crate::component_batch::is_component_script(&text) {
        return run_component_files_in_vm(engine, arch, kernel, &[path.to_path_buf()])
            .pop()
            .unwrap_or_default();
    }
    let batch = build(engine, &text);
    let mut report = batch.host.clone();
    let mut entries = vec![
        Entry {
            path: "manifest".into(),
            data: b"version 1\nspec-batch spec.batch\n".to_vec(),
        },
        Entry {
            path: "spec.batch".into(),
            data: batch.text.into_bytes(),
        },
    ];
    for (i, (wasm, art)) in batch.modules.into_iter().enumerate() {
        entries.push(Entry {
            path: format!("spec/{i}.wasm"),
            data: wasm,
        });
        entries.push(Entry {
            path: format!("spec/{i}.cwasm"),
            data: art,
        });
    }
    let log = match boot_batch(arch, kernel, &entries) {
        Ok(log) => log,
        Err(why) => {
            report.counts.failed += 1;
            report.failures.push(why);
            return report;
        }
    };
    for l in &log {
        if let Some(f) = l.strip_prefix("spec-batch: FAIL ") {
            report.failures.push(f.to_string());
        } else if let Some((p, f)) = l.strip_prefix("spec-batch: ").and_then(summary_of) {
            report.counts.passed += p;
            report.counts.failed += f;
        }
    }
    report
}

/// Runs the component scripts at `paths` in one VM of `arch`: a report
/// per script, host counts plus the kernel's.
pub fn run_component_files_in_vm(
    engine: &Engine,
    arch: GuestArch,
    kernel: &Path,
    paths: &[std::path::PathBuf],
) -> Vec<Report> {
    let mut texts = Vec::with_capacity(paths.len());
    for p in paths {
        match std::fs::read_to_string(p) {
            Ok(t) => texts.push(t),
            Err(e) => {
                let mut reports = vec![Report::default(); paths.len()];
                reports[texts.len()] = failure(format!("cannot read: {e}"));
                return reports;
            }
        }
    }
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let batch = crate::component_batch::build(engine, &refs);
    let mut reports = batch.host.clone();
    let log = match boot_batch(arch, kernel, &batch.entries()) {
        Ok(log) => log,
        Err(why) => {
            for r in &mut reports {
                r.counts.failed += 1;
                r.failures.push(why.clone());
            }
            return reports;
        }
    };
    for l in &log {
        if let Some(f) = l.strip_prefix("spec-batch: FAIL ") {
            // `I/LINE: reason`
            if let Some((i, rest)) = f.split_once('/')
                && let Some(r) = i.parse::<usize>().ok().and_then(|i| reports.get_mut(i))
            {
                r.failures.push(rest.to_string());
            }
        } else if let Some(s) = l.strip_prefix("spec-batch: script ")
            && let Some((i, counts)) = s.split_once(": ")
            && let (Some(r), Some((p, f))) = (
                i.parse::<usize>().ok().and_then(|i| reports.get_mut(i)),
                summary_of(counts),
            )
        {
            r.counts.passed += p;
            r.counts.failed += f;
        }
    }
    reports
}

/// `basalt wast --in-vm [--arch ARCH] FILE…`: component scripts together
/// in one VM, core scripts one VM each; returns the exit code.
pub fn command(
    files: &[std::path::PathBuf],
    arch: GuestArch,
    verbose: bool,
) -> Result<i32, CliError> {
    let kernel = guest::kernel(arch, false)?;
    let engine = guest_engine(arch)
        .map_err(|e| CliError::Module(format!("cannot create an engine: {e}")))?;
    let component: Vec<std::path::PathBuf> = files
        .iter()
        .filter(|f| {
            std::fs::read_to_string(f)
                .is_ok_and(|t| crate::component_batch::is_component_script(&t))
        })
        .cloned()
        .collect();
    let mut component_reports = if component.is_empty() {
        Vec::new()
    } else {
        run_component_files_in_vm(&engine, arch, &kernel, &component)
    }
    .into_iter();
    let mut total = Counts::default();
    for file in files {
        let report = if component.contains(file) {
            component_reports.next().unwrap_or_default()
        } else {
            run_file_in_vm(&engine, arch, &kernel, file)
        };
        println!("{} (in VM): {}", file.display(), report.counts);
        if verbose {
            for f in &report.failures {
                println!("  {}:{f}", file.display());
            }
        }
        total.add(report.counts);
    }
    println!("total (in VM): {total} ({} files)", files.len());
    Ok(if total.failed > 0 { 1 } else { 0 })
}
