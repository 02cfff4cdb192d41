//! Compilation of a whole module: every function through the translator and
//! Cranelift, the trampolines, and linking into one position-independent
//! blob of code.

pub mod func_env;
pub mod target;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use cranelift_codegen::binemit::Reloc;
use cranelift_codegen::ir::{
    self, AbiParam, InstBuilder, MemFlagsData, Signature, StackSlotData, StackSlotKind, TrapCode,
    UserFuncName,
};
use cranelift_codegen::isa::{CallConv, TargetIsa};
use cranelift_codegen::{Context, FinalizedMachExceptionHandler, FinalizedRelocTarget};
use cranelift_control::ControlPlane;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use wasmparser::FuncValidatorAllocations;

use crate::error::Error;
use crate::module_info::{ModuleInfo, PendingFunction};
use crate::trap::codes;
use crate::types::FuncType;
use crate::vm::offsets::{VMOffsets, builtin};
use func_env::{FuncEnv, NS_INTERRUPT_TRAMPOLINE, NS_WASM_FUNC, clif_type, wasm_signature};

/// The native code of a module, linked, with everything needed to run it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CompiledCode {
    /// the code: functions and trampolines; position-independent
    pub code: Vec<u8>,
    /// (offset, length) of each defined function, in order
    pub functions: Vec<(u32, u32)>,
    /// (offset, trap code), sorted by offset
    pub traps: Vec<(u32, TrapCode)>,
    /// offset of the array-call trampoline of each module type
    pub array_trampolines: Vec<u32>,
    /// offset of the host-call trampoline of each module type used by an
    /// imported function
    pub host_trampolines: Vec<Option<u32>>,
    /// the calls inside `try_table`s, with their exception tables, sorted
    /// by return address
    pub call_sites: Vec<CallSite>,
}

/// A call that exceptions may be caught at (a `try_call`): where it
/// returns to and what its exception table says, for the unwinder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallSite {
    /// code offset of the return address
    pub ret: u32,
    /// distance from the frame pointer down to the stack pointer at the
    /// call: the stack pointer a handler resumes with is `fp - frame_offset`
    pub frame_offset: u32,
    /// the exception table, to be read in order; the first match wins
    pub handlers: Box<[Handler]>,
}

/// One entry of a call site's exception table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handler {
    /// The VM context whose tags the following entries name is stored at
    /// this offset from the call's stack pointer.
    Context(u32),
    /// Exceptions of the context instance's tag `tag` resume at code
    /// offset `at`.
    Tag {
        /// module tag index
        tag: u32,
        /// code offset of the handler
        at: u32,
    },
    /// Every exception resumes at this code offset.
    CatchAll(u32),
}

struct CompiledFunction {
    code: Vec<u8>,
    relocs: Vec<(u32, Reloc, RelocTo, i64)>,
    traps: Vec<(u32, TrapCode)>,
    call_sites: Vec<CallSite>,
}

enum RelocTo {
    WasmFunc(u32),
    InterruptTrampoline,
    SelfOffset(u32),
}

