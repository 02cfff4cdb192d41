//! Entering compiled code, and turning faults inside it into traps.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cell::Cell;

use cranelift_codegen::ir::TrapCode;
use spin::RwLock;

use super::exception::{VMException, VMTag};
use crate::compile::{CallSite, Handler};

#[cfg_attr(target_arch = "x86_64", path = "arch/x86_64.rs")]
#[cfg_attr(target_arch = "aarch64", path = "arch/aarch64.rs")]
mod isa;

unsafe extern "C" {
    /// Jumps to `pc` with the stack pointer `sp`, frame pointer `fp` and
    /// `payload` in the first exception payload register (rax / x0).
    fn basalt_resume(pc: usize, sp: usize, fp: usize, payload: usize) -> !;
    fn basalt_enter_wasm(
        saved_sp: *mut usize,
        trampoline: usize,
        callee_vmctx: usize,
        caller_vmctx: usize,
        code: usize,
        values: *mut u128,
    ) -> u32;
    fn basalt_trap_landing();
}

/// Where the fault handler should resume after a trap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultResume {
    /// program counter to resume at (the trap landing pad)
    pub pc: usize,
    /// stack pointer to resume with (saved at wasm entry)
    pub sp: usize,
}

/// The most wasm callers a fault records (the fault handler allocates
/// nothing, so they go in a fixed array).
pub const MAX_FAULT_CALLERS: usize = 32;

/// A trap recorded by the fault handler for the entry that is unwinding.
#[derive(Debug, Clone, Copy)]
pub struct TrapRecord {
    /// the trap code at the faulting instruction
    pub code: TrapCode,
    /// the faulting program counter
    pub pc: usize,
    /// return addresses into the wasm callers of the faulting function,
    /// innermost first (the first `callers_len`)
    pub callers: [usize; MAX_FAULT_CALLERS],
    /// how many of `callers` are set
    pub callers_len: usize,
}

impl TrapRecord {
    /// A record with no callers.
    fn at(code: TrapCode, pc: usize) -> TrapRecord {
        TrapRecord {
            code,
            pc,
            callers: [0; MAX_FAULT_CALLERS],
            callers_len: 0,
        }
    }
}

/// State of one host→wasm entry, on the host's stack.
#[repr(C)]
struct EntryContext {
    /// stack pointer after the entry saved its registers (written by asm)
    saved_sp: usize,
    prev: *mut EntryContext,
    trap: Option<TrapRecord>,
    /// the exception that ended the call uncaught (with `trap`'s code
    /// [`crate::trap::codes::UNCAUGHT_EXCEPTION`])
    exception: usize,
}

/// Code regions of loaded modules, for mapping a faulting PC to a trap code.
pub struct CodeInfo {
    /// start address of the code
    pub start: usize,
    /// length in bytes
    pub len: usize,
    /// (offset from start, trap code), sorted by offset
    pub traps: Vec<(u32, TrapCode)>,
    /// (offset, length, function index), sorted by offset
    pub functions: Vec<(u32, u32, u32)>,
    /// calls with exception tables, sorted by return address
    pub call_sites: Vec<CallSite>,
    /// offset of the tag pointers in the VM context of this code's module
    pub tags_offset: u32,
}

impl CodeInfo {
    /// The function index containing `pc`, if any.
    pub fn function_at(&self, pc: usize) -> Option<u32> {
        let off = pc.checked_sub(self.start)? as u32;
        let i = self
            .functions
            .partition_point(|(o, _, _)| *o <= off)
            .checked_sub(1)?;
        let (o, l, f) = self.functions[i];
        (off < o + l).then_some(f)
    }

    fn call_site_at(&self, ret: usize) -> Option<&CallSite> {
        let off = u32::try_from(ret.checked_sub(self.start)?).ok()?;
        let i = self.call_sites.binary_search_by_key(&off, |c| c.ret).ok()?;
        Some(&self.call_sites[i])
    }

    fn trap_at(&self, pc: usize) -> Option<TrapCode> {
        let off = u32::try_from(pc.checked_sub(self.start)?).ok()?;
        let i = self.traps.binary_search_by_key(&off, |(o, _)| *o).ok()?;
        Some(self.traps[i].1)
    }
}

static CODE: RwLock<Vec<Arc<CodeInfo>>> = RwLock::new(Vec::new());
static RESERVATIONS: RwLock<Vec<(usize, usize)>> = RwLock::new(Vec::new());

