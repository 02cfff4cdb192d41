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
    /// AArch64, arm64 Image boot on QEMU `virt`
    Aarch64,
}

impl GuestArch {
    /// The Rust target the kernel is built for.
    pub fn rust_target(self) -> &'static str {
        match self {
            GuestArch::X86_64 => "x86_64-unknown-none",
            GuestArch::Aarch64 => "aarch64-unknown-none",
        }
    }

    /// The short name (`x86_64`, `aarch64`).
    pub fn name(self) -> &'static str {
        match self {
            GuestArch::X86_64 => "x86_64",
            GuestArch::Aarch64 => "aarch64",
        }
    }
}

/// The file QEMU boots for the kernel ELF `elf`: the ELF itself on x86-64
/// (PVH), the flat arm64 Image [`kernel`] writes beside it on AArch64.
pub fn boot_image(arch: GuestArch, elf: &Path) -> PathBuf {
    match arch {
        GuestArch::X86_64 => elf.to_path_buf(),
        GuestArch::Aarch64 => elf.with_extension("Image"),
    }
}

/// Why an ELF could not be flattened into an Image.
fn bad_elf(why: &str) -> CliError {
    CliError::Build(format!("cannot make the arm64 Image: {why}"))
}

/// Flattens a little-endian ELF64 into the bytes of its loadable segments
/// laid out by physical address from the lowest one, as `objcopy -O binary`
/// does: the arm64 Image format (its header is the first bytes of text).
pub fn flat_image(elf: &[u8]) -> Result<Vec<u8>, CliError> {
    let u16_at = |at: usize| -> Option<u64> {
        Some(u64::from(u16::from_le_bytes(
            elf.get(at..at + 2)?.try_into().ok()?,
        )))
    };
    let u32_at = |at: usize| -> Option<u64> {
        Some(u64::from(u32::from_le_bytes(
            elf.get(at..at + 4)?.try_into().ok()?,
        )))
    };
    let u64_at = |at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(elf.get(at..at + 8)?.try_into().ok()?))
    };
    if elf.get(..6) != Some(b"\x7fELF\x02\x01") {
        return Err(bad_elf("not a little-endian ELF64 file"));
    }
    let phoff = u64_at(0x20).ok_or_else(|| bad_elf("truncated header"))? as usize;
    let phentsize = u16_at(0x36).ok_or_else(|| bad_elf("truncated header"))? as usize;
    let phnum = u16_at(0x38).ok_or_else(|| bad_elf("truncated header"))? as usize;
    let mut segments = Vec::new();
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        let field = |o: usize| u64_at(at + o).ok_or_else(|| bad_elf("truncated program header"));
        let kind = u32_at(at).ok_or_else(|| bad_elf("truncated program header"))?;
        let (offset, paddr, filesz) = (field(0x08)?, field(0x18)?, field(0x20)?);
        if kind == 1 && filesz > 0 {
            segments.push((paddr, offset as usize, filesz as usize));
        }
    }
    let base = segments
        .iter()
        .map(|s| s.0)
        .min()
        .ok_or_else(|| bad_elf("no loadable segments"))?;
    let mut out = Vec::new();
    for (paddr, offset, size) in segments {
        let data = elf
            .get(offset..offset + size)
            .ok_or_else(|| bad_elf("segment outside the file"))?;
        let at = (paddr - base) as usize;
        if at > 256 << 20 {
            return Err(bad_elf("segments more than 256 MiB apart"));
        }
        if out.len() < at + size {
            out.resize(at + size, 0);
        }
        out[at..at + size].copy_from_slice(data);
    }
    Ok(out)
}

/// Builds the kernel for `arch` if its sources changed (cargo decides) and
/// returns the ELF's path; on AArch64 also writes the flat Image QEMU
/// boots beside it ([`boot_image`]). `BASALT_KERNEL` names a prebuilt
/// kernel ELF instead.
pub fn kernel(arch: GuestArch, verbose: bool) -> Result<PathBuf, CliError> {
    let elf = match std::env::var_os("BASALT_KERNEL") {
        Some(p) => PathBuf::from(p),
        None => build_kernel(arch, verbose)?,
    };
    if arch == GuestArch::Aarch64 {
        let bytes =
            std::fs::read(&elf).map_err(|e| CliError::Build(format!("{}: {e}", elf.display())))?;
        let image = boot_image(arch, &elf);
        let flat = flat_image(&bytes)?;
        if std::fs::read(&image).ok().as_deref() != Some(&flat[..]) {
            std::fs::write(&image, &flat)
                .map_err(|e| CliError::Build(format!("{}: {e}", image.display())))?;
        }
    }
    Ok(elf)
}

fn build_kernel(arch: GuestArch, verbose: bool) -> Result<PathBuf, CliError> {
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
