//! Translation of one wasm function body into Cranelift IR.
//!
//! See [`env`] for what the translator asks of the engine.

pub mod env;

pub use env::{MemoryAccess, TranslationEnv, WASM_PARAM_OFFSET};

// TEMPORARY shim until the translator branch is merged (never lands on main).
use alloc::string::String;
/// Why a function could not be translated.
#[derive(Debug)]
pub enum TranslateError {
    /// invalid
    Validation {
        /// offset
        offset: usize,
        /// message
        message: String,
    },
    /// unsupported
    Unsupported {
        /// offset
        offset: usize,
        /// feature
        feature: &'static str,
    },
    /// codegen
    Codegen(String),
}
/// Shim.
pub fn translate_function(
    _env: &mut dyn TranslationEnv,
    _func: &mut cranelift_codegen::ir::Function,
    _body: &wasmparser::FunctionBody<'_>,
    _validator: &mut wasmparser::FuncValidator<wasmparser::ValidatorResources>,
    _ctx: &mut cranelift_frontend::FunctionBuilderContext,
) -> Result<(), TranslateError> {
    Err(TranslateError::Codegen("not merged".into()))
}
