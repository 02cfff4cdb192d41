//! Exits with the code given as its first argument (default 0), after
//! writing to both output streams. `panic` panics instead (a Rust panic
//! aborts: the program traps after printing the message on stderr).
fn main() {
    if std::env::args().nth(1).as_deref() == Some("panic") {
        panic!("asked to panic");
    }
    let code: i32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    println!("exiting with {code}");
    eprintln!("to stderr before exit");
    std::process::exit(code);
}
