//! 128-bit SIMD operators (the Wasm 2.0 `simd` feature, and Wasm 3.0's
//! relaxed SIMD on top of it).
//!
//! Every `v128` value the translator keeps — on the operand stack, in
//! locals, in block parameters, in signatures — is a Cranelift `i8x16`. An
//! operator bitcasts its operands to the lane type it works on (`i16x8`,
//! `f32x4`, …) and its result back to `i8x16`. Bitcasts between vector types
//! with different lane counts need an explicit byte order in Cranelift; wasm
//! lanes are little-endian.
//!
//! Cranelift's vector instructions already carry wasm's semantics where it
//! matters: shift amounts are taken modulo the lane width, `fmin`/`fmax`
//! propagate NaN and order the zeros (unlike x86 `minps`), `swizzle` yields
//! zero for out-of-range indices, `snarrow`/`unarrow` saturate, and the
//! `_sat` conversions saturate and turn NaN into zero. The Cranelift
//! backends recognise the instruction shapes used below (widen + multiply,
//! widen + pairwise add, saturating conversion + narrow with zero) and emit
//! the single machine instruction where there is one.

use cranelift_codegen::ir::{
    self, ConstantData, Endianness, InstBuilder, MemFlagsData, Value,
    condcodes::{FloatCC, IntCC},
    types::{F32X4, F64X2, I8, I8X16, I16, I16X8, I32, I32X4, I64X2},
};
use cranelift_frontend::FunctionBuilder;
use wasmparser::{MemArg, Operator};

use super::memory::heap_flags;
use super::{TResult, Translator};

/// Flags of a bitcast between vector types: wasm lanes are little-endian.
fn lane_order() -> MemFlagsData {
    MemFlagsData::new().with_endianness(Endianness::Little)
}

/// The scalar type of one lane of `ty`.
fn lane_of(ty: ir::Type) -> ir::Type {
    ty.lane_type()
}