/// Compiles `info`'s functions (`pending`) and trampolines for `isa`.
pub fn compile_module(
    isa: &dyn TargetIsa,
    info: &ModuleInfo,
    pending: Vec<PendingFunction<'_>>,
    instrumentation: crate::engine::Instrumentation,
) -> Result<CompiledCode, Error> {
    let mut ctx = Context::new();
    let mut fctx = FunctionBuilderContext::new();
    let mut allocs = FuncValidatorAllocations::default();
    let mut funcs = Vec::with_capacity(pending.len());
    for p in pending {
        let ty = info.func_type(p.index);
        let sig = wasm_signature(ty, isa.pointer_type());
        let mut func =
            ir::Function::with_name_signature(UserFuncName::user(NS_WASM_FUNC, p.index), sig);
        let mut env = FuncEnv::new(info, isa);
        env.interruptible = instrumentation.interruptible;
        env.consume_fuel = instrumentation.consume_fuel;
        let mut validator = p.validator.into_validator(allocs);
        crate::translate::translate_function(
            &mut env,
            &mut func,
            &p.body,
            &mut validator,
            &mut fctx,
        )
        .map_err(|e| translate_error(e, p.index))?;
        allocs = validator.into_allocations();
        let vmctx_slot = env.vmctx_slot();
        funcs.push(finish(isa, &mut ctx, func, p.index, vmctx_slot)?);
    }
    let mut array_trampolines = Vec::with_capacity(info.types.len());
    let mut host_trampolines = vec![None; info.types.len()];
    let mut trampolines = Vec::new();
    for ty in &info.types {
        let f = array_trampoline(isa, ty);
        trampolines.push(finish(isa, &mut ctx, f, u32::MAX, None)?);
        array_trampolines.push(0);
    }
    let mut host_types: Vec<u32> = info.functions[..info.num_imported_funcs as usize].to_vec();
    host_types.sort_unstable();
    host_types.dedup();
    for t in &host_types {
        let f = host_trampoline(isa, &info.types[*t as usize]);
        trampolines.push(finish(isa, &mut ctx, f, u32::MAX, None)?);
    }
    // Last: its index is the trampolines' count minus one.
    if instrumentation.interruptible {
        let f = interrupt_trampoline(isa);
        trampolines.push(finish(isa, &mut ctx, f, u32::MAX, None)?);
    }

    // Link: lay out functions then trampolines, 16-byte aligned.
    let mut out = CompiledCode::default();
    let mut offsets = Vec::with_capacity(funcs.len() + trampolines.len());
    for f in funcs.iter().chain(trampolines.iter()) {
        let start = out.code.len().next_multiple_of(16);
        out.code.resize(start, 0);
        out.code.extend_from_slice(&f.code);
        let start = u32::try_from(start).map_err(|_| Error::Compile {
            func: 0,
            message: "code over 4 GiB".into(),
        })?;
        offsets.push(start);
        out.traps
            .extend(f.traps.iter().map(|(o, c)| (start + o, *c)));
        out.call_sites.extend(f.call_sites.iter().map(|site| {
            CallSite {
                ret: start + site.ret,
                frame_offset: site.frame_offset,
                handlers: site
                    .handlers
                    .iter()
                    .map(|h| match *h {
                        Handler::Context(o) => Handler::Context(o),
                        Handler::Tag { tag, at } => Handler::Tag {
                            tag,
                            at: start + at,
                        },
                        Handler::CatchAll(at) => Handler::CatchAll(start + at),
                    })
                    .collect(),
            }
        }));
    }
    for (i, f) in funcs.iter().enumerate() {
        out.functions.push((offsets[i], f.code.len() as u32));
    }
    for (i, slot) in array_trampolines.iter_mut().enumerate() {
        *slot = offsets[funcs.len() + i];
    }
    out.array_trampolines = array_trampolines;
    for (j, t) in host_types.iter().enumerate() {
        host_trampolines[*t as usize] = Some(offsets[funcs.len() + info.types.len() + j]);
    }
    out.host_trampolines = host_trampolines;
    for (i, f) in funcs.iter().chain(trampolines.iter()).enumerate() {
        let site_base = offsets[i];
        for (off, kind, to, addend) in &f.relocs {
            let target = match to {
                RelocTo::WasmFunc(callee) => {
                    let defined = callee.checked_sub(info.num_imported_funcs).ok_or_else(|| {
                        Error::Compile {
                            func: *callee,
                            message: "direct call to an imported function".into(),
                        }
                    })?;
                    out.functions[defined as usize].0
                }
                RelocTo::SelfOffset(o) => site_base + o,
                RelocTo::InterruptTrampoline if instrumentation.interruptible => {
                    offsets[offsets.len() - 1]
                }
                RelocTo::InterruptTrampoline => {
                    return Err(Error::Compile {
                        func: u32::MAX,
                        message: "a call to the interrupt trampoline of code without one".into(),
                    });
                }
            };
            patch(&mut out.code, site_base + off, *kind, target, *addend)?;
        }
    }
    out.traps.sort_by_key(|(o, _)| *o);
    out.call_sites.sort_by_key(|c| c.ret);
    Ok(out)
}

fn translate_error(e: crate::translate::TranslateError, func: u32) -> Error {
    use crate::translate::TranslateError as T;
    match e {
        T::Validation { offset, message } => Error::Invalid { offset, message },
        T::Unsupported { offset, feature } => Error::Unsupported { feature, offset },
        T::Codegen(message) => Error::Compile { func, message },
    }
}

fn patch(code: &mut [u8], site: u32, kind: Reloc, target: u32, addend: i64) -> Result<(), Error> {
    let at = site as usize;
    let delta = i64::from(target) - i64::from(site) + addend;
    match kind {
        Reloc::X86CallPCRel4 | Reloc::X86PCRel4 => {
            let v = i32::try_from(delta).map_err(|_| Error::Compile {
                func: 0,
                message: "call out of range".into(),
            })?;
            code[at..at + 4].copy_from_slice(&v.to_le_bytes());
        }
        Reloc::Arm64Call => {
            let words = delta >> 2;
            if !(-(1 << 25)..(1 << 25)).contains(&words) {
                return Err(Error::Compile {
                    func: 0,
                    message: "call out of range".into(),
                });
            }
            let mut insn = u32::from_le_bytes([code[at], code[at + 1], code[at + 2], code[at + 3]]);
            insn = (insn & 0xfc00_0000) | ((words as u32) & 0x03ff_ffff);
            code[at..at + 4].copy_from_slice(&insn.to_le_bytes());
        }
        other => {
            return Err(Error::Compile {
                func: 0,
                message: format!("unsupported relocation {other:?}"),
            });
        }
    }
    Ok(())
}

