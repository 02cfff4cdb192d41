//! Building the guest side from source: the kernel (cached by cargo) and
//! the example programs.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::CliError;

/// The Basalt source tree: `BASALT_SRC`, or the tree this CLI was built from.
pub fn source_root() -> PathBuf {
    if let Some(p) = std::env::var_os("BASALT_SRC") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A `cargo` command with the variables an outer cargo (tests, `cargo run`)
/// sets removed, so the inner build sees only its own configuration.
pub fn clean_cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let outer = key.starts_with("CARGO_")
            || key == "RUSTFLAGS"
            || key == "RUSTC_WRAPPER"
            || key == "RUSTC_WORKSPACE_WRAPPER"
            || key == "RUSTDOC"
            || key == "RUSTC";
        if outer && key != "CARGO_HOME" {
            cmd.env_remove(&key);
        }
    }
    cmd
}

/// The ISA a guest kernel is built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestArch {
    /// x86-64, PVH boot
    X86_64,
}

impl GuestArch {
    /// The Rust target the kernel is built for.
    pub fn rust_target(self) -> &'static str {
        match self {
            GuestArch::X86_64 => "x86_64-unknown-none",
        }
    }
}

/// Builds the kernel for `arch` if its sources changed (cargo decides) and
/// returns the ELF's path. `BASALT_KERNEL` names a prebuilt kernel instead.
pub fn kernel(arch: GuestArch, verbose: bool) -> Result<PathBuf, CliError> {
    if let Some(p) = std::env::var_os("BASALT_KERNEL") {
        return Ok(PathBuf::from(p));
    }
    let root = source_root();
    let target_dir = root.join("target").join("guest");
    let mut cmd = clean_cargo();
    cmd.current_dir(&root)
        .args([
            "build",
            "--release",
            "-p",
            "basalt-kernel",
            "--target",
            arch.rust_target(),
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    if !verbose {
        cmd.arg("--quiet");
    }
    let out = cmd
        .output()
        .map_err(|e| CliError::Build(format!("cannot run cargo to build the kernel: {e}")))?;
    if !out.status.success() {
        return Err(CliError::Build(format!(
            "building the kernel failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    if verbose {
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(target_dir
        .join(arch.rust_target())
        .join("release")
        .join("basalt-kernel"))
}

/// Builds the example programs in `examples/` for `wasm32-wasip1` (release,
/// as an ordinary Rust user would) and returns their output directory.
pub fn examples() -> Result<PathBuf, CliError> {
    let root = source_root();
    let dir = root.join("examples");
    let target_dir = root.join("target").join("examples");
    let out = clean_cargo()
        .current_dir(&dir)
        .args(["build", "--quiet", "--release", "--target", "wasm32-wasip1"])
        .arg("--target-dir")
        .arg(&target_dir)
        .output()
        .map_err(|e| CliError::Build(format!("cannot run cargo to build the examples: {e}")))?;
    if !out.status.success() {
        return Err(CliError::Build(format!(
            "building the examples failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(target_dir.join("wasm32-wasip1").join("release"))
}
