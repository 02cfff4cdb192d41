//! Numeric operators: constants, integer and float arithmetic, comparisons,
//! conversions, reinterpretations and sign extension.
//!
//! Cranelift's instructions already have wasm's semantics for the cases that
//! matter: shifts and rotates take their amount modulo the width, `sdiv`,
//! `udiv`, `srem`, `urem` trap on a zero divisor and `sdiv` on overflow,
//! `fmin`/`fmax` propagate NaN and order the zeros, `nearest` rounds to even,
//! and `fcvt_to_{s,u}int` trap on NaN (bad conversion) and out-of-range
//! inputs (integer overflow), while the `_sat` forms saturate.

use cranelift_codegen::ir::{
    self, InstBuilder, MemFlagsData, Value,
    condcodes::{FloatCC, IntCC},
    immediates::{Ieee32, Ieee64},
    types,
};
use wasmparser::Operator;

use super::{TResult, Translator};

/// Binary integer/float instructions with a plain `(a, b) -> r` shape.
#[derive(Clone, Copy)]
enum Bin {
    Iadd,
    Isub,
    Imul,
    Sdiv,
    Udiv,
    Srem,
    Urem,
    And,
    Or,
    Xor,
    Shl,
    Sshr,
    Ushr,
    Rotl,
    Rotr,
    Fadd,
    Fsub,
    Fmul,
    Fdiv,
    Fmin,
    Fmax,
    Copysign,
}

/// Unary instructions with a plain `a -> r` shape.
#[derive(Clone, Copy)]
enum Un {
    Clz,
    Ctz,
    Popcnt,
    Fabs,
    Fneg,
    Sqrt,
    Ceil,
    Floor,
    Trunc,
    Nearest,
}

