//! Lifting: component values out of core values and linear memory.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::format;
use alloc::vec::Vec;

use super::layout::{self, Flat, align_to, alignment, size};
use super::{Cx, strings, trap};
use crate::component::types::{ResourceType, Type};
use crate::component::values::{Resource, Value};
use crate::error::Error;
use crate::types::Val;

/// The largest list, in bytes, the ABI lets cross.
pub const MAX_LIST_BYTE_LENGTH: u64 = (1 << 28) - 1;

/// A source of flat core values, each asked for with the type wanted.
pub trait FlatSource {
    /// The next flat value, as `want`.
    fn next(&mut self, want: Flat) -> Result<Val, Error>;
}

/// Flat values from a slice (core arguments or results).
pub struct FlatValues<'a> {
    vals: &'a [Val],
    at: usize,
}

impl<'a> FlatValues<'a> {
    /// Reads `vals` in order.
    pub fn new(vals: &'a [Val]) -> Self {
        FlatValues { vals, at: 0 }
    }
}

impl FlatSource for FlatValues<'_> {
    fn next(&mut self, _want: Flat) -> Result<Val, Error> {
        let v = self
            .vals
            .get(self.at)
            .cloned()
            .ok_or_else(|| trap("too few core values for the component type"))?;
        self.at += 1;
        Ok(v)
    }
}

/// The payload of a variant: each value is read as the joined type and
/// converted to the case's own type (`CoerceValueIter`).
struct Coerce<'s> {
    inner: &'s mut dyn FlatSource,
    have: VecDeque<Flat>,
}

impl FlatSource for Coerce<'_> {
    fn next(&mut self, want: Flat) -> Result<Val, Error> {
        let have = self
            .have
            .pop_front()
            .ok_or_else(|| trap("variant payload longer than its flat type"))?;
        let x = self.inner.next(have)?;
        Ok(match (have, want, x) {
            (Flat::I32, Flat::F32, Val::I32(i)) => Val::F32(i as u32),
            (Flat::I64, Flat::I32, Val::I64(i)) => Val::I32(i as i32),
            (Flat::I64, Flat::F32, Val::I64(i)) => Val::F32(i as u32),
            (Flat::I64, Flat::F64, Val::I64(i)) => Val::F64(i as u64),
            (_, _, x) => x,
        })
    }
}

fn i32_of(v: Val) -> Result<u32, Error> {
    match v {
        Val::I32(i) => Ok(i as u32),
        _ => Err(trap(
            "core value of the wrong type where an i32 is expected",
        )),
    }
}

fn i64_of(v: Val) -> Result<u64, Error> {
    match v {
        Val::I64(i) => Ok(i as u64),
        _ => Err(trap(
            "core value of the wrong type where an i64 is expected",
        )),
    }
}

/// The trap for values of the component-model async types.
pub fn async_value() -> Error {
    trap(
        "streams, futures and error contexts cannot cross yet: component-model async (WASI 0.3) is not supported",
    )
}

