//! Unexpected exceptions and panics: a report on the kernel log (cause,
//! registers, a frame-pointer backtrace symbolised with `kernel.syms` and
//! the runtime's code map), then `BASALT-PANIC` and debug-exit 0x12.
//! Faults in wasm code at trap sites go to the runtime instead.

use core::fmt::Write;
use core::sync::atomic::{AtomicBool, Ordering};

use basalt_arch::Resume;
use basalt_arch::traps::Fault;

use crate::exit::{Status, finish};
use crate::log::EmergencyLog;

static REPORTING: AtomicBool = AtomicBool::new(false);

/// Installs the exception hooks and loads the descriptor tables.
pub fn init() {
    basalt_arch::traps::set_hooks(fault_hook, fatal_hook);
    basalt_arch::traps::init();
}

fn in_kernel_text(pc: usize) -> bool {
    let (start, end) = basalt_arch::boot::kernel_text();
    (start..end).contains(&pc)
}

fn fault_hook(f: &Fault<'_>) -> Option<Resume> {
    // Kernel code is never a trap site; deciding that here also keeps the
    // runtime's code-map lock out of faults the kernel takes while holding it.
    if in_kernel_text(f.pc) {
        return None;
    }
    basalt_runtime::handle_fault(f.pc, f.frame_pointer, f.fault_addr)
        .map(|r| Resume { pc: r.pc, sp: r.sp })
}

/// Guard pages of stacks the kernel allocated (bottom address of the usable
/// part; the guard is the page below).
static STACK_GUARDS: spin::Mutex<[usize; 4]> = spin::Mutex::new([0; 4]);

/// Registers a stack whose guard page lies just below `bottom`.
pub fn register_stack_guard(bottom: usize) {
    if let Some(mut g) = STACK_GUARDS.try_lock()
        && let Some(slot) = g.iter_mut().find(|s| **s == 0)
    {
        *slot = bottom;
    }
}

fn in_guard(addr: usize) -> bool {
    STACK_GUARDS.try_lock().is_some_and(|g| {
        g.iter()
            .any(|b| *b != 0 && addr < *b && addr >= b - basalt_arch::paging::PAGE_SIZE)
    })
}

fn describe(w: &mut EmergencyLog, pc: usize) {
    if let Some((name, off)) = crate::syms::lookup(pc) {
        let _ = write!(w, " {name}+{off:#x}");
    } else if in_kernel_text(pc) {
        // no symbol table
    } else if let Some(code) = basalt_runtime::vm::enter::code_at(pc) {
        match code.function_at(pc) {
            Some(f) => {
                let _ = write!(w, " <wasm function {f}>");
            }
            None => {
                let _ = write!(w, " <wasm code>");
            }
        }
    }
}

fn mapped(addr: usize) -> bool {
    basalt_arch::paging::translate(addr).is_some()
        && basalt_arch::paging::translate(addr + 15).is_some()
}

/// Writes a backtrace starting at `pc` with frame pointer `fp`.
pub fn backtrace(w: &mut EmergencyLog, pc: usize, mut fp: usize) {
    let _ = writeln!(w, "backtrace:");
    let _ = write!(w, "  #0  {pc:#018x}");
    describe(w, pc);
    let _ = writeln!(w);
    let (mut last, mut repeats) = (0usize, 0u32);
    for depth in 1..256 {
        if fp == 0 || !fp.is_multiple_of(8) || !mapped(fp) {
            break;
        }
        // SAFETY: `fp` is aligned and both words are mapped (checked).
        let next = unsafe { (fp as *const usize).read_volatile() };
        // SAFETY: as above.
        let ret = unsafe { ((fp + 8) as *const usize).read_volatile() };
        if ret == 0 {
            break;
        }
        fp = next;
        if ret == last {
            repeats += 1;
            continue;
        }
        if repeats > 0 {
            let _ = writeln!(w, "      (previous frame repeated {repeats} more times)");
            repeats = 0;
        }
        last = ret;
        let _ = write!(w, "  #{depth:<2} {ret:#018x}");
        describe(w, ret.saturating_sub(1));
        let _ = writeln!(w);
    }
    if repeats > 0 {
        let _ = writeln!(
            w,
            "      (previous frame repeated {repeats} more times, walk stopped)"
        );
    }
    let offset = basalt_arch::boot::load_offset();
    if offset != 0 {
        let _ = writeln!(
            w,
            "  (the kernel runs {offset:#x} above its link address: subtract that for addr2line)"
        );
    }
    if crate::syms::lookup(pc).is_none() {
        let _ = writeln!(
            w,
            "  (no kernel.syms in the bundle: resolve addresses with `addr2line -fe basalt-kernel`)"
        );
    }
}

