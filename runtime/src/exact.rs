//! Value and function types with everything linking and `call_indirect`
//! compare: nullability and the concrete function type of references,
//! which [`RefType`] (how a reference is represented) leaves out.
//!
//! Function types are compared structurally, as the spec's type
//! canonicalisation does for types that are each their own recursion group
//! (the only kind Basalt accepts): a reference to another type embeds that
//! type, a reference of a type to itself is [`ExactHeap::SelfType`].

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
    /// a function of this type
    Type(Arc<ExactFuncType>),
    /// a function of the type being defined (a type that refers to itself)
    SelfType,
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

impl ExactType {
    /// The exact type a host-side value type stands for: references are
    /// the nullable abstract ones (`funcref`, `externref`).
    pub fn of(ty: ValType) -> ExactType {
        match ty {
            ValType::Ref(RefType::FuncRef) => ExactType::Ref {
                nullable: true,
                heap: ExactHeap::Func,
            },
            ValType::Ref(RefType::ExternRef) => ExactType::Ref {
                nullable: true,
                heap: ExactHeap::Extern,
            },
            ValType::Ref(RefType::ExnRef) => ExactType::Ref {
                nullable: true,
                heap: ExactHeap::Exn,
            },
            plain => ExactType::Plain(plain),
        }
    }

    /// Whether a value of type `self` is always a value of type `want`
    /// (subtyping, `self <: want`).
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
    /// Heap subtyping: `nofunc` <: function types <: `func`, `noextern` <:
    /// `extern`, `noexn` <: `exn`; function types only match themselves.
    fn matches(&self, want: &ExactHeap) -> bool {
        use ExactHeap::*;
        match (self, want) {
            (a, b) if a == b => true,
            (NoFunc, Func | Type(_) | SelfType) => true,
            (Type(_) | SelfType, Func) => true,
            (NoExtern, Extern) => true,
            (NoExn, Exn) => true,
            _ => false,
        }
    }
}

impl ExactFuncType {
    /// The exact type of a host-side function type (see [`ExactType::of`]).
    pub fn of(ty: &FuncType) -> ExactFuncType {
        let each = |list: &[ValType]| list.iter().map(|t| ExactType::of(*t)).collect::<Vec<_>>();
        ExactFuncType {
            params: each(&ty.params).into(),
            results: each(&ty.results).into(),
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
            ExactHeap::Type(t) => write!(f, "{t}"),
            ExactHeap::SelfType => f.write_str("(rec 0)"),
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
