//! Layout of an instance's VM context: the one table compiled code reads
//! everything through. Safe code: only numbers.
//!
//! ```text
//! 0   *mut VMStoreContext       (stack limit, shared by the store)
//! 8   *const Builtins           (engine functions callable from wasm)
//! 16  *mut InstanceData         (the owning instance, for host code)
//! 24  type ids       [u32; types]            engine-wide id of each module type
//! ..  function imports [VMFunctionImport; imported funcs]  (code, vmctx)
//! ..  memories       [*mut VMMemory; memories]
//! ..  tables         [*mut VMTable; tables]
//! ..  globals        [*mut VMGlobal; globals]
//! ..  tags           [*const VMTag; tags]     (a tag's identity is its address)
//! ..  funcrefs       [VMFuncRef; functions]  (code, vmctx, type id)
//! ```
//!
//! Every pointer slot holds a pointer that never changes for the lifetime of
//! the instance, so compiled code loads them as read-only.

use crate::module_info::ModuleInfo;

/// Offsets inside `VMStoreContext`.
pub mod store_ctx {
    /// lowest stack address wasm may use (prologue check)
    pub const STACK_LIMIT: i32 = 0;
    /// the address of the interrupt request (`*const AtomicU32`, see
    /// `VMStoreContext::interrupt_flag`)
    pub const INTERRUPT_FLAG: i32 = 8;
    /// the fuel left (i64, see `VMStoreContext::fuel`)
    pub const FUEL: i32 = 16;
}

/// Offsets inside `VMMemory`.
pub mod memory {
    /// base address of the memory's bytes
    pub const BASE: i32 = 0;
    /// accessible length in bytes
    pub const LENGTH: i32 = 8;
}

/// Offsets inside `VMTable`.
pub mod table {
    /// pointer to the element array (pointer-sized elements)
    pub const ELEMENTS: i32 = 0;
    /// number of elements (u64)
    pub const LENGTH: i32 = 8;
}

/// Offsets inside `VMFuncRef` and `VMFunctionImport`.
pub mod funcref {
    /// native code of the function (wasm calling convention)
    pub const CODE: i32 = 0;
    /// VM context to pass as the callee's context
    pub const VMCTX: i32 = 8;
    /// engine-wide type id (u32), `VMFuncRef` only
    pub const TYPE_ID: i32 = 16;
    /// size of a `VMFuncRef`
    pub const SIZE: u32 = 24;
    /// size of a `VMFunctionImport`
    pub const IMPORT_SIZE: u32 = 16;
}

/// Offsets inside `VMException`, the object an `exnref` points to.
pub mod exception {
    /// the thrown tag (`*const VMTag`), the identity `catch` compares
    pub const TAG: i32 = 0;
    /// pointer to the payload: one 16-byte slot per tag parameter
    pub const VALUES: i32 = 8;
    /// u8: non-zero once an `exnref` to the exception exists, which keeps
    /// it alive until its store is dropped
    pub const PINNED: i32 = 16;
}

/// Size of a global's storage cell.
pub const GLOBAL_SIZE: u32 = 16;

/// The computed layout of one module's VM context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VMOffsets {
    num_types: u32,
    num_imported_funcs: u32,
    num_memories: u32,
    num_tables: u32,
    num_globals: u32,
    num_tags: u32,
    num_funcs: u32,
}

impl VMOffsets {
    /// Offset of the store context pointer.
    pub const STORE_CTX: i32 = 0;
    /// Offset of the builtins table pointer.
    pub const BUILTINS: i32 = 8;
    /// Offset of the owning instance pointer.
    pub const INSTANCE: i32 = 16;
    const TYPE_IDS: u32 = 24;

    /// The layout for `info`.
    pub fn new(info: &ModuleInfo) -> Self {
        VMOffsets {
            num_types: info.types.len() as u32,
            num_imported_funcs: info.num_imported_funcs,
            num_memories: info.memories.len() as u32,
            num_tables: info.tables.len() as u32,
            num_globals: info.globals.len() as u32,
            num_tags: info.tags.len() as u32,
            num_funcs: info.functions.len() as u32,
        }
    }

    /// Offset of the engine type id of module type `ty`.
    pub fn type_id(&self, ty: u32) -> i32 {
        (Self::TYPE_IDS + 4 * ty) as i32
    }

    fn func_imports_start(&self) -> u32 {
        (Self::TYPE_IDS + 4 * self.num_types).next_multiple_of(8)
    }

    /// Offset of the `VMFunctionImport` of imported function `f`.
    pub fn func_import(&self, f: u32) -> i32 {
        (self.func_imports_start() + funcref::IMPORT_SIZE * f) as i32
    }

    fn memories_start(&self) -> u32 {
        self.func_imports_start() + funcref::IMPORT_SIZE * self.num_imported_funcs
    }

    /// Offset of the pointer to memory `m`'s `VMMemory`.
    pub fn memory_ptr(&self, m: u32) -> i32 {
        (self.memories_start() + 8 * m) as i32
    }

    fn tables_start(&self) -> u32 {
        self.memories_start() + 8 * self.num_memories
    }

    /// Offset of the pointer to table `t`'s `VMTable`.
    pub fn table_ptr(&self, t: u32) -> i32 {
        (self.tables_start() + 8 * t) as i32
    }

    fn globals_start(&self) -> u32 {
        self.tables_start() + 8 * self.num_tables
    }

    /// Offset of the pointer to global `g`'s storage cell.
    pub fn global_ptr(&self, g: u32) -> i32 {
        (self.globals_start() + 8 * g) as i32
    }

