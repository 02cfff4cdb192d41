//! The kernel's random numbers: a ChaCha20-based generator with fast key
//! erasure, seeded from the CPU's random-number instructions (RDSEED or
//! RDRAND on x86-64, RNDRRS on AArch64), else from a virtio-rng device,
//! else — saying so in the kernel log — from cycle-counter jitter, and
//! reseeded from the same source as it runs.

use core::sync::atomic::{AtomicBool, Ordering};

use basalt_arch::cpu::{self, HardwareRng};
use spin::Mutex;

const CONSTANTS: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

fn quarter(s: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
    s[a] = s[a].wrapping_add(s[b]);
    s[d] = (s[d] ^ s[a]).rotate_left(16);
    s[c] = s[c].wrapping_add(s[d]);
    s[b] = (s[b] ^ s[c]).rotate_left(12);
    s[a] = s[a].wrapping_add(s[b]);
    s[d] = (s[d] ^ s[a]).rotate_left(8);
    s[c] = s[c].wrapping_add(s[d]);
    s[b] = (s[b] ^ s[c]).rotate_left(7);
}

/// One ChaCha20 block (RFC 8439) for `key`, `counter`, `nonce`.
pub fn chacha20_block(key: &[u32; 8], counter: u32, nonce: &[u32; 3]) -> [u8; 64] {
    let mut init = [0u32; 16];
    init[..4].copy_from_slice(&CONSTANTS);
    init[4..12].copy_from_slice(key);
    init[12] = counter;
    init[13..].copy_from_slice(nonce);
    let mut s = init;
    for _ in 0..10 {
        quarter(&mut s, 0, 4, 8, 12);
        quarter(&mut s, 1, 5, 9, 13);
        quarter(&mut s, 2, 6, 10, 14);
        quarter(&mut s, 3, 7, 11, 15);
        quarter(&mut s, 0, 5, 10, 15);
        quarter(&mut s, 1, 6, 11, 12);
        quarter(&mut s, 2, 7, 8, 13);
        quarter(&mut s, 3, 4, 9, 14);
    }
    let mut out = [0u8; 64];
    for i in 0..16 {
        out[i * 4..i * 4 + 4].copy_from_slice(&s[i].wrapping_add(init[i]).to_le_bytes());
    }
    out
}

/// The generator's state.
struct Generator {
    key: [u32; 8],
    blocks_since_reseed: u64,
    /// where the seed came from, and so where reseeds come from
    source: SeedSource,
}

static GENERATOR: Mutex<Option<Generator>> = Mutex::new(None);
static RESEED_LOGGED: AtomicBool = AtomicBool::new(false);
static RESEED_FAILURE_LOGGED: AtomicBool = AtomicBool::new(false);

/// Where the seed came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedSource {
    /// RDSEED or RDRAND, RNDRRS
    Hardware(HardwareRng),
    /// a virtio entropy device (no random-number instructions)
    VirtioRng,
    /// cycle-counter jitter (neither instructions nor a device)
    Jitter,
}

impl core::fmt::Display for SeedSource {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let (seed, rand) = if cfg!(target_arch = "aarch64") {
            ("RNDRRS (FEAT_RNG)", "RNDR (FEAT_RNG)")
        } else {
            ("RDSEED", "RDRAND")
        };
        match self {
            SeedSource::Hardware(HardwareRng::Seed) => f.write_str(seed),
            SeedSource::Hardware(HardwareRng::Rand) => f.write_str(rand),
            SeedSource::Hardware(HardwareRng::None) => f.write_str("the CPU"),
            SeedSource::VirtioRng => f.write_str("virtio-rng"),
            SeedSource::Jitter => f.write_str(
                "cycle-counter jitter (no CPU random-number instructions, no virtio-rng device): weak",
            ),
        }
    }
}

