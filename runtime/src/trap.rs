//! Traps: the codes compiled code carries, and how a fault becomes a trap.

/// Trap codes recorded in compiled code. Cranelift's reserved codes are used
/// where they exist; the rest are user codes of ours.
pub mod codes {
    use cranelift_codegen::ir::TrapCode;

    /// stack limit reached in a function prologue
    pub const STACK_OVERFLOW: TrapCode = TrapCode::STACK_OVERFLOW;
    /// signed division overflow, or a float-to-int conversion out of range
    pub const INTEGER_OVERFLOW: TrapCode = TrapCode::INTEGER_OVERFLOW;
    /// out-of-bounds linear memory access
    pub const HEAP_OUT_OF_BOUNDS: TrapCode = TrapCode::HEAP_OUT_OF_BOUNDS;
    /// integer division or remainder by zero
    pub const INTEGER_DIVISION_BY_ZERO: TrapCode = TrapCode::INTEGER_DIVISION_BY_ZERO;
    /// float-to-int conversion of NaN
    pub const BAD_CONVERSION_TO_INTEGER: TrapCode = TrapCode::BAD_CONVERSION_TO_INTEGER;
    /// the `unreachable` instruction
    pub const UNREACHABLE: TrapCode = TrapCode::unwrap_user(1);
    /// table index out of bounds (call_indirect, table.get/set)
    pub const TABLE_OUT_OF_BOUNDS: TrapCode = TrapCode::unwrap_user(2);
    /// call_indirect through a null table entry
    pub const INDIRECT_CALL_TO_NULL: TrapCode = TrapCode::unwrap_user(3);
    /// call_indirect signature mismatch
    pub const BAD_SIGNATURE: TrapCode = TrapCode::unwrap_user(4);
    /// a host function returned an error (the error is stored aside)
    pub const HOST_ERROR: TrapCode = TrapCode::unwrap_user(5);
    /// null reference dereferenced (typed function references,
    /// `throw_ref` of a null `exnref`)
    pub const NULL_REFERENCE: TrapCode = TrapCode::unwrap_user(6);
    /// an exception no handler caught reached the host (never in compiled
    /// code: the unwinder records it when it reaches the entry)
    pub const UNCAUGHT_EXCEPTION: TrapCode = TrapCode::unwrap_user(7);
    /// `ref.cast` of a value not of the target type
    pub const CAST_FAILURE: TrapCode = TrapCode::unwrap_user(8);
    /// an array index or range out of bounds
    pub const ARRAY_OUT_OF_BOUNDS: TrapCode = TrapCode::unwrap_user(9);
    /// the store's GC heap is full
    pub const GC_HEAP_FULL: TrapCode = TrapCode::unwrap_user(10);
    /// the store's interrupt check asked to stop (a deadline)
    pub const INTERRUPTED: TrapCode = TrapCode::unwrap_user(11);
    /// the store's fuel ran out (`Config::consume_fuel`)
    pub const OUT_OF_FUEL: TrapCode = TrapCode::unwrap_user(12);
}

use core::fmt;

use cranelift_codegen::ir::TrapCode;

/// The kinds of wasm trap, as users see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrapKind {
    /// the call stack is exhausted
    StackOverflow,
    /// integer overflow (signed division of MIN by -1)
    IntegerOverflow,
    /// out-of-bounds memory access
    MemoryOutOfBounds,
    /// integer divide by zero
    IntegerDivisionByZero,
    /// invalid conversion to integer (NaN or out of range)
    BadConversionToInteger,
    /// `unreachable` executed
    Unreachable,
    /// table index out of bounds
    TableOutOfBounds,
    /// call_indirect to a null table entry
    IndirectCallToNull,
    /// call_indirect signature mismatch
    BadSignature,
    /// a host function failed
    HostError,
    /// null reference
    NullReference,
    /// a wasm exception was thrown and not caught
    UncaughtException,
    /// `ref.cast` of a value not of the target type
    CastFailure,
    /// an array index or range out of bounds
    ArrayOutOfBounds,
    /// the store's GC heap is full
    GcHeapFull,
    /// the store's interrupt check stopped the program (a deadline)
    Interrupted,
    /// the store's fuel ran out ([`crate::Config::consume_fuel`])
    OutOfFuel,
    /// a trap code this runtime does not know (a bug)
    Unknown(u8),
}

impl TrapKind {
    /// Whether a trap of this kind is what a spec-test script's
    /// `assert_trap` message describes (the scripts use the reference
    /// interpreter's wording; both spec runners, hosted and in the kernel,
    /// use this).
    pub fn matches_spec_message(self, message: &str) -> bool {
        let aliases: &[&str] = match self {
            TrapKind::TableOutOfBounds => &["undefined element", "out of bounds table access"],
            TrapKind::MemoryOutOfBounds => &["out of bounds memory access"],
            TrapKind::IndirectCallToNull => &["uninitialized element"],
            TrapKind::BadSignature => &["indirect call type mismatch"],
            TrapKind::Unreachable => &["unreachable"],
            TrapKind::StackOverflow => &["call stack exhausted"],
            TrapKind::NullReference => &[
                "null function reference",
                "null exception reference",
                "null i31 reference",
                "null structure reference",
                "null array reference",
            ],
            TrapKind::ArrayOutOfBounds => &["out of bounds array access"],
            TrapKind::CastFailure => &["cast failure"],
            _ => &[],
        };
        let own = alloc::format!("{self}");
        message.starts_with(own.as_str()) || aliases.iter().any(|a| message.starts_with(a))
    }

