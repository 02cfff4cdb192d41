//! Lowering: component values into core values and linear memory.

use alloc::format;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::layout::{self, Flat, align_to, alignment, size};
use super::{Content, Cx, strings, trap};
use crate::component::handles::Handle;
use crate::component::types::{Implementer, ResourceType, Type};
use crate::component::values::{Resource, Value};
use crate::error::Error;
use crate::types::Val;

fn mismatch(v: &Value, t: &Type) -> Error {
    trap(&format!("a {} value where a {t} is expected", v.kind()))
}

fn write(cx: &mut Cx<'_, impl Sized>, ptr: u32, bytes: &[u8]) -> Result<(), Error> {
    let mem = cx.memory()?;
    let start = ptr as usize;
    mem.get_mut(start..start + bytes.len())
        .ok_or_else(|| trap("pointer out of bounds of memory"))?
        .copy_from_slice(bytes);
    Ok(())
}

fn case_of<'v>(v: &'v Value, t: &Type) -> Result<(u32, Option<&'v Value>), Error> {
    let (case, payload) = match (v, t) {
        (Value::Variant(i, p), Type::Variant(_)) => (*i, p.as_deref()),
        (Value::Enum(i), Type::Enum(_)) => (*i, None),
        (Value::Option(None), Type::Option(_)) => (0, None),
        (Value::Option(Some(p)), Type::Option(_)) => (1, Some(&**p)),
        (Value::Result(Ok(p)), Type::Result { .. }) => (0, p.as_deref()),
        (Value::Result(Err(p)), Type::Result { .. }) => (1, p.as_deref()),
        _ => return Err(mismatch(v, t)),
    };
    let cs = layout::cases(t).unwrap_or_default();
    match cs.get(case as usize) {
        Some(ct) if ct.is_some() == payload.is_some() => Ok((case, payload)),
        _ => Err(mismatch(v, t)),
    }
}

/// `store`: value `v` of type `t` at `ptr` (aligned and in bounds).
pub fn store<T>(cx: &mut Cx<'_, T>, v: &Value, t: &Type, ptr: u32) -> Result<(), Error> {
    match (v, t) {
        (Value::Bool(b), Type::Bool) => write(cx, ptr, &[u8::from(*b)]),
        (Value::U8(x), Type::U8) => write(cx, ptr, &[*x]),
        (Value::S8(x), Type::S8) => write(cx, ptr, &x.to_le_bytes()),
        (Value::U16(x), Type::U16) => write(cx, ptr, &x.to_le_bytes()),
        (Value::S16(x), Type::S16) => write(cx, ptr, &x.to_le_bytes()),
        (Value::U32(x), Type::U32) => write(cx, ptr, &x.to_le_bytes()),
        (Value::S32(x), Type::S32) => write(cx, ptr, &x.to_le_bytes()),
        (Value::U64(x), Type::U64) => write(cx, ptr, &x.to_le_bytes()),
        (Value::S64(x), Type::S64) => write(cx, ptr, &x.to_le_bytes()),
        (Value::F32(x), Type::F32) => write(cx, ptr, &x.to_bits().to_le_bytes()),
        (Value::F64(x), Type::F64) => write(cx, ptr, &x.to_bits().to_le_bytes()),
        (Value::Char(c), Type::Char) => write(cx, ptr, &u32::from(*c).to_le_bytes()),
        (Value::String(s), Type::String) => {
            let (p, units) = strings::store_string_into_range(cx, s)?;
            write(cx, ptr, &p.to_le_bytes())?;
            write(cx, ptr + 4, &units.to_le_bytes())
        }
        (Value::Bytes(_) | Value::List(_), Type::List(e)) => {
            let (p, len) = store_list_into_range(cx, v, e)?;
            write(cx, ptr, &p.to_le_bytes())?;
            write(cx, ptr + 4, &len.to_le_bytes())
        }
        (Value::Bytes(_) | Value::List(_), Type::FixedList(e, n)) => {
            if list_len(v) != *n as usize {
                return Err(mismatch(v, t));
            }
            store_list_into_valid_range(cx, v, e, ptr)
        }
        (Value::Record(vs), Type::Record(fs)) if vs.len() == fs.len() => {
            store_fields(cx, vs, fs.iter().map(|(_, t)| t), ptr)
        }
        (Value::Tuple(vs), Type::Tuple(ts)) if vs.len() == ts.len() => {
            store_fields(cx, vs, ts.iter(), ptr)
        }
        (Value::Flags(bits), Type::Flags(_)) => match size(t) {
            1 => write(cx, ptr, &[*bits as u8]),
            2 => write(cx, ptr, &(*bits as u16).to_le_bytes()),
            _ => write(cx, ptr, &bits.to_le_bytes()),
        },
        (Value::Own(r), Type::Own(rt)) => {
            let i = lower_own(cx, r, rt)?;
            write(cx, ptr, &i.to_le_bytes())
        }
        (Value::Borrow(r), Type::Borrow(rt)) => {
            let i = lower_borrow(cx, r, rt)?;
            write(cx, ptr, &i.to_le_bytes())
        }
        (_, Type::Variant(_) | Type::Enum(_) | Type::Option(_) | Type::Result { .. }) => {
            let (case, payload) = case_of(v, t)?;
            let cs = layout::cases(t).unwrap_or_default();
            let disc = layout::discriminant_size(cs.len());
            match disc {
                1 => write(cx, ptr, &[case as u8])?,
                2 => write(cx, ptr, &(case as u16).to_le_bytes())?,
                _ => write(cx, ptr, &case.to_le_bytes())?,
            }
            let at = align_to(
                ptr + disc,
                cs.iter().flatten().map(|t| alignment(t)).max().unwrap_or(1),
            );
            match (payload, cs[case as usize]) {
                (Some(p), Some(ct)) => store(cx, p, ct, at),
                _ => Ok(()),
            }
        }
        _ => Err(mismatch(v, t)),
    }
}

