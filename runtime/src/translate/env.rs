//! The boundary between the function translator and the engine.
//!
//! The translator ([`super::translate_function`]) turns one function body's
//! operators into Cranelift IR. Everything that depends on how an instance is
//! laid out in memory — the VM context, tables, globals, how calls reach their
//! callee, the builtin functions — is asked of a [`TranslationEnv`], which the
//! engine implements. The translator never names a VM context offset.
//!
//! ## Function signatures
//!
//! Every wasm function, defined or imported, is compiled with the signature
//! returned by [`TranslationEnv::wasm_signature`]: parameter 0 is the callee's
//! VM context, parameter 1 the caller's VM context, then the wasm parameters
//! in order ([`WASM_PARAM_OFFSET`]); the returns are the wasm results.
//! References (`funcref`, `externref`) are pointer-sized integers, `0` being
//! null ([`TranslationEnv::reference_type`]).
//!
//! ## Exceptions
//!
//! Inside a `try_table`, every call that can throw carries the catch
//! clauses in effect ([`CatchClause`], innermost first): the engine emits
//! it as a Cranelift `try_call` whose exception table sends a caught
//! exception to the clause's landing block, with the exception (a pointer,
//! the `exnref` representation) as the block's first parameter. The
//! landing blocks are the translator's; the engine only reads the payload
//! ([`TranslationEnv::exception_payload`]) and says when a handler is done
//! with an exception ([`TranslationEnv::exception_caught`]).

use alloc::vec::Vec;

use cranelift_codegen::ir::{self, Value};
use cranelift_frontend::FunctionBuilder;

use crate::module_info::{
    FuncIndex, GlobalIndex, MemoryIndex, ModuleInfo, TableIndex, TagIndex, TypeIndex,
};
use crate::types::{FuncType, RefType};

/// Index of the first wasm parameter among a function's Cranelift parameters
/// (after the callee and caller VM contexts).
pub const WASM_PARAM_OFFSET: usize = 2;

/// A catch clause in effect at a call: exceptions of `tag` (`None`: every
/// exception) go to `landing`, whose first parameter receives the
/// exception.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CatchClause {
    /// the module tag caught, or `None` for `catch_all`
    pub tag: Option<TagIndex>,
    /// the landing block (one pointer parameter: the exception)
    pub landing: ir::Block,
}

/// How the translator must address a linear memory.
#[derive(Clone, Copy, Debug)]
pub struct MemoryAccess {
    /// Base address of the memory's bytes.
    pub base: Value,
    /// `None`: the guard reservation covers every address a 32-bit index
    /// plus a 32-bit static offset can form, so no check is emitted.
    /// `Some(len)`: the accessible length in bytes (pointer-sized); the
    /// translator checks `index + offset + access_size <= len` explicitly and
    /// traps with [`crate::trap::codes::HEAP_OUT_OF_BOUNDS`].
    pub bound: Option<Value>,
    /// Whether the memory is a memory64 (indices are i64).
    pub memory64: bool,
}

/// What the translator needs from the engine while translating one function.
///
/// One value serves one function: the engine creates it, the translator
/// calls [`TranslationEnv::begin_function`] once with the entry block's
/// parameters before anything else.
pub trait TranslationEnv {
    /// The module being compiled.
    fn info(&self) -> &ModuleInfo;

    /// The native pointer type.
    fn pointer_type(&self) -> ir::Type;

    /// The Cranelift type used for a reference value (pointer-sized).
    fn reference_type(&self, ty: RefType) -> ir::Type;

    /// The Cranelift signature of a wasm function of type `ty` (see the
    /// module documentation for the parameter layout).
    fn wasm_signature(&self, ty: &FuncType) -> ir::Signature;

