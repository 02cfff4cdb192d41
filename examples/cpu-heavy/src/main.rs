//! A CPU-bound workload with a deterministic result: an n-body simulation
//! (floating point), a prime sieve (integers, memory) and a hash chain
//! (bit operations). The first argument scales the work (default 10).
fn main() {
    let scale: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    let energy = nbody(scale * 20_000);
    let primes = sieve(scale as usize * 200_000);
    let hash = hash_chain(scale * 200_000);
    println!("nbody energy: {energy:.9}");
    println!("primes: {primes}");
    println!("hash: {hash:016x}");
}

#[derive(Clone, Copy)]
struct Body {
    pos: [f64; 3],
    vel: [f64; 3],
    mass: f64,
}

fn nbody(steps: u64) -> f64 {
    use std::f64::consts::PI;
    let solar = 4.0 * PI * PI;
    let year = 365.24;
    let mut bodies = [
        Body {
            pos: [0.0; 3],
            vel: [0.0; 3],
            mass: solar,
        },
        Body {
            pos: [
                4.841_431_442_464_72,
                -1.160_320_044_027_428_4,
                -0.103_622_044_471_123_1,
            ],
            vel: [
                0.001_660_076_642_744_037 * year,
                0.007_699_011_184_197_404 * year,
                -0.000_069_046_000_118_374_4 * year,
            ],
            mass: 0.000_954_791_938_424_326_6 * solar,
        },
        Body {
            pos: [
                8.343_366_718_244_58,
                4.124_798_564_124_305,
                -0.403_523_417_114_321_4,
            ],
            vel: [
                -0.002_767_425_107_268_624 * year,
                0.004_998_528_012_349_172 * year,
                0.000_023_041_729_757_376_39 * year,
            ],
            mass: 0.000_285_885_980_666_130_8 * solar,
        },
        Body {
            pos: [
                12.894_369_562_139_131,
                -15.111_151_401_698_631,
                -0.223_307_578_892_655_7,
            ],
            vel: [
                0.002_964_601_375_647_616 * year,
                0.002_378_471_739_594_809_5 * year,
                -0.000_029_658_956_854_023_76 * year,
            ],
            mass: 0.000_043_662_440_433_515_64 * solar,
        },
        Body {
            pos: [
                15.379_697_114_850_917,
                -25.919_314_609_987_964,
                0.179_258_772_950_371_2,
            ],
            vel: [
                0.002_680_677_724_903_893 * year,
                0.001_628_241_700_382_423 * year,
                -0.000_095_159_220_456_772_98 * year,
            ],
            mass: 0.000_051_513_890_204_661_45 * solar,
        },
    ];
    let dt = 0.01;
    for _ in 0..steps {
        for i in 0..bodies.len() {
            for j in i + 1..bodies.len() {
                let d: Vec<f64> = (0..3)
                    .map(|k| bodies[i].pos[k] - bodies[j].pos[k])
                    .collect();
                let dist2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
                let mag = dt / (dist2 * dist2.sqrt());
                let (mi, mj) = (bodies[i].mass, bodies[j].mass);
                for k in 0..3 {
                    bodies[i].vel[k] -= d[k] * mj * mag;
                    bodies[j].vel[k] += d[k] * mi * mag;
                }
            }
        }
        for b in &mut bodies {
            for k in 0..3 {
                b.pos[k] += dt * b.vel[k];
            }
        }
    }
    let mut e = 0.0;
    for (i, b) in bodies.iter().enumerate() {
        e += 0.5 * b.mass * b.vel.iter().map(|v| v * v).sum::<f64>();
        for c in &bodies[i + 1..] {
            let d2: f64 = (0..3).map(|k| (b.pos[k] - c.pos[k]).powi(2)).sum();
            e -= b.mass * c.mass / d2.sqrt();
        }
    }
    e
}

fn sieve(n: usize) -> usize {
    let mut composite = vec![false; n + 1];
    let mut count = 0;
    for i in 2..=n {
        if !composite[i] {
            count += 1;
            // i * i would overflow a 32-bit usize (wasm32) for large i
            if i > n / i {
                continue;
            }
            let mut j = i * i;
            while j <= n {
                composite[j] = true;
                j += i;
            }
        }
    }
    count
}

fn hash_chain(rounds: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for i in 0..rounds {
        h ^= i;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        h = h.rotate_left(17) ^ (h >> 7);
    }
    h
}
