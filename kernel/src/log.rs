//! The channels: program stdout (also stdin), stderr, and the kernel log
//! with status markers — COM1, COM2, COM3 on a PC; on QEMU `virt` the two
//! PL011 UARTs and the semihosting console. See `docs/guest-protocol.md`.

use core::fmt::{self, Write};

use basalt_drivers::SerialPort;
use spin::Mutex;

use crate::platform::{self, Console, LogChannel};

/// The program's stdout and stdin.
pub static STDOUT: Mutex<Option<Console>> = Mutex::new(None);
/// The program's stderr.
pub static STDERR: Mutex<Option<Console>> = Mutex::new(None);
/// The kernel log.
static KLOG: Mutex<Option<LogChannel>> = Mutex::new(None);

/// Probes and initialises the three channels. Absent ones are skipped
/// (their output is dropped), e.g. COM2/COM3 on a microvm without extra
/// `isa-serial` devices.
pub fn init() {
    let [out, err] = platform::consoles();
    *STDOUT.lock() = out;
    *STDERR.lock() = err;
    *KLOG.lock() = platform::log_channel();
}

/// Which channels answered the probe (stdout, stderr, log).
pub fn present() -> (bool, bool, bool) {
    (
        STDOUT.lock().is_some(),
        STDERR.lock().is_some(),
        KLOG.lock().is_some(),
    )
}

/// Writes program output to the stdout channel.
pub fn write_stdout(bytes: &[u8]) {
    if let Some(p) = STDOUT.lock().as_mut() {
        p.write_bytes(bytes);
    }
}

/// Writes program error output to the stderr channel.
pub fn write_stderr(bytes: &[u8]) {
    if let Some(p) = STDERR.lock().as_mut() {
        p.write_bytes(bytes);
    }
}

struct LogWriter<'a>(&'a mut LogChannel);

impl Write for LogWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.write_bytes(s.as_bytes());
        Ok(())
    }
}

/// Writes one formatted line to the kernel log.
pub fn log_line(args: fmt::Arguments<'_>) {
    if let Some(p) = KLOG.lock().as_mut() {
        let mut w = LogWriter(p);
        let _ = w.write_fmt(args);
        let _ = w.write_str("\n");
    }
}

/// A lock-free writer to the kernel log for fault and panic reports: the
/// interrupted code may hold the log's lock.
pub struct EmergencyLog;

impl Write for EmergencyLog {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        platform::emergency_log_write(s.as_bytes());
        Ok(())
    }
}

/// Logs a formatted line on the kernel log channel.
#[macro_export]
macro_rules! kprintln {
    ($($arg:tt)*) => {
        $crate::log::log_line(format_args!($($arg)*))
    };
}
