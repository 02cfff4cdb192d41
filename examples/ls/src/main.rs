//! Lists directory ARG1 (sorted, `/` after directories, `@` after symbolic
//! links, sizes of files), prints the contents of file ARG2, then writes
//! ARG2 + `.new`, reads it back and says so: files from a `--dir` share.
use std::io::Write;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(file)) = (args.next(), args.next()) else {
        eprintln!("usage: ls DIR FILE");
        std::process::exit(2);
    };
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("read_dir")
        .map(|e| {
            let e = e.expect("entry");
            let t = e.file_type().expect("file type");
            let name = e.file_name().to_string_lossy().into_owned();
            if t.is_dir() {
                format!("{name}/")
            } else if t.is_symlink() {
                format!("{name}@")
            } else {
                format!("{name} {}", e.metadata().expect("metadata").len())
            }
        })
        .collect();
    names.sort();
    let mut out = std::io::stdout().lock();
    for n in &names {
        writeln!(out, "{n}").expect("stdout");
    }
    let text = std::fs::read(&file).expect("read file");
    out.write_all(&text).expect("stdout");
    let new = format!("{file}.new");
    std::fs::write(&new, b"written in the guest\n").expect("write");
    let back = std::fs::read(&new).expect("read back");
    writeln!(out, "wrote {} bytes to {new}", back.len()).expect("stdout");
}
