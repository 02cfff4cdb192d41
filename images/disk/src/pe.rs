//! The self-contained loader: Basalt's UEFI loader (a PE32+ executable)
//! with the kernel, bundle and command line appended as one more section.

use basalt_handoff::{PAYLOAD_MAGIC, PAYLOAD_SECTION, PayloadHeader};

use crate::{DiskError, align_up};

/// `IMAGE_SCN_CNT_INITIALIZED_DATA | IMAGE_SCN_MEM_READ`.
const SECTION_FLAGS: u32 = 0x0000_0040 | 0x4000_0000;
/// The optional header's magic for PE32+.
const PE32_PLUS: u16 = 0x20b;
/// Bytes per section header.
const SECTION_HEADER: usize = 40;
/// Alignment of the kernel and the bundle inside the payload.
const PART_ALIGN: u64 = 4096;

/// Builds a payload as [`PayloadHeader`] describes it: the header, then the
/// kernel and the bundle each at a 4 KiB-aligned offset, then the command
/// line.
pub fn payload(kernel: &[u8], bundle: &[u8], cmdline: &[u8]) -> Vec<u8> {
    let kernel_offset = PART_ALIGN;
    let bundle_offset = (kernel_offset + kernel.len() as u64).next_multiple_of(PART_ALIGN);
    let cmdline_offset = bundle_offset + bundle.len() as u64;
    let header = PayloadHeader {
        magic: PAYLOAD_MAGIC,
        kernel_offset,
        kernel_len: kernel.len() as u64,
        bundle_offset,
        bundle_len: bundle.len() as u64,
        cmdline_offset,
        cmdline_len: cmdline.len() as u64,
    };
    let mut out = Vec::with_capacity(cmdline_offset as usize + cmdline.len());
    out.extend_from_slice(&header.to_bytes());
    out.resize(kernel_offset as usize, 0);
    out.extend_from_slice(kernel);
    out.resize(bundle_offset as usize, 0);
    out.extend_from_slice(bundle);
    out.extend_from_slice(cmdline);
    out
}

/// The parts of a PE32+ file this module reads and patches.
struct Pe {
    /// offset of the COFF file header
    coff: usize,
    /// offset of the optional header
    opt: usize,
    /// offset of the section table
    sections: usize,
    /// number of sections
    count: usize,
    file_alignment: u64,
    section_alignment: u64,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn not_pe(reason: &'static str) -> DiskError {
    DiskError::NotPe32Plus { reason }
}

fn parse(pe: &[u8]) -> Result<Pe, DiskError> {
    if pe.get(..2) != Some(b"MZ") {
        return Err(not_pe("no MZ signature"));
    }
    let lfanew = u32_at(pe, 0x3c).ok_or(not_pe("truncated DOS header"))? as usize;
    if pe.get(lfanew..lfanew.saturating_add(4)) != Some(b"PE\0\0") {
        return Err(not_pe("no PE signature"));
    }
    let coff = lfanew + 4;
    let count = u16_at(pe, coff + 2).ok_or(not_pe("truncated COFF header"))? as usize;
    let opt_size = u16_at(pe, coff + 16).ok_or(not_pe("truncated COFF header"))? as usize;
    let opt = coff + 20;
    if u16_at(pe, opt) != Some(PE32_PLUS) {
        return Err(not_pe("the optional header is not PE32+ (magic 0x20b)"));
    }
    if opt_size < 112 || pe.len() < opt + opt_size {
        return Err(not_pe("truncated optional header"));
    }
    let section_alignment = u64::from(u32_at(pe, opt + 32).unwrap_or(0));
    let file_alignment = u64::from(u32_at(pe, opt + 36).unwrap_or(0));
    if !file_alignment.is_power_of_two() || !section_alignment.is_power_of_two() {
        return Err(not_pe("its alignments are not powers of two"));
    }
    let sections = opt + opt_size;
    if pe.len() < sections + count * SECTION_HEADER {
        return Err(not_pe("truncated section table"));
    }
    Ok(Pe {
        coff,
        opt,
        sections,
        count,
        file_alignment,
        section_alignment,
    })
}

/// One section header's fields this module uses.
struct Section<'a> {
    name: &'a [u8],
    virtual_size: u32,
    virtual_address: u32,
    raw_size: u32,
    raw_pointer: u32,
}

fn section<'a>(pe: &'a [u8], p: &Pe, i: usize) -> Section<'a> {
    let at = p.sections + i * SECTION_HEADER;
    let h = &pe[at..at + SECTION_HEADER];
    Section {
        name: &h[..8],
        virtual_size: u32_at(h, 8).unwrap_or(0),
        virtual_address: u32_at(h, 12).unwrap_or(0),
        raw_size: u32_at(h, 16).unwrap_or(0),
        raw_pointer: u32_at(h, 20).unwrap_or(0),
    }
}

