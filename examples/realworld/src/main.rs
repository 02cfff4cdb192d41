//! Ordinary Rust crates doing ordinary work: JSON with serde, regular
//! expressions, sorting, float math and SHA-256. Its output must be the
//! same compiled natively and run under Basalt.
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Order {
    id: u32,
    customer: String,
    items: Vec<Item>,
    note: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Item {
    sku: String,
    qty: u32,
    price: f64,
}

fn main() {
    // JSON: build, serialise, parse back, compare.
    let orders: Vec<Order> = (0..200)
        .map(|i| Order {
            id: i,
            customer: format!("customer-{:03}", (i * 37) % 101),
            items: (0..(i % 5 + 1))
                .map(|j| Item {
                    sku: format!("SKU-{}-{}", i, j),
                    qty: (i + j) % 7 + 1,
                    price: f64::from(i * 13 + j) / 8.0,
                })
                .collect(),
            note: (i % 3 == 0).then(|| format!("note \"{i}\" ✓")),
        })
        .collect();
    let text = serde_json::to_string(&orders).expect("serialise");
    let back: Vec<Order> = serde_json::from_str(&text).expect("parse");
    assert_eq!(back, orders);
    let total: f64 = back
        .iter()
        .flat_map(|o| &o.items)
        .map(|it| f64::from(it.qty) * it.price)
        .sum();
    println!(
        "json: {} bytes, {} orders, total {:.2}",
        text.len(),
        back.len(),
        total
    );

    // Regular expressions over the JSON text.
    let sku = regex::Regex::new(r"SKU-(\d+)-(\d)").expect("regex");
    let matches = sku.captures_iter(&text).count();
    let big = sku
        .captures_iter(&text)
        .filter(|c| c[1].parse::<u32>().unwrap_or(0) > 150)
        .count();
    println!("regex: {matches} SKUs, {big} above 150");

    // Sorting: a pseudo-random permutation, sorted three ways.
    let mut x: u64 = 0x1234_5678;
    let mut v: Vec<u64> = (0..100_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % 1_000_000
        })
        .collect();
    let mut w = v.clone();
    v.sort_unstable();
    w.sort_by(|a, b| b.cmp(a));
    println!(
        "sort: min {} max {} median {} sorted {}",
        v[0],
        v[v.len() - 1],
        v[v.len() / 2],
        v.windows(2).all(|p| p[0] <= p[1])
    );

    // Float math.
    let s: f64 = (1..10_000)
        .map(|k| f64::from(k).sqrt().sin() / f64::from(k).ln_1p())
        .sum();
    let e = (1..30).fold(1.0_f64, |acc, k| {
        acc + 1.0 / (1..=k).map(f64::from).product::<f64>()
    });
    println!(
        "float: {s:.12} e={e:.15} {:.6}",
        (0.5_f64).atan2(1.5).to_degrees()
    );

    // SHA-256 of the JSON text.
    let digest = Sha256::digest(text.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    println!("sha256: {hex}");
}
