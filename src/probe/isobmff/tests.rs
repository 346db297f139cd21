//! Unit tests of the ISO-BMFF parser on boxes built in code.

use super::boxes::for_each_box;
use super::summary::rotation_of_matrix;

#[test]
fn matrix_rotation_matches_the_contract() {
    let one = 0x10000;
    assert_eq!(rotation_of_matrix(&[one, 0, 0, 0, one, 0, 0, 0, 0x4000_0000]), 0);
    // iPhone portrait: ffprobe says -90, the contract says 90 clockwise.
    assert_eq!(rotation_of_matrix(&[0, one, 0, -one, 0, 0, 0, 0, 0x4000_0000]), 90);
    assert_eq!(rotation_of_matrix(&[-one, 0, 0, 0, -one, 0, 0, 0, 0x4000_0000]), 180);
    assert_eq!(rotation_of_matrix(&[0, -one, 0, one, 0, 0, 0, 0, 0x4000_0000]), 270);
    assert_eq!(rotation_of_matrix(&[0; 9]), 0);
}

#[test]
fn a_child_box_overrunning_its_parent_is_malformed() {
    let data = [0, 0, 0, 20, b'f', b'r', b'e', b'e', 0, 0, 0, 0];
    assert!(matches!(for_each_box(&data, |_, _| Ok(())), Err(super::super::reader::ParseError::Malformed(_))));
}

/// A box: size, type, body.
fn bx(typ: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(typ);
    v.extend_from_slice(body);
    v
}

/// A full box: version, flags, then the body.
fn full(typ: &[u8; 4], version: u8, body: &[u8]) -> Vec<u8> {
    let mut b = vec![version, 0, 0, 0];
    b.extend_from_slice(body);
    bx(typ, &b)
}

/// `mvhd`/`mdhd` of `version` with `timescale` and `duration` (64-bit fields in version 1).
fn header(typ: &[u8; 4], version: u8, timescale: u32, duration: u64) -> Vec<u8> {
    let mut b = Vec::new();
    if version == 1 {
        b.extend_from_slice(&[0; 16]);
        b.extend_from_slice(&timescale.to_be_bytes());
        b.extend_from_slice(&duration.to_be_bytes());
    } else {
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&timescale.to_be_bytes());
        b.extend_from_slice(&(duration as u32).to_be_bytes());
    }
    b.extend_from_slice(&[0; 80]);
    full(typ, version, &b)
}

/// A movie with one 320x240 video track of `samples` samples of `delta` ticks at 12800
/// ticks/s in the moov (data in an mdat right after it), the movie and media headers
/// declaring `declared` (in their own version), plus `extra` top-level boxes.
fn movie(version: u8, declared: u64, samples: u32, delta: u32, mvex: &[u8], extra: &[u8]) -> Vec<u8> {
    let mut tkhd = vec![0u8; 80];
    tkhd[8..12].copy_from_slice(&1u32.to_be_bytes());
    tkhd[72..76].copy_from_slice(&(320u32 << 16).to_be_bytes());
    tkhd[76..80].copy_from_slice(&(240u32 << 16).to_be_bytes());
    tkhd[36..40].copy_from_slice(&0x10000u32.to_be_bytes());
    tkhd[52..56].copy_from_slice(&0x10000u32.to_be_bytes());
    let mut entry = vec![0u8; 78];
    entry[24..26].copy_from_slice(&320u16.to_be_bytes());
    entry[26..28].copy_from_slice(&240u16.to_be_bytes());
    let stsd = full(b"stsd", 0, &[&1u32.to_be_bytes()[..], &bx(b"avc1", &entry)].concat());
    let stts = full(b"stts", 0, &[1u32.to_be_bytes(), samples.to_be_bytes(), delta.to_be_bytes()].concat());
    let stsc =
        full(b"stsc", 0, &[1u32.to_be_bytes(), 1u32.to_be_bytes(), samples.to_be_bytes(), 1u32.to_be_bytes()].concat());
    let stsz = full(b"stsz", 0, &[1u32.to_be_bytes(), samples.to_be_bytes()].concat());
    let build = |offset: u32| {
        let stco = full(b"stco", 0, &[1u32.to_be_bytes(), offset.to_be_bytes()].concat());
        let stbl = bx(b"stbl", &[stsd.clone(), stts.clone(), stsc.clone(), stsz.clone(), stco].concat());
        let hdlr = full(b"hdlr", 0, &[&[0u8; 4][..], b"vide", &[0; 12]].concat());
        let mdia = bx(b"mdia", &[header(b"mdhd", version, 12800, declared), hdlr, bx(b"minf", &stbl)].concat());
        let trak = bx(b"trak", &[full(b"tkhd", 0, &tkhd), mdia].concat());
        bx(b"moov", &[header(b"mvhd", version, 12800, declared), trak, mvex.to_vec()].concat())
    };
    let ftyp = bx(b"ftyp", b"isom\0\0\0\0isom");
    let moov_len = build(0).len();
    let data_at = (ftyp.len() + moov_len + 8) as u32;
    [ftyp, build(data_at), bx(b"mdat", &vec![0u8; samples as usize]), extra.to_vec()].concat()
}

