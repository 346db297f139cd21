//! Untrusted bytes: truncations at many offsets, mutated and arbitrary inputs, hostile headers.

use proptest::prelude::*;
use wanprep::{check, is_compliant, probe_bytes, probe_source, Limits, Role};

use crate::util::{fixture, fixtures_in};

/// Intact, compliant fixtures of every accepted format.
fn intact() -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    for dir in ["image", "video"] {
        for p in fixtures_in(dir) {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if !name.starts_with("ok_") {
                continue;
            }
            v.push((name, std::fs::read(&p).unwrap()));
        }
    }
    assert!(v.len() >= 15, "expected the ok_ fixtures");
    v
}

fn role_of(name: &str) -> Role {
    if name.ends_with(".mp4") || name.ends_with(".mov") || name.ends_with(".avi") {
        Role::Video
    } else {
        Role::Image
    }
}

#[test]
fn every_truncation_of_a_compliant_file_is_non_compliant() {
    let limits = Limits::default();
    for (name, data) in intact() {
        let role = role_of(&name);
        assert!(is_compliant(&check(&probe_bytes(&data), role, &limits)), "{name} itself is compliant");
        // Every offset in the first 1 KiB (headers), then ~200 spread over the rest.
        let step = (data.len() / 200).max(1);
        let cuts = (0..data.len().min(1024)).chain((1024..data.len()).step_by(step)).chain([data.len() - 1]);
        for cut in cuts {
            let facts = probe_bytes(&data[..cut]);
            let findings = check(&facts, role, &limits);
            assert!(!is_compliant(&findings), "{name} cut at {cut} of {} passed as compliant: {facts:?}", data.len());
        }
    }
}

#[test]
fn a_declared_100000x100000_png_is_a_dimensions_finding_without_allocating() {
    let data = std::fs::read(fixture("image/bomb_100000x100000.png")).unwrap();
    let mut src = wanprep::probe::MemorySource::new(&data);
    let facts = probe_source(&mut src).unwrap();
    assert_eq!(facts.width, Some(100_000));
    let f = check(&facts, Role::Image, &Limits::default());
    assert_eq!(f[0].rule, "image.dimensions");
}

#[test]
fn hostile_box_sizes_end_in_integrity_findings() {
    for n in ["video/box_size_max.mp4", "video/zero_size_box.mp4"] {
        let data = std::fs::read(fixture(n)).unwrap();
        let f = check(&probe_bytes(&data), Role::Video, &Limits::default());
        assert_eq!(f[0].rule, "video.integrity", "{n}: {f:?}");
    }
}

#[test]
fn a_png_chunk_length_past_eof_is_truncation() {
    let mut data = std::fs::read(fixture("image/ok_800x600.png")).unwrap();
    // The IDAT length becomes 2^31-1: far past the end of the file.
    let idat = data.windows(4).position(|w| w == b"IDAT").unwrap();
    data[idat - 4..idat].copy_from_slice(&0x7FFF_FFFFu32.to_be_bytes());
    let facts = probe_bytes(&data);
    assert!(facts.integrity_problem.unwrap().contains("truncated"));
}

#[test]
fn a_moov_with_a_sample_table_pointing_past_eof_is_flagged() {
    let mut data = std::fs::read(fixture("video/ok_640x360_3s.mp4")).unwrap();
    // Point the first chunk offset of the first stco far past the end of the file.
    let stco = data.windows(4).position(|w| w == b"stco").unwrap();
    data[stco + 12..stco + 16].copy_from_slice(&0x7000_0000u32.to_be_bytes());
    let facts = probe_bytes(&data);
    let problem = facts.integrity_problem.expect("flagged");
    assert!(problem.contains("sample data"), "{problem}");
}

#[test]
fn an_stsz_claiming_more_samples_than_it_holds_is_flagged() {
    let mut data = std::fs::read(fixture("video/ok_640x360_3s.mp4")).unwrap();
    let stsz = data.windows(4).position(|w| w == b"stsz").unwrap();
    data[stsz + 12..stsz + 16].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(!probe_bytes(&data).is_intact());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let f = probe_bytes(&data);
        let _ = check(&f, Role::Image, &Limits::default());
        let _ = check(&f, Role::Video, &Limits::default());
    }

    #[test]
    fn arbitrary_bytes_behind_a_real_signature_never_panic(
        sig in prop::sample::select(vec![
            &b"\xFF\xD8\xFF"[..], b"\x89PNG\r\n\x1a\n", b"RIFF\xff\xff\xff\x7fWEBP", b"RIFF\xff\xff\xff\x7fAVI ",
            b"BM\0\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0", b"\0\0\0\x14ftypisom\0\0\0\0isom", b"\0\0\0\x08wide",
            // Matroska (EBML header, then a segment of unknown size), GIF, a media segment, MJ2.
            b"\x1a\x45\xdf\xa3\x84\x42\x82\x81\x78\x18\x53\x80\x67\x01\xff\xff\xff\xff\xff\xff\xff",
            b"GIF89a\x10\0\x10\0\x80\0\0", b"\0\0\0\x10stypmsdh\0\0\0\0",
            b"\0\0\0\x0cjP  \r\n\x87\n\0\0\0\x14ftypmjp2\0\0\0\0mjp2",
        ]),
        body in proptest::collection::vec(any::<u8>(), 0..4096),
    ) {
        let mut data = sig.to_vec();
        data.extend(body);
        let _ = probe_bytes(&data);
    }
}

