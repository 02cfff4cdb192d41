//! Linear memory and table operators: loads, stores, `memory.*`,
//! `table.*`, `data.drop`, `elem.drop`.
//!
//! Addresses are `base + zero_extend(index) + offset`. When the engine says
//! the memory's guard reservation covers every address a 32-bit index and
//! offset can form ([`super::MemoryAccess::bound`] is `None`), no check is
//! emitted and the access's trap code tells the fault handler it was an
//! out-of-bounds access. Otherwise `index + offset + size <= length` is
//! checked explicitly.

use cranelift_codegen::ir::{
    self, Endianness, InstBuilder, MemFlagsData, Value, condcodes::IntCC, types,
};
use wasmparser::{MemArg, MemArgTarget, Operator};

use super::{TResult, Translator};
use crate::trap::codes;

/// Flags of every linear memory access: little-endian, may trap, and a
/// fault means an out-of-bounds access.
pub(super) fn heap_flags() -> MemFlagsData {
    MemFlagsData::new()
        .with_endianness(Endianness::Little)
        .with_trap_code(Some(codes::HEAP_OUT_OF_BOUNDS))
}

/// The shape of a load.
#[derive(Clone, Copy)]
enum Load {
    /// full-width load of the type
    Full(ir::Type),
    /// 8-bit load extended to the type (signed?)
    Narrow8(ir::Type, bool),
    /// 16-bit load extended to the type (signed?)
    Narrow16(ir::Type, bool),
    /// 32-bit load extended to i64 (signed?)
    Narrow32(bool),
}

impl Load {
    fn size(self) -> u64 {
        match self {
            Load::Full(t) => u64::from(t.bytes()),
            Load::Narrow8(..) => 1,
            Load::Narrow16(..) => 2,
            Load::Narrow32(_) => 4,
        }
    }
}