impl Translator<'_, '_> {
    /// Translates numeric operators; `false` if `op` is not one.
    pub(crate) fn numeric_operator(&mut self, op: &Operator<'_>) -> TResult<bool> {
        use Operator as O;
        use types::{F32, F64, I32, I64};
        match op {
            O::I32Const { value } => {
                let v = self.builder.ins().iconst(I32, i64::from(*value));
                self.push(v);
            }
            O::I64Const { value } => {
                let v = self.builder.ins().iconst(I64, *value);
                self.push(v);
            }
            O::F32Const { value } => {
                let v = self.builder.ins().f32const(Ieee32::with_bits(value.bits()));
                self.push(v);
            }
            O::F64Const { value } => {
                let v = self.builder.ins().f64const(Ieee64::with_bits(value.bits()));
                self.push(v);
            }

            O::I32Eqz | O::I64Eqz => {
                let a = self.pop();
                let c = self.builder.ins().icmp_imm_u(IntCC::Equal, a, 0);
                self.push_bool(c);
            }
            O::I32Eq | O::I64Eq => self.icmp(IntCC::Equal),
            O::I32Ne | O::I64Ne => self.icmp(IntCC::NotEqual),
            O::I32LtS | O::I64LtS => self.icmp(IntCC::SignedLessThan),
            O::I32LtU | O::I64LtU => self.icmp(IntCC::UnsignedLessThan),
            O::I32GtS | O::I64GtS => self.icmp(IntCC::SignedGreaterThan),
            O::I32GtU | O::I64GtU => self.icmp(IntCC::UnsignedGreaterThan),
            O::I32LeS | O::I64LeS => self.icmp(IntCC::SignedLessThanOrEqual),
            O::I32LeU | O::I64LeU => self.icmp(IntCC::UnsignedLessThanOrEqual),
            O::I32GeS | O::I64GeS => self.icmp(IntCC::SignedGreaterThanOrEqual),
            O::I32GeU | O::I64GeU => self.icmp(IntCC::UnsignedGreaterThanOrEqual),
            O::F32Eq | O::F64Eq => self.fcmp(FloatCC::Equal),
            O::F32Ne | O::F64Ne => self.fcmp(FloatCC::NotEqual),
            O::F32Lt | O::F64Lt => self.fcmp(FloatCC::LessThan),
            O::F32Gt | O::F64Gt => self.fcmp(FloatCC::GreaterThan),
            O::F32Le | O::F64Le => self.fcmp(FloatCC::LessThanOrEqual),
            O::F32Ge | O::F64Ge => self.fcmp(FloatCC::GreaterThanOrEqual),

            O::I32Clz | O::I64Clz => self.unary(Un::Clz),
            O::I32Ctz | O::I64Ctz => self.unary(Un::Ctz),
            O::I32Popcnt | O::I64Popcnt => self.unary(Un::Popcnt),
            O::I32Add | O::I64Add => self.binary(Bin::Iadd),
            O::I32Sub | O::I64Sub => self.binary(Bin::Isub),
            O::I32Mul | O::I64Mul => self.binary(Bin::Imul),
            O::I32DivS | O::I64DivS => self.binary(Bin::Sdiv),
            O::I32DivU | O::I64DivU => self.binary(Bin::Udiv),
            O::I32RemS | O::I64RemS => self.binary(Bin::Srem),
            O::I32RemU | O::I64RemU => self.binary(Bin::Urem),
            O::I32And | O::I64And => self.binary(Bin::And),
            O::I32Or | O::I64Or => self.binary(Bin::Or),
            O::I32Xor | O::I64Xor => self.binary(Bin::Xor),
            O::I32Shl | O::I64Shl => self.binary(Bin::Shl),
            O::I32ShrS | O::I64ShrS => self.binary(Bin::Sshr),
            O::I32ShrU | O::I64ShrU => self.binary(Bin::Ushr),
            O::I32Rotl | O::I64Rotl => self.binary(Bin::Rotl),
            O::I32Rotr | O::I64Rotr => self.binary(Bin::Rotr),

            O::F32Abs | O::F64Abs => self.unary(Un::Fabs),
            O::F32Neg | O::F64Neg => self.unary(Un::Fneg),
            O::F32Ceil | O::F64Ceil => self.unary(Un::Ceil),
            O::F32Floor | O::F64Floor => self.unary(Un::Floor),
            O::F32Trunc | O::F64Trunc => self.unary(Un::Trunc),
            O::F32Nearest | O::F64Nearest => self.unary(Un::Nearest),
            O::F32Sqrt | O::F64Sqrt => self.unary(Un::Sqrt),
            O::F32Add | O::F64Add => self.binary(Bin::Fadd),
            O::F32Sub | O::F64Sub => self.binary(Bin::Fsub),
            O::F32Mul | O::F64Mul => self.binary(Bin::Fmul),
            O::F32Div | O::F64Div => self.binary(Bin::Fdiv),
            O::F32Min | O::F64Min => self.binary(Bin::Fmin),
            O::F32Max | O::F64Max => self.binary(Bin::Fmax),
            O::F32Copysign | O::F64Copysign => self.binary(Bin::Copysign),

            O::I32WrapI64 => self.convert(|b, a| b.ins().ireduce(I32, a)),
            O::I64ExtendI32S => self.convert(|b, a| b.ins().sextend(I64, a)),
            O::I64ExtendI32U => self.convert(|b, a| b.ins().uextend(I64, a)),
            O::I32TruncF32S | O::I32TruncF64S => self.convert(|b, a| b.ins().fcvt_to_sint(I32, a)),
            O::I32TruncF32U | O::I32TruncF64U => self.convert(|b, a| b.ins().fcvt_to_uint(I32, a)),
            O::I64TruncF32S | O::I64TruncF64S => self.convert(|b, a| b.ins().fcvt_to_sint(I64, a)),
            O::I64TruncF32U | O::I64TruncF64U => self.convert(|b, a| b.ins().fcvt_to_uint(I64, a)),
            O::I32TruncSatF32S | O::I32TruncSatF64S => {
                self.convert(|b, a| b.ins().fcvt_to_sint_sat(I32, a))
            }
            O::I32TruncSatF32U | O::I32TruncSatF64U => {
                self.convert(|b, a| b.ins().fcvt_to_uint_sat(I32, a))
            }
            O::I64TruncSatF32S | O::I64TruncSatF64S => {
                self.convert(|b, a| b.ins().fcvt_to_sint_sat(I64, a))
            }
            O::I64TruncSatF32U | O::I64TruncSatF64U => {
                self.convert(|b, a| b.ins().fcvt_to_uint_sat(I64, a))
            }
            O::F32ConvertI32S | O::F32ConvertI64S => {
                self.convert(|b, a| b.ins().fcvt_from_sint(F32, a))
            }
            O::F32ConvertI32U | O::F32ConvertI64U => {
                self.convert(|b, a| b.ins().fcvt_from_uint(F32, a))
            }
            O::F64ConvertI32S | O::F64ConvertI64S => {
                self.convert(|b, a| b.ins().fcvt_from_sint(F64, a))
            }
            O::F64ConvertI32U | O::F64ConvertI64U => {
                self.convert(|b, a| b.ins().fcvt_from_uint(F64, a))
            }
            O::F32DemoteF64 => self.convert(|b, a| b.ins().fdemote(F32, a)),
            O::F64PromoteF32 => self.convert(|b, a| b.ins().fpromote(F64, a)),
            O::I32ReinterpretF32 => self.bitcast(I32),
            O::I64ReinterpretF64 => self.bitcast(I64),
            O::F32ReinterpretI32 => self.bitcast(F32),
            O::F64ReinterpretI64 => self.bitcast(F64),

            O::I32Extend8S => self.sign_extend(I32, types::I8),
            O::I32Extend16S => self.sign_extend(I32, types::I16),
            O::I64Extend8S => self.sign_extend(I64, types::I8),
            O::I64Extend16S => self.sign_extend(I64, types::I16),
            O::I64Extend32S => self.sign_extend(I64, I32),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Pushes a Cranelift truth value (`i8`) as a wasm `i32` 0 or 1.
    fn push_bool(&mut self, c: Value) {
        let v = self.builder.ins().uextend(types::I32, c);
        self.push(v);
    }

    fn icmp(&mut self, cc: IntCC) {
        let (a, b) = self.pop2();
        let c = self.builder.ins().icmp(cc, a, b);
        self.push_bool(c);
    }

    fn fcmp(&mut self, cc: FloatCC) {
        let (a, b) = self.pop2();
        let c = self.builder.ins().fcmp(cc, a, b);
        self.push_bool(c);
    }

    fn unary(&mut self, op: Un) {
        let a = self.pop();
        let b = self.builder.ins();
        let v = match op {
            Un::Clz => b.clz(a),
            Un::Ctz => b.ctz(a),
            Un::Popcnt => b.popcnt(a),
            Un::Fabs => b.fabs(a),
            Un::Fneg => b.fneg(a),
            Un::Sqrt => b.sqrt(a),
            Un::Ceil => b.ceil(a),
            Un::Floor => b.floor(a),
            Un::Trunc => b.trunc(a),
            Un::Nearest => b.nearest(a),
        };
        self.push(v);
    }

    fn binary(&mut self, op: Bin) {
        let (a, b) = self.pop2();
        let v = match op {
            Bin::Iadd => self.builder.ins().iadd(a, b),
            Bin::Isub => self.builder.ins().isub(a, b),
            Bin::Imul => self.builder.ins().imul(a, b),
            Bin::Sdiv => self.builder.ins().sdiv(a, b),
            Bin::Udiv => self.builder.ins().udiv(a, b),
            Bin::Srem => {
                // wasm: MIN rem_s -1 is 0, never a trap. x rem -1 == x rem 1
                // for every x, so divide by 1 instead of -1.
                let ty = self.builder.func.dfg.value_type(b);
                let minus_one = self.builder.ins().icmp_imm_s(IntCC::Equal, b, -1);
                let one = self.builder.ins().iconst(ty, 1);
                let divisor = self.builder.ins().select(minus_one, one, b);
                self.builder.ins().srem(a, divisor)
            }
            Bin::Urem => self.builder.ins().urem(a, b),
            Bin::And => self.builder.ins().band(a, b),
            Bin::Or => self.builder.ins().bor(a, b),
            Bin::Xor => self.builder.ins().bxor(a, b),
            Bin::Shl => self.builder.ins().ishl(a, b),
            Bin::Sshr => self.builder.ins().sshr(a, b),
            Bin::Ushr => self.builder.ins().ushr(a, b),
            Bin::Rotl => self.builder.ins().rotl(a, b),
            Bin::Rotr => self.builder.ins().rotr(a, b),
            Bin::Fadd => self.builder.ins().fadd(a, b),
            Bin::Fsub => self.builder.ins().fsub(a, b),
            Bin::Fmul => self.builder.ins().fmul(a, b),
            Bin::Fdiv => self.builder.ins().fdiv(a, b),
            Bin::Fmin => self.builder.ins().fmin(a, b),
            Bin::Fmax => self.builder.ins().fmax(a, b),
            Bin::Copysign => self.builder.ins().fcopysign(a, b),
        };
        self.push(v);
    }

    fn convert(
        &mut self,
        f: impl FnOnce(&mut cranelift_frontend::FunctionBuilder<'_>, Value) -> Value,
    ) {
        let a = self.pop();
        let v = f(&mut self.builder, a);
        self.push(v);
    }

    fn bitcast(&mut self, to: ir::Type) {
        let a = self.pop();
        let v = self.builder.ins().bitcast(to, MemFlagsData::new(), a);
        self.push(v);
    }

    /// Sign-extends the low `from` bits of the top operand to `to`.
    fn sign_extend(&mut self, to: ir::Type, from: ir::Type) {
        let a = self.pop();
        let narrow = self.builder.ins().ireduce(from, a);
        let v = self.builder.ins().sextend(to, narrow);
        self.push(v);
    }
}
