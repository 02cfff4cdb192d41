//! The channels: program stdout (also stdin), stderr, and the kernel log
//! with status markers. With separate channels (QEMU `-kernel`): COM1,
//! COM2, COM3 on a PC; on QEMU `virt` the two PL011 UARTs and the
//! semihosting console. With one console (firmware boot, see
//! `docs/guest-protocol.md`, "One console"), all three share the first
//! console, plain or framed.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use basalt_drivers::SerialPort;
use spin::Mutex;

use crate::platform::{self, Console, LogChannel};

/// The program's stdout and stdin.
pub static STDOUT: Mutex<Option<Console>> = Mutex::new(None);
/// The program's stderr.
pub static STDERR: Mutex<Option<Console>> = Mutex::new(None);
/// The kernel log.
static KLOG: Mutex<Option<LogChannel>> = Mutex::new(None);

/// How the channels reach the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ConsoleMode {
    /// one device per channel
    Separate = 0,
    /// one console, program output as is; kernel log lines only with
    /// `basalt.log=console` (prefixed `[basalt] `); status markers and
    /// fault reports always, on lines of their own
    Plain = 1,
    /// as [`ConsoleMode::Plain`], with every kernel log line shown
    PlainVerbose = 2,
    /// one console, every channel switch announced by `0xff` and the
    /// channel's number (`basalt.console=framed`, what the CLI asks for)
    Framed = 3,
}

static MODE: AtomicU8 = AtomicU8::new(ConsoleMode::Separate as u8);

/// The mode the channels run in.
pub fn mode() -> ConsoleMode {
    match MODE.load(Ordering::Relaxed) {
        1 => ConsoleMode::Plain,
        2 => ConsoleMode::PlainVerbose,
        3 => ConsoleMode::Framed,
        _ => ConsoleMode::Separate,
    }
}

/// A logical channel on a shared console; the numbers are the framing's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Channel {
    Stdout = 1,
    Stderr = 2,
    Log = 3,
}

/// The framing escape byte, in both directions.
pub const ESCAPE: u8 = 0xff;

/// The line the kernel writes when it takes over a shared console:
/// everything before it is the firmware's.
const START_LINE: &[u8] = b"\nBASALT-START\n";

/// Framed mode: the channel the wire is on now.
static WIRE: AtomicU8 = AtomicU8::new(Channel::Log as u8);
/// Plain modes: the last byte on the console ended a line.
static AT_LINE_START: AtomicBool = AtomicBool::new(true);
/// Plain modes: the kernel, not the program, wrote last.
static LAST_WAS_LOG: AtomicBool = AtomicBool::new(true);

/// Probes and initialises the channels. Absent ones are skipped (their
/// output is dropped), e.g. COM2 on a machine with COM1 and COM3 only.
/// Under firmware, or when the first console is the only channel, the
/// console is shared, and the kernel announces itself with the start line.
pub fn init(info: &basalt_arch::BootInfo) {
    let [out, err] = platform::consoles();
    let log = platform::log_channel();
    // A machine with one serial port and no log channel (Firecracker) is
    // a shared console too, whatever booted it.
    let single_port = out.is_some() && err.is_none() && log.is_none();
    if info.shared_console || single_port {
        let words = || info.cmdline.split(|b| b.is_ascii_whitespace());
        let mode = if words().any(|w| w == b"basalt.console=framed") {
            ConsoleMode::Framed
        } else if words().any(|w| w == b"basalt.log=console") {
            ConsoleMode::PlainVerbose
        } else {
            ConsoleMode::Plain
        };
        MODE.store(mode as u8, Ordering::Relaxed);
        let mut out = out;
        if let Some(port) = out.as_mut() {
            port.write_bytes(START_LINE);
        }
        *STDOUT.lock() = out;
        return;
    }
    *STDOUT.lock() = out;
    *STDERR.lock() = err;
    *KLOG.lock() = log;
}

/// Which channels have a device (stdout, stderr, log).
pub fn present() -> (bool, bool, bool) {
    let out = STDOUT.lock().is_some();
    if mode() != ConsoleMode::Separate {
        return (out, out, out);
    }
    (out, STDERR.lock().is_some(), KLOG.lock().is_some())
}

