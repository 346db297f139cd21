//! Ends an MP4/MOV presentation at an exact time by editing its `moov` in place.
//!
//! A stream-copy cut must keep every frame that a kept frame refers to: with B-frames, a few
//! frames shown after the cut are decoded before it. The ISO-BMFF way to keep them without
//! showing them is the edit list (ISO/IEC 14496-12 § 8.6.6): the track's presentation ends
//! where its last edit ends. FFmpeg's muxer writes an edit list for every track with
//! composition offsets, but sizes it to all the samples; this shortens it, the track header
//! and the movie header to the cut — fixed-size fields only, so no offset moves.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Largest `moov` edited (the probe's own cap).
const MAX_MOOV: u64 = 64 * 1024 * 1024;

/// A field to overwrite: where, how wide (4 or 8 bytes), the new value.
struct Patch {
    at: u64,
    wide: bool,
    value: u64,
}

/// Ends the presentation of every video track of the MP4/MOV at `path` at `end_s` seconds
/// (and the movie's at the longest track). Returns whether anything was changed; an error when
/// the file cannot be edited that way (no edit list to shorten, unreadable structure).
pub(crate) fn end_video_at(path: &Path, end_s: f64) -> io::Result<bool> {
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    let (moov_at, moov) = read_moov(&file)?;
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
    let mut movie_timescale = 0u64;
    let mut mvhd_duration: Option<(u64, bool)> = None;
    let mut tracks = Vec::new();
    for (typ, start, end) in children(&moov, 0, moov.len()) {
        match &typ {
            b"mvhd" => {
                let v = moov[start];
                let (ts_at, wide) = if v == 1 { (start + 4 + 16, true) } else { (start + 4 + 8, false) };
                movie_timescale = u64::from(be32(&moov, ts_at).ok_or_else(|| bad("short mvhd"))?);
                mvhd_duration = Some((ts_at as u64 + 4, wide));
            }
            b"trak" => tracks.push(read_trak(&moov, start, end).ok_or_else(|| bad("unreadable trak"))?),
            _ => {}
        }
    }
    let (Some((mvhd_at, mvhd_wide)), true) = (mvhd_duration, movie_timescale > 0) else {
        return Err(bad("no movie header"));
    };
    let new = (end_s * movie_timescale as f64).round() as u64;
    let mut patches = Vec::new();
    let mut longest = 0u64;
    for t in &tracks {
        if &t.handler != b"vide" {
            longest = longest.max(t.duration);
            continue;
        }
        if t.duration <= new {
            longest = longest.max(t.duration);
            continue;
        }
        let Some(elst) = &t.elst else { return Err(bad("the video track has no edit list to shorten")) };
        let Some((last, before)) = elst.entries.split_last() else { return Err(bad("empty edit list")) };
        let earlier: u64 = before.iter().map(|e| e.1).sum();
        if new <= earlier {
            return Err(bad("the cut falls inside an empty edit"));
        }
        patches.push(Patch { at: last.0, wide: elst.wide, value: new - earlier });
        patches.push(Patch { at: t.duration_at, wide: t.wide, value: new });
        longest = longest.max(new);
    }
    if patches.is_empty() {
        return Ok(false);
    }
    patches.push(Patch { at: mvhd_at, wide: mvhd_wide, value: longest });
    for p in patches {
        let at = moov_at + p.at;
        if p.wide {
            file.write_all_at(&p.value.to_be_bytes(), at)?;
        } else {
            let v = u32::try_from(p.value).map_err(|_| bad("duration too large for a 32-bit field"))?;
            file.write_all_at(&v.to_be_bytes(), at)?;
        }
    }
    file.sync_all()?;
    Ok(true)
}

struct Trak {
    handler: [u8; 4],
    /// Track header duration (movie timescale) and where it is in the moov body.
    duration: u64,
    duration_at: u64,
    wide: bool,
    elst: Option<EditList>,
}

