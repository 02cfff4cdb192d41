//! Component instance state: the handle table, the `may_enter` and
//! `may_leave` flags, and borrow scopes (`definitions.py`: `Table`,
//! `ResourceHandle`, `ComponentInstance`).

use alloc::format;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use spin::Mutex;

use super::abi::trap;
use super::types::ResourceType;
use crate::error::Error;

/// The most handles one instance may hold at once. The spec allows
/// 2^28 - 1; a table that large would take gigabytes of host memory, so
/// Basalt stops at 2^20 (a trap, like the spec's limit).
pub const MAX_HANDLES: usize = 1 << 20;

/// Counts the borrowed handles a lifted call received: all must be
/// dropped before it returns.
#[derive(Default, Debug)]
pub struct BorrowScope {
    borrows: AtomicU32,
}

impl BorrowScope {
    /// One more borrowed handle.
    pub fn borrowed(&self) {
        self.borrows.fetch_add(1, Ordering::Relaxed);
    }
    /// One borrowed handle dropped.
    pub fn returned(&self) {
        self.borrows.fetch_sub(1, Ordering::Relaxed);
    }
    /// How many are still held.
    pub fn outstanding(&self) -> u32 {
        self.borrows.load(Ordering::Relaxed)
    }
}

/// One entry of a handle table (`ResourceHandle`).
pub struct Handle {
    /// the resource type
    pub ty: ResourceType,
    /// the implementer's representation
    pub rep: u32,
    /// owned (else borrowed)
    pub own: bool,
    /// a borrow's scope
    pub scope: Option<Arc<BorrowScope>>,
    /// how many calls it is lent to
    pub lends: u32,
}

/// A component instance's handle table: index 0 is never valid; freed
/// indices are reused last-freed first.
#[derive(Default)]
pub struct HandleTable {
    slots: Vec<Option<Handle>>,
    free: Vec<u32>,
}

fn unknown(i: u32) -> Error {
    trap(&format!("unknown handle index {i}"))
}

impl HandleTable {
    /// Handle `i`.
    pub fn get_mut(&mut self, i: u32) -> Result<&mut Handle, Error> {
        self.slots
            .get_mut(i as usize)
            .and_then(Option::as_mut)
            .ok_or_else(|| unknown(i))
    }

    /// Takes handle `i` out.
    pub fn remove(&mut self, i: u32) -> Result<Handle, Error> {
        let h = self
            .slots
            .get_mut(i as usize)
            .and_then(Option::take)
            .ok_or_else(|| unknown(i))?;
        self.free.push(i);
        Ok(h)
    }

    /// Adds `h`; its index.
    pub fn add(&mut self, h: Handle) -> Result<u32, Error> {
        if self.slots.is_empty() {
            self.slots.push(None);
        }
        if let Some(i) = self.free.pop() {
            self.slots[i as usize] = Some(h);
            return Ok(i);
        }
        if self.slots.len() >= MAX_HANDLES {
            return Err(trap("too many handles in one component instance"));
        }
        self.slots.push(Some(h));
        Ok((self.slots.len() - 1) as u32)
    }

    /// How many handles are live.
    pub fn live(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }
}

/// The run-time state of one component instance.
pub struct InstanceState {
    /// the enclosing instance (a nested component's parent)
    pub parent: Option<Arc<InstanceState>>,
    /// the handle table
    pub handles: Mutex<HandleTable>,
    may_enter: AtomicBool,
    may_leave: AtomicBool,
    /// the storage of each task running in the instance (`context.get`,
    /// `context.set`), innermost last
    tasks: Mutex<Vec<[u32; 2]>>,
    /// the backpressure counter (`backpressure.inc`, `backpressure.dec`)
    backpressure: AtomicU32,
}

