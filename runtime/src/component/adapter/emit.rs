//! The code of a fused adapter: the core function that takes a call
//! lowered by one component and makes it to a function lifted by another,
//! translating every value from the caller's flat values and memory to
//! the callee's and the results back, as the Canonical ABI's `lift` then
//! `lower` would, traps included.
//!
//! Values move as they sit: between flat core values (locals) when a
//! function's values fit in its flat limit, between the two memories when
//! they do not, and always between memories for the contents of lists.
//! What is best done once, in Rust, is a call to the adapter's imports:
//! entering and leaving the callee, allocating with `realloc` (and its
//! checks), strings (validated and transcoded between encodings), and
//! raising a trap with the Canonical ABI's message.

use alloc::vec::Vec;

use wasm_encoder::{BlockType, Instruction as I, MemArg, MemArgTarget, ValType as W};

use crate::component::abi::layout::{self, Flat, align_to, alignment, size};
use crate::component::types::{ResourceType, Type};

/// The traps the adapter raises through its `trap` import, by code.
pub const TRAP_MESSAGES: [&str; 5] = [
    "invalid `char` bit pattern",
    "invalid variant discriminant",
    "list content out-of-bounds",
    "unaligned pointer",
    "pointer out of bounds of memory",
];
const TRAP_CHAR: i32 = 0;
const TRAP_DISCRIMINANT: i32 = 1;
const TRAP_LIST: i32 = 2;
/// A pointer that is not a multiple of its type's alignment.
pub const TRAP_UNALIGNED: i32 = 3;
/// A pointer whose value would end past its memory.
pub const TRAP_POINTER: i32 = 4;

/// What the `alloc` imports allocate.
pub const ALLOC_LIST: i32 = 0;
/// The area of values that do not fit the flat limit.
pub const ALLOC_SPILL: i32 = 1;

/// The largest list, in bytes, the Canonical ABI lifts.
const MAX_LIST_BYTES: i64 = (1 << 28) - 1;
/// The longest fixed-length list the adapter unrolls (longer ones take
/// the host's path).
const MAX_UNROLLED: u32 = 256;

/// A type the adapter does not translate (the call takes the host's
/// path instead).
#[derive(Debug)]
pub struct Unsupported;

/// A memory as the adapter sees it.
#[derive(Clone, Copy)]
pub struct Mem {
    /// its index in the adapter module
    pub index: u32,
    /// log2 of its page size
    pub page_log2: u8,
}

/// One direction of a translation: where values are read and written,
/// and the imports that allocate and move strings and handles on the
/// writing side.
#[derive(Clone, Copy)]
pub struct Side<'a> {
    /// the memory values are read from
    pub src: Option<Mem>,
    /// the memory values are written to
    pub dst: Option<Mem>,
    /// `(align, size, what) -> ptr` in the writing side's memory
    pub alloc: u32,
    /// `(ptr, len) -> (ptr, len)`: a string from the reading side, copied
    /// into the writing side
    pub string: u32,
    /// the resource types of the function's signature
    pub resources: &'a [ResourceType],
    /// the index of the first handle import: three per resource type
    /// ([`HANDLE_OWN_TO_CALLEE`], [`HANDLE_BORROW_TO_CALLEE`],
    /// [`HANDLE_OWN_TO_CALLER`])
    pub handles: u32,
    /// values go from the caller to the callee (else back)
    pub to_callee: bool,
}

/// An owned handle passed to the callee.
pub const HANDLE_OWN_TO_CALLEE: u32 = 0;
/// A borrowed handle passed to the callee.
pub const HANDLE_BORROW_TO_CALLEE: u32 = 1;
/// An owned handle returned to the caller.
pub const HANDLE_OWN_TO_CALLER: u32 = 2;

impl Side<'_> {
    /// The import that moves a handle of type `t` (`own` or `borrow`)
    /// this way.
    fn handle_import(&self, t: &Type) -> Result<u32, Unsupported> {
        let (rt, kind) = match (t, self.to_callee) {
            (Type::Own(rt), true) => (rt, HANDLE_OWN_TO_CALLEE),
            (Type::Borrow(rt), true) => (rt, HANDLE_BORROW_TO_CALLEE),
            (Type::Own(rt), false) => (rt, HANDLE_OWN_TO_CALLER),
            _ => return Err(Unsupported),
        };
        let at = self
            .resources
            .iter()
            .position(|r| r == rt)
            .ok_or(Unsupported)?;
        Ok(self.handles + 3 * at as u32 + kind)
    }
}

