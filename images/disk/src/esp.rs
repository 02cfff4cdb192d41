//! The EFI system partition: a FAT32 volume holding the loader and its
//! files.

use std::collections::BTreeSet;
use std::io::{Cursor, Write};

use crate::{DiskError, MIB, align_up, derived_uuid};

/// A file to put on the EFI system partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EspFile {
    /// Its path from the volume's root, `/`-separated, e.g.
    /// `"EFI/BOOT/BOOTX64.EFI"` ([`basalt_handoff::esp`] names Basalt's).
    /// Directories on the way are created.
    pub path: String,
    /// Its contents.
    pub data: Vec<u8>,
}

/// The volume label.
const LABEL: [u8; 11] = *b"BASALT     ";

/// Sector size.
const SECTOR: u64 = 512;

/// FAT32 needs at least this many clusters (fewer and firmware takes the
/// volume for FAT16).
const FAT32_MIN_CLUSTERS: u64 = 65525;

/// The clusters we aim for at the least: the minimum with a margin.
const MIN_CLUSTERS: u64 = 66_000;

/// FAT32's largest file.
const MAX_FILE: u64 = u32::MAX as u64;

/// Reserved sectors before the FATs (what `mkfs.fat` and `fatfs` use).
const RESERVED_SECTORS: u64 = 32;

/// Formats a FAT32 volume (label `BASALT`) holding `files`, with the
/// directories their paths name.
///
/// The volume is sized to fit the files with slack (a tenth more and at
/// least 1 MiB free), never below FAT32's minimum of 65525 clusters, and
/// rounded up to a whole MiB. Clusters are 1 KiB below 128 MiB of files
/// (so the smallest volume is about 66 MiB), 2 KiB below 256 MiB and 4 KiB
/// above. Timestamps are FAT's epoch (1980-01-01 00:00) and the volume serial
/// number comes from a hash of the files, so the same files give the same
/// bytes.
pub fn fat32_esp(files: &[EspFile]) -> Result<Vec<u8>, DiskError> {
    let paths = check_paths(files)?;
    let total: u64 = files.iter().map(|f| f.data.len() as u64).sum();
    let cluster: u64 = if total >= 256 * MIB {
        4096
    } else if total >= 128 * MIB {
        2048
    } else {
        1024
    };
    let clusters = clusters_needed(files, &paths, cluster);
    let with_slack = clusters + clusters / 10 + MIB / cluster;
    let data_clusters = with_slack.max(MIN_CLUSTERS);
    let fat_sectors = (data_clusters + 2) * 4 / SECTOR + 1;
    let sectors = RESERVED_SECTORS + 2 * fat_sectors + data_clusters * (cluster / SECTOR);
    let size = align_up(sectors * SECTOR, MIB).unwrap_or(u64::MAX);
    let total_sectors = u32::try_from(size / SECTOR).map_err(|_| DiskError::TooLarge {
        format: "FAT32",
        size,
        max: u64::from(u32::MAX) * SECTOR,
    })?;
    let len = usize::try_from(size).map_err(|_| DiskError::TooLarge {
        format: "FAT32",
        size,
        max: usize::MAX as u64,
    })?;

    let mut volume = Cursor::new(vec![0u8; len]);
    let parts: Vec<&[u8]> = files
        .iter()
        .flat_map(|f| [f.path.as_bytes(), &f.data[..]])
        .collect();
    let serial = derived_uuid(b"basalt-disk fat32 volume id", &parts);
    let options = fatfs::FormatVolumeOptions::new()
        .fat_type(fatfs::FatType::Fat32)
        .bytes_per_sector(SECTOR as u16)
        .bytes_per_cluster(cluster as u32)
        .total_sectors(total_sectors)
        .volume_label(LABEL)
        .volume_id(u32::from_le_bytes([
            serial[0], serial[1], serial[2], serial[3],
        ]));
    fatfs::format_volume(&mut volume, options).map_err(fat_err("formatting"))?;
    volume.set_position(0);
    {
        let options = fatfs::FsOptions::new().time_provider(&FIXED_TIME);
        let fs = fatfs::FileSystem::new(&mut volume, options)
            .map_err(fat_err("mounting the new volume"))?;
        let stats = fs.stats().map_err(fat_err("reading the volume's size"))?;
        if fs.fat_type() != fatfs::FatType::Fat32
            || u64::from(stats.total_clusters()) < FAT32_MIN_CLUSTERS
        {
            return Err(DiskError::Fat {
                what: "formatting".into(),
                source: std::io::Error::other(format!(
                    "the volume came out as {:?} with {} clusters",
                    fs.fat_type(),
                    stats.total_clusters()
                )),
            });
        }
        {
            let root = fs.root_dir();
            for file in files {
                let parts: Vec<&str> = file.path.split('/').collect();
                let (name, dirs) = match parts.split_last() {
                    Some(v) => v,
                    None => continue,
                };
                let mut dir = root.clone();
                for d in dirs {
                    dir = dir.create_dir(d).map_err(|e| DiskError::Fat {
                        what: format!("creating directory {d:?} for {:?}", file.path),
                        source: e,
                    })?;
                }
                let mut out = dir.create_file(name).map_err(|e| DiskError::Fat {
                    what: format!("creating {:?}", file.path),
                    source: e,
                })?;
                out.write_all(&file.data).map_err(|e| DiskError::Fat {
                    what: format!("writing {:?}", file.path),
                    source: e,
                })?;
                out.flush().map_err(|e| DiskError::Fat {
                    what: format!("writing {:?}", file.path),
                    source: e,
                })?;
            }
        }
        fs.unmount().map_err(fat_err("finishing the volume"))?;
    }
    let mut volume = volume.into_inner();
    fix_dot_entries(&mut volume).map_err(fat_err("tidying directories"))?;
    Ok(volume)
}

