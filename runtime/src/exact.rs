//! Value and function types with everything linking and `call_indirect`
//! compare: nullability and the concrete type of references, which
//! [`RefType`] (how a reference is represented) leaves out, and the
//! recursion groups and declared supertypes of defined types.
//!
//! Defined types are canonical as the spec's iso-recursive type
//! equivalence says: a [`CanonType`] is its whole recursion group plus its
//! index in it, and two are the same type when their groups are
//! structurally equal and the indices agree. Inside a group, a reference to
//! a member of the same group is [`ExactHeap::Rec`] (relative to the group);
//! a reference to an earlier type embeds that type's [`CanonType`]. Derived
//! equality and hashing are therefore type equivalence, across modules.
//!
//! Subtyping follows declared supertypes ([`CanonType::is_subtype_of`]).
//! A defined type is a function, struct or array type ([`Composite`]).

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use crate::types::{FuncType, RefType, ValType};

/// What a reference may point to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ExactHeap {
    /// any function (`func`)
    Func,
    /// no function (`nofunc`, only null)
    NoFunc,
    /// any external reference (`extern`)
    Extern,
    /// no external reference (`noextern`, only null)
    NoExtern,
    /// any exception (`exn`)
    Exn,
    /// no exception (`noexn`, only null)
    NoExn,
    /// any value of GC's internal hierarchy (`any`)
    Any,
    /// values comparable with `ref.eq` (`eq`: i31 and GC objects)
    Eq,
    /// unboxed 31-bit integers (`i31`)
    I31,
    /// any GC struct (`struct`)
    Struct,
    /// any GC array (`array`)
    Array,
    /// nothing of the `any` hierarchy (`none`, only null)
    None,
    /// a function of this defined type (or of a subtype of it)
    Type(CanonType),
    /// the `i`-th type of the recursion group being defined; only inside a
    /// [`RecGroup`]
    Rec(u32),
}

/// A value type, references with their nullability and heap type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ExactType {
    /// a number or vector type (never [`ValType::Ref`])
    Plain(ValType),
    /// a reference
    Ref {
        /// whether null is a value of the type
        nullable: bool,
        /// what it points to
        heap: ExactHeap,
    },
}

/// A function type whose references are exact.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ExactFuncType {
    /// parameter types
    pub params: Box<[ExactType]>,
    /// result types
    pub results: Box<[ExactType]>,
}

/// How a struct field or array element is stored.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StorageType {
    /// a packed 8-bit integer (read as i32)
    I8,
    /// a packed 16-bit integer (read as i32)
    I16,
    /// a value of this type
    Val(ExactType),
}

/// A struct field or the element of an array type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FieldType {
    /// how it is stored
    pub storage: StorageType,
    /// whether `struct.set` / `array.set` may write it
    pub mutable: bool,
}

/// What a defined type describes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Composite {
    /// functions
    Func(ExactFuncType),
    /// GC structs with these fields
    Struct(Box<[FieldType]>),
    /// GC arrays of this element
    Array(FieldType),
}

/// One type of a recursion group, as declared.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SubType {
    /// whether no type may declare it as its supertype
    pub is_final: bool,
    /// the declared supertype ([`ExactHeap::Rec`] or [`ExactHeap::Type`])
    pub supertype: Option<ExactHeap>,
    /// the type itself
    pub composite: Composite,
}

/// A recursion group: the unit of type equivalence.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RecGroup {
    /// its types, in order
    pub types: Box<[SubType]>,
}

/// A defined type, canonically: its recursion group and its index there.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CanonType {
    /// the recursion group
    pub group: Arc<RecGroup>,
    /// which of its types
    pub index: u32,
}

impl CanonType {
    /// The type of a host-side function type: alone in its group, final,
    /// its references the nullable abstract ones (see [`ExactType::of`]).
    pub fn of(ty: &FuncType) -> CanonType {
        let each = |list: &[ValType]| list.iter().map(|t| ExactType::of(*t)).collect::<Vec<_>>();
        let func = ExactFuncType {
            params: each(&ty.params).into(),
            results: each(&ty.results).into(),
        };
        CanonType {
            group: Arc::new(RecGroup {
                types: alloc::vec![SubType {
                    is_final: true,
                    supertype: None,
                    composite: Composite::Func(func),
                }]
                .into(),
            }),
            index: 0,
        }
    }

    fn sub(&self) -> &SubType {
        &self.group.types[self.index as usize]
    }

    /// What the type describes (references to its group are
    /// [`ExactHeap::Rec`]).
    pub fn composite(&self) -> &Composite {
        &self.sub().composite
    }

    /// Whether it is a function type.
    pub fn is_func(&self) -> bool {
        matches!(self.composite(), Composite::Func(_))
    }

    /// Whether no type may declare it as its supertype: then only the type
    /// itself is a subtype of it.
    pub fn is_final(&self) -> bool {
        self.sub().is_final
    }

    /// The declared supertype.
    pub fn supertype(&self) -> Option<CanonType> {
        match self.sub().supertype.as_ref()? {
            ExactHeap::Rec(i) => Some(CanonType {
                group: self.group.clone(),
                index: *i,
            }),
            ExactHeap::Type(t) => Some(t.clone()),
            _ => None,
        }
    }

