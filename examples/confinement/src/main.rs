//! Tries to leave preopened directory ARG1 by every path trick WASI
//! programs have: `..`, absolute paths, symbolic links that climb or are
//! absolute, link loops, over-long names, invalid UTF-8, and writes,
//! renames and links through all of these. Prints one line per attempt,
//! `NAME: ok` or `NAME: errno N` (the WASI errno), and exits 1 if any
//! attempt that should fail succeeded or read the secret.
//!
//! The share is expected to hold `climb -> ../outside/secret.txt`,
//! `absolute -> /ABSOLUTE/PATH/OF/secret.txt`, `loop1 <-> loop2` and a
//! file `inside.txt`; the secret file holds `SECRET`.
use std::ffi::OsStr;
use std::io::ErrorKind;
use std::os::wasi::ffi::OsStrExt;
use std::path::{Path, PathBuf};

fn report(name: &str, r: std::io::Result<Vec<u8>>, escaped: &mut bool) {
    match r {
        Ok(bytes) => {
            if bytes.windows(6).any(|w| w == b"SECRET") {
                *escaped = true;
                println!("{name}: read the secret");
            } else {
                println!("{name}: ok");
            }
        }
        Err(e) => match e.raw_os_error() {
            Some(n) => println!("{name}: errno {n}"),
            None if e.kind() == ErrorKind::InvalidInput => println!("{name}: invalid input"),
            None => println!("{name}: {e}"),
        },
    }
}

fn must_fail(name: &str, r: std::io::Result<Vec<u8>>, escaped: &mut bool) {
    if r.is_ok() {
        *escaped = true;
    }
    report(name, r, escaped);
}

fn main() {
    let root = PathBuf::from(std::env::args().nth(1).expect("usage: confinement DIR"));
    let at = |p: &str| root.join(p);
    let read = |p: &Path| std::fs::read(p);
    let mut escaped = false;
    let long = "n".repeat(300);
    let deep = "d/".repeat(3000);
    let bad_utf8 = root.join(OsStr::from_bytes(b"bad\xff\xfename"));

    report("read inside.txt", read(&at("inside.txt")), &mut escaped);
    must_fail(
        "read ../outside/secret.txt",
        read(&at("../outside/secret.txt")),
        &mut escaped,
    );
    must_fail(
        "read sub/../../outside/secret.txt",
        read(&at("sub/../../outside/secret.txt")),
        &mut escaped,
    );
    must_fail("read climb", read(&at("climb")), &mut escaped);
    must_fail("read absolute", read(&at("absolute")), &mut escaped);
    must_fail("read loop1", read(&at("loop1")), &mut escaped);
    must_fail("read climb/x", read(&at("climb/x")), &mut escaped);
    must_fail("read long name", read(&at(&long)), &mut escaped);
    must_fail("read deep path", read(&at(&deep)), &mut escaped);
    report("read invalid UTF-8 name", read(&bad_utf8), &mut escaped);
    must_fail(
        "write through climb",
        std::fs::write(at("climb"), b"overwritten").map(|_| Vec::new()),
        &mut escaped,
    );
    must_fail(
        "create ../outside/new.txt",
        std::fs::write(at("../outside/new.txt"), b"new").map(|_| Vec::new()),
        &mut escaped,
    );
    must_fail(
        "mkdir ../outside/newdir",
        std::fs::create_dir(at("../outside/newdir")).map(|_| Vec::new()),
        &mut escaped,
    );
    must_fail(
        "rename inside.txt to ../outside/moved.txt",
        std::fs::rename(at("inside.txt"), at("../outside/moved.txt")).map(|_| Vec::new()),
        &mut escaped,
    );
    must_fail(
        "hard link ../outside/secret.txt",
        std::fs::hard_link(at("../outside/secret.txt"), at("stolen.txt")).map(|_| Vec::new()),
        &mut escaped,
    );
    must_fail(
        "remove ../outside/secret.txt",
        std::fs::remove_file(at("../outside/secret.txt")).map(|_| Vec::new()),
        &mut escaped,
    );
    must_fail(
        "list ..",
        std::fs::read_dir(at("..")).map(|_| Vec::new()),
        &mut escaped,
    );
    report(
        "read inside.txt again",
        read(&at("inside.txt")),
        &mut escaped,
    );
    if escaped {
        println!("ESCAPED");
        std::process::exit(1);
    }
    println!("confined");
}