impl Translator<'_, '_> {
    /// Translates SIMD operators; `false` if `op` is not one.
    pub(crate) fn simd_operator(&mut self, op: &Operator<'_>) -> TResult<bool> {
        use Operator as O;
        match op {
            // ---- memory ----
            O::V128Load { memarg } => {
                let (addr, imm) = self.address(memarg, 16);
                let v = self.builder.ins().load(I8X16, heap_flags(), addr, imm);
                self.push(v);
            }
            O::V128Load8x8S { memarg } => {
                self.extend_load(memarg, |b, a, i| b.ins().sload8x8(heap_flags(), a, i))
            }
            O::V128Load8x8U { memarg } => {
                self.extend_load(memarg, |b, a, i| b.ins().uload8x8(heap_flags(), a, i))
            }
            O::V128Load16x4S { memarg } => {
                self.extend_load(memarg, |b, a, i| b.ins().sload16x4(heap_flags(), a, i))
            }
            O::V128Load16x4U { memarg } => {
                self.extend_load(memarg, |b, a, i| b.ins().uload16x4(heap_flags(), a, i))
            }
            O::V128Load32x2S { memarg } => {
                self.extend_load(memarg, |b, a, i| b.ins().sload32x2(heap_flags(), a, i))
            }
            O::V128Load32x2U { memarg } => {
                self.extend_load(memarg, |b, a, i| b.ins().uload32x2(heap_flags(), a, i))
            }
            O::V128Load8Splat { memarg } => self.load_splat(memarg, I8X16),
            O::V128Load16Splat { memarg } => self.load_splat(memarg, I16X8),
            O::V128Load32Splat { memarg } => self.load_splat(memarg, I32X4),
            O::V128Load64Splat { memarg } => self.load_splat(memarg, I64X2),
            O::V128Load32Zero { memarg } => self.load_zero(memarg, I32X4),
            O::V128Load64Zero { memarg } => self.load_zero(memarg, I64X2),
            O::V128Store { memarg } => {
                let v = self.pop();
                let (addr, imm) = self.address(memarg, 16);
                self.builder.ins().store(heap_flags(), v, addr, imm);
            }
            O::V128Load8Lane { memarg, lane } => self.load_lane(memarg, I8X16, *lane),
            O::V128Load16Lane { memarg, lane } => self.load_lane(memarg, I16X8, *lane),
            O::V128Load32Lane { memarg, lane } => self.load_lane(memarg, I32X4, *lane),
            O::V128Load64Lane { memarg, lane } => self.load_lane(memarg, I64X2, *lane),
            O::V128Store8Lane { memarg, lane } => self.store_lane(memarg, I8X16, *lane),
            O::V128Store16Lane { memarg, lane } => self.store_lane(memarg, I16X8, *lane),
            O::V128Store32Lane { memarg, lane } => self.store_lane(memarg, I32X4, *lane),
            O::V128Store64Lane { memarg, lane } => self.store_lane(memarg, I64X2, *lane),

            // ---- constants, lanes, shuffles ----
            O::V128Const { value } => {
                let v = self.v128_const(u128::from_le_bytes(*value.bytes()));
                self.push(v);
            }
            O::I8x16Shuffle { lanes } => {
                let (a, b) = self.pop2_as(I8X16);
                let mask = self
                    .builder
                    .func
                    .dfg
                    .immediates
                    .push(ConstantData::from(lanes.to_vec()));
                let v = self.builder.ins().shuffle(a, b, mask);
                self.push_v(v);
            }
            O::I8x16Swizzle => self.bin(I8X16, |b, x, y| b.ins().swizzle(x, y)),
            O::I8x16Splat => self.splat(I8X16),
            O::I16x8Splat => self.splat(I16X8),
            O::I32x4Splat => self.splat(I32X4),
            O::I64x2Splat => self.splat(I64X2),
            O::F32x4Splat => self.splat(F32X4),
            O::F64x2Splat => self.splat(F64X2),
            O::I8x16ExtractLaneS { lane } => self.extract_lane(I8X16, *lane, Some(true)),
            O::I8x16ExtractLaneU { lane } => self.extract_lane(I8X16, *lane, Some(false)),
            O::I16x8ExtractLaneS { lane } => self.extract_lane(I16X8, *lane, Some(true)),
            O::I16x8ExtractLaneU { lane } => self.extract_lane(I16X8, *lane, Some(false)),
            O::I32x4ExtractLane { lane } => self.extract_lane(I32X4, *lane, None),
            O::I64x2ExtractLane { lane } => self.extract_lane(I64X2, *lane, None),
            O::F32x4ExtractLane { lane } => self.extract_lane(F32X4, *lane, None),
            O::F64x2ExtractLane { lane } => self.extract_lane(F64X2, *lane, None),
            O::I8x16ReplaceLane { lane } => self.replace_lane(I8X16, *lane),
            O::I16x8ReplaceLane { lane } => self.replace_lane(I16X8, *lane),
            O::I32x4ReplaceLane { lane } => self.replace_lane(I32X4, *lane),
            O::I64x2ReplaceLane { lane } => self.replace_lane(I64X2, *lane),
            O::F32x4ReplaceLane { lane } => self.replace_lane(F32X4, *lane),
            O::F64x2ReplaceLane { lane } => self.replace_lane(F64X2, *lane),

            // ---- comparisons ----
            O::I8x16Eq => self.vicmp(I8X16, IntCC::Equal),
            O::I8x16Ne => self.vicmp(I8X16, IntCC::NotEqual),
            O::I8x16LtS => self.vicmp(I8X16, IntCC::SignedLessThan),
            O::I8x16LtU => self.vicmp(I8X16, IntCC::UnsignedLessThan),
            O::I8x16GtS => self.vicmp(I8X16, IntCC::SignedGreaterThan),
            O::I8x16GtU => self.vicmp(I8X16, IntCC::UnsignedGreaterThan),
            O::I8x16LeS => self.vicmp(I8X16, IntCC::SignedLessThanOrEqual),
            O::I8x16LeU => self.vicmp(I8X16, IntCC::UnsignedLessThanOrEqual),
            O::I8x16GeS => self.vicmp(I8X16, IntCC::SignedGreaterThanOrEqual),
            O::I8x16GeU => self.vicmp(I8X16, IntCC::UnsignedGreaterThanOrEqual),
            O::I16x8Eq => self.vicmp(I16X8, IntCC::Equal),
            O::I16x8Ne => self.vicmp(I16X8, IntCC::NotEqual),
            O::I16x8LtS => self.vicmp(I16X8, IntCC::SignedLessThan),
            O::I16x8LtU => self.vicmp(I16X8, IntCC::UnsignedLessThan),
            O::I16x8GtS => self.vicmp(I16X8, IntCC::SignedGreaterThan),
            O::I16x8GtU => self.vicmp(I16X8, IntCC::UnsignedGreaterThan),
            O::I16x8LeS => self.vicmp(I16X8, IntCC::SignedLessThanOrEqual),
            O::I16x8LeU => self.vicmp(I16X8, IntCC::UnsignedLessThanOrEqual),
            O::I16x8GeS => self.vicmp(I16X8, IntCC::SignedGreaterThanOrEqual),
            O::I16x8GeU => self.vicmp(I16X8, IntCC::UnsignedGreaterThanOrEqual),
            O::I32x4Eq => self.vicmp(I32X4, IntCC::Equal),
            O::I32x4Ne => self.vicmp(I32X4, IntCC::NotEqual),
            O::I32x4LtS => self.vicmp(I32X4, IntCC::SignedLessThan),
            O::I32x4LtU => self.vicmp(I32X4, IntCC::UnsignedLessThan),
            O::I32x4GtS => self.vicmp(I32X4, IntCC::SignedGreaterThan),
            O::I32x4GtU => self.vicmp(I32X4, IntCC::UnsignedGreaterThan),
            O::I32x4LeS => self.vicmp(I32X4, IntCC::SignedLessThanOrEqual),
            O::I32x4LeU => self.vicmp(I32X4, IntCC::UnsignedLessThanOrEqual),
            O::I32x4GeS => self.vicmp(I32X4, IntCC::SignedGreaterThanOrEqual),
            O::I32x4GeU => self.vicmp(I32X4, IntCC::UnsignedGreaterThanOrEqual),
            O::I64x2Eq => self.vicmp(I64X2, IntCC::Equal),
            O::I64x2Ne => self.vicmp(I64X2, IntCC::NotEqual),
            O::I64x2LtS => self.vicmp(I64X2, IntCC::SignedLessThan),
            O::I64x2GtS => self.vicmp(I64X2, IntCC::SignedGreaterThan),
            O::I64x2LeS => self.vicmp(I64X2, IntCC::SignedLessThanOrEqual),
            O::I64x2GeS => self.vicmp(I64X2, IntCC::SignedGreaterThanOrEqual),
            O::F32x4Eq => self.vfcmp(F32X4, FloatCC::Equal),
            O::F32x4Ne => self.vfcmp(F32X4, FloatCC::NotEqual),
            O::F32x4Lt => self.vfcmp(F32X4, FloatCC::LessThan),
            O::F32x4Gt => self.vfcmp(F32X4, FloatCC::GreaterThan),
            O::F32x4Le => self.vfcmp(F32X4, FloatCC::LessThanOrEqual),
            O::F32x4Ge => self.vfcmp(F32X4, FloatCC::GreaterThanOrEqual),
            O::F64x2Eq => self.vfcmp(F64X2, FloatCC::Equal),
            O::F64x2Ne => self.vfcmp(F64X2, FloatCC::NotEqual),
            O::F64x2Lt => self.vfcmp(F64X2, FloatCC::LessThan),
            O::F64x2Gt => self.vfcmp(F64X2, FloatCC::GreaterThan),
            O::F64x2Le => self.vfcmp(F64X2, FloatCC::LessThanOrEqual),
            O::F64x2Ge => self.vfcmp(F64X2, FloatCC::GreaterThanOrEqual),

            // ---- bitwise ----
            O::V128Not => self.un(I8X16, |b, a| b.ins().bnot(a)),
            O::V128And => self.bin(I8X16, |b, x, y| b.ins().band(x, y)),
            O::V128AndNot => self.bin(I8X16, |b, x, y| b.ins().band_not(x, y)),
            O::V128Or => self.bin(I8X16, |b, x, y| b.ins().bor(x, y)),
            O::V128Xor => self.bin(I8X16, |b, x, y| b.ins().bxor(x, y)),
            O::V128Bitselect => {
                let c = self.pop_as(I8X16);
                let (x, y) = self.pop2_as(I8X16);
                let v = self.builder.ins().bitselect(c, x, y);
                self.push_v(v);
            }
            O::V128AnyTrue => self.reduce_to_i32(I8X16, |b, a| b.ins().vany_true(a)),
            O::I8x16AllTrue => self.reduce_to_i32(I8X16, |b, a| b.ins().vall_true(a)),
            O::I16x8AllTrue => self.reduce_to_i32(I16X8, |b, a| b.ins().vall_true(a)),
            O::I32x4AllTrue => self.reduce_to_i32(I32X4, |b, a| b.ins().vall_true(a)),
            O::I64x2AllTrue => self.reduce_to_i32(I64X2, |b, a| b.ins().vall_true(a)),
            O::I8x16Bitmask => self.reduce_to_i32(I8X16, |b, a| b.ins().vhigh_bits(I32, a)),
            O::I16x8Bitmask => self.reduce_to_i32(I16X8, |b, a| b.ins().vhigh_bits(I32, a)),
            O::I32x4Bitmask => self.reduce_to_i32(I32X4, |b, a| b.ins().vhigh_bits(I32, a)),
            O::I64x2Bitmask => self.reduce_to_i32(I64X2, |b, a| b.ins().vhigh_bits(I32, a)),

            // ---- integer lane arithmetic ----
            O::I8x16Abs => self.un(I8X16, |b, a| b.ins().iabs(a)),
            O::I16x8Abs => self.un(I16X8, |b, a| b.ins().iabs(a)),
            O::I32x4Abs => self.un(I32X4, |b, a| b.ins().iabs(a)),
            O::I64x2Abs => self.un(I64X2, |b, a| b.ins().iabs(a)),
            O::I8x16Neg => self.un(I8X16, |b, a| b.ins().ineg(a)),
            O::I16x8Neg => self.un(I16X8, |b, a| b.ins().ineg(a)),
            O::I32x4Neg => self.un(I32X4, |b, a| b.ins().ineg(a)),
            O::I64x2Neg => self.un(I64X2, |b, a| b.ins().ineg(a)),
            O::I8x16Popcnt => self.un(I8X16, |b, a| b.ins().popcnt(a)),
            O::I8x16Add => self.bin(I8X16, |b, x, y| b.ins().iadd(x, y)),
            O::I16x8Add => self.bin(I16X8, |b, x, y| b.ins().iadd(x, y)),
            O::I32x4Add => self.bin(I32X4, |b, x, y| b.ins().iadd(x, y)),
            O::I64x2Add => self.bin(I64X2, |b, x, y| b.ins().iadd(x, y)),
            O::I8x16Sub => self.bin(I8X16, |b, x, y| b.ins().isub(x, y)),
            O::I16x8Sub => self.bin(I16X8, |b, x, y| b.ins().isub(x, y)),
            O::I32x4Sub => self.bin(I32X4, |b, x, y| b.ins().isub(x, y)),
            O::I64x2Sub => self.bin(I64X2, |b, x, y| b.ins().isub(x, y)),
            O::I16x8Mul => self.bin(I16X8, |b, x, y| b.ins().imul(x, y)),
            O::I32x4Mul => self.bin(I32X4, |b, x, y| b.ins().imul(x, y)),
            O::I64x2Mul => self.bin(I64X2, |b, x, y| b.ins().imul(x, y)),
            O::I8x16AddSatS => self.bin(I8X16, |b, x, y| b.ins().sadd_sat(x, y)),
            O::I8x16AddSatU => self.bin(I8X16, |b, x, y| b.ins().uadd_sat(x, y)),
            O::I8x16SubSatS => self.bin(I8X16, |b, x, y| b.ins().ssub_sat(x, y)),
            O::I8x16SubSatU => self.bin(I8X16, |b, x, y| b.ins().usub_sat(x, y)),
            O::I16x8AddSatS => self.bin(I16X8, |b, x, y| b.ins().sadd_sat(x, y)),
            O::I16x8AddSatU => self.bin(I16X8, |b, x, y| b.ins().uadd_sat(x, y)),
            O::I16x8SubSatS => self.bin(I16X8, |b, x, y| b.ins().ssub_sat(x, y)),
            O::I16x8SubSatU => self.bin(I16X8, |b, x, y| b.ins().usub_sat(x, y)),
            O::I8x16MinS => self.bin(I8X16, |b, x, y| b.ins().smin(x, y)),
            O::I8x16MinU => self.bin(I8X16, |b, x, y| b.ins().umin(x, y)),
            O::I8x16MaxS => self.bin(I8X16, |b, x, y| b.ins().smax(x, y)),
            O::I8x16MaxU => self.bin(I8X16, |b, x, y| b.ins().umax(x, y)),
            O::I16x8MinS => self.bin(I16X8, |b, x, y| b.ins().smin(x, y)),
            O::I16x8MinU => self.bin(I16X8, |b, x, y| b.ins().umin(x, y)),
            O::I16x8MaxS => self.bin(I16X8, |b, x, y| b.ins().smax(x, y)),
            O::I16x8MaxU => self.bin(I16X8, |b, x, y| b.ins().umax(x, y)),
            O::I32x4MinS => self.bin(I32X4, |b, x, y| b.ins().smin(x, y)),
            O::I32x4MinU => self.bin(I32X4, |b, x, y| b.ins().umin(x, y)),
            O::I32x4MaxS => self.bin(I32X4, |b, x, y| b.ins().smax(x, y)),
            O::I32x4MaxU => self.bin(I32X4, |b, x, y| b.ins().umax(x, y)),
            O::I8x16AvgrU => self.bin(I8X16, |b, x, y| b.ins().avg_round(x, y)),
            O::I16x8AvgrU => self.bin(I16X8, |b, x, y| b.ins().avg_round(x, y)),
            O::I16x8Q15MulrSatS => self.bin(I16X8, |b, x, y| b.ins().sqmul_round_sat(x, y)),

            // ---- shifts (amount modulo the lane width) ----
            O::I8x16Shl => self.shift(I8X16, |b, x, n| b.ins().ishl(x, n)),
            O::I16x8Shl => self.shift(I16X8, |b, x, n| b.ins().ishl(x, n)),
            O::I32x4Shl => self.shift(I32X4, |b, x, n| b.ins().ishl(x, n)),
            O::I64x2Shl => self.shift(I64X2, |b, x, n| b.ins().ishl(x, n)),
            O::I8x16ShrS => self.shift(I8X16, |b, x, n| b.ins().sshr(x, n)),
            O::I16x8ShrS => self.shift(I16X8, |b, x, n| b.ins().sshr(x, n)),
            O::I32x4ShrS => self.shift(I32X4, |b, x, n| b.ins().sshr(x, n)),
            O::I64x2ShrS => self.shift(I64X2, |b, x, n| b.ins().sshr(x, n)),
            O::I8x16ShrU => self.shift(I8X16, |b, x, n| b.ins().ushr(x, n)),
            O::I16x8ShrU => self.shift(I16X8, |b, x, n| b.ins().ushr(x, n)),
            O::I32x4ShrU => self.shift(I32X4, |b, x, n| b.ins().ushr(x, n)),
            O::I64x2ShrU => self.shift(I64X2, |b, x, n| b.ins().ushr(x, n)),

            // ---- narrowing, widening, pairwise, dot ----
            O::I8x16NarrowI16x8S => self.bin(I16X8, |b, x, y| b.ins().snarrow(x, y)),
            O::I8x16NarrowI16x8U => self.bin(I16X8, |b, x, y| b.ins().unarrow(x, y)),
            O::I16x8NarrowI32x4S => self.bin(I32X4, |b, x, y| b.ins().snarrow(x, y)),
            O::I16x8NarrowI32x4U => self.bin(I32X4, |b, x, y| b.ins().unarrow(x, y)),
            O::I16x8ExtendLowI8x16S => self.un(I8X16, |b, a| b.ins().swiden_low(a)),
            O::I16x8ExtendHighI8x16S => self.un(I8X16, |b, a| b.ins().swiden_high(a)),
            O::I16x8ExtendLowI8x16U => self.un(I8X16, |b, a| b.ins().uwiden_low(a)),
            O::I16x8ExtendHighI8x16U => self.un(I8X16, |b, a| b.ins().uwiden_high(a)),
            O::I32x4ExtendLowI16x8S => self.un(I16X8, |b, a| b.ins().swiden_low(a)),
            O::I32x4ExtendHighI16x8S => self.un(I16X8, |b, a| b.ins().swiden_high(a)),
            O::I32x4ExtendLowI16x8U => self.un(I16X8, |b, a| b.ins().uwiden_low(a)),
            O::I32x4ExtendHighI16x8U => self.un(I16X8, |b, a| b.ins().uwiden_high(a)),
            O::I64x2ExtendLowI32x4S => self.un(I32X4, |b, a| b.ins().swiden_low(a)),
            O::I64x2ExtendHighI32x4S => self.un(I32X4, |b, a| b.ins().swiden_high(a)),
            O::I64x2ExtendLowI32x4U => self.un(I32X4, |b, a| b.ins().uwiden_low(a)),
            O::I64x2ExtendHighI32x4U => self.un(I32X4, |b, a| b.ins().uwiden_high(a)),
            O::I16x8ExtAddPairwiseI8x16S => self.extadd_pairwise(I8X16, true),
            O::I16x8ExtAddPairwiseI8x16U => self.extadd_pairwise(I8X16, false),
            O::I32x4ExtAddPairwiseI16x8S => self.extadd_pairwise(I16X8, true),
            O::I32x4ExtAddPairwiseI16x8U => self.extadd_pairwise(I16X8, false),
            O::I16x8ExtMulLowI8x16S => self.extmul(I8X16, false, true),
            O::I16x8ExtMulHighI8x16S => self.extmul(I8X16, true, true),
            O::I16x8ExtMulLowI8x16U => self.extmul(I8X16, false, false),
            O::I16x8ExtMulHighI8x16U => self.extmul(I8X16, true, false),
            O::I32x4ExtMulLowI16x8S => self.extmul(I16X8, false, true),
            O::I32x4ExtMulHighI16x8S => self.extmul(I16X8, true, true),
            O::I32x4ExtMulLowI16x8U => self.extmul(I16X8, false, false),
            O::I32x4ExtMulHighI16x8U => self.extmul(I16X8, true, false),
            O::I64x2ExtMulLowI32x4S => self.extmul(I32X4, false, true),
            O::I64x2ExtMulHighI32x4S => self.extmul(I32X4, true, true),
            O::I64x2ExtMulLowI32x4U => self.extmul(I32X4, false, false),
            O::I64x2ExtMulHighI32x4U => self.extmul(I32X4, true, false),
            O::I32x4DotI16x8S => {
                let (x, y) = self.pop2_as(I16X8);
                let v = self.dot(x, y);
                self.push_v(v);
            }

            // ---- float lane arithmetic ----
            O::F32x4Ceil => self.un(F32X4, |b, a| b.ins().ceil(a)),
            O::F64x2Ceil => self.un(F64X2, |b, a| b.ins().ceil(a)),
            O::F32x4Floor => self.un(F32X4, |b, a| b.ins().floor(a)),
            O::F64x2Floor => self.un(F64X2, |b, a| b.ins().floor(a)),
            O::F32x4Trunc => self.un(F32X4, |b, a| b.ins().trunc(a)),
            O::F64x2Trunc => self.un(F64X2, |b, a| b.ins().trunc(a)),
            O::F32x4Nearest => self.un(F32X4, |b, a| b.ins().nearest(a)),
            O::F64x2Nearest => self.un(F64X2, |b, a| b.ins().nearest(a)),
            O::F32x4Abs => self.un(F32X4, |b, a| b.ins().fabs(a)),
            O::F64x2Abs => self.un(F64X2, |b, a| b.ins().fabs(a)),
            O::F32x4Neg => self.un(F32X4, |b, a| b.ins().fneg(a)),
            O::F64x2Neg => self.un(F64X2, |b, a| b.ins().fneg(a)),
            O::F32x4Sqrt => self.un(F32X4, |b, a| b.ins().sqrt(a)),
            O::F64x2Sqrt => self.un(F64X2, |b, a| b.ins().sqrt(a)),
            O::F32x4Add => self.bin(F32X4, |b, x, y| b.ins().fadd(x, y)),
            O::F64x2Add => self.bin(F64X2, |b, x, y| b.ins().fadd(x, y)),
            O::F32x4Sub => self.bin(F32X4, |b, x, y| b.ins().fsub(x, y)),
            O::F64x2Sub => self.bin(F64X2, |b, x, y| b.ins().fsub(x, y)),
            O::F32x4Mul => self.bin(F32X4, |b, x, y| b.ins().fmul(x, y)),
            O::F64x2Mul => self.bin(F64X2, |b, x, y| b.ins().fmul(x, y)),
            O::F32x4Div => self.bin(F32X4, |b, x, y| b.ins().fdiv(x, y)),
            O::F64x2Div => self.bin(F64X2, |b, x, y| b.ins().fdiv(x, y)),
            O::F32x4Min => self.bin(F32X4, |b, x, y| b.ins().fmin(x, y)),
            O::F64x2Min => self.bin(F64X2, |b, x, y| b.ins().fmin(x, y)),
            O::F32x4Max => self.bin(F32X4, |b, x, y| b.ins().fmax(x, y)),
            O::F64x2Max => self.bin(F64X2, |b, x, y| b.ins().fmax(x, y)),
            // pmin(x, y) = y < x ? y : x; pmax(x, y) = x < y ? y : x
            O::F32x4PMin => self.pseudo_min_max(F32X4, true),
            O::F64x2PMin => self.pseudo_min_max(F64X2, true),
            O::F32x4PMax => self.pseudo_min_max(F32X4, false),
            O::F64x2PMax => self.pseudo_min_max(F64X2, false),

            // ---- conversions ----
            O::I32x4TruncSatF32x4S => self.un(F32X4, |b, a| b.ins().fcvt_to_sint_sat(I32X4, a)),
            O::I32x4TruncSatF32x4U => self.un(F32X4, |b, a| b.ins().fcvt_to_uint_sat(I32X4, a)),
            O::F32x4ConvertI32x4S => self.un(I32X4, |b, a| b.ins().fcvt_from_sint(F32X4, a)),
            O::F32x4ConvertI32x4U => self.un(I32X4, |b, a| b.ins().fcvt_from_uint(F32X4, a)),
            O::I32x4TruncSatF64x2SZero => {
                let zero = self.zero_of(I64X2);
                self.un(F64X2, |b, a| {
                    let wide = b.ins().fcvt_to_sint_sat(I64X2, a);
                    b.ins().snarrow(wide, zero)
                })
            }
            O::I32x4TruncSatF64x2UZero => {
                let zero = self.zero_of(I64X2);
                self.un(F64X2, |b, a| {
                    let wide = b.ins().fcvt_to_uint_sat(I64X2, a);
                    b.ins().uunarrow(wide, zero)
                })
            }
            O::F64x2ConvertLowI32x4S => self.un(I32X4, |b, a| {
                let wide = b.ins().swiden_low(a);
                b.ins().fcvt_from_sint(F64X2, wide)
            }),
            O::F64x2ConvertLowI32x4U => self.un(I32X4, |b, a| {
                let wide = b.ins().uwiden_low(a);
                b.ins().fcvt_from_uint(F64X2, wide)
            }),
            O::F32x4DemoteF64x2Zero => self.un(F64X2, |b, a| b.ins().fvdemote(a)),
            O::F64x2PromoteLowF32x4 => self.un(F32X4, |b, a| b.ins().fvpromote_low(a)),
            _ => return self.relaxed_simd_operator(op),
        }
        Ok(true)
    }

