//! Fused adapters: a call from one component to a function another
//! component lifted, compiled like any wasm.
//!
//! Where a component lowers a function that another component lifted,
//! the values pass from the caller's flat values and memory to the
//! callee's without becoming host values: [`fuse`] writes a core module
//! whose one function takes the caller's lowered call, translates its
//! arguments ([`emit`]), calls the callee's core function, translates
//! the results back and calls the callee's `post-return`. The module is
//! compiled by the store's engine, as wasmtime compiles its fused
//! adapters. Entering and leaving the callee (the component model's
//! re-entrance rules), `realloc` with its checks, strings (validated and
//! transcoded between the two encodings) and traps are calls to the
//! host, as in wasmtime's adapters.
//!
//! Types with resource handles (their tables are the host's) or values
//! of the async types keep the host's path: the call is lifted into
//! host values and lowered again (`func::call_lowered`).

mod emit;

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use wasm_encoder::{
    CodeSection, EntityType, ExportKind, ExportSection, Function, FunctionSection, ImportSection,
    MemoryType as WasmMemoryType, Module as WasmModule, TypeSection, ValType as W,
};

use super::abi::layout::{self, Flat, MAX_FLAT_PARAMS, MAX_FLAT_RESULTS, alignment, size};
use super::abi::{Content, Cx, Options, lift, lower, strings, trap};
use super::func::ComponentFunc;
use super::handles::{BorrowScope, InstanceState};
use super::types::{ResourceType, Type};
use crate::engine::Module;
use crate::error::Error;
use crate::types::{FuncType as CoreFuncType, Val, ValType};
use crate::vm::store::{Caller, Extern, Func, Store, StoreMut};
use emit::{ALLOC_SPILL, Body, Mem, Side, Slot, TRAP_MESSAGES, TRAP_POINTER, Unsupported};

/// Indices of the adapter module's imported functions.
const ENTER: u32 = 0;
const LEAVE: u32 = 1;
const TRAP: u32 = 2;
const ALLOC_CALLEE: u32 = 3;
const ALLOC_CALLER: u32 = 4;
const STRING_TO_CALLEE: u32 = 5;
const STRING_TO_CALLER: u32 = 6;
const CALLEE: u32 = 7;
const POST_RETURN: u32 = 8;
/// The first of the handle imports (three per resource type).
const HANDLES: u32 = 9;

/// One call through a fused adapter that has entered its callee.
struct Frame {
    /// the instances the call entered
    entered: Vec<Arc<InstanceState>>,
    /// the callee's instance, whose task the call is
    callee: Arc<InstanceState>,
    /// the caller's instance
    caller: Arc<InstanceState>,
    /// the borrowed handles the callee got, which it must drop before it
    /// returns
    scope: Arc<BorrowScope>,
    /// the caller's handles lent to the call, returned when it ends
    lenders: Vec<u32>,
}

impl Frame {
    /// Ends the call: the callee's task, the loans, the entered instances.
    fn end(self) {
        self.callee.end_task();
        let mut table = self.caller.handles.lock();
        for i in self.lenders {
            if let Ok(h) = table.get_mut(i) {
                h.lends = h.lends.saturating_sub(1);
            }
        }
        drop(table);
        InstanceState::leave(&self.entered);
    }
}

#[cfg(feature = "std")]
std::thread_local! {
    static FRAMES: core::cell::RefCell<Vec<Frame>> = const { core::cell::RefCell::new(Vec::new()) };
}

#[cfg(feature = "std")]
fn with_frames<R>(f: impl FnOnce(&mut Vec<Frame>) -> R) -> R {
    FRAMES.with(|fr| f(&mut fr.borrow_mut()))
}

/// The kernel runs one program on one CPU: one stack of frames.
#[cfg(not(feature = "std"))]
static FRAMES: spin::Mutex<Vec<Frame>> = spin::Mutex::new(Vec::new());

