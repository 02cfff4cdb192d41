//! Component values: what a component function takes and returns, after
//! lifting out of (or before lowering into) a core instance's memory.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::types::{ResourceType, Type};

/// One resource: its type and its representation (the `i32` the
/// implementer chose; for host resources, the host's own index).
#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    /// the resource's type
    pub ty: ResourceType,
    /// the implementer's representation
    pub rep: u32,
}

/// A component value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `bool`
    Bool(bool),
    /// `s8`
    S8(i8),
    /// `u8`
    U8(u8),
    /// `s16`
    S16(i16),
    /// `u16`
    U16(u16),
    /// `s32`
    S32(i32),
    /// `u32`
    U32(u32),
    /// `s64`
    S64(i64),
    /// `u64`
    U64(u64),
    /// `f32`
    F32(f32),
    /// `f64`
    F64(f64),
    /// `char`
    Char(char),
    /// `string`
    String(String),
    /// `list<u8>`, kept as bytes (lifting one gives this; lowering takes
    /// this or a [`Value::List`] of [`Value::U8`])
    Bytes(Vec<u8>),
    /// `list<T>` and `list<T, N>`
    List(Vec<Value>),
    /// `record`: the fields' values in the type's order
    Record(Vec<Value>),
    /// `tuple`
    Tuple(Vec<Value>),
    /// `variant`: the case's index and its payload
    Variant(u32, Option<Box<Value>>),
    /// `enum`: the case's index
    Enum(u32),
    /// `option`
    Option(Option<Box<Value>>),
    /// `result`
    Result(Result<Option<Box<Value>>, Option<Box<Value>>>),
    /// `flags`: bit i set when the type's label i is
    Flags(u32),
    /// `own<R>`: the receiver now owns it
    Own(Resource),
    /// `borrow<R>`: lent for the duration of one call
    Borrow(Resource),
}

impl Value {
    /// A short name of the value's kind, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Bool(_) => "bool",
            Value::S8(_) => "s8",
            Value::U8(_) => "u8",
            Value::S16(_) => "s16",
            Value::U16(_) => "u16",
            Value::S32(_) => "s32",
            Value::U32(_) => "u32",
            Value::S64(_) => "s64",
            Value::U64(_) => "u64",
            Value::F32(_) => "f32",
            Value::F64(_) => "f64",
            Value::Char(_) => "char",
            Value::String(_) => "string",
            Value::Bytes(_) => "list<u8>",
            Value::List(_) => "list",
            Value::Record(_) => "record",
            Value::Tuple(_) => "tuple",
            Value::Variant(..) => "variant",
            Value::Enum(_) => "enum",
            Value::Option(_) => "option",
            Value::Result(_) => "result",
            Value::Flags(_) => "flags",
            Value::Own(_) => "own",
            Value::Borrow(_) => "borrow",
        }
    }

    /// `ok(v)` of a `result`.
    pub fn ok(v: Option<Value>) -> Value {
        Value::Result(Ok(v.map(Box::new)))
    }

    /// `error(v)` of a `result`.
    pub fn err(v: Option<Value>) -> Value {
        Value::Result(Err(v.map(Box::new)))
    }

    /// `some(v)` of an `option`.
    pub fn some(v: Value) -> Value {
        Value::Option(Some(Box::new(v)))
    }

    /// Whether this value has type `ty` (deeply; resources by identity).
    pub fn has_type(&self, ty: &Type) -> bool {
        match (self, ty) {
            (Value::Bool(_), Type::Bool)
            | (Value::S8(_), Type::S8)
            | (Value::U8(_), Type::U8)
            | (Value::S16(_), Type::S16)
            | (Value::U16(_), Type::U16)
            | (Value::S32(_), Type::S32)
            | (Value::U32(_), Type::U32)
            | (Value::S64(_), Type::S64)
            | (Value::U64(_), Type::U64)
            | (Value::F32(_), Type::F32)
            | (Value::F64(_), Type::F64)
            | (Value::Char(_), Type::Char)
            | (Value::String(_), Type::String) => true,
            (Value::Bytes(_), Type::List(t)) => **t == Type::U8,
            (Value::Bytes(b), Type::FixedList(t, n)) => **t == Type::U8 && b.len() == *n as usize,
            (Value::List(vs), Type::List(t)) => vs.iter().all(|v| v.has_type(t)),
            (Value::List(vs), Type::FixedList(t, n)) => {
                vs.len() == *n as usize && vs.iter().all(|v| v.has_type(t))
            }
            (Value::Record(vs), Type::Record(fs)) => {
                vs.len() == fs.len() && vs.iter().zip(fs).all(|(v, (_, t))| v.has_type(t))
            }
            (Value::Tuple(vs), Type::Tuple(ts)) => {
                vs.len() == ts.len() && vs.iter().zip(ts).all(|(v, t)| v.has_type(t))
            }
            (Value::Variant(i, p), Type::Variant(cases)) => match cases.get(*i as usize) {
                Some((_, t)) => payload_has_type(p, t.as_ref()),
                None => false,
            },
            (Value::Enum(i), Type::Enum(names)) => (*i as usize) < names.len(),
            (Value::Option(p), Type::Option(t)) => match p {
                None => true,
                Some(v) => v.has_type(t),
            },
            (Value::Result(r), Type::Result { ok, err }) => match r {
                Ok(p) => payload_has_type(p, ok.as_deref()),
                Err(p) => payload_has_type(p, err.as_deref()),
            },
            (Value::Flags(bits), Type::Flags(names)) => {
                names.len() >= 32 || *bits >> names.len() == 0
            }
            (Value::Own(r), Type::Own(t)) | (Value::Borrow(r), Type::Borrow(t)) => r.ty == *t,
            _ => false,
        }
    }
}

