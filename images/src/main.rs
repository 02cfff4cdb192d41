//! `basalt`: runs WebAssembly programs in Basalt VMs (see `basalt --help`).

#![forbid(unsafe_code)]

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    std::process::exit(basalt::cli::main(args));
}
