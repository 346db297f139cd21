//! AVI (Microsoft RIFF AVI, with OpenDML extensions): walks the RIFF chunks with seeks, reads
//! the header list (`avih`, per-stream `strh`/`strf`, `vprp`, `dmlh`) and never the `movi`
//! payload; checks that every RIFF and LIST holds the bytes it declares.

use super::facts::{reduce, round_to, MediaFacts};
use super::reader::{fourcc_str, malformed, Bytes, PResult, ParseError, Reader};

/// The header list is small (a few KB); cap what is read into memory.
const MAX_HDRL: u64 = 1024 * 1024;
/// Most top-level RIFF chunks (AVI + AVIX extensions) walked.
const MAX_RIFFS: u32 = 4096;
/// Most streams considered.
const MAX_STREAMS: usize = 32;

#[derive(Default)]
struct Stream {
    kind: [u8; 4],
    handler: [u8; 4],
    scale: u32,
    rate: u32,
    length: u32,
    compression: [u8; 4],
    width: i32,
    height: i32,
    frame_aspect: Option<(u32, u32)>,
}

#[derive(Default)]
struct Header {
    us_per_frame: u32,
    total_frames: u32,
    width: u32,
    height: u32,
    odml_frames: Option<u32>,
    streams: Vec<Stream>,
}

pub(crate) fn probe(r: &mut Reader, facts: &mut MediaFacts) -> PResult<()> {
    let len = r.len();
    let mut pos = 0u64;
    let mut header: Option<Header> = None;
    let mut saw_movi = false;
    let mut riffs = 0;
    while pos + 8 <= len {
        riffs += 1;
        if riffs > MAX_RIFFS {
            return malformed("too many RIFF chunks");
        }
        let mut h = [0; 12];
        let n = (len - pos).min(12) as usize;
        r.read_exact_at(pos, &mut h[..n], "a RIFF header")?;
        let id: [u8; 4] = [h[0], h[1], h[2], h[3]];
        let size = u64::from(u32::from_le_bytes([h[4], h[5], h[6], h[7]]));
        if &id != b"RIFF" {
            if riffs == 1 {
                return malformed("not a RIFF file");
            }
            break; // junk after the last RIFF: ignored, as players do
        }
        let mut end = pos + 8 + size;
        if size == 0 && riffs == 1 {
            // An unfinalised recording: the size was never written. Players read to the end.
            end = len;
        } else if end > len {
            // Keep reading what is there (the headers usually are), but the file is cut short.
            facts.flag(format!(
                "truncated: the RIFF chunk at offset {pos} declares {size} bytes, but only {} remain",
                len - pos - 8
            ));
            end = len;
        }
        if n < 12 {
            return malformed("a RIFF chunk has no form type");
        }
        let form: [u8; 4] = [h[8], h[9], h[10], h[11]];
        if riffs == 1 && &form != b"AVI " {
            return malformed(format!("RIFF form type is '{}', not 'AVI '", fourcc_str(&form)));
        }
        match walk_riff(r, pos + 12, end, &mut header, &mut saw_movi) {
            Ok(()) => {}
            Err(ParseError::Malformed(m)) if header.is_some() => {
                facts.flag(m);
                break;
            }
            Err(e) => return Err(e),
        }
        pos = end + (size & 1);
    }
    let Some(header) = header else {
        return malformed("the AVI has no header list (hdrl)");
    };
    fill_facts(&header, facts);
    if !saw_movi {
        return malformed("the AVI has no media data (movi list)");
    }
    Ok(())
}

