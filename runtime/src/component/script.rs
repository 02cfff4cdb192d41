//! Component values as test scripts write them (`(str.const "…")`,
//! `(record.const (field "x" …))`, …): before their type is known, in a
//! one-word notation for the kernel's component batches, and turned into
//! [`Value`]s or compared with them once the function's type says what
//! they are. `basalt wast` uses it hosted and the kernel in a VM, so both
//! read a script's values the same way.
//!
//! The notation (no spaces, names and strings in hex, `~` when empty):
//! `bool:1`, `u8:ff`, `s8:ff` (two's complement bits), … `u64:…`,
//! `f32:BITS`, `f64:BITS`, `char:HEX`, `str:HEX`, `list(V,…)`,
//! `map(K=V,…)`, `record(NAME=V,…)`, `tuple(V,…)`, `variant(NAME)` or
//! `variant(NAME,V)`, `enum(NAME)`, `none()`, `some(V)`, `ok()`, `ok(V)`,
//! `err()`, `err(V)`, `flags(NAME,…)`.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use super::types::Type;
use super::values::Value;

/// A component value as a script writes it.
#[derive(Clone, Debug, PartialEq)]
pub enum ScriptValue {
    /// `bool.const`
    Bool(bool),
    /// `u8.const`
    U8(u8),
    /// `s8.const`
    S8(i8),
    /// `u16.const`
    U16(u16),
    /// `s16.const`
    S16(i16),
    /// `u32.const`
    U32(u32),
    /// `s32.const`
    S32(i32),
    /// `u64.const`
    U64(u64),
    /// `s64.const`
    S64(i64),
    /// `f32.const`, by its bits
    F32(u32),
    /// `f64.const`, by its bits
    F64(u64),
    /// `char.const`
    Char(char),
    /// `str.const`
    String(String),
    /// `list.const`
    List(Vec<ScriptValue>),
    /// `map.const`: a list of key-value tuples
    Map(Vec<(ScriptValue, ScriptValue)>),
    /// `record.const`: fields by name
    Record(Vec<(String, ScriptValue)>),
    /// `tuple.const`
    Tuple(Vec<ScriptValue>),
    /// `variant.const`: a case by name and its payload
    Variant(String, Option<Box<ScriptValue>>),
    /// `enum.const`
    Enum(String),
    /// `option.none` / `option.some`
    Option(Option<Box<ScriptValue>>),
    /// `result.ok` / `result.err`
    Result(Result<Option<Box<ScriptValue>>, Option<Box<ScriptValue>>>),
    /// `flags.const`: the flags set, by name
    Flags(Vec<String>),
}

fn hex(bytes: &[u8], out: &mut String) {
    if bytes.is_empty() {
        out.push('~');
    }
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
}

fn unhex(s: &str) -> Result<String, String> {
    if s == "~" {
        return Ok(String::new());
    }
    if !s.len().is_multiple_of(2) {
        return Err(format!("odd hex `{s}`"));
    }
    let bytes = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| format!("bad hex `{s}`")))
        .collect::<Result<Vec<u8>, String>>()?;
    String::from_utf8(bytes).map_err(|_| format!("hex `{s}` is not UTF-8"))
}

fn index_of(names: &[&str], name: &str) -> Result<u32, String> {
    names
        .iter()
        .position(|n| *n == name)
        .map(|i| i as u32)
        .ok_or_else(|| format!("no case or label `{name}`"))
}

impl ScriptValue {
    /// The value in the batch notation.
    pub fn encode(&self) -> String {
        let mut s = String::new();
        self.encode_into(&mut s);
        s
    }

