//! `basalt run --dir` in a VM: packs each shared host directory into the
//! bundle under `fs/N/` (`docs/guest-protocol.md`), as the hosted copy-in
//! (`basalt_wasi::host::load_dir`) reads it: directories, regular files,
//! symbolic links with their targets as they are, hard links among the
//! directory's files, modification times. Devices, sockets and FIFOs are
//! left out, with a warning. Nothing comes back: the VM's changes stay in
//! the VM.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::UNIX_EPOCH;

use crate::CliError;
use crate::bundle::{FileEntry, FileKind};

/// The archive directory of the `index`th shared directory.
pub fn prefix(index: usize) -> String {
    format!("fs/{index}")
}

fn mtime_ns(meta: &std::fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The entries of host directory `host` under archive directory `prefix`
/// (the directory itself first, then its tree, names sorted); `warn` hears
/// of what is left out.
pub fn pack_dir(
    host: &Path,
    prefix: &str,
    warn: &mut dyn FnMut(String),
) -> Result<Vec<FileEntry>, CliError> {
    let err = |p: &Path, e: std::io::Error| {
        CliError::Input(format!("cannot read --dir {}: {e}", p.display()))
    };
    let meta = std::fs::metadata(host).map_err(|e| err(host, e))?;
    if !meta.is_dir() {
        return Err(CliError::Input(format!(
            "--dir {}: not a directory",
            host.display()
        )));
    }
    let mut out = vec![FileEntry {
        path: prefix.as_bytes().to_vec(),
        kind: FileKind::Directory,
        mtime_ns: mtime_ns(&meta),
    }];
    let mut seen = HashMap::new();
    pack_into(host, prefix.as_bytes(), &mut out, &mut seen, warn, &err)?;
    Ok(out)
}

fn pack_into(
    host: &Path,
    at: &[u8],
    out: &mut Vec<FileEntry>,
    seen: &mut HashMap<(u64, u64), Vec<u8>>,
    warn: &mut dyn FnMut(String),
    err: &dyn Fn(&Path, std::io::Error) -> CliError,
) -> Result<(), CliError> {
    let mut names: Vec<_> = std::fs::read_dir(host)
        .map_err(|e| err(host, e))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(|e| err(host, e))?;
    names.sort();
    for name in names {
        let path = host.join(&name);
        let mut archive = at.to_vec();
        archive.push(b'/');
        archive.extend_from_slice(name.as_bytes());
        let meta = path.symlink_metadata().map_err(|e| err(&path, e))?;
        let t = meta.file_type();
        let kind = if t.is_dir() {
            FileKind::Directory
        } else if t.is_symlink() {
            let target = std::fs::read_link(&path).map_err(|e| err(&path, e))?;
            FileKind::Symlink(target.as_os_str().as_bytes().to_vec())
        } else if t.is_file() {
            if let Some(first) = seen.get(&(meta.dev(), meta.ino())) {
                FileKind::HardLink(first.clone())
            } else {
                if meta.nlink() > 1 {
                    seen.insert((meta.dev(), meta.ino()), archive.clone());
                }
                FileKind::File(std::fs::read(&path).map_err(|e| err(&path, e))?)
            }
        } else {
            warn(format!(
                "--dir: leaving out {} (not a file, directory or symbolic link)",
                path.display()
            ));
            continue;
        };
        let is_dir = kind == FileKind::Directory;
        out.push(FileEntry {
            path: archive.clone(),
            kind,
            mtime_ns: mtime_ns(&meta),
        });
        if is_dir {
            pack_into(&path, &archive, out, seen, warn, err)?;
        }
    }
    Ok(())
}