/// `lift_flat`: one value of type `t` from flat values.
pub fn lift_flat<T>(cx: &mut Cx<'_, T>, vi: &mut dyn FlatSource, t: &Type) -> Result<Value, Error> {
    Ok(match t {
        Type::Stream(_) | Type::Future(_) | Type::ErrorContext => return Err(async_value()),
        Type::Bool => Value::Bool(i32_of(vi.next(Flat::I32)?)? != 0),
        Type::U8 => Value::U8(i32_of(vi.next(Flat::I32)?)? as u8),
        Type::U16 => Value::U16(i32_of(vi.next(Flat::I32)?)? as u16),
        Type::U32 => Value::U32(i32_of(vi.next(Flat::I32)?)?),
        Type::U64 => Value::U64(i64_of(vi.next(Flat::I64)?)?),
        Type::S8 => Value::S8(i32_of(vi.next(Flat::I32)?)? as i8),
        Type::S16 => Value::S16(i32_of(vi.next(Flat::I32)?)? as i16),
        Type::S32 => Value::S32(i32_of(vi.next(Flat::I32)?)? as i32),
        Type::S64 => Value::S64(i64_of(vi.next(Flat::I64)?)? as i64),
        Type::F32 => match vi.next(Flat::F32)? {
            Val::F32(b) => Value::F32(f32::from_bits(b)),
            _ => {
                return Err(trap(
                    "core value of the wrong type where an f32 is expected",
                ));
            }
        },
        Type::F64 => match vi.next(Flat::F64)? {
            Val::F64(b) => Value::F64(f64::from_bits(b)),
            _ => {
                return Err(trap(
                    "core value of the wrong type where an f64 is expected",
                ));
            }
        },
        Type::Char => Value::Char(char_of(i32_of(vi.next(Flat::I32)?)?)?),
        Type::String => {
            let ptr = i32_of(vi.next(Flat::I32)?)?;
            let len = i32_of(vi.next(Flat::I32)?)?;
            Value::String(strings::load_string_from_range(cx, ptr, len)?)
        }
        Type::List(e) => {
            let ptr = i32_of(vi.next(Flat::I32)?)?;
            let len = i32_of(vi.next(Flat::I32)?)?;
            load_list_from_range(cx, ptr, len, e)?
        }
        Type::FixedList(e, n) => {
            let mut vs = Vec::with_capacity(*n as usize);
            for _ in 0..*n {
                vs.push(lift_flat(cx, vi, e)?);
            }
            Value::List(vs)
        }
        Type::Record(fs) => {
            let mut vs = Vec::with_capacity(fs.len());
            for (_, t) in fs {
                vs.push(lift_flat(cx, vi, t)?);
            }
            Value::Record(vs)
        }
        Type::Tuple(ts) => {
            let mut vs = Vec::with_capacity(ts.len());
            for t in ts {
                vs.push(lift_flat(cx, vi, t)?);
            }
            Value::Tuple(vs)
        }
        Type::Flags(names) => Value::Flags(unpack_flags(i32_of(vi.next(Flat::I32)?)?, names.len())),
        Type::Own(rt) => Value::Own(lift_own(cx, i32_of(vi.next(Flat::I32)?)?, rt)?),
        Type::Borrow(rt) => Value::Borrow(lift_borrow(cx, i32_of(vi.next(Flat::I32)?)?, rt)?),
        Type::Variant(_) | Type::Enum(_) | Type::Option(_) | Type::Result { .. } => {
            let cs = layout::cases(t).unwrap_or_default();
            let case = i32_of(vi.next(Flat::I32)?)?;
            if case as usize >= cs.len() {
                return Err(trap("invalid variant discriminant"));
            }
            let flat = layout::variant_payload(&cs);
            let payload = match cs[case as usize] {
                None => None,
                Some(ct) => {
                    let mut case_flat = Vec::new();
                    layout::flatten(ct, &mut case_flat);
                    let mut co = Coerce {
                        inner: vi,
                        have: flat[..case_flat.len()].iter().copied().collect(),
                    };
                    let v = lift_flat(cx, &mut co, ct)?;
                    Some(Box::new(v))
                }
            };
            // Skip the rest of the joined payload.
            let used = match cs[case as usize] {
                None => 0,
                Some(ct) => {
                    let mut case_flat = Vec::new();
                    layout::flatten(ct, &mut case_flat);
                    case_flat.len()
                }
            };
            for f in &flat[used..] {
                vi.next(*f)?;
            }
            variant_value(t, case, payload)
        }
    })
}

/// The value of a variant-like type `t` for case `case` with `payload`.
pub fn variant_value(t: &Type, case: u32, payload: Option<Box<Value>>) -> Value {
    match t {
        Type::Enum(_) => Value::Enum(case),
        Type::Option(_) => Value::Option(if case == 0 { None } else { payload }),
        Type::Result { .. } => Value::Result(if case == 0 { Ok(payload) } else { Err(payload) }),
        _ => Value::Variant(case, payload),
    }
}

fn unpack_flags(i: u32, n: usize) -> u32 {
    if n >= 32 { i } else { i & ((1u32 << n) - 1) }
}

/// `convert_i32_to_char`.
pub fn char_of(i: u32) -> Result<char, Error> {
    char::from_u32(i).ok_or_else(|| trap("invalid `char` bit pattern"))
}

fn read<const N: usize>(cx: &mut Cx<'_, impl Sized>, ptr: u32) -> Result<[u8; N], Error> {
    let mem = cx.memory()?;
    let start = ptr as usize;
    mem.get(start..start + N)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| trap("pointer out of bounds of memory"))
}