    fn encode_into(&self, out: &mut String) {
        let list = |out: &mut String, tag: &str, vs: &[ScriptValue]| {
            out.push_str(tag);
            out.push('(');
            for (i, v) in vs.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                v.encode_into(out);
            }
            out.push(')');
        };
        let payload = |out: &mut String, tag: &str, p: &Option<Box<ScriptValue>>| {
            out.push_str(tag);
            out.push('(');
            if let Some(v) = p {
                v.encode_into(out);
            }
            out.push(')');
        };
        match self {
            ScriptValue::Bool(b) => out.push_str(if *b { "bool:1" } else { "bool:0" }),
            ScriptValue::U8(x) => out.push_str(&format!("u8:{x:x}")),
            ScriptValue::S8(x) => out.push_str(&format!("s8:{:x}", *x as u8)),
            ScriptValue::U16(x) => out.push_str(&format!("u16:{x:x}")),
            ScriptValue::S16(x) => out.push_str(&format!("s16:{:x}", *x as u16)),
            ScriptValue::U32(x) => out.push_str(&format!("u32:{x:x}")),
            ScriptValue::S32(x) => out.push_str(&format!("s32:{:x}", *x as u32)),
            ScriptValue::U64(x) => out.push_str(&format!("u64:{x:x}")),
            ScriptValue::S64(x) => out.push_str(&format!("s64:{:x}", *x as u64)),
            ScriptValue::F32(b) => out.push_str(&format!("f32:{b:x}")),
            ScriptValue::F64(b) => out.push_str(&format!("f64:{b:x}")),
            ScriptValue::Char(c) => out.push_str(&format!("char:{:x}", u32::from(*c))),
            ScriptValue::String(s) => {
                out.push_str("str:");
                hex(s.as_bytes(), out);
            }
            ScriptValue::List(vs) => list(out, "list", vs),
            ScriptValue::Tuple(vs) => list(out, "tuple", vs),
            ScriptValue::Map(kvs) => {
                out.push_str("map(");
                for (i, (k, v)) in kvs.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    k.encode_into(out);
                    out.push('=');
                    v.encode_into(out);
                }
                out.push(')');
            }
            ScriptValue::Record(fs) => {
                out.push_str("record(");
                for (i, (n, v)) in fs.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    hex(n.as_bytes(), out);
                    out.push('=');
                    v.encode_into(out);
                }
                out.push(')');
            }
            ScriptValue::Variant(n, p) => {
                out.push_str("variant(");
                hex(n.as_bytes(), out);
                if let Some(v) = p {
                    out.push(',');
                    v.encode_into(out);
                }
                out.push(')');
            }
            ScriptValue::Enum(n) => {
                out.push_str("enum(");
                hex(n.as_bytes(), out);
                out.push(')');
            }
            ScriptValue::Option(None) => out.push_str("none()"),
            ScriptValue::Option(Some(v)) => payload(out, "some", &Some(v.clone())),
            ScriptValue::Result(Ok(p)) => payload(out, "ok", p),
            ScriptValue::Result(Err(p)) => payload(out, "err", p),
            ScriptValue::Flags(ns) => {
                out.push_str("flags(");
                for (i, n) in ns.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    hex(n.as_bytes(), out);
                }
                out.push(')');
            }
        }
    }

    /// Reads a value in the batch notation (all of `s`).
    pub fn decode(s: &str) -> Result<ScriptValue, String> {
        let mut p = Parser { s, at: 0 };
        let v = p.value()?;
        if p.at != s.len() {
            return Err(format!("trailing `{}` after a value", &s[p.at..]));
        }
        Ok(v)
    }

    /// The value as type `t`.
    pub fn to_value(&self, t: &Type) -> Result<Value, String> {
        let payload = |p: &Option<Box<ScriptValue>>,
                       t: Option<&Type>|
         -> Result<Option<Box<Value>>, String> {
            match (p, t) {
                (None, _) => Ok(None),
                (Some(v), Some(t)) => Ok(Some(Box::new(v.to_value(t)?))),
                (Some(_), None) => Err("a payload for a case without one".into()),
            }
        };
        Ok(match (self, t) {
            (ScriptValue::Bool(b), Type::Bool) => Value::Bool(*b),
            (ScriptValue::U8(x), Type::U8) => Value::U8(*x),
            (ScriptValue::S8(x), Type::S8) => Value::S8(*x),
            (ScriptValue::U16(x), Type::U16) => Value::U16(*x),
            (ScriptValue::S16(x), Type::S16) => Value::S16(*x),
            (ScriptValue::U32(x), Type::U32) => Value::U32(*x),
            (ScriptValue::S32(x), Type::S32) => Value::S32(*x),
            (ScriptValue::U64(x), Type::U64) => Value::U64(*x),
            (ScriptValue::S64(x), Type::S64) => Value::S64(*x),
            (ScriptValue::F32(b), Type::F32) => Value::F32(f32::from_bits(*b)),
            (ScriptValue::F64(b), Type::F64) => Value::F64(f64::from_bits(*b)),
            (ScriptValue::Char(c), Type::Char) => Value::Char(*c),
            (ScriptValue::String(s), Type::String) => Value::String(s.clone()),
            (ScriptValue::List(vs), Type::List(e) | Type::FixedList(e, _)) => {
                Value::List(vs.iter().map(|v| v.to_value(e)).collect::<Result<_, _>>()?)
            }
            (ScriptValue::Map(kvs), Type::List(e)) => match &**e {
                Type::Tuple(kv) if kv.len() == 2 => Value::List(
                    kvs.iter()
                        .map(|(k, v)| {
                            Ok(Value::Tuple(vec![k.to_value(&kv[0])?, v.to_value(&kv[1])?]))
                        })
                        .collect::<Result<_, String>>()?,
                ),
                _ => return Err("a map for a non-map list".into()),
            },
            (ScriptValue::Record(fs), Type::Record(tf)) => {
                let mut vs = Vec::new();
                for (name, ft) in tf {
                    let (_, v) = fs
                        .iter()
                        .find(|(n, _)| n == name)
                        .ok_or_else(|| format!("missing field {name}"))?;
                    vs.push(v.to_value(ft)?);
                }
                Value::Record(vs)
            }
            (ScriptValue::Tuple(vs), Type::Tuple(ts)) if vs.len() == ts.len() => Value::Tuple(
                vs.iter()
                    .zip(ts)
                    .map(|(v, t)| v.to_value(t))
                    .collect::<Result<_, _>>()?,
            ),
            (ScriptValue::Variant(name, p), Type::Variant(cases)) => {
                let names: Vec<&str> = cases.iter().map(|(n, _)| n.as_str()).collect();
                let i = index_of(&names, name)?;
                Value::Variant(i, payload(p, cases[i as usize].1.as_ref())?)
            }
            (ScriptValue::Enum(name), Type::Enum(names)) => {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                Value::Enum(index_of(&names, name)?)
            }
            (ScriptValue::Option(p), Type::Option(t)) => Value::Option(payload(p, Some(t))?),
            (ScriptValue::Result(r), Type::Result { ok, err }) => Value::Result(match r {
                Ok(p) => Ok(payload(p, ok.as_deref())?),
                Err(p) => Err(payload(p, err.as_deref())?),
            }),
            (ScriptValue::Flags(set), Type::Flags(names)) => {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                let mut bits = 0u32;
                for f in set {
                    bits |= 1 << index_of(&names, f)?;
                }
                Value::Flags(bits)
            }
            _ => return Err(format!("the script's value {self:?} is not a {t}")),
        })
    }

    /// Whether `got`, of type `t`, is the value the script expects (NaNs
    /// match NaNs).
    pub fn matches(&self, got: &Value, t: &Type) -> bool {
        match (self, got) {
            (ScriptValue::F32(w), Value::F32(g)) => {
                let w = f32::from_bits(*w);
                (w.is_nan() && g.is_nan()) || w.to_bits() == g.to_bits()
            }
            (ScriptValue::F64(w), Value::F64(g)) => {
                let w = f64::from_bits(*w);
                (w.is_nan() && g.is_nan()) || w.to_bits() == g.to_bits()
            }
            (ScriptValue::List(ws), Value::Bytes(b)) => {
                ws.len() == b.len()
                    && ws
                        .iter()
                        .zip(b)
                        .all(|(w, x)| matches!(w, ScriptValue::U8(y) if y == x))
            }
            (ScriptValue::List(ws), Value::List(gs)) => match t {
                Type::List(e) | Type::FixedList(e, _) => {
                    ws.len() == gs.len() && ws.iter().zip(gs).all(|(w, g)| w.matches(g, e))
                }
                _ => false,
            },
            (ScriptValue::Tuple(ws), Value::Tuple(gs)) => match t {
                Type::Tuple(ts) => {
                    ws.len() == gs.len()
                        && ws.iter().zip(gs).zip(ts).all(|((w, g), t)| w.matches(g, t))
                }
                _ => false,
            },
            (ScriptValue::Record(ws), Value::Record(gs)) => match t {
                Type::Record(fs) => {
                    ws.len() == fs.len()
                        && fs.iter().zip(gs).all(|((n, ft), g)| {
                            ws.iter().any(|(wn, w)| wn == n && w.matches(g, ft))
                        })
                }
                _ => false,
            },
            (ScriptValue::Option(w), Value::Option(g)) => match (w, g, t) {
                (None, None, _) => true,
                (Some(w), Some(g), Type::Option(e)) => w.matches(g, e),
                _ => false,
            },
            (ScriptValue::Result(w), Value::Result(g)) => match (w, g, t) {
                (Ok(w), Ok(g), Type::Result { ok, .. }) => payload_matches(w, g, ok.as_deref()),
                (Err(w), Err(g), Type::Result { err, .. }) => payload_matches(w, g, err.as_deref()),
                _ => false,
            },
            (ScriptValue::Variant(name, w), Value::Variant(i, g)) => match t {
                Type::Variant(cases) => cases
                    .get(*i as usize)
                    .is_some_and(|(n, ct)| n == name && payload_matches(w, g, ct.as_ref())),
                _ => false,
            },
            _ => self.to_value(t).is_ok_and(|w| &w == got),
        }
    }
}

