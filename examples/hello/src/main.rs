//! The smallest WASI program: one line on stdout.
fn main() {
    println!("Hello from Basalt!");
}
