//! MP4 / MOV / 3GP (ISO/IEC 14496-12, QuickTime File Format): walks the top-level boxes with
//! seeks (never reading `mdat`), reads the whole `moov` (capped), and takes from it duration
//! (`mvhd`, `mdhd`), size and rotation (`tkhd` matrix, § 8.3.2), sample aspect ratio (`pasp`),
//! codec (`stsd`), frame rate (`stts`) and checks that the sample tables (`stsc`, `stsz`/`stz2`,
//! `stco`/`co64`) point inside the file. Fragmented files (`moof`) get their duration from
//! `mehd` or the fragments' `trun` boxes.

use super::facts::{reduce, round_to, MediaFacts};
use super::reader::{fourcc_str, malformed, Bytes, PResult, Reader};

/// Largest `moov` read into memory. A 30 s clip's moov is tens of KB; 200 MB files a few MB.
const MAX_MOOV: u64 = 64 * 1024 * 1024;
/// Largest `moof` read into memory.
const MAX_MOOF: u64 = 16 * 1024 * 1024;
/// Deepest box nesting followed.
const MAX_DEPTH: usize = 12;
/// Most top-level boxes walked (each costs one small read).
const MAX_TOP_LEVEL_BOXES: u32 = 200_000;
/// Most tracks considered.
const MAX_TRACKS: usize = 64;

#[derive(Default)]
struct Movie<'a> {
    timescale: u32,
    duration: u64,
    fragment_duration: Option<u64>,
    trex_default_duration: Vec<(u32, u32)>,
    tracks: Vec<Track<'a>>,
}

#[derive(Default)]
struct Track<'a> {
    id: u32,
    handler: [u8; 4],
    matrix: [i32; 9],
    tkhd_width: u32,
    tkhd_height: u32,
    timescale: u32,
    duration: u64,
    /// Sum of the edit list's segment durations (movie timescale), when the track has one.
    edit_duration: Option<u64>,
    entry: Option<SampleEntry>,
    stts: Option<&'a [u8]>,
    stsc: Option<&'a [u8]>,
    stsz: Option<&'a [u8]>,
    stz2: Option<&'a [u8]>,
    stco: Option<&'a [u8]>,
    co64: Option<&'a [u8]>,
    fragment_ticks: u64,
    fragment_samples: u64,
}

#[derive(Default, Clone)]
struct SampleEntry {
    /// The codec's fourcc: the entry's type, or the original format of a protected entry.
    fourcc: [u8; 4],
    /// What the codec is named from, when it is not `fourcc` (an `mp4v` entry's object type).
    codec: Option<&'static str>,
    width: u16,
    height: u16,
    pasp: Option<(u32, u32)>,
    /// SAR from the H.264 SPS VUI, used when there is no `pasp`.
    bitstream_sar: Option<(u32, u32)>,
    /// A protected entry (`encv`/`enca`/`sinf`): `fourcc` is then the original format (`frma`).
    encrypted: bool,
}

