//! The images checked by the real tools that read them: `qemu-img`,
//! `fsck.fat`, mtools, `sfdisk`, GNU tar, `file` and `objdump`.
//!
//! A missing tool skips its test with a note, except under CI
//! (`CI=true`), where it fails and names the Debian package to install.

// The helpers below are test code too: a failed step should stop the test.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

use basalt_disk::{
    EspFile, GIB, MIB, efi_with_payload, fat32_esp, find_payload, gce_tar_gz, gpt_disk, payload,
    qcow2, vhd_fixed,
};
use basalt_handoff::{PayloadHeader, esp};

/// Whether every tool is on `PATH`; panics under CI when one is not.
fn have(tools: &[(&str, &str)]) -> bool {
    for (tool, package) in tools {
        let found = std::env::var_os("PATH")
            .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(tool).is_file()));
        if !found {
            let msg = format!("`{tool}` is missing: apt-get install {package}");
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{msg}");
            }
            eprintln!("skipping: {msg}");
            return false;
        }
    }
    true
}

/// A fresh scratch directory for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("basalt-disk-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, data).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a command, panicking with its output unless it succeeds.
fn run(cmd: &mut Command) -> String {
    let out: Output = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Bytes that are not all zero and differ from file to file.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn esp_files() -> Vec<EspFile> {
    vec![
        EspFile {
            path: esp::LOADER_X86_64.into(),
            data: pattern(300_000, 1),
        },
        EspFile {
            path: esp::KERNEL.into(),
            data: pattern(2_000_000, 2),
        },
        EspFile {
            path: esp::BUNDLE.into(),
            data: pattern(70_000, 3),
        },
        EspFile {
            path: esp::CMDLINE.into(),
            data: b"quiet -- app.wasm".to_vec(),
        },
    ]
}

/// A JSON number field of `qemu-img info --output=json`.
fn json_u64(json: &str, key: &str) -> u64 {
    let at = json
        .rfind(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("{key} in {json}"));
    json[at + key.len() + 3..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

fn json_str<'a>(json: &'a str, key: &str) -> &'a str {
    let at = json
        .rfind(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("{key} in {json}"));
    let rest = json[at + key.len() + 3..].trim_start();
    let rest = &rest[1..];
    &rest[..rest.find('"').unwrap()]
}

#[test]
fn the_esp_passes_fsck_and_mtools_reads_every_file_back() {
    if !have(&[
        ("fsck.fat", "dosfstools"),
        ("mtype", "mtools"),
        ("mlabel", "mtools"),
    ]) {
        return;
    }
    let s = Scratch::new("esp");
    let files = esp_files();
    let volume = fat32_esp(&files).unwrap();
    assert_eq!(volume.len() as u64 % MIB, 0);
    let img = s.write("esp.img", &volume);

    let fsck = run(Command::new("fsck.fat").arg("-n").arg("-v").arg(&img));
    assert!(fsck.contains("2 FATs, 32 bit entries"), "{fsck}");
    for word in [
        "differ",
        "Dirty",
        "Free cluster summary wrong",
        "Fix",
        "invalid",
    ] {
        assert!(!fsck.contains(word), "fsck.fat complains ({word}):\n{fsck}");
    }
    for f in &files {
        let back = Command::new("mtype")
            .arg("-i")
            .arg(&img)
            .arg(format!("::/{}", f.path))
            .env("MTOOLS_SKIP_CHECK", "1")
            .output()
            .unwrap();
        assert!(back.status.success(), "mtype {}: {back:?}", f.path);
        assert!(back.stdout == f.data, "{} reads back different", f.path);
    }
    let label = run(Command::new("mlabel")
        .arg("-i")
        .arg(&img)
        .arg("-s")
        .arg("::"));
    assert!(label.contains("BASALT"), "{label}");
}

#[test]
fn the_esp_grows_and_switches_to_larger_clusters_for_large_files() {
    if !have(&[("fsck.fat", "dosfstools")]) {
        return;
    }
    let s = Scratch::new("esp-large");
    let files = vec![EspFile {
        path: "basalt/bundle.tar".into(),
        data: pattern(140 << 20, 9),
    }];
    let volume = fat32_esp(&files).unwrap();
    assert!(volume.len() as u64 >= 140 * MIB);
    assert_eq!(volume.len() as u64 % MIB, 0);
    let img = s.write("esp.img", &volume);
    let fsck = run(Command::new("fsck.fat").arg("-n").arg("-v").arg(&img));
    assert!(fsck.contains("2048 bytes per cluster"), "{fsck}");
    assert!(!fsck.contains("differ"), "{fsck}");
}

/// Reads a little-endian integer.
fn le(b: &[u8]) -> u64 {
    b.iter().rev().fold(0, |acc, &x| (acc << 8) | u64::from(x))
}

#[test]
fn the_gpt_disk_is_valid_and_its_partition_holds_the_esp() {
    let volume = fat32_esp(&esp_files()).unwrap();
    let disk = gpt_disk(&volume).unwrap();
    assert_eq!(disk.len() as u64 % MIB, 0);
    assert_eq!(disk, gpt_disk(&volume).unwrap(), "reproducible");
    let sectors = disk.len() as u64 / 512;

    // Protective MBR.
    assert_eq!(&disk[510..512], &[0x55, 0xAA]);
    assert_eq!(disk[446 + 4], 0xEE);
    assert_eq!(le(&disk[446 + 8..446 + 12]), 1);

    // Both headers: CRCs, locations, and the same entry array.
    for (my, other) in [(1, sectors - 1), (sectors - 1, 1)] {
        let h = &disk[(my * 512) as usize..(my * 512 + 92) as usize];
        assert_eq!(&h[..8], b"EFI PART");
        let mut z = h.to_vec();
        z[16..20].fill(0);
        assert_eq!(le(&h[16..20]) as u32, crc32fast::hash(&z), "header CRC");
        assert_eq!(le(&h[24..32]), my);
        assert_eq!(le(&h[32..40]), other);
        let array_lba = le(&h[72..80]);
        let array = &disk[(array_lba * 512) as usize..(array_lba * 512 + 128 * 128) as usize];
        assert_eq!(le(&h[88..92]) as u32, crc32fast::hash(array), "array CRC");
        let e = &array[..128];
        assert_eq!(
            &e[..16],
            &[
                0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E,
                0xC9, 0x3B
            ]
        );
        assert_eq!(le(&e[32..40]), 2048);
        assert_eq!(le(&e[40..48]), 2048 + volume.len() as u64 / 512 - 1);
        let name: Vec<u16> = e[56..128]
            .chunks(2)
            .map(|c| le(c) as u16)
            .take_while(|&c| c != 0)
            .collect();
        assert_eq!(String::from_utf16(&name).unwrap(), "EFI system partition");
    }
    assert_eq!(
        &disk[MIB as usize..MIB as usize + volume.len()],
        &volume[..]
    );

    if !have(&[("sfdisk", "fdisk"), ("mtype", "mtools")]) {
        return;
    }
    let s = Scratch::new("gpt");
    let img = s.write("disk.img", &disk);
    let json = run(Command::new("sfdisk").arg("--json").arg(&img));
    assert!(json.contains("\"label\": \"gpt\""), "{json}");
    assert!(
        json.contains("C12A7328-F81F-11D2-BA4B-00A0C93EC93B"),
        "{json}"
    );
    assert!(json.contains("\"start\": 2048"), "{json}");
    assert!(
        json.contains("\"name\": \"EFI system partition\""),
        "{json}"
    );
    let verify = Command::new("sfdisk")
        .arg("--verify")
        .arg(&img)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{text}");
    assert!(text.contains("No errors detected"), "{text}");
    // mtools reads the loader through the partition.
    let back = Command::new("mtype")
        .arg("-i")
        .arg(format!("{}@@1M", img.display()))
        .arg(format!("::/{}", esp::LOADER_X86_64))
        .env("MTOOLS_SKIP_CHECK", "1")
        .output()
        .unwrap();
    assert!(back.status.success(), "{back:?}");
    assert!(back.stdout == esp_files()[0].data);
}

fn qemu_info(image: &str) -> String {
    run(Command::new("qemu-img")
        .args(["info", "--output=json"])
        .arg(image))
}

fn check_qcow2(s: &Scratch, raw: &[u8], name: &str) {
    let raw_path = s.write(&format!("{name}.img"), raw);
    let mut out = Vec::new();
    qcow2(raw, &mut out).unwrap();
    let q = s.write(&format!("{name}.qcow2"), &out);
    let info = qemu_info(&q.display().to_string());
    assert_eq!(json_str(&info, "format"), "qcow2", "{info}");
    assert_eq!(json_u64(&info, "virtual-size"), raw.len() as u64, "{info}");
    let check = run(Command::new("qemu-img")
        .args(["check", "-f", "qcow2"])
        .arg(&q));
    assert!(check.contains("No errors were found"), "{check}");
    let cmp = run(Command::new("qemu-img")
        .args(["compare", "-f", "raw", "-F", "qcow2"])
        .arg(&raw_path)
        .arg(&q));
    assert!(cmp.contains("Images are identical"), "{cmp}");
}

#[test]
fn qcow2_checks_clean_and_matches_the_raw_disk() {
    if !have(&[("qemu-img", "qemu-utils")]) {
        return;
    }
    let s = Scratch::new("qcow2");
    let disk = gpt_disk(&fat32_esp(&esp_files()).unwrap()).unwrap();
    check_qcow2(&s, &disk, "disk");
    let mut out = Vec::new();
    qcow2(&disk, &mut out).unwrap();
    assert!(
        out.len() < disk.len() / 4,
        "zero clusters are not allocated"
    );

    // Past one L2 table's reach (512 MiB), data at both ends.
    let mut big = vec![0u8; 513 << 20];
    big[..4096].copy_from_slice(&pattern(4096, 4));
    let end = big.len();
    big[end - 100..].fill(0x5A);
    check_qcow2(&s, &big, "big");
    // An empty tail cluster that is not whole, and no data at all.
    check_qcow2(&s, &vec![0u8; 3 * 65536 + 512], "empty");
}

#[test]
fn the_vhd_is_a_fixed_vpc_of_whole_mib_matching_the_raw_disk() {
    if !have(&[("qemu-img", "qemu-utils")]) {
        return;
    }
    let s = Scratch::new("vhd");
    let mut disk = gpt_disk(&fat32_esp(&esp_files()).unwrap()).unwrap();
    // Not a whole MiB: the VHD pads it.
    disk.extend_from_slice(&[0x11; 1000]);
    let raw = s.write("disk.img", &disk);
    let mut out = Vec::new();
    vhd_fixed(&disk, &mut out).unwrap();
    let padded = disk.len().next_multiple_of(MIB as usize);
    assert_eq!(out.len(), padded + 512);
    let footer = &out[padded..];
    assert_eq!(&footer[..8], b"conectix");
    assert_eq!(&footer[28..32], b"bslt");
    assert_eq!(le(&footer[60..64]), 0x0200_0000, "disk type 2, big-endian");
    let vhd = s.write("disk.vhd", &out);

    // qemu opens it as vpc (its probe looks for the cookie of a dynamic
    // VHD's header copy at the start, so a fixed VHD must be named).
    let info = run(Command::new("qemu-img")
        .args(["info", "--output=json", "-f", "vpc"])
        .arg(&vhd));
    assert_eq!(json_str(&info, "format"), "vpc", "{info}");
    // Azure sizes a VHD by its current size; so does qemu when told to
    // (otherwise it goes by the CHS geometry, as Virtual PC did).
    let spec = format!(
        r#"json:{{"driver":"vpc","force_size_calc":"current_size","file":{{"driver":"file","filename":"{}"}}}}"#,
        vhd.display()
    );
    let info = qemu_info(&spec);
    assert_eq!(json_u64(&info, "virtual-size"), padded as u64, "{info}");
    let cmp = run(Command::new("qemu-img")
        .args(["compare", "-f", "raw"])
        .arg(&raw)
        .arg(&spec));
    assert!(cmp.contains("Images are identical"), "{cmp}");
}

fn check_gce(s: &Scratch, raw: &[u8], name: &str) {
    let mut out = Vec::new();
    gce_tar_gz(raw, &mut out).unwrap();
    let tgz = s.write(&format!("{name}.tar.gz"), &out);
    let real = (raw.len() as u64).next_multiple_of(GIB).max(GIB);

    let list = run(Command::new("tar").arg("-tvzf").arg(&tgz));
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 1, "{list}");
    let fields: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(fields.last(), Some(&"disk.raw"), "{list}");
    assert_eq!(fields[2].parse::<u64>().unwrap(), real, "{list}");

    // GNU format, by its magic.
    let tar_path = s.path(&format!("{name}.tar"));
    let unzipped = Command::new("gzip").arg("-dc").arg(&tgz).output().unwrap();
    assert!(unzipped.status.success());
    std::fs::write(&tar_path, &unzipped.stdout).unwrap();
    let kind = run(Command::new("file").arg("-b").arg(&tar_path));
    assert!(kind.contains("tar archive (GNU)"), "{kind}");

    // Unpacked, it is the raw disk then zeros to the GiB.
    let dir = s.path(&format!("{name}-out"));
    std::fs::create_dir_all(&dir).unwrap();
    run(Command::new("tar")
        .arg("-xzf")
        .arg(&tgz)
        .arg("-C")
        .arg(&dir));
    let unpacked = dir.join("disk.raw");
    assert_eq!(std::fs::metadata(&unpacked).unwrap().len(), real);
    let raw_path = s.write(&format!("{name}.img"), raw);
    run(Command::new("cmp")
        .arg("-n")
        .arg(raw.len().to_string())
        .arg(&raw_path)
        .arg(&unpacked));
    run(Command::new("cmp")
        .arg("-n")
        .arg((real - raw.len() as u64).to_string())
        .arg(format!("--ignore-initial={}:0", raw.len()))
        .arg(&unpacked)
        .arg("/dev/zero"));
}