/// A flat value held in a local.
#[derive(Clone, Copy)]
pub struct Slot {
    /// the local
    pub local: u32,
    /// its core type
    pub flat: Flat,
}

fn wasm_type(f: Flat) -> W {
    match f {
        Flat::I32 => W::I32,
        Flat::I64 => W::I64,
        Flat::F32 => W::F32,
        Flat::F64 => W::F64,
    }
}

/// The body of the adapter function being written.
pub struct Body {
    /// locals beyond the parameters
    pub locals: Vec<W>,
    first_local: u32,
    /// the instructions
    pub code: Vec<I<'static>>,
    trap_func: u32,
}

fn mem_of(m: Option<Mem>) -> Result<Mem, Unsupported> {
    m.ok_or(Unsupported)
}

fn memarg(offset: u32, mem: Mem) -> MemArg {
    MemArg {
        offset: u64::from(offset),
        align: 0,
        target: MemArgTarget::Memory(mem.index),
        ordering: None,
    }
}

fn add(a: u32, b: u32) -> Result<u32, Unsupported> {
    a.checked_add(b).ok_or(Unsupported)
}

impl Body {
    /// A body whose function has `params` parameters; traps go through
    /// function `trap_func`.
    pub fn new(params: u32, trap_func: u32) -> Body {
        Body {
            locals: Vec::new(),
            first_local: params,
            code: Vec::new(),
            trap_func,
        }
    }

    /// A fresh local.
    pub fn local(&mut self, w: W) -> u32 {
        self.locals.push(w);
        self.first_local + self.locals.len() as u32 - 1
    }

    /// Appends one instruction.
    pub fn op(&mut self, i: I<'static>) {
        self.code.push(i);
    }

    /// Traps with `code` when the i32 on the stack is not zero.
    pub fn trap_if(&mut self, code: i32) {
        self.op(I::If(BlockType::Empty));
        self.op(I::I32Const(code));
        self.op(I::Call(self.trap_func));
        self.op(I::Unreachable);
        self.op(I::End);
    }

    /// Checks that `ptr` (an i32 local) is aligned to `align` and that
    /// `bytes` from it lie in `mem`, trapping with `oob` if not.
    pub fn check_range(&mut self, ptr: u32, align: u32, bytes: u32, mem: Mem, oob: i32) {
        if align > 1 {
            self.op(I::LocalGet(ptr));
            self.op(I::I32Const((align - 1) as i32));
            self.op(I::I32And);
            self.trap_if(TRAP_UNALIGNED);
        }
        self.op(I::LocalGet(ptr));
        self.op(I::I64ExtendI32U);
        self.op(I::I64Const(i64::from(bytes)));
        self.op(I::I64Add);
        self.memory_bytes(mem);
        self.op(I::I64GtU);
        self.trap_if(oob);
    }

    /// Pushes the size of `mem` in bytes (an i64).
    fn memory_bytes(&mut self, mem: Mem) {
        self.op(I::MemorySize(mem.index));
        self.op(I::I64ExtendI32U);
        self.op(I::I64Const(i64::from(mem.page_log2)));
        self.op(I::I64Shl);
    }

