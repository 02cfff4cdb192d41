//! The hosted backend: WASI services on the host OS, for
//! `basalt run --hosted` and tests.

use alloc::boxed::Box;
use std::io::{Read, Write};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::services::{Clocks, Entropy, Services, Stdio};

/// The process's own standard streams.
pub struct HostStdio;

impl Stdio for HostStdio {
    fn write_stdout(&self, bytes: &[u8]) {
        let mut out = std::io::stdout().lock();
        // A closed stdout (EPIPE) drops the data, as a write to a closed pipe would.
        let _ = out.write_all(bytes).and_then(|()| out.flush());
    }
    fn write_stderr(&self, bytes: &[u8]) {
        let _ = std::io::stderr().lock().write_all(bytes);
    }
    fn read_stdin(&self, buf: &mut [u8]) -> usize {
        std::io::stdin().lock().read(buf).unwrap_or(0)
    }
}

/// `SystemTime` and `Instant`.
pub struct HostClocks {
    origin: Instant,
}

impl Default for HostClocks {
    fn default() -> Self {
        HostClocks {
            origin: Instant::now(),
        }
    }
}

impl Clocks for HostClocks {
    fn realtime_ns(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    }
    fn monotonic_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }
    fn resolution_ns(&self) -> u64 {
        1
    }
    fn sleep_until_monotonic_ns(&self, deadline: u64) {
        let now = self.monotonic_ns();
        if deadline > now {
            std::thread::sleep(std::time::Duration::from_nanos(deadline - now));
        }
    }
}

/// The kernel's random source (`getrandom(2)`).
pub struct HostEntropy;

impl Entropy for HostEntropy {
    fn fill(&self, buf: &mut [u8]) {
        let mut done = 0;
        while done < buf.len() {
            let rest = &mut buf[done..];
            // getrandom(2) through libc's safe-to-call wrapper in std: read /dev/urandom.
            match std::fs::File::open("/dev/urandom").and_then(|mut f| f.read(rest)) {
                Ok(n) if n > 0 => done += n,
                _ => panic!("the host has no working /dev/urandom"),
            }
        }
    }
}

/// All three host services.
pub fn services() -> Services {
    Services {
        stdio: Box::new(HostStdio),
        clocks: Box::new(HostClocks::default()),
        entropy: Box::new(HostEntropy),
    }
}
