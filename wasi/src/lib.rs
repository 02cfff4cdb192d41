//! WASI preview 1 (`wasi_snapshot_preview1`) for Basalt.
//!
//! The host functions are written against service traits ([`Stdio`],
//! [`Clocks`], [`Entropy`]): the kernel implements them over its drivers,
//! the hosted backend ([`host`], `std` feature) over the host OS. This crate
//! knows nothing of devices.
//!
//! Use [`run_command`] to run a WASI command module (`_start`) to its end,
//! or [`add_to_linker`] to combine WASI with other host functions.

#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod abi;
mod ctx;
pub mod errno;
pub mod fs_ops;
pub mod http1;
pub mod http_server;
pub mod memfs;
pub mod memory;
pub mod path;
pub mod preview1;
pub mod preview2;
pub mod read_only;
pub mod serve;
pub mod services;

#[cfg(feature = "std")]
pub mod host;
#[cfg(feature = "std")]
pub mod host_fs;
#[cfg(feature = "std")]
pub mod host_net;

pub use ctx::{DEFAULT_MAX_RANDOM_SIZE, Descriptor, Node, WasiCtx};
pub use errno::Errno;
pub use memfs::MemFs;
pub use preview1::add_to_linker;
pub use read_only::ReadOnly;
pub use services::{Clocks, Entropy, FileSystem, FsError, Services, Stdio, StdioError};

use basalt_runtime::{Engine, Error, Linker, Module, Store, Trap};

/// How a WASI command ended.
#[derive(Debug)]
pub enum Outcome {
    /// It returned from `_start` (code 0) or called `proc_exit`.
    Exit(i32),
    /// It trapped.
    Trap(Trap),
    /// It could not be linked, instantiated or started.
    Error(Error),
}

/// Instantiates a WASI 0.2 command component (one that exports
/// `wasi:cli/run`) and runs it: `run` returning `ok` is exit code 0,
/// `err` is 1.
pub fn run_component_with(
    engine: &Engine,
    component: &basalt_runtime::component::Component,
    ctx: WasiCtx,
    prepare: impl FnOnce(&mut Store<WasiCtx>),
) -> Outcome {
    run_component_observed(engine, component, ctx, prepare, || {})
}

/// [`run_component_with`], calling `instantiated` once the component is
/// instantiated, before `run` (for timing the two apart).
pub fn run_component_observed(
    engine: &Engine,
    component: &basalt_runtime::component::Component,
    ctx: WasiCtx,
    prepare: impl FnOnce(&mut Store<WasiCtx>),
    instantiated: impl FnOnce(),
) -> Outcome {
    use basalt_runtime::component::{Linker as ComponentLinker, Value};
    let mut store = Store::new(engine, ctx);
    prepare(&mut store);
    let mut linker = ComponentLinker::new();
    preview2::add_to_linker(&mut linker, |cx: &mut WasiCtx| cx);
    let result = linker
        .instantiate(&mut store, component)
        .and_then(|instance| {
            let run = instance
                .get_instance_func(&alloc::format!("wasi:cli/run@{}", preview2::VERSION), "run")
                .ok_or_else(|| {
                    Error::Instantiate(
                        "the component exports no `wasi:cli/run@0.2.x` with a `run` function: \
                     it is not a WASI 0.2 command"
                            .into(),
                    )
                })?;
            instantiated();
            run.call(&mut store, &[])
        });
    match result {
        Ok(v) => match v.first() {
            Some(Value::Result(Err(_))) => Outcome::Exit(1),
            _ => Outcome::Exit(0),
        },
        Err(Error::Exit(code)) => Outcome::Exit(code),
        Err(Error::Trap(t)) => Outcome::Trap(t),
        Err(e) => Outcome::Error(e),
    }
}

/// Instantiates `module` with WASI and runs its `_start` export to the end.
pub fn run_command(engine: &Engine, module: &Module, ctx: WasiCtx) -> Outcome {
    run_command_with(engine, module, ctx, |_| {})
}

/// [`run_command`] with the store prepared by `prepare` before the
/// program is instantiated: an interrupt check, an interrupt handle taken
/// for a deadline (`Store::interrupt_handle`), fuel.
pub fn run_command_with(
    engine: &Engine,
    module: &Module,
    ctx: WasiCtx,
    prepare: impl FnOnce(&mut Store<WasiCtx>),
) -> Outcome {
    let mut store = Store::new(engine, ctx);
    prepare(&mut store);
    let mut linker = Linker::new();
    add_to_linker(&mut linker, |cx: &mut WasiCtx| cx);
    let result = linker.instantiate(&mut store, module).and_then(|instance| {
        let start = instance.get_func(&mut store, "_start").ok_or_else(|| {
            Error::Instantiate(
                "the module exports no `_start` function: it is not a WASI command".into(),
            )
        })?;
        start.call(&mut store, &[], &mut [])
    });
    match result {
        Ok(()) => Outcome::Exit(0),
        Err(Error::Exit(code)) => Outcome::Exit(code),
        Err(Error::Trap(t)) => Outcome::Trap(t),
        Err(e) => Outcome::Error(e),
    }
}
