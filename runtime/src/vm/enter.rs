//! Entering compiled code, and turning faults inside it into traps.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cell::Cell;

use cranelift_codegen::ir::TrapCode;
use spin::RwLock;

#[cfg_attr(target_arch = "x86_64", path = "arch/x86_64.rs")]
#[cfg_attr(target_arch = "aarch64", path = "arch/aarch64.rs")]
mod isa;

unsafe extern "C" {
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

/// A trap recorded by the fault handler for the entry that is unwinding.
#[derive(Debug, Clone, Copy)]
pub struct TrapRecord {
    /// the trap code at the faulting instruction
    pub code: TrapCode,
    /// the faulting program counter
    pub pc: usize,
}

/// State of one host→wasm entry, on the host's stack.
#[repr(C)]
struct EntryContext {
    /// stack pointer after the entry saved its registers (written by asm)
    saved_sp: usize,
    prev: *mut EntryContext,
    trap: Option<TrapRecord>,
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

/// Decides whether a synchronous fault at `pc` (touching `fault_addr`, for
/// memory faults) is a wasm trap; if so, records it and tells the caller
/// where to resume. Called from signal handlers and the kernel's exception
/// handlers: takes no locks that compiled code could hold, allocates nothing.
pub fn handle_fault(pc: usize, fault_addr: Option<usize>) -> Option<FaultResume> {
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
    unsafe { (*ctx).trap = Some(TrapRecord { code, pc }) };
    // SAFETY: as above.
    let sp = unsafe { (*ctx).saved_sp };
    Some(FaultResume {
        pc: basalt_trap_landing as *const () as usize,
        sp,
    })
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
) -> Result<(), TrapRecord> {
    let mut ctx = EntryContext {
        saved_sp: 0,
        prev: current(),
        trap: None,
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
        (_, Some(t)) => Err(t),
        (_, None) => Err(TrapRecord {
            code: crate::trap::codes::UNREACHABLE,
            pc: 0,
        }),
    }
}

/// The current stack pointer, approximately (the address of a local).
#[inline(never)]
pub fn approximate_sp() -> usize {
    let marker = 0u8;
    core::hint::black_box(&marker) as *const u8 as usize
}