    /// Translates a value of type `t` held in `src` (its flat values, in
    /// order) into fresh locals, which it returns.
    pub fn flat(
        &mut self,
        t: &Type,
        src: &[Slot],
        side: Side<'_>,
    ) -> Result<Vec<Slot>, Unsupported> {
        let one = |s: &[Slot]| s.first().copied().ok_or(Unsupported);
        let mut out = Vec::new();
        match t {
            Type::Bool => {
                let d = self.local(W::I32);
                self.op(I::LocalGet(one(src)?.local));
                self.op(I::I32Const(0));
                self.op(I::I32Ne);
                self.op(I::LocalSet(d));
                out.push(Slot {
                    local: d,
                    flat: Flat::I32,
                });
            }
            Type::U8 | Type::U16 | Type::S8 | Type::S16 | Type::Char | Type::Flags(_) => {
                let s = one(src)?.local;
                let d = self.local(W::I32);
                self.op(I::LocalGet(s));
                match t {
                    Type::U8 => {
                        self.op(I::I32Const(0xff));
                        self.op(I::I32And);
                    }
                    Type::U16 => {
                        self.op(I::I32Const(0xffff));
                        self.op(I::I32And);
                    }
                    Type::S8 => self.op(I::I32Extend8S),
                    Type::S16 => self.op(I::I32Extend16S),
                    Type::Flags(names) if names.len() < 32 => {
                        self.op(I::I32Const(((1u32 << names.len()) - 1) as i32));
                        self.op(I::I32And);
                    }
                    Type::Char => self.check_char(s),
                    _ => {}
                }
                self.op(I::LocalSet(d));
                out.push(Slot {
                    local: d,
                    flat: Flat::I32,
                });
            }
            Type::U32 | Type::S32 | Type::U64 | Type::S64 | Type::F32 | Type::F64 => {
                let s = one(src)?;
                let d = self.local(wasm_type(s.flat));
                self.op(I::LocalGet(s.local));
                self.op(I::LocalSet(d));
                out.push(Slot {
                    local: d,
                    flat: s.flat,
                });
            }
            Type::String | Type::List(_) => {
                let (p, l) = match src {
                    [p, l, ..] => (p.local, l.local),
                    _ => return Err(Unsupported),
                };
                let (dp, dl) = match t {
                    Type::List(e) => self.list(e, p, l, side)?,
                    _ => self.string(p, l, side),
                };
                for local in [dp, dl] {
                    out.push(Slot {
                        local,
                        flat: Flat::I32,
                    });
                }
            }
            Type::FixedList(e, n) => {
                if *n > MAX_UNROLLED {
                    return Err(Unsupported);
                }
                let fields: Vec<&Type> = (0..*n).map(|_| &**e).collect();
                out = self.flat_fields(&fields, src, side)?;
            }
            Type::Record(fs) => {
                let fields: Vec<&Type> = fs.iter().map(|(_, t)| t).collect();
                out = self.flat_fields(&fields, src, side)?;
            }
            Type::Tuple(ts) => {
                let fields: Vec<&Type> = ts.iter().collect();
                out = self.flat_fields(&fields, src, side)?;
            }
            Type::Variant(_) | Type::Enum(_) | Type::Option(_) | Type::Result { .. } => {
                out = self.flat_variant(t, src, side)?;
            }
            Type::Own(_) | Type::Borrow(_) => {
                let f = side.handle_import(t)?;
                let d = self.local(W::I32);
                self.op(I::LocalGet(one(src)?.local));
                self.op(I::Call(f));
                self.op(I::LocalSet(d));
                out.push(Slot {
                    local: d,
                    flat: Flat::I32,
                });
            }
            Type::Stream(_) | Type::Future(_) | Type::ErrorContext => return Err(Unsupported),
        }
        Ok(out)
    }

    fn flat_fields(
        &mut self,
        fields: &[&Type],
        src: &[Slot],
        side: Side<'_>,
    ) -> Result<Vec<Slot>, Unsupported> {
        let mut out = Vec::new();
        let mut at = 0;
        for t in fields {
            let mut flat = Vec::new();
            layout::flatten(t, &mut flat);
            let part = src.get(at..at + flat.len()).ok_or(Unsupported)?;
            out.extend(self.flat(t, part, side)?);
            at += flat.len();
        }
        Ok(out)
    }

    /// Traps unless the i32 in `local` is a Unicode scalar value.
    fn check_char(&mut self, local: u32) {
        self.op(I::LocalGet(local));
        self.op(I::I32Const(0x11_0000));
        self.op(I::I32GeU);
        self.op(I::LocalGet(local));
        self.op(I::I32Const(0xffff_f800_u32 as i32));
        self.op(I::I32And);
        self.op(I::I32Const(0xd800));
        self.op(I::I32Eq);
        self.op(I::I32Or);
        self.trap_if(TRAP_CHAR);
    }

