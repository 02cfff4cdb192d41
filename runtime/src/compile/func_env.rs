//! The engine's [`TranslationEnv`]: how compiled code reaches the VM context.

use alloc::vec::Vec;

use cranelift_codegen::ir::{
    self, AbiParam, ArgumentPurpose, BlockArg, BlockCall, ExceptionTableData, ExceptionTableItem,
    ExceptionTag, ExtFuncData, ExternalName, GlobalValueData, InstBuilder, MemFlagsData, Signature,
    StackSlotData, StackSlotKind, UserExternalName, Value, condcodes::IntCC, types,
};
use cranelift_codegen::isa::{CallConv, TargetIsa};
use cranelift_frontend::FunctionBuilder;

use crate::module_info::{
    FuncIndex, GlobalIndex, MemoryIndex, ModuleInfo, TableIndex, TagIndex, TypeIndex,
};
use crate::translate::{CatchClause, FunctionShape, MemoryAccess, TranslationEnv};
use crate::trap::codes;
use crate::types::{FuncType, RefType, ValType};
use crate::vm::offsets::{self, VMOffsets, builtin};

mod metering;

/// External-name namespace of wasm functions (index = function index).
pub const NS_WASM_FUNC: u32 = 0;
/// Namespace of the module's interrupt trampoline (index 0), which
/// interruptible code calls when its interrupt request is raised.
pub const NS_INTERRUPT_TRAMPOLINE: u32 = 2;

/// The Cranelift type of a wasm value type.
pub fn clif_type(ty: ValType, pointer: ir::Type) -> ir::Type {
    match ty {
        ValType::I32 => types::I32,
        ValType::I64 => types::I64,
        ValType::F32 => types::F32,
        ValType::F64 => types::F64,
        ValType::V128 => types::I8X16,
        ValType::Ref(_) => pointer,
    }
}

/// The signature every wasm function is compiled with (see
/// [`crate::translate::env`]).
pub fn wasm_signature(ty: &FuncType, pointer: ir::Type) -> Signature {
    let mut sig = Signature::new(CallConv::Tail);
    sig.params
        .push(AbiParam::special(pointer, ArgumentPurpose::VMContext));
    sig.params.push(AbiParam::new(pointer));
    sig.params.extend(
        ty.params
            .iter()
            .map(|t| AbiParam::new(clif_type(*t, pointer))),
    );
    sig.returns.extend(
        ty.results
            .iter()
            .map(|t| AbiParam::new(clif_type(*t, pointer))),
    );
    sig
}

/// Flags for loads of VM context slots that never change.
fn readonly(_builder: &mut FunctionBuilder<'_>) -> MemFlagsData {
    MemFlagsData::trusted().with_readonly().with_can_move()
}

/// Flags for VM data that may change (table lengths, globals).
fn trusted(_builder: &mut FunctionBuilder<'_>) -> MemFlagsData {
    MemFlagsData::trusted()
}

/// What is called.
#[derive(Clone, Copy)]
enum Callee {
    /// a function of this module, by name
    Direct(ir::FuncRef),
    /// code at an address
    Indirect(Value),
}

/// How a call is made.
#[derive(Clone, Copy)]
enum Call<'a> {
    /// a call that returns here; exceptions go to these catch clauses
    Normal(&'a [CatchClause]),
    /// a tail call (`return_call*`)
    Tail,
}

/// [`TranslationEnv`] for one function of a module.
pub struct FuncEnv<'m> {
    /// emit the interrupt checks (`Config::interruptible`)
    pub interruptible: bool,
    /// meter fuel (`Config::consume_fuel`)
    pub consume_fuel: bool,
    /// fuel spent by the operators translated since the last point where
    /// it was subtracted from the store's (see `metering.rs`)
    unspent_fuel: i64,
    info: &'m ModuleInfo,
    offsets: VMOffsets,
    pointer: ir::Type,
    call_conv: CallConv,
    vmctx: Option<Value>,
    vmctx_slot: Option<ir::StackSlot>,
}

impl<'m> FuncEnv<'m> {
    /// An environment for compiling a function of `info` for `isa`.
    pub fn new(info: &'m ModuleInfo, isa: &dyn TargetIsa) -> Self {
        FuncEnv {
            interruptible: false,
            consume_fuel: false,
            unspent_fuel: 0,
            info,
            offsets: VMOffsets::new(info),
            pointer: isa.pointer_type(),
            call_conv: isa.default_call_conv(),
            vmctx: None,
            vmctx_slot: None,
        }
    }

    /// The stack slot that holds the VM context at every call with catch
    /// clauses, if the function has such calls: the unwinder reads it there
    /// to know whose tags the clauses name.
    pub fn vmctx_slot(&self) -> Option<ir::StackSlot> {
        self.vmctx_slot
    }