#[test]
fn the_gce_archive_is_one_gnu_sparse_disk_raw_of_whole_gib() {
    if !have(&[
        ("tar", "tar"),
        ("gzip", "gzip"),
        ("file", "file"),
        ("cmp", "diffutils"),
    ]) {
        return;
    }
    let s = Scratch::new("gce");
    let disk = gpt_disk(&fat32_esp(&esp_files()).unwrap()).unwrap();
    check_gce(&s, &disk, "disk");
    let mut out = Vec::new();
    gce_tar_gz(&disk, &mut out).unwrap();
    assert!(out.len() < disk.len(), "the padding is not stored");

    // Many scattered regions: extended sparse headers.
    let mut scattered = vec![0u8; 9 << 20];
    for i in (0..scattered.len()).step_by(131_072) {
        scattered[i + 7] = (i >> 17) as u8 | 1;
    }
    check_gce(&s, &scattered, "scattered");
    // Data up to the very end of a whole GiB is left as it is.
    let mut whole = vec![0u8; GIB as usize];
    whole[GIB as usize - 1] = 1;
    whole[0] = 1;
    check_gce(&s, &whole, "whole");
}

/// A minimal UEFI application as rustc's x86_64-unknown-uefi emits one: a
/// DOS stub, PE32+ headers, `.text` and `.data`, file alignment 512,
/// section alignment 4096, headers padded to `headers` bytes.
fn minimal_pe(headers: u32, magic: u16) -> Vec<u8> {
    let mut pe = vec![0u8; headers as usize + 0x400];
    let put16 =
        |pe: &mut Vec<u8>, at: usize, v: u16| pe[at..at + 2].copy_from_slice(&v.to_le_bytes());
    let put32 =
        |pe: &mut Vec<u8>, at: usize, v: u32| pe[at..at + 4].copy_from_slice(&v.to_le_bytes());
    pe[0..2].copy_from_slice(b"MZ");
    put32(&mut pe, 0x3c, 0x80);
    pe[0x80..0x84].copy_from_slice(b"PE\0\0");
    let coff = 0x84;
    put16(&mut pe, coff, 0x8664);
    put16(&mut pe, coff + 2, 2);
    put16(&mut pe, coff + 16, 240);
    put16(&mut pe, coff + 18, 0x0022); // executable, large-address aware
    let opt = coff + 20;
    put16(&mut pe, opt, magic);
    put32(&mut pe, opt + 4, 0x200); // SizeOfCode
    put32(&mut pe, opt + 8, 0x200); // SizeOfInitializedData
    put32(&mut pe, opt + 16, 0x1000); // AddressOfEntryPoint
    put32(&mut pe, opt + 20, 0x1000); // BaseOfCode
    pe[opt + 24..opt + 32].copy_from_slice(&0x1_4000_0000u64.to_le_bytes());
    put32(&mut pe, opt + 32, 0x1000);
    put32(&mut pe, opt + 36, 0x200);
    put32(&mut pe, opt + 56, 0x3000); // SizeOfImage
    put32(&mut pe, opt + 60, headers);
    put32(&mut pe, opt + 64, 0x1234); // CheckSum
    put16(&mut pe, opt + 68, 10); // EFI application
    put32(&mut pe, opt + 108, 16);
    let mut sect = |i: usize, name: &[u8], va: u32, raw: u32, flags: u32| {
        let at = opt + 240 + i * 40;
        pe[at..at + name.len()].copy_from_slice(name);
        put32(&mut pe, at + 8, 0x100);
        put32(&mut pe, at + 12, va);
        put32(&mut pe, at + 16, 0x200);
        put32(&mut pe, at + 20, raw);
        put32(&mut pe, at + 36, flags);
    };
    sect(0, b".text", 0x1000, headers, 0x6000_0020);
    sect(1, b".data", 0x2000, headers + 0x200, 0xC000_0040);
    pe[headers as usize] = 0xC3; // ret
    pe
}

