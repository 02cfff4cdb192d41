//! GC's instructions: `i31ref`s, `ref.eq`, the conversions between
//! `externref` and `anyref`, type tests and casts (`ref.test`, `ref.cast`,
//! `br_on_cast`, `br_on_cast_fail`), and structs and arrays.
//!
//! `externref` and `anyref` values share one representation (see
//! `vm::any_ref`): 0 is null, an odd value an `i31ref` (the 31 bits above
//! bit 0), a value ending in `10` a host value, anything else the address
//! of a GC object (16-byte aligned; layout in [`crate::gc`]). So the
//! conversions are free, and a type test looks at the low bits first and
//! only then, for objects, at the header.

use alloc::vec::Vec;

use cranelift_codegen::ir::{self, BlockArg, InstBuilder, Value, condcodes::IntCC, types};
use wasmparser::{AbstractHeapType as A, HeapType, Operator, UnpackedIndex};

use super::{TResult, TranslateError, Translator};
use crate::gc::Storage;
use crate::trap::codes;

/// What a type test checks of a non-null reference.
enum NonNullTest {
    /// nothing passes (the bottom types, and GC objects that cannot exist)
    Never,
    /// everything passes (the top types)
    Always,
    /// `i31ref`s pass
    I31,
    /// `i31ref`s and GC objects pass (`eq`)
    Eq,
    /// a test that reads behind the reference
    Deep(DeepTest),
}

/// A type test that reads the object or function a reference points to.
#[derive(Clone, Copy)]
enum DeepTest {
    /// GC objects of this kind pass (`struct`, `array`)
    ObjectKind(u8),
    /// GC objects of this module type or a subtype pass
    ObjectType(u32),
    /// functions of this module type or a subtype pass
    FuncType(u32),
}

impl Translator<'_, '_> {
    /// Translates GC's heap-free reference operators; `false` if `op` is not one.
    pub(crate) fn gc_operator(&mut self, op: &Operator<'_>, offset: usize) -> TResult<bool> {
        match op {
            Operator::RefI31 => {
                let v = self.pop();
                let shifted = self.builder.ins().ishl_imm_u(v, 1);
                let tagged = self.builder.ins().bor_imm_u(shifted, 1);
                let r = self.builder.ins().uextend(self.pointer, tagged);
                self.push(r);
            }
            Operator::I31GetS | Operator::I31GetU => {
                let r = self.pop();
                self.builder.ins().trapz(r, codes::NULL_REFERENCE);
                let low = self.builder.ins().ireduce(types::I32, r);
                let v = if matches!(op, Operator::I31GetS) {
                    self.builder.ins().sshr_imm_u(low, 1)
                } else {
                    self.builder.ins().ushr_imm_u(low, 1)
                };
                self.push(v);
            }
            Operator::RefEq => {
                let (a, b) = self.pop2();
                let c = self.builder.ins().icmp(IntCC::Equal, a, b);
                let v = self.builder.ins().uextend(types::I32, c);
                self.push(v);
            }
            // One representation for both hierarchies.
            Operator::AnyConvertExtern | Operator::ExternConvertAny => {}
            Operator::RefTestNonNull { hty } | Operator::RefTestNullable { hty } => {
                let nullable = matches!(op, Operator::RefTestNullable { .. });
                let r = self.pop();
                let t = self.type_test(r, nullable, *hty, offset)?;
                let v = self.builder.ins().uextend(types::I32, t);
                self.push(v);
            }
            Operator::RefCastNonNull { hty } | Operator::RefCastNullable { hty } => {
                let nullable = matches!(op, Operator::RefCastNullable { .. });
                let r = self.pop();
                let t = self.type_test(r, nullable, *hty, offset)?;
                self.builder.ins().trapz(t, codes::CAST_FAILURE);
                self.push(r);
            }
            Operator::BrOnCast {
                relative_depth,
                to_ref_type,
                ..
            }
            | Operator::BrOnCastFail {
                relative_depth,
                to_ref_type,
                ..
            } => {
                let on_success = matches!(op, Operator::BrOnCast { .. });
                let r = self.pop();
                let t = self.type_test(
                    r,
                    to_ref_type.is_nullable(),
                    to_ref_type.heap_type(),
                    offset,
                )?;
                let (target, n) = self.branch_target(*relative_depth);
                let mut a: Vec<BlockArg> = self
                    .peek_n(n - 1)
                    .iter()
                    .map(|v| BlockArg::Value(*v))
                    .collect();
                a.push(BlockArg::Value(r));
                let fallthrough = self.builder.create_block();
                if on_success {
                    self.builder.ins().brif(t, target, &a, fallthrough, &[]);
                } else {
                    self.builder.ins().brif(t, fallthrough, &[], target, &a);
                }
                self.builder.seal_block(fallthrough);
                self.builder.switch_to_block(fallthrough);
                self.push(r);
            }
            _ => return self.object_operator(op, offset),
        }
        Ok(true)
    }