pub(crate) fn probe(r: &mut Reader, facts: &mut MediaFacts) -> PResult<()> {
    let len = r.len();
    let mut pos = 0u64;
    let mut moov_data: Option<Vec<u8>> = None;
    let mut moofs: Vec<Vec<u8>> = Vec::new();
    let mut moof_bytes = 0u64;
    let mut mdat_seen = false;
    let mut boxes = 0u32;
    while pos < len {
        boxes += 1;
        if boxes > MAX_TOP_LEVEL_BOXES {
            return malformed(format!("more than {MAX_TOP_LEVEL_BOXES} top-level boxes"));
        }
        if len - pos < 8 {
            // A few stray bytes after the last box: QuickTime tolerates them, so do we.
            break;
        }
        let mut h = [0; 16];
        let n = (len - pos).min(16) as usize;
        r.read_exact_at(pos, &mut h[..n], "a box header")?;
        let size32 = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let typ: [u8; 4] = [h[4], h[5], h[6], h[7]];
        let (header_len, size) = match size32 {
            0 => (8, len - pos),
            1 if n == 16 => (16, u64::from_be_bytes(h[8..16].try_into().expect("8 bytes"))),
            1 => return malformed(format!("truncated: box '{}' at offset {pos} has no 64-bit size", fourcc_str(&typ))),
            s => (8, u64::from(s)),
        };
        if size < header_len {
            return malformed(format!(
                "box '{}' at offset {pos} declares size {size}, smaller than its header",
                fourcc_str(&typ)
            ));
        }
        let end = pos.checked_add(size).filter(|&e| e <= len);
        let Some(end) = end else {
            let what = fourcc_str(&typ);
            let msg = format!(
                "truncated: box '{what}' at offset {pos} declares {size} bytes, but only {} remain in the file",
                len - pos
            );
            if &typ == b"mdat" {
                // Cut media data: report it, and keep the facts of a moov that came first.
                facts.flag(msg);
                break;
            }
            return malformed(msg);
        };
        let body = pos + header_len;
        match &typ {
            b"moov" if moov_data.is_none() => {
                moov_data = Some(r.read_vec(body, size - header_len, MAX_MOOV, "the moov box")?);
                facts.moov_before_mdat = Some(!mdat_seen);
            }
            b"mdat" => mdat_seen = true,
            b"moof" => {
                moof_bytes += size - header_len;
                if moof_bytes > MAX_MOOV {
                    return malformed("the movie fragments' headers exceed the size limit");
                }
                moofs.push(r.read_vec(body, size - header_len, MAX_MOOF, "a moof box")?);
            }
            _ => {}
        }
        pos = end;
    }
    let Some(moov_data) = moov_data else {
        if !moofs.is_empty() {
            return malformed(
                "a media segment (moof/mdat) without its initialisation segment: there is no moov box, so it \
                 cannot be played on its own; join the init segment and the media segments into one MP4",
            );
        }
        return malformed("no moov box: the file has no movie header (truncated, or still being written)");
    };
    let mut movie = Movie::default();
    parse_moov(&moov_data, &mut movie)?;
    for moof in &moofs {
        parse_moof(moof, &mut movie)?;
    }
    fill_facts(&movie, facts, !moofs.is_empty());
    if let Some(problem) = check_sample_tables(&movie, len) {
        facts.flag(problem);
    }
    Ok(())
}

/// Calls `f(type, body)` for each child box in `data`.
fn for_each_box<'a>(data: &'a [u8], mut f: impl FnMut(&[u8; 4], &'a [u8]) -> PResult<()>) -> PResult<()> {
    let mut pos = 0usize;
    while data.len() - pos >= 8 {
        let size32 = u32::from_be_bytes(data[pos..pos + 4].try_into().expect("4 bytes"));
        let typ: [u8; 4] = data[pos + 4..pos + 8].try_into().expect("4 bytes");
        let (header_len, size) = match size32 {
            0 => (8usize, (data.len() - pos) as u64),
            1 => {
                let Some(large) = data.get(pos + 8..pos + 16) else {
                    return malformed(format!("box '{}' has no 64-bit size", fourcc_str(&typ)));
                };
                (16, u64::from_be_bytes(large.try_into().expect("8 bytes")))
            }
            s => (8, u64::from(s)),
        };
        if size < header_len as u64 || size > (data.len() - pos) as u64 {
            return malformed(format!(
                "box '{}' declares size {size}, which does not fit in its parent ({} bytes left)",
                fourcc_str(&typ),
                data.len() - pos
            ));
        }
        let size = size as usize;
        f(&typ, &data[pos + header_len..pos + size])?;
        pos += size;
    }
    Ok(())
}

/// Version and flags of a full box, and the rest.
fn full_box<'a>(body: &'a [u8], what: &'static str) -> PResult<(u8, u32, Bytes<'a>)> {
    let mut b = Bytes::new(body, what);
    let vf = b.u32be()?;
    Ok(((vf >> 24) as u8, vf & 0x00FF_FFFF, b))
}

fn parse_moov<'a>(data: &'a [u8], movie: &mut Movie<'a>) -> PResult<()> {
    for_each_box(data, |typ, body| {
        match typ {
            b"mvhd" => {
                let (version, _, mut b) = full_box(body, "the mvhd box")?;
                if version == 1 {
                    b.skip(16)?;
                    movie.timescale = b.u32be()?;
                    movie.duration = known(b.u64be()?);
                } else {
                    b.skip(8)?;
                    movie.timescale = b.u32be()?;
                    movie.duration = known32(b.u32be()?);
                }
                if movie.timescale == 0 {
                    return malformed("the movie header (mvhd) has timescale 0");
                }
            }
            b"trak" if movie.tracks.len() < MAX_TRACKS => {
                let mut t = Track::default();
                parse_trak(body, &mut t, 1)?;
                movie.tracks.push(t);
            }
            b"mvex" => for_each_box(body, |typ, body| {
                match typ {
                    b"mehd" => {
                        let (version, _, mut b) = full_box(body, "the mehd box")?;
                        let d = if version == 1 { known(b.u64be()?) } else { known32(b.u32be()?) };
                        movie.fragment_duration = (d > 0).then_some(d);
                    }
                    b"trex" => {
                        let (_, _, mut b) = full_box(body, "the trex box")?;
                        let id = b.u32be()?;
                        b.skip(4)?;
                        movie.trex_default_duration.push((id, b.u32be()?));
                    }
                    _ => {}
                }
                Ok(())
            })?,
            _ => {}
        }
        Ok(())
    })
}