    /// Offset of the first tag pointer (the unwinder finds tag `t` of a
    /// frame's instance at `vmctx + tags_start + 8 * t`).
    pub fn tags_start(&self) -> u32 {
        self.globals_start() + 8 * self.num_globals
    }

    /// Offset of the pointer to tag `t`'s `VMTag`.
    pub fn tag_ptr(&self, t: u32) -> i32 {
        (self.tags_start() + 8 * t) as i32
    }

    fn funcrefs_start(&self) -> u32 {
        self.tags_start() + 8 * self.num_tags
    }

    /// Offset of function `f`'s `VMFuncRef`.
    pub fn funcref(&self, f: u32) -> i32 {
        (self.funcrefs_start() + funcref::SIZE * f) as i32
    }

    /// Total size of the VM context in bytes.
    pub fn size(&self) -> usize {
        (self.funcrefs_start() + funcref::SIZE * self.num_funcs) as usize
    }
}

/// Indices of the engine's builtin functions in the builtins table (each
/// slot a pointer-sized function pointer, native C calling convention).
pub mod builtin {
    /// `memory_grow(vmctx, mem: u32, delta: u64) -> u64` — old size in pages, or `u64::MAX`
    pub const MEMORY_GROW: u32 = 0;
    /// `memory_fill(vmctx, mem: u32, dst: u64, val: u32, len: u64) -> u32` — 0 ok, 1 out of bounds
    pub const MEMORY_FILL: u32 = 1;
    /// `memory_copy(vmctx, dst_mem: u32, src_mem: u32, dst: u64, src: u64, len: u64) -> u32`
    pub const MEMORY_COPY: u32 = 2;
    /// `memory_init(vmctx, mem: u32, seg: u32, dst: u64, src: u32, len: u32) -> u32`
    pub const MEMORY_INIT: u32 = 3;
    /// `data_drop(vmctx, seg: u32)`
    pub const DATA_DROP: u32 = 4;
    /// `table_grow(vmctx, table: u32, init: ptr, delta: u64) -> u64` — old size, or `u64::MAX`
    pub const TABLE_GROW: u32 = 5;
    /// `table_fill(vmctx, table: u32, dst: u64, val: ptr, len: u64) -> u32`
    pub const TABLE_FILL: u32 = 6;
    /// `table_copy(vmctx, dst: u32, src: u32, dst_idx: u64, src_idx: u64, len: u64) -> u32`
    pub const TABLE_COPY: u32 = 7;
    /// `table_init(vmctx, table: u32, seg: u32, dst: u64, src: u32, len: u32) -> u32`
    pub const TABLE_INIT: u32 = 8;
    /// `elem_drop(vmctx, seg: u32)`
    pub const ELEM_DROP: u32 = 9;
    /// `raise(vmctx, tag: u32, values: ptr)` throws a new exception of tag
    /// `tag` with the payload in `values` (16-byte slots);
    /// `raise(vmctx, u32::MAX, exn: ptr)` throws `exn` again. Never returns:
    /// it resumes at the innermost matching handler (`try_call`'s exception
    /// table) or, uncaught, ends the wasm call with an exception.
    pub const RAISE: u32 = 10;
    /// `exception_release(vmctx, exn: ptr)`: a handler that does not keep an
    /// `exnref` is done with the exception; frees it unless pinned.
    pub const EXCEPTION_RELEASE: u32 = 11;
    /// `is_subtype(vmctx, actual: u32, expected: u32) -> u32`: 1 when
    /// engine type `actual` is `expected` or declares it as a supertype
    pub const IS_SUBTYPE: u32 = 12;
    /// `gc_alloc(vmctx, type_id: u32, kind: u32, count: u32, unit: u32) -> ptr`:
    /// a new GC object, header written, body zeroed (`count` elements of
    /// `unit` bytes; a struct is one element of its body size); 0 when the
    /// GC heap is full
    pub const GC_ALLOC: u32 = 13;
    /// `array_new_data(vmctx, type_id: u32, data: u32, offset: u32, len: u32, unit: u32) -> ptr`:
    /// 0 when the GC heap is full, 1 when the segment is too short
    pub const ARRAY_NEW_DATA: u32 = 14;
    /// `array_new_elem(vmctx, type_id: u32, elem: u32, offset: u32, len: u32) -> ptr`:
    /// 0 when the GC heap is full, 1 when the segment is too short
    pub const ARRAY_NEW_ELEM: u32 = 15;
    /// `array_copy(vmctx, dst: ptr, dst_at: u32, src: ptr, src_at: u32, len: u32, unit: u32) -> u32`:
    /// 0, or 1 out of bounds
    pub const ARRAY_COPY: u32 = 16;
    /// `array_init_data(vmctx, array: ptr, data: u32, dst: u32, src: u32, len: u32, unit: u32) -> u32`:
    /// 0, 1 array out of bounds, 2 segment out of bounds
    pub const ARRAY_INIT_DATA: u32 = 17;
    /// `array_init_elem(vmctx, array: ptr, elem: u32, dst: u32, src: u32, len: u32) -> u32`:
    /// 0, 1 array out of bounds, 2 segment out of bounds
    pub const ARRAY_INIT_ELEM: u32 = 18;
    /// `interrupt(vmctx) -> u32`: the interrupt request was raised; lowers
    /// it and asks the store's interrupt check: 0 go on, 1 trap (interrupted)
    pub const INTERRUPT: u32 = 19;
    /// number of builtins
    pub const COUNT: u32 = 20;
}
