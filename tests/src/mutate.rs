//! Deterministic mutation of sample inputs, for the parser smoke runs in
//! `cargo test` (`tests/tests/parsers_survive_garbage.rs`) and the seeds of
//! the `cargo fuzz` targets (`fuzz/`): byte flips, overwrites with
//! boundary values, cuts, insertions and duplicated slices, from a seeded
//! xorshift generator, so a failure names a seed that reproduces it.

/// A small seeded generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is made 1).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// `sample` with one to eight random mutations.
pub fn mutate(sample: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut b = sample.to_vec();
    for _ in 0..=rng.below(8) {
        if b.is_empty() {
            b.push(rng.next_u64() as u8);
            continue;
        }
        let at = rng.below(b.len());
        match rng.below(7) {
            0 => b[at] ^= 1 << rng.below(8),
            1 => b[at] = rng.next_u64() as u8,
            2 => {
                // a boundary value, 4 bytes wide, little- or big-endian
                let v: u32 =
                    [0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x7fff_ffff, 0xffff_ffff][rng.below(8)];
                let bytes = if rng.below(2) == 0 {
                    v.to_le_bytes()
                } else {
                    v.to_be_bytes()
                };
                for (i, x) in bytes.iter().enumerate() {
                    if let Some(slot) = b.get_mut(at + i) {
                        *slot = *x;
                    }
                }
            }
            3 => b.truncate(at),
            4 => {
                let n = rng.below(16) + 1;
                let fill = rng.next_u64() as u8;
                b.splice(at..at, std::iter::repeat_n(fill, n));
            }
            5 => {
                let len = rng.below(64).min(b.len() - at);
                let piece = b[at..at + len].to_vec();
                let to = rng.below(b.len());
                b.splice(to..to, piece);
            }
            _ => {
                let end = (at + rng.below(32)).min(b.len());
                b.drain(at..end);
            }
        }
    }
    b
}