fn payload_matches(w: &Option<Box<ScriptValue>>, g: &Option<Box<Value>>, t: Option<&Type>) -> bool {
    match (w, g, t) {
        (None, None, _) => true,
        (Some(w), Some(g), Some(t)) => w.matches(g, t),
        _ => false,
    }
}

struct Parser<'a> {
    s: &'a str,
    at: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.s[self.at..]
    }

    /// A run of characters other than `( ) , =`.
    fn word(&mut self) -> &str {
        let start = self.at;
        let end = self
            .rest()
            .find(['(', ')', ',', '='])
            .map_or(self.s.len(), |i| start + i);
        self.at = end;
        &self.s[start..end]
    }

    fn eat(&mut self, c: char) -> Result<(), String> {
        if self.rest().starts_with(c) {
            self.at += 1;
            Ok(())
        } else {
            Err(format!("expected `{c}` at `{}`", self.rest()))
        }
    }

    fn peek(&self, c: char) -> bool {
        self.rest().starts_with(c)
    }

    /// Values separated by commas up to `)` (consumed).
    fn values(&mut self) -> Result<Vec<ScriptValue>, String> {
        let mut vs = Vec::new();
        while !self.peek(')') {
            if !vs.is_empty() {
                self.eat(',')?;
            }
            vs.push(self.value()?);
        }
        self.eat(')')?;
        Ok(vs)
    }

    fn names(&mut self) -> Result<Vec<String>, String> {
        let mut ns = Vec::new();
        while !self.peek(')') {
            if !ns.is_empty() {
                self.eat(',')?;
            }
            let w = self.word().to_string();
            ns.push(unhex(&w)?);
        }
        self.eat(')')?;
        Ok(ns)
    }

    fn optional(&mut self) -> Result<Option<Box<ScriptValue>>, String> {
        let mut vs = self.values()?;
        match vs.len() {
            0 => Ok(None),
            1 => Ok(vs.pop().map(Box::new)),
            _ => Err("more than one payload".into()),
        }
    }

    fn value(&mut self) -> Result<ScriptValue, String> {
        let word = self.word().to_string();
        if let Some((tag, v)) = word.split_once(':') {
            let n =
                |v: &str| u64::from_str_radix(v, 16).map_err(|_| format!("bad number `{word}`"));
            return Ok(match tag {
                "bool" => ScriptValue::Bool(v == "1"),
                "u8" => ScriptValue::U8(n(v)? as u8),
                "s8" => ScriptValue::S8(n(v)? as u8 as i8),
                "u16" => ScriptValue::U16(n(v)? as u16),
                "s16" => ScriptValue::S16(n(v)? as u16 as i16),
                "u32" => ScriptValue::U32(n(v)? as u32),
                "s32" => ScriptValue::S32(n(v)? as u32 as i32),
                "u64" => ScriptValue::U64(n(v)?),
                "s64" => ScriptValue::S64(n(v)? as i64),
                "f32" => ScriptValue::F32(n(v)? as u32),
                "f64" => ScriptValue::F64(n(v)?),
                "char" => ScriptValue::Char(
                    char::from_u32(n(v)? as u32).ok_or_else(|| format!("bad char `{word}`"))?,
                ),
                "str" => ScriptValue::String(unhex(v)?),
                _ => return Err(format!("unknown value `{word}`")),
            });
        }
        self.eat('(')?;
        Ok(match word.as_str() {
            "list" => ScriptValue::List(self.values()?),
            "tuple" => ScriptValue::Tuple(self.values()?),
            "map" => {
                let mut kvs = Vec::new();
                while !self.peek(')') {
                    if !kvs.is_empty() {
                        self.eat(',')?;
                    }
                    let k = self.value()?;
                    self.eat('=')?;
                    kvs.push((k, self.value()?));
                }
                self.eat(')')?;
                ScriptValue::Map(kvs)
            }
            "record" => {
                let mut fs = Vec::new();
                while !self.peek(')') {
                    if !fs.is_empty() {
                        self.eat(',')?;
                    }
                    let name = unhex(self.word())?;
                    self.eat('=')?;
                    fs.push((name, self.value()?));
                }
                self.eat(')')?;
                ScriptValue::Record(fs)
            }
            "variant" => {
                let name = unhex(self.word())?;
                let p = if self.peek(',') {
                    self.eat(',')?;
                    Some(Box::new(self.value()?))
                } else {
                    None
                };
                self.eat(')')?;
                ScriptValue::Variant(name, p)
            }
            "enum" => {
                let name = unhex(self.word())?;
                self.eat(')')?;
                ScriptValue::Enum(name)
            }
            "none" => {
                self.eat(')')?;
                ScriptValue::Option(None)
            }
            "some" => ScriptValue::Option(Some(self.optional()?.ok_or("some() without a value")?)),
            "ok" => ScriptValue::Result(Ok(self.optional()?)),
            "err" => ScriptValue::Result(Err(self.optional()?)),
            "flags" => ScriptValue::Flags(self.names()?),
            _ => return Err(format!("unknown value `{word}(`")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_survive_the_notation() {
        let v = ScriptValue::Record(vec![
            ("a b".into(), ScriptValue::String("héllo, (x)=y".into())),
            (
                "".into(),
                ScriptValue::List(vec![
                    ScriptValue::S8(-1),
                    ScriptValue::F64(0x7ff8_0000_0000_0001),
                ]),
            ),
            (
                "m".into(),
                ScriptValue::Map(vec![(ScriptValue::U32(1), ScriptValue::Option(None))]),
            ),
            (
                "v".into(),
                ScriptValue::Variant("c".into(), Some(Box::new(ScriptValue::Result(Err(None))))),
            ),
            ("f".into(), ScriptValue::Flags(vec!["x".into(), "y".into()])),
            (
                "e".into(),
                ScriptValue::Tuple(vec![ScriptValue::Enum("".into()), ScriptValue::Char('∞')]),
            ),
            (
                "o".into(),
                ScriptValue::Option(Some(Box::new(ScriptValue::Result(Ok(Some(Box::new(
                    ScriptValue::Bool(true),
                ))))))),
            ),
        ]);
        let text = v.encode();
        assert!(!text.contains(' '), "{text}");
        assert_eq!(ScriptValue::decode(&text), Ok(v));
    }

    #[test]
    fn malformed_notation_is_an_error() {
        for bad in [
            "",
            "u8:zz",
            "list(u8:1",
            "record(6=u8:1)",
            "some()",
            "what(1)",
            "u8:1)",
        ] {
            assert!(ScriptValue::decode(bad).is_err(), "{bad}");
        }
    }
}