    /// The layout of struct type `t`.
    fn struct_layout(&self, t: u32) -> TResult<crate::gc::StructLayout> {
        crate::gc::struct_layout(self.env.info(), t)
            .ok_or_else(|| TranslateError::Codegen("not a struct type".into()))
    }

    /// The element storage of array type `t`.
    fn array_element(&self, t: u32) -> TResult<Storage> {
        crate::gc::array_layout(self.env.info(), t)
            .map(|l| l.element)
            .ok_or_else(|| TranslateError::Codegen("not an array type".into()))
    }

    /// Loads a field or element at `addr` (`signed`: `_s` for packed ones).
    fn load_storage(&mut self, storage: Storage, addr: Value, signed: bool) -> TResult<Value> {
        let f = ir::MemFlagsData::trusted();
        Ok(match storage {
            Storage::I8 if signed => self.builder.ins().sload8(types::I32, f, addr, 0),
            Storage::I8 => self.builder.ins().uload8(types::I32, f, addr, 0),
            Storage::I16 if signed => self.builder.ins().sload16(types::I32, f, addr, 0),
            Storage::I16 => self.builder.ins().uload16(types::I32, f, addr, 0),
            Storage::Val(t) => {
                let ty = self.val_type(t, 0)?;
                self.builder.ins().load(ty, f, addr, 0)
            }
        })
    }

    /// Stores `v` as a field or element at `addr` (packed ones truncated).
    fn store_storage(&mut self, storage: Storage, addr: Value, v: Value) {
        let f = ir::MemFlagsData::trusted();
        match storage {
            Storage::I8 => self.builder.ins().istore8(f, v, addr, 0),
            Storage::I16 => self.builder.ins().istore16(f, v, addr, 0),
            Storage::Val(_) => self.builder.ins().store(f, v, addr, 0),
        };
    }

    /// The address of element `index` (an i32) of `array`: traps on null
    /// and out of bounds.
    fn element_addr(&mut self, array: Value, index: Value, unit: u32) -> Value {
        self.builder.ins().trapz(array, codes::NULL_REFERENCE);
        let len = self.array_len(array);
        let oob = self
            .builder
            .ins()
            .icmp(IntCC::UnsignedGreaterThanOrEqual, index, len);
        self.builder.ins().trapnz(oob, codes::ARRAY_OUT_OF_BOUNDS);
        self.element_addr_unchecked(array, index, unit)
    }

    fn element_addr_unchecked(&mut self, array: Value, index: Value, unit: u32) -> Value {
        let i = self.builder.ins().uextend(self.pointer, index);
        let off = self.builder.ins().imul_imm_u(i, i64::from(unit));
        let base = self
            .builder
            .ins()
            .iadd_imm_u(array, i64::from(crate::gc::HEADER));
        self.builder.ins().iadd(base, off)
    }

    /// An array's length (an i32); `array` is not null.
    fn array_len(&mut self, array: Value) -> Value {
        self.builder.ins().load(
            types::I32,
            ir::MemFlagsData::trusted(),
            array,
            crate::gc::LENGTH,
        )
    }