fn finish(
    isa: &dyn TargetIsa,
    ctx: &mut Context,
    func: ir::Function,
    index: u32,
    vmctx_slot: Option<ir::StackSlot>,
) -> Result<CompiledFunction, Error> {
    ctx.clear();
    ctx.func = func;
    let compiled = ctx
        .compile(isa, &mut ControlPlane::default())
        .map_err(|e| Error::Compile {
            func: index,
            message: format!("{:?}", e.inner),
        })?;
    let code = compiled.code_buffer().to_vec();
    let traps = compiled
        .buffer
        .traps()
        .iter()
        .map(|t| (t.offset, t.code))
        .collect();
    let mut call_sites = Vec::new();
    for site in compiled.buffer.call_sites() {
        if site.exception_handlers.is_empty() {
            continue;
        }
        let bad = |what: &str| Error::Compile {
            func: index,
            message: format!("exception table: {what}"),
        };
        let frame_offset = site
            .frame_offset
            .ok_or_else(|| bad("no frame offset at a call site"))?;
        // The translator stores the VM context in its slot before every
        // call with handlers (see `FuncEnv::vmctx_slot`).
        let slot = vmctx_slot.ok_or_else(|| bad("no VM context slot"))?;
        let layout = compiled
            .buffer
            .frame_layout()
            .ok_or_else(|| bad("no frame layout"))?;
        if layout.frame_to_fp_offset != frame_offset {
            return Err(bad("the stack pointer at a call is not the frame's bottom"));
        }
        let mut handlers = alloc::vec![Handler::Context(layout.stackslots[slot].offset)];
        for h in site.exception_handlers {
            handlers.push(match *h {
                FinalizedMachExceptionHandler::Tag(tag, at) => Handler::Tag {
                    tag: tag.as_u32(),
                    at,
                },
                FinalizedMachExceptionHandler::Default(at) => Handler::CatchAll(at),
                FinalizedMachExceptionHandler::Context(_) => {
                    return Err(bad("unexpected dynamic context"));
                }
            });
        }
        call_sites.push(CallSite {
            ret: site.ret_addr,
            frame_offset,
            handlers: handlers.into(),
        });
    }
    let raw_relocs = compiled.buffer.relocs().to_vec();
    let mut relocs = Vec::new();
    for r in &raw_relocs {
        let to = match &r.target {
            FinalizedRelocTarget::ExternalName(ir::ExternalName::User(name)) => {
                let name = &ctx.func.params.user_named_funcs()[*name];
                match name.namespace {
                    NS_WASM_FUNC => RelocTo::WasmFunc(name.index),
                    NS_INTERRUPT_TRAMPOLINE => RelocTo::InterruptTrampoline,
                    _ => {
                        return Err(Error::Compile {
                            func: index,
                            message: "unknown call target".to_string(),
                        });
                    }
                }
            }
            FinalizedRelocTarget::Func(o) => RelocTo::SelfOffset(*o),
            other => {
                return Err(Error::Compile {
                    func: index,
                    message: format!("unsupported relocation target {other:?}"),
                });
            }
        };
        relocs.push((r.offset, r.kind, to, r.addend));
    }
    Ok(CompiledFunction {
        code,
        relocs,
        traps,
        call_sites,
    })
}

/// `fn(callee_vmctx, caller_vmctx, code, values)` in the native C
/// convention: loads the arguments from 16-byte slots, calls the wasm
/// function, stores the results back into the slots.
fn array_trampoline(isa: &dyn TargetIsa, ty: &FuncType) -> ir::Function {
    let ptr = isa.pointer_type();
    let mut sig = Signature::new(isa.default_call_conv());
    sig.params.extend([AbiParam::new(ptr); 4]);
    let mut func = ir::Function::with_name_signature(UserFuncName::user(1, 0), sig);
    let mut fctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut func, &mut fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let p = b.block_params(entry).to_vec();
    let (callee_vmctx, caller_vmctx, code, values) = (p[0], p[1], p[2], p[3]);
    let f = MemFlagsData::trusted();
    let mut args = vec![callee_vmctx, caller_vmctx];
    for (i, t) in ty.params.iter().enumerate() {
        args.push(b.ins().load(clif_type(*t, ptr), f, values, (i * 16) as i32));
    }
    let wasm_sig = b.import_signature(wasm_signature(ty, ptr));
    let call = b.ins().call_indirect(wasm_sig, code, &args);
    let results = b.inst_results(call).to_vec();
    for (i, r) in results.iter().enumerate() {
        b.ins().store(f, *r, values, (i * 16) as i32);
    }
    b.ins().return_(&[]);
    b.seal_all_blocks();
    b.finalize(isa.frontend_config());
    func
}

