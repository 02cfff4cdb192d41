//! The hosted platform: Linux `mmap`/`mprotect`, and signal handlers that
//! turn faults in compiled code into wasm traps.
#![allow(unsafe_code)]

use super::{Platform, PlatformError};

/// [`Platform`] on the host operating system.
#[derive(Debug, Default)]
pub struct HostPlatform;

/// The one host platform value.
pub static HOST_PLATFORM: HostPlatform = HostPlatform;

impl Platform for HostPlatform {
    fn page_size(&self) -> usize {
        4096
    }

    fn reserve(&self, size: usize) -> Result<usize, PlatformError> {
        // SAFETY: an anonymous private PROT_NONE mapping touches no existing memory.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                size,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            Err(PlatformError("mmap failed to reserve address space"))
        } else {
            Ok(p as usize)
        }
    }

    fn commit(&self, addr: usize, len: usize) -> Result<(), PlatformError> {
        if len == 0 {
            return Ok(());
        }
        // SAFETY: the range lies in a reservation of ours (caller's contract); anonymous
        // private pages read as zero when first touched.
        let r = unsafe {
            libc::mprotect(
                addr as *mut libc::c_void,
                len,
                libc::PROT_READ | libc::PROT_WRITE,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(PlatformError("mprotect failed to commit memory"))
        }
    }

    fn decommit(&self, addr: usize, len: usize) -> Result<(), PlatformError> {
        if len == 0 {
            return Ok(());
        }
        // SAFETY: replaces pages of our own reservation with fresh inaccessible ones.
        let p = unsafe {
            libc::mmap(
                addr as *mut libc::c_void,
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            Err(PlatformError("mmap failed to decommit memory"))
        } else {
            Ok(())
        }
    }

    fn make_executable(&self, addr: usize, len: usize) -> Result<(), PlatformError> {
        // SAFETY: the range is committed code memory of ours.
        let r = unsafe {
            libc::mprotect(
                addr as *mut libc::c_void,
                len,
                libc::PROT_READ | libc::PROT_EXEC,
            )
        };
        if r != 0 {
            return Err(PlatformError("mprotect failed to make code executable"));
        }
        #[cfg(target_arch = "aarch64")]
        clear_icache(addr, len);
        Ok(())
    }

    fn release(&self, addr: usize, size: usize) {
        // SAFETY: unmaps a reservation we made; nothing refers to it any more.
        unsafe {
            libc::munmap(addr as *mut libc::c_void, size);
        }
    }
}

/// Makes freshly written code visible to instruction fetch: cleans the data
/// cache to the point of unification and invalidates the instruction cache
/// over `addr..addr + len`, then synchronises this CPU's pipeline.
///
/// Line sizes come from `CTR_EL0` (readable at EL0 on Linux) rather than an
/// assumed 64 bytes: a core with smaller lines would otherwise skip lines
/// and run stale instructions. `CTR_EL0.IDC`/`DIC` say a step is not needed.
#[cfg(target_arch = "aarch64")]
fn clear_icache(addr: usize, len: usize) {
    let ctr: u64;
    // SAFETY: reads a system register Linux makes readable (or emulates) at EL0.
    unsafe { core::arch::asm!("mrs {0}, ctr_el0", out(reg) ctr, options(nomem, nostack)) };
    let end = addr + len;
    // DminLine (bits 19:16) and IminLine (bits 3:0): log2 of the line size in words.
    let dline = 4usize << ((ctr >> 16) & 0xf);
    let iline = 4usize << (ctr & 0xf);
    if ctr & (1 << 28) == 0 {
        // IDC clear: data must be cleaned to the point of unification.
        let mut p = addr & !(dline - 1);
        while p < end {
            // SAFETY: cache maintenance on our own mapped, readable range.
            unsafe { core::arch::asm!("dc cvau, {0}", in(reg) p, options(nostack)) };
            p += dline;
        }
    }
    // SAFETY: barrier instruction only.
    unsafe { core::arch::asm!("dsb ish", options(nostack)) };
    if ctr & (1 << 29) == 0 {
        // DIC clear: the instruction cache must be invalidated.
        let mut p = addr & !(iline - 1);
        while p < end {
            // SAFETY: as above.
            unsafe { core::arch::asm!("ic ivau, {0}", in(reg) p, options(nostack)) };
            p += iline;
        }
        // SAFETY: barrier instruction only.
        unsafe { core::arch::asm!("dsb ish", options(nostack)) };
    }
    // SAFETY: barrier instruction only.
    unsafe { core::arch::asm!("isb", options(nostack)) };
}

/// Installs the signal handlers that turn faults in compiled wasm code into
/// traps (once per process). Other faults keep their previous behaviour.
pub fn install_trap_handlers() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for (i, sig) in SIGNALS.iter().enumerate() {
            // SAFETY: sigaction with a zeroed struct filled with our handler; the
            // previous action is saved for faults that are not ours.
            let mut action: libc::sigaction = unsafe { core::mem::zeroed() };
            action.sa_sigaction = signal_handler as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER | libc::SA_ONSTACK;
            // SAFETY: initialises the mask of our own local struct.
            unsafe { libc::sigemptyset(&mut action.sa_mask) };
            // SAFETY: PREVIOUS is only written here, once, under `ONCE`.
            let prev = unsafe { &raw mut PREVIOUS[i] };
            // SAFETY: installs our handler; `prev` receives the old action.
            unsafe { libc::sigaction(*sig, &action, prev) };
        }
    });
}