#[test]
fn the_self_contained_loader_has_a_basalt_section_objdump_reads() {
    let loader = minimal_pe(0x400, 0x20b);
    let kernel = pattern(10_000, 5);
    let bundle = pattern(3000, 6);
    let pay = payload(&kernel, &bundle, b"quiet");
    let efi = efi_with_payload(&loader, &pay).unwrap();
    assert_eq!(efi.len() % 0x200, 0);
    assert_eq!(&efi[..loader.len()][..0x84], &loader[..0x84]);
    let found = find_payload(&efi).unwrap();
    assert_eq!(found, &pay[..]);
    let h = PayloadHeader::parse(found).unwrap();
    assert_eq!(h.kernel(found), &kernel[..]);
    assert_eq!(h.bundle(found), &bundle[..]);
    assert_eq!(h.cmdline(found), b"quiet");
    // Header fields: three sections, image size covers the new one,
    // checksum zeroed.
    let opt = 0x84 + 20;
    assert_eq!(le(&efi[0x86..0x88]), 3);
    assert_eq!(
        le(&efi[opt + 56..opt + 60]),
        0x3000 + pay.len().next_multiple_of(0x1000) as u64
    );
    assert_eq!(le(&efi[opt + 64..opt + 68]), 0);
    assert_eq!(
        le(&efi[opt + 8..opt + 12]),
        0x200 + pay.len().next_multiple_of(0x200) as u64
    );

    // Refusals: twice, no room, PE32.
    assert!(matches!(
        efi_with_payload(&efi, &pay),
        Err(basalt_disk::DiskError::AlreadyHasPayload)
    ));
    let tight = minimal_pe(0x84 + 20 + 240 + 2 * 40, 0x20b);
    assert!(matches!(
        efi_with_payload(&tight, &pay),
        Err(basalt_disk::DiskError::NoRoomForSection { .. })
    ));
    assert!(matches!(
        efi_with_payload(&minimal_pe(0x400, 0x10b), &pay),
        Err(basalt_disk::DiskError::NotPe32Plus { .. })
    ));

    if !have(&[("objdump", "binutils")]) {
        return;
    }
    let s = Scratch::new("pe");
    let path = s.write("loader.efi", &efi);
    let sections = run(Command::new("objdump").arg("-h").arg(&path));
    assert!(sections.contains("pei-x86-64"), "{sections}");
    let line = sections
        .lines()
        .find(|l| l.contains(".basalt"))
        .unwrap_or_else(|| panic!("no .basalt in\n{sections}"));
    let f: Vec<&str> = line.split_whitespace().collect();
    // Idx Name Size VMA LMA File-off Algn (the size is the virtual size)
    assert_eq!(u64::from_str_radix(f[2], 16).unwrap(), pay.len() as u64);
    assert_eq!(u64::from_str_radix(f[3], 16).unwrap(), 0x1_4000_3000);
    assert_eq!(u64::from_str_radix(f[5], 16).unwrap(), 0x800);
    let flags = sections
        .lines()
        .skip_while(|l| !l.contains(".basalt"))
        .nth(1)
        .unwrap();
    assert!(
        flags.contains("READONLY") && flags.contains("DATA"),
        "{flags}"
    );
}

