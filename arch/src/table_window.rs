//! Windows for page-table stores, the same on every ISA.
//!
//! Once the kernel's tables are protected (read-only in the identity map,
//! from the end of `paging::finish_boot_tables` on), the page-table code
//! stores into them only while a [`TableWindow`] is open. Windows nest
//! (one CPU); the outermost one switches the ISA's protection off on
//! opening and on again on closing, with interrupts masked in between
//! (`paging::window_open` and `paging::window_close`: CR0.WP on x86-64,
//! walks through the writer map on AArch64). Every function of `paging`
//! that changes tables opens one; callers that change many pages open one
//! around the loop, so the switch (which flushes the TLB) happens once.
//! Before the tables are protected a window does nothing.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::imp::paging;

/// Whether page-table frames are read-only in the identity map.
static TABLES_PROTECTED: AtomicBool = AtomicBool::new(false);

/// How many windows are open.
static WINDOW_DEPTH: AtomicU32 = AtomicU32::new(0);

/// What `paging::window_open` saved (the interrupt mask) for the close.
static WINDOW_SAVED: AtomicU64 = AtomicU64::new(0);

/// An open window for page-table stores (see the module's documentation).
pub struct TableWindow {
    /// a window belongs to the CPU that opened it
    _not_send: core::marker::PhantomData<*const ()>,
}

impl TableWindow {
    /// Opens a window (or nests in the open one).
    pub fn open() -> TableWindow {
        if tables_protected() && WINDOW_DEPTH.load(Ordering::Relaxed) == 0 {
            // SAFETY: protection comes back when the outermost window
            // closes (drop), with the state saved here.
            let saved = unsafe { paging::window_open() };
            WINDOW_SAVED.store(saved, Ordering::Relaxed);
        }
        WINDOW_DEPTH.fetch_add(1, Ordering::Relaxed);
        TableWindow {
            _not_send: core::marker::PhantomData,
        }
    }
}

impl Drop for TableWindow {
    fn drop(&mut self) {
        if WINDOW_DEPTH.fetch_sub(1, Ordering::Relaxed) == 1 && tables_protected() {
            // SAFETY: closes the window `open` opened, with its state.
            unsafe { paging::window_close(WINDOW_SAVED.load(Ordering::Relaxed)) };
        }
    }
}

/// Whether the tables are protected (stores need a window).
pub(crate) fn tables_protected() -> bool {
    TABLES_PROTECTED.load(Ordering::Relaxed)
}

/// Whether a window is open over protected tables (for an ISA that
/// reaches tables through another map inside windows).
#[allow(dead_code, reason = "only the ISAs with a writer map ask")]
pub(crate) fn window_is_open() -> bool {
    tables_protected() && WINDOW_DEPTH.load(Ordering::Relaxed) > 0
}

/// From now on the tables are protected. Called once, by
/// `paging::finish_boot_tables`, with no window open.
pub(crate) fn protect_tables() {
    TABLES_PROTECTED.store(true, Ordering::Relaxed);
}
