//! Stores, instances, functions and host calls: the objects of the public
//! API and the machinery under them.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use super::exception::{VMException, VMTag};
use super::offsets::{self, VMOffsets};
use super::{
    VMContextBox, VMFuncRef, VMGlobal, VMMemory, VMStoreContext, VMTable, enter, raw_to_val,
    val_to_raw,
};
use crate::engine::{Engine, Module};
use crate::error::{Error, Trap};
use crate::module_info::{ConstExpr, ConstOp, DataMode, ElementMode, ExportKind, ImportKind};
use crate::trap::{TrapKind, codes};
use crate::types::{FuncType, GlobalType, MemoryType, RefType, TableType, Val, ValType};

/// A host function's body: gets the caller, the arguments, and fills the results.
pub type HostFn<T> = Arc<dyn Fn(&mut Caller<'_, T>, &[Val], &mut [Val]) -> Result<(), Error>>;

/// What a store holds that does not depend on the host data type.
// The boxes are deliberate: compiled code and VM contexts hold raw pointers
// to these objects, so they must not move when the vectors grow.
#[allow(clippy::vec_box)]
pub struct StoreOpaque {
    engine: Engine,
    ctx: Box<VMStoreContext>,
    instances: Vec<Box<InstanceData>>,
    memories: Vec<Box<VMMemory>>,
    tables: Vec<Box<VMTable>>,
    globals: Vec<Box<VMGlobal>>,
    tags: Vec<Box<VMTag>>,
    funcs: Vec<FuncData>,
    host_funcrefs: Vec<Box<VMFuncRef>>,
    /// array trampoline for each engine type id seen in this store
    trampolines: BTreeMap<u32, usize>,
    pending: Option<Error>,
}

struct InstanceData {
    id: usize,
    module: Module,
    vmctx: VMContextBox,
    offsets: VMOffsets,
    memories: Vec<usize>,
    tables: Vec<usize>,
    globals: Vec<usize>,
    tags: Vec<usize>,
    funcs: Vec<Option<usize>>,
    passive_elements: Vec<Option<Vec<usize>>>,
    data_dropped: Vec<bool>,
}

#[derive(Clone)]
struct FuncData {
    /// address of the function's `VMFuncRef`
    funcref: usize,
    ty: FuncType,
    /// index into the store's host functions, for host functions
    host: Option<usize>,
}

#[repr(C)]
struct HostFuncCtx<T> {
    /// `dispatch::<T>`, read by host-call trampolines at offset 0
    dispatch: usize,
    store: *mut StoreInner<T>,
    ty: FuncType,
    type_id: u32,
    func: HostFn<T>,
}

// Boxed for stable addresses (trampolines hold pointers to the contexts).
#[allow(clippy::vec_box)]
pub(crate) struct StoreInner<T> {
    opaque: StoreOpaque,
    host_funcs: Vec<Box<HostFuncCtx<T>>>,
    data: T,
}

/// Interrupts the wasm a store runs (from another thread, a signal or an
/// interrupt handler: raising is one atomic store). See
/// [`Store::set_interrupt_check`].
#[derive(Clone)]
pub struct InterruptHandle(Arc<AtomicU32>);

impl InterruptHandle {
    /// Raises the request: the store's interruptible code calls its
    /// interrupt check at its next function entry or loop header.
    pub fn interrupt(&self) {
        self.0.store(1, Ordering::SeqCst);
    }

    /// The request word itself, for raisers that cannot call
    /// [`InterruptHandle::interrupt`] (a timer's interrupt stub sets it
    /// to 1); valid while this handle lives.
    pub fn request_word(&self) -> &AtomicU32 {
        &self.0
    }
}

/// All wasm state of one program: instances, memories, tables, globals,
/// functions, plus the host's data `T` that host functions see.
pub struct Store<T> {
    inner: Box<StoreInner<T>>,
}

impl<T> Store<T> {
    /// An empty store on `engine` with host data `data`.
    pub fn new(engine: &Engine, data: T) -> Store<T> {
        let request = Arc::new(AtomicU32::new(0));
        Store {
            inner: Box::new(StoreInner {
                opaque: StoreOpaque {
                    engine: engine.clone(),
                    ctx: Box::new(VMStoreContext {
                        stack_limit: 0,
                        interrupt_flag: Arc::as_ptr(&request),
                        fuel: 0,
                        interrupt_request: request,
                        interrupt_check: None,
                        exceptions: Default::default(),
                        gc: super::gc::GcHeap::new(engine.config().max_memory_bytes),
                    }),
                    instances: Vec::new(),
                    memories: Vec::new(),
                    tables: Vec::new(),
                    globals: Vec::new(),
                    tags: Vec::new(),
                    funcs: Vec::new(),
                    host_funcrefs: Vec::new(),
                    trampolines: BTreeMap::new(),
                    pending: None,
                },
                host_funcs: Vec::new(),
                data,
            }),
        }
    }

    /// The host data.
    pub fn data(&self) -> &T {
        &self.inner.data
    }

    /// Asks `check`, once an [`InterruptHandle`] of this store raised its
    /// request and the wasm this store runs reaches a function entry or a
    /// loop header, whether it must stop: a `true` ends the running call
    /// with [`crate::TrapKind::Interrupted`], a `false` goes on (after the
    /// check did the embedder's periodic work). Without a check, a raised
    /// request always stops. Only code compiled by an interruptible engine
    /// ([`crate::Config::interruptible`]) looks; code in a host function is
    /// not interrupted.
    pub fn set_interrupt_check(&mut self, check: impl FnMut() -> bool + Send + 'static) {
        self.inner.opaque.ctx.interrupt_check = Some(Box::new(check));
    }

    /// Sets the fuel left for the wasm this store runs: code compiled by
    /// an engine that consumes fuel ([`crate::Config::consume_fuel`])
    /// spends one unit per operator (none for `nop`, `drop`, `block`,
    /// `loop`, `else`, `end`, `unreachable` and `return`, as wasmtime
    /// counts) and traps with [`crate::TrapKind::OutOfFuel`] when it has
    /// spent more than it was given. A store starts with none.
    pub fn set_fuel(&mut self, fuel: u64) {
        self.inner.opaque.ctx.fuel = i64::try_from(fuel).unwrap_or(i64::MAX);
    }

    /// The fuel left ([`Store::set_fuel`]); 0 once it ran out.
    pub fn fuel(&self) -> u64 {
        u64::try_from(self.inner.opaque.ctx.fuel).unwrap_or(0)
    }

    /// A handle another thread, a signal or an interrupt handler can use
    /// to interrupt the wasm this store runs (see
    /// [`Store::set_interrupt_check`]).
    pub fn interrupt_handle(&self) -> InterruptHandle {
        InterruptHandle(self.inner.opaque.ctx.interrupt_request.clone())
    }

    /// Makes this store's code look at `handle`'s request word instead
    /// of its own: several stores (one per request of a server) share one
    /// word a timer raises. Each store's interrupt check still decides
    /// whether its code stops.
    pub fn share_interrupt(&mut self, handle: &InterruptHandle) {
        let ctx = &mut self.inner.opaque.ctx;
        ctx.interrupt_request = handle.0.clone();
        ctx.interrupt_flag = Arc::as_ptr(&ctx.interrupt_request);
    }

    /// The host data, writable.
    pub fn data_mut(&mut self) -> &mut T {
        &mut self.inner.data
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.opaque.engine
    }

    /// How many wasm exceptions the store holds: thrown and not yet freed,
    /// or kept alive by an `exnref` (see [`super::exception`]).
    pub fn live_exceptions(&self) -> usize {
        self.inner.opaque.ctx.exceptions.live()
    }
}

/// Access to a store's wasm objects, from a [`Store`] or a [`Caller`].
pub trait AsStore {
    /// The store's wasm objects.
    fn opaque(&self) -> &StoreOpaque;
    /// The store's wasm objects, writable.
    fn opaque_mut(&mut self) -> &mut StoreOpaque;
}

impl<T> AsStore for Store<T> {
    fn opaque(&self) -> &StoreOpaque {
        &self.inner.opaque
    }
    fn opaque_mut(&mut self) -> &mut StoreOpaque {
        &mut self.inner.opaque
    }
}

impl<T> AsStore for Caller<'_, T> {
    fn opaque(&self) -> &StoreOpaque {
        &self.store.opaque
    }
    fn opaque_mut(&mut self) -> &mut StoreOpaque {
        &mut self.store.opaque
    }
}

