//! Translation of one wasm function body into Cranelift IR.
//!
//! [`translate_function`] walks the body's operators once, validating each
//! with the module's [`wasmparser::FuncValidator`] before translating it.
//! The wasm operand stack is mirrored by a stack of Cranelift [`Value`]s;
//! locals are frontend [`cranelift_frontend::Variable`]s, so SSA phis appear
//! only where control flow merges. Structured control flow maps onto blocks
//! whose parameters carry the wasm block results (see [`control`]).
//!
//! Code after an unconditional transfer (`br`, `br_table`, `return`,
//! `unreachable`) is validated but not translated: the translator tracks
//! reachability and only follows the nesting of blocks until control can
//! reach code again.
//!
//! `v128` values are Cranelift `i8x16` vectors (module `simd`). See [`env`]
//! for what the translator asks of the engine.

mod control;
pub mod env;
mod gc;
mod memory;
mod numeric;
mod simd;

pub use env::{CatchClause, FunctionShape, MemoryAccess, TranslationEnv, WASM_PARAM_OFFSET};

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use cranelift_codegen::ir::{self, InstBuilder, Value, types};
use cranelift_codegen::isa::{CallConv, TargetFrontendConfig};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use target_lexicon::PointerWidth;
use wasmparser::{BinaryReaderError, FuncValidator, FunctionBody, Operator, ValidatorResources};

use crate::trap::codes;
use crate::types::ValType;
use control::Frame;

/// Why a function could not be translated.
#[derive(Debug)]
pub enum TranslateError {
    /// The body is not valid WebAssembly (or could not be decoded).
    Validation {
        /// byte offset in the module of the offending operator
        offset: usize,
        /// the validator's message
        message: String,
    },
    /// The body is valid but uses a feature this translator does not support.
    Unsupported {
        /// byte offset in the module of the offending operator
        offset: usize,
        /// the proposal or feature, e.g. `"tail_call"`
        feature: &'static str,
    },
    /// Cranelift could not build the function (a translator bug).
    Codegen(String),
}

impl From<BinaryReaderError> for TranslateError {
    fn from(e: BinaryReaderError) -> Self {
        TranslateError::Validation {
            offset: e.offset() as usize,
            message: e.message().to_string(),
        }
    }
}

/// Result of translating one piece of a function.
pub(crate) type TResult<T = ()> = Result<T, TranslateError>;

/// Translates `body` into `func`, whose signature must already be the
/// function's wasm signature ([`TranslationEnv::wasm_signature`]).
///
/// Every operator is validated with `validator` before it is translated;
/// validation errors come back as [`TranslateError::Validation`], features
/// the translator does not handle (Wasm 3.0 proposals) as
/// [`TranslateError::Unsupported`].
pub fn translate_function(
    env: &mut dyn TranslationEnv,
    func: &mut ir::Function,
    body: &FunctionBody<'_>,
    validator: &mut FuncValidator<ValidatorResources>,
    ctx: &mut FunctionBuilderContext,
) -> Result<(), TranslateError> {
    let r = translate(env, func, body, validator, ctx);
    if r.is_err() {
        // A translation abandoned halfway leaves the builder context dirty;
        // the caller may reuse it for its next function.
        *ctx = FunctionBuilderContext::new();
    }
    r
}

