//! Uses the clocks and the random source and checks they behave. With the
//! arguments `hex [N]` it draws N random bytes (default 0), then prints 32
//! more in hex instead (two boots must differ; a large N makes the kernel
//! reseed its generator).
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("hex") {
        let mut drawn: usize = args.get(2).map_or(0, |n| n.parse().expect("N is a number"));
        let mut chunk = vec![0u8; 65536];
        while drawn > 0 {
            let n = drawn.min(chunk.len());
            random(&mut chunk[..n]);
            drawn -= n;
        }
        let mut bytes = [0u8; 32];
        random(&mut bytes);
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        println!("random bytes: {hex}");
        return;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    let year = 1970 + now.as_secs() / 31_556_952;
    println!(
        "wall clock year plausible: {}",
        (2024..2200).contains(&year)
    );

    let t0 = Instant::now();
    std::thread::sleep(Duration::from_millis(50));
    let slept = t0.elapsed();
    println!(
        "slept at least 50 ms: {}",
        slept >= Duration::from_millis(50)
    );
    let t1 = Instant::now();
    println!("monotonic: {}", t1 >= t0);

    // The process CPU-time clock: it advances while the program
    // computes, and (nearly) not while it sleeps.
    let start = Instant::now();
    let c0 = cpu_time_ns();
    let mut spin = 0u64;
    while cpu_time_ns() - c0 < 20_000_000 && start.elapsed() < Duration::from_secs(20) {
        spin = std::hint::black_box(spin.wrapping_mul(31).wrapping_add(7));
    }
    let c1 = cpu_time_ns();
    println!(
        "cpu time advances while computing: {}",
        c1 - c0 >= 20_000_000
    );
    std::thread::sleep(Duration::from_millis(200));
    let c2 = cpu_time_ns();
    println!(
        "cpu time stands still while sleeping: {}",
        c2 - c1 < 100_000_000
    );

    let mut a = [0u8; 32];
    let mut b = [0u8; 32];
    random(&mut a);
    random(&mut b);
    println!("random non-zero: {}", a.iter().any(|&x| x != 0));
    println!("random differs: {}", a != b);
}

/// WASI `clock_time_get` of the process CPU-time clock, called directly:
/// std offers no CPU-time API.
fn cpu_time_ns() -> u64 {
    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    unsafe extern "C" {
        fn clock_time_get(id: u32, precision: u64, out: *mut u64) -> u16;
    }
    let mut t = 0u64;
    // SAFETY: `out` points to a u64 of ours.
    let errno = unsafe { clock_time_get(2, 1, &mut t) };
    assert_eq!(errno, 0, "clock_time_get(process_cputime_id) failed");
    t
}

/// WASI `random_get`, called directly: std offers no public random API.
fn random(buf: &mut [u8]) {
    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    unsafe extern "C" {
        fn random_get(buf: *mut u8, len: usize) -> u16;
    }
    // SAFETY: the pointer and length describe `buf`.
    let errno = unsafe { random_get(buf.as_mut_ptr(), buf.len()) };
    assert_eq!(errno, 0, "random_get failed");
}
