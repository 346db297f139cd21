//! MP4 / MOV / 3GP (ISO/IEC 14496-12, QuickTime File Format): walks the top-level boxes with
//! seeks (never reading `mdat`), reads the whole `moov` (capped), and takes from it duration
//! (`mvhd`, `mdhd`), size and rotation (`tkhd` matrix, § 8.3.2), sample aspect ratio (`pasp`),
//! codec (`stsd`), frame rate (`stts`) and checks that the sample tables (`stsc`, `stsz`/`stz2`,
//! `stco`/`co64`) point inside the file. Fragmented files (`moof`) get their duration from
//! `mehd` or the fragments' `trun` boxes.
//!
//! `boxes` decodes headers, `moov` and `moof` read the movie and its fragments, `tables`
//! the sample tables, and `summary` turns what they found into facts.

mod boxes;
mod moof;
mod moov;
mod summary;
mod tables;
#[cfg(test)]
mod tests;

use super::facts::MediaFacts;
use super::reader::{fourcc_str, malformed, PResult, Reader};

/// Largest `moov` read into memory. A 30 s clip's moov is tens of KB; 200 MB files a few MB.
const MAX_MOOV: u64 = 64 * 1024 * 1024;
/// Largest `moof` read into memory.
const MAX_MOOF: u64 = 16 * 1024 * 1024;
/// Deepest box nesting followed.
pub(super) const MAX_DEPTH: usize = 12;
/// Most top-level boxes walked (each costs one small read).
const MAX_TOP_LEVEL_BOXES: u32 = 200_000;
/// Most tracks considered.
pub(super) const MAX_TRACKS: usize = 64;

#[derive(Default)]
pub(super) struct Movie<'a> {
    pub(super) timescale: u32,
    pub(super) duration: u64,
    pub(super) fragment_duration: Option<u64>,
    pub(super) trex_default_duration: Vec<(u32, u32)>,
    pub(super) tracks: Vec<Track<'a>>,
}

#[derive(Default)]
pub(super) struct Track<'a> {
    pub(super) id: u32,
    pub(super) handler: [u8; 4],
    pub(super) matrix: [i32; 9],
    pub(super) tkhd_width: u32,
    pub(super) tkhd_height: u32,
    pub(super) timescale: u32,
    pub(super) duration: u64,
    /// Sum of the edit list's segment durations (movie timescale), when the track has one.
    pub(super) edit_duration: Option<u64>,
    pub(super) entry: Option<SampleEntry>,
    pub(super) stts: Option<&'a [u8]>,
    pub(super) stsc: Option<&'a [u8]>,
    pub(super) stsz: Option<&'a [u8]>,
    pub(super) stz2: Option<&'a [u8]>,
    pub(super) stco: Option<&'a [u8]>,
    pub(super) co64: Option<&'a [u8]>,
    pub(super) fragment_ticks: u64,
    pub(super) fragment_samples: u64,
}

#[derive(Default, Clone)]
pub(super) struct SampleEntry {
    /// The codec's fourcc: the entry's type, or the original format of a protected entry.
    pub(super) fourcc: [u8; 4],
    /// What the codec is named from, when it is not `fourcc` (an `mp4v` entry's object type).
    pub(super) codec: Option<&'static str>,
    pub(super) width: u16,
    pub(super) height: u16,
    pub(super) pasp: Option<(u32, u32)>,
    /// SAR from the H.264 SPS VUI, used when there is no `pasp`.
    pub(super) bitstream_sar: Option<(u32, u32)>,
    /// A protected entry (`encv`/`enca`/`sinf`): `fourcc` is then the original format (`frma`).
    pub(super) encrypted: bool,
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
        let boxes::Header { typ, header_len, size } = boxes::read_header(&h[..n], pos)?;
        // Size 0: the last box, to the end of the file.
        let size = size.unwrap_or(len - pos);
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
    moov::parse_moov(&moov_data, &mut movie)?;
    for moof in &moofs {
        moof::parse_moof(moof, &mut movie)?;
    }
    summary::fill_facts(&movie, facts, !moofs.is_empty());
    if let Some(problem) = tables::check_sample_tables(&movie, len) {
        facts.flag(problem);
    }
    Ok(())
}
