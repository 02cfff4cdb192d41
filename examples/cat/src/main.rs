//! Copies stdin to stdout byte for byte, then reports the count on stderr.
use std::io::{Read, Write};

fn main() {
    let mut data = Vec::new();
    std::io::stdin().read_to_end(&mut data).expect("read stdin");
    std::io::stdout().write_all(&data).expect("write stdout");
    eprintln!("cat: {} bytes", data.len());
}
