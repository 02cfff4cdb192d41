//! The fixture and the expected output of `examples/confinement`, which
//! tries every way out of a preopened directory; shared by the VM's live
//! share tests and the hosted ones.

use std::path::{Path, PathBuf};

/// What `examples/confinement` prints when every attempt fails as it
/// should: the errnos wasmtime 50 gives on Linux for the same program and
/// fixtures (63 `EPERM`, 32 `ELOOP`, 37 `ENAMETOOLONG`, 25 `EILSEQ`).
pub const CONFINED: &str = "\
read inside.txt: ok
read ../outside/secret.txt: errno 63
read sub/../../outside/secret.txt: errno 63
read climb: errno 63
read absolute: errno 63
read loop1: errno 32
read climb/x: errno 63
read long name: errno 37
read deep path: errno 37
read invalid UTF-8 name: errno 25
write through climb: errno 63
create ../outside/new.txt: errno 63
mkdir ../outside/newdir: errno 63
rename inside.txt to ../outside/moved.txt: errno 63
hard link ../outside/secret.txt: errno 63
remove ../outside/secret.txt: errno 63
list ..: errno 63
read inside.txt again: ok
confined
";

/// Makes `root/share` (to be shared: `inside.txt`, `sub/`, the links
/// `climb -> ../outside/secret.txt`, `absolute -> …/secret.txt`,
/// `loop1 <-> loop2`) and `root/outside/secret.txt`; returns (share,
/// outside).
pub fn fixture(root: &Path) -> std::io::Result<(PathBuf, PathBuf)> {
    let (share, outside) = (root.join("share"), root.join("outside"));
    std::fs::create_dir_all(share.join("sub"))?;
    std::fs::create_dir_all(&outside)?;
    let secret = outside.join("secret.txt");
    std::fs::write(&secret, "SECRET\n")?;
    std::fs::write(share.join("inside.txt"), "inside\n")?;
    let link = |target: &Path, name: &str| std::os::unix::fs::symlink(target, share.join(name));
    link("../outside/secret.txt".as_ref(), "climb")?;
    link(&secret, "absolute")?;
    link("loop2".as_ref(), "loop1")?;
    link("loop1".as_ref(), "loop2")?;
    Ok((share, outside))
}

/// Checks that nothing in `outside` changed: only the secret, intact.
pub fn assert_outside_untouched(outside: &Path) {
    let names: Vec<_> = std::fs::read_dir(outside)
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["secret.txt"]);
    assert_eq!(
        std::fs::read_to_string(outside.join("secret.txt")).expect("read"),
        "SECRET\n"
    );
}
