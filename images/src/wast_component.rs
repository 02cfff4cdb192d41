//! Component-model scripts for `basalt wast`: `component` (text, binary or
//! quoted), `component definition` / `component instance`, `register`,
//! `invoke`, `assert_return` with component values, `assert_trap`,
//! `assert_invalid`, `assert_malformed` and `assert_unlinkable`, as the
//! component-model reference tests (`test/`) use them.

use std::collections::HashMap;

use ::wast::component::WastVal;
use ::wast::{QuoteWat, WastArg, WastDirective, WastExecute, WastInvoke, WastRet};
use basalt_runtime::component::script::ScriptValue;
use basalt_runtime::component::{Component, ComponentInstance, Item, Linker, Type, Value};
use basalt_runtime::{Engine, Error, Store};

use crate::wast::{Outcome, Step};

/// Whether a directive is about components (a script with any is run by
/// [`ComponentRunner`]).
pub(crate) fn is_component_directive(d: &WastDirective<'_>) -> bool {
    let is = |q: &QuoteWat<'_>| {
        matches!(
            q,
            QuoteWat::QuoteComponent(..) | QuoteWat::Wat(::wast::Wat::Component(_))
        )
    };
    match d {
        WastDirective::Module(q) | WastDirective::ModuleDefinition(q) => is(q),
        WastDirective::AssertInvalid { module, .. }
        | WastDirective::AssertMalformed { module, .. } => is(module),
        WastDirective::AssertUnlinkable { module, .. } => {
            matches!(module, ::wast::Wat::Component(_))
        }
        _ => false,
    }
}

/// Runs the directives of one component script.
pub(crate) struct ComponentRunner<'e> {
    engine: &'e Engine,
    store: Store<()>,
    linker: Linker<()>,
    named: HashMap<String, ComponentInstance<()>>,
    definitions: HashMap<String, Component>,
    current: Option<String>,
    anonymous: usize,
}

impl<'e> ComponentRunner<'e> {
    /// A runner with an empty linker.
    pub(crate) fn new(engine: &'e Engine) -> Self {
        ComponentRunner {
            engine,
            store: Store::new(engine, ()),
            linker: Linker::new(),
            named: HashMap::new(),
            definitions: HashMap::new(),
            current: None,
            anonymous: 0,
        }
    }

    fn add_instance(&mut self, name: Option<String>, inst: ComponentInstance<()>) {
        let name = name.unwrap_or_else(|| {
            self.anonymous += 1;
            format!("#anonymous{}", self.anonymous)
        });
        self.named.insert(name.clone(), inst);
        self.current = Some(name);
    }

    fn instance(
        &self,
        id: Option<::wast::token::Id<'_>>,
    ) -> Result<&ComponentInstance<()>, String> {
        let name = match id {
            Some(id) => id.name().to_string(),
            None => self.current.clone().ok_or("no current component")?,
        };
        self.named
            .get(&name)
            .ok_or_else(|| format!("no component named {name}"))
    }

    fn compile(&self, q: &mut QuoteWat<'_>) -> Result<Result<Component, Error>, String> {
        let bytes = q.encode().map_err(|e| format!("encode: {e}"))?;
        Ok(Component::new(self.engine, &bytes))
    }

