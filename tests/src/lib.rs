//! Shared helpers of the integration tests: build the examples once, boot
//! a module in QEMU with in-memory streams and a deadline, and report the
//! kernel log whenever an expectation fails.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use basalt::run::{RunOptions, run_vm};
use basalt::vm::{Status, VmIo, VmReport};

pub use basalt;

pub mod aarch64_host;
pub mod component_model;
pub mod confinement;
pub mod device_input;
pub mod differential;
pub mod firmware;
pub mod http;
pub mod mutate;
pub mod parsers;
pub mod spec;
pub mod wasi_suite;

/// How long any one boot test may take (TCG on a loaded 2-core machine).
pub const BOOT_DEADLINE: Duration = Duration::from_secs(240);

/// The built example programs' directory (built once per test process).
pub fn examples() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| match basalt::guest::examples() {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    })
}

/// The path of example `name`'s module.
pub fn example(name: &str) -> PathBuf {
    examples().join(format!("{name}.wasm"))
}

/// A writer whose bytes the test reads afterwards.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    /// Everything written so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().map(|b| b.clone()).unwrap_or_default()
    }
}

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What one VM run produced.
pub struct Outcome {
    /// the program's stdout
    pub stdout: Vec<u8>,
    /// the program's stderr
    pub stderr: Vec<u8>,
    /// the VM's report
    pub report: VmReport,
}

impl Outcome {
    /// stdout as text.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    /// stderr as text.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    /// Everything known about the run, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "status: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- kernel log ---\n{}",
            self.report.status,
            self.stdout_text(),
            self.stderr_text(),
            self.report.log_text()
        )
    }
    /// Asserts the program exited with `code`.
    #[track_caller]
    pub fn assert_exit(&self, code: i32) {
        assert_eq!(
            self.report.status,
            Status::Exit(code),
            "{}",
            self.describe()
        );
    }
}

/// Boots `opts` with `stdin` and the test deadline.
pub fn boot(mut opts: RunOptions, stdin: &[u8]) -> Outcome {
    opts.timeout = Some(BOOT_DEADLINE);
    let (out, err) = (Capture::default(), Capture::default());
    let io = VmIo {
        stdin: Some(Box::new(std::io::Cursor::new(stdin.to_vec()))),
        stdout: Box::new(out.clone()),
        stderr: Box::new(err.clone()),
    };
    let report = match run_vm(&opts, io) {
        Ok(r) => r,
        Err(e) => panic!(
            "running {} failed before the VM ended: {e}",
            opts.wasm.display()
        ),
    };
    Outcome {
        stdout: out.bytes(),
        stderr: err.bytes(),
        report,
    }
}

/// Boots example `name` with `args`.
pub fn boot_example(name: &str, args: &[&str]) -> Outcome {
    let mut opts = RunOptions::new(example(name));
    opts.args = args.iter().map(|a| a.as_bytes().to_vec()).collect();
    boot(opts, b"")
}

/// Writes the binary of WebAssembly text `wat` to a fresh file and returns it.
pub fn wat_file(name: &str, wat: &str) -> PathBuf {
    let wasm = match wat::parse_str(wat) {
        Ok(w) => w,
        Err(e) => panic!("test module {name}: {e}"),
    };
    write_temp(&format!("{name}.wasm"), &wasm)
}

/// Writes `bytes` to a file of the test process's scratch directory.
pub fn write_temp(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("basalt-tests-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        panic!("{}: {e}", dir.display());
    }
    let path = dir.join(name);
    if let Err(e) = std::fs::write(&path, bytes) {
        panic!("{}: {e}", path.display());
    }
    path
}

/// Runs the example `name` compiled natively for the host, for comparison.
pub fn native_example_output(name: &str, args: &[&str]) -> Vec<u8> {
    let root = basalt::guest::source_root();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = std::process::Command::new(cargo)
        .current_dir(root.join("examples"))
        .env_remove("CARGO_TARGET_DIR")
        .args(["run", "--quiet", "--release", "-p", name, "--target-dir"])
        .arg(root.join("target").join("examples"))
        .arg("--")
        .args(args)
        .output();
    match out {
        Ok(o) if o.status.success() => o.stdout,
        Ok(o) => panic!(
            "native {name} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("cannot run cargo: {e}"),
    }
}

/// Defines, for each named function `fn NAME(arch: GuestArch)`, the tests
/// `x86_64::NAME` and `aarch64::NAME`: one test body, run on both ISAs.
#[macro_export]
macro_rules! on_every_isa {
    ($($name:ident),* $(,)?) => {
        mod x86_64 {
            $(#[test]
            fn $name() {
                super::$name(::basalt::guest::GuestArch::X86_64)
            })*
        }
        mod aarch64 {
            $(#[test]
            fn $name() {
                super::$name(::basalt::guest::GuestArch::Aarch64)
            })*
        }
    };
}

/// Standard streams of a hosted run (`basalt::hosted::run_with_stdio`)
/// captured in memory; stdin is empty.
#[derive(Clone, Default)]
pub struct Captured {
    /// what the program wrote to stdout
    pub stdout: Arc<Mutex<Vec<u8>>>,
    /// what it wrote to stderr
    pub stderr: Arc<Mutex<Vec<u8>>>,
}

impl basalt_wasi::Stdio for Captured {
    fn write_stdout(&self, b: &[u8]) -> Result<(), basalt_wasi::StdioError> {
        if let Ok(mut o) = self.stdout.lock() {
            o.extend_from_slice(b);
        }
        Ok(())
    }
    fn write_stderr(&self, b: &[u8]) -> Result<(), basalt_wasi::StdioError> {
        if let Ok(mut e) = self.stderr.lock() {
            e.extend_from_slice(b);
        }
        Ok(())
    }
    fn read_stdin(&self, _: &mut [u8]) -> Result<usize, basalt_wasi::StdioError> {
        Ok(0)
    }
}
