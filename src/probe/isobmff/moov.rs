//! The movie box: movie and track headers, edit lists, handlers, sample descriptions (codec,
//! size, pixel aspect, protection) and where each track's sample tables are.

use super::boxes::{for_each_box, full_box};
use super::{Movie, SampleEntry, Track, MAX_DEPTH, MAX_TRACKS};
use crate::probe::reader::{malformed, PResult};

pub(super) fn parse_moov<'a>(data: &'a [u8], movie: &mut Movie<'a>) -> PResult<()> {
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
            b"avcC" if handler == b"vide" => e.bitstream_sar = crate::probe::h264::sar_from_avcc(body),
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