/// Registers loaded code so faults in it become traps.
pub fn register_code(info: Arc<CodeInfo>) {
    let mut code = CODE.write();
    let at = code.partition_point(|c| c.start < info.start);
    code.insert(at, info);
}

/// Forgets code about to be unmapped.
pub fn unregister_code(start: usize) {
    CODE.write().retain(|c| c.start != start);
}

/// The registered code region containing `pc`.
pub fn code_at(pc: usize) -> Option<Arc<CodeInfo>> {
    let code = CODE.read();
    let i = code.partition_point(|c| c.start <= pc).checked_sub(1)?;
    let c = &code[i];
    (pc < c.start + c.len).then(|| c.clone())
}

/// Registers a linear memory's reservation, inside which a faulting access
/// from compiled code is an out-of-bounds trap.
pub fn register_reservation(start: usize, len: usize) {
    RESERVATIONS.write().push((start, start + len));
}

/// Forgets a released reservation.
pub fn unregister_reservation(start: usize) {
    RESERVATIONS.write().retain(|(s, _)| *s != start);
}

fn in_reservation(addr: usize) -> bool {
    RESERVATIONS
        .read()
        .iter()
        .any(|(s, e)| (*s..*e).contains(&addr))
}

#[cfg(feature = "std")]
std::thread_local! {
    static CURRENT: Cell<*mut EntryContext> = const { Cell::new(core::ptr::null_mut()) };
}

#[cfg(feature = "std")]
fn current() -> *mut EntryContext {
    CURRENT.with(|c| c.get())
}

#[cfg(feature = "std")]
fn set_current(p: *mut EntryContext) {
    CURRENT.with(|c| c.set(p));
}

/// The kernel runs wasm on one CPU at a time for now.
#[cfg(not(feature = "std"))]
struct CurrentEntry(Cell<*mut EntryContext>);
// SAFETY: the bare-metal kernel runs wasm on a single CPU; only that CPU and
// its synchronous fault handler touch this cell.
#[cfg(not(feature = "std"))]
unsafe impl Sync for CurrentEntry {}
#[cfg(not(feature = "std"))]
static CURRENT: CurrentEntry = CurrentEntry(Cell::new(core::ptr::null_mut()));

#[cfg(not(feature = "std"))]
fn current() -> *mut EntryContext {
    CURRENT.0.get()
}

#[cfg(not(feature = "std"))]
fn set_current(p: *mut EntryContext) {
    CURRENT.0.set(p);
}

/// Takes the innermost wasm entry of this thread (or CPU) away, as an
/// opaque value, leaving none: a kernel that switches between stacks
/// (each running its own wasm calls) keeps it with the stack it leaves,
/// so a fault on the stack it resumes is not taken for the other's.
pub fn take_entry() -> usize {
    let p = current();
    set_current(core::ptr::null_mut());
    p as usize
}

/// Puts back an entry [`take_entry`] took.
///
/// # Safety
/// `entry` must come from [`take_entry`] on the stack now running, with
/// no wasm entered on it since.
pub unsafe fn restore_entry(entry: usize) {
    set_current(entry as *mut EntryContext);
}

/// Decides whether a synchronous fault at `pc` (touching `fault_addr`, for
/// memory faults) is a wasm trap; if so, records it and tells the caller
/// where to resume. Called from signal handlers and the kernel's exception
/// handlers: takes no locks that compiled code could hold, allocates nothing.
pub fn handle_fault(pc: usize, fp: usize, fault_addr: Option<usize>) -> Option<FaultResume> {
    let ctx = current();
    if ctx.is_null() {
        return None;
    }
    let info = code_at(pc)?;
    let code = info.trap_at(pc)?;
    if code == crate::trap::codes::HEAP_OUT_OF_BOUNDS {
        // A memory access in wasm code may only fault inside a linear
        // memory's reservation; anything else is a bug of ours.
        if let Some(addr) = fault_addr
            && !in_reservation(addr)
        {
            return None;
        }
    }
    // SAFETY: `ctx` is the innermost live entry on this thread/CPU (set by
    // `call_wasm` and cleared before it returns).
    let mut record = TrapRecord::at(code, pc);
    record.callers_len = walk_wasm_frames(fp, &mut record.callers);
    // SAFETY: as above.
    unsafe { (*ctx).trap = Some(record) };
    // SAFETY: as above.
    let sp = unsafe { (*ctx).saved_sp };
    Some(FaultResume {
        pc: basalt_trap_landing as *const () as usize,
        sp,
    })
}

