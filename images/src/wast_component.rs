//! Component-model scripts for `basalt wast`: `component` (text, binary or
//! quoted), `component definition` / `component instance`, `register`,
//! `invoke`, `assert_return` with component values, `assert_trap`,
//! `assert_invalid`, `assert_malformed` and `assert_unlinkable`, as the
//! component-model reference tests (`test/`) use them.

use std::collections::HashMap;

use ::wast::component::WastVal;
use ::wast::{QuoteWat, WastArg, WastDirective, WastExecute, WastInvoke, WastRet};
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

fn index_of(names: &[&str], name: &str) -> Result<u32, String> {
    names
        .iter()
        .position(|n| *n == name)
        .map(|i| i as u32)
        .ok_or_else(|| format!("no case or label `{name}`"))
}

/// The component value a script writes, as type `t`.
fn to_value(w: &WastVal<'_>, t: &Type) -> Result<Value, String> {
    let payload =
        |p: &Option<Box<WastVal<'_>>>, t: Option<&Type>| -> Result<Option<Box<Value>>, String> {
            match (p, t) {
                (None, _) => Ok(None),
                (Some(v), Some(t)) => Ok(Some(Box::new(to_value(v, t)?))),
                (Some(_), None) => Err("a payload for a case without one".into()),
            }
        };
    Ok(match (w, t) {
        (WastVal::Bool(b), Type::Bool) => Value::Bool(*b),
        (WastVal::U8(x), Type::U8) => Value::U8(*x),
        (WastVal::S8(x), Type::S8) => Value::S8(*x),
        (WastVal::U16(x), Type::U16) => Value::U16(*x),
        (WastVal::S16(x), Type::S16) => Value::S16(*x),
        (WastVal::U32(x), Type::U32) => Value::U32(*x),
        (WastVal::S32(x), Type::S32) => Value::S32(*x),
        (WastVal::U64(x), Type::U64) => Value::U64(*x),
        (WastVal::S64(x), Type::S64) => Value::S64(*x),
        (WastVal::F32(x), Type::F32) => Value::F32(f32::from_bits(x.bits)),
        (WastVal::F64(x), Type::F64) => Value::F64(f64::from_bits(x.bits)),
        (WastVal::Char(c), Type::Char) => Value::Char(*c),
        (WastVal::String(s), Type::String) => Value::String(s.to_string()),
        (WastVal::List(vs), Type::List(e) | Type::FixedList(e, _)) => Value::List(
            vs.iter()
                .map(|v| to_value(v, e))
                .collect::<Result<_, _>>()?,
        ),
        (WastVal::Map(kvs), Type::List(e)) => match &**e {
            Type::Tuple(kv) if kv.len() == 2 => Value::List(
                kvs.iter()
                    .map(|(k, v)| {
                        Ok(Value::Tuple(vec![
                            to_value(k, &kv[0])?,
                            to_value(v, &kv[1])?,
                        ]))
                    })
                    .collect::<Result<_, String>>()?,
            ),
            _ => return Err("a map for a non-map list".into()),
        },
        (WastVal::Record(fs), Type::Record(tf)) => {
            let mut vs = Vec::new();
            for (name, ft) in tf {
                let (_, v) = fs
                    .iter()
                    .find(|(n, _)| n == name)
                    .ok_or_else(|| format!("missing field {name}"))?;
                vs.push(to_value(v, ft)?);
            }
            Value::Record(vs)
        }
        (WastVal::Tuple(vs), Type::Tuple(ts)) if vs.len() == ts.len() => Value::Tuple(
            vs.iter()
                .zip(ts)
                .map(|(v, t)| to_value(v, t))
                .collect::<Result<_, _>>()?,
        ),
        (WastVal::Variant(name, p), Type::Variant(cases)) => {
            let names: Vec<&str> = cases.iter().map(|(n, _)| n.as_str()).collect();
            let i = index_of(&names, name)?;
            Value::Variant(i, payload(p, cases[i as usize].1.as_ref())?)
        }
        (WastVal::Enum(name), Type::Enum(names)) => {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            Value::Enum(index_of(&names, name)?)
        }
        (WastVal::Option(p), Type::Option(t)) => Value::Option(payload(p, Some(t))?),
        (WastVal::Result(r), Type::Result { ok, err }) => Value::Result(match r {
            Ok(p) => Ok(payload(p, ok.as_deref())?),
            Err(p) => Err(payload(p, err.as_deref())?),
        }),
        (WastVal::Flags(set), Type::Flags(names)) => {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let mut bits = 0u32;
            for f in set {
                bits |= 1 << index_of(&names, f)?;
            }
            Value::Flags(bits)
        }
        _ => return Err(format!("the script's value {w:?} is not a {t}")),
    })
}

fn float_eq32(a: f32, b: f32) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

fn float_eq64(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

/// Whether `got` is the value the script expects.
fn value_matches(want: &WastVal<'_>, got: &Value, t: &Type) -> bool {
    match (want, got) {
        (WastVal::F32(w), Value::F32(g)) => float_eq32(f32::from_bits(w.bits), *g),
        (WastVal::F64(w), Value::F64(g)) => float_eq64(f64::from_bits(w.bits), *g),
        (WastVal::List(ws), Value::Bytes(b)) => {
            ws.len() == b.len()
                && ws
                    .iter()
                    .zip(b)
                    .all(|(w, x)| matches!(w, WastVal::U8(y) if y == x))
        }
        (WastVal::List(ws), Value::List(gs)) => match t {
            Type::List(e) | Type::FixedList(e, _) => {
                ws.len() == gs.len() && ws.iter().zip(gs).all(|(w, g)| value_matches(w, g, e))
            }
            _ => false,
        },
        (WastVal::Tuple(ws), Value::Tuple(gs)) => match t {
            Type::Tuple(ts) => {
                ws.len() == gs.len()
                    && ws
                        .iter()
                        .zip(gs)
                        .zip(ts)
                        .all(|((w, g), t)| value_matches(w, g, t))
            }
            _ => false,
        },
        (WastVal::Record(ws), Value::Record(gs)) => match t {
            Type::Record(fs) => {
                ws.len() == fs.len()
                    && fs.iter().zip(gs).all(|((n, ft), g)| {
                        ws.iter().any(|(wn, w)| wn == n && value_matches(w, g, ft))
                    })
            }
            _ => false,
        },
        (WastVal::Option(w), Value::Option(g)) => match (w, g, t) {
            (None, None, _) => true,
            (Some(w), Some(g), Type::Option(e)) => value_matches(w, g, e),
            _ => false,
        },
        (WastVal::Result(w), Value::Result(g)) => match (w, g, t) {
            (Ok(w), Ok(g), Type::Result { ok, .. }) => payload_matches(w, g, ok.as_deref()),
            (Err(w), Err(g), Type::Result { err, .. }) => payload_matches(w, g, err.as_deref()),
            _ => false,
        },
        (WastVal::Variant(name, w), Value::Variant(i, g)) => match t {
            Type::Variant(cases) => cases
                .get(*i as usize)
                .is_some_and(|(n, ct)| n == name && payload_matches(w, g, ct.as_ref())),
            _ => false,
        },
        _ => to_value(want, t).is_ok_and(|w| &w == got),
    }
}

fn payload_matches(w: &Option<Box<WastVal<'_>>>, g: &Option<Box<Value>>, t: Option<&Type>) -> bool {
    match (w, g, t) {
        (None, None, _) => true,
        (Some(w), Some(g), Some(t)) => value_matches(w, g, t),
        _ => false,
    }
}