fn list_len(v: &Value) -> usize {
    match v {
        Value::Bytes(b) => b.len(),
        Value::List(vs) => vs.len(),
        _ => 0,
    }
}

fn store_fields<'t, T>(
    cx: &mut Cx<'_, T>,
    vs: &[Value],
    fields: impl Iterator<Item = &'t Type>,
    mut ptr: u32,
) -> Result<(), Error> {
    for (v, t) in vs.iter().zip(fields) {
        ptr = align_to(ptr, alignment(t));
        store(cx, v, t, ptr)?;
        ptr += size(t);
    }
    Ok(())
}

/// `store_list_into_range`: allocates room for the list and stores it;
/// returns (pointer, length).
pub fn store_list_into_range<T>(
    cx: &mut Cx<'_, T>,
    v: &Value,
    e: &Type,
) -> Result<(u32, u32), Error> {
    let len = list_len(v);
    let bytes = (len as u64) * u64::from(size(e));
    let bytes = u32::try_from(bytes).map_err(|_| trap("list too large to lower"))?;
    let ptr = cx.allocate(alignment(e), bytes, Content::List)?;
    store_list_into_valid_range(cx, v, e, ptr)?;
    Ok((ptr, len as u32))
}

fn store_list_into_valid_range<T>(
    cx: &mut Cx<'_, T>,
    v: &Value,
    e: &Type,
    ptr: u32,
) -> Result<(), Error> {
    match v {
        Value::Bytes(b) if *e == Type::U8 => write(cx, ptr, b),
        Value::List(vs) => {
            let es = size(e);
            for (i, x) in vs.iter().enumerate() {
                store(cx, x, e, ptr + i as u32 * es)?;
            }
            Ok(())
        }
        _ => Err(mismatch(v, e)),
    }
}

/// `lower_own`: a new owned handle in the instance's table.
pub fn lower_own<T>(cx: &mut Cx<'_, T>, r: &Resource, rt: &ResourceType) -> Result<u32, Error> {
    if r.ty != *rt {
        return Err(trap("an owned resource of the wrong type"));
    }
    cx.inst.handles.lock().add(Handle {
        ty: rt.clone(),
        rep: r.rep,
        own: true,
        scope: None,
        lends: 0,
    })
}

/// `lower_borrow`: the representation itself when the receiver implements
/// the type, else a borrowed handle counted in the call's borrow scope.
pub fn lower_borrow<T>(cx: &mut Cx<'_, T>, r: &Resource, rt: &ResourceType) -> Result<u32, Error> {
    if r.ty != *rt {
        return Err(trap("a borrowed resource of the wrong type"));
    }
    if let Implementer::Instance(w) = &rt.0.implementer
        && core::ptr::eq(w.as_ptr(), Arc::as_ptr(cx.inst))
    {
        return Ok(r.rep);
    }
    let scope = cx.scope.cloned();
    if let Some(s) = &scope {
        s.borrowed();
    }
    cx.inst.handles.lock().add(Handle {
        ty: rt.clone(),
        rep: r.rep,
        own: false,
        scope,
        lends: 0,
    })
}

fn push_flat(out: &mut Vec<Val>, f: Flat, raw: u64) {
    out.push(match f {
        Flat::I32 => Val::I32(raw as u32 as i32),
        Flat::I64 => Val::I64(raw as i64),
        Flat::F32 => Val::F32(raw as u32),
        Flat::F64 => Val::F64(raw),
    });
}

fn raw_of(v: &Val) -> u64 {
    match *v {
        Val::I32(i) => u64::from(i as u32),
        Val::I64(i) => i as u64,
        Val::F32(b) => u64::from(b),
        Val::F64(b) => b,
        _ => 0,
    }
}