fn payload_has_type(p: &Option<Box<Value>>, t: Option<&Type>) -> bool {
    match (p, t) {
        (None, None) => true,
        (Some(v), Some(t)) => v.has_type(t),
        _ => false,
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seq = |f: &mut fmt::Formatter<'_>, open: &str, vs: &[Value], close: &str| {
            f.write_str(open)?;
            for (i, v) in vs.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{v}")?;
            }
            f.write_str(close)
        };
        let payload = |f: &mut fmt::Formatter<'_>, p: &Option<Box<Value>>| match p {
            Some(v) => write!(f, "({v})"),
            None => Ok(()),
        };
        match self {
            Value::Bool(v) => write!(f, "{v}"),
            Value::S8(v) => write!(f, "{v}"),
            Value::U8(v) => write!(f, "{v}"),
            Value::S16(v) => write!(f, "{v}"),
            Value::U16(v) => write!(f, "{v}"),
            Value::S32(v) => write!(f, "{v}"),
            Value::U32(v) => write!(f, "{v}"),
            Value::S64(v) => write!(f, "{v}"),
            Value::U64(v) => write!(f, "{v}"),
            Value::F32(v) => write!(f, "{v}"),
            Value::F64(v) => write!(f, "{v}"),
            Value::Char(v) => write!(f, "{v:?}"),
            Value::String(v) => write!(f, "{v:?}"),
            Value::Bytes(b) => write!(f, "{b:?}"),
            Value::List(vs) => seq(f, "[", vs, "]"),
            Value::Record(vs) => seq(f, "{", vs, "}"),
            Value::Tuple(vs) => seq(f, "(", vs, ")"),
            Value::Variant(i, p) => {
                write!(f, "case{i}")?;
                payload(f, p)
            }
            Value::Enum(i) => write!(f, "case{i}"),
            Value::Option(None) => f.write_str("none"),
            Value::Option(Some(v)) => write!(f, "some({v})"),
            Value::Result(Ok(p)) => {
                f.write_str("ok")?;
                payload(f, p)
            }
            Value::Result(Err(p)) => {
                f.write_str("error")?;
                payload(f, p)
            }
            Value::Flags(bits) => write!(f, "flags({bits:#x})"),
            Value::Own(r) => write!(f, "own({:?} rep {})", r.ty, r.rep),
            Value::Borrow(r) => write!(f, "borrow({:?} rep {})", r.ty, r.rep),
        }
    }
}