/// How a wasm call ended abnormally.
#[derive(Debug, Clone)]
pub enum Unwound {
    /// a trap
    Trap(Box<TrapRecord>),
    /// an exception no handler caught: the exception (owned by the callee's
    /// store, not released) and where it was thrown
    Exception {
        /// the `VMException`
        exception: usize,
        /// the program counter of the throw
        pc: usize,
    },
}

/// The Rust side of the `basalt_raise` stub, which compiled code calls for
/// `throw` (`tag` is the thrown tag's `VMTag`, `arg` the payload's 16-byte
/// slots) and `throw_ref` (`tag` is 0, `arg` the exception). The stub adds
/// the thrower's return address `pc` and frame pointer `fp`.
extern "C" fn raise_exception(vmctx: usize, tag: usize, arg: usize, pc: usize, fp: usize) -> ! {
    let exception = if tag == 0 {
        arg
    } else {
        // SAFETY: compiled code passes a tag pointer from its VM context,
        // which points to a live VMTag of its store.
        let tag_ref = unsafe { &*(tag as *const VMTag) };
        let n = tag_ref.params.len();
        // SAFETY: compiled code passes one 16-byte slot per tag parameter.
        let payload = unsafe { core::slice::from_raw_parts(arg as *const u128, n) };
        // SAFETY: compiled code passes its live VM context; wasm is
        // suspended in this call.
        let store = unsafe { super::store_context_of(vmctx) };
        store
            .exceptions
            .allocate(tag as *const VMTag, payload.into()) as usize
    };
    // SAFETY: `exception` is a live VMException: just allocated, or an
    // exnref compiled code checked for null.
    let thrown_tag = unsafe { (*(exception as *const VMException)).tag() } as usize;
    let handler = find_handler(thrown_tag, pc, fp);
    match handler {
        // SAFETY: the handler's frame is live (it is below the innermost
        // entry on this stack) and Cranelift's try_call ABI expects exactly
        // this: its stack and frame pointers, the payload in the first
        // payload register, every other register clobbered.
        Some((at, sp, fp)) => unsafe { basalt_resume(at, sp, fp, exception) },
        None => {
            let ctx = current();
            let mut record = TrapRecord::at(crate::trap::codes::UNCAUGHT_EXCEPTION, pc);
            record.callers_len = walk_wasm_frames(fp, &mut record.callers);
            // SAFETY: wasm is running, so `ctx` is the innermost live entry.
            unsafe { (*ctx).trap = Some(record) };
            // SAFETY: as above.
            unsafe { (*ctx).exception = exception };
            // SAFETY: as above; the landing pad restores the entry's
            // registers from its saved stack pointer.
            let sp = unsafe { (*ctx).saved_sp };
            // SAFETY: resuming at the landing pad with the entry's stack
            // pointer is how traps end a call too.
            unsafe { basalt_resume(basalt_trap_landing as *const () as usize, sp, 0, 0) }
        }
    }
}

/// Walks the wasm frames from the thrower (`pc` is its return address into
/// the throwing function, `fp` that function's frame pointer) outwards to
/// the innermost entry, and returns the first handler whose exception
/// table catches `tag`: (handler address, stack pointer, frame pointer).
/// Holds nothing when it returns (the caller jumps away).
fn find_handler(tag: usize, mut pc: usize, mut fp: usize) -> Option<(usize, usize, usize)> {
    let ctx = current();
    if ctx.is_null() {
        return None;
    }
    // SAFETY: `ctx` is the innermost live entry.
    let limit = unsafe { (*ctx).saved_sp };
    while fp != 0 && fp < limit {
        let info = code_at(pc)?;
        info.function_at(pc)?;
        if let Some(site) = info.call_site_at(pc) {
            let sp = fp - site.frame_offset as usize;
            let mut context = 0usize;
            for h in &site.handlers {
                match *h {
                    Handler::Context(off) => {
                        // SAFETY: Cranelift stored the context (a VM
                        // context) in this live frame at this offset.
                        context = unsafe { *((sp + off as usize) as *const usize) };
                    }
                    Handler::Tag { tag: t, at } if context != 0 => {
                        let slot = context + info.tags_offset as usize + 8 * t as usize;
                        // SAFETY: `context` is the frame's VM context, whose
                        // tag pointers start at `tags_offset`; the module
                        // has tag `t` (checked when the code was loaded).
                        if unsafe { *(slot as *const usize) } == tag {
                            return Some((info.start + at as usize, sp, fp));
                        }
                    }
                    Handler::Tag { .. } => {}
                    Handler::CatchAll(at) => return Some((info.start + at as usize, sp, fp)),
                }
            }
        }
        // SAFETY: compiled code keeps frame pointers: `fp` points to the
        // saved caller frame pointer, followed by the return address, in a
        // live frame below the entry.
        pc = unsafe { *((fp + 8) as *const usize) };
        // SAFETY: as above.
        fp = unsafe { *(fp as *const usize) };
    }
    None
}

