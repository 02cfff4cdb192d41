//! `basalt image`: bootable artifacts for firmware — a GPT disk whose EFI
//! system partition holds Basalt's UEFI loader, the kernel and the bundle
//! (`raw`, and the cloud containers `qcow2`, `vhd`, `gce`), or one
//! self-contained EFI executable (`efi`) for netboot. The layout is
//! `basalt_handoff::esp`'s; the disk formats are `basalt-disk`'s.

use std::path::Path;

use basalt_disk::EspFile;
pub use basalt_disk::Format;
use basalt_handoff::esp;

use crate::CliError;
use crate::guest::{self, GuestArch};

/// The parts of a bootable image.
pub struct ImageParts {
    /// the guest ISA
    pub arch: GuestArch,
    /// the kernel file a loader boots (x86-64 ELF, arm64 Image)
    pub kernel: Vec<u8>,
    /// the bundle (`-initrd`'s tar)
    pub bundle: Vec<u8>,
    /// the kernel command line
    pub cmdline: String,
    /// print what is built
    pub verbose: bool,
}

fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|e| CliError::Build(format!("{}: {e}", path.display())))
}

/// The files of the EFI system partition: the loader for the image's ISA
/// at the path firmware boots by default, and the other ISA's loader too,
/// so the image booted on the wrong machine says so instead of leaving the
/// firmware with nothing to boot.
pub fn esp_files(parts: &ImageParts) -> Result<Vec<EspFile>, CliError> {
    let mut files = Vec::new();
    for arch in [GuestArch::X86_64, GuestArch::Aarch64] {
        let path = match arch {
            GuestArch::X86_64 => esp::LOADER_X86_64,
            GuestArch::Aarch64 => esp::LOADER_AARCH64,
        };
        files.push(EspFile {
            path: path.into(),
            data: read(&guest::uefi_loader(arch, parts.verbose)?)?,
        });
    }
    files.push(EspFile {
        path: esp::KERNEL.into(),
        data: parts.kernel.clone(),
    });
    files.push(EspFile {
        path: esp::BUNDLE.into(),
        data: parts.bundle.clone(),
    });
    if !parts.cmdline.is_empty() {
        files.push(EspFile {
            path: esp::CMDLINE.into(),
            data: parts.cmdline.clone().into_bytes(),
        });
    }
    Ok(files)
}

fn disk_error(e: basalt_disk::DiskError) -> CliError {
    CliError::Io(format!("cannot make the image: {e}"))
}

/// The raw GPT disk image of `parts`.
pub fn raw_disk(parts: &ImageParts) -> Result<Vec<u8>, CliError> {
    let esp = basalt_disk::fat32_esp(&esp_files(parts)?).map_err(disk_error)?;
    basalt_disk::gpt_disk(&esp).map_err(disk_error)
}

/// The files of a partition U-Boot's distro boot (`sysboot`) boots the
/// arm64 Image from with `booti`: `extlinux/extlinux.conf` naming `/Image`
/// and `/bundle.tar` (the initrd) and the command line; no `fdt` line, so
/// U-Boot passes its own device tree (on QEMU's `virt`, QEMU's).
pub fn extlinux_files(parts: &ImageParts) -> Result<Vec<EspFile>, CliError> {
    if parts.arch != GuestArch::Aarch64 {
        return Err(CliError::Usage(
            "booti boots the arm64 Image: use --arch aarch64".into(),
        ));
    }
    Ok(vec![
        EspFile {
            path: "extlinux/extlinux.conf".into(),
            data: extlinux_conf(&parts.cmdline).into_bytes(),
        },
        EspFile {
            path: "Image".into(),
            data: parts.kernel.clone(),
        },
        EspFile {
            path: "bundle.tar".into(),
            data: parts.bundle.clone(),
        },
    ])
}

/// The `extlinux.conf` of [`extlinux_files`].
pub fn extlinux_conf(cmdline: &str) -> String {
    let mut conf = String::from(
        "default basalt\ntimeout 0\n\nlabel basalt\n    kernel /Image\n    initrd /bundle.tar\n",
    );
    if !cmdline.is_empty() {
        conf.push_str(&format!("    append {cmdline}\n"));
    }
    conf
}

/// A GPT disk with one FAT32 partition holding [`extlinux_files`], for
/// U-Boot's distro boot.
pub fn extlinux_disk(parts: &ImageParts) -> Result<Vec<u8>, CliError> {
    let esp = basalt_disk::fat32_esp(&extlinux_files(parts)?).map_err(disk_error)?;
    basalt_disk::gpt_disk(&esp).map_err(disk_error)
}

/// The self-contained EFI executable of `parts`: the loader with the
/// kernel, bundle and command line in its `.basalt` section.
pub fn efi_executable(parts: &ImageParts) -> Result<Vec<u8>, CliError> {
    let loader = read(&guest::uefi_loader(parts.arch, parts.verbose)?)?;
    let payload = basalt_disk::payload(&parts.kernel, &parts.bundle, parts.cmdline.as_bytes());
    basalt_disk::efi_with_payload(&loader, &payload).map_err(disk_error)
}

/// Writes `parts` to `out` as `format`.
pub fn write(parts: &ImageParts, format: Format, out: &Path) -> Result<(), CliError> {
    let io = |e: std::io::Error| CliError::Io(format!("{}: {e}", out.display()));
    // Written beside `out` and renamed over it only when complete and on
    // disk: a failure (a full disk, an error, Ctrl-C) leaves the file that
    // was there before untouched, never half an image.
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    use std::os::unix::fs::PermissionsExt;
    let temp = tempfile::Builder::new()
        .prefix(".basalt-image-")
        // As `File::create` makes it (less the umask), not tempfile's 0600.
        .permissions(std::fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(io)?;
    let mut file = std::io::BufWriter::new(temp);
    match format {
        Format::Efi => std::io::Write::write_all(&mut file, &efi_executable(parts)?).map_err(io)?,
        Format::Raw => std::io::Write::write_all(&mut file, &raw_disk(parts)?).map_err(io)?,
        Format::Qcow2 => basalt_disk::qcow2(&raw_disk(parts)?, &mut file).map_err(disk_error)?,
        Format::Vhd => basalt_disk::vhd_fixed(&raw_disk(parts)?, &mut file).map_err(disk_error)?,
        Format::Gce => basalt_disk::gce_tar_gz(&raw_disk(parts)?, &mut file).map_err(disk_error)?,
    }
    let temp = file.into_inner().map_err(|e| io(e.into_error()))?;
    temp.as_file().sync_all().map_err(io)?;
    temp.persist(out).map_err(|e| io(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extlinux_conf_boots_the_image_with_the_bundle() {
        assert_eq!(
            extlinux_conf("basalt.console=framed"),
            "default basalt\ntimeout 0\n\nlabel basalt\n    kernel /Image\n    initrd /bundle.tar\n    append basalt.console=framed\n"
        );
        assert!(!extlinux_conf("").contains("append"));
    }
}