fn jitter_words() -> [u32; 8] {
    // Mix many timing samples of a data-dependent loop through ChaCha.
    let mut key = [0u32; 8];
    for round in 0..64u32 {
        let mut acc = 0u64;
        for i in 0..256u64 {
            let t0 = cpu::cycles();
            acc = acc.rotate_left(7) ^ i.wrapping_mul(t0);
            let t1 = cpu::cycles();
            acc ^= t1.wrapping_sub(t0) << (i % 48);
        }
        key[(round % 8) as usize] ^= acc as u32 ^ (acc >> 32) as u32;
        let block = chacha20_block(&key, round, &[0, 0, 0]);
        for (k, c) in key.iter_mut().zip(block.chunks_exact(4)) {
            *k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
    }
    key
}

fn hardware_words() -> Option<[u32; 8]> {
    let mut key = [0u32; 8];
    for pair in key.chunks_exact_mut(2) {
        let v = cpu::hardware_random()?;
        pair[0] = v as u32;
        pair[1] = (v >> 32) as u32;
    }
    Some(key)
}

fn virtio_words() -> Option<[u32; 8]> {
    let mut bytes = [0u8; 32];
    crate::devices::virtio_random(&mut bytes)?;
    Some(core::array::from_fn(|i| {
        u32::from_le_bytes([
            bytes[i * 4],
            bytes[i * 4 + 1],
            bytes[i * 4 + 2],
            bytes[i * 4 + 3],
        ])
    }))
}

/// Fresh seed words from `source`, if it still gives any.
fn reseed_words(source: SeedSource) -> Option<[u32; 8]> {
    match source {
        SeedSource::Hardware(_) => hardware_words(),
        SeedSource::VirtioRng => virtio_words(),
        SeedSource::Jitter => None,
    }
}

/// Checks the block function against RFC 8439 §2.3.2 and seeds the
/// generator: from the CPU's instructions, else virtio-rng (call
/// `devices::init` first), else jitter. Returns the seed's source.
pub fn init() -> Result<SeedSource, &'static str> {
    let key: [u32; 8] = core::array::from_fn(|i| {
        let b = (i * 4) as u32;
        u32::from_le_bytes([b as u8, (b + 1) as u8, (b + 2) as u8, (b + 3) as u8])
    });
    let block = chacha20_block(&key, 1, &[0x0900_0000, 0x4a00_0000, 0]);
    if block[..8] != [0x10, 0xf1, 0xe7, 0xe4, 0xd1, 0x3b, 0x59, 0x15] {
        return Err("ChaCha20 self-test failed");
    }
    let (key, source) = if let Some(k) = hardware_words() {
        (k, SeedSource::Hardware(cpu::hardware_rng()))
    } else if let Some(k) = virtio_words() {
        (k, SeedSource::VirtioRng)
    } else {
        (jitter_words(), SeedSource::Jitter)
    };
    let mut key = key;
    // Fold in the cycle counter so two boots never share a stream even if
    // a hardware source misbehaves.
    key[7] ^= cpu::cycles() as u32;
    *GENERATOR.lock() = Some(Generator {
        key,
        blocks_since_reseed: 0,
        source,
    });
    Ok(source)
}

/// Fills `buf` with random bytes.
pub fn fill(buf: &mut [u8]) {
    let mut guard = GENERATOR.lock();
    let g = guard.get_or_insert_with(|| match hardware_words() {
        Some(key) => Generator {
            key,
            blocks_since_reseed: 0,
            source: SeedSource::Hardware(cpu::hardware_rng()),
        },
        None => Generator {
            key: jitter_words(),
            blocks_since_reseed: 0,
            source: SeedSource::Jitter,
        },
    });
    let mut counter = 1u32;
    for chunk in buf.chunks_mut(64) {
        let block = chacha20_block(&g.key, counter, &[0, 0, 0]);
        chunk.copy_from_slice(&block[..chunk.len()]);
        counter = counter.wrapping_add(1);
    }
    // Fast key erasure: block 0 becomes the next key.
    let next = chacha20_block(&g.key, 0, &[0, 0, 0]);
    for (k, c) in g.key.iter_mut().zip(next.chunks_exact(4)) {
        *k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    g.blocks_since_reseed += u64::from(counter);
    if g.blocks_since_reseed > 1 << 16 {
        let fresh = reseed_words(g.source);
        if let Some(fresh) = fresh {
            for (k, f) in g.key.iter_mut().zip(fresh) {
                *k ^= f;
            }
        }
        g.blocks_since_reseed = 0;
        // The first reseed is logged (later ones every 4 MiB of output
        // would flood the log), and the first failure.
        let source = g.source;
        drop(guard);
        if source != SeedSource::Jitter {
            let flag = if fresh.is_some() {
                &RESEED_LOGGED
            } else {
                &RESEED_FAILURE_LOGGED
            };
            if !flag.swap(true, Ordering::Relaxed) {
                match fresh {
                    Some(_) => crate::kprintln!("entropy: reseeded from {source}"),
                    None => crate::kprintln!(
                        "entropy: reseeding from {source} failed; the generator runs on without"
                    ),
                }
            }
        }
    }
}