/// `load`: a value of type `t` at `ptr` (aligned and in bounds).
pub fn load<T>(cx: &mut Cx<'_, T>, ptr: u32, t: &Type) -> Result<Value, Error> {
    Ok(match t {
        Type::Stream(_) | Type::Future(_) | Type::ErrorContext => return Err(async_value()),
        Type::Bool => Value::Bool(read::<1>(cx, ptr)?[0] != 0),
        Type::U8 => Value::U8(read::<1>(cx, ptr)?[0]),
        Type::S8 => Value::S8(read::<1>(cx, ptr)?[0] as i8),
        Type::U16 => Value::U16(u16::from_le_bytes(read(cx, ptr)?)),
        Type::S16 => Value::S16(i16::from_le_bytes(read(cx, ptr)?)),
        Type::U32 => Value::U32(u32::from_le_bytes(read(cx, ptr)?)),
        Type::S32 => Value::S32(i32::from_le_bytes(read(cx, ptr)?)),
        Type::U64 => Value::U64(u64::from_le_bytes(read(cx, ptr)?)),
        Type::S64 => Value::S64(i64::from_le_bytes(read(cx, ptr)?)),
        Type::F32 => Value::F32(f32::from_bits(u32::from_le_bytes(read(cx, ptr)?))),
        Type::F64 => Value::F64(f64::from_bits(u64::from_le_bytes(read(cx, ptr)?))),
        Type::Char => Value::Char(char_of(u32::from_le_bytes(read(cx, ptr)?))?),
        Type::String => {
            let p = u32::from_le_bytes(read(cx, ptr)?);
            let len = u32::from_le_bytes(read(cx, ptr + 4)?);
            Value::String(strings::load_string_from_range(cx, p, len)?)
        }
        Type::List(e) => {
            let p = u32::from_le_bytes(read(cx, ptr)?);
            let len = u32::from_le_bytes(read(cx, ptr + 4)?);
            load_list_from_range(cx, p, len, e)?
        }
        Type::FixedList(e, n) => load_list_from_valid_range(cx, ptr, *n, e)?,
        Type::Record(fs) => Value::Record(load_fields(cx, ptr, fs.iter().map(|(_, t)| t))?),
        Type::Tuple(ts) => Value::Tuple(load_fields(cx, ptr, ts.iter())?),
        Type::Flags(names) => {
            let i = match size(t) {
                1 => u32::from(read::<1>(cx, ptr)?[0]),
                2 => u32::from(u16::from_le_bytes(read(cx, ptr)?)),
                _ => u32::from_le_bytes(read(cx, ptr)?),
            };
            Value::Flags(unpack_flags(i, names.len()))
        }
        Type::Own(rt) => {
            let i = u32::from_le_bytes(read(cx, ptr)?);
            Value::Own(lift_own(cx, i, rt)?)
        }
        Type::Borrow(rt) => {
            let i = u32::from_le_bytes(read(cx, ptr)?);
            Value::Borrow(lift_borrow(cx, i, rt)?)
        }
        Type::Variant(_) | Type::Enum(_) | Type::Option(_) | Type::Result { .. } => {
            let cs = layout::cases(t).unwrap_or_default();
            let disc = layout::discriminant_size(cs.len());
            let case = match disc {
                1 => u32::from(read::<1>(cx, ptr)?[0]),
                2 => u32::from(u16::from_le_bytes(read(cx, ptr)?)),
                _ => u32::from_le_bytes(read(cx, ptr)?),
            };
            if case as usize >= cs.len() {
                return Err(trap("invalid variant discriminant"));
            }
            let at = align_to(
                ptr + disc,
                cs.iter().flatten().map(|t| alignment(t)).max().unwrap_or(1),
            );
            let payload = match cs[case as usize] {
                None => None,
                Some(ct) => Some(Box::new(load(cx, at, ct)?)),
            };
            variant_value(t, case, payload)
        }
    })
}

fn load_fields<'t, T>(
    cx: &mut Cx<'_, T>,
    mut ptr: u32,
    fields: impl Iterator<Item = &'t Type>,
) -> Result<Vec<Value>, Error> {
    let mut vs = Vec::new();
    for t in fields {
        ptr = align_to(ptr, alignment(t));
        vs.push(load(cx, ptr, t)?);
        ptr += size(t);
    }
    Ok(vs)
}