    /// Runs one directive.
    pub(crate) fn directive(&mut self, d: WastDirective<'_>) -> Outcome {
        match d {
            WastDirective::Module(mut q) => {
                let name = q.name().map(|n| n.name().to_string());
                let c = self
                    .compile(&mut q)?
                    .map_err(|e| format!("component: {e}"))?;
                let inst = self
                    .linker
                    .instantiate(&mut self.store, &c)
                    .map_err(|e| format!("instantiate: {e}"))?;
                self.add_instance(name, inst);
                Ok(Step::Done)
            }
            WastDirective::ModuleDefinition(mut q) => {
                let name = q.name().map(|n| n.name().to_string());
                let c = self
                    .compile(&mut q)?
                    .map_err(|e| format!("component: {e}"))?;
                if let Some(n) = name {
                    self.definitions.insert(n, c);
                }
                Ok(Step::Done)
            }
            WastDirective::ModuleInstance {
                instance, module, ..
            } => {
                let c = module
                    .and_then(|m| self.definitions.get(m.name()))
                    .cloned()
                    .ok_or("instance of an unknown definition")?;
                let inst = self
                    .linker
                    .instantiate(&mut self.store, &c)
                    .map_err(|e| format!("instantiate: {e}"))?;
                self.add_instance(instance.map(|i| i.name().to_string()), inst);
                Ok(Step::Done)
            }
            WastDirective::Register { name, module, .. } => {
                let exports = self.instance(module)?.exports().clone();
                self.linker.define(name, Item::Instance(exports));
                Ok(Step::Done)
            }
            WastDirective::Invoke(i) => {
                self.invoke(&i)?.map_err(|e| format!("failed: {e}"))?;
                Ok(Step::Done)
            }
            WastDirective::AssertReturn { exec, results, .. } => {
                let (got, ty) = match exec {
                    WastExecute::Invoke(i) => {
                        let ty = self.result_type(&i)?;
                        (self.invoke(&i)?.map_err(|e| format!("failed: {e}"))?, ty)
                    }
                    _ => return Ok(Step::Skipped),
                };
                if got.len() != results.len() {
                    return Err(format!(
                        "expected {} results, got {}",
                        results.len(),
                        got.len()
                    ));
                }
                for ((g, w), t) in got.iter().zip(&results).zip(ty.iter()) {
                    let WastRet::Component(w) = w else {
                        return Err("a core result in a component script".into());
                    };
                    if !value_matches(w, g, t) {
                        return Err(format!("expected {w:?}, got {g}"));
                    }
                }
                Ok(Step::Done)
            }
            WastDirective::AssertTrap { exec, message, .. } => {
                let outcome = match exec {
                    WastExecute::Invoke(i) => self.invoke(&i)?.map(|_| ()),
                    WastExecute::Wat(w) => {
                        let mut q = QuoteWat::Wat(w);
                        match self.compile(&mut q)? {
                            Ok(c) => self.linker.instantiate(&mut self.store, &c).map(|_| ()),
                            Err(e) => Err(e),
                        }
                    }
                    WastExecute::Get { .. } => return Ok(Step::Skipped),
                };
                match outcome {
                    Ok(()) => Err(format!("expected trap `{message}`, it returned")),
                    Err(Error::Trap(t)) if trap_message_matches(&t, message) => Ok(Step::Done),
                    Err(e) => Err(format!("expected trap `{message}`, got {e}")),
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
                let bytes = match module.encode() {
                    Ok(b) => b,
                    Err(_) => return Ok(Step::Done),
                };
                match basalt_runtime::component::validate(&bytes) {
                    Ok(()) => Err(format!("expected rejection `{message}`, it validated")),
                    Err(_) => Ok(Step::Done),
                }
            }
            WastDirective::AssertUnlinkable {
                module, message, ..
            } => match self.compile(&mut QuoteWat::Wat(module))? {
                Ok(c) => match self.linker.instantiate(&mut self.store, &c) {
                    Ok(_) => Err(format!("expected unlinkable `{message}`")),
                    Err(_) => Ok(Step::Done),
                },
                Err(_) => Ok(Step::Done),
            },
            _ => Ok(Step::Skipped),
        }
    }

    fn func(
        &self,
        i: &WastInvoke<'_>,
    ) -> Result<basalt_runtime::component::ComponentFunc<()>, String> {
        self.instance(i.module)?
            .get_func(i.name)
            .ok_or_else(|| format!("no function {}", i.name))
    }

    fn result_type(&self, i: &WastInvoke<'_>) -> Result<Vec<Type>, String> {
        Ok(self.func(i)?.ty().result_types().to_vec())
    }

    fn invoke(&mut self, i: &WastInvoke<'_>) -> Result<Result<Vec<Value>, Error>, String> {
        let f = self.func(i)?;
        let mut args = Vec::new();
        for (a, (_, t)) in i.args.iter().zip(&f.ty().params) {
            let WastArg::Component(w) = a else {
                return Err("a core argument in a component script".into());
            };
            args.push(to_value(w, t)?);
        }
        Ok(f.call(&mut self.store, &args))
    }
}

fn trap_message_matches(t: &basalt_runtime::Trap, expected: &str) -> bool {
    let want = expected.strip_prefix("wasm trap: ").unwrap_or(expected);
    let shown = t.to_string();
    shown.contains(want)
        || t.message.as_deref().is_some_and(|m| m.contains(want))
        || t.kind.matches_spec_message(want)
}

/// The value a script writes, before its type is known.
pub(crate) fn script_value(w: &WastVal<'_>) -> Result<ScriptValue, String> {
    let payload = |p: &Option<Box<WastVal<'_>>>| -> Result<Option<Box<ScriptValue>>, String> {
        p.as_ref()
            .map(|v| script_value(v).map(Box::new))
            .transpose()
    };
    let all = |vs: &[WastVal<'_>]| vs.iter().map(script_value).collect::<Result<Vec<_>, _>>();
    Ok(match w {
        WastVal::Bool(b) => ScriptValue::Bool(*b),
        WastVal::U8(x) => ScriptValue::U8(*x),
        WastVal::S8(x) => ScriptValue::S8(*x),
        WastVal::U16(x) => ScriptValue::U16(*x),
        WastVal::S16(x) => ScriptValue::S16(*x),
        WastVal::U32(x) => ScriptValue::U32(*x),
        WastVal::S32(x) => ScriptValue::S32(*x),
        WastVal::U64(x) => ScriptValue::U64(*x),
        WastVal::S64(x) => ScriptValue::S64(*x),
        WastVal::F32(x) => ScriptValue::F32(x.bits),
        WastVal::F64(x) => ScriptValue::F64(x.bits),
        WastVal::Char(c) => ScriptValue::Char(*c),
        WastVal::String(s) => ScriptValue::String(s.to_string()),
        WastVal::List(vs) => ScriptValue::List(all(vs)?),
        WastVal::Map(kvs) => ScriptValue::Map(
            kvs.iter()
                .map(|(k, v)| Ok((script_value(k)?, script_value(v)?)))
                .collect::<Result<_, String>>()?,
        ),
        WastVal::Record(fs) => ScriptValue::Record(
            fs.iter()
                .map(|(n, v)| Ok((n.to_string(), script_value(v)?)))
                .collect::<Result<_, String>>()?,
        ),
        WastVal::Tuple(vs) => ScriptValue::Tuple(all(vs)?),
        WastVal::Variant(n, p) => ScriptValue::Variant(n.to_string(), payload(p)?),
        WastVal::Enum(n) => ScriptValue::Enum(n.to_string()),
        WastVal::Option(p) => ScriptValue::Option(payload(p)?),
        WastVal::Result(r) => ScriptValue::Result(match r {
            Ok(p) => Ok(payload(p)?),
            Err(p) => Err(payload(p)?),
        }),
        WastVal::Flags(fs) => ScriptValue::Flags(fs.iter().map(|f| f.to_string()).collect()),
    })
}

/// The component value a script writes, as type `t`.
fn to_value(w: &WastVal<'_>, t: &Type) -> Result<Value, String> {
    script_value(w)?.to_value(t)
}

/// Whether `got` is the value the script expects.
fn value_matches(want: &WastVal<'_>, got: &Value, t: &Type) -> bool {
    script_value(want).is_ok_and(|w| w.matches(got, t))
}
