//! How GC objects (structs and arrays) are laid out in memory: numbers
//! only, shared by the translator, the builtins that allocate, and the
//! host-side evaluation of constant expressions.
//!
//! ```text
//! 0   u32  engine type id of the object's type (casts compare it)
//! 4   u32  length in elements (arrays; 0 for structs)
//! 8   u8   kind: 1 struct, 2 array
//! 16  fields in declaration order, each at its natural alignment,
//!     or the array's elements, one after another
//! ```
//!
//! Objects are 16-byte aligned, so a reference to one has its low four bits
//! clear, which tells it from an `i31ref` or a host value (see
//! `vm::any_ref`).

use alloc::vec::Vec;

use crate::exact::{Composite, ExactHeap, ExactType, StorageType};
use crate::module_info::{ModuleInfo, TypeIndex};
use crate::types::{RefType, ValType};

/// Size of the object header; fields and elements start here.
pub const HEADER: u32 = 16;
/// Offset of the engine type id (u32).
pub const TYPE_ID: i32 = 0;
/// Offset of an array's length (u32).
pub const LENGTH: i32 = 4;
/// Offset of the kind byte.
pub const KIND: i32 = 8;
/// Kind byte of a struct.
pub const KIND_STRUCT: u8 = 1;
/// Kind byte of an array.
pub const KIND_ARRAY: u8 = 2;

/// How a field or element is stored, as far as its bytes go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// one byte, read as i32 (sign- or zero-extended)
    I8,
    /// two bytes, read as i32
    I16,
    /// a whole value
    Val(ValType),
}

impl Storage {
    /// Size in bytes.
    pub fn size(self) -> u32 {
        match self {
            Storage::I8 => 1,
            Storage::I16 => 2,
            Storage::Val(ValType::I32 | ValType::F32) => 4,
            Storage::Val(ValType::I64 | ValType::F64 | ValType::Ref(_)) => 8,
            Storage::Val(ValType::V128) => 16,
        }
    }

    /// Whether it is a packed integer (`i8`, `i16`).
    pub fn is_packed(self) -> bool {
        matches!(self, Storage::I8 | Storage::I16)
    }
}

/// Where a struct type's fields are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StructLayout {
    /// bytes after the header
    pub body: u32,
    /// (offset from the object's start, storage) of each field
    pub fields: Vec<(u32, Storage)>,
}

/// What an array type's elements are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArrayLayout {
    /// each element's storage
    pub element: Storage,
}

/// The storage of a field of a type in `info`'s type `owner`'s group.
fn storage(info: &ModuleInfo, owner: TypeIndex, s: &StorageType) -> Storage {
    match s {
        StorageType::I8 => Storage::I8,
        StorageType::I16 => Storage::I16,
        StorageType::Val(ExactType::Plain(v)) => Storage::Val(*v),
        StorageType::Val(ExactType::Ref { heap, .. }) => {
            let group = &info.exact_types[owner as usize];
            let r = match heap {
                ExactHeap::Func | ExactHeap::NoFunc => RefType::FuncRef,
                ExactHeap::Extern | ExactHeap::NoExtern => RefType::ExternRef,
                ExactHeap::Exn | ExactHeap::NoExn => RefType::ExnRef,
                ExactHeap::Type(t) if t.is_func() => RefType::FuncRef,
                ExactHeap::Rec(i)
                    if matches!(group.group.types[*i as usize].composite, Composite::Func(_)) =>
                {
                    RefType::FuncRef
                }
                _ => RefType::AnyRef,
            };
            Storage::Val(ValType::Ref(r))
        }
    }
}

/// The layout of struct type `t` of `info`, if it is one.
pub fn struct_layout(info: &ModuleInfo, t: TypeIndex) -> Option<StructLayout> {
    let Composite::Struct(fields) = info.exact_types.get(t as usize)?.composite() else {
        return None;
    };
    let mut at = HEADER;
    let mut out = Vec::with_capacity(fields.len());
    for f in fields.iter() {
        let s = storage(info, t, &f.storage);
        at = at.next_multiple_of(s.size());
        out.push((at, s));
        at += s.size();
    }
    Some(StructLayout {
        body: at - HEADER,
        fields: out,
    })
}

/// The layout of array type `t` of `info`, if it is one.
pub fn array_layout(info: &ModuleInfo, t: TypeIndex) -> Option<ArrayLayout> {
    let Composite::Array(f) = info.exact_types.get(t as usize)?.composite() else {
        return None;
    };
    Some(ArrayLayout {
        element: storage(info, t, &f.storage),
    })
}
