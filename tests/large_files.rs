//! Files over the size limits, built at test time (not committed): a PNG padded with a private
//! chunk past 5 MB, and an MP4 grown past 200 MB by an appended `free` box (sparse on disk).

use std::io::Write;

use wanprep::probe::FileSource;
use wanprep::ByteSource;
use wanprep::{check, probe, probe_source, Limits, Role};

use crate::util::fixture;

/// The fixture PNG with a valid private ancillary chunk inserted so the file is `total` bytes.
fn png_of_size(total: usize) -> Vec<u8> {
    let png = std::fs::read(fixture("image/ok_800x600.png")).unwrap();
    let iend = png.len() - 12;
    let pad = total - png.len() - 12;
    let mut chunk = Vec::with_capacity(pad + 12);
    chunk.extend((pad as u32).to_be_bytes());
    chunk.extend(b"prVt");
    chunk.extend(std::iter::repeat_n(0u8, pad));
    let crc = crate::util::crc32(&chunk[4..]);
    chunk.extend(crc.to_be_bytes());
    let mut out = png[..iend].to_vec();
    out.extend(chunk);
    out.extend(&png[iend..]);
    assert_eq!(out.len(), total);
    out
}

#[test]
fn an_image_of_5_000_000_bytes_passes_and_5_000_001_fails() {
    let dir = tempfile::tempdir().unwrap();
    for (total, ok) in [(5_000_000, true), (5_000_001, false)] {
        let p = dir.path().join(format!("{total}.png"));
        std::fs::write(&p, png_of_size(total)).unwrap();
        let facts = probe(&p).unwrap();
        assert!(facts.is_intact(), "{:?}", facts.integrity_problem);
        assert_eq!(facts.size_bytes, total as u64);
        let errors: Vec<_> =
            check(&facts, Role::Image, &Limits::default()).into_iter().filter(|f| f.is_error()).collect();
        assert_eq!(errors.is_empty(), ok, "{total}: {errors:?}");
        if !ok {
            assert_eq!(errors[0].rule, "image.file_size");
        }
    }
}

/// The fixture MP4 followed by a `free` box that makes the file `total` bytes (sparse).
fn mp4_of_size(dir: &std::path::Path, total: u64) -> std::path::PathBuf {
    let p = dir.join(format!("{total}.mp4"));
    let base = std::fs::read(fixture("video/ok_640x360_3s.mp4")).unwrap();
    let mut f = std::fs::File::create(&p).unwrap();
    f.write_all(&base).unwrap();
    let free = total - base.len() as u64;
    f.write_all(&(free as u32).to_be_bytes()).unwrap();
    f.write_all(b"free").unwrap();
    f.set_len(total).unwrap();
    p
}

#[test]
fn a_video_of_200_000_000_bytes_passes_and_200_000_001_fails_reading_little() {
    let dir = tempfile::tempdir().unwrap();
    for (total, ok) in [(200_000_000u64, true), (200_000_001, false)] {
        let p = mp4_of_size(dir.path(), total);
        let mut src = FileSource::open(&p).unwrap();
        let facts = probe_source(&mut src).unwrap();
        assert!(facts.is_intact(), "{:?}", facts.integrity_problem);
        assert!(src.bytes_read() < 1_000_000, "read {} bytes of a {total}-byte file", src.bytes_read());
        let errors: Vec<_> =
            check(&facts, Role::Video, &Limits::default()).into_iter().filter(|f| f.is_error()).collect();
        assert_eq!(errors.is_empty(), ok, "{total}: {errors:?}");
        if !ok {
            assert_eq!(errors[0].rule, "video.file_size");
        }
    }
}

#[test]
fn a_moov_at_the_end_of_a_large_file_is_found_without_reading_mdat() {
    // mdat of ~150 MB (sparse), then the moov of a real file: the walker must seek.
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read(fixture("video/ok_moov_end_640x360_3s.mp4")).unwrap();
    let p = dir.path().join("big_moov_end.mp4");
    let mut f = std::fs::File::create(&p).unwrap();
    // ftyp, a big free box, then the rest of the file (its mdat and moov) unchanged would break
    // chunk offsets; instead put the padding after the moov as trailing free space.
    f.write_all(&base).unwrap();
    let pad = 150_000_000u64;
    f.write_all(&(pad as u32).to_be_bytes()).unwrap();
    f.write_all(b"free").unwrap();
    f.set_len(base.len() as u64 + pad).unwrap();
    let mut src = FileSource::open(&p).unwrap();
    let facts = probe_source(&mut src).unwrap();
    assert_eq!(facts.moov_before_mdat, Some(false));
    assert!(facts.is_intact());
    assert!(src.bytes_read() < 200_000, "read {} bytes", src.bytes_read());
}
