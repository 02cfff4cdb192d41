//! The kernel's bundle reader (ustar), manifest parser and loader of
//! packed directories, over arbitrary bytes: the kernel's own files,
//! compiled here as they are (`tests/tests/bundle.rs` does the same).
//! Seed it with real bundles: a `basalt image` or `basalt run` bundle
//! (the run directory's `bundle.tar`).
#![no_main]

extern crate alloc;

#[allow(dead_code)]
#[path = "../../kernel/src/bundle.rs"]
mod bundle;
#[allow(dead_code)]
#[path = "../../kernel/src/files.rs"]
mod files;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = bundle::Manifest::parse(data);
    let Ok(b) = bundle::Bundle::parse(data) else {
        return;
    };
    for e in b.entries() {
        let _ = b.get(&e.path);
    }
    let Some(Ok(m)) = b.get("manifest").map(bundle::Manifest::parse) else {
        return;
    };
    let copies: Vec<(u64, &str)> = m
        .preopens
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match &p.source {
            bundle::PreopenSource::Bundle(prefix) => Some((i as u64 + 1, prefix.as_str())),
            bundle::PreopenSource::Host(_) => None,
        })
        .collect();
    let clock = || -> basalt_wasi::memfs::Clock { Box::new(|| 7) };
    let _ = files::load(&b, &copies, 1 << 24, clock);
});