fn translate(
    env: &mut dyn TranslationEnv,
    func: &mut ir::Function,
    body: &FunctionBody<'_>,
    validator: &mut FuncValidator<ValidatorResources>,
    ctx: &mut FunctionBuilderContext,
) -> TResult {
    let pointer = env.pointer_type();
    let shape = if env.scans_body() {
        scan(body)
    } else {
        FunctionShape { makes_calls: true }
    };
    let builder = FunctionBuilder::new(func, ctx);
    let mut t = Translator {
        env,
        builder,
        stack: Vec::new(),
        control: Vec::new(),
        locals: Vec::new(),
        reachable: true,
        pointer,
        legacy_tries: None,
        legacy_cursor: 0,
    };
    // An unsupported feature stops translation but not validation: an
    // invalid body is reported as invalid even if it also uses an unsupported
    // feature.
    let mut unsupported: Option<TranslateError> = None;
    t.begin(shape);

    let mut reader = body.get_binary_reader();
    reader.set_features(*validator.features());
    let groups = reader.read_var_u32()?;
    for _ in 0..groups {
        let offset = reader.original_position();
        let count = reader.read_var_u32()?;
        let ty: wasmparser::ValType = reader.read()?;
        validator.define_locals(offset, count, ty)?;
        if unsupported.is_none() {
            note(
                &mut unsupported,
                t.declare_locals(count, ty, offset as usize),
            )?;
        }
    }

    let mut ops = wasmparser::OperatorsReader::new(reader);
    while !ops.eof() {
        let (op, offset) = ops.read_with_offset()?;
        validator.op(offset, &op)?;
        if matches!(op, Operator::Try { .. }) && t.legacy_tries.is_none() {
            // Validated up to here; the scan stops at what does not parse.
            t.legacy_tries = Some(control::scan_legacy_tries(body));
        }
        if unsupported.is_none() {
            note(&mut unsupported, t.operator(&op, offset as usize))?;
        }
    }
    ops.finish()?;
    if let Some(e) = unsupported {
        return Err(e);
    }
    if !t.control.is_empty() {
        return Err(TranslateError::Codegen(
            "function body ended inside a block".into(),
        ));
    }
    let Translator { mut builder, .. } = t;
    builder.seal_all_blocks();
    builder.finalize(frontend_config(pointer));
    Ok(())
}

/// What the body of a function does, from one pass over its operators
/// (a body that does not parse counts as making calls: validation reports
/// it when it is translated).
fn scan(body: &FunctionBody<'_>) -> FunctionShape {
    use wasmparser::Operator as O;
    let Ok(mut ops) = body.get_operators_reader() else {
        return FunctionShape { makes_calls: true };
    };
    while !ops.eof() {
        match ops.read() {
            Ok(
                O::Call { .. }
                | O::CallIndirect { .. }
                | O::CallRef { .. }
                | O::ReturnCall { .. }
                | O::ReturnCallIndirect { .. }
                | O::ReturnCallRef { .. },
            )
            | Err(_) => return FunctionShape { makes_calls: true },
            Ok(_) => {}
        }
    }
    FunctionShape { makes_calls: false }
}

/// Passes `r` through, except that the first unsupported-feature error is
/// kept in `slot` (and translation stops while validation goes on).
fn note(slot: &mut Option<TranslateError>, r: TResult) -> TResult {
    match r {
        Err(e @ TranslateError::Unsupported { .. }) => {
            slot.get_or_insert(e);
            Ok(())
        }
        other => other,
    }
}

/// The frontend configuration `finalize` wants. It only reads it to build
/// stack maps, which wasm 2.0 code never needs, so the pointer width is all
/// that matters.
fn frontend_config(pointer: ir::Type) -> TargetFrontendConfig {
    TargetFrontendConfig {
        default_call_conv: CallConv::Tail,
        pointer_width: match pointer.bits() {
            16 => PointerWidth::U16,
            32 => PointerWidth::U32,
            _ => PointerWidth::U64,
        },
        page_size_align_log2: 12,
    }
}

/// The state of one function's translation.
pub(crate) struct Translator<'e, 'f> {
    /// the engine's hooks
    pub(crate) env: &'e mut dyn TranslationEnv,
    /// the IR under construction
    pub(crate) builder: FunctionBuilder<'f>,
    /// the wasm operand stack (only meaningful while reachable)
    pub(crate) stack: Vec<Value>,
    /// open blocks, outermost (the function body) first
    pub(crate) control: Vec<Frame>,
    /// one variable per wasm local, parameters first
    pub(crate) locals: Vec<Variable>,
    /// whether the code being translated can execute
    pub(crate) reachable: bool,
    /// the native pointer type
    pub(crate) pointer: ir::Type,
    /// the legacy `try` blocks of the body in order, once one is seen
    pub(crate) legacy_tries: Option<Vec<control::LegacyTryShape>>,
    /// how many legacy `try`s the translation has passed
    pub(crate) legacy_cursor: usize,
}