    fn vmctx(&self) -> Value {
        self.vmctx
            .expect("begin_function sets the VM context first")
    }

    fn load_ptr(&self, builder: &mut FunctionBuilder<'_>, base: Value, offset: i32) -> Value {
        let f = readonly(builder);
        builder.ins().load(self.pointer, f, base, offset)
    }

    fn table_ptr(&self, builder: &mut FunctionBuilder<'_>, table: TableIndex) -> Value {
        let vmctx = self.vmctx();
        self.load_ptr(builder, vmctx, self.offsets.table_ptr(table))
    }

    fn global_addr(&self, builder: &mut FunctionBuilder<'_>, global: GlobalIndex) -> Value {
        let vmctx = self.vmctx();
        self.load_ptr(builder, vmctx, self.offsets.global_ptr(global))
    }

    fn memory_is_64(&self, mem: MemoryIndex) -> bool {
        self.info.memories[mem as usize].memory64
    }

    fn table_is_64(&self, table: TableIndex) -> bool {
        self.info.tables[table as usize].table64
    }

    /// Widens an index operand to i64 (zero-extending 32-bit indices).
    fn index_to_i64(builder: &mut FunctionBuilder<'_>, v: Value) -> Value {
        if builder.func.dfg.value_type(v) == types::I64 {
            v
        } else {
            builder.ins().uextend(types::I64, v)
        }
    }

    /// Calls builtin `index` with `args` (vmctx is prepended); returns its results.
    fn call_builtin(
        &self,
        builder: &mut FunctionBuilder<'_>,
        index: u32,
        params: &[ir::Type],
        returns: &[ir::Type],
        args: &[Value],
    ) -> Vec<Value> {
        let mut sig = Signature::new(self.call_conv);
        sig.params.push(AbiParam::new(self.pointer));
        sig.params.extend(params.iter().map(|t| AbiParam::new(*t)));
        sig.returns
            .extend(returns.iter().map(|t| AbiParam::new(*t)));
        let sig_ref = builder.import_signature(sig);
        let vmctx = self.vmctx();
        let table = self.load_ptr(builder, vmctx, VMOffsets::BUILTINS);
        let f = self.load_ptr(builder, table, (index * 8) as i32);
        let mut all = Vec::with_capacity(args.len() + 1);
        all.push(vmctx);
        all.extend_from_slice(args);
        let call = builder.ins().call_indirect(sig_ref, f, &all);
        builder.inst_results(call).to_vec()
    }

    /// Calls a builtin that returns 0 on success or non-zero to trap with `code`.
    fn call_checked_builtin(
        &self,
        builder: &mut FunctionBuilder<'_>,
        index: u32,
        params: &[ir::Type],
        args: &[Value],
        code: ir::TrapCode,
    ) {
        let r = self.call_builtin(builder, index, params, &[types::I32], args);
        builder.ins().trapnz(r[0], code);
    }

    fn wasm_call_args(&self, callee_vmctx: Value, args: &[Value]) -> Vec<Value> {
        let mut all = Vec::with_capacity(args.len() + 2);
        all.push(callee_vmctx);
        all.push(self.vmctx());
        all.extend_from_slice(args);
        all
    }
}

