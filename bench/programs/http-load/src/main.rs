//! `http-load HOST:PORT PATH CONNECTIONS SECONDS`: opens CONNECTIONS
//! keep-alive connections, each sending `GET PATH` and reading the whole
//! answer, one after another, for SECONDS; prints one JSON line:
//! requests, errors, requests/s, p50 and p99 latency in microseconds.
//! Answers must be `200` with a `content-length` (as `basalt serve` and
//! `wasmtime serve` send for a whole body) or chunked.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Reads one response; whether it was a 200.
fn read_response(r: &mut BufReader<TcpStream>) -> std::io::Result<bool> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let ok = line.split(' ').nth(1) == Some("200");
    let (mut length, mut chunked) = (0usize, false);
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let lower = h.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
    }
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            let mut skip = vec![0u8; n + 2];
            r.read_exact(&mut skip)?;
            if n == 0 {
                break;
            }
        }
    } else {
        let mut body = vec![0u8; length];
        r.read_exact(&mut body)?;
    }
    Ok(ok)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: http-load HOST:PORT PATH CONNECTIONS SECONDS");
        std::process::exit(2);
    }
    let (addr, path) = (args[1].clone(), args[2].clone());
    let conns: usize = args[3].parse().expect("CONNECTIONS");
    let secs: f64 = args[4].parse().expect("SECONDS");
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(secs);
    let workers: Vec<_> = (0..conns)
        .map(|_| {
            let (addr, path) = (addr.clone(), path.clone());
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                let mut errors = 0u64;
                let request = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\n\r\n");
                'outer: while Instant::now() < until {
                    let Ok(s) = TcpStream::connect(&addr) else {
                        errors += 1;
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    };
                    let _ = s.set_nodelay(true);
                    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
                    let mut w = s.try_clone().expect("clone");
                    let mut r = BufReader::new(s);
                    while Instant::now() < until {
                        let t = Instant::now();
                        if w.write_all(request.as_bytes()).is_err() {
                            errors += 1;
                            continue 'outer;
                        }
                        match read_response(&mut r) {
                            Ok(true) => lat.push(t.elapsed().as_nanos() as u64),
                            Ok(false) => errors += 1,
                            Err(_) => {
                                errors += 1;
                                continue 'outer;
                            }
                        }
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (l, e) = w.join().expect("worker");
        all.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| {
        if all.is_empty() {
            0.0
        } else {
            all[((all.len() - 1) as f64 * p) as usize] as f64 / 1e3
        }
    };
    println!(
        "{{\"requests\": {}, \"errors\": {errors}, \"rps\": {:.1}, \"p50_us\": {:.1}, \"p99_us\": {:.1}}}",
        all.len(),
        all.len() as f64 / elapsed,
        pct(0.5),
        pct(0.99)
    );
}