fn walk_riff(r: &mut Reader, start: u64, end: u64, header: &mut Option<Header>, saw_movi: &mut bool) -> PResult<()> {
    let mut pos = start;
    while pos + 8 <= end {
        let mut h = [0; 12];
        let n = (end - pos).min(12) as usize;
        r.read_exact_at(pos, &mut h[..n], "a RIFF chunk header")?;
        let id: [u8; 4] = [h[0], h[1], h[2], h[3]];
        let size = u64::from(u32::from_le_bytes([h[4], h[5], h[6], h[7]]));
        let chunk_end = pos + 8 + size;
        if &id == b"LIST" && n == 12 && &h[8..12] == b"movi" {
            *saw_movi = true;
        }
        if chunk_end > end {
            return malformed(format!(
                "truncated: AVI chunk '{}' at offset {pos} declares {size} bytes past the end of its RIFF",
                fourcc_str(&id)
            ));
        }
        if &id == b"LIST" && n == 12 {
            match &h[8..12] {
                b"hdrl" if header.is_none() => {
                    let data = r.read_vec(pos + 12, size - 4, MAX_HDRL, "the AVI header list")?;
                    *header = Some(parse_hdrl(&data)?);
                }
                _ => {}
            }
        }
        pos = chunk_end + (size & 1);
    }
    Ok(())
}

/// Calls `f(id, body)` for each RIFF chunk in `data` (sizes checked against `data`).
fn for_each_chunk<'a>(data: &'a [u8], mut f: impl FnMut(&[u8; 4], &'a [u8]) -> PResult<()>) -> PResult<()> {
    let mut pos = 0usize;
    while data.len() - pos >= 8 {
        let id: [u8; 4] = data[pos..pos + 4].try_into().expect("4 bytes");
        let size = u32::from_le_bytes(data[pos + 4..pos + 8].try_into().expect("4 bytes")) as usize;
        let body_end = (pos + 8).checked_add(size).filter(|&e| e <= data.len());
        let Some(body_end) = body_end else {
            return malformed(format!("AVI chunk '{}' overruns its list", fourcc_str(&id)));
        };
        f(&id, &data[pos + 8..body_end])?;
        pos = (body_end + (size & 1)).min(data.len());
    }
    Ok(())
}

