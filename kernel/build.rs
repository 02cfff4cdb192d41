//! Links the kernel with its linker script (`linker-x86_64.ld` or
//! `linker-aarch64.ld`) when building for bare metal.

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "none" && (arch == "x86_64" || arch == "aarch64") {
        println!("cargo:rustc-link-arg-bins=-T{dir}/linker-{arch}.ld");
        println!("cargo:rerun-if-changed={dir}/linker-{arch}.ld");
    }
}