    /// Whether `self` is `other` or declares it as a (transitive) supertype.
    pub fn is_subtype_of(&self, other: &CanonType) -> bool {
        let mut t = Some(self.clone());
        while let Some(ty) = t {
            if ty == *other {
                return true;
            }
            t = ty.supertype();
        }
        false
    }
}

impl ExactType {
    /// The exact type a host-side value type stands for: references are
    /// the nullable abstract ones (`funcref`, `externref`, `exnref`).
    pub fn of(ty: ValType) -> ExactType {
        let heap = match ty {
            ValType::Ref(RefType::FuncRef) => ExactHeap::Func,
            ValType::Ref(RefType::ExternRef) => ExactHeap::Extern,
            ValType::Ref(RefType::ExnRef) => ExactHeap::Exn,
            ValType::Ref(RefType::AnyRef) => ExactHeap::Any,
            plain => return ExactType::Plain(plain),
        };
        ExactType::Ref {
            nullable: true,
            heap,
        }
    }

    /// Whether a value of type `self` is always a value of type `want`
    /// (subtyping, `self <: want`). Both are outside any recursion group.
    pub fn matches(&self, want: &ExactType) -> bool {
        match (self, want) {
            (ExactType::Plain(a), ExactType::Plain(b)) => a == b,
            (
                ExactType::Ref {
                    nullable: n1,
                    heap: h1,
                },
                ExactType::Ref {
                    nullable: n2,
                    heap: h2,
                },
            ) => (!n1 || *n2) && h1.matches(h2),
            _ => false,
        }
    }
}

impl ExactHeap {
    /// Heap subtyping: `nofunc` <: function types <: `func`; `none` <:
    /// struct types <: `struct`, array types <: `array`, `i31`, `struct`,
    /// `array` <: `eq` <: `any`; a defined type <: its declared supertypes;
    /// `noextern` <: `extern`, `noexn` <: `exn`.
    fn matches(&self, want: &ExactHeap) -> bool {
        use ExactHeap::*;
        match (self, want) {
            (Type(a), Type(b)) => a.is_subtype_of(b),
            (a, b) if a == b => true,
            (NoFunc, Type(t)) => t.is_func(),
            (None, Type(t)) => !t.is_func(),
            (NoFunc, Func) => true,
            (Type(t), Func) => t.is_func(),
            (Type(t), Eq | Any) => !t.is_func(),
            (Type(t), Struct) => matches!(t.composite(), Composite::Struct(_)),
            (Type(t), Array) => matches!(t.composite(), Composite::Array(_)),
            (NoExtern, Extern) => true,
            (NoExn, Exn) => true,
            (None, I31 | Struct | Array | Eq | Any) => true,
            (I31 | Struct | Array, Eq | Any) => true,
            (Eq, Any) => true,
            _ => false,
        }
    }
}

impl fmt::Display for ExactHeap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExactHeap::Func => f.write_str("func"),
            ExactHeap::NoFunc => f.write_str("nofunc"),
            ExactHeap::Extern => f.write_str("extern"),
            ExactHeap::NoExtern => f.write_str("noextern"),
            ExactHeap::Exn => f.write_str("exn"),
            ExactHeap::NoExn => f.write_str("noexn"),
            ExactHeap::Any => f.write_str("any"),
            ExactHeap::Eq => f.write_str("eq"),
            ExactHeap::I31 => f.write_str("i31"),
            ExactHeap::Struct => f.write_str("struct"),
            ExactHeap::Array => f.write_str("array"),
            ExactHeap::None => f.write_str("none"),
            ExactHeap::Type(t) => write!(f, "{t}"),
            ExactHeap::Rec(i) => write!(f, "(rec {i})"),
        }
    }
}

impl fmt::Display for ExactType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExactType::Plain(t) => write!(f, "{t}"),
            ExactType::Ref { nullable, heap } => {
                write!(f, "(ref {}{heap})", if *nullable { "null " } else { "" })
            }
        }
    }
}

impl fmt::Display for ExactFuncType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(func")?;
        for p in &self.params {
            write!(f, " (param {p})")?;
        }
        for r in &self.results {
            write!(f, " (result {r})")?;
        }
        f.write_str(")")
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mutable {
            f.write_str("(mut ")?;
        }
        match &self.storage {
            StorageType::I8 => f.write_str("i8")?,
            StorageType::I16 => f.write_str("i16")?,
            StorageType::Val(t) => write!(f, "{t}")?,
        }
        if self.mutable {
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl fmt::Display for Composite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Composite::Func(t) => write!(f, "{t}"),
            Composite::Struct(fields) => {
                f.write_str("(struct")?;
                for field in fields {
                    write!(f, " (field {field})")?;
                }
                f.write_str(")")
            }
            Composite::Array(elem) => write!(f, "(array {elem})"),
        }
    }
}

impl fmt::Display for CanonType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sub = self.sub();
        let plain = sub.is_final && sub.supertype.is_none();
        if self.group.types.len() > 1 {
            write!(f, "(rec {} of {}: ", self.index, self.group.types.len())?;
        }
        if !plain {
            f.write_str("(sub ")?;
            if sub.is_final {
                f.write_str("final ")?;
            }
            if let Some(s) = &sub.supertype {
                write!(f, "{s} ")?;
            }
        }
        write!(f, "{}", sub.composite)?;
        if !plain {
            f.write_str(")")?;
        }
        if self.group.types.len() > 1 {
            f.write_str(")")?;
        }
        Ok(())
    }
}
