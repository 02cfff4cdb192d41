//! What WASI needs of the machine, as traits.
//!
//! The kernel implements these over its drivers (serial ports, TSC, RTC,
//! RDRAND); the hosted backend ([`crate::host`]) over the host OS. WASI never
//! sees a device: only these calls.

use alloc::boxed::Box;

/// The program's three standard streams.
pub trait Stdio: Send + Sync {
    /// Writes all of `bytes` to standard output.
    fn write_stdout(&self, bytes: &[u8]);
    /// Writes all of `bytes` to standard error.
    fn write_stderr(&self, bytes: &[u8]);
    /// Reads standard input into `buf`, blocking until at least one byte is
    /// available; returns `0` at end of file.
    fn read_stdin(&self, buf: &mut [u8]) -> usize;
}

/// Time.
pub trait Clocks: Send + Sync {
    /// Wall-clock time: nanoseconds since 1970-01-01T00:00:00Z.
    fn realtime_ns(&self) -> u64;
    /// A clock that never goes backwards, in nanoseconds from an arbitrary
    /// origin (boot).
    fn monotonic_ns(&self) -> u64;
    /// The resolution of both clocks, in nanoseconds (at least 1).
    fn resolution_ns(&self) -> u64;
    /// Blocks until [`Clocks::monotonic_ns`] reaches `deadline`.
    fn sleep_until_monotonic_ns(&self, deadline: u64);
}

/// Cryptographically secure random bytes.
pub trait Entropy: Send + Sync {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);
}

/// The services one WASI program runs on.
pub struct Services {
    /// standard streams
    pub stdio: Box<dyn Stdio>,
    /// clocks and sleeping
    pub clocks: Box<dyn Clocks>,
    /// random bytes
    pub entropy: Box<dyn Entropy>,
}