/// A store seen mutably, whether by the embedder ([`Store`]) or from
/// inside a host function ([`Caller`]): enough to call functions (wasm
/// may call the host, which calls wasm again) and to reach the host data.
/// The component model's adapters run in both places.
pub trait StoreMut<T>: AsStore {
    /// Calls `func` with `params`, writing `results`.
    fn call(&mut self, func: Func, params: &[Val], results: &mut [Val]) -> Result<(), Error>;
    /// The host data, writable.
    fn host_data(&mut self) -> &mut T;
}

impl<T> StoreMut<T> for Store<T> {
    fn call(&mut self, func: Func, params: &[Val], results: &mut [Val]) -> Result<(), Error> {
        func.call(self, params, results)
    }
    fn host_data(&mut self) -> &mut T {
        &mut self.inner.data
    }
}

impl<T> StoreMut<T> for Caller<'_, T> {
    fn call(&mut self, func: Func, params: &[Val], results: &mut [Val]) -> Result<(), Error> {
        let inner: *mut StoreInner<T> = &mut *self.store;
        // SAFETY: `inner` comes from the caller's exclusive borrow of the
        // store and is the only path to it until this call returns; the
        // wasm that called the host is suspended meanwhile, and nested
        // entries into wasm keep their own entry context.
        unsafe { call_func(inner, func.0, params, results) }
    }
    fn host_data(&mut self) -> &mut T {
        &mut self.store.data
    }
}

/// The view a host function has of its caller.
pub struct Caller<'a, T> {
    store: &'a mut StoreInner<T>,
    instance: Option<usize>,
}

impl<T> Caller<'_, T> {
    /// The host data.
    pub fn data(&self) -> &T {
        &self.store.data
    }

    /// The host data, writable.
    pub fn data_mut(&mut self) -> &mut T {
        &mut self.store.data
    }

    /// An export of the calling instance (`None` when called from the host).
    pub fn get_export(&mut self, name: &str) -> Option<Extern> {
        let id = self.instance?;
        Instance(id).get_export(self, name)
    }

    /// The bytes of `memory` together with the host data, for host functions
    /// that move data between the two.
    pub fn memory_and_data(&mut self, memory: Memory) -> (&mut [u8], &mut T) {
        let m = &mut self.store.opaque.memories[memory.0];
        (m.data_mut(), &mut self.store.data)
    }
}

/// A function in a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Func(usize);
/// A linear memory in a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memory(usize);
/// A table in a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Table(usize);
/// A global in a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Global(usize);
/// An exception tag in a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tag(usize);
/// An instance in a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instance(usize);

/// Anything an instance can export or import.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extern {
    /// a function
    Func(Func),
    /// a memory
    Memory(Memory),
    /// a table
    Table(Table),
    /// a global
    Global(Global),
    /// an exception tag
    Tag(Tag),
}

impl Extern {
    /// A short word for the kind of thing this is.
    pub fn kind(&self) -> &'static str {
        match self {
            Extern::Func(_) => "function",
            Extern::Memory(_) => "memory",
            Extern::Table(_) => "table",
            Extern::Global(_) => "global",
            Extern::Tag(_) => "tag",
        }
    }
}

impl Memory {
    /// A new memory of type `ty`, owned by the store.
    pub fn new(store: &mut impl AsStore, ty: MemoryType) -> Result<Memory, Error> {
        let s = store.opaque_mut();
        let platform = s.engine.platform()?;
        let m = VMMemory::new(&ty, platform, s.engine.config().max_memory_bytes)?;
        s.memories.push(m);
        Ok(Memory(s.memories.len() - 1))
    }
    /// The memory's bytes.
    pub fn data<'a>(&self, store: &'a (impl AsStore + ?Sized)) -> &'a [u8] {
        store.opaque().memories[self.0].data()
    }
    /// The memory's bytes, writable.
    pub fn data_mut<'a>(&self, store: &'a mut (impl AsStore + ?Sized)) -> &'a mut [u8] {
        store.opaque_mut().memories[self.0].data_mut()
    }
    /// Size in pages.
    pub fn size(&self, store: &impl AsStore) -> u64 {
        store.opaque().memories[self.0].pages()
    }
    /// The memory's type as it is now (its current size as the minimum).
    pub fn ty(&self, store: &(impl AsStore + ?Sized)) -> MemoryType {
        store.opaque().memories[self.0].current_type()
    }
    /// Grows by `delta` pages; returns the old size.
    pub fn grow(&self, store: &mut impl AsStore, delta: u64) -> Option<u64> {
        store.opaque_mut().memories[self.0].grow(delta)
    }
}

impl Table {
    /// A new table of type `ty` filled with `init`.
    pub fn new(store: &mut impl AsStore, ty: TableType, init: Val) -> Result<Table, Error> {
        let s = store.opaque_mut();
        s.tables
            .push(VMTable::new(&ty, val_to_raw(&init) as usize)?);
        Ok(Table(s.tables.len() - 1))
    }
    /// Number of elements.
    pub fn size(&self, store: &impl AsStore) -> u64 {
        store.opaque().tables[self.0].elements().len() as u64
    }
    /// Element `i`.
    pub fn get(&self, store: &impl AsStore, i: u64) -> Option<Val> {
        let t = &store.opaque().tables[self.0];
        let raw = *t.elements().get(usize::try_from(i).ok()?)?;
        Some(raw_to_val(raw as u128, ValType::Ref(t.ty.element)))
    }
}

impl Global {
    /// A new global of type `ty` holding `val`.
    pub fn new(store: &mut impl AsStore, ty: GlobalType, val: Val) -> Result<Global, Error> {
        if val.ty() != ty.content {
            return Err(Error::Host(format!(
                "global of type {} given a {}",
                ty.content,
                val.ty()
            )));
        }
        let s = store.opaque_mut();
        s.globals.push(VMGlobal::new(ty, val_to_raw(&val)));
        Ok(Global(s.globals.len() - 1))
    }
    /// The current value.
    pub fn get(&self, store: &impl AsStore) -> Val {
        let g = &store.opaque().globals[self.0];
        raw_to_val(g.raw(), g.ty.content)
    }
    /// The global's type.
    pub fn ty(&self, store: &impl AsStore) -> GlobalType {
        store.opaque().globals[self.0].ty
    }
}

impl Func {
    /// The function's type.
    pub fn ty<'a>(&self, store: &'a (impl AsStore + ?Sized)) -> &'a FuncType {
        &store.opaque().funcs[self.0].ty
    }

    /// A function value for a non-null function reference of this store.
    pub fn from_ref(store: &mut impl AsStore, r: crate::types::FuncRefHandle) -> Option<Func> {
        let s = store.opaque_mut();
        let raw = r.0.get();
        if let Some(i) = s.funcs.iter().position(|f| f.funcref == raw) {
            return Some(Func(i));
        }
        // SAFETY: the handle came out of this store's tables or calls, so it
        // points to a live VMFuncRef.
        let f = unsafe { super::read_funcref(raw) };
        let ty = s.type_by_id(f.type_id)?;
        s.funcs.push(FuncData {
            funcref: raw,
            ty,
            host: None,
        });
        Some(Func(s.funcs.len() - 1))
    }

    /// A reference to this function, for tables and globals.
    pub fn to_ref(&self, store: &impl AsStore) -> Val {
        let raw = store.opaque().funcs[self.0].funcref;
        raw_to_val(raw as u128, ValType::Ref(RefType::FuncRef))
    }

    /// Calls the function with `params`, writing `results`.
    pub fn call<T>(
        &self,
        store: &mut Store<T>,
        params: &[Val],
        results: &mut [Val],
    ) -> Result<(), Error> {
        let inner: *mut StoreInner<T> = &mut *store.inner;
        // SAFETY: `inner` comes from the exclusive borrow of the store and is the
        // only path to it until this call returns.
        unsafe { call_func(inner, self.0, params, results) }
    }
}