    /// The kind for a trap code from compiled code.
    pub fn from_code(code: TrapCode) -> TrapKind {
        match code {
            codes::STACK_OVERFLOW => TrapKind::StackOverflow,
            codes::INTEGER_OVERFLOW => TrapKind::IntegerOverflow,
            codes::HEAP_OUT_OF_BOUNDS => TrapKind::MemoryOutOfBounds,
            codes::INTEGER_DIVISION_BY_ZERO => TrapKind::IntegerDivisionByZero,
            codes::BAD_CONVERSION_TO_INTEGER => TrapKind::BadConversionToInteger,
            codes::UNREACHABLE => TrapKind::Unreachable,
            codes::TABLE_OUT_OF_BOUNDS => TrapKind::TableOutOfBounds,
            codes::INDIRECT_CALL_TO_NULL => TrapKind::IndirectCallToNull,
            codes::BAD_SIGNATURE => TrapKind::BadSignature,
            codes::HOST_ERROR => TrapKind::HostError,
            codes::NULL_REFERENCE => TrapKind::NullReference,
            codes::UNCAUGHT_EXCEPTION => TrapKind::UncaughtException,
            codes::CAST_FAILURE => TrapKind::CastFailure,
            codes::ARRAY_OUT_OF_BOUNDS => TrapKind::ArrayOutOfBounds,
            codes::GC_HEAP_FULL => TrapKind::GcHeapFull,
            codes::INTERRUPTED => TrapKind::Interrupted,
            codes::OUT_OF_FUEL => TrapKind::OutOfFuel,
            other => TrapKind::Unknown(other.as_raw().get()),
        }
    }

    /// A short stable identifier (used in the guest's status marker).
    pub fn id(&self) -> &'static str {
        match self {
            TrapKind::StackOverflow => "stack-overflow",
            TrapKind::IntegerOverflow => "integer-overflow",
            TrapKind::MemoryOutOfBounds => "memory-out-of-bounds",
            TrapKind::IntegerDivisionByZero => "integer-divide-by-zero",
            TrapKind::BadConversionToInteger => "bad-conversion-to-integer",
            TrapKind::Unreachable => "unreachable",
            TrapKind::TableOutOfBounds => "table-out-of-bounds",
            TrapKind::IndirectCallToNull => "indirect-call-to-null",
            TrapKind::BadSignature => "indirect-call-type-mismatch",
            TrapKind::HostError => "host-error",
            TrapKind::NullReference => "null-reference",
            TrapKind::UncaughtException => "uncaught-exception",
            TrapKind::CastFailure => "cast-failure",
            TrapKind::ArrayOutOfBounds => "array-out-of-bounds",
            TrapKind::GcHeapFull => "gc-heap-full",
            TrapKind::Interrupted => "interrupted",
            TrapKind::OutOfFuel => "out-of-fuel",
            TrapKind::Unknown(_) => "unknown",
        }
    }
}

impl fmt::Display for TrapKind {
    /// The spec test suite's wording, so `assert_trap` messages match.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrapKind::StackOverflow => f.write_str("call stack exhausted"),
            TrapKind::IntegerOverflow => f.write_str("integer overflow"),
            TrapKind::MemoryOutOfBounds => f.write_str("out of bounds memory access"),
            TrapKind::IntegerDivisionByZero => f.write_str("integer divide by zero"),
            TrapKind::BadConversionToInteger => f.write_str("invalid conversion to integer"),
            TrapKind::Unreachable => f.write_str("unreachable"),
            TrapKind::TableOutOfBounds => {
                f.write_str("undefined element: table index out of bounds")
            }
            TrapKind::IndirectCallToNull => f.write_str("uninitialized element"),
            TrapKind::BadSignature => f.write_str("indirect call type mismatch"),
            TrapKind::HostError => f.write_str("host function error"),
            TrapKind::NullReference => f.write_str("null reference"),
            TrapKind::UncaughtException => f.write_str("uncaught wasm exception"),
            TrapKind::CastFailure => f.write_str("cast failure"),
            TrapKind::ArrayOutOfBounds => f.write_str("out of bounds array access"),
            TrapKind::GcHeapFull => f.write_str("allocation failure: the GC heap is full"),
            TrapKind::Interrupted => f.write_str("interrupted: the program ran past its deadline"),
            TrapKind::OutOfFuel => f.write_str("all fuel consumed"),
            TrapKind::Unknown(c) => write!(f, "unknown trap code {c}"),
        }
    }
}