    /// Translates the relaxed SIMD operators (Wasm 3.0); `false` if `op` is
    /// not one.
    ///
    /// The proposal lets each of them return any of a few results; Basalt
    /// always picks the same one, on every ISA and CPU: that of the
    /// deterministic instruction it relaxes (`swizzle`, `trunc_sat`, `fmin`,
    /// `fmax`, `bitselect`, `q15mulr_sat`), an unfused multiply then add for
    /// `madd`/`nmadd` (so results do not depend on whether the CPU has FMA),
    /// and signed bytes with wrapping 16-bit sums for the dot products. A
    /// program therefore gives the same bits on x86-64 and AArch64, and
    /// hosted or in the kernel.
    fn relaxed_simd_operator(&mut self, op: &Operator<'_>) -> TResult<bool> {
        use Operator as O;
        let same_as = match op {
            O::I8x16RelaxedSwizzle => O::I8x16Swizzle,
            O::I32x4RelaxedTruncF32x4S => O::I32x4TruncSatF32x4S,
            O::I32x4RelaxedTruncF32x4U => O::I32x4TruncSatF32x4U,
            O::I32x4RelaxedTruncF64x2SZero => O::I32x4TruncSatF64x2SZero,
            O::I32x4RelaxedTruncF64x2UZero => O::I32x4TruncSatF64x2UZero,
            O::I8x16RelaxedLaneselect
            | O::I16x8RelaxedLaneselect
            | O::I32x4RelaxedLaneselect
            | O::I64x2RelaxedLaneselect => O::V128Bitselect,
            O::F32x4RelaxedMin => O::F32x4Min,
            O::F32x4RelaxedMax => O::F32x4Max,
            O::F64x2RelaxedMin => O::F64x2Min,
            O::F64x2RelaxedMax => O::F64x2Max,
            O::I16x8RelaxedQ15mulrS => O::I16x8Q15MulrSatS,
            O::F32x4RelaxedMadd => return Ok(self.multiply_add(F32X4, false)),
            O::F32x4RelaxedNmadd => return Ok(self.multiply_add(F32X4, true)),
            O::F64x2RelaxedMadd => return Ok(self.multiply_add(F64X2, false)),
            O::F64x2RelaxedNmadd => return Ok(self.multiply_add(F64X2, true)),
            O::I16x8RelaxedDotI8x16I7x16S => {
                let (x, y) = self.pop2_as(I8X16);
                let v = self.dot(x, y);
                self.push_v(v);
                return Ok(true);
            }
            O::I32x4RelaxedDotI8x16I7x16AddS => {
                let acc = self.pop_as(I32X4);
                let (x, y) = self.pop2_as(I8X16);
                let pairs = self.dot(x, y);
                let b = &mut self.builder;
                let lo = b.ins().swiden_low(pairs);
                let hi = b.ins().swiden_high(pairs);
                let quads = b.ins().iadd_pairwise(lo, hi);
                let v = b.ins().iadd(quads, acc);
                self.push_v(v);
                return Ok(true);
            }
            _ => return Ok(false),
        };
        self.simd_operator(&same_as)
    }

