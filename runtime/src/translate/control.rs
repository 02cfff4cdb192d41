//! Structured control flow: blocks, loops, ifs, branches, calls, tail
//! calls, returns.
//!
//! Every wasm block gets a Cranelift "next" block whose parameters are the
//! wasm block's results; a `loop` also gets a header block whose parameters
//! are the loop's parameters. Block parameters flow in as the plain SSA
//! values already on the operand stack. An `if` branches to a then-block
//! and an else-block; an `if` without `else` still gets its else-block,
//! which forwards the parameters as results (validation guarantees the
//! types agree).
//!
//! A `try_table` is a block whose catch clauses are in effect for the
//! calls and throws inside it: each clause gets a landing block (created
//! when the first call needs it) that receives the exception, takes its
//! payload and branches to the clause's label. The landing blocks are
//! filled at the `try_table`'s `end`, when every call that can reach them
//! has been emitted. The legacy `try` blocks work the same way (see
//! [`legacy`]).

use alloc::vec::Vec;

use cranelift_codegen::ir::{self, BlockArg, InstBuilder, JumpTableData, Value};
use wasmparser::{BlockType, Operator};

use super::{CatchClause, TResult, TranslateError, Translator};

mod legacy;
pub(crate) use legacy::{LegacyTry, LegacyTryShape, scan_legacy_tries};

/// What kind of construct a [`Frame`] stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FrameKind {
    /// the function body
    Function,
    /// `block`
    Block,
    /// `loop`
    Loop,
    /// `if` (with or without `else`)
    If,
    /// `try_table`
    TryTable,
    /// a legacy `try` (`catch`, `catch_all`, `delegate`)
    LegacyTry,
}

/// One catch clause of a `try_table`.
#[derive(Debug)]
pub(crate) struct Catch {
    /// the tag caught (`None`: `catch_all`)
    tag: Option<u32>,
    /// whether the label also gets the `exnref` (`catch_ref`, `catch_all_ref`)
    with_ref: bool,
    /// index in the control stack of the frame the clause's label names
    target: usize,
    /// the landing block, once a call has needed it
    landing: Option<ir::Block>,
}

/// One open block.
#[derive(Debug)]
pub(crate) struct Frame {
    /// the construct
    kind: FrameKind,
    /// whether the construct was entered in reachable code; if not, nothing
    /// of it is translated and the other fields are placeholders
    live: bool,
    /// the block after the construct, parameterised by its results
    next: ir::Block,
    /// a loop's header (branches to the loop go there)
    header: Option<ir::Block>,
    /// an `if`'s else-block while its `else` has not been seen
    else_block: Option<ir::Block>,
    /// an `if`'s parameters, handed again to its else branch
    if_params: Vec<Value>,
    /// how many values a branch to this frame carries
    branch_arity: usize,
    /// how many results the construct has
    num_results: usize,
    /// operand stack height below the construct's parameters
    height: usize,
    /// whether some branch (or the end of a then-branch) reaches `next`
    next_reached: bool,
    /// a `try_table`'s or legacy `try`'s catch clauses, in order
    catches: Vec<Catch>,
    /// a legacy `try`'s state (`None` for every other construct)
    legacy: Option<LegacyTry>,
}

impl Frame {
    /// A frame opened in unreachable code.
    fn dead(kind: FrameKind, next: ir::Block) -> Frame {
        Frame {
            kind,
            live: false,
            next,
            header: None,
            else_block: None,
            if_params: Vec::new(),
            branch_arity: 0,
            num_results: 0,
            height: 0,
            next_reached: false,
            catches: Vec::new(),
            legacy: None,
        }
    }
}

fn args(values: &[Value]) -> Vec<BlockArg> {
    values.iter().map(|v| BlockArg::Value(*v)).collect()
}

impl Translator<'_, '_> {
    /// Opens the frame of the function body, whose "next" block returns.
    pub(crate) fn push_function_frame(&mut self, results: Vec<ir::Type>) {
        let next = self.block_with_params(&results);
        self.control.push(Frame {
            kind: FrameKind::Function,
            live: true,
            next,
            header: None,
            else_block: None,
            if_params: Vec::new(),
            branch_arity: results.len(),
            num_results: results.len(),
            height: 0,
            next_reached: false,
            catches: Vec::new(),
            legacy: None,
        });
    }