impl StoreOpaque {
    fn type_by_id(&self, id: u32) -> Option<FuncType> {
        self.funcs.iter().find_map(|f| {
            // SAFETY: every FuncData points to a live VMFuncRef of this store.
            let r = unsafe { super::read_funcref(f.funcref) };
            (r.type_id == id).then(|| f.ty.clone())
        })
    }

    fn instance(&self, id: usize) -> &InstanceData {
        &self.instances[id]
    }

    /// The wasm functions whose frames are above the frame at `fp`,
    /// innermost first.
    fn backtrace(&self, fp: usize) -> Vec<crate::error::TrapFrame> {
        enter::wasm_return_addresses(fp)
            .into_iter()
            .filter_map(|ret| self.function_at(ret - 1))
            .map(|(func, name)| crate::error::TrapFrame { func, name })
            .collect()
    }

    /// The wasm functions of a fault's stack: the faulting one, then its
    /// callers, innermost first.
    fn fault_backtrace(&self, t: &enter::TrapRecord) -> Vec<crate::error::TrapFrame> {
        let callers = t.callers[..t.callers_len.min(t.callers.len())]
            .iter()
            .map(|ret| ret - 1);
        core::iter::once(t.pc)
            .chain(callers)
            .filter_map(|pc| self.function_at(pc))
            .map(|(func, name)| crate::error::TrapFrame { func, name })
            .collect()
    }

    /// The wasm function (index, and name if known) whose code holds `pc`.
    fn function_at(&self, pc: usize) -> Option<(u32, Option<String>)> {
        let func = enter::code_at(pc).and_then(|c| c.function_at(pc))?;
        let name = self.instances.iter().find_map(|inst| {
            let base = inst.module.0.code.base();
            (base <= pc && pc < base + inst.module.0.compiled.code.len())
                .then(|| inst.module.0.names.get(&func).cloned())
                .flatten()
        });
        Some((func, name))
    }
}

/// Calls function `func` of the store at `inner`.
///
/// # Safety
/// `inner` must be valid and not otherwise borrowed during the call.
unsafe fn call_func<T>(
    inner: *mut StoreInner<T>,
    func: usize,
    params: &[Val],
    results: &mut [Val],
) -> Result<(), Error> {
    // SAFETY: caller's contract.
    let store = unsafe { &mut *inner };
    let f = store
        .opaque
        .funcs
        .get(func)
        .cloned()
        .ok_or_else(|| Error::Host("no such function".into()))?;
    if params.len() != f.ty.params.len() || results.len() != f.ty.results.len() {
        return Err(Error::Host(format!(
            "function of type {} called with {} arguments and {} result slots",
            f.ty,
            params.len(),
            results.len()
        )));
    }
    for (p, t) in params.iter().zip(f.ty.params.iter()) {
        if p.ty() != *t {
            return Err(Error::Host(format!(
                "argument of type {} where {t} is expected",
                p.ty()
            )));
        }
    }
    if let Some(h) = f.host {
        let func = store.host_funcs[h].func.clone();
        let mut caller = Caller {
            store,
            instance: None,
        };
        return func(&mut caller, params, results);
    }
    // SAFETY: FuncData points to a live VMFuncRef.
    let r = unsafe { super::read_funcref(f.funcref) };
    let tramp = *store
        .opaque
        .trampolines
        .get(&r.type_id)
        .ok_or_else(|| Error::Host("no trampoline for this function type".into()))?;
    let mut values = vec![0u128; params.len().max(results.len()).max(1)];
    for (slot, p) in values.iter_mut().zip(params) {
        *slot = val_to_raw(p);
    }
    let outermost = store.opaque.ctx.stack_limit == 0;
    if outermost {
        let max = store.opaque.engine.config().max_wasm_stack;
        store.opaque.ctx.stack_limit = enter::approximate_sp().saturating_sub(max);
    }
    // SAFETY: the trampoline is the array trampoline for the callee's type; the
    // values buffer has room for every parameter and result.
    let outcome = unsafe { enter::call_wasm(tramp, r.vmctx, 0, r.code, values.as_mut_ptr()) };
    // SAFETY: `inner` is still valid; host calls during wasm are over.
    let store = unsafe { &mut *inner };
    if outermost {
        store.opaque.ctx.stack_limit = 0;
    }
    match outcome {
        Ok(()) => {
            for (res, (slot, t)) in results
                .iter_mut()
                .zip(values.iter().zip(f.ty.results.iter()))
            {
                *res = raw_to_val(*slot, *t);
            }
            Ok(())
        }
        Err(enter::Unwound::Exception { exception, pc }) => {
            // Nothing in wasm can reach the exception any more unless an
            // exnref to it exists (then it is pinned and stays).
            // SAFETY: the unwinder hands over a live exception of this store.
            unsafe {
                store
                    .opaque
                    .ctx
                    .exceptions
                    .release(exception as *const VMException)
            };
            Err(Error::Trap(Trap {
                kind: TrapKind::UncaughtException,
                func: store.opaque.function_at(pc),
                message: None,
                backtrace: Vec::new(),
            }))
        }
        Err(enter::Unwound::Trap(t)) => {
            if t.code == codes::HOST_ERROR
                && let Some(e) = store.opaque.pending.take()
            {
                return Err(e);
            }
            Err(Error::Trap(Trap {
                kind: TrapKind::from_code(t.code),
                func: store.opaque.function_at(t.pc),
                message: None,
                backtrace: store.opaque.fault_backtrace(&t),
            }))
        }
    }
}

/// The host-call dispatcher: called by host-call trampolines.
extern "C" fn dispatch<T>(
    host_ctx: usize,
    caller_vmctx: usize,
    values: *mut u128,
    count: usize,
    frame_pointer: usize,
) -> u32 {
    // SAFETY: trampolines pass the HostFuncCtx<T> this function was registered with.
    let ctx = unsafe { &*(host_ctx as *const HostFuncCtx<T>) };
    // SAFETY: the store outlives its instances' code; wasm is suspended in this call.
    let store = unsafe { &mut *ctx.store };
    // SAFETY: `values` has `count` slots (trampoline contract).
    let slots = unsafe { core::slice::from_raw_parts_mut(values, count) };
    let instance = if caller_vmctx == 0 {
        None
    } else {
        // SAFETY: a non-zero caller context is a live instance's VM context.
        let data = unsafe {
            *((caller_vmctx + VMOffsets::INSTANCE as usize) as *const *const InstanceData)
        };
        // SAFETY: as above; InstanceData lives in the store.
        Some(unsafe { (*data).id })
    };
    let params: Vec<Val> = ctx
        .ty
        .params
        .iter()
        .zip(slots.iter())
        .map(|(t, s)| raw_to_val(*s, *t))
        .collect();
    let mut results: Vec<Val> = ctx
        .ty
        .results
        .iter()
        .map(|t| Val::default_for(*t))
        .collect();
    let func = ctx.func.clone();
    let mut caller = Caller { store, instance };
    match func(&mut caller, &params, &mut results) {
        Ok(()) => {
            for ((slot, r), t) in slots.iter_mut().zip(&results).zip(ctx.ty.results.iter()) {
                if r.ty() != *t {
                    caller.store.opaque.pending = Some(Error::Host(format!(
                        "host function returned a {} where {t} is expected",
                        r.ty()
                    )));
                    return 1;
                }
                *slot = val_to_raw(r);
            }
            0
        }
        Err(mut e) => {
            if let Error::Trap(t) = &mut e
                && t.backtrace.is_empty()
            {
                t.backtrace = caller.store.opaque.backtrace(frame_pointer);
            }
            caller.store.opaque.pending = Some(e);
            1
        }
    }
}

