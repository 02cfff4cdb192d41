//! GC's reference instructions that need no heap: `i31ref`s, `ref.eq`, the
//! conversions between `externref` and `anyref`, and type tests and casts
//! (`ref.test`, `ref.cast`, `br_on_cast`, `br_on_cast_fail`).
//!
//! `externref` and `anyref` values share one representation (see
//! `vm::any_ref`): 0 is null, an odd value an `i31ref` (the 31 bits above
//! bit 0), a value ending in `10` a host value. So the conversions are
//! free, and a type test of GC's abstract types looks at the low bits.
//! GC objects (structs and arrays) do not exist yet: their types are
//! refused when a module is parsed, so a test for `struct`, `array` or a
//! concrete struct type fails for every non-null value, and `eq` holds
//! exactly the `i31ref`s.

use alloc::vec::Vec;

use cranelift_codegen::ir::{BlockArg, InstBuilder, Value, condcodes::IntCC, types};
use wasmparser::{AbstractHeapType as A, HeapType, Operator, UnpackedIndex};

use super::{TResult, TranslateError, Translator};
use crate::trap::codes;

/// What a type test checks of a non-null reference.
enum NonNullTest {
    /// nothing passes (the bottom types, and GC objects that cannot exist)
    Never,
    /// everything passes (the top types)
    Always,
    /// `i31ref`s pass
    I31,
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
                let (target, n) = self.branch_target_of(*relative_depth);
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
                A::None | A::NoFunc | A::NoExtern | A::NoExn | A::Struct | A::Array => {
                    NonNullTest::Never
                }
                A::Any | A::Func | A::Extern | A::Exn => NonNullTest::Always,
                A::Eq | A::I31 => NonNullTest::I31,
                _ => return Err(unsupported()),
            },
            HeapType::Concrete(UnpackedIndex::Module(t)) => NonNullTest::FuncType(t),
            _ => return Err(unsupported()),
        };
        let is_null = self.builder.ins().icmp_imm_u(IntCC::Equal, r, 0);
        let if_null = self.builder.ins().iconst(types::I8, i64::from(nullable));
        Ok(match test {
            NonNullTest::Never => self.builder.ins().band(is_null, if_null),
            NonNullTest::Always => {
                let non_null = self.builder.ins().bxor_imm_u(is_null, 1);
                self.builder.ins().bor(non_null, if_null)
            }
            NonNullTest::I31 => {
                let tag = self.builder.ins().band_imm_u(r, 1);
                let is_i31 = self.builder.ins().icmp_imm_u(IntCC::NotEqual, tag, 0);
                let null_ok = self.builder.ins().band(is_null, if_null);
                self.builder.ins().bor(is_i31, null_ok)
            }
            NonNullTest::FuncType(t) => {
                // The callee's type id is behind the pointer: test null first.
                let check = self.builder.create_block();
                let done = self.builder.create_block();
                let result = self.builder.append_block_param(done, types::I8);
                self.builder
                    .ins()
                    .brif(is_null, done, &[BlockArg::Value(if_null)], check, &[]);
                self.builder.seal_block(check);
                self.builder.switch_to_block(check);
                let ok = self.env.func_has_type(&mut self.builder, r, t);
                self.builder.ins().jump(done, &[BlockArg::Value(ok)]);
                self.builder.seal_block(done);
                self.builder.switch_to_block(done);
                result
            }
        })
    }
}
