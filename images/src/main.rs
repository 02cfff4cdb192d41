//! The `basalt` command.

fn main() {}
