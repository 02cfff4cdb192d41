//! Bootable disk images for `basalt image`, written on the host.
//!
//! The pieces, from the inside out:
//! - [`efi_with_payload`] turns Basalt's UEFI loader into a self-contained
//!   `.efi` by appending a PE section ([`basalt_handoff::PAYLOAD_SECTION`])
//!   that holds the kernel, the bundle and the command line ([`payload`]).
//! - [`fat32_esp`] formats an EFI system partition (FAT32, label `BASALT`)
//!   holding the loader and the files it reads ([`basalt_handoff::esp`]).
//! - [`gpt_disk`] puts that partition on a GPT disk: the raw image.
//! - [`qcow2`], [`vhd_fixed`] and [`gce_tar_gz`] convert a raw image into
//!   what QEMU, Azure and Google Compute Engine import.
//!
//! Every writer is deterministic: the same input gives the same bytes (GUIDs,
//! volume serial numbers and UUIDs are derived from a hash of the content,
//! timestamps are fixed), so images are reproducible.

#![forbid(unsafe_code)]

mod esp;
mod gce;
mod gpt;
mod pe;
mod qcow2;
mod vhd;

pub use esp::{EspFile, fat32_esp};
pub use gce::{GCE_DISK_NAME, gce_tar_gz};
pub use gpt::{ESP_PARTITION_NAME, ESP_START, ESP_TYPE_GUID, gpt_disk};
pub use pe::{efi_with_payload, find_payload, payload};
pub use qcow2::qcow2;
pub use vhd::vhd_fixed;

use std::fmt;
use std::io;

/// One mebibyte, the unit disk sizes are rounded to.
pub const MIB: u64 = 1 << 20;

/// One gibibyte, the unit GCE image sizes are rounded to.
pub const GIB: u64 = 1 << 30;

/// Why an image could not be written.
#[derive(Debug)]
pub enum DiskError {
    /// Writing the image out failed (disk full, closed pipe, ...).
    Io {
        /// what was being written
        what: &'static str,
        /// the underlying error
        source: io::Error,
    },
    /// A file for the EFI system partition has a path FAT cannot hold.
    BadEspPath {
        /// the path as given
        path: String,
        /// what is wrong with it
        reason: &'static str,
    },
    /// Two files for the EFI system partition have the same path (FAT
    /// compares names without regard to case).
    DuplicateEspPath {
        /// the second path
        path: String,
    },
    /// A file is larger than FAT32 allows (4 GiB - 1 byte).
    EspFileTooLarge {
        /// its path
        path: String,
        /// its size in bytes
        size: u64,
    },
    /// Formatting or filling the FAT32 volume failed.
    Fat {
        /// what was being done
        what: String,
        /// the error the FAT writer gave
        source: io::Error,
    },
    /// The image would be larger than the format can describe.
    TooLarge {
        /// the format
        format: &'static str,
        /// the size asked for, in bytes
        size: u64,
        /// the largest size the format holds, in bytes
        max: u64,
    },
    /// The loader given to [`efi_with_payload`] is not a PE32+ executable.
    NotPe32Plus {
        /// what is wrong with it
        reason: &'static str,
    },
    /// The loader's section table is full: its headers leave no room for
    /// another section header before the first section's data.
    NoRoomForSection {
        /// bytes a new section header needs
        needed: u64,
        /// bytes free between the section table and the first section
        free: u64,
    },
    /// The loader already carries a payload section.
    AlreadyHasPayload,
    /// The loader is signed (it has a certificate table); adding a section
    /// would invalidate the signature.
    SignedPe,
}

impl fmt::Display for DiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiskError::Io { what, source } => write!(f, "could not write {what}: {source}"),
            DiskError::BadEspPath { path, reason } => write!(
                f,
                "cannot put {path:?} on the EFI system partition: {reason}"
            ),
            DiskError::DuplicateEspPath { path } => write!(
                f,
                "{path:?} is given twice for the EFI system partition (FAT names ignore case); \
                 give each file once"
            ),
            DiskError::EspFileTooLarge { path, size } => write!(
                f,
                "{path:?} is {size} bytes; FAT32 holds files up to 4 GiB - 1 byte"
            ),
            DiskError::Fat { what, source } => {
                write!(
                    f,
                    "could not build the FAT32 EFI system partition ({what}): {source}"
                )
            }
            DiskError::TooLarge { format, size, max } => write!(
                f,
                "a {format} image of {size} bytes is larger than the format allows ({max} bytes)"
            ),
            DiskError::NotPe32Plus { reason } => write!(
                f,
                "the loader is not a UEFI PE32+ executable ({reason}); build it for \
                 x86_64-unknown-uefi or aarch64-unknown-uefi"
            ),
            DiskError::NoRoomForSection { needed, free } => write!(
                f,
                "the loader's headers have no room for another section header ({needed} bytes \
                 needed, {free} free); link it with a larger header area (more file alignment)"
            ),
            DiskError::AlreadyHasPayload => write!(
                f,
                "the loader already has a .basalt payload section; start from the loader as built"
            ),
            DiskError::SignedPe => write!(
                f,
                "the loader is signed; add the payload to the unsigned loader, then sign the result"
            ),
        }
    }
}

