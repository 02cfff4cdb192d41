//! A GPT disk with one EFI system partition.
//!
//! Written here rather than with the `gpt` crate: the layout is fixed (one
//! partition at 1 MiB), and writing it directly keeps the GUIDs derived from
//! the content, so the image is reproducible.

use crate::{DiskError, MIB, align_up, derived_uuid};

/// Logical block size.
const LBA: u64 = 512;

/// Where the EFI system partition starts: 1 MiB, as partitioning tools
/// align it.
pub const ESP_START: u64 = MIB;

/// The EFI System partition type, `C12A7328-F81F-11D2-BA4B-00A0C93EC93B`, in
/// the RFC 9562 (big-endian) byte order.
pub const ESP_TYPE_GUID: [u8; 16] = [
    0xC1, 0x2A, 0x73, 0x28, 0xF8, 0x1F, 0x11, 0xD2, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B,
];

/// The partition's name.
pub const ESP_PARTITION_NAME: &str = "EFI system partition";

/// Partition entries in each table (the UEFI minimum array is 16 KiB).
const ENTRIES: u64 = 128;

/// Bytes per partition entry.
const ENTRY_SIZE: u64 = 128;

/// Sectors the partition entry array takes.
const ARRAY_SECTORS: u64 = ENTRIES * ENTRY_SIZE / LBA;

/// The largest disk whose sector count fits GPT's 64-bit LBAs in practice
/// (and whose bytes fit in memory): we cap at what a `u64` of bytes holds.
const MAX_DISK: u64 = u64::MAX / 2;

/// Puts `esp` (a FAT volume, as [`crate::fat32_esp`] makes) on a GPT disk:
/// a protective MBR, the primary GPT at LBA 1 with its partition array at
/// LBA 2, one partition of type EFI System named
/// [`ESP_PARTITION_NAME`] from [`ESP_START`] holding `esp` (padded to a
/// whole sector), and the backup array and header in the disk's last 33
/// sectors. The disk is a whole number of MiB.
///
/// The disk and partition GUIDs are derived from a SHA-256 of `esp`, so the
/// same volume gives the same disk.
pub fn gpt_disk(esp: &[u8]) -> Result<Vec<u8>, DiskError> {
    let esp_len = esp.len() as u64;
    let too_large = || DiskError::TooLarge {
        format: "GPT disk",
        size: esp_len,
        max: MAX_DISK,
    };
    let esp_sectors = esp_len.div_ceil(LBA).max(1);
    let first = ESP_START / LBA;
    let last = first + esp_sectors - 1;
    let min_size = (last + 1 + ARRAY_SECTORS + 1) * LBA;
    let size = align_up(min_size, MIB)
        .filter(|s| *s <= MAX_DISK)
        .ok_or_else(too_large)?;
    let len = usize::try_from(size).map_err(|_| too_large())?;
    let sectors = size / LBA;
    let last_lba = sectors - 1;

    let disk_guid = derived_uuid(b"basalt-disk gpt disk guid", &[esp]);
    let part_guid = derived_uuid(b"basalt-disk gpt esp guid", &[esp]);

    let mut disk = vec![0u8; len];
    protective_mbr(&mut disk[..LBA as usize], sectors);

    let mut entry = [0u8; ENTRY_SIZE as usize];
    entry[0..16].copy_from_slice(&gpt_guid(ESP_TYPE_GUID));
    entry[16..32].copy_from_slice(&gpt_guid(part_guid));
    entry[32..40].copy_from_slice(&first.to_le_bytes());
    entry[40..48].copy_from_slice(&last.to_le_bytes());
    for (i, u) in ESP_PARTITION_NAME.encode_utf16().take(36).enumerate() {
        entry[56 + 2 * i..58 + 2 * i].copy_from_slice(&u.to_le_bytes());
    }
    let mut array = vec![0u8; (ENTRIES * ENTRY_SIZE) as usize];
    array[..entry.len()].copy_from_slice(&entry);
    let array_crc = crc32fast::hash(&array);

    let first_usable = 2 + ARRAY_SECTORS;
    let last_usable = last_lba - ARRAY_SECTORS - 1;
    let backup_array = last_lba - ARRAY_SECTORS;
    let primary = header(
        1,
        last_lba,
        first_usable,
        last_usable,
        disk_guid,
        2,
        array_crc,
    );
    let backup = header(
        last_lba,
        1,
        first_usable,
        last_usable,
        disk_guid,
        backup_array,
        array_crc,
    );
    let at = |lba: u64| (lba * LBA) as usize;
    disk[at(1)..at(1) + primary.len()].copy_from_slice(&primary);
    disk[at(2)..at(2) + array.len()].copy_from_slice(&array);
    disk[at(backup_array)..at(backup_array) + array.len()].copy_from_slice(&array);
    disk[at(last_lba)..at(last_lba) + backup.len()].copy_from_slice(&backup);
    disk[at(first)..at(first) + esp.len()].copy_from_slice(esp);
    Ok(disk)
}