fn parse_trak<'a>(data: &'a [u8], t: &mut Track<'a>, depth: usize) -> PResult<()> {
    if depth > MAX_DEPTH {
        return malformed("boxes nested too deeply");
    }
    for_each_box(data, |typ, body| {
        match typ {
            b"tkhd" => {
                let (version, _, mut b) = full_box(body, "the tkhd box")?;
                if version == 1 {
                    b.skip(16)?;
                    t.id = b.u32be()?;
                    b.skip(12)?;
                } else {
                    b.skip(8)?;
                    t.id = b.u32be()?;
                    b.skip(8)?;
                }
                b.skip(16)?; // reserved, layer, alternate group, volume, reserved
                for m in t.matrix.iter_mut() {
                    *m = b.i32be()?;
                }
                t.tkhd_width = b.u32be()? >> 16;
                t.tkhd_height = b.u32be()? >> 16;
            }
            b"mdhd" => {
                let (version, _, mut b) = full_box(body, "the mdhd box")?;
                if version == 1 {
                    b.skip(16)?;
                    t.timescale = b.u32be()?;
                    t.duration = known(b.u64be()?);
                } else {
                    b.skip(8)?;
                    t.timescale = b.u32be()?;
                    t.duration = known32(b.u32be()?);
                }
                if t.timescale == 0 {
                    return malformed("a media header (mdhd) has timescale 0");
                }
            }
            b"hdlr" => {
                let (_, _, mut b) = full_box(body, "the hdlr box")?;
                b.skip(4)?;
                let handler = b.fourcc()?;
                // QuickTime also has data-handler 'hdlr' boxes under minf: keep the media one.
                if t.handler == [0; 4] || &t.handler == b"dhlr" || &t.handler == b"alis" {
                    t.handler = handler;
                }
            }
            b"stsd" => {
                let (_, _, mut b) = full_box(body, "the stsd box")?;
                let count = b.u32be()?;
                // Each entry is a box of at least 8 bytes: a count the box cannot hold is damage
                // (FFmpeg refuses such a file).
                if u64::from(count).saturating_mul(8) > b.remaining() as u64 {
                    return malformed(format!(
                        "the stsd box lists {count} sample entries but holds {} bytes",
                        b.remaining()
                    ));
                }
                if count > 0 && t.entry.is_none() {
                    let rest = b.rest();
                    let mut first = None;
                    for_each_box(rest, |fourcc, entry| {
                        if first.is_none() {
                            first = Some(parse_sample_entry(fourcc, entry, &t.handler));
                        }
                        Ok(())
                    })?;
                    t.entry = first;
                }
            }
            b"stts" => {
                let (_, _, mut b) = full_box(body, "the stts box")?;
                let count = b.u32be()?;
                if u64::from(count).saturating_mul(8) > b.remaining() as u64 {
                    return malformed(format!("the stts box lists {count} entries but holds {} bytes", b.remaining()));
                }
                t.stts = Some(body);
            }
            b"stsc" => t.stsc = Some(body),
            b"stsz" => t.stsz = Some(body),
            b"stz2" => t.stz2 = Some(body),
            b"stco" => t.stco = Some(body),
            b"co64" => t.co64 = Some(body),
            b"mdia" | b"minf" | b"stbl" | b"edts" => parse_trak(body, t, depth + 1)?,
            b"elst" => t.edit_duration = edit_list_duration(body),
            _ => {}
        }
        Ok(())
    })
}

/// `0` ("unknown") for a duration of all ones, as ISO/IEC 14496-12 § 8.2.2.3 defines it.
fn known(d: u64) -> u64 {
    if d == u64::MAX {
        0
    } else {
        d
    }
}

/// [`known`] for a 32-bit duration.
fn known32(d: u32) -> u64 {
    if d == u32::MAX {
        0
    } else {
        u64::from(d)
    }
}

/// The presentation length an edit list (§ 8.6.6) describes, in the movie timescale: the sum
/// of its segment durations (empty edits included). `None` when unreadable.
fn edit_list_duration(body: &[u8]) -> Option<u64> {
    let (version, _, mut b) = full_box(body, "the elst box").ok()?;
    let count = b.u32be().ok()?;
    let entry = if version == 1 { 20 } else { 12 };
    if (count as usize).saturating_mul(entry) > b.remaining() {
        return None;
    }
    let mut total = 0u64;
    for _ in 0..count {
        let d = if version == 1 { b.u64be().ok()? } else { known32(b.u32be().ok()?) };
        b.skip(entry - if version == 1 { 8 } else { 4 }).ok()?;
        total = total.saturating_add(known(d));
    }
    (total > 0).then_some(total)
}