/// Appends a section named [`PAYLOAD_SECTION`] holding `payload` (as
/// [`payload`] builds it) to `loader_pe`, a UEFI PE32+ executable as rustc's
/// `*-unknown-uefi` targets emit it.
///
/// The section's data goes at the end of the file, aligned to the file
/// alignment; it is mapped after the last section, aligned to the section
/// alignment, as initialized read-only data. The header's section count,
/// image size and initialized-data size are updated and its checksum zeroed
/// (UEFI does not check it). Refused: input that is not PE32+, is signed,
/// has no room for another section header before the first section's data,
/// or already has the section.
pub fn efi_with_payload(loader_pe: &[u8], payload: &[u8]) -> Result<Vec<u8>, DiskError> {
    let p = parse(loader_pe)?;
    // The certificate table (data directory 4) must stay the file's end and
    // its signature would no longer match.
    let dirs = u32_at(loader_pe, p.opt + 108).unwrap_or(0);
    if dirs > 4 && u32_at(loader_pe, p.opt + 112 + 4 * 8 + 4).unwrap_or(0) != 0 {
        return Err(DiskError::SignedPe);
    }
    let size_of_headers = u64::from(u32_at(loader_pe, p.opt + 60).unwrap_or(0));
    let mut first_raw = size_of_headers;
    let mut end_va = 0u64;
    for i in 0..p.count {
        let s = section(loader_pe, &p, i);
        if s.name == PAYLOAD_SECTION {
            return Err(DiskError::AlreadyHasPayload);
        }
        if s.raw_size != 0 && s.raw_pointer != 0 {
            first_raw = first_raw.min(u64::from(s.raw_pointer));
        }
        let span = u64::from(s.virtual_size.max(s.raw_size));
        end_va = end_va.max(u64::from(s.virtual_address) + span);
    }
    let table_end = (p.sections + p.count * SECTION_HEADER) as u64;
    let free = first_raw.saturating_sub(table_end);
    if free < SECTION_HEADER as u64 {
        return Err(DiskError::NoRoomForSection {
            needed: SECTION_HEADER as u64,
            free,
        });
    }
    let count = u16::try_from(p.count + 1).map_err(|_| not_pe("too many sections"))?;

    let too_large = || DiskError::TooLarge {
        format: "PE32+",
        size: loader_pe.len() as u64 + payload.len() as u64,
        max: u64::from(u32::MAX),
    };
    let raw_pointer = align_up(loader_pe.len() as u64, p.file_alignment).ok_or_else(too_large)?;
    let raw_size = align_up(payload.len() as u64, p.file_alignment).ok_or_else(too_large)?;
    let va = align_up(end_va, p.section_alignment).ok_or_else(too_large)?;
    let image_size =
        align_up(va + payload.len() as u64, p.section_alignment).ok_or_else(too_large)?;
    let old_init = u64::from(u32_at(loader_pe, p.opt + 8).unwrap_or(0));
    let fits = |v: u64| u32::try_from(v).map_err(|_| too_large());
    let (raw_pointer32, raw_size32, va32) = (fits(raw_pointer)?, fits(raw_size)?, fits(va)?);
    let (image_size32, virtual_size32) = (fits(image_size)?, fits(payload.len() as u64)?);
    let init32 = fits(old_init + raw_size)?;
    fits(raw_pointer + raw_size)?;

    let mut out = Vec::with_capacity((raw_pointer + raw_size) as usize);
    out.extend_from_slice(loader_pe);
    out.resize(raw_pointer as usize, 0);
    out.extend_from_slice(payload);
    out.resize((raw_pointer + raw_size) as usize, 0);

    let at = table_end as usize;
    let h = &mut out[at..at + SECTION_HEADER];
    h.fill(0);
    h[..8].copy_from_slice(PAYLOAD_SECTION);
    put_u32(h, 8, virtual_size32);
    put_u32(h, 12, va32);
    put_u32(h, 16, raw_size32);
    put_u32(h, 20, raw_pointer32);
    put_u32(h, 36, SECTION_FLAGS);

    put_u16(&mut out, p.coff + 2, count);
    put_u32(&mut out, p.opt + 8, init32);
    put_u32(&mut out, p.opt + 56, image_size32);
    put_u32(&mut out, p.opt + 64, 0);
    Ok(out)
}

/// The payload in a self-contained loader: the bytes of its
/// [`PAYLOAD_SECTION`] section (its virtual size of them), or `None` when
/// `pe` is not PE32+ or has no such section.
pub fn find_payload(pe: &[u8]) -> Option<&[u8]> {
    let p = parse(pe).ok()?;
    (0..p.count).find_map(|i| {
        let s = section(pe, &p, i);
        if s.name != PAYLOAD_SECTION {
            return None;
        }
        let start = s.raw_pointer as usize;
        let len = s.virtual_size.min(s.raw_size) as usize;
        pe.get(start..start.checked_add(len)?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_parses_back() {
        let p = payload(b"kernel", b"bundle!", b"quiet");
        let h = PayloadHeader::parse(&p).unwrap();
        assert_eq!(h.kernel(&p), b"kernel");
        assert_eq!(h.bundle(&p), b"bundle!");
        assert_eq!(h.cmdline(&p), b"quiet");
        assert_eq!(h.kernel_offset % PART_ALIGN, 0);
        assert_eq!(h.bundle_offset % PART_ALIGN, 0);
    }

    #[test]
    fn non_pe_input_is_refused() {
        for bad in [&b""[..], b"MZ", &[0u8; 512]] {
            let e = efi_with_payload(bad, b"x").unwrap_err();
            assert!(matches!(e, DiskError::NotPe32Plus { .. }), "{e}");
        }
        assert_eq!(find_payload(b"MZ"), None);
    }
}