    /// Opens the blocks of a `br_table` over `n` cases on the
    /// discriminant in `disc` (an out-of-range one traps); `case(k)` is
    /// called for each case in order, after which control leaves.
    fn dispatch(
        &mut self,
        disc: u32,
        n: u32,
        mut case: impl FnMut(&mut Body, u32) -> Result<(), Unsupported>,
    ) -> Result<(), Unsupported> {
        // block $end; block $bad; block $case(n-1) … block $case0
        for _ in 0..n + 2 {
            self.op(I::Block(BlockType::Empty));
        }
        self.op(I::LocalGet(disc));
        let targets: Vec<u32> = (0..n).collect();
        self.op(I::BrTable(targets.into(), n));
        for k in 0..n {
            self.op(I::End);
            case(self, k)?;
            self.op(I::Br(n - k));
        }
        // $bad
        self.op(I::End);
        self.op(I::I32Const(TRAP_DISCRIMINANT));
        self.op(I::Call(self.trap_func));
        self.op(I::Unreachable);
        self.op(I::End);
        Ok(())
    }

    fn flat_variant(
        &mut self,
        t: &Type,
        src: &[Slot],
        side: Side<'_>,
    ) -> Result<Vec<Slot>, Unsupported> {
        let cs = layout::cases(t).ok_or(Unsupported)?;
        let joined = layout::variant_payload(&cs);
        let disc = src.first().ok_or(Unsupported)?.local;
        let payload_src = src.get(1..1 + joined.len()).ok_or(Unsupported)?.to_vec();
        let d_disc = self.local(W::I32);
        let d_payload: Vec<Slot> = joined
            .iter()
            .map(|f| Slot {
                local: self.local(wasm_type(*f)),
                flat: *f,
            })
            .collect();
        let n = u32::try_from(cs.len()).map_err(|_| Unsupported)?;
        let cases: Vec<Option<Type>> = cs.iter().map(|c| c.cloned()).collect();
        self.dispatch(disc, n, |b, k| {
            b.op(I::I32Const(k as i32));
            b.op(I::LocalSet(d_disc));
            let Some(ct) = &cases[k as usize] else {
                return Ok(());
            };
            let mut want = Vec::new();
            layout::flatten(ct, &mut want);
            // The case's own values, out of the joined ones.
            let mut case_src = Vec::new();
            for (have, w) in payload_src.iter().zip(&want) {
                let l = b.local(wasm_type(*w));
                b.op(I::LocalGet(have.local));
                b.narrow(have.flat, *w);
                b.op(I::LocalSet(l));
                case_src.push(Slot { local: l, flat: *w });
            }
            let moved = b.flat(ct, &case_src, side)?;
            for (m, d) in moved.iter().zip(&d_payload) {
                b.op(I::LocalGet(m.local));
                b.widen(m.flat, d.flat);
                b.op(I::LocalSet(d.local));
            }
            Ok(())
        })?;
        let mut out = alloc::vec![Slot {
            local: d_disc,
            flat: Flat::I32
        }];
        out.extend(d_payload);
        Ok(out)
    }

    /// A joined flat value on the stack as the case's own type (`lift`'s
    /// `CoerceValueIter`).
    fn narrow(&mut self, have: Flat, want: Flat) {
        match (have, want) {
            (Flat::I32, Flat::F32) => self.op(I::F32ReinterpretI32),
            (Flat::I64, Flat::I32) => self.op(I::I32WrapI64),
            (Flat::I64, Flat::F32) => {
                self.op(I::I32WrapI64);
                self.op(I::F32ReinterpretI32);
            }
            (Flat::I64, Flat::F64) => self.op(I::F64ReinterpretI64),
            _ => {}
        }
    }

    /// A case's flat value on the stack as the joined type (`lower`'s
    /// padding of a variant's payload).
    fn widen(&mut self, have: Flat, want: Flat) {
        match (have, want) {
            (Flat::F32, Flat::I32) => self.op(I::I32ReinterpretF32),
            (Flat::I32, Flat::I64) => self.op(I::I64ExtendI32U),
            (Flat::F32, Flat::I64) => {
                self.op(I::I32ReinterpretF32);
                self.op(I::I64ExtendI32U);
            }
            (Flat::F64, Flat::I64) => self.op(I::I64ReinterpretF64),
            _ => {}
        }
    }

