//! Alignment, size in memory and flat core types of component types.

use alloc::vec::Vec;

use crate::component::types::Type;

/// A core value type of the flat representation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flat {
    /// i32
    I32,
    /// i64
    I64,
    /// f32
    F32,
    /// f64
    F64,
}

/// At most this many flat parameters are passed as core parameters.
pub const MAX_FLAT_PARAMS: usize = 16;
/// At most this many flat results are returned as core results.
pub const MAX_FLAT_RESULTS: usize = 1;

/// The payloads of a variant-like type (variant, enum, option, result).
pub fn cases(t: &Type) -> Option<Vec<Option<&Type>>> {
    Some(match t {
        Type::Variant(cs) => cs.iter().map(|(_, t)| t.as_ref()).collect(),
        Type::Enum(names) => names.iter().map(|_| None).collect(),
        Type::Option(t) => alloc::vec![None, Some(&**t)],
        Type::Result { ok, err } => alloc::vec![ok.as_deref(), err.as_deref()],
        _ => return None,
    })
}

/// The size in bytes of a variant's discriminant with `n` cases.
pub fn discriminant_size(n: usize) -> u32 {
    if n <= 1 << 8 {
        1
    } else if n <= 1 << 16 {
        2
    } else {
        4
    }
}

fn flags_size(n: usize) -> u32 {
    if n <= 8 {
        1
    } else if n <= 16 {
        2
    } else {
        4
    }
}

/// Rounds `ptr` up to a multiple of `align`.
pub fn align_to(ptr: u32, align: u32) -> u32 {
    ptr.div_ceil(align) * align
}

fn max_case_alignment(cs: &[Option<&Type>]) -> u32 {
    cs.iter().flatten().map(|t| alignment(t)).max().unwrap_or(1)
}

/// The alignment of `t` in memory.
pub fn alignment(t: &Type) -> u32 {
    match t {
        Type::Bool | Type::S8 | Type::U8 => 1,
        Type::S16 | Type::U16 => 2,
        Type::S32 | Type::U32 | Type::F32 | Type::Char => 4,
        Type::S64 | Type::U64 | Type::F64 => 8,
        Type::String | Type::List(_) => 4,
        Type::FixedList(t, _) => alignment(t),
        Type::Record(fs) => fs.iter().map(|(_, t)| alignment(t)).max().unwrap_or(1),
        Type::Tuple(ts) => ts.iter().map(alignment).max().unwrap_or(1),
        Type::Flags(names) => flags_size(names.len()),
        Type::Own(_) | Type::Borrow(_) => 4,
        Type::Stream(_) | Type::Future(_) | Type::ErrorContext => 4,
        Type::Variant(_) | Type::Enum(_) | Type::Option(_) | Type::Result { .. } => {
            let cs = cases(t).unwrap_or_default();
            discriminant_size(cs.len()).max(max_case_alignment(&cs))
        }
    }
}

/// The size of `t` in memory (a multiple of its alignment).
pub fn size(t: &Type) -> u32 {
    match t {
        Type::Bool | Type::S8 | Type::U8 => 1,
        Type::S16 | Type::U16 => 2,
        Type::S32 | Type::U32 | Type::F32 | Type::Char => 4,
        Type::S64 | Type::U64 | Type::F64 => 8,
        Type::String | Type::List(_) => 8,
        Type::FixedList(t, n) => size(t).saturating_mul(*n),
        Type::Record(fs) => record_size(fs.iter().map(|(_, t)| t)),
        Type::Tuple(ts) => record_size(ts.iter()),
        Type::Flags(names) => flags_size(names.len()),
        Type::Own(_) | Type::Borrow(_) => 4,
        Type::Stream(_) | Type::Future(_) | Type::ErrorContext => 4,
        Type::Variant(_) | Type::Enum(_) | Type::Option(_) | Type::Result { .. } => {
            let cs = cases(t).unwrap_or_default();
            let mut s = discriminant_size(cs.len());
            s = align_to(s, max_case_alignment(&cs));
            s += cs.iter().flatten().map(|t| size(t)).max().unwrap_or(0);
            align_to(s, alignment(t))
        }
    }
}