impl InstanceState {
    /// A fresh instance inside `parent`.
    pub fn new(parent: Option<Arc<InstanceState>>) -> Arc<InstanceState> {
        Arc::new(InstanceState {
            parent,
            handles: Mutex::new(HandleTable::default()),
            may_enter: AtomicBool::new(true),
            may_leave: AtomicBool::new(true),
            tasks: Mutex::new(Vec::new()),
            backpressure: AtomicU32::new(0),
        })
    }

    /// Whether core code of this instance may call out (not inside
    /// `realloc` or `post-return`).
    pub fn may_leave(&self) -> bool {
        self.may_leave.load(Ordering::Relaxed)
    }

    /// Sets [`InstanceState::may_leave`].
    pub fn set_may_leave(&self, v: bool) {
        self.may_leave.store(v, Ordering::Relaxed);
    }

    fn ancestors(self: &Arc<Self>) -> Vec<Arc<InstanceState>> {
        let mut v = alloc::vec![self.clone()];
        let mut p = self.parent.clone();
        while let Some(i) = p {
            p = i.parent.clone();
            v.push(i);
        }
        v
    }

    /// The instances a call from `caller` enters: this one and its
    /// ancestors, less the caller's own.
    fn entering(self: &Arc<Self>, caller: Option<&Arc<InstanceState>>) -> Vec<Arc<InstanceState>> {
        let mine = self.ancestors();
        match caller {
            None => mine,
            Some(c) => {
                let theirs = c.ancestors();
                mine.into_iter()
                    .filter(|i| !theirs.iter().any(|t| Arc::ptr_eq(i, t)))
                    .collect()
            }
        }
    }

    /// Enters from `caller`, or traps when the instance is already on the
    /// stack (a component may not be re-entered); returns what to leave.
    pub fn enter_from(
        self: &Arc<Self>,
        caller: Option<&Arc<InstanceState>>,
    ) -> Result<Vec<Arc<InstanceState>>, Error> {
        let set = self.entering(caller);
        if set.iter().any(|i| !i.may_enter.load(Ordering::Relaxed)) {
            return Err(trap("cannot enter component instance"));
        }
        for i in &set {
            i.may_enter.store(false, Ordering::Relaxed);
        }
        Ok(set)
    }

    /// A task (a lifted call) starts in this instance, with zeroed storage.
    pub fn start_task(&self) {
        self.tasks.lock().push([0; 2]);
    }

    /// The innermost task ended.
    pub fn end_task(&self) {
        self.tasks.lock().pop();
    }

    /// `context.get`: slot `slot` of the current task's storage.
    pub fn context_get(&self, slot: u32) -> Result<u32, Error> {
        let tasks = self.tasks.lock();
        let t = tasks
            .last()
            .ok_or_else(|| trap("context.get outside a task"))?;
        t.get(slot as usize)
            .copied()
            .ok_or_else(|| trap("context slot out of range"))
    }

    /// `context.set`.
    pub fn context_set(&self, slot: u32, v: u32) -> Result<(), Error> {
        let mut tasks = self.tasks.lock();
        let t = tasks
            .last_mut()
            .ok_or_else(|| trap("context.set outside a task"))?;
        *t.get_mut(slot as usize)
            .ok_or_else(|| trap("context slot out of range"))? = v;
        Ok(())
    }

    /// `backpressure.inc` (+1) or `backpressure.dec` (-1). The counter
    /// only matters to async callers, which Basalt does not have yet.
    pub fn backpressure(&self, up: bool) -> Result<(), Error> {
        let n = self.backpressure.load(Ordering::Relaxed);
        let m = if up {
            n.checked_add(1).filter(|m| *m < 1 << 16)
        } else {
            n.checked_sub(1)
        };
        let m = m.ok_or_else(|| trap("backpressure counter out of range"))?;
        self.backpressure.store(m, Ordering::Relaxed);
        Ok(())
    }

    /// Leaves what [`InstanceState::enter_from`] entered.
    pub fn leave(set: &[Arc<InstanceState>]) {
        for i in set {
            i.may_enter.store(true, Ordering::Relaxed);
        }
    }
}