/// Where a sample entry's child boxes start (§ 8.5.2; QuickTime sound descriptions v1/v2 are
/// longer), for the handler that owns it.
fn sample_entry_children(entry: &[u8], handler: &[u8; 4]) -> Option<usize> {
    match handler {
        b"vide" => Some(78),
        b"soun" => {
            let version = u16::from_be_bytes([*entry.get(8)?, *entry.get(9)?]);
            Some(match version {
                1 => 44,
                2 => 64,
                _ => 28,
            })
        }
        _ => None,
    }
}

/// The objectTypeIndication of an `esds` box's DecoderConfigDescriptor (ISO/IEC 14496-1
/// § 7.2.6.5–6): ES_Descriptor (tag 3), then DecoderConfigDescriptor (tag 4).
fn esds_object_type(body: &[u8]) -> Option<u8> {
    let mut b = body.get(4..)?; // version and flags
    let descriptor = |b: &mut &[u8], tag: u8| -> Option<()> {
        if *b.first()? != tag {
            return None;
        }
        *b = &b[1..];
        // Expandable size: up to four bytes of seven bits.
        for _ in 0..4 {
            let x = *b.first()?;
            *b = &b[1..];
            if x & 0x80 == 0 {
                break;
            }
        }
        Some(())
    };
    descriptor(&mut b, 0x03)?;
    let flags = *b.get(2)?;
    let mut skip = 3usize;
    if flags & 0x80 != 0 {
        skip += 2;
    }
    if flags & 0x40 != 0 {
        skip += 1 + usize::from(*b.get(skip)?);
    }
    if flags & 0x20 != 0 {
        skip += 2;
    }
    b = b.get(skip..)?;
    descriptor(&mut b, 0x04)?;
    b.first().copied()
}

/// The codec of an `mp4v` entry with object type `oti`, when it is not MPEG-4 Visual.
fn mp4v_codec(oti: u8) -> Option<&'static str> {
    match oti {
        0x6C | 0x6E => Some("mjpeg"),
        0x60..=0x65 => Some("mpeg2video"),
        0x6A => Some("mpeg1video"),
        _ => None,
    }
}

/// A sample entry (§ 8.5.2). Visual entries carry width and height after 24 bytes, and child
/// boxes (`pasp`, `avcC`, `sinf`) after 78; sound entries have children after 28 (or more).
/// A protected entry (`encv`, `enca`, or any with `sinf`, ISO/IEC 23001-7) names the codec
/// inside in `sinf/frma`.
fn parse_sample_entry(fourcc: &[u8; 4], entry: &[u8], handler: &[u8; 4]) -> SampleEntry {
    let mut e = SampleEntry { fourcc: *fourcc, ..Default::default() };
    e.encrypted = matches!(fourcc, b"encv" | b"enca" | b"encs" | b"enct" | b"drmi" | b"drms");
    if handler == b"vide" && entry.len() >= 28 {
        e.width = u16::from_be_bytes([entry[24], entry[25]]);
        e.height = u16::from_be_bytes([entry[26], entry[27]]);
    }
    let Some(children) = sample_entry_children(entry, handler).and_then(|at| entry.get(at..)) else {
        return e;
    };
    // Extensions are optional: a malformed one is ignored, not fatal.
    let _ = for_each_box(children, |typ, body| {
        match typ {
            b"avcC" if handler == b"vide" => e.bitstream_sar = super::h264::sar_from_avcc(body),
            // `mp4v` is a family: the decoder config's object type names the codec.
            b"esds" if &e.fourcc == b"mp4v" => {
                e.codec = esds_object_type(body).and_then(mp4v_codec);
            }
            b"pasp" if body.len() >= 8 => {
                let h = u32::from_be_bytes(body[0..4].try_into().expect("4 bytes"));
                let v = u32::from_be_bytes(body[4..8].try_into().expect("4 bytes"));
                if h > 0 && v > 0 {
                    e.pasp = Some((h, v));
                }
            }
            b"sinf" => {
                // Protection scheme information: frma names the original format, schm the
                // scheme (cenc, cbcs…), which the service cannot decrypt.
                for_each_box(body, |typ, body| {
                    match typ {
                        b"frma" if body.len() >= 4 => e.fourcc = body[0..4].try_into().expect("4 bytes"),
                        b"schm" | b"schi" => e.encrypted = true,
                        _ => {}
                    }
                    Ok(())
                })?;
                e.encrypted = true;
            }
            _ => {}
        }
        Ok(())
    });
    e
}