#[test]
fn ovmf_mounts_the_esp_of_the_gpt_disk_and_runs_its_startup_script() {
    if !have(&[
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("timeout", "coreutils"),
    ]) {
        return;
    }
    let code = PathBuf::from("/usr/share/OVMF/OVMF_CODE_4M.fd");
    let vars = PathBuf::from("/usr/share/OVMF/OVMF_VARS_4M.fd");
    if !code.is_file() || !vars.is_file() {
        let msg = "OVMF_CODE_4M.fd is missing: apt-get install ovmf";
        assert!(!std::env::var("CI").is_ok_and(|v| v == "true"), "{msg}");
        eprintln!("skipping: {msg}");
        return;
    }
    let s = Scratch::new("ovmf");
    let secret = "read-back-by-uefi-7d1f";
    let files = vec![
        EspFile {
            path: esp::CMDLINE.into(),
            data: secret.as_bytes().to_vec(),
        },
        // The UEFI shell runs this when no boot option loads.
        EspFile {
            path: "startup.nsh".into(),
            data: b"type fs0:\\basalt\\cmdline\r\nreset -s\r\n".to_vec(),
        },
    ];
    let disk = s.write("disk.img", &gpt_disk(&fat32_esp(&files).unwrap()).unwrap());
    let vars_copy = s.write("vars.fd", &std::fs::read(&vars).unwrap());
    let out = Command::new("timeout")
        .arg("180")
        .arg("qemu-system-x86_64")
        .args(["-machine", "q35", "-m", "256", "-nographic", "-net", "none"])
        .arg("-drive")
        .arg(format!(
            "if=pflash,format=raw,readonly=on,file={}",
            code.display()
        ))
        .arg("-drive")
        .arg(format!("if=pflash,format=raw,file={}", vars_copy.display()))
        .arg("-drive")
        .arg(format!("file={},format=raw,if=virtio", disk.display()))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(secret),
        "the UEFI shell did not print the file from the ESP:\n{text}"
    );
}
