//! Matroska / WebM (RFC 9559, EBML RFC 8794): the segment's `Info` (duration) and `Tracks`
//! (codec, frame size, display size, default frame duration, encryption), found by walking the
//! segment's top-level elements with seeks — clusters are never read — and by following the
//! `SeekHead` when `Info` or `Tracks` come after the clusters.
//!
//! The API does not take Matroska, so this is what `check` needs to say what `fix` will do (a
//! remux, or a re-encode when the codec or the size must change); damage is left to FFmpeg,
//! which reads the file when it is converted.

use super::facts::{reduce, round_to, MediaFacts};
use super::reader::{PResult, Reader};

const EBML: u32 = 0x1A45_DFA3;
const SEGMENT: u32 = 0x1853_8067;
const SEEK_HEAD: u32 = 0x114D_9B74;
const SEEK: u32 = 0x4DBB;
const SEEK_ID: u32 = 0x53AB;
const SEEK_POSITION: u32 = 0x53AC;
const INFO: u32 = 0x1549_A966;
const TIMESTAMP_SCALE: u32 = 0x2A_D7B1;
const DURATION: u32 = 0x4489;
const TRACKS: u32 = 0x1654_AE6B;
const TRACK_ENTRY: u32 = 0xAE;
const TRACK_TYPE: u32 = 0x83;
const CODEC_ID: u32 = 0x86;
const CODEC_PRIVATE: u32 = 0x63A2;
const DEFAULT_DURATION: u32 = 0x23_E383;
const VIDEO: u32 = 0xE0;
const PIXEL_WIDTH: u32 = 0xB0;
const PIXEL_HEIGHT: u32 = 0xBA;
const DISPLAY_WIDTH: u32 = 0x54B0;
const DISPLAY_HEIGHT: u32 = 0x54BA;
const DISPLAY_UNIT: u32 = 0x54B2;
const CONTENT_ENCODINGS: u32 = 0x6D80;
const CONTENT_ENCODING: u32 = 0x6240;
const CONTENT_ENCODING_TYPE: u32 = 0x5033;
const CONTENT_ENCRYPTION: u32 = 0x5035;
const CLUSTER: u32 = 0x1F43_B675;

/// Largest `Info`, `Tracks` or `SeekHead` element read into memory.
const MAX_ELEMENT: u64 = 1 << 20;
/// Most top-level elements of the segment walked.
const MAX_ELEMENTS: u32 = 10_000;
/// Deepest nesting followed inside an element read into memory.
const MAX_DEPTH: usize = 8;

/// An element's ID (with its length marker, as the specification writes IDs) and the length
/// of the ID, from the first bytes of `b`.
fn read_id(b: &[u8]) -> Option<(u32, usize)> {
    let first = *b.first()?;
    let len = first.leading_zeros() as usize + 1;
    if len > 4 || b.len() < len {
        return None;
    }
    Some((b[..len].iter().fold(0u32, |acc, &x| (acc << 8) | u32::from(x)), len))
}

/// An element's data size (`None` = unknown, all value bits set) and the length of the field.
fn read_size(b: &[u8]) -> Option<(Option<u64>, usize)> {
    let first = *b.first()?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 || b.len() < len {
        return None;
    }
    let mask = if len == 8 { 0 } else { 0xFFu8 >> len };
    let mut v = u64::from(first & mask);
    let mut all_ones = (first & mask) == mask;
    for &x in &b[1..len] {
        v = (v << 8) | u64::from(x);
        all_ones &= x == 0xFF;
    }
    Some((if all_ones { None } else { Some(v) }, len))
}

/// Calls `f(id, data)` for each child element in `data` (an element of unknown size runs to
/// the end of its parent). Stops quietly where the data stops making sense.
fn for_each_element<'a>(data: &'a [u8], depth: usize, f: &mut dyn FnMut(u32, &'a [u8], usize)) {
    if depth > MAX_DEPTH {
        return;
    }
    let mut pos = 0usize;
    while pos < data.len() {
        let Some((id, id_len)) = read_id(&data[pos..]) else { return };
        let Some((size, size_len)) = read_size(&data[pos + id_len..]) else { return };
        let start = pos + id_len + size_len;
        let end = match size {
            Some(s) => match usize::try_from(s).ok().and_then(|s| start.checked_add(s)) {
                Some(e) if e <= data.len() => e,
                _ => data.len(),
            },
            None => data.len(),
        };
        f(id, &data[start..end], depth);
        pos = end;
    }
}