/// `fatfs` 0.3.6 writes a long-name entry before each directory's `.` and
/// `..` entries, which `fsck.fat` (and the FAT specification) reject: they
/// must be the directory's first two entries. This walks the directory tree
/// and moves them up, marking the long-name slots deleted. It also points
/// `..` of the root's subdirectories at cluster 0, as the specification
/// says (`fatfs` gives the root's cluster).
fn fix_dot_entries(v: &mut [u8]) -> std::io::Result<()> {
    let bad = |what: &str| std::io::Error::other(format!("unexpected FAT layout: {what}"));
    let u16_at = |v: &[u8], at: usize| u16::from_le_bytes([v[at], v[at + 1]]) as usize;
    let u32_at =
        |v: &[u8], at: usize| u32::from_le_bytes([v[at], v[at + 1], v[at + 2], v[at + 3]]) as usize;
    let bytes_per_sector = u16_at(v, 11);
    let cluster_size = bytes_per_sector * usize::from(v[13]);
    let fat = u16_at(v, 14) * bytes_per_sector;
    let data = fat + usize::from(v[16]) * u32_at(v, 36) * bytes_per_sector;
    let root = u32_at(v, 44);
    let cluster_at = |c: usize| data + (c - 2) * cluster_size;
    let next = |v: &[u8], c: usize| u32_at(v, fat + 4 * c) & 0x0FFF_FFFF;

    let mut todo = vec![(root, None)];
    let mut visited = 0usize;
    while let Some((first, parent)) = todo.pop() {
        visited += 1;
        if visited > v.len() / 32 {
            return Err(bad("a directory loop"));
        }
        if let Some(parent) = parent {
            let at = cluster_at(first);
            let slot = |i: usize| at + 32 * i;
            let is_lfn = |v: &[u8], i: usize| v[slot(i) + 11] == 0x0F;
            if v.len() >= slot(4)
                && is_lfn(v, 0)
                && &v[slot(1)..slot(1) + 11] == b".          "
                && is_lfn(v, 2)
                && &v[slot(3)..slot(3) + 11] == b"..         "
            {
                v.copy_within(slot(1)..slot(2), slot(0));
                v.copy_within(slot(3)..slot(4), slot(1));
                for i in 2..4 {
                    v[slot(i)..slot(i + 1)].fill(0);
                    v[slot(i)] = 0xE5;
                }
            }
            let dotdot = slot(1);
            if parent == root && &v[dotdot..dotdot + 11] == b"..         " {
                v[dotdot + 20..dotdot + 22].fill(0);
                v[dotdot + 26..dotdot + 28].fill(0);
            }
        }
        // Find subdirectories in every cluster of this one.
        let mut c = first;
        let mut chain = 0usize;
        while (2..0x0FFF_FFF8).contains(&c) {
            chain += 1;
            let at = cluster_at(c);
            if at + cluster_size > v.len() || chain > v.len() / cluster_size {
                return Err(bad("a directory beyond the volume"));
            }
            for e in v[at..at + cluster_size].chunks(32) {
                if e[0] == 0 {
                    break;
                }
                let attr = e[11];
                if e[0] == 0xE5 || e[0] == b'.' || attr == 0x0F || attr & 0x10 == 0 {
                    continue;
                }
                let sub = (u16_at(e, 20) << 16) | u16_at(e, 26);
                todo.push((sub, Some(first)));
            }
            c = next(v, c);
        }
    }
    Ok(())
}