#[cfg(not(feature = "std"))]
fn with_frames<R>(f: impl FnOnce(&mut Vec<Frame>) -> R) -> R {
    f(&mut FRAMES.lock())
}

/// How many adapter calls are in progress (on this thread).
pub(crate) fn depth() -> usize {
    with_frames(|f| f.len())
}

/// Leaves the adapter calls beyond `depth`: those a trap unwound past
/// (a call from the host that returns undoes what the compiled adapters
/// under it could not).
pub(crate) fn unwind_to(depth: usize) {
    let stale: Vec<Frame> = with_frames(|f| f.drain(depth.min(f.len())..).collect());
    for fr in stale.into_iter().rev() {
        fr.end();
    }
}

fn wasm(f: Flat) -> W {
    match f {
        Flat::I32 => W::I32,
        Flat::I64 => W::I64,
        Flat::F32 => W::F32,
        Flat::F64 => W::F64,
    }
}

fn core(f: Flat) -> ValType {
    match f {
        Flat::I32 => ValType::I32,
        Flat::I64 => ValType::I64,
        Flat::F32 => ValType::F32,
        Flat::F64 => ValType::F64,
    }
}

fn core_ty(params: &[ValType], results: &[ValType]) -> CoreFuncType {
    CoreFuncType {
        params: params.into(),
        results: results.into(),
    }
}

/// The two ends of the call.
struct Ends {
    caller_opts: Options,
    caller: Arc<InstanceState>,
    callee_opts: Options,
    callee: Arc<InstanceState>,
}

impl Ends {
    fn cx<'a, T>(&'a self, store: &'a mut dyn StoreMut<T>, callee_side: bool) -> Cx<'a, T> {
        let (opts, inst) = if callee_side {
            (&self.callee_opts, &self.callee)
        } else {
            (&self.caller_opts, &self.caller)
        };
        Cx {
            store,
            opts,
            inst,
            scope: None,
            lenders: Vec::new(),
            adapter: true,
        }
    }
}

fn i32_at(args: &[Val], i: usize) -> Result<u32, Error> {
    match args.get(i) {
        Some(Val::I32(v)) => Ok(*v as u32),
        _ => Err(trap("adapter import called with a non-i32 argument")),
    }
}

/// Makes the core function through which the instance `caller` (with
/// canonical options `caller_opts`) calls `callee`: a compiled fused
/// adapter when `callee` is a lifted function whose types it translates,
/// else `None` (the caller takes the host's path).
pub(crate) fn fuse<T: 'static>(
    store: &mut Store<T>,
    callee: &ComponentFunc<T>,
    caller_opts: &Options,
    caller: &Arc<InstanceState>,
) -> Result<Option<Func>, Error> {
    let Some((core_func, callee_opts, callee_state)) = callee.lifted_parts() else {
        return Ok(None);
    };
    let ty = callee.ty().clone();
    let params: Vec<Type> = ty.param_types().cloned().collect();
    let results: Vec<Type> = ty.result_types().to_vec();
    let ends = Arc::new(Ends {
        caller_opts: caller_opts.clone(),
        caller: caller.clone(),
        callee_opts: callee_opts.clone(),
        callee: callee_state.clone(),
    });
    let mem = |o: &Options, store: &Store<T>| -> Option<Result<Mem, Unsupported>> {
        o.memory.map(|m| {
            let t = m.ty(store);
            if t.memory64 || t.shared {
                Err(Unsupported)
            } else {
                Ok(Mem {
                    index: 0,
                    page_log2: t.page_size_log2,
                })
            }
        })
    };
    let caller_mem = match mem(caller_opts, store).transpose() {
        Ok(m) => m,
        Err(Unsupported) => return Ok(None),
    };
    let callee_mem = match mem(callee_opts, store).transpose() {
        Ok(m) => m.map(|m| Mem {
            index: u32::from(caller_mem.is_some()),
            ..m
        }),
        Err(Unsupported) => return Ok(None),
    };
    let mut resources = Vec::new();
    for t in params.iter().chain(&results) {
        emit::resource_types(t, &mut resources);
    }
    let Ok(bytes) = module(
        &params,
        &results,
        caller_mem,
        callee_mem,
        callee_opts.post_return.is_some(),
        &resources,
    ) else {
        return Ok(None);
    };
    let module = Module::new(store.engine(), &bytes)?;
    // In the order `module` declares them.
    let mut imports = vec![
        Extern::Func(intrinsics::enter(store, &ends)),
        Extern::Func(intrinsics::leave(store)),
        Extern::Func(intrinsics::raise(store)),
        Extern::Func(intrinsics::alloc(store, &ends, true)),
        Extern::Func(intrinsics::alloc(store, &ends, false)),
        Extern::Func(intrinsics::string(store, &ends, true)),
        Extern::Func(intrinsics::string(store, &ends, false)),
        Extern::Func(core_func),
        Extern::Func(intrinsics::post_return(store, &ends, &results)),
    ];
    for rt in &resources {
        for kind in [
            emit::HANDLE_OWN_TO_CALLEE,
            emit::HANDLE_BORROW_TO_CALLEE,
            emit::HANDLE_OWN_TO_CALLER,
        ] {
            imports.push(Extern::Func(intrinsics::handle(store, &ends, rt, kind)));
        }
    }
    for m in [caller_opts.memory, callee_opts.memory]
        .into_iter()
        .flatten()
    {
        imports.push(Extern::Memory(m));
    }
    let instance = store.instantiate(&module, &imports)?;
    match instance.get_export(store, "adapter") {
        Some(Extern::Func(f)) => Ok(Some(f)),
        _ => Err(trap("internal: the fused adapter has no function")),
    }
}

