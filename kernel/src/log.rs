//! The serial channels: program stdout (COM1, also stdin), stderr (COM2),
//! and the kernel log with status markers (COM3). See
//! `docs/guest-protocol.md`.

use core::fmt::{self, Write};

use basalt_drivers::SerialPort;
use basalt_drivers::uart::{self, PortUart};
use spin::Mutex;

/// COM1: the program's stdout and stdin.
pub static STDOUT: Mutex<Option<PortUart>> = Mutex::new(None);
/// COM2: the program's stderr.
pub static STDERR: Mutex<Option<PortUart>> = Mutex::new(None);
/// COM3: the kernel log.
static KLOG: Mutex<Option<PortUart>> = Mutex::new(None);

/// Probes and initialises the three UARTs. Absent ones are skipped (their
/// output is dropped), e.g. COM2/COM3 on a microvm without extra
/// `isa-serial` devices.
pub fn init() {
    *STDOUT.lock() = PortUart::probe(uart::COM1);
    *STDERR.lock() = PortUart::probe(uart::COM2);
    *KLOG.lock() = PortUart::probe(uart::COM3);
}

/// Which channels answered the probe (stdout, stderr, log).
pub fn present() -> (bool, bool, bool) {
    (
        STDOUT.lock().is_some(),
        STDERR.lock().is_some(),
        KLOG.lock().is_some(),
    )
}

/// Writes program output to COM1.
pub fn write_stdout(bytes: &[u8]) {
    if let Some(p) = STDOUT.lock().as_mut() {
        p.write_bytes(bytes);
    }
}

/// Writes program error output to COM2.
pub fn write_stderr(bytes: &[u8]) {
    if let Some(p) = STDERR.lock().as_mut() {
        p.write_bytes(bytes);
    }
}

struct LogWriter<'a>(&'a mut PortUart);

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
        uart::emergency_write(uart::COM3, s.as_bytes());
        Ok(())
    }
}

/// Logs a formatted line on the kernel log channel (COM3).
#[macro_export]
macro_rules! kprintln {
    ($($arg:tt)*) => {
        $crate::log::log_line(format_args!($($arg)*))
    };
}
