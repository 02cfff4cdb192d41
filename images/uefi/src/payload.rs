//! Finding the kernel, the bundle and the command line: in the loader's own
//! `.basalt` PE section (a self-contained `.efi`), else as files under
//! `\basalt\` on the partition the loader was booted from.

use crate::{LoadError, load_error, pages_for};
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use basalt_handoff::{PAYLOAD_SECTION, PayloadHeader};
use core::ops::Deref;
use uefi::boot::{self, AllocateType, MemoryType, ScopedProtocol};
use uefi::proto::loaded_image::LoadedImage;
use uefi::proto::media::file::{File, FileAttribute, FileInfo, FileMode, RegularFile};
use uefi::proto::media::fs::SimpleFileSystem;
use uefi::{CString16, Status};

/// Bytes the loader found: inside its own loaded image, or read from a file.
pub enum Bytes {
    /// a part of the `.basalt` section (the image stays loaded until the
    /// jump)
    Embedded(&'static [u8]),
    /// read from the boot partition into the heap
    Owned(Vec<u8>),
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Embedded(b) => b,
            Bytes::Owned(v) => v,
        }
    }
}

/// Where the bundle comes from; it is copied into its own pages by
/// [`Payload::place_bundle`] once the kernel is in place.
enum BundleSource {
    Embedded(&'static [u8]),
    File(RegularFile, u64),
}

/// What the loader boots.
pub struct Payload {
    /// the kernel file (x86-64 ELF or arm64 Image)
    pub kernel: Bytes,
    /// the command line from the payload or `\basalt\cmdline`, trimmed
    pub cmdline: String,
    /// whether it came from the `.basalt` section
    pub embedded: bool,
    bundle: BundleSource,
    // Kept open while a file of it is read.
    _fs: Option<ScopedProtocol<SimpleFileSystem>>,
}

/// Finds the payload: the `.basalt` section first, the boot partition's
/// `\basalt\` files second.
pub fn find() -> Result<Payload, LoadError> {
    if let Some(section) = own_section()? {
        let header = PayloadHeader::parse(section)
            .map_err(|e| load_error!("the .basalt section of this loader is corrupt: {e}"))?;
        let bundle = header.bundle(section);
        if bundle.is_empty() {
            return Err(LoadError::new(
                "the .basalt section of this loader holds no bundle: make the image again with `basalt image`",
            ));
        }
        return Ok(Payload {
            kernel: Bytes::Embedded(header.kernel(section)),
            cmdline: clean_cmdline(header.cmdline(section)),
            embedded: true,
            bundle: BundleSource::Embedded(bundle),
            _fs: None,
        });
    }
    let mut fs = boot::get_image_file_system(boot::image_handle()).map_err(|e| {
        load_error!(
            "this loader has neither a .basalt section nor a file system on its boot device ({:?}): was this made by basalt image?",
            e.status()
        )
    })?;
    let mut root = fs
        .open_volume()
        .map_err(|e| load_error!("cannot open the boot partition: {:?}", e.status()))?;
    let kernel = match open_file(&mut root, "\\basalt\\kernel")? {
        Some(mut f) => read_all(&mut f, "\\basalt\\kernel")?,
        None => {
            return Err(LoadError::new(
                "this loader found neither a .basalt section nor \\basalt\\kernel on the boot partition: was this made by basalt image?",
            ));
        }
    };
    let cmdline = match open_file(&mut root, "\\basalt\\cmdline")? {
        Some(mut f) => clean_cmdline(&read_all(&mut f, "\\basalt\\cmdline")?),
        None => String::new(),
    };
    let bundle = match open_file(&mut root, "\\basalt\\bundle.tar")? {
        Some(mut f) => {
            let size = file_size(&mut f, "\\basalt\\bundle.tar")?;
            BundleSource::File(f, size)
        }
        None => {
            return Err(LoadError::new(
                "\\basalt\\kernel is on the boot partition but \\basalt\\bundle.tar is missing: make the image again with `basalt image`",
            ));
        }
    };
    Ok(Payload {
        kernel: Bytes::Owned(kernel),
        cmdline,
        embedded: false,
        bundle,
        _fs: Some(fs),
    })
}

impl Payload {
    /// Copies (or reads) the bundle into `LOADER_DATA` pages, below 4 GiB
    /// when there is room; returns its address and length.
    pub fn place_bundle(self) -> Result<(u64, u64), LoadError> {
        let len = match &self.bundle {
            BundleSource::Embedded(b) => b.len() as u64,
            BundleSource::File(_, size) => *size,
        };
        let pages = pages_for(len.max(1));
        let base = boot::allocate_pages(
            AllocateType::MaxAddress(0xffff_ffff),
            MemoryType::LOADER_DATA,
            pages,
        )
        .or_else(|_| boot::allocate_pages(AllocateType::AnyPages, MemoryType::LOADER_DATA, pages))
        .map_err(|e| {
            load_error!(
                "out of memory: no room for the {len}-byte bundle ({:?}); give the machine more memory",
                e.status()
            )
        })?;
        let len_usize = usize::try_from(len).unwrap_or(usize::MAX);
        // SAFETY: `allocate_pages` gave `pages` pages at `base`, at least
        // `len` bytes, which nothing else refers to.
        let dest = unsafe { core::slice::from_raw_parts_mut(base.as_ptr(), len_usize) };
        match self.bundle {
            BundleSource::Embedded(b) => dest.copy_from_slice(b),
            BundleSource::File(mut f, _) => read_exact(&mut f, dest, "\\basalt\\bundle.tar")?,
        }
        Ok((base.as_ptr() as u64, len))
    }
}

/// The loader's own `.basalt` section, if it has one.
fn own_section() -> Result<Option<&'static [u8]>, LoadError> {
    let image = boot::open_protocol_exclusive::<LoadedImage>(boot::image_handle())
        .map_err(|e| load_error!("cannot read this loader's own image: {:?}", e.status()))?;
    let (base, size) = image.info();
    drop(image);
    let size = usize::try_from(size).unwrap_or(0);
    if base.is_null() || size == 0 {
        return Ok(None);
    }
    // SAFETY: the firmware loaded this image at `base`, `size` bytes, and
    // keeps it there while the loader runs (and after, as LOADER_CODE).
    let image: &'static [u8] = unsafe { core::slice::from_raw_parts(base.cast::<u8>(), size) };
    Ok(find_section(image, PAYLOAD_SECTION))
}