const SIGNALS: [libc::c_int; 4] = [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE];
// SAFETY of access: written once under `ONCE` before any handler can run, read only by handlers.
static mut PREVIOUS: [libc::sigaction; 4] = [const { unsafe_zeroed_sigaction() }; 4];

const fn unsafe_zeroed_sigaction() -> libc::sigaction {
    // SAFETY: sigaction is plain old data; all-zero is SIG_DFL with an empty mask.
    unsafe { core::mem::zeroed() }
}

extern "C" fn signal_handler(
    sig: libc::c_int,
    info: *mut libc::siginfo_t,
    ucontext: *mut libc::c_void,
) {
    // SAFETY: the kernel passes a valid siginfo and ucontext to an SA_SIGINFO handler.
    let pc = unsafe { context_pc(ucontext) };
    // SAFETY: as above.
    let info = unsafe { &*info };
    // SAFETY: as above; `si_addr` reads the union field every fault signal fills.
    let fault_addr = unsafe { info.si_addr() } as usize;
    // Only memory faults have a data address; for SIGILL/SIGFPE `si_addr` is
    // the faulting instruction, which must not be checked against the
    // linear memory reservations.
    let fault_addr = matches!(sig, libc::SIGSEGV | libc::SIGBUS).then_some(fault_addr);
    // SAFETY: as above.
    let fp = unsafe { context_fp(ucontext) };
    if let Some(resume) = crate::handle_fault(pc, fp, fault_addr) {
        // SAFETY: redirects the interrupted context to the trap landing pad on the
        // stack saved at wasm entry, which `handle_fault` vouched for.
        unsafe { set_context_pc_sp(ucontext, resume.pc, resume.sp) };
        return;
    }
    // Not a wasm trap: restore the previous disposition and return, so the
    // faulting instruction runs again and faults the ordinary way.
    if let Some(i) = SIGNALS.iter().position(|s| *s == sig) {
        // SAFETY: reinstalls the action saved at install time.
        let prev = unsafe { &raw const PREVIOUS[i] };
        // SAFETY: as above.
        unsafe { libc::sigaction(sig, prev, core::ptr::null_mut()) };
    }
}

#[cfg(target_arch = "x86_64")]
unsafe fn context_pc(uc: *mut libc::c_void) -> usize {
    let uc = uc.cast::<libc::ucontext_t>();
    // SAFETY: caller passes the handler's ucontext.
    unsafe { (*uc).uc_mcontext.gregs[libc::REG_RIP as usize] as usize }
}

/// The interrupted code's frame pointer (RBP).
#[cfg(target_arch = "x86_64")]
unsafe fn context_fp(uc: *mut libc::c_void) -> usize {
    let uc = uc.cast::<libc::ucontext_t>();
    // SAFETY: caller passes the handler's ucontext.
    unsafe { (*uc).uc_mcontext.gregs[libc::REG_RBP as usize] as usize }
}

#[cfg(target_arch = "x86_64")]
unsafe fn set_context_pc_sp(uc: *mut libc::c_void, pc: usize, sp: usize) {
    let uc = uc.cast::<libc::ucontext_t>();
    // SAFETY: caller passes the handler's ucontext.
    unsafe { (*uc).uc_mcontext.gregs[libc::REG_RIP as usize] = pc as i64 };
    // SAFETY: as above.
    unsafe { (*uc).uc_mcontext.gregs[libc::REG_RSP as usize] = sp as i64 };
}

#[cfg(target_arch = "aarch64")]
unsafe fn context_pc(uc: *mut libc::c_void) -> usize {
    let uc = uc.cast::<libc::ucontext_t>();
    // SAFETY: caller passes the handler's ucontext.
    unsafe { (*uc).uc_mcontext.pc as usize }
}

/// The interrupted code's frame pointer (X29).
#[cfg(target_arch = "aarch64")]
unsafe fn context_fp(uc: *mut libc::c_void) -> usize {
    let uc = uc.cast::<libc::ucontext_t>();
    // SAFETY: caller passes the handler's ucontext.
    unsafe { (*uc).uc_mcontext.regs[29] as usize }
}

#[cfg(target_arch = "aarch64")]
unsafe fn set_context_pc_sp(uc: *mut libc::c_void, pc: usize, sp: usize) {
    let uc = uc.cast::<libc::ucontext_t>();
    // SAFETY: caller passes the handler's ucontext.
    unsafe { (*uc).uc_mcontext.pc = pc as u64 };
    // SAFETY: as above.
    unsafe { (*uc).uc_mcontext.sp = sp as u64 };
}
