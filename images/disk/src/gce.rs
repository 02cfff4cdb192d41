//! Google Compute Engine's import format: `disk.raw` in a gzip'd GNU tar.
//!
//! GCE wants the raw disk's size to be a whole number of GiB. The file is
//! stored sparse (an old-GNU `S` entry, as `tar --format=oldgnu -S` writes
//! and GCE's documentation uses), so the zeros that pad it, and any other
//! all-zero stretch, take no room in the archive and none in memory.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use tar::{EntryType, GnuExtSparseHeader, Header};

use crate::{DiskError, GIB, align_up, io_err};

/// The granularity at which zero stretches become holes.
const BLOCK: usize = 64 << 10;

/// The name GCE looks for in the archive.
pub const GCE_DISK_NAME: &str = "disk.raw";

/// Writes `raw` to `out` as GCE imports it (`gcloud compute images create
/// --source-uri`): a gzip'd GNU-format tar with one file, `disk.raw`, whose
/// size is `raw.len()` rounded up to a whole GiB (at least 1 GiB). The file
/// is a GNU sparse entry: only the 64 KiB blocks of `raw` that hold a
/// non-zero byte are stored. The entry's time is the epoch and the gzip
/// header has no time, so the output is reproducible.
pub fn gce_tar_gz(raw: &[u8], out: &mut impl Write) -> Result<(), DiskError> {
    let len = raw.len() as u64;
    let real = align_up(len, GIB)
        .ok_or(DiskError::TooLarge {
            format: "GCE disk",
            size: len,
            max: u64::MAX - GIB,
        })?
        .max(GIB);
    let mut regions = data_regions(raw);
    let stored: u64 = regions.iter().map(|(_, n)| n).sum();
    // A file that ends in a hole ends with an empty region at its end, as GNU
    // tar writes it.
    if regions.last().is_none_or(|(o, n)| o + n < real) {
        regions.push((real, 0));
    }

    let mut header = Header::new_gnu();
    let bad = |e| DiskError::Io {
        what: "the tar header",
        source: e,
    };
    header.set_path(GCE_DISK_NAME).map_err(bad)?;
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(EntryType::GNUSparse);
    header.set_size(stored);
    let ext_needed;
    {
        let Some(gnu) = header.as_gnu_mut() else {
            return Err(bad(std::io::Error::other("not a GNU header")));
        };
        gnu.set_real_size(real);
        for (slot, (o, n)) in gnu.sparse.iter_mut().zip(&regions) {
            slot.set_offset(*o);
            slot.set_length(*n);
        }
        ext_needed = regions.len() > gnu.sparse.len();
        gnu.set_is_extended(ext_needed);
    }
    header.set_cksum();

    let mut gz = GzEncoder::new(out, Compression::default());
    let w = io_err("the GCE tar.gz");
    gz.write_all(header.as_bytes()).map_err(w)?;
    if ext_needed {
        let mut rest = regions[4..].chunks(21).peekable();
        while let Some(chunk) = rest.next() {
            let mut ext = GnuExtSparseHeader::new();
            for (slot, (o, n)) in ext.sparse.iter_mut().zip(chunk) {
                slot.set_offset(*o);
                slot.set_length(*n);
            }
            ext.set_is_extended(rest.peek().is_some());
            gz.write_all(ext.as_bytes())
                .map_err(io_err("the GCE tar.gz"))?;
        }
    }
    for &(o, n) in &regions {
        gz.write_all(&raw[o.min(len) as usize..(o + n).min(len) as usize])
            .map_err(io_err("the GCE tar.gz"))?;
    }
    let pad = (512 - (stored % 512) as usize) % 512;
    // The padding to a whole block, then the archive's end: two zero blocks.
    gz.write_all(&[0u8; 1536][..pad + 1024])
        .map_err(io_err("the GCE tar.gz"))?;
    gz.finish()
        .map_err(io_err("the GCE tar.gz"))?
        .flush()
        .map_err(io_err("the GCE tar.gz"))
}

/// The stretches of `raw` (offset, length) made of [`BLOCK`]-sized blocks
/// with a non-zero byte, merged where they touch.
fn data_regions(raw: &[u8]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (i, block) in raw.chunks(BLOCK).enumerate() {
        if block.iter().all(|&b| b == 0) {
            continue;
        }
        let at = (i * BLOCK) as u64;
        let n = block.len() as u64;
        match out.last_mut() {
            Some((o, len)) if *o + *len == at => *len += n,
            _ => out.push((at, n)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_merge_and_skip_zeros() {
        let mut raw = vec![0u8; 5 * BLOCK + 10];
        raw[0] = 1;
        raw[BLOCK] = 1;
        raw[3 * BLOCK + 1] = 1;
        raw[5 * BLOCK + 9] = 1;
        assert_eq!(
            data_regions(&raw),
            vec![
                (0, 2 * BLOCK as u64),
                (3 * BLOCK as u64, BLOCK as u64),
                (5 * BLOCK as u64, 10)
            ]
        );
        assert!(data_regions(&[0; 100]).is_empty());
    }
}