#[test]
fn a_duration_of_all_ones_is_unknown_and_the_samples_tell_it() {
    // Issue 10 item 9: 64-bit mvhd/mdhd durations of all ones mean "unknown".
    let f = crate::probe_bytes(&movie(1, u64::MAX, 100, 512, &[], &[]));
    assert!(f.is_intact(), "{:?}", f.integrity_problem);
    assert_eq!((f.duration_s, f.video_duration_s), (Some(4.0), Some(4.0)));
    let f = crate::probe_bytes(&movie(0, u64::from(u32::MAX), 100, 512, &[], &[]));
    assert_eq!(f.duration_s, Some(4.0));
}

#[test]
fn a_movie_header_that_contradicts_the_samples_loses() {
    // Declares 100 s; the 100 samples of 40 ms hold 4 s.
    let f = crate::probe_bytes(&movie(0, 100 * 12800, 100, 512, &[], &[]));
    assert_eq!(f.duration_s, Some(4.0));
    // A declared duration that agrees (to the frame) is kept as it is.
    let f = crate::probe_bytes(&movie(0, 4 * 12800 + 100, 100, 512, &[], &[]));
    assert_eq!(f.duration_s, Some(4.007813), "4 s + 100 ticks, to the microsecond");
}

#[test]
fn fragments_count_and_a_wrong_mehd_loses_to_them() {
    // 25 samples in the moov, then three fragments of 25 samples of 512 ticks: 4 s in all,
    // while mehd claims 1 s (and the all-ones 64-bit mehd of another muxer means unknown).
    for mehd in [full(b"mehd", 0, &12800u32.to_be_bytes()), full(b"mehd", 1, &u64::MAX.to_be_bytes())] {
        let trex =
            full(b"trex", 0, &[1u32.to_be_bytes(), 1u32.to_be_bytes(), 512u32.to_be_bytes(), [0; 4], [0; 4]].concat());
        let mvex = bx(b"mvex", &[mehd, trex].concat());
        let mut moofs = Vec::new();
        for _ in 0..3 {
            let tfhd = full(b"tfhd", 0, &1u32.to_be_bytes());
            let trun = full(b"trun", 0, &25u32.to_be_bytes());
            moofs.extend(bx(b"moof", &bx(b"traf", &[tfhd, trun].concat())));
            moofs.extend(bx(b"mdat", &[0u8; 25]));
        }
        let f = crate::probe_bytes(&movie(0, 12800, 25, 512, &mvex, &moofs));
        assert!(f.is_intact(), "{:?}", f.integrity_problem);
        assert_eq!(f.duration_s, Some(4.0));
        assert_eq!((f.frame_count, f.frame_rate), (Some(100), Some(25.0)));
    }
}

#[test]
fn a_64_bit_size_of_all_ones_is_rejected_not_allocated() {
    let mut data = vec![0, 0, 0, 1, b'm', b'o', b'o', b'v'];
    data.extend(u64::MAX.to_be_bytes());
    assert!(for_each_box(&data, |_, _| Ok(())).is_err());
}