impl Translator<'_, '_> {
    /// Creates the entry block, binds the parameters to locals, tells the
    /// environment (with the body's `shape`), and opens the function
    /// body's frame.
    fn begin(&mut self, shape: FunctionShape) {
        let sig = self.builder.func.signature.clone();
        let entry = self.builder.create_block();
        self.builder.append_block_params_for_function_params(entry);
        self.builder.switch_to_block(entry);
        self.builder.seal_block(entry);
        let params = self.builder.block_params(entry).to_vec();
        self.env.begin_function(&mut self.builder, &params);
        for (i, p) in params.iter().enumerate().skip(WASM_PARAM_OFFSET) {
            let var = self.builder.declare_var(sig.params[i].value_type);
            self.builder.def_var(var, *p);
            self.locals.push(var);
        }
        self.env.function_entry(&mut self.builder, shape);
        let results: Vec<ir::Type> = sig.returns.iter().map(|r| r.value_type).collect();
        self.push_function_frame(results);
    }

    /// Declares `count` locals of type `ty`, each starting at zero / null.
    fn declare_locals(&mut self, count: u32, ty: wasmparser::ValType, offset: usize) -> TResult {
        let clif = self.wasm_type(ty, offset)?;
        for _ in 0..count {
            let var = self.builder.declare_var(clif);
            let zero = self.zero(clif);
            self.builder.def_var(var, zero);
            self.locals.push(var);
        }
        Ok(())
    }

    /// The zero value of a Cranelift type (locals start at zero / null).
    fn zero(&mut self, ty: ir::Type) -> Value {
        match ty {
            types::F32 => self.builder.ins().f32const(0.0f32),
            types::F64 => self.builder.ins().f64const(0.0f64),
            types::I8X16 => self.v128_const(0),
            _ => self.builder.ins().iconst(ty, 0),
        }
    }

    /// The Cranelift type of a wasm value type (v128 is `i8x16`).
    pub(crate) fn wasm_type(&self, ty: wasmparser::ValType, offset: usize) -> TResult<ir::Type> {
        Ok(match ty {
            wasmparser::ValType::I32 => types::I32,
            wasmparser::ValType::I64 => types::I64,
            wasmparser::ValType::F32 => types::F32,
            wasmparser::ValType::F64 => types::F64,
            wasmparser::ValType::V128 => types::I8X16,
            wasmparser::ValType::Ref(r) => {
                let rt = crate::module_info::ref_type(r, &self.env.info().type_is_func).map_err(
                    |_| TranslateError::Unsupported {
                        offset,
                        feature: "gc",
                    },
                )?;
                self.env.reference_type(rt)
            }
        })
    }

    /// The Cranelift type of one of the runtime's value types (v128 is `i8x16`).
    pub(crate) fn val_type(&self, ty: ValType, _offset: usize) -> TResult<ir::Type> {
        Ok(match ty {
            ValType::I32 => types::I32,
            ValType::I64 => types::I64,
            ValType::F32 => types::F32,
            ValType::F64 => types::F64,
            ValType::V128 => types::I8X16,
            ValType::Ref(r) => self.env.reference_type(r),
        })
    }

    /// Pops one operand.
    pub(crate) fn pop(&mut self) -> Value {
        self.stack
            .pop()
            .expect("validated code never pops an empty stack")
    }

    /// Pops two operands: `(below, top)`.
    pub(crate) fn pop2(&mut self) -> (Value, Value) {
        let b = self.pop();
        let a = self.pop();
        (a, b)
    }

    /// Pops three operands in stack order.
    pub(crate) fn pop3(&mut self) -> (Value, Value, Value) {
        let c = self.pop();
        let b = self.pop();
        let a = self.pop();
        (a, b, c)
    }

    /// Pops `n` operands, deepest first.
    pub(crate) fn pop_n(&mut self, n: usize) -> Vec<Value> {
        let at = self.stack.len() - n;
        self.stack.split_off(at)
    }