/// A GUID in GPT's on-disk order (the first three fields little-endian)
/// from RFC 9562 byte order.
fn gpt_guid(u: [u8; 16]) -> [u8; 16] {
    let mut g = u;
    g[0..4].reverse();
    g[4..6].reverse();
    g[6..8].reverse();
    g
}

/// The protective MBR: one partition of type 0xEE covering the disk (or
/// as much of it as 32 bits count).
fn protective_mbr(sector: &mut [u8], sectors: u64) {
    let p = &mut sector[446..462];
    p[0] = 0; // not bootable
    p[1..4].copy_from_slice(&[0x00, 0x02, 0x00]); // CHS of LBA 1
    p[4] = 0xEE;
    p[5..8].copy_from_slice(&[0xFF, 0xFF, 0xFF]);
    p[8..12].copy_from_slice(&1u32.to_le_bytes());
    let count = u32::try_from(sectors - 1).unwrap_or(u32::MAX);
    p[12..16].copy_from_slice(&count.to_le_bytes());
    sector[510] = 0x55;
    sector[511] = 0xAA;
}

/// A GPT header (92 bytes) with its CRC.
fn header(
    my_lba: u64,
    alternate_lba: u64,
    first_usable: u64,
    last_usable: u64,
    disk_guid: [u8; 16],
    array_lba: u64,
    array_crc: u32,
) -> [u8; 92] {
    let mut h = [0u8; 92];
    h[0..8].copy_from_slice(b"EFI PART");
    h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
    h[12..16].copy_from_slice(&92u32.to_le_bytes());
    h[24..32].copy_from_slice(&my_lba.to_le_bytes());
    h[32..40].copy_from_slice(&alternate_lba.to_le_bytes());
    h[40..48].copy_from_slice(&first_usable.to_le_bytes());
    h[48..56].copy_from_slice(&last_usable.to_le_bytes());
    h[56..72].copy_from_slice(&gpt_guid(disk_guid));
    h[72..80].copy_from_slice(&array_lba.to_le_bytes());
    h[80..84].copy_from_slice(&(ENTRIES as u32).to_le_bytes());
    h[84..88].copy_from_slice(&(ENTRY_SIZE as u32).to_le_bytes());
    h[88..92].copy_from_slice(&array_crc.to_le_bytes());
    let crc = crc32fast::hash(&h);
    h[16..20].copy_from_slice(&crc.to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_esp_type_guid_is_stored_mixed_endian() {
        assert_eq!(
            gpt_guid(ESP_TYPE_GUID),
            [
                0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E,
                0xC9, 0x3B
            ]
        );
    }

    #[test]
    fn a_small_disk_is_two_mib_and_deterministic() {
        let esp = vec![7u8; 1000];
        let d = gpt_disk(&esp).unwrap();
        assert_eq!(d.len() as u64, 2 * MIB);
        assert_eq!(&d[MIB as usize..MIB as usize + 1000], &esp[..]);
        assert_eq!(d, gpt_disk(&esp).unwrap());
        assert_ne!(d, gpt_disk(&[8u8; 1000]).unwrap());
        assert_eq!(&d[512..520], b"EFI PART");
        assert_eq!(&d[d.len() - 512..d.len() - 504], b"EFI PART");
    }
}