fn fatal_hook(f: &Fault<'_>) -> ! {
    let mut w = EmergencyLog;
    if REPORTING.swap(true, Ordering::SeqCst) {
        let _ = writeln!(w, "\nnested {} at {:#x} while reporting", f.name, f.pc);
        finish(
            Status::Panic,
            format_args!("nested fault while reporting a fault"),
        );
    }
    let stack_overflow = f.fault_addr.is_some_and(in_guard);
    let _ = writeln!(w, "\nkernel: unexpected {} (vector {})", f.name, f.vector);
    let _ = write!(w, "  at {} {:#018x}", basalt_arch::traps::PC_NAME, f.pc);
    describe(&mut w, f.pc);
    let _ = writeln!(w);
    if let Some(e) = f.error_code {
        let _ = writeln!(w, "  {} {e:#x}", basalt_arch::traps::ERROR_CODE_NAME);
    }
    if let Some(a) = f.fault_addr {
        let _ = writeln!(w, "  {} {a:#018x}", basalt_arch::traps::FAULT_ADDRESS_NAME);
    }
    if stack_overflow {
        let _ = writeln!(
            w,
            "  the address is a stack guard page: kernel stack overflow"
        );
    }
    let _ = writeln!(w, "{}", f.registers);
    backtrace(&mut w, f.pc, f.frame_pointer);
    if stack_overflow {
        finish(
            Status::Panic,
            format_args!("kernel stack overflow ({} at {:#x})", f.name, f.pc),
        );
    }
    match f.fault_addr {
        Some(a) => finish(
            Status::Panic,
            format_args!("{} at {:#x} accessing {:#x}", f.name, f.pc, a),
        ),
        None => finish(Status::Panic, format_args!("{} at {:#x}", f.name, f.pc)),
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut w = EmergencyLog;
    if REPORTING.swap(true, Ordering::SeqCst) {
        finish(Status::Panic, format_args!("panic while reporting a fault"));
    }
    let _ = writeln!(w, "\nkernel panic: {}", info.message());
    if let Some(loc) = info.location() {
        let _ = writeln!(w, "  at {}:{}:{}", loc.file(), loc.line(), loc.column());
    }
    let fp = basalt_arch::cpu::frame_pointer();
    backtrace(&mut w, panic as *const () as usize, fp);
    if crate::mem::heap::exhausted() {
        finish(
            Status::Panic,
            format_args!(
                "{} (the kernel ran out of memory: give the VM more RAM, e.g. basalt run --memory)",
                info.message()
            ),
        );
    }
    match info.location() {
        Some(loc) => finish(
            Status::Panic,
            format_args!("{} at {}:{}", info.message(), loc.file(), loc.line()),
        ),
        None => finish(Status::Panic, format_args!("{}", info.message())),
    }
}

/// Deliberately crashes the kernel in the way `kind` names, so tests can
/// check fault reports: `null` (page fault in page 0), `ud` (invalid
/// opcode), `wx` (store into kernel text, which is read-only), `codewx`
/// (store into a code page's frame through the identity map, read-only
/// there as well), `tablewx` (store into the root page table through the
/// identity map, read-only there), `panic`, `stack` (kernel stack
/// overflow into the guard page).
/// Unknown kinds are ignored.
pub fn crash_test(kind: &[u8]) {
    match kind {
        b"null" => {
            // SAFETY: none: this read faults on purpose (page 0 is unmapped).
            let v = unsafe { core::ptr::read_volatile(core::ptr::without_provenance::<u64>(8)) };
            core::hint::black_box(v);
        }
        b"ud" => basalt_arch::cpu::invalid_instruction(),
        b"wx" => {
            let text = crash_test as *const () as *mut u8;
            // SAFETY: none: kernel text is mapped read-only, so this store
            // faults on purpose.
            unsafe { core::ptr::write_volatile(text, 0xcc) };
        }
        b"codewx" => {
            // A page made code the way the runtime makes its code (mapped
            // read-write, written, made read-execute), then a store into
            // its frame through the identity map, where it must be
            // read-only too.
            use basalt_runtime::platform::Platform;
            let platform = crate::mem::platform::KernelPlatform;
            let page = platform.page_size();
            let Ok(va) = platform.reserve(page) else {
                return;
            };
            if platform.commit(va, page).is_err() || platform.make_executable(va, page).is_err() {
                return;
            }
            let Some(frame) = basalt_arch::paging::translate(va) else {
                return;
            };
            // SAFETY: none: the frame holds code, read-only in the identity
            // map, so this store faults on purpose.
            unsafe { core::ptr::write_volatile(frame as *mut u8, 0xcc) };
        }
        b"tablewx" => {
            let root = basalt_arch::paging::root_table() as *mut u64;
            // SAFETY: the root table is identity-mapped and readable.
            let entry = unsafe { core::ptr::read_volatile(root) };
            // SAFETY: none: page tables are read-only in the identity map,
            // so this store (of the value already there) faults on purpose.
            unsafe { core::ptr::write_volatile(root, entry) };
        }
        b"panic" => panic!("crash test requested on the kernel command line"),
        b"stack" => {
            core::hint::black_box(recurse(0));
        }
        _ => {}
    }
}

#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(n: u64) -> u64 {
    let buf = core::hint::black_box([n; 64]);
    recurse(buf[3] + 1) + buf[5]
}