    fn block_with_params(&mut self, tys: &[ir::Type]) -> ir::Block {
        let b = self.builder.create_block();
        for t in tys {
            self.builder.append_block_param(b, *t);
        }
        b
    }

    /// Parameter and result types of a block type.
    fn block_signature(
        &self,
        ty: BlockType,
        offset: usize,
    ) -> TResult<(Vec<ir::Type>, Vec<ir::Type>)> {
        match ty {
            BlockType::Empty => Ok((Vec::new(), Vec::new())),
            BlockType::Type(t) => Ok((Vec::new(), alloc::vec![self.wasm_type(t, offset)?])),
            BlockType::FuncType(idx) => {
                let ft = self
                    .env
                    .info()
                    .types
                    .get(idx as usize)
                    .cloned()
                    .ok_or_else(|| TranslateError::Codegen("block type out of range".into()))?;
                let params = ft
                    .params
                    .iter()
                    .map(|t| self.val_type(*t, offset))
                    .collect::<TResult<Vec<_>>>()?;
                let results = ft
                    .results
                    .iter()
                    .map(|t| self.val_type(*t, offset))
                    .collect::<TResult<Vec<_>>>()?;
                Ok((params, results))
            }
        }
    }

    /// The block a branch of relative depth `depth` goes to, and how many
    /// values it carries. Marks the target as reached.
    pub(crate) fn branch_target(&mut self, depth: u32) -> (ir::Block, usize) {
        let i = self.control.len() - 1 - depth as usize;
        self.branch_target_at(i)
    }

    /// [`Self::branch_target`] of the frame at index `i` of the control stack.
    fn branch_target_at(&mut self, i: usize) -> (ir::Block, usize) {
        let frame = &mut self.control[i];
        match frame.header {
            Some(h) => (h, frame.branch_arity),
            None => {
                frame.next_reached = true;
                (frame.next, frame.branch_arity)
            }
        }
    }

    /// Follows block nesting in unreachable code (nothing is emitted).
    pub(crate) fn unreachable_operator(&mut self, op: &Operator<'_>) -> TResult {
        match op {
            Operator::Block { .. }
            | Operator::Loop { .. }
            | Operator::If { .. }
            | Operator::TryTable { .. } => {
                let kind = match op {
                    Operator::Block { .. } => FrameKind::Block,
                    Operator::Loop { .. } => FrameKind::Loop,
                    Operator::TryTable { .. } => FrameKind::TryTable,
                    _ => FrameKind::If,
                };
                // A placeholder block, never filled.
                let next = self.builder.create_block();
                self.control.push(Frame::dead(kind, next));
            }
            Operator::Try { .. } => {
                self.legacy_cursor += 1;
                let next = self.builder.create_block();
                self.control.push(Frame::dead(FrameKind::LegacyTry, next));
            }
            Operator::Catch { .. } | Operator::CatchAll => self.translate_legacy_catch()?,
            Operator::Else => self.translate_else(),
            Operator::End | Operator::Delegate { .. } => self.translate_end(),
            _ => {}
        }
        Ok(())
    }

