//! Fixed VHD, as Azure imports it: the disk's bytes, then a 512-byte
//! footer (Microsoft's "Virtual Hard Disk Image Format Specification").

use std::io::Write;

use crate::{DiskError, MIB, align_up, derived_uuid, io_err};

/// The largest VHD Azure takes (and a little under the format's 2 TiB CHS
/// limit): 2040 GiB.
const MAX_VHD: u64 = 2040 << 30;

/// Writes `raw` to `out` as a fixed VHD for Azure: `raw` zero-padded to a
/// whole MiB (Azure requires the virtual size to be one), then the footer:
/// cookie `conectix`, version 1.0, disk type 2 (fixed), original and
/// current size the padded size, the CHS geometry the specification's
/// algorithm gives, creator application `bslt` on `Wi2k`, a UUID derived
/// from a hash of the disk, a zero timestamp (so images are reproducible)
/// and the checksum.
///
/// QEMU, like Virtual PC, sizes a VHD from its CHS geometry unless the
/// creator is one it knows to use the current size; open it with
/// `force_size_calc=current_size` to see Azure's size.
pub fn vhd_fixed(raw: &[u8], out: &mut impl Write) -> Result<(), DiskError> {
    let len = raw.len() as u64;
    let size = align_up(len, MIB)
        .filter(|s| *s <= MAX_VHD)
        .ok_or(DiskError::TooLarge {
            format: "VHD",
            size: len,
            max: MAX_VHD,
        })?;
    out.write_all(raw).map_err(io_err("the VHD's data"))?;
    let zeros = vec![0u8; MIB as usize];
    let mut pad = size - len;
    while pad > 0 {
        let n = pad.min(MIB) as usize;
        out.write_all(&zeros[..n])
            .map_err(io_err("the VHD's padding"))?;
        pad -= n as u64;
    }
    let uuid = derived_uuid(b"basalt-disk vhd unique id", &[raw]);
    out.write_all(&footer(size, uuid))
        .map_err(io_err("the VHD footer"))?;
    out.flush().map_err(io_err("the VHD"))
}

/// The 512-byte footer of a fixed disk of `size` bytes.
pub(crate) fn footer(size: u64, uuid: [u8; 16]) -> [u8; 512] {
    let mut f = [0u8; 512];
    f[0..8].copy_from_slice(b"conectix");
    f[8..12].copy_from_slice(&2u32.to_be_bytes()); // features: reserved bit
    f[12..16].copy_from_slice(&0x0001_0000u32.to_be_bytes());
    f[16..24].copy_from_slice(&u64::MAX.to_be_bytes()); // data offset: none
    // 24..28: timestamp, seconds since 2000-01-01: left 0.
    f[28..32].copy_from_slice(b"bslt");
    f[32..36].copy_from_slice(&0x0001_0000u32.to_be_bytes());
    f[36..40].copy_from_slice(b"Wi2k");
    f[40..48].copy_from_slice(&size.to_be_bytes());
    f[48..56].copy_from_slice(&size.to_be_bytes());
    let (c, h, s) = chs(size / 512);
    f[56..58].copy_from_slice(&c.to_be_bytes());
    f[58] = h;
    f[59] = s;
    f[60..64].copy_from_slice(&2u32.to_be_bytes()); // fixed
    f[68..84].copy_from_slice(&uuid);
    let sum: u32 = f.iter().map(|&b| u32::from(b)).sum();
    f[64..68].copy_from_slice(&(!sum).to_be_bytes());
    f
}

/// Cylinders, heads and sectors per track for `sectors` 512-byte sectors,
/// by the VHD specification's algorithm.
fn chs(sectors: u64) -> (u16, u8, u8) {
    let sectors = sectors.min(65535 * 16 * 255);
    let (spt, heads, cyl_times_heads);
    if sectors >= 65535 * 16 * 63 {
        spt = 255;
        heads = 16;
        cyl_times_heads = sectors / spt;
    } else {
        let mut s = 17;
        let mut cth = sectors / s;
        let mut h = cth.div_ceil(1024).max(4);
        if cth >= h * 1024 || h > 16 {
            s = 31;
            h = 16;
            cth = sectors / s;
        }
        if cth >= h * 1024 {
            s = 63;
            h = 16;
            cth = sectors / s;
        }
        spt = s;
        heads = h;
        cyl_times_heads = cth;
    }
    let cylinders = cyl_times_heads / heads;
    (
        u16::try_from(cylinders).unwrap_or(u16::MAX),
        heads as u8,
        spt as u8,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_follows_the_spec() {
        // 64 MiB: 131072 sectors -> 17 spt gives 7710 c*h, 8 heads -> 963 cyl
        assert_eq!(chs(131072), (963, 8, 17));
        // the cap
        assert_eq!(chs(u64::MAX), (65535, 16, 255));
        // 2 GiB
        assert_eq!(chs(4 << 20), (4161, 16, 63));
    }

    #[test]
    fn the_footer_checksums_to_all_ones() {
        let f = footer(3 * MIB, [1; 16]);
        let stored = u32::from_be_bytes([f[64], f[65], f[66], f[67]]);
        let mut g = f;
        g[64..68].fill(0);
        let sum: u32 = g.iter().map(|&b| u32::from(b)).sum();
        assert_eq!(stored, !sum);
    }

    #[test]
    fn data_is_padded_to_a_mib_then_footed() {
        let mut out = Vec::new();
        vhd_fixed(&[1, 2, 3], &mut out).unwrap();
        assert_eq!(out.len() as u64, MIB + 512);
        assert_eq!(&out[..3], &[1, 2, 3]);
        assert_eq!(&out[MIB as usize..MIB as usize + 8], b"conectix");
    }
}