impl<T> Store<T> {
    /// Defines a host function in this store.
    pub fn host_func(&mut self, ty: FuncType, func: HostFn<T>) -> Func {
        let inner: *mut StoreInner<T> = &mut *self.inner;
        let type_id = self.inner.opaque.engine.intern_type(&ty);
        let ctx = Box::new(HostFuncCtx {
            dispatch: dispatch::<T> as *const () as usize,
            store: inner,
            ty: ty.clone(),
            type_id,
            func,
        });
        let ctx_addr = &*ctx as *const HostFuncCtx<T> as usize;
        self.inner.host_funcs.push(ctx);
        // The code pointer is filled per importing module (its host trampoline);
        // until then, calls from the host go straight to the closure.
        let r = Box::new(VMFuncRef {
            code: 0,
            vmctx: ctx_addr,
            type_id,
        });
        let funcref = &*r as *const VMFuncRef as usize;
        let s = &mut self.inner.opaque;
        s.host_funcrefs.push(r);
        s.funcs.push(FuncData {
            funcref,
            ty,
            host: Some(self.inner.host_funcs.len() - 1),
        });
        Func(self.inner.opaque.funcs.len() - 1)
    }

    /// Instantiates `module` with `imports` given in the module's import order.
    pub fn instantiate(&mut self, module: &Module, imports: &[Extern]) -> Result<Instance, Error> {
        let inner: *mut StoreInner<T> = &mut *self.inner;
        let instance = self.inner.opaque.instantiate(module, imports)?;
        if let Some(start) = module.info().start {
            let f = Instance(instance).func_handle(&mut self.inner.opaque, start);
            // SAFETY: `inner` is this store, exclusively borrowed by `self`.
            unsafe { call_func(inner, f.0, &[], &mut [])? };
        }
        Ok(Instance(instance))
    }
}

impl Instance {
    /// An export by name.
    pub fn get_export(&self, store: &mut impl AsStore, name: &str) -> Option<Extern> {
        let s = store.opaque_mut();
        let inst = s.instance(self.0);
        let kind = inst
            .module
            .info()
            .exports
            .iter()
            .find(|e| e.name == name)?
            .kind;
        Some(match kind {
            ExportKind::Func(f) => Extern::Func(self.func_handle(s, f)),
            ExportKind::Memory(m) => Extern::Memory(Memory(inst.memories[m as usize])),
            ExportKind::Table(t) => Extern::Table(Table(inst.tables[t as usize])),
            ExportKind::Global(g) => Extern::Global(Global(inst.globals[g as usize])),
            ExportKind::Tag(t) => Extern::Tag(Tag(inst.tags[t as usize])),
        })
    }

    /// An exported function by name.
    pub fn get_func(&self, store: &mut impl AsStore, name: &str) -> Option<Func> {
        match self.get_export(store, name)? {
            Extern::Func(f) => Some(f),
            _ => None,
        }
    }

    /// An exported memory by name.
    pub fn get_memory(&self, store: &mut impl AsStore, name: &str) -> Option<Memory> {
        match self.get_export(store, name)? {
            Extern::Memory(m) => Some(m),
            _ => None,
        }
    }

    /// An exported global by name.
    pub fn get_global(&self, store: &mut impl AsStore, name: &str) -> Option<Global> {
        match self.get_export(store, name)? {
            Extern::Global(g) => Some(g),
            _ => None,
        }
    }

    /// The names of all exports, in order.
    pub fn export_names(&self, store: &impl AsStore) -> Vec<String> {
        store
            .opaque()
            .instance(self.0)
            .module
            .info()
            .exports
            .iter()
            .map(|e| e.name.clone())
            .collect()
    }

    fn func_handle(&self, s: &mut StoreOpaque, f: u32) -> Func {
        if let Some(id) = s.instances[self.0].funcs[f as usize] {
            return Func(id);
        }
        let inst = &s.instances[self.0];
        let funcref = inst.vmctx.addr() + inst.offsets.funcref(f) as usize;
        let ty = inst.module.info().func_type(f).clone();
        s.funcs.push(FuncData {
            funcref,
            ty,
            host: None,
        });
        let id = s.funcs.len() - 1;
        s.instances[self.0].funcs[f as usize] = Some(id);
        Func(id)
    }
}

fn memory_type_matches(actual: &MemoryType, wanted: &MemoryType) -> bool {
    actual.memory64 == wanted.memory64
        && actual.shared == wanted.shared
        && actual.page_size_log2 == wanted.page_size_log2
        && actual.minimum >= wanted.minimum
        && match (actual.maximum, wanted.maximum) {
            (_, None) => true,
            (Some(a), Some(w)) => a <= w,
            (None, Some(_)) => false,
        }
}

fn table_type_matches(actual: &TableType, wanted: &TableType) -> bool {
    actual.element == wanted.element
        && actual.table64 == wanted.table64
        && actual.minimum >= wanted.minimum
        && match (actual.maximum, wanted.maximum) {
            (_, None) => true,
            (Some(a), Some(w)) => a <= w,
            (None, Some(_)) => false,
        }
}

