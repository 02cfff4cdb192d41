//! The kernel's implementations of the service traits WASI is written
//! against: stdio over the serial channels, clocks over the cycle counter
//! and RTC, entropy from the kernel's ChaCha20 generator.

use alloc::boxed::Box;

use basalt_wasi::{Clocks, Entropy, Services, Stdio, StdioError};

/// Stdio over COM1 (stdout, framed stdin) and COM2 (stderr).
pub struct SerialStdio {
    stdin: spin::Mutex<StdinState>,
}

#[derive(Default)]
struct StdinState {
    /// an escape byte (0xff) was read, its partner not yet
    escape: bool,
    eof: bool,
}

/// How long stdin polling spins after the last byte before it naps.
const IDLE_AFTER_NS: u64 = 20_000_000;

/// The stdin escape byte (see `docs/guest-protocol.md`).
const ESCAPE: u8 = crate::log::ESCAPE;

impl StdinState {
    /// Decodes one raw byte; `Some(Some(b))` data, `Some(None)` EOF,
    /// `None` nothing yet.
    fn decode(&mut self, raw: u8) -> Option<Option<u8>> {
        if !crate::log::stdin_is_framed() {
            // A person at a plain console: Ctrl-D ends the input.
            if raw == 0x04 {
                self.eof = true;
                return Some(None);
            }
            return Some(Some(raw));
        }
        if self.escape {
            self.escape = false;
            return match raw {
                0x00 => Some(Some(ESCAPE)),
                0x01 => {
                    self.eof = true;
                    Some(None)
                }
                // Not a valid sequence: treat the pair as data.
                other => Some(Some(other)),
            };
        }
        if raw == ESCAPE {
            self.escape = true;
            return None;
        }
        Some(Some(raw))
    }
}

impl SerialStdio {
    /// Stdio on the standard channels.
    pub fn new() -> SerialStdio {
        SerialStdio {
            stdin: spin::Mutex::new(StdinState::default()),
        }
    }
}

impl Default for SerialStdio {
    fn default() -> Self {
        Self::new()
    }
}

fn try_read_raw() -> Option<u8> {
    use basalt_drivers::SerialPort;
    crate::log::STDOUT.lock().as_mut()?.try_read_byte()
}

/// The serial console cannot fail: every call answers `Ok`.
impl Stdio for SerialStdio {
    fn write_stdout(&self, b: &[u8]) -> Result<(), StdioError> {
        crate::log::write_stdout(b);
        Ok(())
    }

    fn write_stderr(&self, b: &[u8]) -> Result<(), StdioError> {
        crate::log::write_stderr(b);
        Ok(())
    }

    fn read_stdin(&self, buf: &mut [u8]) -> Result<usize, StdioError> {
        Ok(self.read_serial(buf))
    }
}

impl SerialStdio {
    /// Reads stdin from the console into `buf`, blocking for the first
    /// byte; `0` at end of input.
    fn read_serial(&self, buf: &mut [u8]) -> usize {
        if buf.is_empty() {
            return 0;
        }
        let mut st = self.stdin.lock();
        if st.eof || !crate::log::present().0 {
            return 0;
        }
        let mut n = 0;
        let mut last_byte = crate::time::monotonic_ns();
        loop {
            let Some(raw) = try_read_raw() else {
                // Block for the first byte (and to complete an escape);
                // afterwards return what has arrived.
                if n > 0 && !st.escape {
                    return n;
                }
                // Poll hard while input flows (the UART holds one byte at a
                // time); after a quiet spell, nap 1 ms between polls so an
                // idle reader does not burn a host CPU.
                let now = crate::time::monotonic_ns();
                if now.saturating_sub(last_byte) < IDLE_AFTER_NS {
                    basalt_arch::cpu::spin_hint();
                } else {
                    crate::time::sleep_until(crate::deadline::cap(now + 1_000_000));
                }
                crate::deadline::stop_if_passed();
                continue;
            };
            last_byte = crate::time::monotonic_ns();
            match st.decode(raw) {
                Some(Some(b)) => {
                    buf[n] = b;
                    n += 1;
                    if n == buf.len() {
                        return n;
                    }
                }
                Some(None) => return n,
                None => {}
            }
        }
    }
}

/// Clocks over the kernel's time module; CPU time counts from their
/// creation (just before the program starts).
pub struct KernelClocks {
    busy_origin: u64,
}

impl Default for KernelClocks {
    /// Clocks whose CPU time starts now.
    fn default() -> KernelClocks {
        KernelClocks {
            busy_origin: crate::time::busy_ns(),
        }
    }
}

impl Clocks for KernelClocks {
    fn realtime_ns(&self) -> u64 {
        crate::time::realtime_ns()
    }

    fn monotonic_ns(&self) -> u64 {
        crate::time::monotonic_ns()
    }

    fn resolution_ns(&self) -> u64 {
        crate::time::resolution_ns()
    }

    fn sleep_until_monotonic_ns(&self, deadline: u64) {
        if crate::tasks::in_task() {
            // A request task sleeps while the server goes on.
            crate::tasks::park(crate::tasks::Wait {
                interests: alloc::vec::Vec::new(),
                deadline: Some(deadline),
            });
            return;
        }
        // A sleep past the program's deadline ends the run there.
        crate::time::sleep_until(crate::deadline::cap(deadline));
        crate::deadline::stop_if_passed();
    }

    fn cpu_time_ns(&self) -> Option<u64> {
        Some(crate::time::busy_ns().saturating_sub(self.busy_origin))
    }
}

/// Entropy from the kernel's CSPRNG.
pub struct KernelEntropy;

impl Entropy for KernelEntropy {
    fn fill(&self, buf: &mut [u8]) {
        crate::entropy::fill(buf);
    }
}

/// The kernel's services, boxed for WASI.
pub fn services() -> Services {
    Services {
        stdio: Box::new(SerialStdio::new()),
        clocks: Box::new(KernelClocks::default()),
        entropy: Box::new(KernelEntropy),
    }
}
