//! Component batches: the component-model test commands `basalt wast
//! --in-vm` turned a component script into (format in
//! `docs/guest-protocol.md`), run here with the kernel's component
//! runtime, fused adapters compiled in the kernel. Every failing command
//! is logged as `spec-batch: FAIL LINE: reason`, then `spec-batch: P
//! passed F failed`, as for core batches.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use basalt_runtime::component::script::ScriptValue;
use basalt_runtime::component::{Component, ComponentFunc, ComponentInstance, Item, Linker, Value};
use basalt_runtime::{Engine, Error, Store};

use crate::bundle::Bundle;
use crate::spec::{BatchError, syntax, unhex};

/// The first line of a component batch.
pub const HEADER: &str = "component-batch 1";

fn number(line: usize, s: &str) -> Result<usize, BatchError> {
    s.parse()
        .map_err(|_| syntax(line, format!("bad number `{s}`")))
}

/// An invocation: the instance (`None`: the current one), the function
/// and its arguments.
struct Call {
    inst: Option<String>,
    func: String,
    args: Vec<ScriptValue>,
}

struct Runner<'a> {
    engine: &'a Engine,
    bundle: &'a Bundle<'a>,
    store: Store<()>,
    linker: Linker<()>,
    named: BTreeMap<String, ComponentInstance<()>>,
    definitions: BTreeMap<String, Component>,
    current: Option<String>,
    anonymous: usize,
}

type Outcome = Result<(), String>;

/// What a call returned (or how it trapped), and the function called.
type Called = (Result<Vec<Value>, Error>, ComponentFunc<()>);