    /// Called once per function after the entry block exists and has its
    /// parameters appended; `params` are those block parameters.
    /// The engine records the VM context value here and may set up the stack
    /// limit ([`ir::Function::stack_limit`]).
    fn begin_function(&mut self, builder: &mut FunctionBuilder<'_>, params: &[Value]);

    /// Called at the header of every `loop`, before its body (interruption
    /// checks). Default: nothing.
    fn loop_header(&mut self, _builder: &mut FunctionBuilder<'_>) {}

    /// Called before every reachable operator is translated (fuel
    /// metering). Default: nothing.
    fn before_operator(
        &mut self,
        _builder: &mut FunctionBuilder<'_>,
        _op: &wasmparser::Operator<'_>,
    ) {
    }

    /// Whether [`TranslationEnv::function_entry`] wants the body scanned
    /// first (a pass over its operators, see [`FunctionShape`]). Default:
    /// no.
    fn scans_body(&self) -> bool {
        false
    }

    /// Called once per function after [`TranslationEnv::begin_function`]
    /// and the locals' parameters, in the body's first block
    /// (interruption checks), with what a scan of the body found.
    /// Default: nothing.
    fn function_entry(&mut self, _builder: &mut FunctionBuilder<'_>, _shape: FunctionShape) {}

    /// How to address memory `mem` at this point of the function.
    fn memory_access(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        mem: MemoryIndex,
    ) -> MemoryAccess;

    /// `memory.size` in pages (i32, or i64 for memory64).
    fn memory_size(&mut self, builder: &mut FunctionBuilder<'_>, mem: MemoryIndex) -> Value;
    /// `memory.grow`: old size in pages or -1.
    fn memory_grow(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        mem: MemoryIndex,
        delta: Value,
    ) -> Value;
    /// `memory.fill` (traps out of bounds).
    fn memory_fill(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        mem: MemoryIndex,
        dst: Value,
        val: Value,
        len: Value,
    );
    /// `memory.copy` (traps out of bounds).
    fn memory_copy(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        dst_mem: MemoryIndex,
        src_mem: MemoryIndex,
        dst: Value,
        src: Value,
        len: Value,
    );
    /// `memory.init` (traps out of bounds or on a dropped segment with len > 0).
    fn memory_init(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        mem: MemoryIndex,
        segment: u32,
        dst: Value,
        src: Value,
        len: Value,
    );
    /// `data.drop`
    fn data_drop(&mut self, builder: &mut FunctionBuilder<'_>, segment: u32);

    /// `global.get`
    fn global_get(&mut self, builder: &mut FunctionBuilder<'_>, global: GlobalIndex) -> Value;
    /// `global.set`
    fn global_set(&mut self, builder: &mut FunctionBuilder<'_>, global: GlobalIndex, value: Value);

    /// A direct call to function `callee`; returns the results. Exceptions
    /// go to `catches` (see the module documentation).
    fn call(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        callee: FuncIndex,
        args: &[Value],
        catches: &[CatchClause],
    ) -> Vec<Value>;
    /// `call_indirect`: bounds check on the table, null check, signature check
    /// against type `ty`, then the call; returns the results.
    fn call_indirect(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        table: TableIndex,
        ty: TypeIndex,
        index: Value,
        args: &[Value],
        catches: &[CatchClause],
    ) -> Vec<Value>;

    /// `return_call`: a tail call to function `callee`, whose results are
    /// this function's results. Emits the block terminator.
    fn return_call(&mut self, builder: &mut FunctionBuilder<'_>, callee: FuncIndex, args: &[Value]);
    /// `return_call_indirect`: the checks of [`TranslationEnv::call_indirect`],
    /// then a tail call. Emits the block terminator.
    fn return_call_indirect(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        table: TableIndex,
        ty: TypeIndex,
        index: Value,
        args: &[Value],
    );

    /// `call_ref` (`tail`: `return_call_ref`, which emits the block
    /// terminator): a call through function reference `callee`, of type
    /// `ty` by validation; a null reference traps.
    fn call_ref(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        ty: TypeIndex,
        callee: Value,
        args: &[Value],
        tail: bool,
        catches: &[CatchClause],
    ) -> Vec<Value>;

    /// `throw`: a new exception of `tag` with payload `values`, to the
    /// innermost handler (`catches`, then the callers' ones). Emits the
    /// block terminator.
    fn throw(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        tag: TagIndex,
        values: &[Value],
        catches: &[CatchClause],
    );

    /// `throw_ref`: throws the exception `exn` again (null traps with
    /// [`crate::trap::codes::NULL_REFERENCE`]). Emits the block terminator.
    fn throw_ref(&mut self, builder: &mut FunctionBuilder<'_>, exn: Value, catches: &[CatchClause]);

    /// The payload of exception `exn`, known to be of tag `tag`.
    fn exception_payload(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        exn: Value,
        tag: TagIndex,
    ) -> Vec<Value>;

    /// Whether the function non-null reference `funcref` points to is of
    /// module type `ty` or a subtype of it: an `i8`, 1 or 0.
    fn func_has_type(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        funcref: Value,
        ty: TypeIndex,
    ) -> Value;

    /// Whether the GC object `obj` (not null) is of module type `ty` (a
    /// struct or array type) or a subtype of it: an `i8`, 1 or 0.
    fn object_has_type(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        obj: Value,
        ty: TypeIndex,
    ) -> Value;

    /// A new GC object of module type `ty` (see `crate::gc` for the
    /// layout): `count` (an i32) elements of `unit` bytes, or for a struct
    /// a count of 1 and its body size; header written, body zeroed. Traps
    /// when the GC heap is full.
    fn gc_alloc(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        ty: TypeIndex,
        count: Value,
        unit: u32,
    ) -> Value;

    /// `array.new_data` (`from_data`) or `array.new_elem`: a new array of
    /// type `ty` from `len` elements of segment `segment` at `offset`.
    #[allow(clippy::too_many_arguments)]
    fn array_new_segment(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        ty: TypeIndex,
        segment: u32,
        from_data: bool,
        offset: Value,
        len: Value,
        unit: u32,
    ) -> Value;

    /// `array.copy` between two non-null arrays of `unit`-byte elements.
    #[allow(clippy::too_many_arguments)]
    fn array_copy(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        dst: Value,
        dst_at: Value,
        src: Value,
        src_at: Value,
        len: Value,
        unit: u32,
    );

    /// `array.init_data` (`from_data`) or `array.init_elem` into the
    /// non-null `array`.
    #[allow(clippy::too_many_arguments)]
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
    );

    /// A handler is done reading `exn`; `keep`: it hands wasm an `exnref`
    /// to it (`catch_ref`, `catch_all_ref`), so the exception must live on.
    fn exception_caught(&mut self, builder: &mut FunctionBuilder<'_>, exn: Value, keep: bool);

    /// `table.get` (traps out of bounds).
    fn table_get(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        table: TableIndex,
        index: Value,
    ) -> Value;
    /// `table.set` (traps out of bounds).
    fn table_set(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        table: TableIndex,
        index: Value,
        value: Value,
    );
    /// `table.size`
    fn table_size(&mut self, builder: &mut FunctionBuilder<'_>, table: TableIndex) -> Value;
    /// `table.grow`: old size or -1.
    fn table_grow(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        table: TableIndex,
        init: Value,
        delta: Value,
    ) -> Value;
    /// `table.fill` (traps out of bounds).
    fn table_fill(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        table: TableIndex,
        dst: Value,
        val: Value,
        len: Value,
    );
    /// `table.copy` (traps out of bounds).
    fn table_copy(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        dst_table: TableIndex,
        src_table: TableIndex,
        dst: Value,
        src: Value,
        len: Value,
    );
    /// `table.init` (traps out of bounds).
    fn table_init(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        table: TableIndex,
        segment: u32,
        dst: Value,
        src: Value,
        len: Value,
    );
    /// `elem.drop`
    fn elem_drop(&mut self, builder: &mut FunctionBuilder<'_>, segment: u32);
    /// `ref.func`: a non-null reference to function `func`.
    fn ref_func(&mut self, builder: &mut FunctionBuilder<'_>, func: FuncIndex) -> Value;
}

/// What a scan of a function's body found before its translation (see
/// [`TranslationEnv::scans_body`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FunctionShape {
    /// whether the body calls anything (`call`, `call_indirect`,
    /// `call_ref` or their tail-call forms); `true` when not scanned. A
    /// function that calls nothing cannot recurse: without loops it ends
    /// after a bounded number of steps.
    pub makes_calls: bool,
}