/// The adapter module of a function of `params` → `results`.
fn module(
    params: &[Type],
    results: &[Type],
    caller_mem: Option<Mem>,
    callee_mem: Option<Mem>,
    post_return: bool,
    resources: &[ResourceType],
) -> Result<Vec<u8>, Unsupported> {
    let adapter = HANDLES + 3 * resources.len() as u32;
    let all = || params.iter().chain(results);
    let flat_params = layout::flatten_all(params.iter());
    let flat_results = layout::flatten_all(results.iter());
    let spill_params = flat_params.len() > MAX_FLAT_PARAMS;
    let spill_results = flat_results.len() > MAX_FLAT_RESULTS;
    let needs_memory = spill_params || spill_results || all().any(emit::uses_memory);
    if needs_memory && (caller_mem.is_none() || callee_mem.is_none()) {
        return Err(Unsupported);
    }
    let (lower_p, lower_r) = layout::core_signature(params.iter(), results, true);
    let (lift_p, lift_r) = layout::core_signature(params.iter(), results, false);
    let w = |fs: &[Flat]| fs.iter().map(|f| wasm(*f)).collect::<Vec<_>>();

    let mut types = TypeSection::new();
    let i32s = |n: usize| vec![W::I32; n];
    // 0 enter/leave: () -> (); 1 trap, a handle: (i32) -> (); 2 alloc;
    // 3 string; 4 callee; 5 post-return; 6 adapter; 7 a handle
    types.ty().function([], []);
    types.ty().function(i32s(1), []);
    types.ty().function(i32s(3), i32s(1));
    types.ty().function(i32s(2), i32s(2));
    types.ty().function(w(&lift_p), w(&lift_r));
    types.ty().function(w(&lift_r), []);
    types.ty().function(w(&lower_p), w(&lower_r));
    types.ty().function(i32s(1), i32s(1));
    let mut imports = ImportSection::new();
    for (name, ty) in [
        ("enter", 0),
        ("leave", 0),
        ("trap", 1),
        ("alloc_callee", 2),
        ("alloc_caller", 2),
        ("string_to_callee", 3),
        ("string_to_caller", 3),
        ("callee", 4),
        ("post_return", 5),
    ] {
        imports.import("adapter", name, EntityType::Function(ty));
    }
    for _ in 0..3 * resources.len() {
        imports.import("adapter", "handle", EntityType::Function(7));
    }
    for (name, m) in [("caller_memory", caller_mem), ("callee_memory", callee_mem)] {
        if let Some(m) = m {
            imports.import(
                "adapter",
                name,
                EntityType::Memory(WasmMemoryType {
                    minimum: 0,
                    maximum: None,
                    memory64: false,
                    shared: false,
                    page_size_log2: (m.page_log2 != 16).then_some(u32::from(m.page_log2)),
                }),
            );
        }
    }
    let mut functions = FunctionSection::new();
    functions.function(6);
    let mut exports = ExportSection::new();
    exports.export("adapter", ExportKind::Func, adapter);

    let to_callee = Side {
        src: caller_mem,
        dst: callee_mem,
        alloc: ALLOC_CALLEE,
        string: STRING_TO_CALLEE,
        resources,
        handles: HANDLES,
        to_callee: true,
    };
    let to_caller = Side {
        src: callee_mem,
        dst: caller_mem,
        alloc: ALLOC_CALLER,
        string: STRING_TO_CALLER,
        resources,
        handles: HANDLES,
        to_callee: false,
    };
    let mut b = Body::new(lower_p.len() as u32, TRAP);
    b.op(wasm_encoder::Instruction::Call(ENTER));
    // The arguments.
    let mut callee_args: Vec<u32> = Vec::new();
    if spill_params {
        let (Some(src), Some(_)) = (caller_mem, callee_mem) else {
            return Err(Unsupported);
        };
        let tuple = Type::Tuple(params.to_vec());
        b.check_range(0, alignment(&tuple), size(&tuple), src, TRAP_POINTER);
        let dp = b.local(W::I32);
        b.op(wasm_encoder::Instruction::I32Const(alignment(&tuple) as i32));
        b.op(wasm_encoder::Instruction::I32Const(size(&tuple) as i32));
        b.op(wasm_encoder::Instruction::I32Const(ALLOC_SPILL));
        b.op(wasm_encoder::Instruction::Call(ALLOC_CALLEE));
        b.op(wasm_encoder::Instruction::LocalSet(dp));
        b.memory(&tuple, 0, 0, dp, 0, to_callee)?;
        callee_args.push(dp);
    } else {
        let src: Vec<Slot> = flat_params
            .iter()
            .enumerate()
            .map(|(i, f)| Slot {
                local: i as u32,
                flat: *f,
            })
            .collect();
        let mut at = 0;
        for t in params {
            let mut flat = Vec::new();
            layout::flatten(t, &mut flat);
            let part = src.get(at..at + flat.len()).ok_or(Unsupported)?;
            callee_args.extend(b.flat(t, part, to_callee)?.iter().map(|s| s.local));
            at += flat.len();
        }
    }
    for l in &callee_args {
        b.op(wasm_encoder::Instruction::LocalGet(*l));
    }
    b.op(wasm_encoder::Instruction::Call(CALLEE));
    let returned: Vec<Slot> = lift_r
        .iter()
        .map(|f| Slot {
            local: b.local(wasm(*f)),
            flat: *f,
        })
        .collect();
    for s in returned.iter().rev() {
        b.op(wasm_encoder::Instruction::LocalSet(s.local));
    }
    // The results.
    let mut out: Vec<u32> = Vec::new();
    if spill_results {
        let (Some(callee_m), Some(caller_m)) = (callee_mem, caller_mem) else {
            return Err(Unsupported);
        };
        let tuple = Type::Tuple(results.to_vec());
        let from = returned.first().ok_or(Unsupported)?.local;
        let retptr = lower_p.len() as u32 - 1;
        b.check_range(
            from,
            alignment(&tuple),
            size(&tuple),
            callee_m,
            TRAP_POINTER,
        );
        b.check_range(
            retptr,
            alignment(&tuple),
            size(&tuple),
            caller_m,
            TRAP_POINTER,
        );
        b.memory(&tuple, from, 0, retptr, 0, to_caller)?;
    } else {
        let mut at = 0;
        for t in results {
            let mut flat = Vec::new();
            layout::flatten(t, &mut flat);
            let part = returned.get(at..at + flat.len()).ok_or(Unsupported)?;
            out.extend(b.flat(t, part, to_caller)?.iter().map(|s| s.local));
            at += flat.len();
        }
    }
    if post_return {
        for s in &returned {
            b.op(wasm_encoder::Instruction::LocalGet(s.local));
        }
        b.op(wasm_encoder::Instruction::Call(POST_RETURN));
    }
    b.op(wasm_encoder::Instruction::Call(LEAVE));
    for l in &out {
        b.op(wasm_encoder::Instruction::LocalGet(*l));
    }
    b.op(wasm_encoder::Instruction::End);
    let mut f = Function::new_with_locals_types(b.locals.iter().copied());
    for i in &b.code {
        f.instruction(i);
    }
    let mut code = CodeSection::new();
    code.function(&f);

    let mut m = WasmModule::new();
    m.section(&types)
        .section(&imports)
        .section(&functions)
        .section(&exports)
        .section(&code);
    Ok(m.finish())
}