    /// Traps with an out-of-bounds array access unless `at + len` (i32s,
    /// no wrap) is at most `array`'s length.
    fn check_range(&mut self, array: Value, at: Value, len: Value) {
        let at = self.builder.ins().uextend(types::I64, at);
        let n = self.builder.ins().uextend(types::I64, len);
        let end = self.builder.ins().iadd(at, n);
        let size = self.array_len(array);
        let size = self.builder.ins().uextend(types::I64, size);
        let oob = self
            .builder
            .ins()
            .icmp(IntCC::UnsignedGreaterThan, end, size);
        self.builder.ins().trapnz(oob, codes::ARRAY_OUT_OF_BOUNDS);
    }

    /// Stores `v` into elements `at..at + len` of `array` (checked before).
    fn fill(&mut self, array: Value, at: Value, len: Value, v: Value, storage: Storage) {
        let head = self.builder.create_block();
        let body = self.builder.create_block();
        let exit = self.builder.create_block();
        let i = self.builder.append_block_param(head, types::I32);
        let zero = self.builder.ins().iconst(types::I32, 0);
        self.builder.ins().jump(head, &[BlockArg::Value(zero)]);
        self.builder.switch_to_block(head);
        let done = self
            .builder
            .ins()
            .icmp(IntCC::UnsignedGreaterThanOrEqual, i, len);
        self.builder.ins().brif(done, exit, &[], body, &[]);
        self.builder.seal_block(body);
        self.builder.switch_to_block(body);
        let index = self.builder.ins().iadd(at, i);
        let addr = self.element_addr_unchecked(array, index, storage.size());
        self.store_storage(storage, addr, v);
        let next = self.builder.ins().iadd_imm_u(i, 1);
        self.builder.ins().jump(head, &[BlockArg::Value(next)]);
        self.builder.seal_block(head);
        self.builder.seal_block(exit);
        self.builder.switch_to_block(exit);
    }

