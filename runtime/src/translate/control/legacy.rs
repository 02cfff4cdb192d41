//! The legacy exception-handling instructions: `try` with `catch`,
//! `catch_all` or `delegate`, and `rethrow` — the encoding clang has long
//! emitted for `-fwasm-exceptions`, kept by the spec's `legacy` appendix.
//!
//! They run on the same unwinder as `try_table`. A `try`'s clauses come
//! after its body, but the calls in the body need them when they are
//! emitted, so the first `try` of a function triggers one pass over the
//! body ([`scan_legacy_tries`]) that lists every `try`'s clauses in order.
//! In its body, a `try` then contributes its clauses like a `try_table`
//! ([`Translator::catch_clauses`]); each clause's landing block becomes
//! the start of its handler: the payload goes on the stack, and the
//! exception is remembered for `rethrow`. Once the first handler starts,
//! the `try` contributes nothing more (its handlers run outside it). A
//! `try` that ends in `delegate` contributes no clauses of its own: its
//! body's exceptions go to the clauses of the construct its label names.
//!
//! A handler that some `rethrow` names keeps its exception alive until
//! the store is dropped (as a `catch_ref` does); every other handler
//! frees it once the payload is read.

use alloc::vec::Vec;

use cranelift_codegen::ir::{InstBuilder, Value};
use wasmparser::{BlockType, FunctionBody, Operator};

use super::{Catch, FrameKind};
use crate::translate::{TResult, TranslateError, Translator};

/// What the scan found of one legacy `try`.
#[derive(Debug, Default)]
pub(crate) struct LegacyTryShape {
    /// its clauses in order: the tag caught, `None` for `catch_all`
    clauses: Vec<Option<u32>>,
    /// `delegate`'s label (relative, outside the `try`)
    delegate: Option<u32>,
    /// whether a `rethrow` in one of its handlers names it
    rethrown: bool,
}

/// The state of an open legacy `try`.
#[derive(Debug)]
pub(crate) struct LegacyTry {
    /// for a `try … delegate`, the index in the control stack of the
    /// construct whose clauses take the body's exceptions
    pub(super) delegate_to: Option<usize>,
    /// whether its body is over and a handler is being translated
    pub(super) in_handlers: bool,
    /// the clause whose handler comes next
    next_clause: usize,
    /// the exception the current handler caught (`rethrow`)
    caught: Option<Value>,
    /// whether handlers keep the exception alive (some `rethrow` needs it)
    keep: bool,
}

/// Lists the legacy `try`s of `body` in the order they appear. A body
/// that stops parsing yields what came before (validation reports it).
pub(crate) fn scan_legacy_tries(body: &FunctionBody<'_>) -> Vec<LegacyTryShape> {
    let mut shapes: Vec<LegacyTryShape> = Vec::new();
    // Per open construct: its index in `shapes` if it is a legacy `try`.
    let mut open: Vec<Option<usize>> = Vec::new();
    let Ok(mut ops) = body.get_operators_reader() else {
        return shapes;
    };
    while !ops.eof() {
        let Ok(op) = ops.read() else { break };
        match op {
            Operator::Block { .. }
            | Operator::Loop { .. }
            | Operator::If { .. }
            | Operator::TryTable { .. } => open.push(None),
            Operator::Try { .. } => {
                open.push(Some(shapes.len()));
                shapes.push(LegacyTryShape::default());
            }
            Operator::Catch { tag_index } => {
                if let Some(Some(i)) = open.last() {
                    shapes[*i].clauses.push(Some(tag_index));
                }
            }
            Operator::CatchAll => {
                if let Some(Some(i)) = open.last() {
                    shapes[*i].clauses.push(None);
                }
            }
            Operator::Delegate { relative_depth } => {
                if let Some(Some(i)) = open.pop() {
                    shapes[i].delegate = Some(relative_depth);
                }
            }
            Operator::Rethrow { relative_depth } => {
                let at = open.len().checked_sub(1 + relative_depth as usize);
                if let Some(Some(i)) = at.and_then(|k| open.get(k)) {
                    shapes[*i].rethrown = true;
                }
            }
            Operator::End => {
                open.pop();
            }
            _ => {}
        }
    }
    shapes
}

