//! Basalt's WebAssembly engine.
//!
//! Validates modules with `wasmparser`, translates function bodies to
//! Cranelift IR with our own translator ([`translate`]), emits native code
//! for x86-64 or AArch64, and runs it: instances, linear memories inside
//! guard reservations, tables, globals, traps and host functions.
//!
//! The engine is `no_std` + `alloc`. What it needs of the machine — reserving
//! and mapping memory, making code executable, turning faults into traps —
//! comes through [`platform::Platform`] and [`handle_fault`]. With the `std`
//! feature it also runs hosted on Linux, for tests and benchmarks.
//!
//! All `unsafe` code lives in [`vm`] (and the hosted platform); the rest of
//! the crate is safe.

#![cfg_attr(not(feature = "std"), no_std)]
#![deny(unsafe_code)]

extern crate alloc;

pub mod artifact;
pub mod compile;
pub mod component;
pub mod engine;
pub mod error;
pub mod exact;
pub mod gc;
pub mod linker;
pub mod module_info;
pub mod platform;
pub mod spectest;
pub mod translate;
pub mod trap;
pub mod types;
pub mod vm;

pub use compile::target::{Arch, Target};
pub use engine::{Config, Engine, Module};
pub use error::{Error, Trap, TrapFrame};
pub use linker::Linker;
pub use trap::TrapKind;
pub use types::{AnyRef, FuncType, GlobalType, MemoryType, RefType, TableType, Val, ValType};
pub use vm::enter::{FaultResume, handle_fault, restore_entry, take_entry};
pub use vm::store::{
    AsStore, Caller, Extern, Func, Global, HostFn, Instance, InterruptHandle, Memory, Store,
    StoreMut, Table,
};
