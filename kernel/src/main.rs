//! The Basalt kernel: boots (the arch crate's entry calls
//! [`basalt_kernel_main`]), sets up memory, clocks and entropy, reads the
//! bundle from the initrd, and runs its WebAssembly program on a large
//! stack. Every run ends with one status marker on the kernel log (see
//! `docs/guest-protocol.md`).

#![no_std]
#![no_main]
#![deny(unsafe_code)]

extern crate alloc;

mod bundle;
mod deadline;
mod devices;
mod entropy;
mod exit;
#[allow(unsafe_code)]
mod fault;
mod files;
mod live_share;
#[macro_use]
mod log;
mod mem;
mod net;
mod platform;
mod run;
mod serve;
mod services;
mod spec;
mod spec_component;
mod syms;
mod tasks;
mod time;

use basalt_arch::BootInfo;

use exit::{Status, finish};

/// Size of the stack programs (and the compiler) run on.
pub const RUN_STACK_SIZE: usize = 8 << 20;

/// What the loader said; set first thing, so even early failures can
/// find the firmware tables to power off with.
pub(crate) static BOOT_INFO: spin::Once<&'static BootInfo> = spin::Once::new();

/// The kernel's entry point, called once by the arch boot path.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub fn basalt_kernel_main(info: &'static BootInfo) -> ! {
    time::mark_boot(basalt_arch::cpu::cycles());
    let completed = platform::complete_boot_info(info);
    let info = *BOOT_INFO.call_once(|| *completed.as_ref().unwrap_or(&info));
    log::init(info);
    fault::init();
    if let Err(e) = completed {
        finish(Status::Error, format_args!("{e}"));
    }
    if let Some(why) = info.boot_error {
        finish(Status::Error, format_args!("{why}"));
    }
    let mut brand = [0u8; 48];
    kprintln!(
        "basalt kernel {} booting via {} on {}",
        env!("CARGO_PKG_VERSION"),
        info.protocol,
        basalt_arch::cpu::brand(&mut brand)
    );
    platform::log_firmware_summary();
    if !info.loader_name.is_empty() {
        kprintln!("loaded by {}", info.loader_name);
    }
    kprintln!(
        "kernel image at {:#x}..{:#x} (load offset {:#x})",
        info.kernel_image.start,
        info.kernel_image.end(),
        basalt_arch::boot::load_offset()
    );
    // Before memory setup: the firmware may keep its tables in RAM the
    // memory map calls usable, which the frame allocator hands out.
    exit::prepare_power_off();
    if let Err(e) = mem::init(info) {
        finish(Status::Error, format_args!("memory setup failed: {e}"));
    }
    run::stamp("memory ready");
    let stack = match mem::allocate_stack(RUN_STACK_SIZE) {
        Ok(s) => s,
        Err(e) => finish(
            Status::Error,
            format_args!(
                "cannot allocate the {} MiB program stack: {e}",
                RUN_STACK_SIZE >> 20
            ),
        ),
    };
    fault::register_stack_guard(stack.bottom);
    // SAFETY: the stack was just mapped for this call alone.
    unsafe { basalt_arch::stack::call_on_stack(stack.top, on_run_stack, 0) };
    finish(
        Status::Panic,
        format_args!("the run returned without a status"),
    )
}

extern "C" fn on_run_stack(_: usize) {
    let Some(info) = BOOT_INFO.get() else {
        finish(Status::Panic, format_args!("no boot information"));
    };
    run::main(info)
}