/// `fn(vmctx)` in Cranelift's preserve-all convention (it saves every
/// register it touches, so a call to it clobbers none): calls the
/// `interrupt` builtin and traps with [`codes::INTERRUPTED`] when that
/// says stop. Interruptible code calls it when its interrupt request is
/// raised (see `FuncEnv::interrupt_check`).
fn interrupt_trampoline(isa: &dyn TargetIsa) -> ir::Function {
    let ptr = isa.pointer_type();
    let mut sig = Signature::new(CallConv::PreserveAll);
    sig.params.push(AbiParam::new(ptr));
    let mut func = ir::Function::with_name_signature(UserFuncName::user(1, 2), sig);
    let mut fctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut func, &mut fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let vmctx = b.block_params(entry)[0];
    let ro = MemFlagsData::trusted().with_readonly();
    let table = b.ins().load(ptr, ro, vmctx, VMOffsets::BUILTINS);
    let f = b
        .ins()
        .load(ptr, ro, table, (builtin::INTERRUPT * 8) as i32);
    let mut builtin_sig = Signature::new(isa.default_call_conv());
    builtin_sig.params.push(AbiParam::new(ptr));
    builtin_sig.returns.push(AbiParam::new(ir::types::I32));
    let builtin_sig = b.import_signature(builtin_sig);
    let call = b.ins().call_indirect(builtin_sig, f, &[vmctx]);
    let stop = b.inst_results(call)[0];
    b.ins().trapnz(stop, codes::INTERRUPTED);
    b.ins().return_(&[]);
    b.seal_all_blocks();
    b.finalize(isa.frontend_config());
    func
}

/// A wasm-callable function (wasm signature) that stores its arguments in
/// 16-byte slots on its stack and calls the host dispatcher found at offset
/// 0 of its callee context: `dispatch(host_ctx, caller_vmctx, values, count,
/// frame_pointer) -> u32` (its own frame pointer, from which the host walks
/// the wasm frames of a trap's backtrace). A non-zero return traps with
/// [`codes::HOST_ERROR`].
fn host_trampoline(isa: &dyn TargetIsa, ty: &FuncType) -> ir::Function {
    let ptr = isa.pointer_type();
    let mut func =
        ir::Function::with_name_signature(UserFuncName::user(1, 1), wasm_signature(ty, ptr));
    let mut fctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut func, &mut fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let p = b.block_params(entry).to_vec();
    let count = ty.params.len().max(ty.results.len()).max(1);
    let slot = b.create_sized_stack_slot(StackSlotData::new(
        StackSlotKind::ExplicitSlot,
        (count * 16) as u32,
        4,
    ));
    let values = b.ins().stack_addr(ptr, slot, 0);
    let f = MemFlagsData::trusted();
    for (i, v) in p[2..].iter().enumerate() {
        b.ins().store(f, *v, values, (i * 16) as i32);
    }
    let ro = MemFlagsData::trusted().with_readonly();
    let dispatch = b.ins().load(ptr, ro, p[0], 0);
    let mut host_sig = Signature::new(isa.default_call_conv());
    host_sig.params.extend([
        AbiParam::new(ptr),
        AbiParam::new(ptr),
        AbiParam::new(ptr),
        AbiParam::new(ptr),
        AbiParam::new(ptr),
    ]);
    host_sig.returns.push(AbiParam::new(ir::types::I32));
    let host_sig = b.import_signature(host_sig);
    let n = b.ins().iconst(ptr, count as i64);
    let fp = b.ins().get_frame_pointer(ptr);
    let call = b
        .ins()
        .call_indirect(host_sig, dispatch, &[p[0], p[1], values, n, fp]);
    let status = b.inst_results(call)[0];
    b.ins().trapnz(status, codes::HOST_ERROR);
    let mut results = Vec::with_capacity(ty.results.len());
    for (i, t) in ty.results.iter().enumerate() {
        results.push(b.ins().load(clif_type(*t, ptr), f, values, (i * 16) as i32));
    }
    b.ins().return_(&results);
    b.seal_all_blocks();
    b.finalize(isa.frontend_config());
    func
}
