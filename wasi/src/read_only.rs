//! Read-only preopens: a [`FileSystem`] seen through [`ReadOnly`] can be
//! read and listed but not changed, as wasmtime's read-only preopened
//! directories (`FsPerms::ReadOnly`). Every change is refused with
//! [`FsError::NotPermitted`] (`EPERM`), and [`FileSystem::read_only`] lets
//! the WASI layer refuse a call before it looks further (so a link or a
//! rename out of a read-only directory is `EPERM`, not `EXDEV`).

use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::services::{DirEntry, FileStat, FileSystem, FsError, Inode, TimeChange};

/// `inner`, with every change refused.
pub struct ReadOnly {
    inner: Arc<dyn FileSystem>,
}

impl ReadOnly {
    /// `fs` seen read-only.
    pub fn new(fs: Arc<dyn FileSystem>) -> ReadOnly {
        ReadOnly { inner: fs }
    }
}

impl FileSystem for ReadOnly {
    fn root(&self) -> Inode {
        self.inner.root()
    }
    fn lookup(&self, dir: Inode, name: &[u8]) -> Result<Inode, FsError> {
        self.inner.lookup(dir, name)
    }
    fn stat(&self, node: Inode) -> Result<FileStat, FsError> {
        self.inner.stat(node)
    }
    fn create_file(&self, _: Inode, _: &[u8]) -> Result<Inode, FsError> {
        Err(FsError::NotPermitted)
    }
    fn create_directory(&self, _: Inode, _: &[u8]) -> Result<Inode, FsError> {
        Err(FsError::NotPermitted)
    }
    fn symlink(&self, _: Inode, _: &[u8], _: &[u8]) -> Result<Inode, FsError> {
        Err(FsError::NotPermitted)
    }
    fn readlink(&self, node: Inode) -> Result<Vec<u8>, FsError> {
        self.inner.readlink(node)
    }
    fn link(&self, _: Inode, _: Inode, _: &[u8]) -> Result<(), FsError> {
        Err(FsError::NotPermitted)
    }
    fn unlink(&self, _: Inode, _: &[u8]) -> Result<(), FsError> {
        Err(FsError::NotPermitted)
    }
    fn remove_directory(&self, _: Inode, _: &[u8]) -> Result<(), FsError> {
        Err(FsError::NotPermitted)
    }
    fn rename(&self, _: Inode, _: &[u8], _: Inode, _: &[u8]) -> Result<(), FsError> {
        Err(FsError::NotPermitted)
    }
    fn read(&self, node: Inode, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        self.inner.read(node, offset, buf)
    }
    fn write(&self, _: Inode, _: u64, _: &[u8]) -> Result<usize, FsError> {
        Err(FsError::NotPermitted)
    }
    fn set_size(&self, _: Inode, _: u64) -> Result<(), FsError> {
        Err(FsError::NotPermitted)
    }
    fn set_times(&self, _: Inode, _: TimeChange, _: TimeChange) -> Result<(), FsError> {
        Err(FsError::NotPermitted)
    }
    fn read_dir(&self, dir: Inode, cookie: u64, max: usize) -> Result<Vec<DirEntry>, FsError> {
        self.inner.read_dir(dir, cookie, max)
    }
    fn sync(&self, node: Inode) -> Result<(), FsError> {
        self.inner.sync(node)
    }
    fn retain(&self, node: Inode) {
        self.inner.retain(node)
    }
    fn release(&self, node: Inode) {
        self.inner.release(node)
    }
    fn read_only(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memfs::MemFs;
    use alloc::boxed::Box;

    #[test]
    fn reads_pass_and_changes_are_refused() {
        let mem = Arc::new(MemFs::new(1, 1 << 20, Box::new(|| 0)));
        let root = mem.root();
        let f = mem.create_file(root, b"f").unwrap();
        mem.write(f, 0, b"data").unwrap();
        let ro = ReadOnly::new(mem.clone());
        assert!(ro.read_only() && !mem.read_only());
        assert_eq!(ro.lookup(root, b"f"), Ok(f));
        let mut buf = [0u8; 8];
        assert_eq!(ro.read(f, 0, &mut buf), Ok(4));
        assert_eq!(ro.read_dir(root, 0, 10).unwrap().len(), 3);
        let refused = Err(FsError::NotPermitted);
        assert_eq!(ro.write(f, 0, b"x"), refused.map(|()| 0));
        assert_eq!(ro.set_size(f, 0), refused);
        assert_eq!(ro.unlink(root, b"f"), refused);
        assert_eq!(ro.rename(root, b"f", root, b"g"), refused);
        assert_eq!(ro.link(f, root, b"g"), refused);
        assert_eq!(ro.create_file(root, b"g"), refused.map(|()| 0));
        assert_eq!(ro.create_directory(root, b"d"), refused.map(|()| 0));
        assert_eq!(ro.symlink(root, b"l", b"f"), refused.map(|()| 0));
        assert_eq!(ro.remove_directory(root, b"d"), refused);
        assert_eq!(ro.set_times(f, TimeChange::Now, TimeChange::Keep), refused);
        assert_eq!(mem.stat(f).unwrap().size, 4);
    }
}