    /// `relaxed_madd` (`a * b + c`) or `relaxed_nmadd` (`-(a * b) + c`) on
    /// lanes of `ty`, rounded after the multiply and after the add.
    fn multiply_add(&mut self, ty: ir::Type, negate: bool) -> bool {
        let c = self.pop_as(ty);
        let (a, b) = self.pop2_as(ty);
        let ins = &mut self.builder;
        let mut product = ins.ins().fmul(a, b);
        if negate {
            product = ins.ins().fneg(product);
        }
        let v = ins.ins().fadd(product, c);
        self.push_v(v);
        true
    }

    /// Multiplies the signed lanes of `x` and `y` into lanes twice as wide
    /// and adds neighbouring products (wrapping): `i32x4.dot_i16x8_s` on
    /// `i16x8`, the relaxed byte dot products on `i8x16`. The backends fuse
    /// this into `pmaddwd` / `smull`+`addp` where they can.
    fn dot(&mut self, x: Value, y: Value) -> Value {
        let b = &mut self.builder;
        let xl = b.ins().swiden_low(x);
        let yl = b.ins().swiden_low(y);
        let lo = b.ins().imul(xl, yl);
        let xh = b.ins().swiden_high(x);
        let yh = b.ins().swiden_high(y);
        let hi = b.ins().imul(xh, yh);
        b.ins().iadd_pairwise(lo, hi)
    }

