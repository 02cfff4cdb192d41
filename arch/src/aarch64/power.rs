//! Leaving the machine: PSCI `SYSTEM_OFF` (through HVC or SMC, as the
//! device tree says) and Arm semihosting, which QEMU offers with
//! `-semihosting-config enable=on` for a console and an exit with a status.
//!
//! Semihosting calls trap (`hlt #0xf000`). Without semihosting the
//! instruction is undefined: the exception handler then skips it and the
//! call reports [`SemihostingError::Absent`], so probing is safe anywhere.

use core::sync::atomic::{AtomicU8, Ordering};

/// How PSCI calls reach the firmware or hypervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsciConduit {
    /// `hvc #0` (a hypervisor implements PSCI, as QEMU `virt` without EL2)
    Hvc,
    /// `smc #0` (secure firmware implements PSCI)
    Smc,
}

/// Why the machine is still running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerOffError {
    /// PSCI answered with this (negative) status
    Psci(i64),
    /// the call returned without turning the machine off
    StillRunning,
}

impl core::fmt::Display for PowerOffError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PowerOffError::Psci(s) => write!(f, "PSCI SYSTEM_OFF failed with status {s}"),
            PowerOffError::StillRunning => f.write_str("the machine is still running"),
        }
    }
}

const PSCI_SYSTEM_OFF: u64 = 0x8400_0008;

/// Asks PSCI to turn the machine off. Returns only if it did not.
pub fn psci_system_off(conduit: PsciConduit) -> PowerOffError {
    let mut x0 = PSCI_SYSTEM_OFF;
    match conduit {
        // SAFETY: an SMCCC call; SYSTEM_OFF takes no arguments and, when it
        // returns, clobbers at most x0-x17 (declared).
        PsciConduit::Hvc => unsafe {
            core::arch::asm!("hvc #0", inout("x0") x0, out("x1") _, out("x2") _, out("x3") _,
                out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _,
                out("x10") _, out("x11") _, out("x12") _, out("x13") _, out("x14") _,
                out("x15") _, out("x16") _, out("x17") _, options(nostack))
        },
        // SAFETY: as above.
        PsciConduit::Smc => unsafe {
            core::arch::asm!("smc #0", inout("x0") x0, out("x1") _, out("x2") _, out("x3") _,
                out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _,
                out("x10") _, out("x11") _, out("x12") _, out("x13") _, out("x14") _,
                out("x15") _, out("x16") _, out("x17") _, options(nostack))
        },
    }
    if (x0 as i64) < 0 {
        PowerOffError::Psci(x0 as i64)
    } else {
        PowerOffError::StillRunning
    }
}

core::arch::global_asm!(
    ".pushsection .text.basalt_semihosting, \"ax\"",
    ".globl basalt_semihosting_call",
    ".p2align 2",
    "basalt_semihosting_call:",
    ".globl basalt_semihosting_hlt",
    "basalt_semihosting_hlt:",
    "hlt #0xf000",
    "ret",
    ".popsection",
);

unsafe extern "C" {
    fn basalt_semihosting_call(op: u64, param: u64) -> u64;
    static basalt_semihosting_hlt: u8;
}

/// The value the exception handler returns from a skipped call.
const ABSENT: u64 = 0xdead_5e41_0000_0001;

/// 0: not probed, 1: present, 2: absent.
static STATE: AtomicU8 = AtomicU8::new(0);

/// Called by the exception handler for an undefined instruction: when it
/// is the semihosting trap, skips it with [`ABSENT`] in x0.
pub(super) fn skip_absent_semihosting(regs: &mut super::traps::Registers) -> bool {
    if regs.elr != (&raw const basalt_semihosting_hlt) as u64 {
        return false;
    }
    regs.x[0] = ABSENT;
    regs.elr += 4;
    true
}

/// Why a semihosting call did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SemihostingError {
    /// the host does not offer semihosting
    Absent,
}

fn call(op: u64, param: u64) -> Result<u64, SemihostingError> {
    if STATE.load(Ordering::Relaxed) == 2 {
        return Err(SemihostingError::Absent);
    }
    // SAFETY: the semihosting trap reads only the parameter block `param`
    // points to (callers pass a live one); without semihosting the
    // exception handler skips it.
    let r = unsafe { basalt_semihosting_call(op, param) };
    if r == ABSENT {
        STATE.store(2, Ordering::Relaxed);
        return Err(SemihostingError::Absent);
    }
    STATE.store(1, Ordering::Relaxed);
    Ok(r)
}

/// Whether the host offers semihosting (probes once with `SYS_ERRNO`).
pub fn semihosting_present() -> bool {
    match STATE.load(Ordering::Relaxed) {
        0 => call(0x13, 0).is_ok(),
        s => s == 1,
    }
}

/// Writes `bytes` to the semihosting console (`SYS_WRITE0`); NUL bytes
/// are dropped, as the call takes NUL-terminated strings.
pub fn semihosting_write(bytes: &[u8]) -> Result<(), SemihostingError> {
    let mut buf = [0u8; 256];
    let mut n = 0;
    for &b in bytes {
        if b == 0 {
            continue;
        }
        buf[n] = b;
        n += 1;
        if n == buf.len() - 1 {
            buf[n] = 0;
            call(0x04, buf.as_ptr() as u64)?;
            n = 0;
        }
    }
    if n > 0 {
        buf[n] = 0;
        call(0x04, buf.as_ptr() as u64)?;
    }
    Ok(())
}

/// Ends the VM with `status` as QEMU's exit status (`SYS_EXIT_EXTENDED`,
/// reason `ADP_Stopped_ApplicationExit`). Returns only without
/// semihosting.
pub fn semihosting_exit(status: u32) -> SemihostingError {
    let block = [0x2_0026u64, u64::from(status)];
    match call(0x20, block.as_ptr() as u64) {
        Err(e) => e,
        Ok(_) => SemihostingError::Absent,
    }
}
