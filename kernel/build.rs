//! Links the kernel with `linker.ld` when building for x86-64 bare metal.

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if arch == "x86_64" && os == "none" {
        println!("cargo:rustc-link-arg-bins=-T{dir}/linker-x86_64.ld");
        println!("cargo:rerun-if-changed={dir}/linker-x86_64.ld");
    }
}