impl StoreOpaque {
    fn instantiate(&mut self, module: &Module, imports: &[Extern]) -> Result<usize, Error> {
        if !module.0.engine.same(&self.engine) {
            return Err(Error::Instantiate(
                "the module was compiled by another engine".into(),
            ));
        }
        let info = module.info();
        if imports.len() != info.imports.len() {
            return Err(Error::Instantiate(format!(
                "the module has {} imports, {} given",
                info.imports.len(),
                imports.len()
            )));
        }
        let offsets = VMOffsets::new(info);
        let mut vmctx = VMContextBox::new(offsets.size());
        let id = self.instances.len();
        let mut inst = Box::new(InstanceData {
            id,
            module: module.clone(),
            vmctx: VMContextBox::new(16),
            offsets,
            memories: Vec::new(),
            tables: Vec::new(),
            globals: Vec::new(),
            tags: Vec::new(),
            funcs: vec![None; info.functions.len()],
            passive_elements: Vec::new(),
            data_dropped: vec![false; info.data.len()],
        });
        vmctx.write_usize(
            VMOffsets::STORE_CTX,
            &*self.ctx as *const VMStoreContext as usize,
        );
        vmctx.write_usize(VMOffsets::BUILTINS, &BUILTINS as *const Builtins as usize);
        vmctx.write_usize(VMOffsets::INSTANCE, &*inst as *const InstanceData as usize);
        for (i, t) in module.0.type_ids.iter().enumerate() {
            vmctx.write_u32(offsets.type_id(i as u32), *t);
        }
        let code_base = module.0.code.base();

        // Imports.
        let mut func_index = 0u32;
        for (import, ext) in info.imports.iter().zip(imports) {
            let link_err = |reason: String| Error::Link {
                module: import.module.clone(),
                name: import.name.clone(),
                reason,
            };
            match (&import.kind, ext) {
                (ImportKind::Func(t), Extern::Func(f)) => {
                    let data = self.funcs[f.0].clone();
                    // SAFETY: FuncData points to a live VMFuncRef.
                    let mut r = unsafe { super::read_funcref(data.funcref) };
                    // Engine-wide ids of canonical types: the function's
                    // type must be the import's or declare it as a
                    // supertype.
                    if !self
                        .engine
                        .is_subtype(r.type_id, module.0.type_ids[*t as usize])
                    {
                        return Err(link_err(format!(
                            "function of type {} where {} is expected",
                            data.ty, info.exact_types[*t as usize]
                        )));
                    }
                    if data.host.is_some() {
                        let tramp = module.0.compiled.host_trampolines[*t as usize]
                            .ok_or_else(|| link_err("no host trampoline for this type".into()))?;
                        r.code = code_base + tramp as usize;
                        // Host functions called through tables need the code too.
                        let b = Box::new(r);
                        let ptr = &*b as *const VMFuncRef as usize;
                        self.host_funcrefs.push(b);
                        self.funcs.push(FuncData {
                            funcref: ptr,
                            ty: data.ty.clone(),
                            host: data.host,
                        });
                        inst.funcs[func_index as usize] = Some(self.funcs.len() - 1);
                    } else {
                        inst.funcs[func_index as usize] = Some(f.0);
                    }
                    let at = offsets.func_import(func_index);
                    vmctx.write_usize(at + offsets::funcref::CODE, r.code);
                    vmctx.write_usize(at + offsets::funcref::VMCTX, r.vmctx);
                    vmctx.write_funcref(offsets.funcref(func_index), r);
                    func_index += 1;
                }
                (ImportKind::Memory(want), Extern::Memory(m)) => {
                    let have = self.memories[m.0].current_type();
                    if !memory_type_matches(&have, want) {
                        return Err(link_err(format!(
                            "memory limits {have:?} do not match {want:?}"
                        )));
                    }
                    let ptr = &*self.memories[m.0] as *const VMMemory as usize;
                    vmctx.write_usize(offsets.memory_ptr(inst.memories.len() as u32), ptr);
                    inst.memories.push(m.0);
                }
                (ImportKind::Table(want), Extern::Table(t)) => {
                    let have = self.tables[t.0].current_type();
                    let want_element = &info.exact_table_elements[inst.tables.len()];
                    if self.tables[t.0].exact_element != *want_element {
                        return Err(link_err(format!(
                            "table of {} where {want_element} is expected",
                            self.tables[t.0].exact_element
                        )));
                    }
                    if !table_type_matches(&have, want) {
                        return Err(link_err(format!(
                            "table limits {have:?} do not match {want:?}"
                        )));
                    }
                    let ptr = &*self.tables[t.0] as *const VMTable as usize;
                    vmctx.write_usize(offsets.table_ptr(inst.tables.len() as u32), ptr);
                    inst.tables.push(t.0);
                }
                (ImportKind::Global(want), Extern::Global(g)) => {
                    // Mutable globals must match exactly, constant ones may
                    // hold a subtype.
                    let have = &self.globals[g.0];
                    let want_content = &info.exact_globals[inst.globals.len()];
                    let content_ok = if want.mutable {
                        have.exact == *want_content
                    } else {
                        have.exact.matches(want_content)
                    };
                    if have.ty.mutable != want.mutable || !content_ok {
                        return Err(link_err(format!(
                            "{} global of {} where a {} global of {want_content} is expected",
                            if have.ty.mutable {
                                "mutable"
                            } else {
                                "constant"
                            },
                            have.exact,
                            if want.mutable { "mutable" } else { "constant" },
                        )));
                    }
                    let ptr = &*self.globals[g.0] as *const VMGlobal as usize;
                    vmctx.write_usize(offsets.global_ptr(inst.globals.len() as u32), ptr);
                    inst.globals.push(g.0);
                }
                (ImportKind::Tag(t), Extern::Tag(tag)) => {
                    // Tag types match exactly, like function types.
                    let want = &info.exact_types[*t as usize];
                    let have = &self.tags[tag.0];
                    if have.ty != *want {
                        return Err(link_err(format!(
                            "tag of type {} where {want} is expected",
                            have.ty
                        )));
                    }
                    let ptr = &**have as *const VMTag as usize;
                    vmctx.write_usize(offsets.tag_ptr(inst.tags.len() as u32), ptr);
                    inst.tags.push(tag.0);
                }
                (want, got) => {
                    let want = match want {
                        ImportKind::Func(_) => "function",
                        ImportKind::Memory(_) => "memory",
                        ImportKind::Table(_) => "table",
                        ImportKind::Global(_) => "global",
                        ImportKind::Tag(_) => "tag",
                    };
                    return Err(link_err(format!("expected a {want}, got a {}", got.kind())));
                }
            }
        }

        // Defined functions' references.
        for (i, (off, _)) in module.0.compiled.functions.iter().enumerate() {
            let f = info.num_imported_funcs + i as u32;
            let type_id = module.0.type_ids[info.functions[f as usize] as usize];
            vmctx.write_funcref(
                offsets.funcref(f),
                VMFuncRef {
                    code: code_base + *off as usize,
                    vmctx: vmctx.addr(),
                    type_id,
                },
            );
        }

        // Defined tags: each definition is a new identity.
        for t in &info.tags[info.num_imported_tags as usize..] {
            let tag = Box::new(VMTag {
                ty: info.exact_types[*t as usize].clone(),
                params: info.types[*t as usize].params.clone(),
            });
            vmctx.write_usize(
                offsets.tag_ptr(inst.tags.len() as u32),
                &*tag as *const VMTag as usize,
            );
            self.tags.push(tag);
            inst.tags.push(self.tags.len() - 1);
        }

        // Defined memories.
        let platform = self.engine.platform()?;
        let limit = self.engine.config().max_memory_bytes;
        for ty in &info.memories[info.num_imported_memories as usize..] {
            let m = VMMemory::new(ty, platform, limit)?;
            vmctx.write_usize(
                offsets.memory_ptr(inst.memories.len() as u32),
                &*m as *const VMMemory as usize,
            );
            self.memories.push(m);
            inst.memories.push(self.memories.len() - 1);
        }

        // Defined globals (may read imported globals and function references).
        inst.vmctx = vmctx;
        for (i, init) in info.global_inits.iter().enumerate() {
            let ty = info.globals[info.num_imported_globals as usize + i];
            let raw = self.eval(&inst, init)?;
            let mut g = VMGlobal::new(ty, raw);
            g.exact = info.exact_globals[info.num_imported_globals as usize + i].clone();
            let at = inst.offsets.global_ptr(inst.globals.len() as u32);
            inst.vmctx.write_usize(at, &*g as *const VMGlobal as usize);
            self.globals.push(g);
            inst.globals.push(self.globals.len() - 1);
        }

        // Defined tables.
        for (i, ty) in info.tables[info.num_imported_tables as usize..]
            .iter()
            .enumerate()
        {
            let init = match &info.table_inits[i] {
                Some(e) => self.eval(&inst, e)? as usize,
                None => 0,
            };
            let mut t = VMTable::new(ty, init)?;
            t.exact_element =
                info.exact_table_elements[info.num_imported_tables as usize + i].clone();
            let at = inst.offsets.table_ptr(inst.tables.len() as u32);
            inst.vmctx.write_usize(at, &*t as *const VMTable as usize);
            self.tables.push(t);
            inst.tables.push(self.tables.len() - 1);
        }

        // Element segments: evaluate all; copy active ones; keep passive ones.
        let mut actions = Vec::new();
        for seg in &info.elements {
            let items = seg
                .items
                .iter()
                .map(|e| self.eval(&inst, e).map(|r| r as usize))
                .collect::<Result<Vec<_>, _>>()?;
            match &seg.mode {
                ElementMode::Passive => inst.passive_elements.push(Some(items)),
                ElementMode::Declared => inst.passive_elements.push(None),
                ElementMode::Active { table, offset } => {
                    let at = self.eval(&inst, offset)? as u64;
                    actions.push((*table, at, items));
                    inst.passive_elements.push(None);
                }
            }
        }
        self.instances.push(inst);
        // Only now does the store keep the module (and its code) alive, so
        // only now may its trampolines serve calls of these types.
        for (i, t) in module.0.type_ids.iter().enumerate() {
            self.trampolines
                .entry(*t)
                .or_insert(code_base + module.0.compiled.array_trampolines[i] as usize);
        }
        for (table, at, items) in actions {
            let t = &mut self.tables[self.instances[id].tables[table as usize]];
            let end = at.checked_add(items.len() as u64);
            match end {
                Some(end) if end <= t.elements().len() as u64 => {
                    t.elements_mut()[at as usize..end as usize].copy_from_slice(&items);
                }
                _ => {
                    return Err(Error::Trap(Trap {
                        kind: TrapKind::TableOutOfBounds,
                        func: None,
                        message: Some("element segment does not fit in the table".into()),
                        backtrace: Vec::new(),
                    }));
                }
            }
        }
        // Data segments.
        for (i, seg) in info.data.iter().enumerate() {
            if let DataMode::Active { memory, offset } = &seg.mode {
                // An i32 offset is zero-extended, an i64 one (memory64) used whole.
                let at = eval_const(&self.globals, &mut self.ctx.gc, &self.instances[id], offset)?
                    as u64;
                let bytes = &module.0.data[i];
                let m = &mut self.memories[self.instances[id].memories[*memory as usize]];
                let data = m.data_mut();
                match at.checked_add(bytes.len() as u64) {
                    Some(end) if end <= data.len() as u64 => {
                        data[at as usize..end as usize].copy_from_slice(bytes)
                    }
                    _ => {
                        return Err(Error::Trap(Trap {
                            kind: TrapKind::MemoryOutOfBounds,
                            func: None,
                            message: Some("data segment does not fit in the memory".into()),
                            backtrace: Vec::new(),
                        }));
                    }
                }
                self.instances[id].data_dropped[i] = true;
            }
        }
        Ok(id)
    }