/// The most wasm frames a trap's backtrace lists.
const MAX_BACKTRACE: usize = 64;

/// The return addresses of the wasm frames above the frame whose frame
/// pointer is `fp` (a host-call trampoline's, or a wasm function's):
/// innermost first, up to the innermost entry into wasm, at most
/// [`MAX_BACKTRACE`].
pub fn wasm_return_addresses(fp: usize) -> Vec<usize> {
    let mut out = [0usize; MAX_BACKTRACE];
    let n = walk_wasm_frames(fp, &mut out);
    out[..n].to_vec()
}

/// Fills `out` with the return addresses of the wasm frames above the
/// frame at `fp`, innermost first; how many. Allocates nothing and takes
/// no locks but the code map's read lock (fault handlers call it).
fn walk_wasm_frames(mut fp: usize, out: &mut [usize]) -> usize {
    let ctx = current();
    if ctx.is_null() {
        return 0;
    }
    // SAFETY: `ctx` is the innermost live entry.
    let limit = unsafe { (*ctx).saved_sp };
    let mut n = 0;
    while fp != 0 && fp < limit && n < out.len() && fp.is_multiple_of(8) {
        // SAFETY: compiled code (and its trampolines) keep frame pointers:
        // `fp` points to the saved caller frame pointer, followed by the
        // return address, in a live frame below the entry.
        let ret = unsafe { *((fp + 8) as *const usize) };
        let in_wasm = code_at(ret.wrapping_sub(1))
            .and_then(|c| c.function_at(ret.wrapping_sub(1)))
            .is_some();
        if !in_wasm {
            break;
        }
        out[n] = ret;
        n += 1;
        // SAFETY: as above.
        let up = unsafe { *(fp as *const usize) };
        if up <= fp {
            break;
        }
        fp = up;
    }
    n
}

/// Calls compiled code through an array trampoline:
/// `trampoline(callee_vmctx, caller_vmctx, code, values)`.
///
/// # Safety
/// `trampoline` must be an array-call trampoline of the callee's type,
/// `code`/`callee_vmctx` a live function of that type, `values` must hold
/// max(params, results) 16-byte slots.
pub unsafe fn call_wasm(
    trampoline: usize,
    callee_vmctx: usize,
    caller_vmctx: usize,
    code: usize,
    values: *mut u128,
) -> Result<(), Unwound> {
    let mut ctx = EntryContext {
        saved_sp: 0,
        prev: current(),
        trap: None,
        exception: 0,
    };
    set_current(&mut ctx);
    // SAFETY: forwarded contract; the asm saves and restores callee-saved state.
    let r = unsafe {
        basalt_enter_wasm(
            &raw mut ctx.saved_sp,
            trampoline,
            callee_vmctx,
            caller_vmctx,
            code,
            values,
        )
    };
    set_current(ctx.prev);
    match (r, ctx.trap) {
        (0, _) => Ok(()),
        (_, Some(t)) if ctx.exception != 0 => Err(Unwound::Exception {
            exception: ctx.exception,
            pc: t.pc,
        }),
        (_, Some(t)) => Err(Unwound::Trap(Box::new(t))),
        (_, None) => Err(Unwound::Trap(Box::new(TrapRecord::at(
            crate::trap::codes::UNREACHABLE,
            0,
        )))),
    }
}

/// The current stack pointer, approximately (the address of a local).
#[inline(never)]
pub fn approximate_sp() -> usize {
    let marker = 0u8;
    core::hint::black_box(&marker) as *const u8 as usize
}
