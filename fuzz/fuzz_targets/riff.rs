#![no_main]
//! The RIFF walkers (AVI, WEBP): inputs that are not RIFF get an `AVI ` RIFF header in front.
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if data.starts_with(b"RIFF") {
        common::exercise(data);
    } else {
        let mut v = b"RIFF\0\0\0\0AVI ".to_vec();
        v[4..8].copy_from_slice(&((data.len() + 4) as u32).to_le_bytes());
        v.extend_from_slice(data);
        common::exercise(&v);
    }
});