impl TranslationEnv for FuncEnv<'_> {
    fn info(&self) -> &ModuleInfo {
        self.info
    }

    fn pointer_type(&self) -> ir::Type {
        self.pointer
    }

    fn reference_type(&self, _ty: RefType) -> ir::Type {
        self.pointer
    }

    fn wasm_signature(&self, ty: &FuncType) -> Signature {
        wasm_signature(ty, self.pointer)
    }

    fn begin_function(&mut self, builder: &mut FunctionBuilder<'_>, params: &[Value]) {
        self.vmctx = Some(params[0]);
        // Stack limit check in the prologue: vmctx -> store context -> limit.
        let vmctx_gv = builder.func.create_global_value(GlobalValueData::VMContext);
        let ro = MemFlagsData::trusted().with_readonly();
        let ro = builder.func.dfg.mem_flags.insert_unchecked(ro);
        let store_ctx = builder.func.create_global_value(GlobalValueData::Load {
            base: vmctx_gv,
            offset: VMOffsets::STORE_CTX.into(),
            global_type: self.pointer,
            flags: ro,
        });
        let tr = builder
            .func
            .dfg
            .mem_flags
            .insert_unchecked(MemFlagsData::trusted());
        let limit = builder.func.create_global_value(GlobalValueData::Load {
            base: store_ctx,
            offset: offsets::store_ctx::STACK_LIMIT.into(),
            global_type: self.pointer,
            flags: tr,
        });
        builder.func.stack_limit = Some(limit);
    }

    fn scans_body(&self) -> bool {
        self.interruptible
    }

    fn function_entry(&mut self, builder: &mut FunctionBuilder<'_>, shape: FunctionShape) {
        self.fuel_check(builder);
        // A function that calls nothing cannot recurse: its loops have
        // their own checks, and without them it ends after a bounded
        // number of steps, so its entry needs none. (Fuel keeps its entry
        // check: where fuel runs out stays where wasmtime finds it.)
        if shape.makes_calls {
            self.interrupt_check(builder);
        }
    }

    fn loop_header(&mut self, builder: &mut FunctionBuilder<'_>) {
        self.fuel_check(builder);
        self.interrupt_check(builder);
    }

    fn before_operator(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        op: &wasmparser::Operator<'_>,
    ) {
        self.meter_operator(builder, op);
    }

    fn memory_access(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        mem: MemoryIndex,
    ) -> MemoryAccess {
        let vmctx = self.vmctx();
        let memory = self.load_ptr(builder, vmctx, self.offsets.memory_ptr(mem));
        // The base never moves: memories live in fixed reservations.
        let base = self.load_ptr(builder, memory, offsets::memory::BASE);
        if self.memory_is_64(mem) {
            let f = trusted(builder);
            let len = builder
                .ins()
                .load(self.pointer, f, memory, offsets::memory::LENGTH);
            MemoryAccess {
                base,
                bound: Some(len),
                memory64: true,
            }
        } else {
            MemoryAccess {
                base,
                bound: None,
                memory64: false,
            }
        }
    }

    fn memory_size(&mut self, builder: &mut FunctionBuilder<'_>, mem: MemoryIndex) -> Value {
        let vmctx = self.vmctx();
        let memory = self.load_ptr(builder, vmctx, self.offsets.memory_ptr(mem));
        let f = trusted(builder);
        let len = builder
            .ins()
            .load(types::I64, f, memory, offsets::memory::LENGTH);
        let shift = i64::from(self.info.memories[mem as usize].page_size_log2);
        let pages = builder.ins().ushr_imm_u(len, shift);
        if self.memory_is_64(mem) {
            pages
        } else {
            builder.ins().ireduce(types::I32, pages)
        }
    }

    fn memory_grow(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        mem: MemoryIndex,
        delta: Value,
    ) -> Value {
        let mem_idx = builder.ins().iconst(types::I32, i64::from(mem));
        let delta = Self::index_to_i64(builder, delta);
        let r = self.call_builtin(
            builder,
            builtin::MEMORY_GROW,
            &[types::I32, types::I64],
            &[types::I64],
            &[mem_idx, delta],
        )[0];
        if self.memory_is_64(mem) {
            r
        } else {
            builder.ins().ireduce(types::I32, r)
        }
    }

    fn memory_fill(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        mem: MemoryIndex,
        dst: Value,
        val: Value,
        len: Value,
    ) {
        let mem_idx = builder.ins().iconst(types::I32, i64::from(mem));
        let dst = Self::index_to_i64(builder, dst);
        let len = Self::index_to_i64(builder, len);
        self.call_checked_builtin(
            builder,
            builtin::MEMORY_FILL,
            &[types::I32, types::I64, types::I32, types::I64],
            &[mem_idx, dst, val, len],
            codes::HEAP_OUT_OF_BOUNDS,
        );
    }

    fn memory_copy(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        dst_mem: MemoryIndex,
        src_mem: MemoryIndex,
        dst: Value,
        src: Value,
        len: Value,
    ) {
        let d = builder.ins().iconst(types::I32, i64::from(dst_mem));
        let s = builder.ins().iconst(types::I32, i64::from(src_mem));
        let dst = Self::index_to_i64(builder, dst);
        let src = Self::index_to_i64(builder, src);
        let len = Self::index_to_i64(builder, len);
        self.call_checked_builtin(
            builder,
            builtin::MEMORY_COPY,
            &[types::I32, types::I32, types::I64, types::I64, types::I64],
            &[d, s, dst, src, len],
            codes::HEAP_OUT_OF_BOUNDS,
        );
    }

    fn memory_init(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        mem: MemoryIndex,
        segment: u32,
        dst: Value,
        src: Value,
        len: Value,
    ) {
        let m = builder.ins().iconst(types::I32, i64::from(mem));
        let seg = builder.ins().iconst(types::I32, i64::from(segment));
        let dst = Self::index_to_i64(builder, dst);
        self.call_checked_builtin(
            builder,
            builtin::MEMORY_INIT,
            &[types::I32, types::I32, types::I64, types::I32, types::I32],
            &[m, seg, dst, src, len],
            codes::HEAP_OUT_OF_BOUNDS,
        );
    }

    fn data_drop(&mut self, builder: &mut FunctionBuilder<'_>, segment: u32) {
        let seg = builder.ins().iconst(types::I32, i64::from(segment));
        self.call_builtin(builder, builtin::DATA_DROP, &[types::I32], &[], &[seg]);
    }

    fn global_get(&mut self, builder: &mut FunctionBuilder<'_>, global: GlobalIndex) -> Value {
        let ty = clif_type(self.info.globals[global as usize].content, self.pointer);
        let addr = self.global_addr(builder, global);
        let f = trusted(builder);
        builder.ins().load(ty, f, addr, 0)
    }

    fn global_set(&mut self, builder: &mut FunctionBuilder<'_>, global: GlobalIndex, value: Value) {
        let addr = self.global_addr(builder, global);
        let f = trusted(builder);
        builder.ins().store(f, value, addr, 0);
    }

    fn call(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        callee: FuncIndex,
        args: &[Value],
        catches: &[CatchClause],
    ) -> Vec<Value> {
        self.direct_call(builder, callee, args, Call::Normal(catches))
    }

    fn call_indirect(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        table: TableIndex,
        ty: TypeIndex,
        index: Value,
        args: &[Value],
        catches: &[CatchClause],
    ) -> Vec<Value> {
        self.indirect_call(builder, table, ty, index, args, Call::Normal(catches))
    }

    fn return_call(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        callee: FuncIndex,
        args: &[Value],
    ) {
        self.direct_call(builder, callee, args, Call::Tail);
    }

    fn return_call_indirect(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        table: TableIndex,
        ty: TypeIndex,
        index: Value,
        args: &[Value],
    ) {
        self.indirect_call(builder, table, ty, index, args, Call::Tail);
    }

    fn call_ref(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        ty: TypeIndex,
        callee: Value,
        args: &[Value],
        tail: bool,
        catches: &[CatchClause],
    ) -> Vec<Value> {
        let call = if tail {
            Call::Tail
        } else {
            Call::Normal(catches)
        };
        builder.ins().trapz(callee, codes::NULL_REFERENCE);
        // Validation and exact import matching prove the reference's type,
        // but the embedder's API (Table::set, Global::set, Func::call
        // arguments) checks values only by representation: a reference of
        // another function type could come from there, so check it as
        // call_indirect does (one load and compare).
        self.check_signature(builder, callee, ty);
        self.call_funcref(builder, ty, callee, args, call)
    }

    fn throw(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        tag: TagIndex,
        values: &[Value],
        catches: &[CatchClause],
    ) {
        let slot = builder.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            (values.len().max(1) * 16) as u32,
            4,
        ));
        let slots = builder.ins().stack_addr(self.pointer, slot, 0);
        let f = MemFlagsData::trusted();
        for (i, v) in values.iter().enumerate() {
            builder.ins().store(f, *v, slots, (i * 16) as i32);
        }
        let vmctx = self.vmctx();
        let tag_ptr = self.load_ptr(builder, vmctx, self.offsets.tag_ptr(tag));
        self.raise(builder, tag_ptr, slots, catches);
    }

    fn throw_ref(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        exn: Value,
        catches: &[CatchClause],
    ) {
        builder.ins().trapz(exn, codes::NULL_REFERENCE);
        let rethrow = builder.ins().iconst(self.pointer, 0);
        self.raise(builder, rethrow, exn, catches);
    }

    fn exception_payload(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        exn: Value,
        tag: TagIndex,
    ) -> Vec<Value> {
        let tr = trusted(builder);
        let values = builder
            .ins()
            .load(self.pointer, tr, exn, offsets::exception::VALUES);
        let params = self.info.tag_params(tag).to_vec();
        params
            .iter()
            .enumerate()
            .map(|(i, t)| {
                builder
                    .ins()
                    .load(clif_type(*t, self.pointer), tr, values, (i * 16) as i32)
            })
            .collect()
    }

    fn object_has_type(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        obj: Value,
        ty: TypeIndex,
    ) -> Value {
        let tr = trusted(builder);
        let actual = builder.ins().load(types::I32, tr, obj, crate::gc::TYPE_ID);
        self.type_id_matches(builder, actual, ty)
    }

    fn gc_alloc(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        ty: TypeIndex,
        count: Value,
        unit: u32,
    ) -> Value {
        let kind = match self.info.exact_types[ty as usize].composite() {
            crate::exact::Composite::Array(_) => crate::gc::KIND_ARRAY,
            _ => crate::gc::KIND_STRUCT,
        };
        let type_id = self.type_id_of(builder, ty);
        let kind = builder.ins().iconst(types::I32, i64::from(kind));
        let unit = builder.ins().iconst(types::I32, i64::from(unit));
        let obj = self.call_builtin(
            builder,
            builtin::GC_ALLOC,
            &[types::I32; 4],
            &[self.pointer],
            &[type_id, kind, count, unit],
        )[0];
        builder.ins().trapz(obj, codes::GC_HEAP_FULL);
        obj
    }

    fn array_new_segment(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        ty: TypeIndex,
        segment: u32,
        from_data: bool,
        offset: Value,
        len: Value,
        unit: u32,
    ) -> Value {
        let type_id = self.type_id_of(builder, ty);
        let seg = builder.ins().iconst(types::I32, i64::from(segment));
        let obj = if from_data {
            let unit = builder.ins().iconst(types::I32, i64::from(unit));
            self.call_builtin(
                builder,
                builtin::ARRAY_NEW_DATA,
                &[types::I32; 5],
                &[self.pointer],
                &[type_id, seg, offset, len, unit],
            )[0]
        } else {
            self.call_builtin(
                builder,
                builtin::ARRAY_NEW_ELEM,
                &[types::I32; 4],
                &[self.pointer],
                &[type_id, seg, offset, len],
            )[0]
        };
        builder.ins().trapz(obj, codes::GC_HEAP_FULL);
        let short = builder.ins().icmp_imm_u(IntCC::Equal, obj, 1);
        let code = if from_data {
            codes::HEAP_OUT_OF_BOUNDS
        } else {
            codes::TABLE_OUT_OF_BOUNDS
        };
        builder.ins().trapnz(short, code);
        obj
    }

    fn array_copy(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        dst: Value,
        dst_at: Value,
        src: Value,
        src_at: Value,
        len: Value,
        unit: u32,
    ) {
        let unit = builder.ins().iconst(types::I32, i64::from(unit));
        let p = self.pointer;
        self.call_checked_builtin(
            builder,
            builtin::ARRAY_COPY,
            &[p, types::I32, p, types::I32, types::I32, types::I32],
            &[dst, dst_at, src, src_at, len, unit],
            codes::ARRAY_OUT_OF_BOUNDS,
        );
    }

    fn array_init_segment(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        array: Value,
        segment: u32,
        from_data: bool,
        dst: Value,
        src: Value,
        len: Value,
        unit: u32,
    ) {
        let seg = builder.ins().iconst(types::I32, i64::from(segment));
        let p = self.pointer;
        let r = if from_data {
            let unit = builder.ins().iconst(types::I32, i64::from(unit));
            self.call_builtin(
                builder,
                builtin::ARRAY_INIT_DATA,
                &[
                    p,
                    types::I32,
                    types::I32,
                    types::I32,
                    types::I32,
                    types::I32,
                ],
                &[types::I32],
                &[array, seg, dst, src, len, unit],
            )[0]
        } else {
            self.call_builtin(
                builder,
                builtin::ARRAY_INIT_ELEM,
                &[p, types::I32, types::I32, types::I32, types::I32],
                &[types::I32],
                &[array, seg, dst, src, len],
            )[0]
        };
        let array_oob = builder.ins().icmp_imm_u(IntCC::Equal, r, 1);
        builder.ins().trapnz(array_oob, codes::ARRAY_OUT_OF_BOUNDS);
        let code = if from_data {
            codes::HEAP_OUT_OF_BOUNDS
        } else {
            codes::TABLE_OUT_OF_BOUNDS
        };
        builder.ins().trapnz(r, code);
    }

    fn func_has_type(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        funcref: Value,
        ty: TypeIndex,
    ) -> Value {
        self.has_type(builder, funcref, ty)
    }

    fn exception_caught(&mut self, builder: &mut FunctionBuilder<'_>, exn: Value, keep: bool) {
        if keep {
            let one = builder.ins().iconst(types::I8, 1);
            let tr = trusted(builder);
            builder
                .ins()
                .store(tr, one, exn, offsets::exception::PINNED);
        } else {
            self.call_builtin(
                builder,
                builtin::EXCEPTION_RELEASE,
                &[self.pointer],
                &[],
                &[exn],
            );
        }
    }

    fn table_get(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        table: TableIndex,
        index: Value,
    ) -> Value {
        self.table_element(builder, table, index)
    }

    fn table_set(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        table: TableIndex,
        index: Value,
        value: Value,
    ) {
        let addr = self.table_element_addr(builder, table, index);
        let f = trusted(builder);
        builder.ins().store(f, value, addr, 0);
    }

    fn table_size(&mut self, builder: &mut FunctionBuilder<'_>, table: TableIndex) -> Value {
        let t = self.table_ptr(builder, table);
        let f = trusted(builder);
        let len = builder.ins().load(types::I64, f, t, offsets::table::LENGTH);
        if self.table_is_64(table) {
            len
        } else {
            builder.ins().ireduce(types::I32, len)
        }
    }

    fn table_grow(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        table: TableIndex,
        init: Value,
        delta: Value,
    ) -> Value {
        let t = builder.ins().iconst(types::I32, i64::from(table));
        let delta = Self::index_to_i64(builder, delta);
        let r = self.call_builtin(
            builder,
            builtin::TABLE_GROW,
            &[types::I32, self.pointer, types::I64],
            &[types::I64],
            &[t, init, delta],
        )[0];
        if self.table_is_64(table) {
            r
        } else {
            builder.ins().ireduce(types::I32, r)
        }
    }

    fn table_fill(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        table: TableIndex,
        dst: Value,
        val: Value,
        len: Value,
    ) {
        let t = builder.ins().iconst(types::I32, i64::from(table));
        let dst = Self::index_to_i64(builder, dst);
        let len = Self::index_to_i64(builder, len);
        self.call_checked_builtin(
            builder,
            builtin::TABLE_FILL,
            &[types::I32, types::I64, self.pointer, types::I64],
            &[t, dst, val, len],
            codes::TABLE_OUT_OF_BOUNDS,
        );
    }

    fn table_copy(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        dst_table: TableIndex,
        src_table: TableIndex,
        dst: Value,
        src: Value,
        len: Value,
    ) {
        let d = builder.ins().iconst(types::I32, i64::from(dst_table));
        let s = builder.ins().iconst(types::I32, i64::from(src_table));
        let dst = Self::index_to_i64(builder, dst);
        let src = Self::index_to_i64(builder, src);
        let len = Self::index_to_i64(builder, len);
        self.call_checked_builtin(
            builder,
            builtin::TABLE_COPY,
            &[types::I32, types::I32, types::I64, types::I64, types::I64],
            &[d, s, dst, src, len],
            codes::TABLE_OUT_OF_BOUNDS,
        );
    }

    fn table_init(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        table: TableIndex,
        segment: u32,
        dst: Value,
        src: Value,
        len: Value,
    ) {
        let t = builder.ins().iconst(types::I32, i64::from(table));
        let seg = builder.ins().iconst(types::I32, i64::from(segment));
        let dst = Self::index_to_i64(builder, dst);
        self.call_checked_builtin(
            builder,
            builtin::TABLE_INIT,
            &[types::I32, types::I32, types::I64, types::I32, types::I32],
            &[t, seg, dst, src, len],
            codes::TABLE_OUT_OF_BOUNDS,
        );
    }

    fn elem_drop(&mut self, builder: &mut FunctionBuilder<'_>, segment: u32) {
        let seg = builder.ins().iconst(types::I32, i64::from(segment));
        self.call_builtin(builder, builtin::ELEM_DROP, &[types::I32], &[], &[seg]);
    }

    fn ref_func(&mut self, builder: &mut FunctionBuilder<'_>, func: FuncIndex) -> Value {
        let vmctx = self.vmctx();
        builder
            .ins()
            .iadd_imm_u(vmctx, i64::from(self.offsets.funcref(func)))
    }
}

