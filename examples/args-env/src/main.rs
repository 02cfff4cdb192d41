//! Prints its arguments and its whole environment, one per line.
fn main() {
    for (i, a) in std::env::args_os().enumerate() {
        println!("arg[{i}] = {}", a.to_string_lossy());
    }
    let mut vars: Vec<_> = std::env::vars_os().collect();
    vars.sort();
    println!("env count = {}", vars.len());
    for (k, v) in vars {
        println!("env {}={}", k.to_string_lossy(), v.to_string_lossy());
    }
    eprintln!("args-env: done");
}