    /// A `v128` constant (as `i8x16`).
    pub(crate) fn v128_const(&mut self, bits: u128) -> Value {
        let c = self
            .builder
            .func
            .dfg
            .constants
            .insert(ConstantData::from(bits.to_le_bytes().to_vec()));
        self.builder.ins().vconst(I8X16, c)
    }

    /// An all-zero vector of type `ty`.
    fn zero_of(&mut self, ty: ir::Type) -> Value {
        let c = self
            .builder
            .func
            .dfg
            .constants
            .insert(ConstantData::from(alloc::vec![0u8; 16]));
        self.builder.ins().vconst(ty, c)
    }

    /// `v` seen as a vector of type `ty` (a no-op if it already is one).
    fn as_type(&mut self, v: Value, ty: ir::Type) -> Value {
        if self.builder.func.dfg.value_type(v) == ty {
            v
        } else {
            self.builder.ins().bitcast(ty, lane_order(), v)
        }
    }

    /// Pops a `v128` and views it as `ty`.
    fn pop_as(&mut self, ty: ir::Type) -> Value {
        let v = self.pop();
        self.as_type(v, ty)
    }

    /// Pops two `v128`s (`(below, top)`) and views them as `ty`.
    fn pop2_as(&mut self, ty: ir::Type) -> (Value, Value) {
        let (a, b) = self.pop2();
        (self.as_type(a, ty), self.as_type(b, ty))
    }