    /// Evaluates a constant expression to its raw slot value.
    fn eval(&mut self, inst: &InstanceData, e: &ConstExpr) -> Result<u128, Error> {
        eval_const(&self.globals, &mut self.ctx.gc, inst, e)
    }
}

/// The trap of a full GC heap.
fn heap_full() -> Error {
    Error::Trap(Trap {
        kind: TrapKind::GcHeapFull,
        func: None,
        message: None,
        backtrace: Vec::new(),
    })
}

/// A new GC object of module type `t` of `inst` (see
/// [`super::gc::GcHeap::new_object`]).
fn new_object(
    gc: &mut super::gc::GcHeap,
    inst: &InstanceData,
    t: u32,
    kind: u8,
    count: u32,
    unit: u32,
) -> Result<usize, Error> {
    let type_id = inst.module.0.type_ids[t as usize];
    gc.new_object(type_id, kind, count, unit)
        .ok_or_else(heap_full)
}

/// Evaluates a constant expression of instance `inst` to its raw slot
/// value; `globals` are the store's globals, `gc` its GC heap (constant
/// expressions may allocate structs and arrays).
fn eval_const(
    globals: &[Box<VMGlobal>],
    gc: &mut super::gc::GcHeap,
    inst: &InstanceData,
    e: &ConstExpr,
) -> Result<u128, Error> {
    {
        let global = |g: u32| -> Result<u128, Error> {
            let id = *inst
                .globals
                .get(g as usize)
                .ok_or_else(|| Error::Instantiate("global index".into()))?;
            Ok(globals[id].raw())
        };
        let funcref = |f: u32| (inst.vmctx.addr() + inst.offsets.funcref(f) as usize) as u128;
        Ok(match e {
            ConstExpr::I32(v) => u128::from(*v as u32),
            ConstExpr::I64(v) => u128::from(*v as u64),
            ConstExpr::F32(b) => u128::from(*b),
            ConstExpr::F64(b) => u128::from(*b),
            ConstExpr::V128(v) => *v,
            ConstExpr::RefNull(_) => 0,
            ConstExpr::RefFunc(f) => funcref(*f),
            ConstExpr::GlobalGet(g) => global(*g)?,
            ConstExpr::Extended(ops) => {
                let mut stack: Vec<u128> = Vec::new();
                for op in ops.iter() {
                    let v = match *op {
                        ConstOp::I32(v) => u128::from(v as u32),
                        ConstOp::I64(v) => u128::from(v as u64),
                        ConstOp::GlobalGet(g) => global(g)?,
                        ConstOp::RefFunc(f) => funcref(f),
                        ConstOp::RefNull(_) => 0,
                        ConstOp::RefI31 => {
                            let v = stack.pop().unwrap_or(0) as u32;
                            u128::from((u64::from(v & 0x7fff_ffff) << 1) | super::any_ref::I31_TAG)
                        }
                        ConstOp::StructNew(t) | ConstOp::StructNewDefault(t) => {
                            let info = inst.module.info();
                            let layout = crate::gc::struct_layout(info, t)
                                .ok_or_else(|| Error::Instantiate("struct type".into()))?;
                            let mut values = alloc::vec![0u128; layout.fields.len()];
                            if matches!(op, ConstOp::StructNew(_)) {
                                for v in values.iter_mut().rev() {
                                    *v = stack.pop().unwrap_or(0);
                                }
                            }
                            let obj =
                                new_object(gc, inst, t, crate::gc::KIND_STRUCT, 1, layout.body)?;
                            for ((offset, storage), v) in layout.fields.iter().zip(&values) {
                                let bytes = v.to_le_bytes();
                                // SAFETY: a fresh struct with this field.
                                unsafe {
                                    super::gc::write_bytes(
                                        obj,
                                        *offset as usize,
                                        &bytes[..storage.size() as usize],
                                    )
                                };
                            }
                            obj as u128
                        }
                        ConstOp::ArrayNew(t)
                        | ConstOp::ArrayNewDefault(t)
                        | ConstOp::ArrayNewFixed(t, _) => {
                            let info = inst.module.info();
                            let unit = crate::gc::array_layout(info, t)
                                .ok_or_else(|| Error::Instantiate("array type".into()))?
                                .element
                                .size();
                            // The elements: `len` copies of one value, or
                            // the last `n` operands. The object is made
                            // first, so a length the GC heap cannot hold
                            // is its trap before anything is allocated.
                            let (len, fill, fixed) = match op {
                                ConstOp::ArrayNewFixed(_, n) => {
                                    let at = stack.len().saturating_sub(*n as usize);
                                    let items = stack.split_off(at);
                                    (items.len(), 0, Some(items))
                                }
                                ConstOp::ArrayNew(_) => {
                                    let len = stack.pop().unwrap_or(0) as u32;
                                    (len as usize, stack.pop().unwrap_or(0), None)
                                }
                                _ => (stack.pop().unwrap_or(0) as u32 as usize, 0, None),
                            };
                            let len = u32::try_from(len).map_err(|_| heap_full())?;
                            let obj = new_object(gc, inst, t, crate::gc::KIND_ARRAY, len, unit)?;
                            let element = |v: u128| v.to_le_bytes().into_iter().take(unit as usize);
                            // Written a bounded chunk at a time.
                            const CHUNK: usize = 256;
                            let mut chunk: Vec<u8> = Vec::with_capacity(CHUNK * unit as usize);
                            let mut at = crate::gc::HEADER as usize;
                            let mut write = |chunk: &mut Vec<u8>| {
                                // SAFETY: a fresh array of `len` elements of
                                // `unit` bytes; the chunks cover it once, in
                                // order.
                                unsafe { super::gc::write_bytes(obj, at, chunk) };
                                at += chunk.len();
                                chunk.clear();
                            };
                            for i in 0..len as usize {
                                let v = fixed.as_ref().map_or(fill, |items| items[i]);
                                chunk.extend(element(v));
                                if chunk.len() >= CHUNK * unit as usize {
                                    write(&mut chunk);
                                }
                            }
                            write(&mut chunk);
                            obj as u128
                        }
                        bin => {
                            let (b, a) = (stack.pop().unwrap_or(0), stack.pop().unwrap_or(0));
                            let (a32, b32, a64, b64) = (a as u32, b as u32, a as u64, b as u64);
                            match bin {
                                ConstOp::I32Add => u128::from(a32.wrapping_add(b32)),
                                ConstOp::I32Sub => u128::from(a32.wrapping_sub(b32)),
                                ConstOp::I32Mul => u128::from(a32.wrapping_mul(b32)),
                                ConstOp::I64Add => u128::from(a64.wrapping_add(b64)),
                                ConstOp::I64Sub => u128::from(a64.wrapping_sub(b64)),
                                _ => u128::from(a64.wrapping_mul(b64)),
                            }
                        }
                    };
                    stack.push(v);
                }
                stack.pop().unwrap_or(0)
            }
        })
    }
}

// ---------------------------------------------------------------------------
// Builtins: called from compiled code with the caller's VM context.
// ---------------------------------------------------------------------------

