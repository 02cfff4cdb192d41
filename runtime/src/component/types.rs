//! Component value types, resolved: what the Canonical ABI lifts and
//! lowers. A component's type definitions refer to each other by index;
//! instantiation resolves them into these trees, with each resource type
//! bound to the [`ResourceType`] it stands for in that instance.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::any::Any;
use core::fmt;
use core::sync::atomic::{AtomicU32, Ordering};

use super::handles::InstanceState;
use crate::vm::store::Func;

/// A component-level value type.
#[derive(Clone, Debug, PartialEq)]
pub enum Type {
    /// `bool`
    Bool,
    /// `s8`
    S8,
    /// `u8`
    U8,
    /// `s16`
    S16,
    /// `u16`
    U16,
    /// `s32`
    S32,
    /// `u32`
    U32,
    /// `s64`
    S64,
    /// `u64`
    U64,
    /// `f32`
    F32,
    /// `f64`
    F64,
    /// `char`: a Unicode scalar value
    Char,
    /// `string`
    String,
    /// `list<T>`
    List(Box<Type>),
    /// `list<T, N>`: exactly N elements
    FixedList(Box<Type>, u32),
    /// `record { … }`: named fields in order
    Record(Vec<(String, Type)>),
    /// `tuple<…>`
    Tuple(Vec<Type>),
    /// `variant { … }`: named cases, each with an optional payload
    Variant(Vec<(String, Option<Type>)>),
    /// `enum { … }`
    Enum(Vec<String>),
    /// `option<T>`
    Option(Box<Type>),
    /// `result<T, E>`, either side optional
    Result {
        /// the `ok` payload
        ok: Option<Box<Type>>,
        /// the `error` payload
        err: Option<Box<Type>>,
    },
    /// `flags { … }` (at most 32)
    Flags(Vec<String>),
    /// `own<R>`
    Own(ResourceType),
    /// `borrow<R>`
    Borrow(ResourceType),
    /// `stream<T>` (component-model async: values of it do not cross yet)
    Stream(Option<Box<Type>>),
    /// `future<T>` (component-model async: values of it do not cross yet)
    Future(Option<Box<Type>>),
    /// `error-context` (component-model async: values of it do not cross yet)
    ErrorContext,
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, ts: &mut dyn Iterator<Item = &Type>| {
            for (i, t) in ts.enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{t}")?;
            }
            Ok(())
        };
        match self {
            Type::Bool => f.write_str("bool"),
            Type::S8 => f.write_str("s8"),
            Type::U8 => f.write_str("u8"),
            Type::S16 => f.write_str("s16"),
            Type::U16 => f.write_str("u16"),
            Type::S32 => f.write_str("s32"),
            Type::U32 => f.write_str("u32"),
            Type::S64 => f.write_str("s64"),
            Type::U64 => f.write_str("u64"),
            Type::F32 => f.write_str("f32"),
            Type::F64 => f.write_str("f64"),
            Type::Char => f.write_str("char"),
            Type::String => f.write_str("string"),
            Type::List(t) => write!(f, "list<{t}>"),
            Type::FixedList(t, n) => write!(f, "list<{t}, {n}>"),
            Type::Record(fields) => {
                f.write_str("record { ")?;
                for (i, (n, t)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{n}: {t}")?;
                }
                f.write_str(" }")
            }
            Type::Tuple(ts) => {
                f.write_str("tuple<")?;
                list(f, &mut ts.iter())?;
                f.write_str(">")
            }
            Type::Variant(cases) => {
                f.write_str("variant { ")?;
                for (i, (n, t)) in cases.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    match t {
                        Some(t) => write!(f, "{n}({t})")?,
                        None => f.write_str(n)?,
                    }
                }
                f.write_str(" }")
            }
            Type::Enum(names) => write!(f, "enum {{ {} }}", names.join(", ")),
            Type::Option(t) => write!(f, "option<{t}>"),
            Type::Result { ok, err } => match (ok, err) {
                (None, None) => f.write_str("result"),
                (Some(o), None) => write!(f, "result<{o}>"),
                (None, Some(e)) => write!(f, "result<_, {e}>"),
                (Some(o), Some(e)) => write!(f, "result<{o}, {e}>"),
            },
            Type::Flags(names) => write!(f, "flags {{ {} }}", names.join(", ")),
            Type::Own(r) => write!(f, "own<{}>", r.name()),
            Type::Borrow(r) => write!(f, "borrow<{}>", r.name()),
            Type::Stream(Some(t)) => write!(f, "stream<{t}>"),
            Type::Stream(None) => f.write_str("stream"),
            Type::Future(Some(t)) => write!(f, "future<{t}>"),
            Type::Future(None) => f.write_str("future"),
            Type::ErrorContext => f.write_str("error-context"),
        }
    }
}

/// A component function's type: named parameters and at most one result.
#[derive(Clone, Debug, PartialEq)]
pub struct FuncType {
    /// the parameters, in order
    pub params: Vec<(String, Type)>,
    /// the result, if any
    pub result: Option<Type>,
}

impl FuncType {
    /// The parameter types, in order.
    pub fn param_types(&self) -> impl Iterator<Item = &Type> {
        self.params.iter().map(|(_, t)| t)
    }

    /// The result as a list of zero or one types.
    pub fn result_types(&self) -> &[Type] {
        self.result.as_slice()
    }
}

impl fmt::Display for FuncType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("func(")?;
        for (i, (n, t)) in self.params.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{n}: {t}")?;
        }
        f.write_str(")")?;
        if let Some(r) = &self.result {
            write!(f, " -> {r}")?;
        }
        Ok(())
    }
}

/// A host destructor for resources of a host-defined type: a
/// `HostDestructor<T>` (see [`super::linker`]) behind `Any`, so resource
/// types need not be generic over the store's data.
pub(crate) type AnyDestructor = Arc<dyn Any + Send + Sync>;

/// What runs when an owned handle of a resource type is dropped.
#[derive(Clone)]
pub(crate) enum Destructor {
    /// nothing
    None,
    /// a core function of the defining instance, given the representation
    Core(Func),
    /// the host's
    Host(AnyDestructor),
}

/// Where a resource type is implemented.
#[derive(Clone)]
pub(crate) enum Implementer {
    /// by the embedder (a WASI resource, say)
    Host,
    /// by a component instance, which defined it with `(type (resource …))`
    Instance(Weak<InstanceState>),
}

pub(crate) struct ResourceTypeData {
    id: u32,
    name: String,
    pub(crate) implementer: Implementer,
    pub(crate) destructor: Destructor,
}

/// A resource type: generative, so two definitions (or two
/// instantiations of one definition) are two types. Compared by identity.
#[derive(Clone)]
pub struct ResourceType(pub(crate) Arc<ResourceTypeData>);

static NEXT_RESOURCE_TYPE: AtomicU32 = AtomicU32::new(1);

impl ResourceType {
    pub(crate) fn new(name: String, implementer: Implementer, destructor: Destructor) -> Self {
        ResourceType(Arc::new(ResourceTypeData {
            id: NEXT_RESOURCE_TYPE.fetch_add(1, Ordering::Relaxed),
            name,
            implementer,
            destructor,
        }))
    }

    /// The name it was defined or imported under, for messages.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// A number unique to this type in this process, for messages.
    pub fn id(&self) -> u32 {
        self.0.id
    }

    /// Whether the host implements it.
    pub fn is_host(&self) -> bool {
        matches!(self.0.implementer, Implementer::Host)
    }
}

impl PartialEq for ResourceType {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "resource {}#{}", self.0.name, self.0.id)
    }
}
