//! The sample tables (`stts`, `stsc`, `stsz`/`stz2`, `stco`/`co64`): counts, durations, and
//! whether every chunk lies inside the file.

use super::boxes::full_box;
use super::summary::{main_track, track_samples};
use super::{Movie, Track};
use crate::probe::reader::{malformed, PResult};

/// Total sample count and ticks of a `stts` box (bounded by the entries the box holds).
pub(super) fn stts_totals(stts: Option<&[u8]>) -> (u64, u64) {
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
pub(super) fn check_sample_tables(movie: &Movie, file_len: u64) -> Option<String> {
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
            Err(crate::probe::reader::ParseError::Malformed(m)) => return Some(format!("track {}: {m}", t.id)),
            Err(crate::probe::reader::ParseError::Io(e)) => return Some(e.to_string()),
        }
    }
    // A video track without samples matters only when no other video track has any. This is
    // also a fragmented file cut right after its (empty) moov: no fragment arrived.
    if let Some(v) = main_track(movie, b"vide").filter(|v| track_samples(v).0 == 0) {
        return Some(format!("video track {} has no samples (no frames in the file)", v.id));
    }
    None
}

pub(super) fn sample_count(t: &Track) -> PResult<u64> {
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
