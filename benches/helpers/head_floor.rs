//! The floor for any header prober: open every file given and read its first 64 KiB, in one
//! process. scripts/bench-probe compares `wanprep check` with this (build with
//! `--features bench-helpers`).

use std::io::Read;

fn main() {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0usize;
    for arg in std::env::args().skip(1) {
        let mut f = std::fs::File::open(&arg).expect("readable");
        total += f.read(&mut buf).expect("read");
    }
    println!("{total}");
}