fn parse_moof(data: &[u8], movie: &mut Movie) -> PResult<()> {
    for_each_box(data, |typ, body| {
        if typ != b"traf" {
            return Ok(());
        }
        let mut track_id = 0;
        let mut default_duration = None;
        let mut ticks = 0u64;
        let mut samples = 0u64;
        for_each_box(body, |typ, body| {
            match typ {
                b"tfhd" => {
                    let (_, flags, mut b) = full_box(body, "the tfhd box")?;
                    track_id = b.u32be()?;
                    if flags & 0x01 != 0 {
                        b.skip(8)?;
                    }
                    if flags & 0x02 != 0 {
                        b.skip(4)?;
                    }
                    if flags & 0x08 != 0 {
                        default_duration = Some(b.u32be()?);
                    }
                }
                b"trun" => {
                    let (_, flags, mut b) = full_box(body, "the trun box")?;
                    let count = b.u32be()?;
                    if flags & 0x01 != 0 {
                        b.skip(4)?;
                    }
                    if flags & 0x04 != 0 {
                        b.skip(4)?;
                    }
                    let per_sample = [0x100, 0x200, 0x400, 0x800].iter().filter(|&&f| flags & f != 0).count() * 4;
                    if per_sample > 0 && (count as usize).saturating_mul(per_sample) > b.remaining() {
                        return malformed("a trun box lists more samples than it holds");
                    }
                    samples += u64::from(count);
                    if flags & 0x100 != 0 {
                        for _ in 0..count {
                            ticks += u64::from(b.u32be()?);
                            b.skip(per_sample - 4)?;
                        }
                    } else {
                        let trex = movie.trex_default_duration.iter().find(|(id, _)| *id == track_id).map(|x| x.1);
                        let d = default_duration.or(trex).unwrap_or(0);
                        ticks += u64::from(count) * u64::from(d);
                    }
                }
                _ => {}
            }
            Ok(())
        })?;
        if let Some(t) = movie.tracks.iter_mut().find(|t| t.id == track_id) {
            t.fragment_ticks = t.fragment_ticks.saturating_add(ticks);
            t.fragment_samples = t.fragment_samples.saturating_add(samples);
        }
        Ok(())
    })
}

/// Clockwise rotation (0/90/180/270) of a `tkhd` matrix `[a b u; c d v; x y w]`: the angle of
/// the first row, atan2(b, a), snapped to a quarter turn (flips are ignored).
pub(crate) fn rotation_of_matrix(m: &[i32; 9]) -> u16 {
    let (a, b) = (i64::from(m[0]), i64::from(m[1]));
    if a == 0 && b == 0 {
        return 0;
    }
    if a.abs() >= b.abs() {
        if a > 0 {
            0
        } else {
            180
        }
    } else if b > 0 {
        90
    } else {
        270
    }
}

/// Codec name for a sample entry fourcc (names follow FFmpeg's).
pub(crate) fn codec_name(fourcc: &[u8; 4]) -> String {
    match fourcc {
        b"avc1" | b"avc2" | b"avc3" | b"avc4" => "h264",
        b"hvc1" | b"hev1" | b"dvh1" | b"dvhe" => "hevc",
        b"mp4v" => "mpeg4",
        b"av01" => "av1",
        b"vp08" => "vp8",
        b"vp09" => "vp9",
        b"ap4h" | b"ap4x" | b"apch" | b"apcn" | b"apcs" | b"apco" => "prores",
        b"jpeg" | b"mjpa" | b"mjpb" => "mjpeg",
        b"mjp2" => "jpeg2000",
        b"s263" | b"h263" => "h263",
        b"png " => "png",
        b"raw " | b"2vuy" | b"yuv2" => "rawvideo",
        b"dvc " | b"dvcp" | b"dv5n" | b"dv5p" => "dvvideo",
        b"mp4a" => "aac",
        b"ac-3" => "ac3",
        b"ec-3" => "eac3",
        b"Opus" => "opus",
        b"fLaC" => "flac",
        b"alac" => "alac",
        b".mp3" => "mp3",
        b"sowt" | b"twos" | b"lpcm" | b"in24" | b"in32" | b"fl32" | b"ipcm" => "pcm",
        b"samr" => "amr_nb",
        other => return fourcc_str(other).trim().to_string(),
    }
    .to_string()
}