    /// A string at (`ptr`, `len`) copied to the writing side: its new
    /// (pointer, length) locals.
    fn string(&mut self, ptr: u32, len: u32, side: Side<'_>) -> (u32, u32) {
        let (dp, dl) = (self.local(W::I32), self.local(W::I32));
        self.op(I::LocalGet(ptr));
        self.op(I::LocalGet(len));
        self.op(I::Call(side.string));
        self.op(I::LocalSet(dl));
        self.op(I::LocalSet(dp));
        (dp, dl)
    }

    /// The elements of a list at (`ptr`, `len`) of the reading side,
    /// checked, copied into a fresh allocation of the writing side: its
    /// (pointer, length) locals.
    fn list(
        &mut self,
        e: &Type,
        ptr: u32,
        len: u32,
        side: Side<'_>,
    ) -> Result<(u32, u32), Unsupported> {
        let src = mem_of(side.src)?;
        let dst = mem_of(side.dst)?;
        let es = size(e);
        let ea = alignment(e);
        let bytes = self.local(W::I64);
        self.op(I::LocalGet(len));
        self.op(I::I64ExtendI32U);
        self.op(I::I64Const(i64::from(es)));
        self.op(I::I64Mul);
        self.op(I::LocalTee(bytes));
        self.op(I::I64Const(MAX_LIST_BYTES));
        self.op(I::I64GtU);
        self.trap_if(TRAP_LIST);
        if ea > 1 {
            self.op(I::LocalGet(ptr));
            self.op(I::I32Const((ea - 1) as i32));
            self.op(I::I32And);
            self.trap_if(TRAP_UNALIGNED);
        }
        self.op(I::LocalGet(ptr));
        self.op(I::I64ExtendI32U);
        self.op(I::LocalGet(bytes));
        self.op(I::I64Add);
        self.memory_bytes(src);
        self.op(I::I64GtU);
        self.trap_if(TRAP_LIST);
        let dp = self.local(W::I32);
        self.op(I::I32Const(ea as i32));
        self.op(I::LocalGet(bytes));
        self.op(I::I32WrapI64);
        self.op(I::I32Const(ALLOC_LIST));
        self.op(I::Call(side.alloc));
        self.op(I::LocalSet(dp));
        if bit_copy(e) {
            self.op(I::LocalGet(dp));
            self.op(I::LocalGet(ptr));
            self.op(I::LocalGet(bytes));
            self.op(I::I32WrapI64);
            self.op(I::MemoryCopy {
                src_mem: src.index,
                dst_mem: dst.index,
            });
            return Ok((dp, len));
        }
        let (i, s, d) = (self.local(W::I32), self.local(W::I32), self.local(W::I32));
        self.op(I::I32Const(0));
        self.op(I::LocalSet(i));
        self.op(I::Block(BlockType::Empty));
        self.op(I::Loop(BlockType::Empty));
        self.op(I::LocalGet(i));
        self.op(I::LocalGet(len));
        self.op(I::I32GeU);
        self.op(I::BrIf(1));
        for (base, to) in [(ptr, s), (dp, d)] {
            self.op(I::LocalGet(base));
            self.op(I::LocalGet(i));
            self.op(I::I32Const(es as i32));
            self.op(I::I32Mul);
            self.op(I::I32Add);
            self.op(I::LocalSet(to));
        }
        self.memory(e, s, 0, d, 0, side)?;
        self.op(I::LocalGet(i));
        self.op(I::I32Const(1));
        self.op(I::I32Add);
        self.op(I::LocalSet(i));
        self.op(I::Br(0));
        self.op(I::End);
        self.op(I::End);
        Ok((dp, len))
    }