/// The host functions an adapter imports.
mod intrinsics {
    use super::*;

    /// Checks that the caller may leave, enters the callee (or traps: a
    /// component may not be re-entered) and starts its task.
    pub(super) fn enter<T: 'static>(store: &mut Store<T>, ends: &Arc<Ends>) -> Func {
        let ends = ends.clone();
        store.host_func(
            core_ty(&[], &[]),
            Arc::new(move |_, _, _| {
                if !ends.caller.may_leave() {
                    return Err(trap("cannot leave component instance"));
                }
                let entered = ends.callee.enter_from(Some(&ends.caller))?;
                ends.callee.start_task();
                with_frames(|f| {
                    f.push(Frame {
                        entered,
                        callee: ends.callee.clone(),
                        caller: ends.caller.clone(),
                        scope: Arc::new(BorrowScope::default()),
                        lenders: Vec::new(),
                    })
                });
                Ok(())
            }),
        )
    }

    /// Ends the call: traps if the callee kept a borrowed handle, and
    /// (either way) ends its task, returns the loans and leaves it.
    pub(super) fn leave<T: 'static>(store: &mut Store<T>) -> Func {
        store.host_func(
            core_ty(&[], &[]),
            Arc::new(|_, _, _| {
                let Some(frame) = with_frames(|f| f.pop()) else {
                    return Err(trap("internal: an adapter left a call it did not enter"));
                };
                let kept = frame.scope.outstanding() > 0;
                frame.end();
                if kept {
                    return Err(trap("borrow handles still remain at the end of the call"));
                }
                Ok(())
            }),
        )
    }

    /// Moves a handle of resource type `rt` across the call: an owned one
    /// into the callee (or back to the caller), or a borrow the caller
    /// lends the callee for the call.
    pub(super) fn handle<T: 'static>(
        store: &mut Store<T>,
        ends: &Arc<Ends>,
        rt: &ResourceType,
        kind: u32,
    ) -> Func {
        let ends = ends.clone();
        let rt = rt.clone();
        store.host_func(
            core_ty(&[ValType::I32], &[ValType::I32]),
            Arc::new(move |caller: &mut Caller<'_, T>, args, results| {
                let i = i32_at(args, 0)?;
                let to_callee = kind != emit::HANDLE_OWN_TO_CALLER;
                let (resource, lent) = {
                    let mut from = ends.cx(caller, !to_callee);
                    if kind == emit::HANDLE_BORROW_TO_CALLEE {
                        let r = lift::lift_borrow(&mut from, i, &rt)?;
                        (r, core::mem::take(&mut from.lenders))
                    } else {
                        (lift::lift_own(&mut from, i, &rt)?, Vec::new())
                    }
                };
                let scope = with_frames(|f| {
                    f.last_mut().map(|fr| {
                        fr.lenders.extend(lent);
                        fr.scope.clone()
                    })
                });
                let mut to = ends.cx(caller, to_callee);
                let h = if kind == emit::HANDLE_BORROW_TO_CALLEE {
                    to.scope = scope.as_ref();
                    lower::lower_borrow(&mut to, &resource, &rt)?
                } else {
                    lower::lower_own(&mut to, &resource, &rt)?
                };
                results[0] = Val::I32(h as i32);
                Ok(())
            }),
        )
    }

    /// Raises the trap whose code the adapter gives.
    pub(super) fn raise<T: 'static>(store: &mut Store<T>) -> Func {
        store.host_func(
            core_ty(&[ValType::I32], &[]),
            Arc::new(|_, args, _| {
                let code = i32_at(args, 0)? as usize;
                Err(trap(
                    TRAP_MESSAGES
                        .get(code)
                        .copied()
                        .unwrap_or("internal: unknown adapter trap"),
                ))
            }),
        )
    }

    /// `realloc(0, 0, align, size)` on one side, checked as lowering a
    /// list (or the area of spilled values) checks it.
    pub(super) fn alloc<T: 'static>(store: &mut Store<T>, ends: &Arc<Ends>, callee: bool) -> Func {
        let ends = ends.clone();
        store.host_func(
            core_ty(&[ValType::I32; 3], &[ValType::I32]),
            Arc::new(move |caller: &mut Caller<'_, T>, args, results| {
                let (align, size, what) = (i32_at(args, 0)?, i32_at(args, 1)?, i32_at(args, 2)?);
                let mut cx = ends.cx(caller, callee);
                let p = if what as i32 == ALLOC_SPILL {
                    let p = cx.realloc(0, 0, align, size)?;
                    if !p.is_multiple_of(align) {
                        return Err(trap("unaligned pointer"));
                    }
                    if u64::from(p) + u64::from(size) > cx.memory()?.len() as u64 {
                        return Err(trap("pointer out of bounds of memory"));
                    }
                    p
                } else {
                    cx.allocate(align, size, Content::List)?
                };
                results[0] = Val::I32(p as i32);
                Ok(())
            }),
        )
    }

    /// A string of the reading side, validated, transcoded and stored on
    /// the writing side.
    pub(super) fn string<T: 'static>(
        store: &mut Store<T>,
        ends: &Arc<Ends>,
        to_callee: bool,
    ) -> Func {
        let ends = ends.clone();
        store.host_func(
            core_ty(&[ValType::I32; 2], &[ValType::I32; 2]),
            Arc::new(move |caller: &mut Caller<'_, T>, args, results| {
                let (ptr, len) = (i32_at(args, 0)?, i32_at(args, 1)?);
                let s = {
                    let mut from = ends.cx(caller, !to_callee);
                    strings::load_string_from_range(&mut from, ptr, len)?
                };
                let mut to = ends.cx(caller, to_callee);
                let (p, l) = strings::store_string_into_range(&mut to, &s)?;
                results[0] = Val::I32(p as i32);
                results[1] = Val::I32(l as i32);
                Ok(())
            }),
        )
    }

    /// The callee's `post-return` (when it has one), called while it may
    /// not leave.
    pub(super) fn post_return<T: 'static>(
        store: &mut Store<T>,
        ends: &Arc<Ends>,
        results: &[Type],
    ) -> Func {
        let (_, lift_r) = layout::core_signature(core::iter::empty(), results, false);
        let params: Vec<ValType> = lift_r.iter().map(|f| core(*f)).collect();
        let ends = ends.clone();
        store.host_func(
            core_ty(&params, &[]),
            Arc::new(move |caller: &mut Caller<'_, T>, args, _| {
                let Some(post) = ends.callee_opts.post_return else {
                    return Ok(());
                };
                ends.callee.set_may_leave(false);
                let r = caller.call(post, args, &mut []);
                ends.callee.set_may_leave(true);
                r
            }),
        )
    }
}