impl std::error::Error for DiskError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DiskError::Io { source, .. } | DiskError::Fat { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A `map_err` helper for output errors.
pub(crate) fn io_err(what: &'static str) -> impl FnOnce(io::Error) -> DiskError {
    move |source| DiskError::Io { what, source }
}

/// `n` rounded up to a multiple of `to` (a power of two or not), `None` on
/// overflow.
pub(crate) fn align_up(n: u64, to: u64) -> Option<u64> {
    if to == 0 {
        return Some(n);
    }
    n.checked_add(to - 1).map(|v| v / to * to)
}

/// Sixteen bytes from a SHA-256 of `domain` and `data`, shaped as an
/// RFC 9562 version 4 UUID (variant and version bits set) in byte order.
pub(crate) fn derived_uuid(domain: &[u8], data: &[&[u8]]) -> [u8; 16] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(domain);
    for d in data {
        h.update((d.len() as u64).to_le_bytes());
        h.update(d);
    }
    let digest = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out[6] = (out[6] & 0x0f) | 0x40;
    out[8] = (out[8] & 0x3f) | 0x80;
    out
}

/// The image formats `basalt image` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A raw GPT disk ([`gpt_disk`]).
    Raw,
    /// QEMU's qcow2 of the raw disk ([`qcow2`]).
    Qcow2,
    /// An Azure fixed VHD of the raw disk ([`vhd_fixed`]).
    Vhd,
    /// A Google Compute Engine `disk.raw` in a `.tar.gz` ([`gce_tar_gz`]).
    Gce,
    /// A self-contained UEFI executable ([`efi_with_payload`]).
    Efi,
}

impl Format {
    /// Every format, in the order `basalt image --help` lists them.
    pub const ALL: [Format; 5] = [
        Format::Raw,
        Format::Qcow2,
        Format::Vhd,
        Format::Gce,
        Format::Efi,
    ];

    /// The format a command-line name (as [`Format::name`] gives, any case)
    /// names.
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name))
    }

    /// The name `basalt image --format` takes.
    pub fn name(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Qcow2 => "qcow2",
            Format::Vhd => "vhd",
            Format::Gce => "gce",
            Format::Efi => "efi",
        }
    }

    /// The conventional file extension, without the leading dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Raw => "img",
            Format::Qcow2 => "qcow2",
            Format::Vhd => "vhd",
            Format::Gce => "tar.gz",
            Format::Efi => "efi",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_round_trip_by_name() {
        for f in Format::ALL {
            assert_eq!(Format::from_name(f.name()), Some(f));
            assert_eq!(Format::from_name(&f.name().to_uppercase()), Some(f));
        }
        assert_eq!(Format::from_name("vmdk"), None);
        assert_eq!(Format::Gce.extension(), "tar.gz");
    }

    #[test]
    fn align_up_rounds_and_reports_overflow() {
        assert_eq!(align_up(0, MIB), Some(0));
        assert_eq!(align_up(1, MIB), Some(MIB));
        assert_eq!(align_up(MIB, MIB), Some(MIB));
        assert_eq!(align_up(u64::MAX, 2), None);
    }

    #[test]
    fn derived_uuids_depend_on_domain_and_data() {
        let a = derived_uuid(b"a", &[b"x"]);
        assert_eq!(a, derived_uuid(b"a", &[b"x"]));
        assert_ne!(a, derived_uuid(b"b", &[b"x"]));
        assert_ne!(a, derived_uuid(b"a", &[b"y"]));
        assert_eq!(a[6] >> 4, 4);
        assert_eq!(a[8] >> 6, 2);
    }
}
