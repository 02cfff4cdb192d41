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

/// The x86-64 kernel ELF as a loader needs it: the ELF header, program
/// headers and segment contents, without the section headers and the
/// debug information after them (tens of MiB that nothing at boot reads;
/// `kernel.syms` in the bundle carries the symbols for backtraces).
pub fn loadable_elf(elf: &[u8]) -> Result<Vec<u8>, CliError> {
    let bad = |why: &str| CliError::Build(format!("cannot trim the kernel ELF: {why}"));
    let u16_at = |at: usize| {
        elf.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u64_at = |at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(elf.get(at..at + 8)?.try_into().ok()?))
    };
    if elf.get(..6) != Some(b"\x7fELF\x02\x01") {
        return Err(bad("not a little-endian ELF64 file"));
    }
    let truncated = || bad("truncated header");
    let phoff = u64_at(0x20).ok_or_else(truncated)? as usize;
    let phentsize = usize::from(u16_at(0x36).ok_or_else(truncated)?);
    let phnum = usize::from(u16_at(0x38).ok_or_else(truncated)?);
    let mut end = phoff + phentsize * phnum;
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        let field = |o: usize| u64_at(at + o).ok_or_else(|| bad("truncated program header"));
        let (offset, filesz) = (field(0x08)?, field(0x20)?);
        end = end.max(offset.saturating_add(filesz) as usize);
    }
    let mut out = elf
        .get(..end)
        .ok_or_else(|| bad("a segment lies outside the file"))?
        .to_vec();
    // No section headers: e_shoff, e_shnum, e_shstrndx.
    out[0x28..0x30].fill(0);
    out[0x3c..0x40].fill(0);
    Ok(out)
}

/// The arm64 Image header's magic, at byte 56.
const IMAGE_MAGIC: &[u8; 4] = b"ARM\x64";

/// A copy of the arm64 Image `image` whose header asks loaders for
/// `text_offset` (bytes 8..16): QEMU `-M virt -kernel` then places it at
/// RAM base + `text_offset`. Only the header changes; the kernel relocates
/// itself to wherever it lands.
pub fn with_text_offset(image: &[u8], text_offset: u64) -> Result<Vec<u8>, CliError> {
    if image.get(56..60) != Some(&IMAGE_MAGIC[..]) {
        return Err(CliError::Build(
            "not an arm64 Image (no ARM\\x64 magic in its header)".into(),
        ));
    }
    if !text_offset.is_multiple_of(4096) {
        return Err(CliError::Build(format!(
            "text_offset {text_offset:#x} is not a multiple of 4 KiB"
        )));
    }
    let mut out = image.to_vec();
    out[8..16].copy_from_slice(&text_offset.to_le_bytes());
    Ok(out)
}

/// `R_AARCH64_RELATIVE`: the one dynamic relocation type the AArch64 boot
/// stub applies.
const R_AARCH64_RELATIVE: u64 = 1027;

/// Checks that every dynamic relocation of the AArch64 kernel ELF is one
/// its boot stub can apply (`R_AARCH64_RELATIVE` without a symbol, to an
/// 8-byte-aligned place, in `SHT_RELA` sections; the stub would stop
/// silently at anything else, before any console works), and returns how
/// many there are.
pub fn check_relocations(elf: &[u8]) -> Result<usize, CliError> {
    let u16_at = |at: usize| -> Option<usize> {
        Some(usize::from(u16::from_le_bytes(
            elf.get(at..at + 2)?.try_into().ok()?,
        )))
    };
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(elf.get(at..at + 4)?.try_into().ok()?))
    };
    let u64_at = |at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(elf.get(at..at + 8)?.try_into().ok()?))
    };
    let truncated = || bad_elf("truncated section headers");
    if elf.get(..6) != Some(b"\x7fELF\x02\x01") {
        return Err(bad_elf("not a little-endian ELF64 file"));
    }
    let shoff = u64_at(0x28).ok_or_else(truncated)? as usize;
    let shentsize = u16_at(0x3a).ok_or_else(truncated)?;
    let shnum = u16_at(0x3c).ok_or_else(truncated)?;
    let mut count = 0;
    for i in 0..shnum {
        let at = shoff + i * shentsize;
        let kind = u32_at(at + 4).ok_or_else(truncated)?;
        let flags = u64_at(at + 8).ok_or_else(truncated)?;
        const SHT_RELA: u32 = 4;
        const SHT_REL: u32 = 9;
        const SHT_RELR: u32 = 19;
        const SHF_ALLOC: u64 = 2;
        if flags & SHF_ALLOC == 0 || !matches!(kind, SHT_RELA | SHT_REL | SHT_RELR) {
            continue;
        }
        if kind != SHT_RELA {
            return Err(bad_elf(&format!(
                "section {i} holds relocations of a format (SHT {kind}) the boot stub does not read"
            )));
        }
        let offset = u64_at(at + 0x18).ok_or_else(truncated)? as usize;
        let size = u64_at(at + 0x20).ok_or_else(truncated)? as usize;
        for entry in (offset..offset + size).step_by(24) {
            let place = u64_at(entry).ok_or_else(|| bad_elf("truncated relocations"))?;
            let info = u64_at(entry + 8).ok_or_else(|| bad_elf("truncated relocations"))?;
            if info != R_AARCH64_RELATIVE || !place.is_multiple_of(8) {
                return Err(bad_elf(&format!(
                    "dynamic relocation (type {}, symbol {}) at {place:#x}: the boot stub applies only 8-byte-aligned R_AARCH64_RELATIVE",
                    info & 0xffff_ffff,
                    info >> 32
                )));
            }
            count += 1;
        }
    }
    Ok(count)
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
        check_relocations(&bytes)?;
        let flat = flat_image(&bytes)?;
        if std::fs::read(&image).ok().as_deref() != Some(&flat[..]) {
            std::fs::write(&image, &flat)
                .map_err(|e| CliError::Build(format!("{}: {e}", image.display())))?;
        }
    }
    Ok(elf)
}

