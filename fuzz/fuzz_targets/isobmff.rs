#![no_main]
//! The ISO-BMFF (MP4/MOV) walker: inputs that do not start with a box get an `ftyp` in front.
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if data.len() >= 8 && (&data[4..8] == b"ftyp" || &data[4..8] == b"moov" || &data[4..8] == b"wide") {
        common::exercise(data);
    } else {
        let mut v = b"\0\0\0\x14ftypisom\0\0\x02\0isom".to_vec();
        v.extend_from_slice(data);
        common::exercise(&v);
    }
});