/// The formats issue 10 taught the probe (Matroska, GIF animation, media segments, MJ2,
/// encryption, cover art, fragments) under the same mutations.
#[test]
fn mutated_newer_structures_never_panic() {
    let files = [
        "video/h264_640x360.mkv",
        "video/vp9_320x240.webm",
        "image/animated_400x300.gif",
        "image/apng_400x300.png",
        "video/dash_segment_320x240.m4s",
        "video/mj2_320x240.mj2",
        "video/cenc_320x240.mp4",
        "video/audio_with_cover_art.mp4",
        "video/frag_keyframe_320x240_4s.mp4",
        "video/empty_second_track_320x240.mp4",
    ];
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    for rel in files {
        let data = std::fs::read(fixture(rel)).unwrap();
        for _ in 0..200 {
            let mut d = data.clone();
            for _ in 0..(1 + rng % 6) {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let i = (rng % d.len() as u64) as usize;
                d[i] = (rng >> 32) as u8;
            }
            let f = probe_bytes(&d);
            let _ = check(&f, Role::Video, &Limits::default());
            let _ = check(&f, Role::Image, &Limits::default());
        }
    }
}

/// Deterministic mutations of real fixtures: byte flips, inserted and deleted runs.
#[test]
fn mutated_fixtures_never_panic() {
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for (_, data) in intact() {
        for _ in 0..150 {
            let mut d = data.clone();
            for _ in 0..(1 + next() % 8) {
                let i = (next() % d.len() as u64) as usize;
                match next() % 4 {
                    0 => d[i] = next() as u8,
                    1 => d[i] ^= 0xFF,
                    2 => {
                        let n = ((next() % 64) as usize).min(d.len() - i);
                        d.drain(i..i + n);
                        if d.is_empty() {
                            d.push(0);
                        }
                    }
                    _ => {
                        let v = (next() as u32).to_be_bytes();
                        d.splice(i..i, v);
                    }
                }
            }
            let f = probe_bytes(&d);
            let _ = check(&f, Role::Video, &Limits::default());
        }
    }
}

#[test]
fn extraneous_bytes_before_a_jpeg_marker_are_skipped_like_libjpeg_does() {
    let data = std::fs::read(fixture("image/ok_800x600.jpg")).unwrap();
    // Insert junk between the first segment (APP0) and the next marker.
    let next = 4 + usize::from(u16::from_be_bytes([data[4], data[5]]));
    assert_eq!(data[next], 0xFF);
    let mut d = data[..next].to_vec();
    d.extend([0x00, 0x13, 0x37]);
    d.extend(&data[next..]);
    let f = probe_bytes(&d);
    assert!(f.is_intact(), "{:?}", f.integrity_problem);
    assert_eq!(f.width, Some(800));
}

#[test]
fn a_bad_crc_fails_a_critical_png_chunk_but_not_an_ancillary_one() {
    let data = std::fs::read(fixture("image/exif_orient6_600x400.png")).unwrap();
    let exif = data.windows(4).position(|w| w == b"eXIf").unwrap();
    let mut d = data.clone();
    d[exif + 6] ^= 0x01; // inside the eXIf data: its CRC no longer matches
    assert!(probe_bytes(&d).is_intact());
    let mut d = data;
    let ihdr = d.windows(4).position(|w| w == b"IHDR").unwrap();
    d[ihdr + 17] ^= 0x01; // inside IHDR (critical)
    assert!(!probe_bytes(&d).is_intact());
}

#[test]
fn an_unfinalised_avi_with_riff_size_zero_is_read_to_the_end() {
    let mut d = std::fs::read(fixture("video/ok_640x360_3s.avi")).unwrap();
    d[4..8].copy_from_slice(&[0, 0, 0, 0]);
    let f = probe_bytes(&d);
    assert!(f.is_intact(), "{:?}", f.integrity_problem);
    assert_eq!(f.frame_rate, Some(25.0));
}

#[test]
fn a_fragmented_mp4_cut_after_its_empty_moov_has_no_frames() {
    let data = std::fs::read(fixture("video/frag_640x360_3s.mp4")).unwrap();
    let moof = data.windows(4).position(|w| w == b"moof").unwrap() - 4;
    let facts = probe_bytes(&data[..moof]);
    assert!(facts.integrity_problem.as_deref().unwrap_or("").contains("no samples"), "{facts:?}");
    assert!(!is_compliant(&check(&facts, Role::Video, &Limits::default())));
}