/// The section named `name` of a loaded PE image (addresses relative to
/// the image's base), if present and inside the image.
fn find_section<'a>(image: &'a [u8], name: &[u8; 8]) -> Option<&'a [u8]> {
    let u16_at = |off: usize| -> Option<u16> {
        Some(u16::from_le_bytes(
            image.get(off..off + 2)?.try_into().ok()?,
        ))
    };
    let u32_at = |off: usize| -> Option<u32> {
        Some(u32::from_le_bytes(
            image.get(off..off + 4)?.try_into().ok()?,
        ))
    };
    if image.get(..2)? != b"MZ" {
        return None;
    }
    let pe = usize::try_from(u32_at(0x3c)?).ok()?;
    if image.get(pe..pe + 4)? != b"PE\0\0" {
        return None;
    }
    let sections = usize::from(u16_at(pe + 6)?);
    let optional_size = usize::from(u16_at(pe + 20)?);
    let table = pe + 24 + optional_size;
    for i in 0..sections {
        let entry = table + i * 40;
        if image.get(entry..entry + 8)? != name {
            continue;
        }
        let virtual_size = usize::try_from(u32_at(entry + 8)?).ok()?;
        let virtual_address = usize::try_from(u32_at(entry + 12)?).ok()?;
        return image.get(virtual_address..virtual_address.checked_add(virtual_size)?);
    }
    None
}