fn build_kernel(arch: GuestArch, verbose: bool) -> Result<PathBuf, CliError> {
    build_guest_part("basalt-kernel", "the kernel", arch.rust_target(), verbose)?;
    Ok(source_root()
        .join("target")
        .join("guest")
        .join(arch.rust_target())
        .join("release")
        .join("basalt-kernel"))
}

/// Builds one package of the guest side for `target` (release, in
/// `target/guest`, cargo deciding what changed).
fn build_guest_part(
    package: &str,
    what: &str,
    target: &str,
    verbose: bool,
) -> Result<(), CliError> {
    let root = source_root();
    let target_dir = root.join("target").join("guest");
    let mut cmd = clean_cargo();
    cmd.current_dir(&root)
        .args(["build", "--release", "-p", package, "--target", target])
        .arg("--target-dir")
        .arg(&target_dir);
    if !verbose {
        cmd.arg("--quiet");
    }
    let out = cmd
        .output()
        .map_err(|e| CliError::Build(format!("cannot run cargo to build {what}: {e}")))?;
    if !out.status.success() {
        return Err(CliError::Build(format!(
            "building {what} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    if verbose {
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// The Rust target of the UEFI loader for `arch`.
pub fn uefi_target(arch: GuestArch) -> &'static str {
    match arch {
        GuestArch::X86_64 => "x86_64-unknown-uefi",
        GuestArch::Aarch64 => "aarch64-unknown-uefi",
    }
}

/// Builds Basalt's UEFI loader for `arch` if its sources changed and
/// returns the `.efi`'s path. `BASALT_UEFI_LOADER_X86_64` /
/// `BASALT_UEFI_LOADER_AARCH64` name prebuilt loaders instead.
pub fn uefi_loader(arch: GuestArch, verbose: bool) -> Result<PathBuf, CliError> {
    let var = match arch {
        GuestArch::X86_64 => "BASALT_UEFI_LOADER_X86_64",
        GuestArch::Aarch64 => "BASALT_UEFI_LOADER_AARCH64",
    };
    if let Some(p) = std::env::var_os(var) {
        return Ok(PathBuf::from(p));
    }
    let target = uefi_target(arch);
    build_guest_part("basalt-uefi-loader", "the UEFI loader", target, verbose)?;
    Ok(source_root()
        .join("target")
        .join("guest")
        .join(target)
        .join("release")
        .join("basalt-loader.efi"))
}

/// Builds the example programs in `examples/` for `wasm32-wasip1` (release,
/// as an ordinary Rust user would) and returns their output directory.
pub fn examples() -> Result<PathBuf, CliError> {
    build_examples("wasm32-wasip1", None)
}

/// Builds the example program `package` of `examples/` for
/// `wasm32-wasip2` (a WASI 0.2 component, release) and returns its path
/// (a library's, such as a `wasi:http` proxy, is named with `_`).
pub fn example_component(package: &str) -> Result<PathBuf, CliError> {
    let dir = build_examples("wasm32-wasip2", Some(package))?;
    let bin = dir.join(format!("{package}.wasm"));
    let lib = dir.join(format!("{}.wasm", package.replace('-', "_")));
    Ok(if bin.is_file() || !lib.is_file() {
        bin
    } else {
        lib
    })
}

/// Builds `package` (else every example) for `target`; the output
/// directory.
fn build_examples(target: &str, package: Option<&str>) -> Result<PathBuf, CliError> {
    let root = source_root();
    let target_dir = root.join("target").join("examples");
    let what = package.unwrap_or("the examples");
    let mut cmd = clean_cargo();
    cmd.current_dir(root.join("examples"))
        .args(["build", "--quiet", "--release", "--target", target])
        .arg("--target-dir")
        .arg(&target_dir);
    if let Some(p) = package {
        cmd.args(["-p", p]);
    }
    let out = cmd
        .output()
        .map_err(|e| CliError::Build(format!("cannot run cargo to build {what}: {e}")))?;
    if !out.status.success() {
        return Err(CliError::Build(format!(
            "building {what} for {target} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(target_dir.join(target).join("release"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 with the given `(kind, offset, paddr, filesz)`
    /// program headers and `body` after the headers.
    fn elf(phdrs: &[(u32, u64, u64, u64)], body: &[u8]) -> Vec<u8> {
        let mut e = vec![0u8; 64];
        e[..6].copy_from_slice(b"\x7fELF\x02\x01");
        e[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        e[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        e[0x38..0x3a].copy_from_slice(&(phdrs.len() as u16).to_le_bytes());
        for &(kind, offset, paddr, filesz) in phdrs {
            let mut p = vec![0u8; 56];
            p[..4].copy_from_slice(&kind.to_le_bytes());
            p[0x08..0x10].copy_from_slice(&offset.to_le_bytes());
            p[0x18..0x20].copy_from_slice(&paddr.to_le_bytes());
            p[0x20..0x28].copy_from_slice(&filesz.to_le_bytes());
            e.extend_from_slice(&p);
        }
        e.extend_from_slice(body);
        e
    }

    #[test]
    fn flattens_loadable_segments_by_physical_address() {
        let body_at = 64 + 3 * 56;
        let image = elf(
            &[
                (1, body_at + 4, 0x4020_1000, 2),
                (1, body_at, 0x4020_0000, 4),
                (4, body_at, 0, 6),
            ],
            b"ABCDEF",
        );
        let flat = flat_image(&image).expect("flat");
        assert_eq!(flat.len(), 0x1002);
        assert_eq!(&flat[..4], b"ABCD");
        assert!(flat[4..0x1000].iter().all(|b| *b == 0));
        assert_eq!(&flat[0x1000..], b"EF");
    }

    /// A minimal ELF64 with one allocated section of type `kind` holding
    /// `body`.
    fn elf_with_section(kind: u32, body: &[u8]) -> Vec<u8> {
        let mut e = vec![0u8; 64];
        e[..6].copy_from_slice(b"\x7fELF\x02\x01");
        e[0x28..0x30].copy_from_slice(&64u64.to_le_bytes());
        e[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        e[0x3c..0x3e].copy_from_slice(&1u16.to_le_bytes());
        let mut sh = vec![0u8; 64];
        sh[4..8].copy_from_slice(&kind.to_le_bytes());
        sh[8..16].copy_from_slice(&2u64.to_le_bytes());
        sh[0x18..0x20].copy_from_slice(&128u64.to_le_bytes());
        sh[0x20..0x28].copy_from_slice(&(body.len() as u64).to_le_bytes());
        e.extend_from_slice(&sh);
        e.extend_from_slice(body);
        e
    }

    fn rela(place: u64, info: u64, addend: u64) -> Vec<u8> {
        [place, info, addend]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect()
    }

    #[test]
    fn only_relative_relocations_pass() {
        let mut two = rela(0x4020_1000, 1027, 0x4030_0000);
        two.extend(rela(0x4020_1008, 1027, 0x4030_0010));
        assert_eq!(check_relocations(&elf_with_section(4, &two)).ok(), Some(2));
        assert_eq!(check_relocations(&elf_with_section(1, &two)).ok(), Some(0));
        let abs64 = rela(0x4020_1000, (5 << 32) | 257, 0);
        assert!(check_relocations(&elf_with_section(4, &abs64)).is_err());
        let unaligned = rela(0x4020_1004, 1027, 0);
        assert!(check_relocations(&elf_with_section(4, &unaligned)).is_err());
        assert!(check_relocations(&elf_with_section(19, &[0; 8])).is_err());
    }

    #[test]
    fn the_text_offset_is_patched_in_the_header_only() {
        let mut image = vec![0u8; 4096];
        image[8..16].copy_from_slice(&0x20_0000u64.to_le_bytes());
        image[56..60].copy_from_slice(IMAGE_MAGIC);
        let moved = with_text_offset(&image, 0x4020_0000).expect("patched");
        assert_eq!(moved[8..16], 0x4020_0000u64.to_le_bytes());
        assert_eq!(moved[..8], image[..8]);
        assert_eq!(moved[16..], image[16..]);
        assert!(with_text_offset(&image, 0x4020_0001).is_err());
        assert!(with_text_offset(&[0; 64], 0x4020_0000).is_err());
    }

    #[test]
    fn refuses_what_is_not_a_kernel() {
        assert!(flat_image(b"not an elf").is_err());
        assert!(flat_image(&elf(&[], b"")).is_err());
        assert!(flat_image(&elf(&[(1, 1 << 40, 0, 16)], b"")).is_err());
        let far = elf(&[(1, 232, 0, 1), (1, 232, 1 << 30, 1)], b"x");
        assert!(flat_image(&far).is_err());
    }
}