/// A track's samples and their ticks: the sample table in `moov` plus every fragment.
fn track_samples(t: &Track) -> (u64, u64) {
    let (count, ticks) = stts_totals(t.stts);
    let count = count.max(sample_count(t).unwrap_or(0));
    (count.saturating_add(t.fragment_samples), ticks.saturating_add(t.fragment_ticks))
}

/// A track's media duration in its own ticks: the media header's, unless the file is
/// fragmented (the header then covers only the samples before the first fragment) or the
/// header contradicts the samples it describes — then the samples.
fn media_ticks(t: &Track, fragmented: bool) -> u64 {
    let (_, ticks) = track_samples(t);
    if fragmented || t.duration == 0 {
        return ticks;
    }
    let off = t.duration.abs_diff(ticks) as f64;
    let slack = (0.05 * ticks as f64).max(0.5 * f64::from(t.timescale));
    if ticks > 0 && off > slack {
        ticks
    } else {
        t.duration
    }
}

/// The track of `handler` that facts are taken from: the first with samples (a track with no
/// samples next to a playable one is ignored, as players do), else the first there is.
fn main_track<'m, 'a>(movie: &'m Movie<'a>, handler: &[u8; 4]) -> Option<&'m Track<'a>> {
    let mut of_kind = movie.tracks.iter().filter(|t| &t.handler == handler && t.entry.is_some());
    let first = of_kind.clone().next();
    of_kind.find(|t| track_samples(t).0 > 0).or(first)
}

/// How long a track lasts in seconds: its samples when the file is fragmented (the `moov`
/// header then covers only what was written before the first fragment), else its edit list,
/// its media header, or its samples.
fn track_seconds(movie: &Movie, t: &Track, fragmented: bool) -> Option<f64> {
    let media_ticks = media_ticks(t, fragmented);
    let media = (t.timescale > 0 && media_ticks > 0).then(|| media_ticks as f64 / f64::from(t.timescale));
    if fragmented {
        return media;
    }
    let edited = t.edit_duration.filter(|_| movie.timescale > 0).map(|d| d as f64 / f64::from(movie.timescale));
    edited.or(media)
}

fn fill_facts(movie: &Movie, facts: &mut MediaFacts, fragmented: bool) {
    let video = main_track(movie, b"vide");
    let audio = main_track(movie, b"soun");
    facts.has_video = Some(video.is_some());
    if let Some(e) = audio.and_then(|a| a.entry.as_ref()) {
        facts.audio_codec = Some(codec_name(&e.fourcc));
    }
    let encrypted = [video, audio].into_iter().flatten().any(|t| t.entry.as_ref().is_some_and(|e| e.encrypted));
    if encrypted {
        facts.encrypted = Some(true);
    }
    if let Some(v) = video {
        let e = v.entry.as_ref().expect("video track has an entry");
        facts.video_codec = Some(e.codec.map_or_else(|| codec_name(&e.fourcc), str::to_string));
        facts.codec_tag = Some(fourcc_str(&e.fourcc));
        let (samples, ticks) = track_samples(v);
        // One picture next to an audio track is cover art (an audio file), not a video.
        let cover = samples == 1 && audio.is_some_and(|a| track_samples(a).0 > 1);
        if cover {
            facts.has_video = Some(false);
            facts.frame_count = Some(1);
        } else {
            let (w, h) = if e.width > 0 && e.height > 0 {
                (u32::from(e.width), u32::from(e.height))
            } else {
                (v.tkhd_width, v.tkhd_height)
            };
            if w > 0 && h > 0 {
                // As FFmpeg's mov demuxer: `pasp` first, then a track header size that differs
                // from the coded size, then the bitstream's VUI.
                let tkhd_sar = (v.tkhd_width > 0 && v.tkhd_height > 0 && (v.tkhd_width, v.tkhd_height) != (w, h))
                    .then(|| reduce(u64::from(h) * u64::from(v.tkhd_width), u64::from(w) * u64::from(v.tkhd_height)))
                    .flatten();
                let sar = e.pasp.or(tkhd_sar).or(e.bitstream_sar);
                facts.set_video_size(w, h, sar, rotation_of_matrix(&v.matrix));
            }
            let media_ticks = media_ticks(v, fragmented);
            if v.timescale > 0 && media_ticks > 0 {
                facts.video_duration_s = Some(round_to(media_ticks as f64 / f64::from(v.timescale), 6));
            }
            if samples > 0 && ticks > 0 && v.timescale > 0 {
                facts.frame_count = Some(samples);
                facts.frame_rate = Some(round_to(samples as f64 * f64::from(v.timescale) / ticks as f64, 3));
            }
        }
    }
    // What the tracks hold (video and audio with samples), against what the headers declare.
    let held = [video, audio]
        .into_iter()
        .flatten()
        .filter(|t| track_samples(t).0 > 0)
        .filter_map(|t| track_seconds(movie, t, fragmented))
        .reduce(f64::max);
    let ts = f64::from(movie.timescale.max(1));
    let declared = (movie.timescale > 0 && movie.duration > 0)
        .then(|| movie.duration as f64 / ts)
        .or_else(|| movie.fragment_duration.filter(|_| movie.timescale > 0).map(|d| d as f64 / ts));
    let duration = match (declared, held) {
        // A fragmented file's header covers what was known when it was written (an empty moov,
        // or only the samples before the first fragment; mehd may be a guess): samples win.
        (_, Some(h)) if fragmented => Some(h),
        // A header that contradicts what the tracks hold is broken: samples win.
        (Some(d), Some(h)) if (d - h).abs() > (0.05 * h).max(0.5) => Some(h),
        (d, h) => d.or(h),
    };
    facts.duration_s = duration.map(|d| round_to(d, 6));
}