#[repr(C)]
struct Builtins {
    memory_grow: extern "C" fn(usize, u32, u64) -> u64,
    memory_fill: extern "C" fn(usize, u32, u64, u32, u64) -> u32,
    memory_copy: extern "C" fn(usize, u32, u32, u64, u64, u64) -> u32,
    memory_init: extern "C" fn(usize, u32, u32, u64, u32, u32) -> u32,
    data_drop: extern "C" fn(usize, u32),
    table_grow: extern "C" fn(usize, u32, usize, u64) -> u64,
    table_fill: extern "C" fn(usize, u32, u64, usize, u64) -> u32,
    table_copy: extern "C" fn(usize, u32, u32, u64, u64, u64) -> u32,
    table_init: extern "C" fn(usize, u32, u32, u64, u32, u32) -> u32,
    elem_drop: extern "C" fn(usize, u32),
    raise: unsafe extern "C" fn(usize, usize, usize) -> !,
    exception_release: extern "C" fn(usize, usize),
    is_subtype: extern "C" fn(usize, u32, u32) -> u32,
    gc_alloc: extern "C" fn(usize, u32, u32, u32, u32) -> usize,
    array_new_data: extern "C" fn(usize, u32, u32, u32, u32, u32) -> usize,
    array_new_elem: extern "C" fn(usize, u32, u32, u32, u32) -> usize,
    array_copy: extern "C" fn(usize, usize, u32, usize, u32, u32, u32) -> u32,
    array_init_data: extern "C" fn(usize, usize, u32, u32, u32, u32, u32) -> u32,
    array_init_elem: extern "C" fn(usize, usize, u32, u32, u32, u32) -> u32,
    interrupt: extern "C" fn(usize) -> u32,
}

unsafe extern "C" {
    /// The throw stub (`vm/arch`): `raise(vmctx, tag, arg)`, see
    /// [`offsets::builtin::RAISE`].
    fn basalt_raise(vmctx: usize, tag: usize, arg: usize) -> !;
}

const _: () = assert!(size_of::<Builtins>() == 8 * offsets::builtin::COUNT as usize);

static BUILTINS: Builtins = Builtins {
    memory_grow: builtin_memory_grow,
    memory_fill: builtin_memory_fill,
    memory_copy: builtin_memory_copy,
    memory_init: builtin_memory_init,
    data_drop: builtin_data_drop,
    table_grow: builtin_table_grow,
    table_fill: builtin_table_fill,
    table_copy: builtin_table_copy,
    table_init: builtin_table_init,
    elem_drop: builtin_elem_drop,
    raise: basalt_raise,
    exception_release: builtin_exception_release,
    is_subtype: builtin_is_subtype,
    gc_alloc: builtin_gc_alloc,
    array_new_data: builtin_array_new_data,
    array_new_elem: builtin_array_new_elem,
    array_copy: builtin_array_copy,
    array_init_data: builtin_array_init_data,
    array_init_elem: builtin_array_init_elem,
    interrupt: builtin_interrupt,
};

/// The instance whose compiled code passed `vmctx`.
fn instance_of<'a>(vmctx: usize) -> &'a mut InstanceData {
    // SAFETY: compiled code passes its own live VM context, whose INSTANCE slot
    // points to the boxed InstanceData (wasm is suspended during the builtin).
    let slot = unsafe { *((vmctx + VMOffsets::INSTANCE as usize) as *const *mut InstanceData) };
    // SAFETY: as above: the slot holds a pointer to the live InstanceData.
    unsafe { &mut *slot }
}

fn memory_of<'a>(vmctx: usize, inst: &InstanceData, mem: u32) -> &'a mut VMMemory {
    let at = inst.offsets.memory_ptr(mem) as usize;
    // SAFETY: the slot holds a pointer to a live VMMemory of the store.
    let slot = unsafe { *((vmctx + at) as *const *mut VMMemory) };
    // SAFETY: as above.
    unsafe { &mut *slot }
}

fn table_of<'a>(vmctx: usize, inst: &InstanceData, table: u32) -> &'a mut VMTable {
    let at = inst.offsets.table_ptr(table) as usize;
    // SAFETY: the slot holds a pointer to a live VMTable of the store.
    let slot = unsafe { *((vmctx + at) as *const *mut VMTable) };
    // SAFETY: as above.
    unsafe { &mut *slot }
}

fn in_bounds(start: u64, len: u64, size: usize) -> Option<core::ops::Range<usize>> {
    let end = start.checked_add(len)?;
    (end <= size as u64).then_some(start as usize..end as usize)
}

extern "C" fn builtin_memory_grow(vmctx: usize, mem: u32, delta: u64) -> u64 {
    let inst = instance_of(vmctx);
    memory_of(vmctx, inst, mem).grow(delta).unwrap_or(u64::MAX)
}

extern "C" fn builtin_memory_fill(vmctx: usize, mem: u32, dst: u64, val: u32, len: u64) -> u32 {
    let inst = instance_of(vmctx);
    let data = memory_of(vmctx, inst, mem).data_mut();
    match in_bounds(dst, len, data.len()) {
        Some(r) => {
            data[r].fill(val as u8);
            0
        }
        None => 1,
    }
}

extern "C" fn builtin_interrupt(vmctx: usize) -> u32 {
    // SAFETY: wasm is suspended in this builtin; nothing else borrows the
    // store context meanwhile.
    let ctx = unsafe { super::store_context_of(vmctx) };
    // Lowered before the check runs: a request raised while it runs is
    // seen at the next function entry or loop header.
    ctx.interrupt_request.store(0, Ordering::SeqCst);
    match ctx.interrupt_check.as_mut() {
        Some(check) => u32::from(check()),
        None => 1,
    }
}

extern "C" fn builtin_memory_copy(
    vmctx: usize,
    dst_mem: u32,
    src_mem: u32,
    dst: u64,
    src: u64,
    len: u64,
) -> u32 {
    let inst = instance_of(vmctx);
    if dst_mem == src_mem {
        let data = memory_of(vmctx, inst, dst_mem).data_mut();
        match (
            in_bounds(dst, len, data.len()),
            in_bounds(src, len, data.len()),
        ) {
            (Some(d), Some(s)) => {
                data.copy_within(s, d.start);
                0
            }
            _ => 1,
        }
    } else {
        // Two memory indices may name one memory (imported twice): copy
        // through raw pointers with `memmove` semantics, never through
        // two slices, and never through a copy of the source.
        let (src_base, src_len) = memory_of(vmctx, inst, src_mem).raw_parts();
        let (dst_base, dst_len) = memory_of(vmctx, inst, dst_mem).raw_parts();
        match (in_bounds(dst, len, dst_len), in_bounds(src, len, src_len)) {
            // `copy` wants non-null pointers even for no bytes.
            (Some(_), Some(s)) if s.is_empty() => 0,
            (Some(d), Some(s)) => {
                let from = src_base.wrapping_add(s.start);
                let to = dst_base.wrapping_add(d.start);
                // SAFETY: both ranges lie inside the committed bytes of
                // live memories (checked); `copy` allows them to overlap.
                unsafe { core::ptr::copy(from, to, s.len()) };
                0
            }
            _ => 1,
        }
    }
}

extern "C" fn builtin_memory_init(
    vmctx: usize,
    mem: u32,
    seg: u32,
    dst: u64,
    src: u32,
    len: u32,
) -> u32 {
    let module = instance_of(vmctx).module.clone();
    let bytes = data_segment(vmctx, &module, seg);
    let inst = instance_of(vmctx);
    let data = memory_of(vmctx, inst, mem).data_mut();
    match (
        in_bounds(dst, u64::from(len), data.len()),
        in_bounds(u64::from(src), u64::from(len), bytes.len()),
    ) {
        (Some(d), Some(s)) => {
            data[d].copy_from_slice(&bytes[s]);
            0
        }
        _ => 1,
    }
}

extern "C" fn builtin_data_drop(vmctx: usize, seg: u32) {
    instance_of(vmctx).data_dropped[seg as usize] = true;
}

extern "C" fn builtin_table_grow(vmctx: usize, table: u32, init: usize, delta: u64) -> u64 {
    let inst = instance_of(vmctx);
    table_of(vmctx, inst, table)
        .grow(delta, init)
        .unwrap_or(u64::MAX)
}

extern "C" fn builtin_table_fill(vmctx: usize, table: u32, dst: u64, val: usize, len: u64) -> u32 {
    let inst = instance_of(vmctx);
    let t = table_of(vmctx, inst, table);
    match in_bounds(dst, len, t.elements().len()) {
        Some(r) => {
            t.elements_mut()[r].fill(val);
            0
        }
        None => 1,
    }
}

