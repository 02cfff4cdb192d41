//! `basalt wast --in-vm` for component scripts: the host turns a
//! component-model script into a *component batch* (format in
//! `docs/guest-protocol.md`) that the kernel runs with its own component
//! runtime. Every component goes into the bundle as `spec/N.wasm`, with
//! each of its K core modules compiled here for the guest
//! (`spec/N.cwasm.0` … `spec/N.cwasm.{K-1}`); values are written in
//! `basalt_runtime::component::script`'s notation, so the kernel reads
//! them as the hosted runner does.
//!
//! Stays on the host: `assert_invalid` and `assert_malformed` (validation
//! only) and components that do not validate or compile (failures here).

use ::wast::parser::{self, ParseBuffer};
use ::wast::{QuoteWat, Wast, WastArg, WastDirective, WastExecute, WastInvoke, WastRet};
use basalt_runtime::component::def;
use basalt_runtime::{Engine, Module};

use crate::bundle::Entry;
use crate::spec_batch::{hex, inst_ref};
use crate::wast::Report;
use crate::wast_component::script_value;

/// The first line of a component batch.
pub const HEADER: &str = "component-batch 1";

/// A component script turned into what the kernel runs.
pub struct ComponentBatch {
    /// the command lines, first line included
    pub text: String,
    /// per component: its binary and the compiled code of its core modules
    pub components: Vec<(Vec<u8>, Vec<Vec<u8>>)>,
    /// per script, the commands decided on the host
    pub host: Vec<Report>,
}

impl ComponentBatch {
    /// The bundle entries of the batch (the manifest names it).
    pub fn entries(self) -> Vec<Entry> {
        let mut entries = vec![
            Entry {
                path: "manifest".into(),
                data: b"version 1\nspec-batch spec.batch\n".to_vec(),
            },
            Entry {
                path: "spec.batch".into(),
                data: self.text.into_bytes(),
            },
        ];
        for (i, (wasm, code)) in self.components.into_iter().enumerate() {
            entries.push(Entry {
                path: format!("spec/{i}.wasm"),
                data: wasm,
            });
            for (k, c) in code.into_iter().enumerate() {
                entries.push(Entry {
                    path: format!("spec/{i}.cwasm.{k}"),
                    data: c,
                });
            }
        }
        entries
    }
}

fn invoke_tail(i: &WastInvoke<'_>) -> Result<String, String> {
    let mut s = format!("{} {}", inst_ref(i.module), hex(i.name));
    for a in &i.args {
        let WastArg::Component(v) = a else {
            return Err("a core argument in a component script".into());
        };
        s.push(' ');
        s.push_str(&script_value(v)?.encode());
    }
    Ok(s)
}

struct Builder<'e> {
    engine: &'e Engine,
    batch: ComponentBatch,
    /// the script being added (its index)
    script: usize,
}