/// `lower_flat`: value `v` of type `t` as flat core values, appended.
pub fn lower_flat<T>(
    cx: &mut Cx<'_, T>,
    v: &Value,
    t: &Type,
    out: &mut Vec<Val>,
) -> Result<(), Error> {
    match (v, t) {
        (Value::Bool(b), Type::Bool) => out.push(Val::I32(i32::from(*b))),
        (Value::U8(x), Type::U8) => out.push(Val::I32(i32::from(*x))),
        (Value::S8(x), Type::S8) => out.push(Val::I32(i32::from(*x))),
        (Value::U16(x), Type::U16) => out.push(Val::I32(i32::from(*x))),
        (Value::S16(x), Type::S16) => out.push(Val::I32(i32::from(*x))),
        (Value::U32(x), Type::U32) => out.push(Val::I32(*x as i32)),
        (Value::S32(x), Type::S32) => out.push(Val::I32(*x)),
        (Value::U64(x), Type::U64) => out.push(Val::I64(*x as i64)),
        (Value::S64(x), Type::S64) => out.push(Val::I64(*x)),
        (Value::F32(x), Type::F32) => out.push(Val::F32(x.to_bits())),
        (Value::F64(x), Type::F64) => out.push(Val::F64(x.to_bits())),
        (Value::Char(c), Type::Char) => out.push(Val::I32(u32::from(*c) as i32)),
        (Value::String(s), Type::String) => {
            let (p, units) = strings::store_string_into_range(cx, s)?;
            out.push(Val::I32(p as i32));
            out.push(Val::I32(units as i32));
        }
        (Value::Bytes(_) | Value::List(_), Type::List(e)) => {
            let (p, len) = store_list_into_range(cx, v, e)?;
            out.push(Val::I32(p as i32));
            out.push(Val::I32(len as i32));
        }
        (Value::Bytes(b), Type::FixedList(e, n)) if b.len() == *n as usize => {
            for x in b {
                lower_flat(cx, &Value::U8(*x), e, out)?;
            }
        }
        (Value::List(vs), Type::FixedList(e, n)) if vs.len() == *n as usize => {
            for x in vs {
                lower_flat(cx, x, e, out)?;
            }
        }
        (Value::Record(vs), Type::Record(fs)) if vs.len() == fs.len() => {
            for (x, (_, t)) in vs.iter().zip(fs) {
                lower_flat(cx, x, t, out)?;
            }
        }
        (Value::Tuple(vs), Type::Tuple(ts)) if vs.len() == ts.len() => {
            for (x, t) in vs.iter().zip(ts) {
                lower_flat(cx, x, t, out)?;
            }
        }
        (Value::Flags(bits), Type::Flags(_)) => out.push(Val::I32(*bits as i32)),
        (Value::Own(r), Type::Own(rt)) => {
            let i = lower_own(cx, r, rt)?;
            out.push(Val::I32(i as i32));
        }
        (Value::Borrow(r), Type::Borrow(rt)) => {
            let i = lower_borrow(cx, r, rt)?;
            out.push(Val::I32(i as i32));
        }
        (_, Type::Variant(_) | Type::Enum(_) | Type::Option(_) | Type::Result { .. }) => {
            let (case, payload) = case_of(v, t)?;
            let cs = layout::cases(t).unwrap_or_default();
            let joined = layout::variant_payload(&cs);
            out.push(Val::I32(case as i32));
            let mut n = 0;
            if let (Some(p), Some(ct)) = (payload, cs[case as usize]) {
                let mut vals = Vec::new();
                lower_flat(cx, p, ct, &mut vals)?;
                for (x, want) in vals.iter().zip(&joined) {
                    // Widen to the joined type (`lower_flat_variant`).
                    push_flat(out, *want, raw_of(x));
                    n += 1;
                }
            }
            for want in &joined[n..] {
                push_flat(out, *want, 0);
            }
        }
        _ => return Err(mismatch(v, t)),
    }
    Ok(())
}

/// `lower_flat_values`: values `vs` of types `ts` as flat core values, or,
/// when they do not fit in `max_flat`, stored in memory: at `out_ptr`
/// when given (a lowered import's return area), else in a fresh
/// allocation whose pointer is the one core value.
pub fn lower_values<T>(
    cx: &mut Cx<'_, T>,
    max_flat: usize,
    vs: &[Value],
    ts: &[&Type],
    out_ptr: Option<u32>,
) -> Result<Vec<Val>, Error> {
    if vs.len() != ts.len() {
        return Err(trap("wrong number of values for the function's type"));
    }
    let flat = layout::flatten_all(ts.iter().copied());
    let mut out = Vec::with_capacity(flat.len().min(max_flat + 1));
    if flat.len() > max_flat {
        let tuple = Type::Tuple(ts.iter().map(|t| (*t).clone()).collect());
        let ptr = match out_ptr {
            Some(p) => p,
            None => {
                let p = cx.realloc(0, 0, alignment(&tuple), size(&tuple))?;
                out.push(Val::I32(p as i32));
                p
            }
        };
        if !ptr.is_multiple_of(alignment(&tuple)) {
            return Err(trap("unaligned pointer"));
        }
        if u64::from(ptr) + u64::from(size(&tuple)) > cx.memory()?.len() as u64 {
            return Err(trap("pointer out of bounds of memory"));
        }
        store_fields(cx, vs, ts.iter().copied(), ptr)?;
    } else {
        for (v, t) in vs.iter().zip(ts) {
            lower_flat(cx, v, t, &mut out)?;
        }
    }
    Ok(out)
}
