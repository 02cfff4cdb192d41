//! Links the kernel with its linker script (`linker-x86_64.ld` or
//! `linker-aarch64.ld`) when building for bare metal. The AArch64 kernel
//! is a static position-independent executable: its code is built with
//! `-C relocation-model=pie` (`.cargo/config.toml`) and linked here with
//! `-pie --no-dynamic-linker`, so the boot stub can relocate it to wherever
//! the loader put it. `-z notext` lets the linker emit relocations for the
//! read-only sections too (the precompiled `core` was built for a fixed
//! address and keeps absolute pointers in `.rodata`); they are applied
//! with the MMU off, before those pages become read-only.

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "none" && (arch == "x86_64" || arch == "aarch64") {
        println!("cargo:rustc-link-arg-bins=-T{dir}/linker-{arch}.ld");
        println!("cargo:rerun-if-changed={dir}/linker-{arch}.ld");
    }
    if os == "none" && arch == "aarch64" {
        for arg in [
            "-pie",
            "--no-dynamic-linker",
            "-z",
            "notext",
            "-z",
            "norelro",
        ] {
            println!("cargo:rustc-link-arg-bins={arg}");
        }
    }
}