/// `load_list_from_range`: `len` elements of type `e` at `ptr`, checked.
pub fn load_list_from_range<T>(
    cx: &mut Cx<'_, T>,
    ptr: u32,
    len: u32,
    e: &Type,
) -> Result<Value, Error> {
    let bytes = u64::from(len) * u64::from(size(e));
    if bytes > MAX_LIST_BYTE_LENGTH {
        return Err(trap(if cx.adapter {
            "list content out-of-bounds"
        } else {
            "list pointer/length out of bounds of memory"
        }));
    }
    if !ptr.is_multiple_of(alignment(e)) {
        return Err(trap("unaligned pointer"));
    }
    if u64::from(ptr) + bytes > cx.memory()?.len() as u64 {
        return Err(trap(if cx.adapter {
            "list content out-of-bounds"
        } else {
            "list pointer/length out of bounds of memory"
        }));
    }
    load_list_from_valid_range(cx, ptr, len, e)
}

fn load_list_from_valid_range<T>(
    cx: &mut Cx<'_, T>,
    ptr: u32,
    len: u32,
    e: &Type,
) -> Result<Value, Error> {
    if *e == Type::U8 {
        let mem = cx.memory()?;
        let bytes = mem
            .get(ptr as usize..ptr as usize + len as usize)
            .ok_or_else(|| trap("list pointer/length out of bounds of memory"))?;
        return Ok(Value::Bytes(bytes.to_vec()));
    }
    let es = size(e);
    let mut vs = Vec::with_capacity(len.min(1 << 16) as usize);
    for i in 0..len {
        vs.push(load(cx, ptr + i * es, e)?);
    }
    Ok(Value::List(vs))
}

fn wrong_type(i: u32, want: &ResourceType, have: &ResourceType) -> Error {
    let side = |r: &ResourceType| {
        if r.is_host() {
            "host-defined"
        } else {
            "guest-defined"
        }
    };
    trap(&format!(
        "handle index {i} used with the wrong type, expected {} resource but found a different {} resource",
        side(want),
        side(have)
    ))
}

/// `lift_own`: takes handle `i` out of the instance's table.
pub fn lift_own<T>(cx: &mut Cx<'_, T>, i: u32, rt: &ResourceType) -> Result<Resource, Error> {
    let h = cx.inst.handles.lock().remove(i)?;
    if h.ty != *rt {
        return Err(wrong_type(i, rt, &h.ty));
    }
    if h.lends != 0 {
        return Err(trap("cannot remove owned resource while borrowed"));
    }
    if !h.own {
        return Err(trap(&format!(
            "handle index {i} is a borrow where an owned handle is required"
        )));
    }
    Ok(Resource {
        ty: h.ty,
        rep: h.rep,
    })
}

/// `lift_borrow`: lends handle `i` for the duration of the call.
pub fn lift_borrow<T>(cx: &mut Cx<'_, T>, i: u32, rt: &ResourceType) -> Result<Resource, Error> {
    let mut table = cx.inst.handles.lock();
    let h = table.get_mut(i)?;
    if h.ty != *rt {
        return Err(wrong_type(i, rt, &h.ty));
    }
    h.lends += 1;
    let r = Resource {
        ty: h.ty.clone(),
        rep: h.rep,
    };
    drop(table);
    cx.lenders.push(i);
    Ok(r)
}

/// `lift_flat_values`: the values of types `ts` from flat core values,
/// or, when they do not fit in `max_flat`, from memory at the pointer the
/// one core value holds.
pub fn lift_values<T>(
    cx: &mut Cx<'_, T>,
    max_flat: usize,
    vals: &[Val],
    ts: &[&Type],
) -> Result<Vec<Value>, Error> {
    let flat = layout::flatten_all(ts.iter().copied());
    let mut vi = FlatValues::new(vals);
    if flat.len() > max_flat {
        let ptr = i32_of(vi.next(Flat::I32)?)?;
        let tuple = Type::Tuple(ts.iter().map(|t| (*t).clone()).collect());
        if !ptr.is_multiple_of(alignment(&tuple)) {
            return Err(trap("unaligned pointer"));
        }
        if u64::from(ptr) + u64::from(size(&tuple)) > cx.memory()?.len() as u64 {
            return Err(trap("pointer out of bounds of memory"));
        }
        match load(cx, ptr, &tuple)? {
            Value::Tuple(vs) => Ok(vs),
            _ => Err(trap("internal: tuple load")),
        }
    } else {
        ts.iter().map(|t| lift_flat(cx, &mut vi, t)).collect()
    }
}