impl Runner<'_> {
    /// Component `n` of the bundle with its `k` compiled core modules.
    fn component(&self, n: &str, k: &str, line: usize) -> Result<Component, BatchError> {
        let k = number(line, k)?;
        let wasm = self
            .bundle
            .get(&format!("spec/{n}.wasm"))
            .ok_or_else(|| syntax(line, format!("no spec/{n}.wasm in the bundle")))?;
        crate::run::precompiled_component(self.engine, wasm, k, |i| {
            self.bundle.get(&format!("spec/{n}.cwasm.{i}"))
        })
        .map_err(|e| syntax(line, format!("component {n}: {e}")))
    }

    fn add(&mut self, name: Option<String>, inst: ComponentInstance<()>) {
        let name = name.unwrap_or_else(|| {
            self.anonymous += 1;
            format!("#anonymous{}", self.anonymous)
        });
        self.named.insert(name.clone(), inst);
        self.current = Some(name);
    }

    fn instance(&self, name: &Option<String>) -> Result<&ComponentInstance<()>, String> {
        let name = name
            .clone()
            .or_else(|| self.current.clone())
            .ok_or("no current component")?;
        self.named
            .get(&name)
            .ok_or_else(|| format!("no component named {name}"))
    }

    fn func(&self, c: &Call) -> Result<ComponentFunc<()>, String> {
        self.instance(&c.inst)?
            .get_func(&c.func)
            .ok_or_else(|| format!("no function {}", c.func))
    }

    fn invoke(&mut self, c: &Call) -> Result<Called, String> {
        let f = self.func(c)?;
        if c.args.len() != f.ty().params.len() {
            return Err(format!(
                "{} arguments for a function of {} parameters",
                c.args.len(),
                f.ty().params.len()
            ));
        }
        let args = c
            .args
            .iter()
            .zip(&f.ty().params)
            .map(|(a, (_, t))| a.to_value(t))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((f.call(&mut self.store, &args), f))
    }

    /// Reads `INST FUNC ARG…` (up to `stop`, if given).
    fn call(line: usize, words: &[&str]) -> Result<Call, BatchError> {
        let (inst, func, args) = match words {
            [i, f, rest @ ..] => (i, f, rest),
            _ => {
                return Err(syntax(
                    line,
                    "an invocation needs an instance and a function",
                ));
            }
        };
        Ok(Call {
            inst: (*inst != "-").then(|| unhex(line, inst)).transpose()?,
            func: unhex(line, func)?,
            args: args
                .iter()
                .map(|a| ScriptValue::decode(a).map_err(|e| syntax(line, e)))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Runs one command line: `(counted, outcome)`.
    fn command(&mut self, line: usize, text: &str) -> Result<(bool, Outcome), BatchError> {
        let words: Vec<&str> = text.split(' ').collect();
        let (Some(cmd), Some(at)) = (words.first(), words.get(1)) else {
            return Err(syntax(line, "a command and a script line"));
        };
        let rest = &words[2..];
        let outcome: Outcome = match (*cmd, rest) {
            ("component", [n, k, name]) => {
                let c = self.component(n, k, line)?;
                match self.linker.instantiate(&mut self.store, &c) {
                    Ok(inst) => {
                        let name = (*name != "-").then(|| unhex(line, name)).transpose()?;
                        self.add(name, inst);
                        Ok(())
                    }
                    Err(e) => Err(format!("instantiate: {e}")),
                }
            }
            ("define", [n, k, name]) => {
                let c = self.component(n, k, line)?;
                self.definitions.insert(unhex(line, name)?, c);
                return Ok((false, Ok(())));
            }
            ("instance", [def, name]) => {
                let def = unhex(line, def)?;
                match self.definitions.get(&def).cloned() {
                    None => Err(format!("no definition {def}")),
                    Some(c) => match self.linker.instantiate(&mut self.store, &c) {
                        Ok(inst) => {
                            let name = (*name != "-").then(|| unhex(line, name)).transpose()?;
                            self.add(name, inst);
                            Ok(())
                        }
                        Err(e) => Err(format!("instantiate: {e}")),
                    },
                }
            }
            ("register", [as_name, inst]) => {
                let inst = (*inst != "-").then(|| unhex(line, inst)).transpose()?;
                match self.instance(&inst) {
                    Ok(i) => {
                        let exports = i.exports().clone();
                        self.linker
                            .define(&unhex(line, as_name)?, Item::Instance(exports));
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            ("invoke", words) => {
                let c = Self::call(line, words)?;
                match self.invoke(&c) {
                    Ok((Ok(_), _)) => Ok(()),
                    Ok((Err(e), _)) => Err(format!("failed: {e}")),
                    Err(e) => Err(e),
                }
            }
            ("return", words) => {
                let eq = words
                    .iter()
                    .position(|w| *w == "=")
                    .ok_or_else(|| syntax(line, "`return` without `=`"))?;
                let c = Self::call(line, &words[..eq])?;
                let wants = words[eq + 1..]
                    .iter()
                    .map(|w| ScriptValue::decode(w).map_err(|e| syntax(line, e)))
                    .collect::<Result<Vec<_>, _>>()?;
                match self.invoke(&c) {
                    Ok((Ok(got), f)) => {
                        let types = f.ty().result_types();
                        if got.len() != wants.len() {
                            Err(format!(
                                "expected {} results, got {}",
                                wants.len(),
                                got.len()
                            ))
                        } else if let Some((w, g)) = wants
                            .iter()
                            .zip(&got)
                            .zip(types)
                            .find(|((w, g), t)| !w.matches(g, t))
                            .map(|((w, g), _)| (w, g))
                        {
                            Err(format!("expected {w:?}, got {g}"))
                        } else {
                            Ok(())
                        }
                    }
                    Ok((Err(e), _)) => Err(format!("failed: {e}")),
                    Err(e) => Err(e),
                }
            }
            ("trap", words) => {
                let bang = words
                    .iter()
                    .position(|w| *w == "!")
                    .ok_or_else(|| syntax(line, "`trap` without `!`"))?;
                let message = unhex(line, words.get(bang + 1).copied().unwrap_or("~"))?;
                let c = Self::call(line, &words[..bang])?;
                match self.invoke(&c) {
                    Ok((r, _)) => trapped(r.map(|_| ()), &message),
                    Err(e) => Err(e),
                }
            }
            ("trap-instantiate", [n, k, "!", message]) => {
                let message = unhex(line, message)?;
                let c = self.component(n, k, line)?;
                let r = self.linker.instantiate(&mut self.store, &c).map(|_| ());
                trapped(r, &message)
            }
            ("unlinkable", [n, k]) => {
                let c = self.component(n, k, line)?;
                match self.linker.instantiate(&mut self.store, &c) {
                    Ok(_) => Err("expected it not to link, it instantiated".into()),
                    Err(_) => Ok(()),
                }
            }
            _ => return Err(syntax(line, format!("unknown command `{text}`"))),
        };
        if let Err(why) = &outcome {
            kprintln!("spec-batch: FAIL {at}: {why}");
        }
        Ok((true, outcome))
    }
}

/// Whether `r` is the trap `message` names.
fn trapped(r: Result<(), Error>, message: &str) -> Outcome {
    let want = message.strip_prefix("wasm trap: ").unwrap_or(message);
    match r {
        Ok(()) => Err(format!("expected trap `{message}`, it returned")),
        Err(Error::Trap(t))
            if t.to_string().contains(want)
                || t.message.as_deref().is_some_and(|m| m.contains(want))
                || t.kind.matches_spec_message(want) =>
        {
            Ok(())
        }
        Err(e) => Err(format!("expected trap `{message}`, got {e}")),
    }
}

fn runner<'a>(engine: &'a Engine, bundle: &'a Bundle<'a>) -> Runner<'a> {
    Runner {
        engine,
        bundle,
        store: Store::new(engine, ()),
        linker: Linker::new(),
        named: BTreeMap::new(),
        definitions: BTreeMap::new(),
        current: None,
        anonymous: 0,
    }
}

/// Runs the component batch `text` (its first line already checked);
/// the exit code: 0 when every command passed. A `script I` line starts
/// script `I` with a fresh store (after `spec-batch: script I-1: P passed
/// F failed` for the one before).
pub fn run(engine: &Engine, bundle: &Bundle<'_>, text: &str) -> Result<i32, BatchError> {
    let mut runner = runner(engine, bundle);
    let (mut passed, mut failed) = (0usize, 0usize);
    let mut script: Option<(String, usize, usize)> = None;
    let report = |s: &Option<(String, usize, usize)>| {
        if let Some((name, p, f)) = s {
            kprintln!("spec-batch: script {name}: {p} passed {f} failed");
        }
    };
    for (i, l) in text.lines().enumerate().skip(1) {
        if l.is_empty() {
            continue;
        }
        if let Some(name) = l.strip_prefix("script ") {
            report(&script);
            script = Some((name.to_string(), 0, 0));
            runner = self::runner(engine, bundle);
            continue;
        }
        let ok = match runner.command(i + 1, l)? {
            (false, _) => continue,
            (true, r) => r.is_ok(),
        };
        let (all, mine) = match (ok, &mut script) {
            (true, Some(s)) => (&mut passed, Some(&mut s.1)),
            (false, Some(s)) => (&mut failed, Some(&mut s.2)),
            (true, None) => (&mut passed, None),
            (false, None) => (&mut failed, None),
        };
        *all += 1;
        if let Some(m) = mine {
            *m += 1;
        }
    }
    report(&script);
    kprintln!("spec-batch: {passed} passed {failed} failed");
    Ok(if failed == 0 { 0 } else { 1 })
}
