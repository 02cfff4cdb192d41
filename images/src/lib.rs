//! The `basalt` command as a library: what the binary does, callable from
//! the integration tests with in-memory streams.
//!
//! `basalt run FILE.wasm` compiles the module ahead of time on the host,
//! builds the kernel if needed, packs a bundle ([`bundle`]) and boots it in
//! QEMU ([`vm`]); `--hosted` runs the same runtime in this process instead
//! ([`hosted`]). `basalt serve` answers HTTP requests with a `wasi:http`
//! component ([`serve`]). `basalt wast` runs spec-test scripts hosted
//! ([`wast`]).

#![forbid(unsafe_code)]

pub mod accel;
pub mod bundle;
pub mod cli;
pub mod component_batch;
pub mod console;
pub mod firecracker_aarch64;
mod forward;
pub mod guest;
pub mod hosted;
pub mod image;
pub mod legacy_try;
pub mod run;
pub mod serve;
pub mod share;
pub mod signals;
pub mod spec_batch;
pub mod symbols;
pub mod vm;
pub mod vm_console;
pub mod wasi_flags;
pub mod wast;
pub mod wast_component;

use std::fmt;

/// Why the CLI could not do what it was asked.
#[derive(Debug)]
pub enum CliError {
    /// bad command line (exit code 2)
    Usage(String),
    /// the input file cannot be read (exit code 66)
    Input(String),
    /// the module is not valid WebAssembly or cannot be compiled (exit code 65)
    Module(String),
    /// building the kernel or examples failed (exit code 70)
    Build(String),
    /// QEMU could not be started or waited for (exit code 71)
    Qemu(String),
    /// a file of our own could not be written (exit code 74)
    Io(String),
    /// `basalt` was told to stop by this signal (SIGTERM, SIGINT, SIGHUP)
    /// and stopped its VM (exit code 128 + the signal)
    Interrupted(i32),
}

impl CliError {
    /// The process exit code for this error (sysexits.h values).
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Input(_) => 66,
            CliError::Module(_) => 65,
            CliError::Build(_) => 70,
            CliError::Qemu(_) => 71,
            CliError::Io(_) => 74,
            CliError::Interrupted(sig) => 128 + sig,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m)
            | CliError::Input(m)
            | CliError::Module(m)
            | CliError::Build(m)
            | CliError::Qemu(m)
            | CliError::Io(m) => f.write_str(m),
            CliError::Interrupted(sig) => {
                write!(f, "stopped by {}: the VM was stopped", signals::name(*sig))
            }
        }
    }
}

impl std::error::Error for CliError {}
