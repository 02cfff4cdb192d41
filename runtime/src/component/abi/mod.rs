//! The Canonical ABI (`CanonicalABI.md`, `definitions.py` of the
//! component-model repository): how component values are laid out in a
//! core instance's linear memory and flattened into core values, followed
//! exactly, traps included.
//!
//! [`layout`] computes alignments, sizes and flat types; [`lift`] reads
//! values out of core values and memory; [`lower`] writes them; [`strings`]
//! transcodes. All of it runs inside a [`Cx`]: the store, the canonical
//! options of one `canon lift` or `canon lower`, and the component
//! instance whose handle table resources come from and go to.

pub mod layout;
pub mod lift;
pub mod lower;
pub mod strings;

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::def::StringEncoding;
use super::handles::{BorrowScope, InstanceState};
use crate::error::Error;
use crate::types::Val;
use crate::vm::store::{Func, Memory, StoreMut};

/// The canonical options, resolved to the store's objects.
#[derive(Clone, Default)]
pub struct Options {
    /// how strings are encoded
    pub encoding: StringEncoding,
    /// the memory values live in
    pub memory: Option<Memory>,
    /// `(func (param old_ptr old_size align new_size) (result ptr))`
    pub realloc: Option<Func>,
    /// called with the core results after they were lifted
    pub post_return: Option<Func>,
}

/// A trap of the Canonical ABI, with the message wasmtime gives for it.
pub fn trap(message: &str) -> Error {
    Error::host_trap(message)
}

/// One lifting or lowering: the store, the options, and the instance.
pub struct Cx<'a, T> {
    /// the store
    pub store: &'a mut dyn StoreMut<T>,
    /// the canonical options
    pub opts: &'a Options,
    /// the component instance whose handle table is used
    pub inst: &'a Arc<InstanceState>,
    /// a lifted call's borrow scope: borrows lowered into the callee are
    /// counted here and must be dropped before it returns
    pub scope: Option<&'a Arc<BorrowScope>>,
    /// handles of `inst` lent for a lowered call (`lift_borrow`): released
    /// when the call returns
    pub lenders: Vec<u32>,
    /// values cross between two components (a fused adapter) rather than
    /// between a component and the host: only the wording of traps differs
    pub adapter: bool,
}

impl<T> Cx<'_, T> {
    /// The memory's bytes (after any `realloc`, which may grow it).
    pub fn memory(&mut self) -> Result<&mut [u8], Error> {
        let m = self
            .opts
            .memory
            .ok_or_else(|| trap("canonical option `memory` is required here"))?;
        Ok(m.data_mut(self.store))
    }

    /// `realloc(old, old_size, align, new_size)`, checked as the spec says
    /// the callers check it.
    pub fn realloc(
        &mut self,
        old: u32,
        old_size: u32,
        align: u32,
        new_size: u32,
    ) -> Result<u32, Error> {
        let f = self
            .opts
            .realloc
            .ok_or_else(|| trap("canonical option `realloc` is required here"))?;
        if !self.inst.may_leave() {
            return Err(trap("cannot leave component instance"));
        }
        self.inst.set_may_leave(false);
        let mut out = [Val::I32(0)];
        let r = self.store.call(
            f,
            &[
                Val::I32(old as i32),
                Val::I32(old_size as i32),
                Val::I32(align as i32),
                Val::I32(new_size as i32),
            ],
            &mut out,
        );
        self.inst.set_may_leave(true);
        r?;
        match out[0] {
            Val::I32(p) => Ok(p as u32),
            _ => Err(trap("realloc returned a value of the wrong type")),
        }
    }

    /// `realloc(0, 0, align, size)` for a list or a string, with the
    /// checks callers make of the result: aligned, and `size` bytes inside
    /// memory.
    pub fn allocate(&mut self, align: u32, size: u32, what: Content) -> Result<u32, Error> {
        let p = self.realloc(0, 0, align, size)?;
        self.check_allocation(p, align, size, what)?;
        Ok(p)
    }

    /// The checks on what `realloc` returned for a list or a string.
    pub fn check_allocation(
        &mut self,
        p: u32,
        align: u32,
        size: u32,
        what: Content,
    ) -> Result<(), Error> {
        if !p.is_multiple_of(align) {
            return Err(trap(if self.adapter {
                "unaligned pointer"
            } else {
                "realloc return: result not aligned"
            }));
        }
        let len = self.memory()?.len() as u64;
        if u64::from(p) + u64::from(size) > len {
            return Err(trap(match (self.adapter, what) {
                (false, _) => "realloc return: beyond end of memory",
                (true, Content::List) => "list content out-of-bounds",
                (true, Content::String) => "string content out-of-bounds",
            }));
        }
        Ok(())
    }
}

/// What an allocation holds (the traps name it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    /// a list's elements (or spilled values)
    List,
    /// a string's code units
    String,
}