    /// Translates struct and array operators; `false` if `op` is not one.
    fn object_operator(&mut self, op: &Operator<'_>, _offset: usize) -> TResult<bool> {
        match *op {
            Operator::StructNew {
                struct_type_index: t,
            }
            | Operator::StructNewDefault {
                struct_type_index: t,
            } => {
                let layout = self.struct_layout(t)?;
                let values = if matches!(op, Operator::StructNew { .. }) {
                    self.pop_n(layout.fields.len())
                } else {
                    Vec::new()
                };
                let one = self.builder.ins().iconst(types::I32, 1);
                let obj = self.env.gc_alloc(&mut self.builder, t, one, layout.body);
                for ((at, storage), v) in layout.fields.iter().zip(values) {
                    let addr = self.builder.ins().iadd_imm_u(obj, i64::from(*at));
                    self.store_storage(*storage, addr, v);
                }
                self.push(obj);
            }
            Operator::StructGet {
                struct_type_index: t,
                field_index: f,
            }
            | Operator::StructGetS {
                struct_type_index: t,
                field_index: f,
            }
            | Operator::StructGetU {
                struct_type_index: t,
                field_index: f,
            } => {
                let (at, storage) = self.struct_layout(t)?.fields[f as usize];
                let obj = self.pop();
                self.builder.ins().trapz(obj, codes::NULL_REFERENCE);
                let addr = self.builder.ins().iadd_imm_u(obj, i64::from(at));
                let signed = matches!(op, Operator::StructGetS { .. });
                let v = self.load_storage(storage, addr, signed)?;
                self.push(v);
            }
            Operator::StructSet {
                struct_type_index: t,
                field_index: f,
            } => {
                let (at, storage) = self.struct_layout(t)?.fields[f as usize];
                let (obj, v) = self.pop2();
                self.builder.ins().trapz(obj, codes::NULL_REFERENCE);
                let addr = self.builder.ins().iadd_imm_u(obj, i64::from(at));
                self.store_storage(storage, addr, v);
            }
            Operator::ArrayNew {
                array_type_index: t,
            }
            | Operator::ArrayNewDefault {
                array_type_index: t,
            } => {
                let storage = self.array_element(t)?;
                let len = self.pop();
                let init = if matches!(op, Operator::ArrayNew { .. }) {
                    Some(self.pop())
                } else {
                    None
                };
                let obj = self.env.gc_alloc(&mut self.builder, t, len, storage.size());
                if let Some(v) = init {
                    let zero = self.builder.ins().iconst(types::I32, 0);
                    self.fill(obj, zero, len, v, storage);
                }
                self.push(obj);
            }
            Operator::ArrayNewFixed {
                array_type_index: t,
                array_size: n,
            } => {
                let storage = self.array_element(t)?;
                let values = self.pop_n(n as usize);
                let len = self.builder.ins().iconst(types::I32, i64::from(n));
                let obj = self.env.gc_alloc(&mut self.builder, t, len, storage.size());
                for (i, v) in values.into_iter().enumerate() {
                    let at = crate::gc::HEADER + i as u32 * storage.size();
                    let addr = self.builder.ins().iadd_imm_u(obj, i64::from(at));
                    self.store_storage(storage, addr, v);
                }
                self.push(obj);
            }
            Operator::ArrayNewData {
                array_type_index: t,
                array_data_index: d,
            }
            | Operator::ArrayNewElem {
                array_type_index: t,
                array_elem_index: d,
            } => {
                let storage = self.array_element(t)?;
                let (offset, len) = self.pop2();
                let from_data = matches!(op, Operator::ArrayNewData { .. });
                let obj = self.env.array_new_segment(
                    &mut self.builder,
                    t,
                    d,
                    from_data,
                    offset,
                    len,
                    storage.size(),
                );
                self.push(obj);
            }
            Operator::ArrayGet {
                array_type_index: t,
            }
            | Operator::ArrayGetS {
                array_type_index: t,
            }
            | Operator::ArrayGetU {
                array_type_index: t,
            } => {
                let storage = self.array_element(t)?;
                let (array, index) = self.pop2();
                let addr = self.element_addr(array, index, storage.size());
                let signed = matches!(op, Operator::ArrayGetS { .. });
                let v = self.load_storage(storage, addr, signed)?;
                self.push(v);
            }
            Operator::ArraySet {
                array_type_index: t,
            } => {
                let storage = self.array_element(t)?;
                let (array, index, v) = self.pop3();
                let addr = self.element_addr(array, index, storage.size());
                self.store_storage(storage, addr, v);
            }
            Operator::ArrayLen => {
                let array = self.pop();
                self.builder.ins().trapz(array, codes::NULL_REFERENCE);
                let len = self.array_len(array);
                self.push(len);
            }
            Operator::ArrayFill {
                array_type_index: t,
            } => {
                let storage = self.array_element(t)?;
                let len = self.pop();
                let (array, at, v) = self.pop3();
                self.builder.ins().trapz(array, codes::NULL_REFERENCE);
                self.check_range(array, at, len);
                self.fill(array, at, len, v, storage);
            }
            Operator::ArrayCopy {
                array_type_index_dst: t,
                ..
            } => {
                let unit = self.array_element(t)?.size();
                let (src, src_at, len) = self.pop3();
                let (dst, dst_at) = self.pop2();
                self.builder.ins().trapz(dst, codes::NULL_REFERENCE);
                self.builder.ins().trapz(src, codes::NULL_REFERENCE);
                self.env
                    .array_copy(&mut self.builder, dst, dst_at, src, src_at, len, unit);
            }
            Operator::ArrayInitData {
                array_type_index: t,
                array_data_index: d,
            }
            | Operator::ArrayInitElem {
                array_type_index: t,
                array_elem_index: d,
            } => {
                let unit = self.array_element(t)?.size();
                let (dst, src, len) = self.pop3();
                let array = self.pop();
                self.builder.ins().trapz(array, codes::NULL_REFERENCE);
                let from_data = matches!(op, Operator::ArrayInitData { .. });
                self.env.array_init_segment(
                    &mut self.builder,
                    array,
                    d,
                    from_data,
                    dst,
                    src,
                    len,
                    unit,
                );
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Whether reference `r` is of type `(ref null? hty)`: an `i8`, 1 or 0.
    fn type_test(
        &mut self,
        r: Value,
        nullable: bool,
        hty: HeapType,
        offset: usize,
    ) -> TResult<Value> {
        let unsupported = || TranslateError::Unsupported {
            offset,
            feature: "gc",
        };
        let test = match hty {
            HeapType::Abstract { shared: false, ty } => match ty {
                A::None | A::NoFunc | A::NoExtern | A::NoExn => NonNullTest::Never,
                A::Any | A::Func | A::Extern | A::Exn => NonNullTest::Always,
                A::Eq => NonNullTest::Eq,
                A::I31 => NonNullTest::I31,
                A::Struct => NonNullTest::Deep(DeepTest::ObjectKind(crate::gc::KIND_STRUCT)),
                A::Array => NonNullTest::Deep(DeepTest::ObjectKind(crate::gc::KIND_ARRAY)),
                _ => return Err(unsupported()),
            },
            HeapType::Concrete(UnpackedIndex::Module(t)) => {
                if self.env.info().type_is_func[t as usize] {
                    NonNullTest::Deep(DeepTest::FuncType(t))
                } else {
                    NonNullTest::Deep(DeepTest::ObjectType(t))
                }
            }
            _ => return Err(unsupported()),
        };
        let is_null = self.builder.ins().icmp_imm_u(IntCC::Equal, r, 0);
        let if_null = self.builder.ins().iconst(types::I8, i64::from(nullable));
        let null_ok = self.builder.ins().band(is_null, if_null);
        Ok(match test {
            NonNullTest::Never => null_ok,
            NonNullTest::Always => {
                let non_null = self.builder.ins().bxor_imm_u(is_null, 1);
                self.builder.ins().bor(non_null, if_null)
            }
            NonNullTest::I31 => {
                let tag = self.builder.ins().band_imm_u(r, 1);
                let is_i31 = self.builder.ins().icmp_imm_u(IntCC::NotEqual, tag, 0);
                self.builder.ins().bor(is_i31, null_ok)
            }
            NonNullTest::Eq => {
                // Anything but null and host values.
                let tag = self.builder.ins().band_imm_u(r, 3);
                let not_host = self.builder.ins().icmp_imm_u(
                    IntCC::NotEqual,
                    tag,
                    crate::vm::any_ref::HOST_TAG as i64,
                );
                let non_null = self.builder.ins().bxor_imm_u(is_null, 1);
                let eq = self.builder.ins().band(not_host, non_null);
                self.builder.ins().bor(eq, null_ok)
            }
            NonNullTest::Deep(deep) => {
                // These read behind the pointer: only for a value that is one.
                let guard = match deep {
                    DeepTest::FuncType(_) => self.builder.ins().bxor_imm_u(is_null, 1),
                    _ => {
                        let tag = self.builder.ins().band_imm_u(r, 3);
                        let aligned = self.builder.ins().icmp_imm_u(IntCC::Equal, tag, 0);
                        let non_null = self.builder.ins().bxor_imm_u(is_null, 1);
                        self.builder.ins().band(aligned, non_null)
                    }
                };
                let check = self.builder.create_block();
                let done = self.builder.create_block();
                let result = self.builder.append_block_param(done, types::I8);
                self.builder
                    .ins()
                    .brif(guard, check, &[], done, &[BlockArg::Value(null_ok)]);
                self.builder.seal_block(check);
                self.builder.switch_to_block(check);
                let ok = match deep {
                    DeepTest::FuncType(t) => self.env.func_has_type(&mut self.builder, r, t),
                    DeepTest::ObjectType(t) => self.env.object_has_type(&mut self.builder, r, t),
                    DeepTest::ObjectKind(kind) => {
                        let k = self.builder.ins().uload8(
                            types::I32,
                            ir::MemFlagsData::trusted(),
                            r,
                            crate::gc::KIND,
                        );
                        self.builder
                            .ins()
                            .icmp_imm_u(IntCC::Equal, k, i64::from(kind))
                    }
                };
                self.builder.ins().jump(done, &[BlockArg::Value(ok)]);
                self.builder.seal_block(done);
                self.builder.switch_to_block(done);
                result
            }
        })
    }
}