/// Total sample count and ticks of a `stts` box (bounded by the entries the box holds).
fn stts_totals(stts: Option<&[u8]>) -> (u64, u64) {
    let Some(body) = stts else { return (0, 0) };
    let Some(entries) = body.get(8..) else { return (0, 0) };
    let declared = u32::from_be_bytes(body[4..8].try_into().expect("4 bytes")) as usize;
    let (mut samples, mut ticks) = (0u64, 0u64);
    for e in entries.chunks_exact(8).take(declared) {
        let count = u64::from(u32::from_be_bytes(e[0..4].try_into().expect("4 bytes")));
        let delta = u64::from(u32::from_be_bytes(e[4..8].try_into().expect("4 bytes")));
        samples = samples.saturating_add(count);
        ticks = ticks.saturating_add(count.saturating_mul(delta));
    }
    (samples, ticks)
}

/// Checks that every chunk of every track lies inside the file. Returns the problem, if any.
fn check_sample_tables(movie: &Movie, file_len: u64) -> Option<String> {
    for t in &movie.tracks {
        match track_data_end(t) {
            Ok(Some(end)) if end > file_len => {
                let kind = if &t.handler == b"vide" { "video" } else { "a" };
                return Some(format!(
                    "truncated: {kind} track {} has sample data up to byte {end}, but the file has {file_len} bytes",
                    t.id
                ));
            }
            Ok(_) => {}
            Err(super::reader::ParseError::Malformed(m)) => return Some(format!("track {}: {m}", t.id)),
            Err(super::reader::ParseError::Io(e)) => return Some(e.to_string()),
        }
    }
    // A video track without samples matters only when no other video track has any. This is
    // also a fragmented file cut right after its (empty) moov: no fragment arrived.
    if let Some(v) = main_track(movie, b"vide").filter(|v| track_samples(v).0 == 0) {
        return Some(format!("video track {} has no samples (no frames in the file)", v.id));
    }
    None
}

fn sample_count(t: &Track) -> PResult<u64> {
    if let Some(b) = t.stsz {
        let (_, _, mut b) = full_box(b, "the stsz box")?;
        b.skip(4)?;
        return Ok(u64::from(b.u32be()?));
    }
    if let Some(b) = t.stz2 {
        let (_, _, mut b) = full_box(b, "the stz2 box")?;
        b.skip(4)?;
        return Ok(u64::from(b.u32be()?));
    }
    Ok(0)
}

/// Sample sizes from `stsz` or `stz2`, read lazily from the box bytes.
enum Sizes<'a> {
    Constant(u64, u64),
    Table { data: &'a [u8], bits: u32, count: u64 },
}

impl Sizes<'_> {
    fn count(&self) -> u64 {
        match self {
            Sizes::Constant(_, n) => *n,
            Sizes::Table { count, .. } => *count,
        }
    }

    fn get(&self, i: u64) -> u64 {
        match self {
            Sizes::Constant(s, _) => *s,
            Sizes::Table { data, bits, .. } => {
                let i = i as usize;
                match bits {
                    32 => u64::from(u32::from_be_bytes(data[i * 4..i * 4 + 4].try_into().expect("4 bytes"))),
                    16 => u64::from(u16::from_be_bytes([data[i * 2], data[i * 2 + 1]])),
                    8 => u64::from(data[i]),
                    _ => u64::from(if i.is_multiple_of(2) { data[i / 2] >> 4 } else { data[i / 2] & 0x0F }),
                }
            }
        }
    }
}