    /// Copies `bytes` (1, 2, 4 or 8) from the reading side at `s`+`so` to
    /// the writing side at `d`+`do_`, as they are.
    fn copy(
        &mut self,
        bytes: u32,
        s: u32,
        so: u32,
        d: u32,
        do_: u32,
        side: Side<'_>,
    ) -> Result<(), Unsupported> {
        let (src, dst) = (mem_of(side.src)?, mem_of(side.dst)?);
        self.op(I::LocalGet(d));
        self.op(I::LocalGet(s));
        let (l, st) = match bytes {
            1 => (
                I::I32Load8U(memarg(so, src)),
                I::I32Store8(memarg(do_, dst)),
            ),
            2 => (
                I::I32Load16U(memarg(so, src)),
                I::I32Store16(memarg(do_, dst)),
            ),
            4 => (I::I32Load(memarg(so, src)), I::I32Store(memarg(do_, dst))),
            _ => (I::I64Load(memarg(so, src)), I::I64Store(memarg(do_, dst))),
        };
        self.op(l);
        self.op(st);
        Ok(())
    }

    /// Loads an unsigned integer of `bytes` (1, 2 or 4) from the reading
    /// side into a fresh i32 local.
    fn load_u32(
        &mut self,
        bytes: u32,
        s: u32,
        so: u32,
        side: Side<'_>,
    ) -> Result<u32, Unsupported> {
        let src = mem_of(side.src)?;
        let l = self.local(W::I32);
        self.op(I::LocalGet(s));
        self.op(match bytes {
            1 => I::I32Load8U(memarg(so, src)),
            2 => I::I32Load16U(memarg(so, src)),
            _ => I::I32Load(memarg(so, src)),
        });
        self.op(I::LocalSet(l));
        Ok(l)
    }

    /// Stores the i32 on the stack as `bytes` (1, 2 or 4) on the writing
    /// side at `d`+`do_` (the address must be pushed first).
    fn store_u32(&mut self, bytes: u32, do_: u32, side: Side<'_>) -> Result<(), Unsupported> {
        let dst = mem_of(side.dst)?;
        self.op(match bytes {
            1 => I::I32Store8(memarg(do_, dst)),
            2 => I::I32Store16(memarg(do_, dst)),
            _ => I::I32Store(memarg(do_, dst)),
        });
        Ok(())
    }