impl Translator<'_, '_> {
    /// `try`: a block whose body is covered by the clauses the scan found.
    pub(super) fn translate_legacy_try(&mut self, blockty: BlockType, offset: usize) -> TResult {
        let cursor = self.legacy_cursor;
        self.legacy_cursor += 1;
        let Some(shape) = self.legacy_tries.as_ref().and_then(|s| s.get(cursor)) else {
            // Only a body that stops parsing: validation says why.
            return Err(TranslateError::Unsupported {
                offset,
                feature: "legacy_exceptions",
            });
        };
        let index = self.control.len();
        let delegate_to = match shape.delegate {
            // A label out of range is invalid: the validator says so when
            // it reaches the `delegate`.
            Some(depth) => Some(index.checked_sub(1 + depth as usize).ok_or(
                TranslateError::Unsupported {
                    offset,
                    feature: "legacy_exceptions",
                },
            )?),
            None => None,
        };
        let keep = shape.rethrown;
        let catches = shape
            .clauses
            .iter()
            .map(|tag| Catch {
                tag: *tag,
                with_ref: keep,
                target: index,
                landing: None,
            })
            .collect();
        self.open_block(FrameKind::LegacyTry, blockty, offset, catches)?;
        if let Some(frame) = self.control.last_mut() {
            frame.legacy = Some(LegacyTry {
                delegate_to,
                in_handlers: false,
                next_clause: 0,
                caught: None,
                keep,
            });
        }
        Ok(())
    }

    /// `catch` or `catch_all`: ends the `try`'s body (or the previous
    /// handler) and starts the next clause's handler, in its landing
    /// block: unreachable if nothing in the body could throw to it.
    pub(super) fn translate_legacy_catch(&mut self) -> TResult {
        let reachable = self.reachable;
        let Some(frame) = self.control.last_mut() else {
            return Err(TranslateError::Codegen("catch outside a try".into()));
        };
        if !frame.live {
            return Ok(());
        }
        let (next, results, height) = (frame.next, frame.num_results, frame.height);
        if reachable {
            frame.next_reached = true;
        }
        let Some(legacy) = frame.legacy.as_mut() else {
            return Err(TranslateError::Codegen("catch outside a try".into()));
        };
        legacy.in_handlers = true;
        let clause = legacy.next_clause;
        legacy.next_clause += 1;
        let keep = legacy.keep;
        let Some(catch) = frame.catches.get(clause) else {
            return Err(TranslateError::Codegen("catch the scan did not see".into()));
        };
        let (tag, landing) = (catch.tag, catch.landing);
        if reachable {
            let values = self.pop_n(results);
            self.builder.ins().jump(next, &super::args(&values));
        }
        self.stack.truncate(height);
        let Some(landing) = landing else {
            self.set_caught(None);
            self.reachable = false;
            return Ok(());
        };
        self.builder.switch_to_block(landing);
        self.builder.seal_block(landing);
        let exn = self.builder.block_params(landing)[0];
        let payload = match tag {
            Some(tag) => self.env.exception_payload(&mut self.builder, exn, tag),
            None => Vec::new(),
        };
        self.env.exception_caught(&mut self.builder, exn, keep);
        self.stack.extend(payload);
        self.set_caught(Some(exn));
        self.reachable = true;
        Ok(())
    }

    fn set_caught(&mut self, exn: Option<Value>) {
        if let Some(legacy) = self.control.last_mut().and_then(|f| f.legacy.as_mut()) {
            legacy.caught = exn;
        }
    }

    /// `rethrow`: throws the exception of the handler `depth` names again.
    pub(super) fn translate_rethrow(&mut self, depth: u32) -> TResult {
        let exn = self
            .control
            .len()
            .checked_sub(1 + depth as usize)
            .and_then(|i| self.control[i].legacy.as_ref())
            .and_then(|l| l.caught)
            .ok_or_else(|| TranslateError::Codegen("rethrow outside a handler".into()))?;
        let catches = self.catch_clauses();
        self.env.throw_ref(&mut self.builder, exn, &catches);
        self.reachable = false;
        Ok(())
    }
}