fn uint(b: &[u8]) -> Option<u64> {
    (b.len() <= 8).then(|| b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
}

fn float(b: &[u8]) -> Option<f64> {
    match b.len() {
        4 => Some(f64::from(f32::from_be_bytes(b.try_into().ok()?))),
        8 => Some(f64::from_be_bytes(b.try_into().ok()?)),
        _ => None,
    }
    .filter(|v| v.is_finite() && *v >= 0.0)
}

#[derive(Default)]
struct TrackEntry {
    kind: u64,
    codec_id: String,
    codec_private_fourcc: Option<[u8; 4]>,
    default_duration_ns: Option<u64>,
    pixel: Option<(u64, u64)>,
    display: (Option<u64>, Option<u64>),
    display_unit: u64,
    encrypted: bool,
}

#[derive(Default)]
struct Segment {
    timestamp_scale: Option<u64>,
    duration: Option<f64>,
    tracks: Vec<TrackEntry>,
    seen_info: bool,
    seen_tracks: bool,
}

pub(crate) fn probe(r: &mut Reader, facts: &mut MediaFacts) -> PResult<()> {
    let len = r.len();
    // The EBML header, then the segment.
    let Some((header_data, _, Some(header_size))) = element_at(r, 0)?.filter(|(_, id, _)| *id == EBML) else {
        return Ok(());
    };
    let Some((seg_data, id, seg_size)) = element_at(r, header_data.saturating_add(header_size))? else {
        return Ok(());
    };
    if id != SEGMENT {
        return Ok(());
    }
    let seg_end = seg_size.map_or(len, |s| seg_data.saturating_add(s).min(len));
    let mut seg = Segment::default();
    let mut pending: Vec<u64> = Vec::new();
    let mut visited: Vec<u64> = Vec::new();
    let mut pos = seg_data;
    let mut walked = 0u32;
    loop {
        if seg.seen_info && seg.seen_tracks {
            break;
        }
        walked += 1;
        if walked > MAX_ELEMENTS || pos >= seg_end {
            match pending.pop() {
                Some(p) if walked <= MAX_ELEMENTS => {
                    pos = p;
                    continue;
                }
                _ => break,
            }
        }
        visited.push(pos);
        let Some((data, id, size)) = element_at(r, pos)? else { break };
        let next = size.and_then(|s| data.checked_add(s));
        match id {
            INFO | TRACKS | SEEK_HEAD => {
                let n = size.unwrap_or(seg_end.saturating_sub(data)).min(seg_end.saturating_sub(data));
                if n <= MAX_ELEMENT {
                    let body = r.read_vec(data, n, MAX_ELEMENT, "a Matroska element")?;
                    match id {
                        INFO => read_info(&body, &mut seg),
                        TRACKS => read_tracks(&body, &mut seg),
                        _ => {
                            for p in read_seek_head(&body) {
                                let at = seg_data.saturating_add(p);
                                if !visited.contains(&at) && !pending.contains(&at) && pending.len() < 64 {
                                    pending.push(at);
                                }
                            }
                        }
                    }
                }
            }
            CLUSTER => {
                // Media data: never read. Whatever is still missing is found through the
                // SeekHead, or not at all (a live recording may have neither).
                match pending.pop() {
                    Some(p) => {
                        pos = p;
                        continue;
                    }
                    None => break,
                }
            }
            _ => {}
        }
        match next {
            Some(n) if n > pos => pos = n,
            _ => match pending.pop() {
                Some(p) => pos = p,
                None => break,
            },
        }
    }
    fill_facts(&seg, facts);
    Ok(())
}

/// The element at `pos`: where its data starts, its ID and its size (`None` when unknown).
fn element_at(r: &mut Reader, pos: u64) -> PResult<Option<(u64, u32, Option<u64>)>> {
    let len = r.len();
    if pos >= len {
        return Ok(None);
    }
    let mut h = [0u8; 12];
    let n = (len - pos).min(12) as usize;
    r.read_exact_at(pos, &mut h[..n], "a Matroska element header")?;
    let Some((id, id_len)) = read_id(&h[..n]) else { return Ok(None) };
    let Some((size, size_len)) = read_size(&h[id_len..n]) else { return Ok(None) };
    Ok(Some((pos + (id_len + size_len) as u64, id, size)))
}

fn read_seek_head(body: &[u8]) -> Vec<u64> {
    let mut out = Vec::new();
    for_each_element(body, 0, &mut |id, seek, d| {
        if id != SEEK {
            return;
        }
        let (mut target, mut position) = (None, None);
        for_each_element(seek, d + 1, &mut |id, v, _| match id {
            SEEK_ID => target = read_id(v).map(|(t, _)| t),
            SEEK_POSITION => position = uint(v),
            _ => {}
        });
        if let (Some(INFO | TRACKS), Some(p)) = (target, position) {
            out.push(p);
        }
    });
    out
}

fn read_info(body: &[u8], seg: &mut Segment) {
    seg.seen_info = true;
    for_each_element(body, 0, &mut |id, v, _| match id {
        TIMESTAMP_SCALE => seg.timestamp_scale = uint(v).filter(|&s| s > 0),
        DURATION => seg.duration = float(v),
        _ => {}
    });
}

fn read_tracks(body: &[u8], seg: &mut Segment) {
    seg.seen_tracks = true;
    for_each_element(body, 0, &mut |id, entry, d| {
        if id != TRACK_ENTRY || seg.tracks.len() >= 64 {
            return;
        }
        let mut t = TrackEntry::default();
        for_each_element(entry, d + 1, &mut |id, v, d| match id {
            TRACK_TYPE => t.kind = uint(v).unwrap_or(0),
            CODEC_ID => t.codec_id = String::from_utf8_lossy(v).trim_end_matches('\0').to_string(),
            // V_MS/VFW/FOURCC: a BITMAPINFOHEADER whose biCompression names the codec.
            CODEC_PRIVATE => t.codec_private_fourcc = v.get(16..20).and_then(|b| b.try_into().ok()),
            DEFAULT_DURATION => t.default_duration_ns = uint(v).filter(|&n| n > 0),
            VIDEO => {
                let (mut w, mut h) = (None, None);
                for_each_element(v, d + 1, &mut |id, v, _| match id {
                    PIXEL_WIDTH => w = uint(v),
                    PIXEL_HEIGHT => h = uint(v),
                    DISPLAY_WIDTH => t.display.0 = uint(v),
                    DISPLAY_HEIGHT => t.display.1 = uint(v),
                    DISPLAY_UNIT => t.display_unit = uint(v).unwrap_or(0),
                    _ => {}
                });
                t.pixel = w.zip(h);
            }
            CONTENT_ENCODINGS => for_each_element(v, d + 1, &mut |id, enc, d| {
                if id == CONTENT_ENCODING {
                    for_each_element(enc, d + 1, &mut |id, v, _| match id {
                        CONTENT_ENCODING_TYPE if uint(v) == Some(1) => t.encrypted = true,
                        CONTENT_ENCRYPTION => t.encrypted = true,
                        _ => {}
                    });
                }
            }),
            _ => {}
        });
        seg.tracks.push(t);
    });
}

/// FFmpeg's codec name for a Matroska CodecID.
fn codec_name(t: &TrackEntry) -> String {
    let id = t.codec_id.as_str();
    let name = match id {
        "V_MPEG4/ISO/AVC" => "h264",
        "V_MPEGH/ISO/HEVC" => "hevc",
        "V_AV1" => "av1",
        "V_VP8" => "vp8",
        "V_VP9" => "vp9",
        "V_MPEG1" => "mpeg1video",
        "V_MPEG2" => "mpeg2video",
        "V_MJPEG" => "mjpeg",
        "V_THEORA" => "theora",
        "V_PRORES" => "prores",
        "V_FFV1" => "ffv1",
        "V_UNCOMPRESSED" => "rawvideo",
        "V_MS/VFW/FOURCC" => {
            return match t.codec_private_fourcc.as_ref().map(|f| f.to_ascii_uppercase()) {
                Some(f) if matches!(&f[..], b"H264" | b"X264" | b"AVC1") => "h264".into(),
                Some(f) if matches!(&f[..], b"HEVC" | b"H265" | b"HVC1") => "hevc".into(),
                Some(f) if matches!(&f[..], b"XVID" | b"DIVX" | b"DX50" | b"FMP4" | b"MP4V") => "mpeg4".into(),
                Some(f) if &f[..] == b"MJPG" => "mjpeg".into(),
                Some(f) => super::reader::fourcc_str(&f).trim().to_ascii_lowercase(),
                None => "unknown".into(),
            };
        }
        "A_OPUS" => "opus",
        "A_VORBIS" => "vorbis",
        "A_FLAC" => "flac",
        "A_AC3" => "ac3",
        "A_EAC3" => "eac3",
        "A_DTS" => "dts",
        "A_MPEG/L3" => "mp3",
        "A_MPEG/L2" => "mp2",
        _ if id.starts_with("V_MPEG4/ISO/") => "mpeg4",
        _ if id.starts_with("A_AAC") => "aac",
        _ if id.starts_with("A_PCM/") => "pcm",
        _ => return id.trim_start_matches(['V', 'A', 'S']).trim_start_matches('_').to_ascii_lowercase(),
    };
    name.to_string()
}

fn fill_facts(seg: &Segment, facts: &mut MediaFacts) {
    let video = seg.tracks.iter().find(|t| t.kind == 1);
    let audio = seg.tracks.iter().find(|t| t.kind == 2);
    if seg.seen_tracks {
        facts.has_video = Some(video.is_some());
    }
    if let Some(a) = audio {
        facts.audio_codec = Some(codec_name(a));
    }
    if [video, audio].into_iter().flatten().any(|t| t.encrypted) {
        facts.encrypted = Some(true);
    }
    let scale = seg.timestamp_scale.unwrap_or(1_000_000) as f64;
    if let Some(d) = seg.duration.map(|d| d * scale / 1e9).filter(|&d| d > 0.0 && d < 1e9) {
        facts.duration_s = Some(round_to(d, 6));
    }
    let Some(v) = video else { return };
    facts.video_codec = Some(codec_name(v));
    facts.codec_tag = Some(v.codec_id.clone());
    if let Some(ns) = v.default_duration_ns {
        facts.frame_rate = Some(round_to(1e9 / ns as f64, 3));
    }
    let Some((w, h)) = v.pixel.filter(|&(w, h)| w > 0 && h > 0 && w <= 65_535 && h <= 65_535) else { return };
    // As FFmpeg's Matroska demuxer: a display size (in any unit but "unknown") defines the
    // sample aspect ratio, SAR = (H x DisplayWidth) / (W x DisplayHeight).
    let sar = match v.display {
        (Some(dw), Some(dh)) if dw > 0 && dh > 0 && v.display_unit < 4 && dw <= 1 << 24 && dh <= 1 << 24 => {
            reduce(h * dw, w * dh).filter(|(n, d)| n != d)
        }
        _ => None,
    };
    facts.set_video_size(w as u32, h as u32, sar, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ids_and_sizes_with_their_length_markers() {
        assert_eq!(read_id(&[0x1A, 0x45, 0xDF, 0xA3]), Some((EBML, 4)));
        assert_eq!(read_id(&[0xAE]), Some((TRACK_ENTRY, 1)));
        assert_eq!(read_id(&[0x00, 0x01]), None);
        assert_eq!(read_size(&[0x81]), Some((Some(1), 1)));
        assert_eq!(read_size(&[0x40, 0x02]), Some((Some(2), 2)));
        assert_eq!(read_size(&[0xFF]), Some((None, 1)));
        assert_eq!(read_size(&[0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]), Some((None, 8)));
        assert_eq!(read_size(&[0x01, 0, 0, 0, 0, 0, 0, 9]), Some((Some(9), 8)));
        assert_eq!(read_size(&[0x00]), None);
    }

    #[test]
    fn floats_must_be_finite_and_four_or_eight_bytes() {
        assert_eq!(float(&2500.0f32.to_be_bytes()), Some(2500.0));
        assert_eq!(float(&f64::NAN.to_be_bytes()), None);
        assert_eq!(float(&[0, 0]), None);
    }
}
