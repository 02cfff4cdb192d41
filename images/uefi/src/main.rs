//! Basalt's UEFI loader (`basalt-loader`, booted as `BOOTX64.EFI` or
//! `BOOTAA64.EFI`).
//!
//! It finds the kernel, the bundle and the command line (in its own
//! `.basalt` PE section, else as files under `\basalt\` on the partition it
//! was loaded from), loads the kernel where the ISA's boot contract puts it,
//! fills a [`basalt_handoff::Handoff`] record, exits boot services and jumps
//! into the kernel as `basalt-handoff`'s crate doc describes.
//!
//! Every error before the jump is printed as `basalt loader: …` on the
//! firmware console, then the machine powers off (so a VM exits instead of
//! hanging at a firmware prompt).

#![no_std]
#![no_main]

extern crate alloc;

#[cfg_attr(target_arch = "x86_64", path = "arch/x86_64.rs")]
#[cfg_attr(target_arch = "aarch64", path = "arch/aarch64.rs")]
mod arch;
mod handoff;
mod kernel;
mod payload;

use alloc::string::String;
use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;
use uefi::prelude::*;
use uefi::runtime::ResetType;

/// An error the user can act on: printed after `basalt loader: `.
#[derive(Debug)]
pub struct LoadError(pub String);

impl LoadError {
    /// An error with this message.
    pub fn new(msg: impl Into<String>) -> LoadError {
        LoadError(msg.into())
    }
}

/// Shorthand for `LoadError::new(format!(…))`.
#[macro_export]
macro_rules! load_error {
    ($($arg:tt)*) => {
        $crate::LoadError(alloc::format!($($arg)*))
    };
}

/// The page size UEFI allocates in.
pub const PAGE_SIZE: u64 = 4096;

/// How many pages cover `bytes`.
pub fn pages_for(bytes: u64) -> usize {
    usize::try_from(bytes.div_ceil(PAGE_SIZE)).unwrap_or(usize::MAX)
}

#[entry]
fn main() -> Status {
    let start_counter = arch::counter();
    if let Err(e) = run(start_counter) {
        fail(&e.0);
    }
    // `run` only returns on error: on success it jumped into the kernel.
    fail("the kernel returned to the loader")
}

/// Everything up to the jump; returns only on error.
fn run(start_counter: u64) -> Result<(), LoadError> {
    let found = payload::find()?;
    kernel::check_isa(&found.kernel)?;
    let loaded = kernel::load(&found.kernel)?;
    let mut cmdline = found.cmdline.clone();
    let flags = if found.embedded {
        basalt_handoff::FLAG_EMBEDDED_PAYLOAD
    } else {
        0
    };
    let bundle = found.place_bundle()?;
    payload::append_load_options(&mut cmdline);
    let prepared = handoff::prepare(handoff::Parts {
        kernel: loaded,
        bundle,
        cmdline: &cmdline,
        flags,
        start_counter,
    })?;
    let stack_top = arch::allocate_stack()?;
    drop(cmdline);
    BOOT_SERVICES_GONE.store(true, Ordering::SeqCst);
    // SAFETY: every allocation (`found`, `cmdline`) and protocol of the
    // loader has been dropped; from here on nothing allocates.
    let handoff = unsafe { handoff::exit_and_finish(prepared) };
    arch::enter(
        loaded.entry,
        handoff,
        stack_top,
        &[
            (loaded.start, loaded.len),
            (bundle.0, bundle.1),
            (handoff, prepared.block_len),
        ],
    )
}

/// Prints `basalt loader: <msg>`, waits two seconds so it can be read, then
/// powers the machine off; halts if the firmware cannot (or returns).
pub fn fail(msg: &str) -> ! {
    uefi::println!("basalt loader: {msg}");
    boot::stall(Duration::from_secs(2));
    power_off();
    arch::halt()
}

/// ResetSystem as it may really behave: returning when it cannot reset.
type ResetSystem = unsafe extern "efiapi" fn(ResetType, Status, usize, *const u8);

/// Asks the firmware to power off; returns if it did not.
fn power_off() {
    let Some(st) = uefi::table::system_table_raw() else {
        return;
    };
    // SAFETY: the system table the firmware passed stays valid.
    let rt = unsafe { st.as_ref() }.runtime_services;
    if rt.is_null() {
        return;
    }
    // SAFETY: the runtime services table is valid while the firmware is.
    let declared = unsafe { (*rt).reset_system };
    // SAFETY: the same function and ABI; only the promise never to return
    // is dropped, so a firmware that does return does not make this UB.
    let reset = unsafe {
        core::mem::transmute::<
            unsafe extern "efiapi" fn(ResetType, Status, usize, *const u8) -> !,
            ResetSystem,
        >(declared)
    };
    // SAFETY: ResetSystem with no reset data.
    unsafe { reset(ResetType::SHUTDOWN, Status::ABORTED, 0, core::ptr::null()) };
}

/// Set just before boot services are exited: from then on nothing can be
/// printed and the firmware cannot power off.
static BOOT_SERVICES_GONE: AtomicBool = AtomicBool::new(false);

/// A bug in the loader: reported like any error while the console works.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    if BOOT_SERVICES_GONE.load(Ordering::SeqCst) {
        arch::halt();
    }
    // A second panic while reporting this one must not recurse.
    BOOT_SERVICES_GONE.store(true, Ordering::SeqCst);
    fail(&alloc::format!(
        "internal error (a bug in the loader; please report it): {info}"
    ))
}