/// The time every file and directory gets: FAT's epoch, 1980-01-01 00:00
/// (`fatfs` without `chrono` would write date 0, which has month and day 0).
#[derive(Debug)]
struct FixedTime;

static FIXED_TIME: FixedTime = FixedTime;

impl fatfs::TimeProvider for FixedTime {
    fn get_current_date(&self) -> fatfs::Date {
        fatfs::Date {
            year: 1980,
            month: 1,
            day: 1,
        }
    }

    fn get_current_date_time(&self) -> fatfs::DateTime {
        fatfs::DateTime {
            date: self.get_current_date(),
            time: fatfs::Time {
                hour: 0,
                min: 0,
                sec: 0,
                millis: 0,
            },
        }
    }
}

fn fat_err(what: &'static str) -> impl Fn(std::io::Error) -> DiskError {
    move |source| DiskError::Fat {
        what: what.into(),
        source,
    }
}

/// Checks every path and returns the set of directories they need
/// (upper-cased, `/`-joined, without the root).
fn check_paths(files: &[EspFile]) -> Result<BTreeSet<String>, DiskError> {
    let mut seen = BTreeSet::new();
    let mut dirs = BTreeSet::new();
    for f in files {
        let bad = |reason| DiskError::BadEspPath {
            path: f.path.clone(),
            reason,
        };
        if f.data.len() as u64 > MAX_FILE {
            return Err(DiskError::EspFileTooLarge {
                path: f.path.clone(),
                size: f.data.len() as u64,
            });
        }
        if f.path.is_empty() {
            return Err(bad("the path is empty"));
        }
        if f.path.starts_with('/') || f.path.ends_with('/') {
            return Err(bad("a path starts and ends with a name, not '/'"));
        }
        let parts: Vec<&str> = f.path.split('/').collect();
        for p in &parts {
            if p.is_empty() {
                return Err(bad("the path has an empty component ('//')"));
            }
            if *p == "." || *p == ".." {
                return Err(bad("the path has a '.' or '..' component"));
            }
            if p.len() > 255 {
                return Err(bad("a name is longer than 255 bytes"));
            }
            if p.ends_with('.') || p.ends_with(' ') {
                return Err(bad("a name ends with '.' or a space"));
            }
            if p.chars()
                .any(|c| c.is_control() || "\\:*?\"<>|".contains(c))
            {
                return Err(bad(
                    "a name holds a character FAT forbids (\\ : * ? \" < > | or a control character)",
                ));
            }
        }
        let upper = f.path.to_uppercase();
        if !seen.insert(upper.clone()) {
            return Err(DiskError::DuplicateEspPath {
                path: f.path.clone(),
            });
        }
        let up: Vec<&str> = upper.split('/').collect();
        for i in 1..up.len() {
            dirs.insert(up[..i].join("/"));
        }
    }
    for f in files {
        if dirs.contains(&f.path.to_uppercase()) {
            return Err(DiskError::BadEspPath {
                path: f.path.clone(),
                reason: "it is both a file and a directory on the way to another file",
            });
        }
    }
    Ok(dirs)
}

