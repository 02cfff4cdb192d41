//! qcow2 (version 3), QEMU's image format.
//!
//! The file, in 64 KiB clusters: the header; the L1 table; the refcount
//! table; the refcount blocks (16-bit counts); the L2 tables; then the
//! data clusters, in the order of the disk. Clusters of the disk that are
//! all zero are not allocated (they read as zero). Every allocated cluster
//! has a refcount of 1 and its L1/L2 entry has the COPIED flag, as QEMU
//! itself writes them, so `qemu-img check` finds nothing to fix.

use std::io::Write;

use crate::{DiskError, io_err};

const CLUSTER_BITS: u32 = 16;
const CLUSTER: u64 = 1 << CLUSTER_BITS;
/// 64-bit entries per L2 table.
const L2_ENTRIES: u64 = CLUSTER / 8;
/// 16-bit refcounts per refcount block.
const REFCOUNTS_PER_BLOCK: u64 = CLUSTER / 2;
/// "The cluster's refcount is exactly one" (L1 and L2 entries).
const COPIED: u64 = 1 << 63;
const HEADER_LEN: u32 = 104;

/// Writes `raw` (a disk image) to `out` as qcow2 version 3 with 64 KiB
/// clusters and a virtual size of `raw.len()`, allocating only the clusters
/// that hold a non-zero byte.
pub fn qcow2(raw: &[u8], out: &mut impl Write) -> Result<(), DiskError> {
    let size = raw.len() as u64;
    let virtual_clusters = size.div_ceil(CLUSTER);
    let data: Vec<u64> = (0..virtual_clusters)
        .filter(|&i| cluster_of(raw, i).iter().any(|&b| b != 0))
        .collect();
    let mut l2_tables: Vec<u64> = data.iter().map(|i| i / L2_ENTRIES).collect();
    l2_tables.dedup();

    let l1_size = virtual_clusters.div_ceil(L2_ENTRIES);
    let l1_clusters = (l1_size * 8).div_ceil(CLUSTER).max(1);
    let fixed = 1 + l1_clusters + l2_tables.len() as u64 + data.len() as u64;
    // The refcount structures count themselves: grow them until they cover
    // every cluster of the file.
    let (mut rt_clusters, mut rb_count) = (1u64, 1u64);
    loop {
        let total = fixed + rt_clusters + rb_count;
        let need_rb = total.div_ceil(REFCOUNTS_PER_BLOCK);
        let need_rt = (need_rb * 8).div_ceil(CLUSTER);
        if need_rb == rb_count && need_rt == rt_clusters {
            break;
        }
        rb_count = need_rb.max(rb_count);
        rt_clusters = need_rt.max(rt_clusters);
    }
    let total = fixed + rt_clusters + rb_count;
    if total.checked_mul(CLUSTER).is_none() || u32::try_from(l1_size).is_err() {
        return Err(DiskError::TooLarge {
            format: "qcow2",
            size,
            max: u64::from(u32::MAX) * L2_ENTRIES * CLUSTER,
        });
    }

    let l1_at = 1;
    let rt_at = l1_at + l1_clusters;
    let rb_at = rt_at + rt_clusters;
    let l2_at = rb_at + rb_count;
    let data_at = l2_at + l2_tables.len() as u64;

    let mut header = vec![0u8; CLUSTER as usize];
    let mut put = |at: usize, bytes: &[u8]| header[at..at + bytes.len()].copy_from_slice(bytes);
    put(0, b"QFI\xfb");
    put(4, &3u32.to_be_bytes());
    put(20, &CLUSTER_BITS.to_be_bytes());
    put(24, &size.to_be_bytes());
    put(36, &(l1_size as u32).to_be_bytes());
    put(40, &(l1_at * CLUSTER).to_be_bytes());
    put(48, &(rt_at * CLUSTER).to_be_bytes());
    put(56, &(rt_clusters as u32).to_be_bytes());
    put(96, &4u32.to_be_bytes()); // refcount_order: 16-bit refcounts
    put(100, &HEADER_LEN.to_be_bytes());
    // Bytes 104..112 stay zero: the end of the header extensions.
    out.write_all(&header).map_err(io_err("the qcow2 header"))?;

    let mut l1 = vec![0u64; (l1_clusters * L2_ENTRIES) as usize];
    for (n, t) in l2_tables.iter().enumerate() {
        l1[*t as usize] = ((l2_at + n as u64) * CLUSTER) | COPIED;
    }
    write_be64(out, &l1).map_err(io_err("the qcow2 L1 table"))?;

    let mut rt = vec![0u64; (rt_clusters * L2_ENTRIES) as usize];
    for (n, e) in rt.iter_mut().take(rb_count as usize).enumerate() {
        *e = (rb_at + n as u64) * CLUSTER;
    }
    write_be64(out, &rt).map_err(io_err("the qcow2 refcount table"))?;

    let mut rb = vec![0u8; (rb_count * CLUSTER) as usize];
    for c in 0..total as usize {
        rb[2 * c + 1] = 1;
    }
    out.write_all(&rb)
        .map_err(io_err("the qcow2 refcount blocks"))?;

    let mut next = data_at;
    let mut at = 0;
    for t in &l2_tables {
        let mut l2 = vec![0u64; L2_ENTRIES as usize];
        while at < data.len() && data[at] / L2_ENTRIES == *t {
            l2[(data[at] % L2_ENTRIES) as usize] = (next * CLUSTER) | COPIED;
            next += 1;
            at += 1;
        }
        write_be64(out, &l2).map_err(io_err("a qcow2 L2 table"))?;
    }

    let zeros = vec![0u8; CLUSTER as usize];
    for &i in &data {
        let c = cluster_of(raw, i);
        out.write_all(c).map_err(io_err("the qcow2 data"))?;
        out.write_all(&zeros[c.len()..])
            .map_err(io_err("the qcow2 data"))?;
    }
    out.flush().map_err(io_err("the qcow2 image"))
}

/// The `i`th cluster of `raw` (the last one may be short).
fn cluster_of(raw: &[u8], i: u64) -> &[u8] {
    let start = (i * CLUSTER) as usize;
    let end = (start + CLUSTER as usize).min(raw.len());
    &raw[start..end]
}

fn write_be64(out: &mut impl Write, v: &[u64]) -> std::io::Result<()> {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_be_bytes()).collect();
    out.write_all(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_nonzero_clusters_are_allocated() {
        let mut raw = vec![0u8; 10 * CLUSTER as usize + 100];
        raw[3 * CLUSTER as usize + 5] = 1;
        raw[10 * CLUSTER as usize + 99] = 2;
        let mut out = Vec::new();
        qcow2(&raw, &mut out).unwrap();
        // header, L1, refcount table, one refcount block, one L2, 2 data
        assert_eq!(out.len() as u64, 7 * CLUSTER);
        assert_eq!(&out[..4], b"QFI\xfb");
        assert_eq!(&out[24..32], &(raw.len() as u64).to_be_bytes());
    }
}