/// Opens `path` on the boot partition, `None` when it does not exist.
fn open_file(
    root: &mut uefi::proto::media::file::Directory,
    path: &str,
) -> Result<Option<RegularFile>, LoadError> {
    let name = CString16::try_from(path).map_err(|_| load_error!("bad path {path}"))?;
    let handle = match root.open(&name, FileMode::Read, FileAttribute::empty()) {
        Ok(h) => h,
        Err(e) if e.status() == Status::NOT_FOUND => return Ok(None),
        Err(e) => {
            return Err(load_error!(
                "cannot open {path} on the boot partition: {:?}",
                e.status()
            ));
        }
    };
    match handle.into_regular_file() {
        Some(f) => Ok(Some(f)),
        None => Err(load_error!(
            "{path} on the boot partition is a directory, not a file"
        )),
    }
}

fn file_size(f: &mut RegularFile, path: &str) -> Result<u64, LoadError> {
    let info: Box<FileInfo> = f
        .get_boxed_info()
        .map_err(|e| load_error!("cannot read the size of {path}: {:?}", e.status()))?;
    Ok(info.file_size())
}

fn read_all(f: &mut RegularFile, path: &str) -> Result<Vec<u8>, LoadError> {
    let size = file_size(f, path)?;
    let size = usize::try_from(size).map_err(|_| load_error!("{path} is too large"))?;
    let mut buf = Vec::new();
    buf.try_reserve_exact(size).map_err(|_| {
        load_error!(
            "out of memory: cannot hold {path} ({size} bytes); give the machine more memory"
        )
    })?;
    buf.resize(size, 0);
    read_exact(f, &mut buf, path)?;
    Ok(buf)
}

/// Fills `dest` from `f`, in chunks (some firmware fails large reads).
fn read_exact(f: &mut RegularFile, dest: &mut [u8], path: &str) -> Result<(), LoadError> {
    const CHUNK: usize = 1 << 20;
    let mut done = 0;
    while done < dest.len() {
        let end = dest.len().min(done + CHUNK);
        let n = f
            .read(&mut dest[done..end])
            .map_err(|e| {
                load_error!(
                    "cannot read {path} ({:?} after {done} of {} bytes): the boot disk is damaged or the image was cut short; write the image again",
                    e.status(),
                    dest.len()
                )
            })?;
        if n == 0 {
            return Err(load_error!(
                "{path} ended after {done} of {} bytes: the boot disk is damaged or the image was cut short; write the image again",
                dest.len()
            ));
        }
        done += n;
    }
    Ok(())
}

/// A command line from a file or the payload: UTF-8 (invalid bytes
/// replaced), surrounding whitespace and NULs trimmed.
fn clean_cmdline(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    String::from(s.trim_matches(|c: char| c.is_whitespace() || c == '\0'))
}

/// Appends the loader's load options (as the UEFI shell or a boot entry
/// passes them) to `cmdline`, after a space; options that are only the
/// loader's own path, or that are not printable text (EDK II's boot
/// manager passes binary data), are left out.
pub fn append_load_options(cmdline: &mut String) {
    let Ok(image) = boot::open_protocol_exclusive::<LoadedImage>(boot::image_handle()) else {
        return;
    };
    let Some(bytes) = image.load_options_as_bytes() else {
        return;
    };
    let Some(options) = decode_load_options(bytes) else {
        return;
    };
    if !options.is_empty() {
        if !cmdline.is_empty() {
            cmdline.push(' ');
        }
        cmdline.push_str(&options);
    }
}

/// UCS-2 load options as UTF-8, without a leading `….efi` path; `None`
/// when they are not printable text.
fn decode_load_options(bytes: &[u8]) -> Option<String> {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    let mut text = String::new();
    for c in char::decode_utf16(units) {
        let c = c.ok()?;
        if c.is_control() && c != '\t' {
            return None;
        }
        if !c.is_ascii() {
            return None;
        }
        text.push(c);
    }
    let text = text.trim();
    let rest = match text.split_once(' ') {
        Some((first, rest)) if is_efi_path(first) => rest,
        None if is_efi_path(text) => "",
        _ => text,
    };
    Some(String::from(rest.trim()))
}

fn is_efi_path(word: &str) -> bool {
    word.len() >= 4 && word[word.len() - 4..].eq_ignore_ascii_case(".efi")
}