struct EditList {
    wide: bool,
    /// Each entry: where its segment duration is, and its value.
    entries: Vec<(u64, u64)>,
}

fn read_trak(moov: &[u8], start: usize, end: usize) -> Option<Trak> {
    let mut t = Trak { handler: [0; 4], duration: 0, duration_at: 0, wide: false, elst: None };
    let mut seen_tkhd = false;
    for (typ, s, e) in children(moov, start, end) {
        match &typ {
            b"tkhd" => {
                let wide = *moov.get(s)? == 1;
                // version/flags, creation, modification, track id, reserved, then duration.
                let at = s + 4 + if wide { 8 + 8 + 4 + 4 } else { 4 + 4 + 4 + 4 };
                t.duration = if wide { be64(moov, at)? } else { u64::from(be32(moov, at)?) };
                t.duration_at = at as u64;
                t.wide = wide;
                seen_tkhd = true;
            }
            b"edts" => {
                for (typ, s, _) in children(moov, s, e) {
                    if &typ == b"elst" {
                        let wide = *moov.get(s)? == 1;
                        let count = be32(moov, s + 4)? as usize;
                        let size = if wide { 20 } else { 12 };
                        let mut entries = Vec::with_capacity(count.min(64));
                        for i in 0..count.min(4096) {
                            let at = s + 8 + i * size;
                            let d = if wide { be64(moov, at)? } else { u64::from(be32(moov, at)?) };
                            entries.push((at as u64, d));
                        }
                        t.elst = Some(EditList { wide, entries });
                    }
                }
            }
            b"mdia" => {
                for (typ, s, _) in children(moov, s, e) {
                    if &typ == b"hdlr" {
                        t.handler = moov.get(s + 8..s + 12)?.try_into().ok()?;
                    }
                }
            }
            _ => {}
        }
    }
    seen_tkhd.then_some(t)
}

/// The child boxes of `data[start..end]`: type, body start, body end. Stops at a box that
/// does not fit.
fn children(data: &[u8], start: usize, end: usize) -> Vec<([u8; 4], usize, usize)> {
    let mut out = Vec::new();
    let mut pos = start;
    while pos + 8 <= end {
        let Some(size32) = be32(data, pos) else { break };
        let Ok(typ) = <[u8; 4]>::try_from(&data[pos + 4..pos + 8]) else { break };
        let (header, size) = match size32 {
            0 => (8, (end - pos) as u64),
            1 => match be64(data, pos + 8) {
                Some(s) => (16, s),
                None => break,
            },
            s => (8, u64::from(s)),
        };
        let Some(box_end) = usize::try_from(size).ok().and_then(|s| pos.checked_add(s)) else { break };
        if size < header as u64 || box_end > end {
            break;
        }
        out.push((typ, pos + header, box_end));
        pos = box_end;
    }
    out
}

fn be32(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(d.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

fn be64(d: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(d.get(at..at.checked_add(8)?)?.try_into().ok()?))
}

/// The `moov` box's body and its offset in the file.
fn read_moov(file: &File) -> io::Result<(u64, Vec<u8>)> {
    let len = file.metadata()?.len();
    let mut pos = 0u64;
    while pos + 8 <= len {
        let mut h = [0u8; 16];
        let n = (len - pos).min(16) as usize;
        file.read_exact_at(&mut h[..n], pos)?;
        let size32 = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let (header, size) = match size32 {
            0 => (8, len - pos),
            1 if n == 16 => (16, u64::from_be_bytes(h[8..16].try_into().expect("8 bytes"))),
            s => (8, u64::from(s)),
        };
        if size < header || pos.saturating_add(size) > len {
            break;
        }
        if &h[4..8] == b"moov" {
            let body = size - header;
            if body > MAX_MOOV {
                break;
            }
            let mut moov = vec![0u8; body as usize];
            file.read_exact_at(&mut moov, pos + header)?;
            return Ok((pos + header, moov));
        }
        pos += size;
    }
    Err(io::Error::new(io::ErrorKind::InvalidData, "no moov box"))
}
