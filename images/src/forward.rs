//! A program's own listeners, reachable from the host: when the kernel
//! logs `BASALT-LISTEN tcp PORT` (a WASI 0.2 program listens on the
//! VM's loopback, see `docs/guest-protocol.md`), the CLI asks QEMU,
//! through its QMP socket, to forward the host's `127.0.0.1:PORT` to the
//! VM's `PORT`. A client on the host then reaches the address the program
//! printed, as under wasmtime.
//!
//! The forward must be in place before the program's output that follows
//! the listen reaches the user (a test runner connects as soon as it
//! reads the address). The kernel writes the log line before it returns
//! from the listen, and QEMU writes each channel's bytes to its socket
//! as the guest writes them, so when stdout has bytes written after the
//! line, the log socket already holds the line. [`relay`] therefore reads
//! the log and stdout in one thread and always empties the log first.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, poll};

use crate::vm::LogState;

/// The prefix of the kernel's log line for a listener to forward.
const LISTEN_LINE: &str = "BASALT-LISTEN tcp ";
/// How long QEMU may take to answer a monitor command.
const QMP_TIMEOUT: Duration = Duration::from_secs(10);
/// The most ports forwarded for one VM (the guest sizes this).
const MAX_FORWARDS: usize = 256;

/// A QMP connection to the VM's QEMU.
pub(crate) struct Qmp {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Qmp {
    /// Connects to QEMU's QMP socket at `path` and leaves the capability
    /// negotiation mode.
    pub(crate) fn connect(path: &Path) -> Result<Qmp, String> {
        let stream = UnixStream::connect(path).map_err(|e| format!("{}: {e}", path.display()))?;
        stream
            .set_read_timeout(Some(QMP_TIMEOUT))
            .map_err(|e| e.to_string())?;
        let writer = stream.try_clone().map_err(|e| e.to_string())?;
        let mut qmp = Qmp {
            writer,
            reader: BufReader::new(stream),
        };
        // The greeting, then the answer to qmp_capabilities.
        qmp.line()?;
        qmp.execute(r#"{"execute":"qmp_capabilities"}"#)?;
        Ok(qmp)
    }

    fn line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => Err("QEMU closed its monitor".into()),
            Ok(_) => Ok(line),
            Err(e) => Err(format!("reading QEMU's monitor: {e}")),
        }
    }

    /// Sends one command and returns its answer's line (events that
    /// arrive meanwhile are skipped).
    fn execute(&mut self, command: &str) -> Result<String, String> {
        self.writer
            .write_all(format!("{command}\n").as_bytes())
            .map_err(|e| format!("writing QEMU's monitor: {e}"))?;
        loop {
            let line = self.line()?;
            if line.contains("\"return\"") {
                return Ok(line);
            }
            if line.contains("\"error\"") {
                return Err(line.trim().to_string());
            }
        }
    }

    /// Forwards TCP from the host's `127.0.0.1:port` to the VM's `port`.
    pub(crate) fn forward(&mut self, port: u16) -> Result<(), String> {
        let answer = self.execute(&format!(
            r#"{{"execute":"human-monitor-command","arguments":{{"command-line":"hostfwd_add net0 tcp:127.0.0.1:{port}-:{port}"}}}}"#
        ))?;
        // The human monitor answers with its output: nothing on success.
        match answer.split("\"return\":").nth(1).map(str::trim) {
            Some(rest) if rest.starts_with("\"\"") => Ok(()),
            Some(rest) => Err(rest
                .trim_start_matches('"')
                .split("\\r\\n")
                .next()
                .unwrap_or(rest)
                .to_string()),
            None => Err(answer.trim().to_string()),
        }
    }
}

/// What forwards the VM's listeners: QEMU's monitor (connected on first
/// use) and the guest ports already forwarded.
pub(crate) struct Forwarder {
    qmp_path: std::path::PathBuf,
    qmp: Option<Qmp>,
    /// guest ports forwarded already (or by `-p`)
    done: Vec<u16>,
}

impl Forwarder {
    /// A forwarder for the QEMU whose QMP socket is `qmp_path`; `taken`:
    /// guest ports the user forwards already (`-p`).
    pub(crate) fn new(qmp_path: std::path::PathBuf, taken: Vec<u16>) -> Forwarder {
        Forwarder {
            qmp_path,
            qmp: None,
            done: taken,
        }
    }