extern "C" fn builtin_table_copy(
    vmctx: usize,
    dst_t: u32,
    src_t: u32,
    dst: u64,
    src: u64,
    len: u64,
) -> u32 {
    let inst = instance_of(vmctx);
    let src_elems = table_of(vmctx, inst, src_t).elements().to_vec();
    let d = table_of(vmctx, inst, dst_t);
    match (
        in_bounds(dst, len, d.elements().len()),
        in_bounds(src, len, src_elems.len()),
    ) {
        (Some(dr), Some(sr)) => {
            d.elements_mut()[dr].copy_from_slice(&src_elems[sr]);
            0
        }
        _ => 1,
    }
}

extern "C" fn builtin_table_init(
    vmctx: usize,
    table: u32,
    seg: u32,
    dst: u64,
    src: u32,
    len: u32,
) -> u32 {
    let items = element_segment(vmctx, seg);
    let inst = instance_of(vmctx);
    let t = table_of(vmctx, inst, table);
    match (
        in_bounds(dst, u64::from(len), t.elements().len()),
        in_bounds(u64::from(src), u64::from(len), items.len()),
    ) {
        (Some(d), Some(s)) => {
            t.elements_mut()[d].copy_from_slice(&items[s]);
            0
        }
        _ => 1,
    }
}

extern "C" fn builtin_elem_drop(vmctx: usize, seg: u32) {
    instance_of(vmctx).passive_elements[seg as usize] = None;
}

extern "C" fn builtin_is_subtype(vmctx: usize, actual: u32, expected: u32) -> u32 {
    let engine = &instance_of(vmctx).module.0.engine;
    u32::from(engine.is_subtype(actual, expected))
}

extern "C" fn builtin_gc_alloc(
    vmctx: usize,
    type_id: u32,
    kind: u32,
    count: u32,
    unit: u32,
) -> usize {
    // SAFETY: compiled code passes its live VM context; wasm is suspended.
    let store = unsafe { super::store_context_of(vmctx) };
    store
        .gc
        .new_object(type_id, kind as u8, count, unit)
        .unwrap_or(0)
}

/// The bytes of data segment `seg` of the instance at `vmctx`, whose
/// module is `module` (empty once dropped).
fn data_segment(vmctx: usize, module: &Module, seg: u32) -> &[u8] {
    if instance_of(vmctx).data_dropped[seg as usize] {
        &[]
    } else {
        &module.0.data[seg as usize]
    }
}

/// The items of element segment `seg` of the instance at `vmctx` (empty
/// once dropped).
fn element_segment(vmctx: usize, seg: u32) -> Vec<usize> {
    instance_of(vmctx).passive_elements[seg as usize]
        .clone()
        .unwrap_or_default()
}

extern "C" fn builtin_array_new_data(
    vmctx: usize,
    type_id: u32,
    seg: u32,
    offset: u32,
    len: u32,
    unit: u32,
) -> usize {
    let module = instance_of(vmctx).module.clone();
    let bytes = data_segment(vmctx, &module, seg);
    let Some(src) = in_bounds(
        u64::from(offset),
        u64::from(len) * u64::from(unit),
        bytes.len(),
    ) else {
        return 1;
    };
    // SAFETY: compiled code passes its live VM context; wasm is suspended.
    let store = unsafe { super::store_context_of(vmctx) };
    let Some(obj) = store
        .gc
        .new_object(type_id, crate::gc::KIND_ARRAY, len, unit)
    else {
        return 0;
    };
    // SAFETY: a fresh array of `len` elements of `unit` bytes.
    unsafe { super::gc::write_bytes(obj, crate::gc::HEADER as usize, &bytes[src]) };
    obj
}

extern "C" fn builtin_array_new_elem(
    vmctx: usize,
    type_id: u32,
    seg: u32,
    offset: u32,
    len: u32,
) -> usize {
    let items = element_segment(vmctx, seg);
    let Some(src) = in_bounds(u64::from(offset), u64::from(len), items.len()) else {
        return 1;
    };
    // SAFETY: compiled code passes its live VM context; wasm is suspended.
    let store = unsafe { super::store_context_of(vmctx) };
    let Some(obj) = store.gc.new_object(type_id, crate::gc::KIND_ARRAY, len, 8) else {
        return 0;
    };
    let bytes: Vec<u8> = items[src].iter().flat_map(|r| r.to_le_bytes()).collect();
    // SAFETY: a fresh array of `len` pointer-sized elements.
    unsafe { super::gc::write_bytes(obj, crate::gc::HEADER as usize, &bytes) };
    obj
}

extern "C" fn builtin_array_copy(
    _vmctx: usize,
    dst: usize,
    dst_at: u32,
    src: usize,
    src_at: u32,
    len: u32,
    unit: u32,
) -> u32 {
    let unit64 = u64::from(unit);
    // SAFETY: compiled code passes two live, non-null arrays whose
    // elements are `unit` bytes (validation: the same element type).
    let dst_len = unsafe { super::gc::array_len(dst) };
    // SAFETY: as above.
    let src_len = unsafe { super::gc::array_len(src) };
    let (Some(d), Some(s)) = (
        in_bounds(
            u64::from(dst_at) * unit64,
            u64::from(len) * unit64,
            dst_len as usize * unit as usize,
        ),
        in_bounds(
            u64::from(src_at) * unit64,
            u64::from(len) * unit64,
            src_len as usize * unit as usize,
        ),
    ) else {
        return 1;
    };
    let base = crate::gc::HEADER as usize;
    // SAFETY: both ranges are inside their arrays' bodies (checked above);
    // `copy` allows them to overlap (the same array).
    unsafe {
        core::ptr::copy(
            (src + base + s.start) as *const u8,
            (dst + base + d.start) as *mut u8,
            d.len(),
        );
    }
    0
}

extern "C" fn builtin_array_init_data(
    vmctx: usize,
    array: usize,
    seg: u32,
    dst: u32,
    src: u32,
    len: u32,
    unit: u32,
) -> u32 {
    let module = instance_of(vmctx).module.clone();
    let bytes = data_segment(vmctx, &module, seg);
    // SAFETY: compiled code passes a live, non-null array of `unit`-byte elements.
    let body = unsafe { super::gc::array_bytes(array, unit) };
    let unit64 = u64::from(unit);
    let Some(d) = in_bounds(u64::from(dst) * unit64, u64::from(len) * unit64, body.len()) else {
        return 1;
    };
    let Some(s) = in_bounds(u64::from(src), u64::from(len) * unit64, bytes.len()) else {
        return 2;
    };
    body[d].copy_from_slice(&bytes[s]);
    0
}

extern "C" fn builtin_array_init_elem(
    vmctx: usize,
    array: usize,
    seg: u32,
    dst: u32,
    src: u32,
    len: u32,
) -> u32 {
    let items = element_segment(vmctx, seg);
    // SAFETY: compiled code passes a live, non-null array of references.
    let body = unsafe { super::gc::array_bytes(array, 8) };
    let Some(d) = in_bounds(u64::from(dst) * 8, u64::from(len) * 8, body.len()) else {
        return 1;
    };
    let Some(s) = in_bounds(u64::from(src), u64::from(len), items.len()) else {
        return 2;
    };
    let bytes: Vec<u8> = items[s].iter().flat_map(|r| r.to_le_bytes()).collect();
    body[d].copy_from_slice(&bytes);
    0
}

extern "C" fn builtin_exception_release(vmctx: usize, exn: usize) {
    // SAFETY: compiled code passes its live VM context; wasm is suspended
    // in this call.
    let store = unsafe { super::store_context_of(vmctx) };
    // SAFETY: compiled code passes the exception its handler received.
    unsafe { store.exceptions.release(exn as *const VMException) };
}

impl Error {
    /// A trap raised by a host function with a message.
    pub fn host_trap(message: impl ToString) -> Error {
        Error::Trap(Trap {
            kind: TrapKind::HostError,
            func: None,
            message: Some(message.to_string()),
            backtrace: Vec::new(),
        })
    }
}
