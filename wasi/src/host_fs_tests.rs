//! Host tests of [`super::HostFs`] on a scratch directory.

use super::*;
use std::path::PathBuf;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("basalt-hostfs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn descriptors_stay_bounded_and_held_inodes_stay() {
    let dir = scratch("bounded");
    for i in 0..(MAX_CACHED * 3) {
        std::fs::write(dir.join(format!("f{i}")), b"x").unwrap();
    }
    let fs = HostFs::open(&dir).unwrap();
    let held = fs.lookup(ROOT, b"f0").unwrap();
    fs.retain(held);
    let before = open_fds();
    let mut first_idle = None;
    for i in 1..(MAX_CACHED * 3) {
        let ino = fs.lookup(ROOT, format!("f{i}").as_bytes()).unwrap();
        first_idle.get_or_insert(ino);
    }
    // Other tests run in this process too: allow for their descriptors.
    assert!(open_fds() < before + MAX_CACHED + 64);
    // The held inode is still there; the first idle one was closed.
    assert_eq!(fs.stat(held).unwrap().size, 1);
    assert_eq!(fs.stat(first_idle.unwrap()), Err(FsError::Stale));
    fs.release(held);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn names_are_single_components() {
    let dir = scratch("names");
    let fs = HostFs::open(&dir).unwrap();
    for bad in [&b""[..], b".", b"..", b"a/b", b"/etc", b"a\0b"] {
        assert_eq!(fs.lookup(ROOT, bad), Err(FsError::InvalidArgument));
        assert_eq!(fs.create_file(ROOT, bad), Err(FsError::InvalidArgument));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_listing_resumes_at_its_cookie_while_the_directory_changes() {
    let dir = scratch("cookies");
    for i in 0..50 {
        std::fs::write(dir.join(format!("f{i:02}")), b"").unwrap();
    }
    let fs = HostFs::open(&dir).unwrap();
    let first = fs.read_dir(ROOT, 0, 10).unwrap();
    assert_eq!(first[0].name, b".");
    assert_eq!(first[1].name, b"..");
    // A file the listing already passed is removed, one is added.
    std::fs::remove_file(dir.join(std::str::from_utf8(&first[2].name).unwrap())).unwrap();
    let mut seen: Vec<Vec<u8>> = first[2..].iter().map(|e| e.name.clone()).collect();
    let mut cookie = first.last().unwrap().next;
    loop {
        let batch = fs.read_dir(ROOT, cookie, 7).unwrap();
        let Some(last) = batch.last() else { break };
        cookie = last.next;
        seen.extend(batch.into_iter().map(|e| e.name));
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 50, "every original name once");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unlinked_file_stays_readable_while_held() {
    let dir = scratch("unlinked");
    std::fs::write(dir.join("f"), b"kept").unwrap();
    let fs = HostFs::open(&dir).unwrap();
    let f = fs.lookup(ROOT, b"f").unwrap();
    fs.retain(f);
    fs.unlink(ROOT, b"f").unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(fs.read(f, 0, &mut buf), Ok(4));
    assert_eq!(&buf[..4], b"kept");
    assert_eq!(fs.lookup(ROOT, b"f"), Err(FsError::NotFound));
    fs.release(f);
    std::fs::remove_dir_all(&dir).unwrap();
}
