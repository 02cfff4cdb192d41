//! The engine's error type.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::trap::TrapKind;

/// Everything that can go wrong compiling, linking, instantiating or running
/// a module.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// The bytes are not a valid module (malformed or invalid), with the
    /// byte offset of the problem and wasmparser's explanation.
    Invalid {
        /// byte offset in the module
        offset: usize,
        /// what is wrong
        message: String,
    },
    /// The module uses a feature Basalt does not implement yet.
    Unsupported {
        /// the proposal or feature, e.g. "tail_call"
        feature: &'static str,
        /// byte offset in the module (0 when not known)
        offset: usize,
    },
    /// Code generation failed (a bug in Basalt; the message says where).
    Compile {
        /// function index
        func: u32,
        /// Cranelift's message
        message: String,
    },
    /// An import could not be satisfied.
    Link {
        /// import module name
        module: String,
        /// import field name
        name: String,
        /// why
        reason: String,
    },
    /// Instantiation failed (out-of-bounds segment, out of memory, …).
    Instantiate(String),
    /// The program trapped.
    Trap(Trap),
    /// The program asked to exit (WASI `proc_exit`).
    Exit(i32),
    /// A host function failed in a way that is not a trap of the program.
    Host(String),
    /// A precompiled artifact does not fit this module or this machine.
    Artifact(String),
    /// The platform could not provide memory.
    OutOfMemory(String),
}

impl Error {
    /// Converts a wasmparser error (malformed or invalid module).
    pub fn from_wasmparser(e: wasmparser::BinaryReaderError) -> Error {
        Error::Invalid {
            offset: e.offset() as usize,
            message: e.message().into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invalid { offset, message } => {
                write!(f, "invalid module: {message} (at byte offset {offset:#x})")
            }
            Error::Unsupported { feature, offset } => {
                write!(
                    f,
                    "unsupported: the module uses {feature}, which Basalt does not implement yet"
                )?;
                if *offset != 0 {
                    write!(f, " (at byte offset {offset:#x})")?;
                }
                Ok(())
            }
            Error::Compile { func, message } => {
                write!(f, "code generation failed for function {func}: {message}")
            }
            Error::Link {
                module,
                name,
                reason,
            } => write!(f, "cannot link import `{module}::{name}`: {reason}"),
            Error::Instantiate(m) => write!(f, "instantiation failed: {m}"),
            Error::Trap(t) => write!(f, "{t}"),
            Error::Exit(code) => write!(f, "program exited with code {code}"),
            Error::Host(m) => write!(f, "host function failed: {m}"),
            Error::Artifact(m) => write!(f, "precompiled code rejected: {m}"),
            Error::OutOfMemory(m) => write!(f, "out of memory: {m}"),
        }
    }
}

impl core::error::Error for Error {}

/// A wasm trap: what went wrong and where.
#[derive(Debug, Clone, PartialEq)]
pub struct Trap {
    /// the kind of trap
    pub kind: TrapKind,
    /// the wasm function it happened in (index, name from the name section)
    pub func: Option<(u32, Option<String>)>,
    /// the host's message, for a trap raised by a host function
    pub message: Option<String>,
    /// the wasm functions on the stack when it happened, innermost first
    /// (for a trap raised by a host function: its wasm callers); empty
    /// when unknown
    pub backtrace: Vec<TrapFrame>,
}

/// One wasm function on the stack of a trap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrapFrame {
    /// its index in its module
    pub func: u32,
    /// its name from the module's name section
    pub name: Option<String>,
}

impl fmt::Display for Trap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "wasm trap: {}", self.kind)?;
        if let Some(m) = &self.message {
            write!(f, ": {m}")?;
        }
        match &self.func {
            Some((i, Some(name))) => write!(f, " in function {i} ({name})"),
            Some((i, None)) => write!(f, " in function {i}"),
            None => Ok(()),
        }
    }
}