impl Builder<'_> {
    /// Validates and compiles a component: `N K` for its commands.
    fn component(&mut self, q: &mut QuoteWat<'_>) -> Result<String, String> {
        let bytes = q.encode().map_err(|e| format!("encode: {e}"))?;
        basalt_runtime::component::validate(&bytes).map_err(|e| format!("component: {e}"))?;
        let parsed = def::parse(&bytes).map_err(|e| format!("component: {e}"))?;
        let mut code = Vec::with_capacity(parsed.modules.len());
        for range in &parsed.modules {
            let core = bytes
                .get(range.clone())
                .ok_or("a core module past the end of the component")?;
            code.push(
                Module::compile_artifact(self.engine, core).map_err(|e| format!("module: {e}"))?,
            );
        }
        let k = code.len();
        self.batch.components.push((bytes, code));
        Ok(format!("{} {k}", self.batch.components.len() - 1))
    }

    fn line(&mut self, l: String) {
        self.batch.text.push_str(&l);
        self.batch.text.push('\n');
    }

    /// Adds one directive; `Ok(Some(true))` when the host decided it
    /// passed, `Ok(Some(false))` when it is skipped.
    fn directive(&mut self, line: usize, d: WastDirective<'_>) -> Result<Option<bool>, String> {
        // Where the kernel's reports point: the script and its line.
        let line = format!("{}/{line}", self.script);
        match d {
            WastDirective::Module(mut q) => {
                let name = inst_ref(q.name());
                let nk = self.component(&mut q)?;
                self.line(format!("component {line} {nk} {name}"));
                Ok(None)
            }
            WastDirective::ModuleDefinition(mut q) => {
                let name = q.name().map(|n| hex(n.name()));
                let nk = self.component(&mut q)?;
                if let Some(name) = name {
                    self.line(format!("define {line} {nk} {name}"));
                }
                Ok(Some(true))
            }
            WastDirective::ModuleInstance {
                instance, module, ..
            } => {
                let module = module.ok_or("an instance of an unnamed definition")?;
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
                let WastExecute::Invoke(i) = exec else {
                    return Ok(Some(false));
                };
                let mut l = format!("return {line} {} =", invoke_tail(&i)?);
                for r in &results {
                    let WastRet::Component(v) = r else {
                        return Err("a core result in a component script".into());
                    };
                    l.push(' ');
                    l.push_str(&script_value(v)?.encode());
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
                    WastExecute::Wat(w) => {
                        let nk = self.component(&mut QuoteWat::Wat(w))?;
                        self.line(format!("trap-instantiate {line} {nk} ! {}", hex(message)));
                    }
                    WastExecute::Get { .. } => return Ok(Some(false)),
                }
                Ok(None)
            }
            WastDirective::AssertUnlinkable { module, .. } => {
                match self.component(&mut QuoteWat::Wat(module)) {
                    Ok(nk) => {
                        self.line(format!("unlinkable {line} {nk}"));
                        Ok(None)
                    }
                    // refused before linking
                    Err(_) => Ok(Some(true)),
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
                let Ok(bytes) = module.encode() else {
                    return Ok(Some(true));
                };
                match basalt_runtime::component::validate(&bytes) {
                    Ok(()) => Err(format!("expected rejection `{message}`, it validated")),
                    Err(_) => Ok(Some(true)),
                }
            }
            _ => Ok(Some(false)),
        }
    }
}

/// Whether the script `text` is about components (its directives name
/// any), so `--in-vm` runs it as a component batch.
pub fn is_component_script(text: &str) -> bool {
    let Ok(buf) = ParseBuffer::new(text) else {
        return false;
    };
    parser::parse::<Wast<'_>>(&buf).is_ok_and(|w| {
        w.directives
            .iter()
            .any(crate::wast_component::is_component_directive)
    })
}

/// Turns the component scripts `texts` into one batch (each starts with
/// a `script I` command, which gives the kernel a fresh store); core
/// modules are compiled for the guest with `engine`.
pub fn build(engine: &Engine, texts: &[&str]) -> ComponentBatch {
    let mut b = Builder {
        engine,
        batch: ComponentBatch {
            text: format!("{HEADER}\n"),
            components: Vec::new(),
            host: Vec::new(),
        },
        script: 0,
    };
    for (i, text) in texts.iter().enumerate() {
        b.script = i;
        b.batch.host.push(Report::default());
        b.line(format!("script {i}"));
        b.add_script(text);
    }
    b.batch
}

impl Builder<'_> {
    fn add_script(&mut self, text: &str) {
        let i = self.script;
        let fail = |b: &mut Builder<'_>, msg: String| {
            b.batch.host[i].counts.failed += 1;
            b.batch.host[i].failures.push(msg);
        };
        let buf = match ParseBuffer::new(text) {
            Ok(buf) => buf,
            Err(e) => return fail(self, format!("lex error: {e}")),
        };
        let wast: Wast<'_> = match parser::parse(&buf) {
            Ok(w) => w,
            Err(e) => return fail(self, format!("parse error: {e}")),
        };
        for d in wast.directives {
            let (line, col) = d.span().linecol_in(text);
            match self.directive(line + 1, d) {
                Ok(None) => {}
                Ok(Some(true)) => self.batch.host[i].counts.passed += 1,
                Ok(Some(false)) => self.batch.host[i].counts.skipped += 1,
                Err(msg) => fail(self, format!("{}:{}: (host) {msg}", line + 1, col + 1)),
            }
        }
    }
}