    /// Pushes a vector of any type as a `v128` (`i8x16`).
    fn push_v(&mut self, v: Value) {
        let v = self.as_type(v, I8X16);
        self.push(v);
    }

    fn un(&mut self, ty: ir::Type, f: impl FnOnce(&mut FunctionBuilder<'_>, Value) -> Value) {
        let a = self.pop_as(ty);
        let v = f(&mut self.builder, a);
        self.push_v(v);
    }

    fn bin(
        &mut self,
        ty: ir::Type,
        f: impl FnOnce(&mut FunctionBuilder<'_>, Value, Value) -> Value,
    ) {
        let (a, b) = self.pop2_as(ty);
        let v = f(&mut self.builder, a, b);
        self.push_v(v);
    }

    /// An operator from a vector to a Cranelift truth value or `i32`.
    fn reduce_to_i32(
        &mut self,
        ty: ir::Type,
        f: impl FnOnce(&mut FunctionBuilder<'_>, Value) -> Value,
    ) {
        let a = self.pop_as(ty);
        let v = f(&mut self.builder, a);
        let v = if self.builder.func.dfg.value_type(v) == I32 {
            v
        } else {
            self.builder.ins().uextend(I32, v)
        };
        self.push(v);
    }

    /// A shift of a `ty` vector by the `i32` on top of the stack.
    fn shift(
        &mut self,
        ty: ir::Type,
        f: impl FnOnce(&mut FunctionBuilder<'_>, Value, Value) -> Value,
    ) {
        let amount = self.pop();
        let a = self.pop_as(ty);
        let v = f(&mut self.builder, a, amount);
        self.push_v(v);
    }

    fn vicmp(&mut self, ty: ir::Type, cc: IntCC) {
        self.bin(ty, |b, x, y| b.ins().icmp(cc, x, y));
    }

    fn vfcmp(&mut self, ty: ir::Type, cc: FloatCC) {
        self.bin(ty, |b, x, y| b.ins().fcmp(cc, x, y));
    }

    fn pseudo_min_max(&mut self, ty: ir::Type, min: bool) {
        let (x, y) = self.pop2_as(ty);
        let b = &mut self.builder;
        let take_y = if min {
            b.ins().fcmp(FloatCC::LessThan, y, x)
        } else {
            b.ins().fcmp(FloatCC::LessThan, x, y)
        };
        let take_y = b.ins().bitcast(ty, lane_order(), take_y);
        let v = b.ins().bitselect(take_y, y, x);
        self.push_v(v);
    }

    fn splat(&mut self, ty: ir::Type) {
        let x = self.pop();
        let lane = lane_of(ty);
        let x = if lane == I8 || lane == I16 {
            self.builder.ins().ireduce(lane, x)
        } else {
            x
        };
        let v = self.builder.ins().splat(ty, x);
        self.push_v(v);
    }

    /// `extract_lane`; `extend` says how an `i8`/`i16` lane becomes an `i32`.
    fn extract_lane(&mut self, ty: ir::Type, lane: u8, extend: Option<bool>) {
        let a = self.pop_as(ty);
        let x = self.builder.ins().extractlane(a, lane);
        let x = match extend {
            Some(true) => self.builder.ins().sextend(I32, x),
            Some(false) => self.builder.ins().uextend(I32, x),
            None => x,
        };
        self.push(x);
    }

    fn replace_lane(&mut self, ty: ir::Type, lane: u8) {
        let x = self.pop();
        let a = self.pop_as(ty);
        let l = lane_of(ty);
        let x = if l == I8 || l == I16 {
            self.builder.ins().ireduce(l, x)
        } else {
            x
        };
        let v = self.builder.ins().insertlane(a, x, lane);
        self.push_v(v);
    }

    fn extadd_pairwise(&mut self, ty: ir::Type, signed: bool) {
        self.un(ty, |b, a| {
            let (lo, hi) = if signed {
                (b.ins().swiden_low(a), b.ins().swiden_high(a))
            } else {
                (b.ins().uwiden_low(a), b.ins().uwiden_high(a))
            };
            b.ins().iadd_pairwise(lo, hi)
        });
    }

    fn extmul(&mut self, ty: ir::Type, high: bool, signed: bool) {
        self.bin(ty, |b, x, y| {
            let widen = |b: &mut FunctionBuilder<'_>, v| match (high, signed) {
                (false, true) => b.ins().swiden_low(v),
                (true, true) => b.ins().swiden_high(v),
                (false, false) => b.ins().uwiden_low(v),
                (true, false) => b.ins().uwiden_high(v),
            };
            let x = widen(b, x);
            let y = widen(b, y);
            b.ins().imul(x, y)
        });
    }

    /// `v128.loadNxM_{s,u}`: 8 bytes widened lane by lane.
    fn extend_load(
        &mut self,
        memarg: &MemArg,
        f: impl FnOnce(&mut FunctionBuilder<'_>, Value, i32) -> Value,
    ) {
        let (addr, imm) = self.address(memarg, 8);
        let v = f(&mut self.builder, addr, imm);
        self.push_v(v);
    }

    fn load_splat(&mut self, memarg: &MemArg, ty: ir::Type) {
        let lane = lane_of(ty);
        let (addr, imm) = self.address(memarg, u64::from(lane.bytes()));
        let x = self.builder.ins().load(lane, heap_flags(), addr, imm);
        let v = self.builder.ins().splat(ty, x);
        self.push_v(v);
    }

    /// `v128.load{32,64}_zero`: the scalar in lane 0, zeros elsewhere.
    fn load_zero(&mut self, memarg: &MemArg, ty: ir::Type) {
        let lane = lane_of(ty);
        let (addr, imm) = self.address(memarg, u64::from(lane.bytes()));
        let x = self.builder.ins().load(lane, heap_flags(), addr, imm);
        let v = self.builder.ins().scalar_to_vector(ty, x);
        self.push_v(v);
    }

    fn load_lane(&mut self, memarg: &MemArg, ty: ir::Type, lane: u8) {
        let a = self.pop_as(ty);
        let l = lane_of(ty);
        let (addr, imm) = self.address(memarg, u64::from(l.bytes()));
        let x = self.builder.ins().load(l, heap_flags(), addr, imm);
        let v = self.builder.ins().insertlane(a, x, lane);
        self.push_v(v);
    }

    fn store_lane(&mut self, memarg: &MemArg, ty: ir::Type, lane: u8) {
        let a = self.pop_as(ty);
        let x = self.builder.ins().extractlane(a, lane);
        let (addr, imm) = self.address(memarg, u64::from(lane_of(ty).bytes()));
        self.builder.ins().store(heap_flags(), x, addr, imm);
    }
}
