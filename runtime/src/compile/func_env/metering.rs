//! What compiled code does besides the program: interrupt checks
//! (`Config::interruptible`) and fuel metering (`Config::consume_fuel`).
//!
//! Fuel is counted while translating: every reachable operator adds its
//! cost to `unspent_fuel`, and before every operator that leaves or joins
//! straight-line code (branches, calls, `if`, `else`, `end`, `loop`, …)
//! the count is subtracted from the store's fuel in one load, subtraction
//! and store. Function entries and loop headers then trap once the
//! store's fuel is negative. Code between two such points cannot loop, so
//! a program stops within one straight-line run of spending the last unit;
//! the count is the same on every machine (deterministic).

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    AbiParam, ExtFuncData, ExternalName, InstBuilder, Signature, UserExternalName, types,
};
use cranelift_codegen::isa::CallConv;
use cranelift_frontend::FunctionBuilder;
use wasmparser::Operator;

use super::{FuncEnv, NS_INTERRUPT_TRAMPOLINE, trusted};
use crate::trap::codes;
use crate::vm::offsets::{self, VMOffsets};

/// The fuel an operator costs: none for those that only structure code
/// or end it, one for every other (wasmtime's count).
fn fuel_cost(op: &Operator<'_>) -> i64 {
    match op {
        Operator::Nop
        | Operator::Drop
        | Operator::Block { .. }
        | Operator::Loop { .. }
        | Operator::Unreachable
        | Operator::Return
        | Operator::Else
        | Operator::End => 0,
        _ => 1,
    }
}

/// Whether straight-line code ends or joins other code at `op`: the fuel
/// counted so far is subtracted before it.
fn ends_straight_line(op: &Operator<'_>) -> bool {
    matches!(
        op,
        Operator::Loop { .. }
            | Operator::If { .. }
            | Operator::Else
            | Operator::End
            | Operator::Br { .. }
            | Operator::BrIf { .. }
            | Operator::BrTable { .. }
            | Operator::BrOnNull { .. }
            | Operator::BrOnNonNull { .. }
            | Operator::BrOnCast { .. }
            | Operator::BrOnCastFail { .. }
            | Operator::Return
            | Operator::Unreachable
            | Operator::Call { .. }
            | Operator::CallIndirect { .. }
            | Operator::CallRef { .. }
            | Operator::ReturnCall { .. }
            | Operator::ReturnCallIndirect { .. }
            | Operator::ReturnCallRef { .. }
            | Operator::Throw { .. }
            | Operator::ThrowRef
            | Operator::TryTable { .. }
            | Operator::Try { .. }
            | Operator::Catch { .. }
            | Operator::CatchAll
            | Operator::Delegate { .. }
            | Operator::Rethrow { .. }
    )
}

impl FuncEnv<'_> {
    /// Counts `op`'s fuel and, where straight-line code ends, subtracts
    /// the count from the store's fuel.
    pub(super) fn meter_operator(&mut self, builder: &mut FunctionBuilder<'_>, op: &Operator<'_>) {
        if !self.consume_fuel {
            return;
        }
        self.unspent_fuel += fuel_cost(op);
        if ends_straight_line(op) {
            self.spend_fuel(builder);
        }
    }

    /// Subtracts the fuel counted since the last subtraction from the
    /// store's.
    fn spend_fuel(&mut self, builder: &mut FunctionBuilder<'_>) {
        let spent = core::mem::take(&mut self.unspent_fuel);
        if spent == 0 {
            return;
        }
        let vmctx = self.vmctx();
        let store = self.load_ptr(builder, vmctx, VMOffsets::STORE_CTX);
        let f = trusted(builder);
        let left = builder
            .ins()
            .load(types::I64, f, store, offsets::store_ctx::FUEL);
        let left = builder.ins().iadd_imm_s(left, -spent);
        builder
            .ins()
            .store(f, left, store, offsets::store_ctx::FUEL);
    }

    /// Traps with `OUT_OF_FUEL` when the store's fuel is negative (at
    /// function entries and loop headers).
    pub(super) fn fuel_check(&mut self, builder: &mut FunctionBuilder<'_>) {
        if !self.consume_fuel {
            return;
        }
        let vmctx = self.vmctx();
        let store = self.load_ptr(builder, vmctx, VMOffsets::STORE_CTX);
        let f = trusted(builder);
        let left = builder
            .ins()
            .load(types::I64, f, store, offsets::store_ctx::FUEL);
        let out = builder.ins().icmp_imm_s(IntCC::SignedLessThan, left, 0);
        builder.ins().trapnz(out, codes::OUT_OF_FUEL);
    }

    /// Looks at the store's interrupt request (see
    /// `VMStoreContext::interrupt_flag`) and, when it is raised, calls the
    /// module's interrupt trampoline (see `compile::interrupt_trampoline`),
    /// which calls the `interrupt` builtin: it lowers the request, asks the
    /// store's interrupt check and traps with `INTERRUPTED` when it says
    /// stop. On the common path one load and a branch: the two loads that
    /// find the request never change, so Cranelift hoists them out of
    /// loops. The trampoline preserves every register, so the rare call
    /// does not make the loop around it spill what lives in
    /// caller-saved registers.
    pub(super) fn interrupt_check(&self, builder: &mut FunctionBuilder<'_>) {
        if !self.interruptible {
            return;
        }
        let vmctx = self.vmctx();
        let store = self.load_ptr(builder, vmctx, VMOffsets::STORE_CTX);
        let request = self.load_ptr(builder, store, offsets::store_ctx::INTERRUPT_FLAG);
        let f = trusted(builder);
        let raised = builder.ins().load(types::I32, f, request, 0);
        let slow = builder.create_block();
        let go_on = builder.create_block();
        builder.set_cold_block(slow);
        builder.ins().brif(raised, slow, &[], go_on, &[]);
        builder.switch_to_block(slow);
        builder.seal_block(slow);
        let mut sig = Signature::new(CallConv::PreserveAll);
        sig.params.push(AbiParam::new(self.pointer));
        let sig_ref = builder.import_signature(sig);
        let name = builder
            .func
            .declare_imported_user_function(UserExternalName {
                namespace: NS_INTERRUPT_TRAMPOLINE,
                index: 0,
            });
        let trampoline = builder.import_function(ExtFuncData {
            name: ExternalName::user(name),
            signature: sig_ref,
            colocated: true,
            patchable: false,
        });
        builder.ins().call(trampoline, &[vmctx]);
        builder.ins().jump(go_on, &[]);
        builder.switch_to_block(go_on);
        builder.seal_block(go_on);
    }
}