impl Translator<'_, '_> {
    /// Translates memory and table operators; `false` if `op` is not one.
    pub(crate) fn memory_operator(&mut self, op: &Operator<'_>, _offset: usize) -> TResult<bool> {
        use types::{F32, F64, I32, I64};
        match op {
            Operator::I32Load { memarg } => self.load(memarg, Load::Full(I32)),
            Operator::I64Load { memarg } => self.load(memarg, Load::Full(I64)),
            Operator::F32Load { memarg } => self.load(memarg, Load::Full(F32)),
            Operator::F64Load { memarg } => self.load(memarg, Load::Full(F64)),
            Operator::I32Load8S { memarg } => self.load(memarg, Load::Narrow8(I32, true)),
            Operator::I32Load8U { memarg } => self.load(memarg, Load::Narrow8(I32, false)),
            Operator::I32Load16S { memarg } => self.load(memarg, Load::Narrow16(I32, true)),
            Operator::I32Load16U { memarg } => self.load(memarg, Load::Narrow16(I32, false)),
            Operator::I64Load8S { memarg } => self.load(memarg, Load::Narrow8(I64, true)),
            Operator::I64Load8U { memarg } => self.load(memarg, Load::Narrow8(I64, false)),
            Operator::I64Load16S { memarg } => self.load(memarg, Load::Narrow16(I64, true)),
            Operator::I64Load16U { memarg } => self.load(memarg, Load::Narrow16(I64, false)),
            Operator::I64Load32S { memarg } => self.load(memarg, Load::Narrow32(true)),
            Operator::I64Load32U { memarg } => self.load(memarg, Load::Narrow32(false)),
            Operator::I32Store { memarg }
            | Operator::I64Store { memarg }
            | Operator::F32Store { memarg }
            | Operator::F64Store { memarg } => self.store(memarg, None),
            Operator::I32Store8 { memarg } | Operator::I64Store8 { memarg } => {
                self.store(memarg, Some(1))
            }
            Operator::I32Store16 { memarg } | Operator::I64Store16 { memarg } => {
                self.store(memarg, Some(2))
            }
            Operator::I64Store32 { memarg } => self.store(memarg, Some(4)),
            Operator::MemorySize { mem } => {
                let v = self.env.memory_size(&mut self.builder, *mem);
                self.push(v);
            }
            Operator::MemoryGrow { mem } => {
                let delta = self.pop();
                let v = self.env.memory_grow(&mut self.builder, *mem, delta);
                self.push(v);
            }
            Operator::MemoryFill { mem } => {
                let (dst, val, len) = self.pop3();
                self.env.memory_fill(&mut self.builder, *mem, dst, val, len);
            }
            Operator::MemoryCopy { dst_mem, src_mem } => {
                let (dst, src, len) = self.pop3();
                self.env
                    .memory_copy(&mut self.builder, *dst_mem, *src_mem, dst, src, len);
            }
            Operator::MemoryInit { data_index, mem } => {
                let (dst, src, len) = self.pop3();
                self.env
                    .memory_init(&mut self.builder, *mem, *data_index, dst, src, len);
            }
            Operator::DataDrop { data_index } => {
                self.env.data_drop(&mut self.builder, *data_index);
            }
            Operator::TableGet { table } => {
                let index = self.pop();
                let v = self.env.table_get(&mut self.builder, *table, index);
                self.push(v);
            }
            Operator::TableSet { table } => {
                let (index, value) = self.pop2();
                self.env.table_set(&mut self.builder, *table, index, value);
            }
            Operator::TableSize { table } => {
                let v = self.env.table_size(&mut self.builder, *table);
                self.push(v);
            }
            Operator::TableGrow { table } => {
                let (init, delta) = self.pop2();
                let v = self.env.table_grow(&mut self.builder, *table, init, delta);
                self.push(v);
            }
            Operator::TableFill { table } => {
                let (dst, val, len) = self.pop3();
                self.env
                    .table_fill(&mut self.builder, *table, dst, val, len);
            }
            Operator::TableCopy {
                dst_table,
                src_table,
            } => {
                let (dst, src, len) = self.pop3();
                self.env
                    .table_copy(&mut self.builder, *dst_table, *src_table, dst, src, len);
            }
            Operator::TableInit { elem_index, table } => {
                let (dst, src, len) = self.pop3();
                self.env
                    .table_init(&mut self.builder, *table, *elem_index, dst, src, len);
            }
            Operator::ElemDrop { elem_index } => {
                self.env.elem_drop(&mut self.builder, *elem_index);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Pops an index and returns `(address, immediate offset)` for an
    /// access of `size` bytes, emitting the bounds check if one is needed.
    pub(super) fn address(&mut self, memarg: &MemArg, size: u64) -> (Value, i32) {
        let index = self.pop();
        let mem = match memarg.target {
            MemArgTarget::Memory(m) => m,
            // GC arrays never reach here: wasm 2.0 validation refuses them.
            MemArgTarget::Array(_) => 0,
        };
        let access = self.env.memory_access(&mut self.builder, mem);
        let ptr = self.pointer;
        let index = if self.builder.func.dfg.value_type(index) == ptr {
            index
        } else {
            self.builder.ins().uextend(ptr, index)
        };
        let offset = memarg.offset;
        if let Some(len) = access.bound {
            match offset.checked_add(size) {
                Some(end_offset) => {
                    let end_offset = self.builder.ins().iconst(ptr, end_offset as i64);
                    let end = if access.memory64 {
                        self.builder.ins().uadd_overflow_trap(
                            index,
                            end_offset,
                            codes::HEAP_OUT_OF_BOUNDS,
                        )
                    } else {
                        // A 32-bit index plus a 32-bit offset cannot overflow 64 bits.
                        self.builder.ins().iadd(index, end_offset)
                    };
                    let oob = self
                        .builder
                        .ins()
                        .icmp(IntCC::UnsignedGreaterThan, end, len);
                    self.builder.ins().trapnz(oob, codes::HEAP_OUT_OF_BOUNDS);
                }
                None => {
                    self.builder.ins().trap(codes::HEAP_OUT_OF_BOUNDS);
                    // Keep building in a fresh, unreachable block so the
                    // caller can finish emitting the access.
                    let dead = self.builder.create_block();
                    self.builder.seal_block(dead);
                    self.builder.switch_to_block(dead);
                }
            }
        }
        let addr = self.builder.ins().iadd(access.base, index);
        match i32::try_from(offset) {
            Ok(imm) => (addr, imm),
            Err(_) => {
                let offset = self.builder.ins().iconst(ptr, offset as i64);
                (self.builder.ins().iadd(addr, offset), 0)
            }
        }
    }

    fn load(&mut self, memarg: &MemArg, kind: Load) {
        let (addr, imm) = self.address(memarg, kind.size());
        let f = heap_flags();
        let b = self.builder.ins();
        let v = match kind {
            Load::Full(t) => b.load(t, f, addr, imm),
            Load::Narrow8(t, true) => b.sload8(t, f, addr, imm),
            Load::Narrow8(t, false) => b.uload8(t, f, addr, imm),
            Load::Narrow16(t, true) => b.sload16(t, f, addr, imm),
            Load::Narrow16(t, false) => b.uload16(t, f, addr, imm),
            Load::Narrow32(true) => b.sload32(f, addr, imm),
            Load::Narrow32(false) => b.uload32(f, addr, imm),
        };
        self.push(v);
    }

    /// A store of the value on top of the stack; `narrow` is the stored
    /// width in bytes for the wrapping stores.
    fn store(&mut self, memarg: &MemArg, narrow: Option<u64>) {
        let value = self.pop();
        let size =
            narrow.unwrap_or_else(|| u64::from(self.builder.func.dfg.value_type(value).bytes()));
        let (addr, imm) = self.address(memarg, size);
        let f = heap_flags();
        let b = self.builder.ins();
        match narrow {
            None => b.store(f, value, addr, imm),
            Some(1) => b.istore8(f, value, addr, imm),
            Some(2) => b.istore16(f, value, addr, imm),
            _ => b.istore32(f, value, addr, imm),
        };
    }
}
