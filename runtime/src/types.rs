//! WebAssembly types and values as the runtime's API shows them.

use alloc::boxed::Box;
use core::fmt;

/// How a reference is represented: every function reference (`funcref`,
/// `(ref null? func)`, `(ref null? nofunc)`, `(ref null? $t)` of a function
/// type `$t`) is a [`RefType::FuncRef`], every external one an
/// [`RefType::ExternRef`], every exception reference (`exnref`,
/// `(ref null? noexn)`) an [`RefType::ExnRef`], every reference of GC's
/// `any` hierarchy (`anyref`, `eqref`, `i31ref`, `structref`, `arrayref`,
/// `nullref`) an [`RefType::AnyRef`]. Nullability and concrete function types are
/// checked by validation inside a module and by linking across modules
/// ([`crate::exact`]); values the embedder passes in are checked only by
/// this representation, so calls through a reference still check the
/// callee's type at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RefType {
    /// `funcref`
    FuncRef,
    /// `externref`
    ExternRef,
    /// `exnref` (exception handling)
    ExnRef,
    /// `anyref` and its subtypes (GC)
    AnyRef,
}

/// A value type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValType {
    /// 32-bit integer
    I32,
    /// 64-bit integer
    I64,
    /// 32-bit IEEE float
    F32,
    /// 64-bit IEEE float
    F64,
    /// 128-bit SIMD vector
    V128,
    /// a reference
    Ref(RefType),
}

impl fmt::Display for ValType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValType::I32 => "i32",
            ValType::I64 => "i64",
            ValType::F32 => "f32",
            ValType::F64 => "f64",
            ValType::V128 => "v128",
            ValType::Ref(RefType::FuncRef) => "funcref",
            ValType::Ref(RefType::ExternRef) => "externref",
            ValType::Ref(RefType::ExnRef) => "exnref",
            ValType::Ref(RefType::AnyRef) => "anyref",
        })
    }
}

/// A function type: parameters and results.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FuncType {
    /// parameter types
    pub params: Box<[ValType]>,
    /// result types
    pub results: Box<[ValType]>,
}

impl FuncType {
    /// A function type from parameter and result lists.
    pub fn new(params: &[ValType], results: &[ValType]) -> Self {
        FuncType {
            params: params.into(),
            results: results.into(),
        }
    }
}

impl fmt::Display for FuncType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(func")?;
        if !self.params.is_empty() {
            f.write_str(" (param")?;
            for p in &*self.params {
                write!(f, " {p}")?;
            }
            f.write_str(")")?;
        }
        if !self.results.is_empty() {
            f.write_str(" (result")?;
            for r in &*self.results {
                write!(f, " {r}")?;
            }
            f.write_str(")")?;
        }
        f.write_str(")")
    }
}

/// Limits and shape of a linear memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryType {
    /// minimum size in pages
    pub minimum: u64,
    /// maximum size in pages
    pub maximum: Option<u64>,
    /// memory64
    pub memory64: bool,
    /// shared (threads)
    pub shared: bool,
    /// log2 of the page size (16 for 64 KiB pages)
    pub page_size_log2: u8,
}

/// Limits and element type of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableType {
    /// element type
    pub element: RefType,
    /// minimum size in elements
    pub minimum: u64,
    /// maximum size in elements
    pub maximum: Option<u64>,
    /// table64
    pub table64: bool,
}

/// Type and mutability of a global.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GlobalType {
    /// value type
    pub content: ValType,
    /// whether `global.set` is allowed
    pub mutable: bool,
}

/// A value crossing the host/wasm boundary.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Val {
    /// i32
    I32(i32),
    /// i64
    I64(i64),
    /// f32, as its bits (so NaN payloads survive)
    F32(u32),
    /// f64, as its bits
    F64(u64),
    /// v128
    V128(u128),
    /// a function reference: null, or an opaque non-null pointer owned by the store
    FuncRef(Option<FuncRefHandle>),
    /// an external reference: null, a host value, or an `anyref` made
    /// external (`extern.convert_any`)
    ExternRef(Option<AnyRef>),
    /// a reference of the `any` hierarchy: null, an `i31ref`, or a host
    /// value made internal (`any.convert_extern`)
    AnyRef(Option<AnyRef>),
    /// an exception reference: null, or an opaque non-null pointer to a
    /// caught exception owned by the store
    ExnRef(Option<ExnRefHandle>),
}

/// An opaque, non-null function reference (the address of the callee's
/// `VMFuncRef` inside its store).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FuncRefHandle(pub(crate) core::num::NonZeroUsize);

/// A non-null `externref` or `anyref`: the two share one representation,
/// so converting between them (`extern.convert_any`, `any.convert_extern`)
/// changes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnyRef {
    /// a value of the host's (`ref.extern N`, `ref.host N` in spec scripts)
    Host(u32),
    /// an unboxed 31-bit integer (`ref.i31`); the low 31 bits count
    I31(u32),
    /// a GC struct
    Struct(ObjectRef),
    /// a GC array
    Array(ObjectRef),
}

/// An opaque reference to a GC object (the object's address inside its
/// store's GC heap).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectRef(pub(crate) core::num::NonZeroUsize);

/// An opaque, non-null exception reference (the address of a caught
/// exception inside its store).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExnRefHandle(pub(crate) core::num::NonZeroUsize);

impl Val {
    /// The type of this value.
    pub fn ty(&self) -> ValType {
        match self {
            Val::I32(_) => ValType::I32,
            Val::I64(_) => ValType::I64,
            Val::F32(_) => ValType::F32,
            Val::F64(_) => ValType::F64,
            Val::V128(_) => ValType::V128,
            Val::FuncRef(_) => ValType::Ref(RefType::FuncRef),
            Val::ExternRef(_) => ValType::Ref(RefType::ExternRef),
            Val::ExnRef(_) => ValType::Ref(RefType::ExnRef),
            Val::AnyRef(_) => ValType::Ref(RefType::AnyRef),
        }
    }

    /// The zero/null value of a type.
    pub fn default_for(ty: ValType) -> Val {
        match ty {
            ValType::I32 => Val::I32(0),
            ValType::I64 => Val::I64(0),
            ValType::F32 => Val::F32(0),
            ValType::F64 => Val::F64(0),
            ValType::V128 => Val::V128(0),
            ValType::Ref(RefType::FuncRef) => Val::FuncRef(None),
            ValType::Ref(RefType::ExternRef) => Val::ExternRef(None),
            ValType::Ref(RefType::ExnRef) => Val::ExnRef(None),
            ValType::Ref(RefType::AnyRef) => Val::AnyRef(None),
        }
    }

    /// The i32 inside, if this is one.
    pub fn i32(&self) -> Option<i32> {
        if let Val::I32(v) = self {
            Some(*v)
        } else {
            None
        }
    }

    /// The i64 inside, if this is one.
    pub fn i64(&self) -> Option<i64> {
        if let Val::I64(v) = self {
            Some(*v)
        } else {
            None
        }
    }
}