    /// Acts on one kernel log line: forwards the port a
    /// `BASALT-LISTEN tcp PORT` line names (once per port), saying on
    /// stderr when it cannot.
    pub(crate) fn on_log_line(&mut self, line: &str) {
        let Some(port) = line
            .strip_prefix(LISTEN_LINE)
            .and_then(|p| p.trim().parse::<u16>().ok())
        else {
            return;
        };
        if self.done.contains(&port) {
            return;
        }
        if self.done.len() >= MAX_FORWARDS {
            if self.done.len() == MAX_FORWARDS {
                eprintln!(
                    "basalt: the program listens on more than {MAX_FORWARDS} ports in the VM; the rest are not forwarded from the host"
                );
                self.done.push(port);
            }
            return;
        }
        self.done.push(port);
        let result = match &mut self.qmp {
            Some(q) => q.forward(port),
            None => Qmp::connect(&self.qmp_path).and_then(|mut q| {
                let r = q.forward(port);
                self.qmp = Some(q);
                r
            }),
        };
        if let Err(why) = result {
            eprintln!(
                "basalt: the program listens on port {port} in the VM, but the host's 127.0.0.1:{port} cannot be forwarded to it: {why}"
            );
        }
    }
}

/// Relays the program's stdout (`com1`) to `stdout` and the kernel log
/// (`com3`) into `log`, forwarding listeners as the log names them,
/// until both channels end. The log is always emptied before stdout
/// bytes are passed on.
pub(crate) fn relay(
    com1: UnixStream,
    com3: UnixStream,
    stdout: &mut dyn Write,
    log: Arc<Mutex<LogState>>,
    mut forwarder: Forwarder,
    start: Instant,
    verbose: bool,
) {
    let mut com1 = Some(com1);
    let mut com3 = Some(com3);
    let mut partial: Vec<u8> = Vec::new();
    let mut buf = [0u8; 8192];
    let mut take_log = |com3: &mut Option<UnixStream>, partial: &mut Vec<u8>| {
        // Whatever the log socket holds now, without waiting.
        while let Some(s) = com3.as_mut() {
            if !readable(s) {
                break;
            }
            match s.read(&mut buf) {
                Ok(0) | Err(_) => {
                    *com3 = None;
                }
                Ok(n) => {
                    partial.extend_from_slice(&buf[..n]);
                    while let Some(i) = partial.iter().position(|&b| b == b'\n') {
                        let raw: Vec<u8> = partial.drain(..=i).collect();
                        let line = String::from_utf8_lossy(&raw)
                            .trim_end_matches(['\n', '\r'])
                            .to_string();
                        forwarder.on_log_line(&line);
                        let Ok(mut st) = log.lock() else { return };
                        st.push_line(line, start, verbose);
                    }
                }
            }
        }
    };
    let mut out = [0u8; 8192];
    while com1.is_some() || com3.is_some() {
        wait_readable(com1.as_ref(), com3.as_ref());
        take_log(&mut com3, &mut partial);
        let Some(s) = com1.as_mut() else { continue };
        if !readable(s) {
            continue;
        }
        match s.read(&mut out) {
            Ok(0) | Err(_) => com1 = None,
            Ok(n) => {
                // Bytes written after any log line already read: that
                // line's forward is in place.
                take_log(&mut com3, &mut partial);
                if stdout.write_all(&out[..n]).is_err() {
                    com1 = None;
                }
                let _ = stdout.flush();
            }
        }
    }
    if !partial.is_empty()
        && let Ok(mut st) = log.lock()
    {
        let line = String::from_utf8_lossy(&partial).to_string();
        st.push_line(line, start, verbose);
    }
}

/// Whether `s` has bytes (or its end) to read now.
fn readable(s: &UnixStream) -> bool {
    let mut fds = [PollFd::new(s, PollFlags::IN)];
    matches!(poll(&mut fds, Some(&rustix::time::Timespec::default())), Ok(n) if n > 0)
}

/// Waits until either stream has something to read (or ends).
fn wait_readable(a: Option<&UnixStream>, b: Option<&UnixStream>) {
    let mut fds: Vec<PollFd<'_>> = [a, b]
        .into_iter()
        .flatten()
        .map(|s| PollFd::from_borrowed_fd(s.as_fd(), PollFlags::IN))
        .collect();
    if fds.is_empty() {
        return;
    }
    let _ = poll(&mut fds, None);
}