    /// The top `n` operands, deepest first, left on the stack.
    pub(crate) fn peek_n(&self, n: usize) -> &[Value] {
        &self.stack[self.stack.len() - n..]
    }

    /// Pushes one operand.
    pub(crate) fn push(&mut self, v: Value) {
        self.stack.push(v);
    }

    /// Translates one (already validated) operator.
    fn operator(&mut self, op: &Operator<'_>, offset: usize) -> TResult {
        if !self.reachable {
            return self.unreachable_operator(op);
        }
        self.env.before_operator(&mut self.builder, op);
        if self.control_operator(op, offset)?
            || self.memory_operator(op, offset)?
            || self.numeric_operator(op)?
            || self.simd_operator(op)?
            || self.gc_operator(op, offset)?
        {
            return Ok(());
        }
        match op {
            Operator::Nop => {}
            Operator::Drop => {
                self.pop();
            }
            Operator::Select | Operator::TypedSelect { .. } => {
                let (a, b, cond) = self.pop3();
                let v = self.builder.ins().select(cond, a, b);
                self.push(v);
            }
            Operator::TypedSelectMulti { tys } if tys.len() == 1 => {
                let (a, b, cond) = self.pop3();
                let v = self.builder.ins().select(cond, a, b);
                self.push(v);
            }
            Operator::LocalGet { local_index } => {
                let v = self.builder.use_var(self.locals[*local_index as usize]);
                self.push(v);
            }
            Operator::LocalSet { local_index } => {
                let v = self.pop();
                self.builder.def_var(self.locals[*local_index as usize], v);
            }
            Operator::LocalTee { local_index } => {
                let v = *self.stack.last().expect("validated");
                self.builder.def_var(self.locals[*local_index as usize], v);
            }
            Operator::GlobalGet { global_index } => {
                let v = self.env.global_get(&mut self.builder, *global_index);
                self.push(v);
            }
            Operator::GlobalSet { global_index } => {
                let v = self.pop();
                self.env.global_set(&mut self.builder, *global_index, v);
            }
            Operator::Unreachable => {
                self.builder.ins().trap(codes::UNREACHABLE);
                self.reachable = false;
            }
            Operator::RefNull { hty } => {
                crate::module_info::heap_type(*hty, &self.env.info().type_is_func).map_err(
                    |_| TranslateError::Unsupported {
                        offset,
                        feature: "gc",
                    },
                )?;
                let v = self.builder.ins().iconst(self.pointer, 0);
                self.push(v);
            }
            Operator::RefIsNull => {
                let r = self.pop();
                let c = self
                    .builder
                    .ins()
                    .icmp_imm_u(ir::condcodes::IntCC::Equal, r, 0);
                let v = self.builder.ins().uextend(types::I32, c);
                self.push(v);
            }
            Operator::RefAsNonNull => {
                let r = self.pop();
                self.builder.ins().trapz(r, codes::NULL_REFERENCE);
                self.push(r);
            }
            Operator::RefFunc { function_index } => {
                let v = self.env.ref_func(&mut self.builder, *function_index);
                self.push(v);
            }
            other => {
                return Err(TranslateError::Unsupported {
                    offset,
                    feature: proposal_of(other),
                });
            }
        }
        Ok(())
    }
}

/// Defines [`proposal_of`] from wasmparser's operator list.
macro_rules! define_proposal_of {
    ($( @$proposal:ident $op:ident $({ $($arg:ident: $argty:ty),* })? => $visit:ident ($($ann:tt)*) )*) => {
        /// The name of the proposal an operator comes from (`"simd"`,
        /// `"tail_call"`, …), for [`TranslateError::Unsupported`].
        fn proposal_of(op: &Operator<'_>) -> &'static str {
            #[allow(unreachable_patterns)]
            match op {
                $( Operator::$op { .. } => stringify!($proposal), )*
                _ => "unknown",
            }
        }
    };
}
wasmparser::for_each_operator!(define_proposal_of);