    /// Translates control operators and calls; `false` if `op` is not one.
    pub(crate) fn control_operator(&mut self, op: &Operator<'_>, offset: usize) -> TResult<bool> {
        match op {
            Operator::Block { blockty } => {
                self.open_block(FrameKind::Block, *blockty, offset, Vec::new())?;
            }
            Operator::TryTable { try_table } => {
                let enclosing = self.control.len();
                let catches = try_table
                    .catches
                    .iter()
                    .map(|c| {
                        let (tag, with_ref, label) = match *c {
                            wasmparser::Catch::One { tag, label } => (Some(tag), false, label),
                            wasmparser::Catch::OneRef { tag, label } => (Some(tag), true, label),
                            wasmparser::Catch::All { label } => (None, false, label),
                            wasmparser::Catch::AllRef { label } => (None, true, label),
                        };
                        Catch {
                            tag,
                            with_ref,
                            target: enclosing - 1 - label as usize,
                            landing: None,
                        }
                    })
                    .collect();
                self.open_block(FrameKind::TryTable, try_table.ty, offset, catches)?;
            }
            Operator::Throw { tag_index } => {
                let n = self.env.info().tag_params(*tag_index).len();
                let values = self.pop_n(n);
                let catches = self.catch_clauses();
                self.env
                    .throw(&mut self.builder, *tag_index, &values, &catches);
                self.reachable = false;
            }
            Operator::ThrowRef => {
                let exn = self.pop();
                let catches = self.catch_clauses();
                self.env.throw_ref(&mut self.builder, exn, &catches);
                self.reachable = false;
            }
            Operator::Loop { blockty } => {
                let (params, results) = self.block_signature(*blockty, offset)?;
                let header = self.block_with_params(&params);
                let next = self.block_with_params(&results);
                let entry = self.pop_n(params.len());
                self.builder.ins().jump(header, &args(&entry));
                self.builder.switch_to_block(header);
                let height = self.stack.len();
                self.stack
                    .extend_from_slice(self.builder.block_params(header));
                self.env.loop_header(&mut self.builder);
                self.control.push(Frame {
                    kind: FrameKind::Loop,
                    live: true,
                    next,
                    header: Some(header),
                    else_block: None,
                    if_params: Vec::new(),
                    branch_arity: params.len(),
                    num_results: results.len(),
                    height,
                    next_reached: false,
                    catches: Vec::new(),
                    legacy: None,
                });
            }
            Operator::If { blockty } => {
                let (params, results) = self.block_signature(*blockty, offset)?;
                let cond = self.pop();
                let then_block = self.builder.create_block();
                let else_block = self.builder.create_block();
                let next = self.block_with_params(&results);
                self.builder
                    .ins()
                    .brif(cond, then_block, &[], else_block, &[]);
                self.builder.seal_block(then_block);
                self.builder.seal_block(else_block);
                self.builder.switch_to_block(then_block);
                let if_params = self.peek_n(params.len()).to_vec();
                self.control.push(Frame {
                    kind: FrameKind::If,
                    live: true,
                    next,
                    header: None,
                    else_block: Some(else_block),
                    if_params,
                    branch_arity: results.len(),
                    num_results: results.len(),
                    height: self.stack.len() - params.len(),
                    next_reached: false,
                    catches: Vec::new(),
                    legacy: None,
                });
            }
            Operator::Try { blockty } => self.translate_legacy_try(*blockty, offset)?,
            Operator::Catch { .. } | Operator::CatchAll => self.translate_legacy_catch()?,
            Operator::Delegate { .. } => self.translate_end(),
            Operator::Rethrow { relative_depth } => self.translate_rethrow(*relative_depth)?,
            Operator::Else => self.translate_else(),
            Operator::End => self.translate_end(),
            Operator::Br { relative_depth } => {
                let (target, n) = self.branch_target(*relative_depth);
                let a = args(self.peek_n(n));
                self.builder.ins().jump(target, &a);
                self.reachable = false;
            }
            Operator::BrIf { relative_depth } => {
                let cond = self.pop();
                let (target, n) = self.branch_target(*relative_depth);
                let a = args(self.peek_n(n));
                let fallthrough = self.builder.create_block();
                self.builder.ins().brif(cond, target, &a, fallthrough, &[]);
                self.builder.seal_block(fallthrough);
                self.builder.switch_to_block(fallthrough);
            }
            Operator::BrTable { targets } => {
                let index = self.pop();
                let depths = targets
                    .targets()
                    .collect::<Result<Vec<u32>, _>>()
                    .map_err(TranslateError::from)?;
                let (default, n) = self.branch_target(targets.default());
                let a = args(self.peek_n(n));
                let mut calls = Vec::with_capacity(depths.len());
                for d in depths {
                    let (block, _) = self.branch_target(d);
                    calls.push(self.builder.func.dfg.block_call(block, &a));
                }
                let default = self.builder.func.dfg.block_call(default, &a);
                let jt = self
                    .builder
                    .create_jump_table(JumpTableData::new(default, &calls));
                self.builder.ins().br_table(index, jt);
                self.reachable = false;
            }
            Operator::Return => {
                let n = self.control[0].num_results;
                let results = self.pop_n(n);
                self.builder.ins().return_(&results);
                self.reachable = false;
            }
            Operator::Call { function_index } => {
                let ty = self.env.info().func_type(*function_index).clone();
                let a = self.pop_n(ty.params.len());
                let catches = self.catch_clauses();
                let results = self
                    .env
                    .call(&mut self.builder, *function_index, &a, &catches);
                self.stack.extend(results);
            }
            Operator::CallIndirect {
                type_index,
                table_index,
            } => {
                let (index, a) = self.pop_indirect_call_operands(*type_index)?;
                let catches = self.catch_clauses();
                let results = self.env.call_indirect(
                    &mut self.builder,
                    *table_index,
                    *type_index,
                    index,
                    &a,
                    &catches,
                );
                self.stack.extend(results);
            }
            Operator::ReturnCall { function_index } => {
                let ty = self.env.info().func_type(*function_index).clone();
                let a = self.pop_n(ty.params.len());
                self.env.return_call(&mut self.builder, *function_index, &a);
                self.reachable = false;
            }
            Operator::ReturnCallIndirect {
                type_index,
                table_index,
            } => {
                let (index, a) = self.pop_indirect_call_operands(*type_index)?;
                self.env.return_call_indirect(
                    &mut self.builder,
                    *table_index,
                    *type_index,
                    index,
                    &a,
                );
                self.reachable = false;
            }
            Operator::CallRef { type_index } | Operator::ReturnCallRef { type_index } => {
                let tail = matches!(op, Operator::ReturnCallRef { .. });
                let (callee, a) = self.pop_indirect_call_operands(*type_index)?;
                let catches = if tail {
                    Vec::new()
                } else {
                    self.catch_clauses()
                };
                let results =
                    self.env
                        .call_ref(&mut self.builder, *type_index, callee, &a, tail, &catches);
                if tail {
                    self.reachable = false;
                } else {
                    self.stack.extend(results);
                }
            }
            Operator::BrOnNull { relative_depth } => {
                // Null: branch with the values below the reference, which
                // is dropped. Otherwise it stays on the stack.
                let reference = self.pop();
                let (target, n) = self.branch_target(*relative_depth);
                let a = args(self.peek_n(n));
                let fallthrough = self.builder.create_block();
                self.builder
                    .ins()
                    .brif(reference, fallthrough, &[], target, &a);
                self.builder.seal_block(fallthrough);
                self.builder.switch_to_block(fallthrough);
                self.push(reference);
            }
            Operator::BrOnNonNull { relative_depth } => {
                // Not null: branch with the values below it and the
                // reference (the label's last value). Null: dropped.
                let reference = self.pop();
                let (target, n) = self.branch_target(*relative_depth);
                let mut a = args(self.peek_n(n - 1));
                a.push(BlockArg::Value(reference));
                let fallthrough = self.builder.create_block();
                self.builder
                    .ins()
                    .brif(reference, target, &a, fallthrough, &[]);
                self.builder.seal_block(fallthrough);
                self.builder.switch_to_block(fallthrough);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Opens a `block`, or a `try_table` with its catch clauses: a frame
    /// whose results go to a new "next" block.
    fn open_block(
        &mut self,
        kind: FrameKind,
        ty: BlockType,
        offset: usize,
        catches: Vec<Catch>,
    ) -> TResult {
        let (params, results) = self.block_signature(ty, offset)?;
        let next = self.block_with_params(&results);
        self.control.push(Frame {
            kind,
            live: true,
            next,
            header: None,
            else_block: None,
            if_params: Vec::new(),
            branch_arity: results.len(),
            num_results: results.len(),
            height: self.stack.len() - params.len(),
            next_reached: false,
            catches,
            legacy: None,
        });
        Ok(())
    }

    /// The catch clauses in effect here, innermost `try_table` or legacy
    /// `try` first, up to and including the first `catch_all` (nothing
    /// after it can match). A legacy `try` counts only in its body (its
    /// handlers run outside it), and one that ends in `delegate` passes
    /// its body's exceptions on to the construct its label names.
    /// Creates the landing blocks that do not exist yet.
    fn catch_clauses(&mut self) -> Vec<CatchClause> {
        let mut clauses = Vec::new();
        let mut i = self.control.len();
        while i > 0 {
            i -= 1;
            let frame = &self.control[i];
            if !frame.live {
                continue;
            }
            match (frame.kind, &frame.legacy) {
                (FrameKind::TryTable, _) => {}
                (FrameKind::LegacyTry, Some(legacy)) if !legacy.in_handlers => {
                    if let Some(target) = legacy.delegate_to {
                        // Continue at the target itself.
                        i = target + 1;
                        continue;
                    }
                }
                _ => continue,
            }
            for c in 0..self.control[i].catches.len() {
                let landing = match self.control[i].catches[c].landing {
                    Some(b) => b,
                    None => {
                        let b = self.builder.create_block();
                        self.builder.append_block_param(b, self.pointer);
                        self.control[i].catches[c].landing = Some(b);
                        b
                    }
                };
                let tag = self.control[i].catches[c].tag;
                clauses.push(CatchClause { tag, landing });
                if tag.is_none() {
                    return clauses;
                }
            }
        }
        clauses
    }

    /// Fills the landing blocks of a closed `try_table`'s clauses: take the
    /// payload (and the `exnref`), branch to the clause's label.
    fn fill_landings(&mut self, catches: Vec<Catch>) {
        for c in catches {
            let Some(landing) = c.landing else { continue };
            self.builder.switch_to_block(landing);
            self.builder.seal_block(landing);
            let exn = self.builder.block_params(landing)[0];
            let mut values = match c.tag {
                Some(tag) => self.env.exception_payload(&mut self.builder, exn, tag),
                None => Vec::new(),
            };
            self.env
                .exception_caught(&mut self.builder, exn, c.with_ref);
            if c.with_ref {
                values.push(exn);
            }
            let (target, _) = self.branch_target_at(c.target);
            self.builder.ins().jump(target, &args(&values));
        }
    }

    /// Pops the table index (`call_indirect`, `return_call_indirect`) or
    /// the function reference (`call_ref`, `return_call_ref`), then the
    /// arguments of a call of type `type_index`.
    fn pop_indirect_call_operands(&mut self, type_index: u32) -> TResult<(Value, Vec<Value>)> {
        let params = self
            .env
            .info()
            .types
            .get(type_index as usize)
            .map(|ty| ty.params.len())
            .ok_or_else(|| TranslateError::Codegen("type index out of range".into()))?;
        let index = self.pop();
        Ok((index, self.pop_n(params)))
    }

    /// `else`: closes the then branch and opens the else branch.
    fn translate_else(&mut self) {
        let reachable = self.reachable;
        let frame = self.control.last_mut().expect("validated else");
        if !frame.live {
            return;
        }
        let else_block = frame.else_block.take().expect("validated else follows if");
        let next = frame.next;
        let n = frame.num_results;
        let height = frame.height;
        let params = core::mem::take(&mut frame.if_params);
        if reachable {
            frame.next_reached = true;
            let results = self.pop_n(n);
            self.builder.ins().jump(next, &args(&results));
        }
        self.stack.truncate(height);
        self.builder.switch_to_block(else_block);
        self.stack.extend_from_slice(&params);
        self.reachable = true;
    }

    /// `end`: closes the innermost frame; at the function's end, returns.
    fn translate_end(&mut self) {
        let frame = self.control.pop().expect("validated end");
        if !frame.live {
            return;
        }
        let mut next_reached = frame.next_reached;
        if self.reachable {
            let results = self.pop_n(frame.num_results);
            self.builder.ins().jump(frame.next, &args(&results));
            next_reached = true;
        }
        if let Some(else_block) = frame.else_block {
            // `if` without `else`: the parameters become the results.
            self.builder.switch_to_block(else_block);
            self.builder.ins().jump(frame.next, &args(&frame.if_params));
            next_reached = true;
        }
        if let Some(header) = frame.header {
            self.builder.seal_block(header);
        }
        if frame.kind == FrameKind::TryTable {
            self.fill_landings(frame.catches);
        }
        self.stack.truncate(frame.height);
        self.builder.switch_to_block(frame.next);
        self.builder.seal_block(frame.next);
        if next_reached {
            let params = self.builder.block_params(frame.next).to_vec();
            if frame.kind == FrameKind::Function {
                self.builder.ins().return_(&params);
                self.reachable = false;
            } else {
                self.stack.extend_from_slice(&params);
                self.reachable = true;
            }
        } else {
            self.reachable = false;
        }
    }
}