impl FuncEnv<'_> {
    /// A call to function `callee`: a normal call returning its results, or
    /// (`tail`) a tail call that ends the block and returns nothing. Both
    /// sides use [`CallConv::Tail`], so a tail call to an imported function
    /// of another instance replaces this frame like any other: the callee
    /// gets its own VM context and this instance's as the caller's.
    fn direct_call(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        callee: FuncIndex,
        args: &[Value],
        call: Call<'_>,
    ) -> Vec<Value> {
        let ty = self.info.func_type(callee).clone();
        let sig = wasm_signature(&ty, self.pointer);
        let sig_ref = builder.import_signature(sig);
        if self.info.is_imported_func(callee) {
            let vmctx = self.vmctx();
            let import = self.offsets.func_import(callee);
            let code = self.load_ptr(builder, vmctx, import + offsets::funcref::CODE);
            let callee_vmctx = self.load_ptr(builder, vmctx, import + offsets::funcref::VMCTX);
            let all = self.wasm_call_args(callee_vmctx, args);
            self.emit_call(builder, sig_ref, Callee::Indirect(code), &all, call)
        } else {
            let name = builder
                .func
                .declare_imported_user_function(UserExternalName {
                    namespace: NS_WASM_FUNC,
                    index: callee,
                });
            let func_ref = builder.import_function(ExtFuncData {
                name: ExternalName::user(name),
                signature: sig_ref,
                colocated: true,
                patchable: false,
            });
            let vmctx = self.vmctx();
            let all = self.wasm_call_args(vmctx, args);
            self.emit_call(builder, sig_ref, Callee::Direct(func_ref), &all, call)
        }
    }

    /// `call_indirect` (or, with `tail`, `return_call_indirect`): table
    /// bounds, null and signature checks, then the call.
    fn indirect_call(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        table: TableIndex,
        ty: TypeIndex,
        index: Value,
        args: &[Value],
        call: Call<'_>,
    ) -> Vec<Value> {
        let funcref = self.table_element(builder, table, index);
        builder.ins().trapz(funcref, codes::INDIRECT_CALL_TO_NULL);
        self.check_signature(builder, funcref, ty);
        self.call_funcref(builder, ty, funcref, args, call)
    }

    /// Traps with [`codes::BAD_SIGNATURE`] unless the function `funcref`
    /// (not null) points to is of type `ty` or of a subtype of it.
    fn check_signature(&self, builder: &mut FunctionBuilder<'_>, funcref: Value, ty: TypeIndex) {
        let ok = self.has_type(builder, funcref, ty);
        builder.ins().trapz(ok, codes::BAD_SIGNATURE);
    }

    /// Whether the function `funcref` (not null) points to is of type `ty`
    /// or of a subtype of it: an `i8`, 1 or 0.
    fn has_type(&self, builder: &mut FunctionBuilder<'_>, funcref: Value, ty: TypeIndex) -> Value {
        let tr = trusted(builder);
        let actual = builder
            .ins()
            .load(types::I32, tr, funcref, offsets::funcref::TYPE_ID);
        self.type_id_matches(builder, actual, ty)
    }

    /// The engine-wide id of module type `ty` (an i32).
    fn type_id_of(&self, builder: &mut FunctionBuilder<'_>, ty: TypeIndex) -> Value {
        let vmctx = self.vmctx();
        let ro = readonly(builder);
        builder
            .ins()
            .load(types::I32, ro, vmctx, self.offsets.type_id(ty))
    }

    /// Whether engine type id `actual` (an i32) is module type `ty` or a
    /// subtype of it: an `i8`, 1 or 0.
    fn type_id_matches(
        &self,
        builder: &mut FunctionBuilder<'_>,
        actual: Value,
        ty: TypeIndex,
    ) -> Value {
        let expected = self.type_id_of(builder, ty);
        let same = builder.ins().icmp(IntCC::Equal, actual, expected);
        if self.info.exact_types[ty as usize].is_final() {
            // No other type can be a subtype of a final one.
            return same;
        }
        // Another type may declare `ty` as its supertype: ask the engine
        // when the ids differ.
        let slow = builder.create_block();
        let done = builder.create_block();
        let result = builder.append_block_param(done, types::I8);
        builder
            .ins()
            .brif(same, done, &[BlockArg::Value(same)], slow, &[]);
        builder.seal_block(slow);
        builder.switch_to_block(slow);
        let ok = self.call_builtin(
            builder,
            builtin::IS_SUBTYPE,
            &[types::I32, types::I32],
            &[types::I32],
            &[actual, expected],
        )[0];
        let ok = builder.ins().icmp_imm_u(IntCC::NotEqual, ok, 0);
        builder.ins().jump(done, &[BlockArg::Value(ok)]);
        builder.seal_block(done);
        builder.switch_to_block(done);
        result
    }

    /// Calls the function `funcref` (not null) points to, of type `ty`.
    fn call_funcref(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        ty: TypeIndex,
        funcref: Value,
        args: &[Value],
        call: Call<'_>,
    ) -> Vec<Value> {
        let tr = trusted(builder);
        let code = builder
            .ins()
            .load(self.pointer, tr, funcref, offsets::funcref::CODE);
        let callee_vmctx = builder
            .ins()
            .load(self.pointer, tr, funcref, offsets::funcref::VMCTX);
        let sig = wasm_signature(&self.info.types[ty as usize], self.pointer);
        let sig_ref = builder.import_signature(sig);
        let all = self.wasm_call_args(callee_vmctx, args);
        self.emit_call(builder, sig_ref, Callee::Indirect(code), &all, call)
    }

    /// Emits a call of `callee` (signature `sig_ref`): a tail call, a plain
    /// call, or, with catch clauses in effect, a `try_call` whose exception
    /// table names this frame's VM context (the instance whose tags the
    /// clauses mean) and then each clause in order. Returns the results
    /// (none for a tail call, which ends the block).
    fn emit_call(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        sig_ref: ir::SigRef,
        callee: Callee,
        args: &[Value],
        call: Call<'_>,
    ) -> Vec<Value> {
        match (call, callee) {
            (Call::Tail, Callee::Direct(f)) => {
                builder.ins().return_call(f, args);
                Vec::new()
            }
            (Call::Tail, Callee::Indirect(code)) => {
                builder.ins().return_call_indirect(sig_ref, code, args);
                Vec::new()
            }
            (Call::Normal([]), callee) => {
                let inst = match callee {
                    Callee::Direct(f) => builder.ins().call(f, args),
                    Callee::Indirect(code) => builder.ins().call_indirect(sig_ref, code, args),
                };
                builder.inst_results(inst).to_vec()
            }
            (Call::Normal(catches), callee) => {
                let returns: Vec<ir::Type> = builder.func.dfg.signatures[sig_ref]
                    .returns
                    .iter()
                    .map(|r| r.value_type)
                    .collect();
                let normal = builder.create_block();
                for t in &returns {
                    builder.append_block_param(normal, *t);
                }
                let normal_call = BlockCall::new(
                    normal,
                    (0..returns.len() as u32).map(BlockArg::TryCallRet),
                    &mut builder.func.dfg.value_lists,
                );
                // The VM context goes to a stack slot of our own rather than
                // a `Context` item, which the register allocator may leave
                // in a register the call clobbers.
                let slot = *self.vmctx_slot.get_or_insert_with(|| {
                    builder.create_sized_stack_slot(StackSlotData::new(
                        StackSlotKind::ExplicitSlot,
                        8,
                        3,
                    ))
                });
                let vmctx = self.vmctx();
                builder.ins().stack_store(self.pointer, vmctx, slot, 0);
                let pool = &mut builder.func.dfg.value_lists;
                let mut items = Vec::with_capacity(catches.len());
                for c in catches {
                    let to = BlockCall::new(c.landing, [BlockArg::TryCallExn(0)], pool);
                    items.push(match c.tag {
                        Some(t) => ExceptionTableItem::Tag(ExceptionTag::from_u32(t), to),
                        None => ExceptionTableItem::Default(to),
                    });
                }
                let table = builder
                    .func
                    .dfg
                    .exception_tables
                    .push(ExceptionTableData::new(sig_ref, normal_call, items));
                match callee {
                    Callee::Direct(f) => builder.ins().try_call(f, args, table),
                    Callee::Indirect(code) => builder.ins().try_call_indirect(code, args, table),
                };
                builder.seal_block(normal);
                builder.switch_to_block(normal);
                builder.block_params(normal).to_vec()
            }
        }
    }

    /// Calls the throw builtin (`raise(vmctx, tag, arg)`, see
    /// [`builtin::RAISE`]), which never returns here.
    fn raise(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        tag: Value,
        arg: Value,
        catches: &[CatchClause],
    ) {
        // The tail convention, whatever the builtins' native one: it saves
        // no register in the callee, so a `try_call` with it treats every
        // register as clobbered on the exception edge, and the unwinder
        // need restore none. (With the native convention, values kept in
        // callee-saved registers across the call would be garbage in the
        // handler.) The stub moves the arguments to where the native
        // convention wants them.
        let mut sig = Signature::new(CallConv::Tail);
        sig.params.extend([AbiParam::new(self.pointer); 3]);
        let sig_ref = builder.import_signature(sig);
        let vmctx = self.vmctx();
        let table = self.load_ptr(builder, vmctx, VMOffsets::BUILTINS);
        let f = self.load_ptr(builder, table, (builtin::RAISE * 8) as i32);
        self.emit_call(
            builder,
            sig_ref,
            Callee::Indirect(f),
            &[vmctx, tag, arg],
            Call::Normal(catches),
        );
        builder.ins().trap(codes::UNREACHABLE);
    }

    /// Address of element `index` of `table`, trapping when out of bounds.
    fn table_element_addr(
        &self,
        builder: &mut FunctionBuilder<'_>,
        table: TableIndex,
        index: Value,
    ) -> Value {
        let t = self.table_ptr(builder, table);
        let tr = trusted(builder);
        let len = builder
            .ins()
            .load(types::I64, tr, t, offsets::table::LENGTH);
        let index = Self::index_to_i64(builder, index);
        let oob = builder
            .ins()
            .icmp(IntCC::UnsignedGreaterThanOrEqual, index, len);
        builder.ins().trapnz(oob, codes::TABLE_OUT_OF_BOUNDS);
        let elements = builder
            .ins()
            .load(self.pointer, tr, t, offsets::table::ELEMENTS);
        let byte_offset = builder.ins().ishl_imm_u(index, 3);
        builder.ins().iadd(elements, byte_offset)
    }

    /// Element `index` of `table` (a pointer-sized reference), trapping when out of bounds.
    fn table_element(
        &self,
        builder: &mut FunctionBuilder<'_>,
        table: TableIndex,
        index: Value,
    ) -> Value {
        let addr = self.table_element_addr(builder, table, index);
        let f = trusted(builder);
        builder.ins().load(self.pointer, f, addr, 0)
    }
}