/// The size of a record whose fields have types `fields`.
pub fn record_size<'a>(fields: impl Iterator<Item = &'a Type> + Clone) -> u32 {
    let mut s = 0u32;
    let mut a = 1;
    for t in fields {
        a = a.max(alignment(t));
        s = align_to(s, alignment(t));
        s = s.saturating_add(size(t));
    }
    align_to(s, a)
}

/// The flat core types of `t`, appended to `out`.
pub fn flatten(t: &Type, out: &mut Vec<Flat>) {
    match t {
        Type::Bool
        | Type::S8
        | Type::U8
        | Type::S16
        | Type::U16
        | Type::S32
        | Type::U32
        | Type::Char
        | Type::Flags(_)
        | Type::Own(_)
        | Type::Borrow(_)
        | Type::Stream(_)
        | Type::Future(_)
        | Type::ErrorContext => out.push(Flat::I32),
        Type::S64 | Type::U64 => out.push(Flat::I64),
        Type::F32 => out.push(Flat::F32),
        Type::F64 => out.push(Flat::F64),
        Type::String | Type::List(_) => {
            out.push(Flat::I32);
            out.push(Flat::I32);
        }
        Type::FixedList(t, n) => {
            for _ in 0..*n {
                flatten(t, out);
            }
        }
        Type::Record(fs) => fs.iter().for_each(|(_, t)| flatten(t, out)),
        Type::Tuple(ts) => ts.iter().for_each(|t| flatten(t, out)),
        Type::Variant(_) | Type::Enum(_) | Type::Option(_) | Type::Result { .. } => {
            out.push(Flat::I32);
            out.extend(variant_payload(&cases(t).unwrap_or_default()));
        }
    }
}

/// The joined flat types of a variant's payloads.
pub fn variant_payload(cs: &[Option<&Type>]) -> Vec<Flat> {
    let mut flat: Vec<Flat> = Vec::new();
    for t in cs.iter().flatten() {
        let mut case = Vec::new();
        flatten(t, &mut case);
        for (i, f) in case.into_iter().enumerate() {
            match flat.get_mut(i) {
                Some(have) => *have = join(*have, f),
                None => flat.push(f),
            }
        }
    }
    flat
}

fn join(a: Flat, b: Flat) -> Flat {
    match (a, b) {
        _ if a == b => a,
        (Flat::I32, Flat::F32) | (Flat::F32, Flat::I32) => Flat::I32,
        _ => Flat::I64,
    }
}

/// The flat types of a list of types.
pub fn flatten_all<'a>(ts: impl Iterator<Item = &'a Type>) -> Vec<Flat> {
    let mut out = Vec::new();
    for t in ts {
        flatten(t, &mut out);
    }
    out
}

/// The core signature of a component function of parameter types
/// `params` and results `results`: `lift` for the callee's export, or
/// `lower` for the import a caller calls.
pub fn core_signature<'a>(
    params: impl Iterator<Item = &'a Type>,
    results: &[Type],
    lower: bool,
) -> (Vec<Flat>, Vec<Flat>) {
    let mut p = flatten_all(params);
    let mut r = flatten_all(results.iter());
    if p.len() > MAX_FLAT_PARAMS {
        p = alloc::vec![Flat::I32];
    }
    if r.len() > MAX_FLAT_RESULTS {
        if lower {
            p.push(Flat::I32);
            r = Vec::new();
        } else {
            r = alloc::vec![Flat::I32];
        }
    }
    (p, r)
}

/// Whether `t` contains a `borrow`.
pub fn contains_borrow(t: &Type) -> bool {
    match t {
        Type::Borrow(_) => true,
        Type::List(t) | Type::FixedList(t, _) | Type::Option(t) => contains_borrow(t),
        Type::Record(fs) => fs.iter().any(|(_, t)| contains_borrow(t)),
        Type::Tuple(ts) => ts.iter().any(contains_borrow),
        Type::Variant(cs) => cs
            .iter()
            .any(|(_, t)| t.as_ref().is_some_and(contains_borrow)),
        Type::Result { ok, err } => {
            ok.as_deref().is_some_and(contains_borrow)
                || err.as_deref().is_some_and(contains_borrow)
        }
        _ => false,
    }
}