/// Writes `bytes` of `channel` to a shared console through `sink`:
/// framed, or plain with kernel text kept on lines of its own.
fn shared_write(channel: Channel, bytes: &[u8], sink: &mut dyn FnMut(&[u8])) {
    if bytes.is_empty() {
        return;
    }
    if mode() == ConsoleMode::Framed {
        if WIRE.swap(channel as u8, Ordering::Relaxed) != channel as u8 {
            sink(&[ESCAPE, channel as u8]);
        }
        for part in bytes.split_inclusive(|b| *b == ESCAPE) {
            match part.split_last() {
                Some((&ESCAPE, head)) => {
                    sink(head);
                    sink(&[ESCAPE, 0]);
                }
                _ => sink(part),
            }
        }
        return;
    }
    let is_log = channel == Channel::Log;
    // Kernel text starts on a line of its own: after program output that
    // ended mid-line, a newline comes first.
    if is_log && !AT_LINE_START.load(Ordering::Relaxed) && !LAST_WAS_LOG.load(Ordering::Relaxed) {
        sink(b"\n");
    }
    sink(bytes);
    AT_LINE_START.store(bytes.last() == Some(&b'\n'), Ordering::Relaxed);
    LAST_WAS_LOG.store(is_log, Ordering::Relaxed);
}

fn write_program(channel: Channel, bytes: &[u8]) {
    if mode() != ConsoleMode::Separate {
        if let Some(p) = STDOUT.lock().as_mut() {
            shared_write(channel, bytes, &mut |b| p.write_bytes(b));
        }
        return;
    }
    let port = if channel == Channel::Stdout {
        &STDOUT
    } else {
        &STDERR
    };
    if let Some(p) = port.lock().as_mut() {
        p.write_bytes(bytes);
    }
}

/// Writes program output to the stdout channel.
pub fn write_stdout(bytes: &[u8]) {
    write_program(Channel::Stdout, bytes);
}

/// Writes program error output to the stderr channel.
pub fn write_stderr(bytes: &[u8]) {
    write_program(Channel::Stderr, bytes);
}

/// Whether stdin arrives framed (`0xff` escapes, an end-of-file
/// sequence): always, but for a plain shared console, where a person
/// types and Ctrl-D (`0x04`) ends the input.
pub fn stdin_is_framed() -> bool {
    !matches!(mode(), ConsoleMode::Plain | ConsoleMode::PlainVerbose)
}

/// A line of log text, gathered before it is written in one piece.
struct LineBuffer {
    bytes: [u8; 512],
    len: usize,
}

impl Write for LineBuffer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.bytes.len() - self.len;
        let n = s.len().min(room);
        self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Writes one formatted line to the kernel log.
pub fn log_line(args: fmt::Arguments<'_>) {
    match mode() {
        ConsoleMode::Separate => {
            if let Some(p) = KLOG.lock().as_mut() {
                let mut w = LogWriter(p);
                let _ = w.write_fmt(args);
                let _ = w.write_str("\n");
            }
        }
        ConsoleMode::Plain => {}
        mode => {
            let mut line = LineBuffer {
                bytes: [0; 512],
                len: 0,
            };
            if mode == ConsoleMode::PlainVerbose {
                let _ = line.write_str("[basalt] ");
            }
            let _ = line.write_fmt(args);
            if line.len == line.bytes.len() {
                line.len -= 1;
            }
            line.bytes[line.len] = b'\n';
            let text = &line.bytes[..=line.len];
            if let Some(p) = STDOUT.lock().as_mut() {
                shared_write(Channel::Log, text, &mut |b| p.write_bytes(b));
            }
        }
    }
}

struct LogWriter<'a>(&'a mut LogChannel);

impl Write for LogWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.write_bytes(s.as_bytes());
        Ok(())
    }
}

/// A lock-free writer to the kernel log for fault and panic reports and
/// the status marker: the interrupted code may hold the log's lock. On a
/// shared console it writes in every mode (a report is never hidden).
pub struct EmergencyLog;

impl Write for EmergencyLog {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if mode() == ConsoleMode::Separate {
            platform::emergency_log_write(s.as_bytes());
        } else {
            shared_write(Channel::Log, s.as_bytes(), &mut |b| {
                platform::emergency_console_write(b)
            });
        }
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
