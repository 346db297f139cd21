//! GIF (GIF89a specification): the logical screen size, transparency, and whether the file
//! holds more than one image (an animation, of which `fix` keeps the first frame). GIF is not
//! an accepted format, so damage is not judged here; the walk only stops where the data does.

use super::facts::MediaFacts;
use super::reader::{PResult, Reader, SeqReader};

/// Images counted before the walk stops: two make an animation.
const FRAMES_WANTED: u32 = 2;

pub(crate) fn probe(r: &mut Reader, facts: &mut MediaFacts) -> PResult<()> {
    let head = r.head();
    let Some(lsd) = head.get(6..13) else { return Ok(()) };
    let w = u16::from_le_bytes([lsd[0], lsd[1]]);
    let h = u16::from_le_bytes([lsd[2], lsd[3]]);
    if w > 0 && h > 0 {
        facts.set_image_size(u32::from(w), u32::from(h));
    }
    facts.color_type = Some("palette".into());
    let global_table = if lsd[4] & 0x80 != 0 { 3u64 << ((lsd[4] & 0x07) + 1) } else { 0 };
    let mut seq = r.seq(13);
    // A damaged or cut file simply ends the count: what was seen is reported.
    let (frames, transparent) = count_images(&mut seq, global_table).unwrap_or((0, false));
    if frames > 0 {
        facts.animated = Some(frames >= FRAMES_WANTED);
    }
    if transparent {
        facts.alpha = Some(true);
    }
    Ok(())
}

/// Counts image descriptors (at most [`FRAMES_WANTED`]) and notes a transparent colour in a
/// graphic control extension before the first image.
fn count_images(seq: &mut SeqReader, global_table: u64) -> PResult<(u32, bool)> {
    seq.skip(global_table, "the global colour table")?;
    let (mut frames, mut transparent) = (0u32, false);
    loop {
        match seq.byte("a GIF block")? {
            // Image descriptor: position and size (8), flags, then an optional local colour
            // table, the LZW code size and the image data sub-blocks.
            0x2C => {
                frames += 1;
                if frames >= FRAMES_WANTED {
                    return Ok((frames, transparent));
                }
                let mut desc = [0u8; 9];
                seq.read_exact(&mut desc, "an image descriptor")?;
                if desc[8] & 0x80 != 0 {
                    seq.skip(3u64 << ((desc[8] & 0x07) + 1), "a local colour table")?;
                }
                seq.byte("the LZW code size")?;
                skip_sub_blocks(seq)?;
            }
            // Extension: label, then sub-blocks. A graphic control extension (0xF9) carries the
            // transparency flag in the first byte of its data.
            0x21 => {
                let label = seq.byte("an extension label")?;
                if label == 0xF9 && frames == 0 {
                    let len = seq.byte("a graphic control extension")?;
                    if len >= 1 {
                        let flags = seq.byte("a graphic control extension")?;
                        transparent |= flags & 0x01 != 0;
                        seq.skip(u64::from(len) - 1, "a graphic control extension")?;
                    }
                    if len > 0 {
                        skip_sub_blocks(seq)?;
                    }
                } else {
                    skip_sub_blocks(seq)?;
                }
            }
            // Trailer, or anything else: the image data is over.
            _ => return Ok((frames, transparent)),
        }
    }
}

/// Skips data sub-blocks up to and including the block terminator (a zero length).
fn skip_sub_blocks(seq: &mut SeqReader) -> PResult<()> {
    loop {
        let n = seq.byte("a data sub-block")?;
        if n == 0 {
            return Ok(());
        }
        seq.skip(u64::from(n), "a data sub-block")?;
    }
}