    /// Translates a value of type `t` from the reading side's memory at
    /// `s`+`so` to the writing side's at `d`+`do_` (both in bounds and
    /// aligned: the caller checked the whole range).
    pub fn memory(
        &mut self,
        t: &Type,
        s: u32,
        so: u32,
        d: u32,
        do_: u32,
        side: Side<'_>,
    ) -> Result<(), Unsupported> {
        match t {
            Type::U8 | Type::S8 => self.copy(1, s, so, d, do_, side)?,
            Type::U16 | Type::S16 => self.copy(2, s, so, d, do_, side)?,
            Type::U32 | Type::S32 | Type::F32 => self.copy(4, s, so, d, do_, side)?,
            Type::U64 | Type::S64 | Type::F64 => self.copy(8, s, so, d, do_, side)?,
            Type::Bool | Type::Char | Type::Flags(_) => {
                let bytes = size(t);
                let v = self.load_u32(bytes, s, so, side)?;
                self.op(I::LocalGet(d));
                self.op(I::LocalGet(v));
                match t {
                    Type::Bool => {
                        self.op(I::I32Const(0));
                        self.op(I::I32Ne);
                    }
                    Type::Char => self.check_char(v),
                    Type::Flags(names) if names.len() < 32 => {
                        self.op(I::I32Const(((1u32 << names.len()) - 1) as i32));
                        self.op(I::I32And);
                    }
                    _ => {}
                }
                self.store_u32(bytes, do_, side)?;
            }
            Type::String | Type::List(_) => {
                let p = self.load_u32(4, s, so, side)?;
                let l = self.load_u32(4, s, add(so, 4)?, side)?;
                let (dp, dl) = match t {
                    Type::List(e) => self.list(e, p, l, side)?,
                    _ => self.string(p, l, side),
                };
                for (v, off) in [(dp, do_), (dl, add(do_, 4)?)] {
                    self.op(I::LocalGet(d));
                    self.op(I::LocalGet(v));
                    self.store_u32(4, off, side)?;
                }
            }
            Type::FixedList(e, n) => {
                if *n > MAX_UNROLLED {
                    return Err(Unsupported);
                }
                let es = size(e);
                for i in 0..*n {
                    let off = es.checked_mul(i).ok_or(Unsupported)?;
                    self.memory(e, s, add(so, off)?, d, add(do_, off)?, side)?;
                }
            }
            Type::Record(_) | Type::Tuple(_) => {
                let fields: Vec<&Type> = match t {
                    Type::Record(fs) => fs.iter().map(|(_, t)| t).collect(),
                    Type::Tuple(ts) => ts.iter().collect(),
                    _ => Vec::new(),
                };
                let mut off = 0;
                for f in fields {
                    off = align_to(off, alignment(f));
                    self.memory(f, s, add(so, off)?, d, add(do_, off)?, side)?;
                    off = add(off, size(f))?;
                }
            }
            Type::Variant(_) | Type::Enum(_) | Type::Option(_) | Type::Result { .. } => {
                let cs = layout::cases(t).ok_or(Unsupported)?;
                let n = u32::try_from(cs.len()).map_err(|_| Unsupported)?;
                let ds = layout::discriminant_size(cs.len());
                let payload = align_to(
                    ds,
                    cs.iter().flatten().map(|t| alignment(t)).max().unwrap_or(1),
                );
                let disc = self.load_u32(ds, s, so, side)?;
                let cases: Vec<Option<Type>> = cs.iter().map(|c| c.cloned()).collect();
                let (pso, pdo) = (add(so, payload)?, add(do_, payload)?);
                self.dispatch(disc, n, |b, k| {
                    b.op(I::LocalGet(d));
                    b.op(I::I32Const(k as i32));
                    b.store_u32(ds, do_, side)?;
                    match &cases[k as usize] {
                        Some(ct) => b.memory(ct, s, pso, d, pdo, side),
                        None => Ok(()),
                    }
                })?;
            }
            Type::Own(_) | Type::Borrow(_) => {
                let f = side.handle_import(t)?;
                let h = self.load_u32(4, s, so, side)?;
                self.op(I::LocalGet(d));
                self.op(I::LocalGet(h));
                self.op(I::Call(f));
                self.store_u32(4, do_, side)?;
            }
            Type::Stream(_) | Type::Future(_) | Type::ErrorContext => return Err(Unsupported),
        }
        Ok(())
    }
}

/// Whether a list of `e` is copied as its bytes (no value needs checking
/// or translating).
fn bit_copy(e: &Type) -> bool {
    matches!(
        e,
        Type::U8
            | Type::S8
            | Type::U16
            | Type::S16
            | Type::U32
            | Type::S32
            | Type::U64
            | Type::S64
            | Type::F32
            | Type::F64
    )
}

/// The resource types `t` names, added to `out` once each.
pub fn resource_types(t: &Type, out: &mut Vec<ResourceType>) {
    match t {
        Type::Own(rt) | Type::Borrow(rt) if !out.contains(rt) => out.push(rt.clone()),
        Type::List(e) | Type::FixedList(e, _) | Type::Option(e) => resource_types(e, out),
        Type::Record(fs) => fs.iter().for_each(|(_, t)| resource_types(t, out)),
        Type::Tuple(ts) => ts.iter().for_each(|t| resource_types(t, out)),
        Type::Variant(cs) => cs
            .iter()
            .flat_map(|(_, t)| t)
            .for_each(|t| resource_types(t, out)),
        Type::Result { ok, err } => {
            ok.iter().chain(err).for_each(|t| resource_types(t, out));
        }
        _ => {}
    }
}

/// Whether moving values of `t` touches memory (strings and lists).
pub fn uses_memory(t: &Type) -> bool {
    match t {
        Type::String | Type::List(_) => true,
        Type::FixedList(e, _) | Type::Option(e) => uses_memory(e),
        Type::Record(fs) => fs.iter().any(|(_, t)| uses_memory(t)),
        Type::Tuple(ts) => ts.iter().any(uses_memory),
        Type::Variant(cs) => cs.iter().any(|(_, t)| t.as_ref().is_some_and(uses_memory)),
        Type::Result { ok, err } => {
            ok.as_deref().is_some_and(uses_memory) || err.as_deref().is_some_and(uses_memory)
        }
        _ => false,
    }
}