/// Clusters the files and their directories take (an upper bound: long file
/// names cost up to 21 directory entries each).
fn clusters_needed(files: &[EspFile], dirs: &BTreeSet<String>, cluster: u64) -> u64 {
    let data: u64 = files
        .iter()
        .map(|f| (f.data.len() as u64).div_ceil(cluster))
        .sum();
    // Each name: one short entry plus one long-name entry per 13 characters;
    // each directory also holds "." and "..".
    let entries = |name: &str| 1 + (name.chars().count() as u64).div_ceil(13);
    let mut dir_bytes = 0u64;
    for f in files {
        dir_bytes += entries(f.path.rsplit('/').next().unwrap_or("")) * 32;
    }
    for d in dirs {
        dir_bytes += (entries(d.rsplit('/').next().unwrap_or("")) + 2) * 32;
    }
    // Every directory, the root too, may start a cluster of its own.
    data + dir_bytes.div_ceil(cluster) + dirs.len() as u64 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, data: &[u8]) -> EspFile {
        EspFile {
            path: path.into(),
            data: data.to_vec(),
        }
    }

    #[test]
    fn bad_paths_are_refused_with_the_path() {
        for p in ["", "/EFI/x", "EFI//x", "EFI/../x", "a:b", "EFI/x/"] {
            let e = fat32_esp(&[file(p, b"x")]).unwrap_err();
            assert!(matches!(e, DiskError::BadEspPath { .. }), "{p}: {e}");
        }
        let e = fat32_esp(&[file("EFI/a", b"1"), file("efi/A", b"2")]).unwrap_err();
        assert!(matches!(e, DiskError::DuplicateEspPath { .. }), "{e}");
        let e = fat32_esp(&[file("EFI/a", b"1"), file("EFI/a/b", b"2")]).unwrap_err();
        assert!(matches!(e, DiskError::BadEspPath { .. }), "{e}");
    }

    #[test]
    fn a_small_volume_is_fat32_whole_mib_and_reads_back() {
        let files = [
            file("EFI/BOOT/BOOTX64.EFI", &[0xAB; 5000]),
            file("basalt/cmdline", b"quiet"),
            file("basalt/a long name.txt", b"long"),
        ];
        let v = fat32_esp(&files).unwrap();
        assert_eq!(v.len() as u64 % MIB, 0);
        assert!(v.len() as u64 >= 64 * MIB, "{}", v.len());
        assert_eq!(v, fat32_esp(&files).unwrap(), "deterministic");
        let mut c = Cursor::new(v);
        let fs = fatfs::FileSystem::new(&mut c, fatfs::FsOptions::new()).unwrap();
        assert_eq!(fs.fat_type(), fatfs::FatType::Fat32);
        assert_eq!(fs.volume_label(), "BASALT");
        let entry = fs.root_dir().iter().find_map(|e| e.ok()).unwrap();
        assert_eq!(entry.modified().date.month, 1);
        assert_eq!(entry.modified().date.day, 1);
        let mut f = fs.root_dir().open_file("EFI/BOOT/BOOTX64.EFI").unwrap();
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut back).unwrap();
        assert_eq!(back, vec![0xAB; 5000]);
    }
}