fn sizes_of<'a>(t: &Track<'a>) -> PResult<Option<Sizes<'a>>> {
    if let Some(body) = t.stsz {
        let (_, _, mut b) = full_box(body, "the stsz box")?;
        let size = b.u32be()?;
        let count = b.u32be()?;
        if size != 0 {
            return Ok(Some(Sizes::Constant(u64::from(size), u64::from(count))));
        }
        let data = b.rest();
        if (count as usize).saturating_mul(4) > data.len() {
            return malformed(format!("the stsz box lists {count} samples but holds {} bytes", data.len()));
        }
        return Ok(Some(Sizes::Table { data, bits: 32, count: u64::from(count) }));
    }
    if let Some(body) = t.stz2 {
        let (_, _, mut b) = full_box(body, "the stz2 box")?;
        b.skip(3)?;
        let bits = u32::from(b.u8()?);
        let count = b.u32be()?;
        if !matches!(bits, 4 | 8 | 16) {
            return malformed(format!("the stz2 box has field size {bits}"));
        }
        let data = b.rest();
        let needed = (u64::from(count) * u64::from(bits)).div_ceil(8);
        if needed > data.len() as u64 {
            return malformed(format!("the stz2 box lists {count} samples but holds {} bytes", data.len()));
        }
        return Ok(Some(Sizes::Table { data, bits, count: u64::from(count) }));
    }
    Ok(None)
}

/// The end offset of the last byte of sample data the track points to (None without tables).
fn track_data_end(t: &Track) -> PResult<Option<u64>> {
    let (offsets, wide) = match (t.stco, t.co64) {
        (Some(b), _) => (b, false),
        (None, Some(b)) => (b, true),
        (None, None) => return Ok(None),
    };
    let Some(stsc) = t.stsc else { return Ok(None) };
    let Some(sizes) = sizes_of(t)? else { return Ok(None) };
    let (_, _, mut ob) = full_box(offsets, "the chunk offset box")?;
    let chunk_count = u64::from(ob.u32be()?);
    let width = if wide { 8 } else { 4 };
    let offsets = ob.rest();
    if chunk_count.saturating_mul(width) > offsets.len() as u64 {
        return malformed(format!(
            "the chunk offset table lists {chunk_count} chunks but holds {} bytes",
            offsets.len()
        ));
    }
    let (_, _, mut sb) = full_box(stsc, "the stsc box")?;
    let runs = u64::from(sb.u32be()?);
    let stsc = sb.rest();
    if runs.saturating_mul(12) > stsc.len() as u64 {
        return malformed(format!("the stsc box lists {runs} entries but holds {} bytes", stsc.len()));
    }
    let run = |i: u64| {
        let e = &stsc[i as usize * 12..i as usize * 12 + 8];
        (
            u64::from(u32::from_be_bytes(e[0..4].try_into().expect("4 bytes"))),
            u64::from(u32::from_be_bytes(e[4..8].try_into().expect("4 bytes"))),
        )
    };
    let mut max_end = 0u64;
    let mut sample = 0u64;
    let mut run_i = 0u64;
    for chunk in 0..chunk_count {
        if sample >= sizes.count() {
            break;
        }
        // stsc runs are 1-based by first chunk: advance while the next run has started.
        while run_i + 1 < runs && run(run_i + 1).0 <= chunk + 1 {
            run_i += 1;
        }
        if runs == 0 {
            return malformed("the stsc box is empty but chunks exist");
        }
        let per_chunk = run(run_i).1;
        let n = per_chunk.min(sizes.count() - sample);
        let bytes = match sizes {
            Sizes::Constant(s, _) => s.saturating_mul(n),
            Sizes::Table { .. } => (sample..sample + n).fold(0u64, |acc, i| acc.saturating_add(sizes.get(i))),
        };
        let o = chunk as usize * width as usize;
        let offset = if wide {
            u64::from_be_bytes(offsets[o..o + 8].try_into().expect("8 bytes"))
        } else {
            u64::from(u32::from_be_bytes(offsets[o..o + 4].try_into().expect("4 bytes")))
        };
        max_end = max_end.max(offset.saturating_add(bytes));
        sample += n;
    }
    Ok(Some(max_end))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let stsc = full(
            b"stsc",
            0,
            &[1u32.to_be_bytes(), 1u32.to_be_bytes(), samples.to_be_bytes(), 1u32.to_be_bytes()].concat(),
        );
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
            let trex = full(
                b"trex",
                0,
                &[1u32.to_be_bytes(), 1u32.to_be_bytes(), 512u32.to_be_bytes(), [0; 4], [0; 4]].concat(),
            );
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
}