fn parse_hdrl(data: &[u8]) -> PResult<Header> {
    let mut hdr = Header::default();
    for_each_chunk(data, |id, body| {
        match id {
            b"avih" => {
                let mut b = Bytes::new(body, "the avih chunk");
                hdr.us_per_frame = b.u32le()?;
                b.skip(12)?;
                hdr.total_frames = b.u32le()?;
                b.skip(12)?;
                hdr.width = b.u32le()?;
                hdr.height = b.u32le()?;
            }
            b"LIST" if body.len() >= 4 && &body[..4] == b"strl" && hdr.streams.len() < MAX_STREAMS => {
                hdr.streams.push(parse_strl(&body[4..])?);
            }
            b"LIST" if body.len() >= 4 && &body[..4] == b"odml" => {
                for_each_chunk(&body[4..], |id, body| {
                    if id == b"dmlh" && body.len() >= 4 {
                        hdr.odml_frames = Some(u32::from_le_bytes(body[0..4].try_into().expect("4 bytes")));
                    }
                    Ok(())
                })?;
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(hdr)
}

fn parse_strl(data: &[u8]) -> PResult<Stream> {
    let mut s = Stream::default();
    for_each_chunk(data, |id, body| {
        match id {
            b"strh" => {
                let mut b = Bytes::new(body, "the strh chunk");
                s.kind = b.fourcc()?;
                s.handler = b.fourcc()?;
                b.skip(12)?; // flags, priority, language, initial frames
                s.scale = b.u32le()?;
                s.rate = b.u32le()?;
                b.skip(4)?; // start
                s.length = b.u32le()?;
            }
            b"strf" if &s.kind == b"vids" => {
                let mut b = Bytes::new(body, "the strf chunk");
                b.skip(4)?;
                s.width = b.i32le()?;
                s.height = b.i32le()?;
                b.skip(4)?;
                s.compression = b.fourcc()?;
            }
            b"vprp" => {
                // VideoPropHeader: the frame aspect ratio is the sixth field (x in the high word).
                let mut b = Bytes::new(body, "the vprp chunk");
                b.skip(20)?;
                let aspect = b.u32le()?;
                let (x, y) = (aspect >> 16, aspect & 0xFFFF);
                if x > 0 && y > 0 {
                    s.frame_aspect = Some((x, y));
                }
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(s)
}

/// Codec name for an AVI video compression fourcc (FFmpeg's names).
fn codec_name(cc: &[u8; 4]) -> String {
    let upper: Vec<u8> = cc.iter().map(u8::to_ascii_uppercase).collect();
    match upper.as_slice() {
        b"H264" | b"X264" | b"AVC1" | b"DAVC" | b"VSSH" => "h264",
        b"HEVC" | b"H265" | b"HVC1" | b"HEV1" | b"X265" => "hevc",
        b"XVID" | b"DIVX" | b"DX50" | b"FMP4" | b"MP4V" | b"M4S2" => "mpeg4",
        b"DIV3" | b"MP43" => "msmpeg4v3",
        b"MJPG" | b"AVRN" | b"LJPG" => "mjpeg",
        b"\0\0\0\0" | b"DIB " | b"RAW " => "rawvideo",
        b"CVID" => "cinepak",
        b"MPG2" | b"MPEG" => "mpeg2video",
        b"VP80" => "vp8",
        b"VP90" => "vp9",
        b"AV01" => "av1",
        b"DVSD" | b"DV25" | b"DV50" | b"DVHD" | b"CDVC" => "dvvideo",
        b"FFV1" => "ffv1",
        b"HFYU" => "huffyuv",
        _ => return fourcc_str(cc).trim().to_lowercase(),
    }
    .to_string()
}

fn fill_facts(h: &Header, facts: &mut MediaFacts) {
    // 'iavs' is a type-1 DV stream: interleaved audio and video in one.
    let video = h.streams.iter().find(|s| &s.kind == b"vids" || &s.kind == b"iavs");
    facts.has_video = Some(video.is_some());
    if let Some(a) = h.streams.iter().find(|s| &s.kind == b"auds") {
        facts.audio_codec = Some(if a.handler == [0; 4] { "audio".into() } else { fourcc_str(&a.handler) });
    }
    let Some(v) = video else { return };
    let cc = if &v.kind == b"iavs" {
        *b"dvsd"
    } else if v.compression != [0; 4] {
        v.compression
    } else {
        v.handler
    };
    facts.video_codec = Some(codec_name(&cc));
    facts.codec_tag = Some(fourcc_str(&cc));
    let (w, h_) = (v.width.unsigned_abs(), v.height.unsigned_abs());
    let (w, h_) = if w > 0 && h_ > 0 { (w, h_) } else { (h.width, h.height) };
    if w > 0 && h_ > 0 {
        // vprp's frame aspect (e.g. 16:9) over the stored size gives the sample aspect ratio.
        let sar = v.frame_aspect.and_then(|(x, y)| reduce(u64::from(x) * u64::from(h_), u64::from(y) * u64::from(w)));
        facts.set_video_size(w, h_, sar, 0);
    }
    let frames = match h.odml_frames {
        Some(f) if f > v.length => f,
        _ => v.length,
    };
    if v.rate > 0 && v.scale > 0 {
        let fps = f64::from(v.rate) / f64::from(v.scale);
        facts.frame_rate = Some(round_to(fps, 3));
        if frames > 0 {
            let secs = f64::from(frames) * f64::from(v.scale) / f64::from(v.rate);
            facts.video_duration_s = Some(round_to(secs, 6));
            facts.duration_s = facts.video_duration_s;
            facts.frame_count = Some(u64::from(frames));
        }
    } else if h.us_per_frame > 0 && h.total_frames > 0 {
        facts.frame_rate = Some(round_to(1e6 / f64::from(h.us_per_frame), 3));
        let secs = f64::from(h.total_frames) * f64::from(h.us_per_frame) / 1e6;
        facts.duration_s = Some(round_to(secs, 6));
        facts.video_duration_s = facts.duration_s;
        facts.frame_count = Some(u64::from(h.total_frames));
    }
}
