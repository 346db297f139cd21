#![no_main]
//! Image parsers: the first byte picks a signature (JPEG, PNG, BMP, WEBP, GIF, TIFF) that is
//! put in front of the rest, so every input reaches an image parser.
mod common;

const SIGNATURES: [&[u8]; 6] = [
    b"\xFF\xD8\xFF",
    b"\x89PNG\r\n\x1a\n",
    b"BM\0\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0",
    b"RIFF\0\0\0\0WEBP",
    b"GIF89a",
    b"II*\0",
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let sig = SIGNATURES[pick as usize % SIGNATURES.len()];
    let mut v = sig.to_vec();
    if sig.starts_with(b"RIFF") {
        // A RIFF size that matches the input half of the time, so chunk walking is reached.
        let size = if pick & 0x80 != 0 { (rest.len() + 4) as u32 } else { u32::from(pick) << 8 };
        v[4..8].copy_from_slice(&size.to_le_bytes());
    }
    v.extend_from_slice(rest);
    common::exercise(&v);
});
