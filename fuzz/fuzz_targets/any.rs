#![no_main]
//! Any bytes, through the sniffer and whichever parser it picks.
mod common;
libfuzzer_sys::fuzz_target!(|data: &[u8]| common::exercise(data));
