//! PNG (ISO/IEC 15948, PNG 3rd ed. §5): IHDR for size and colour, eXIf for orientation, acTL for
//! animation, and every chunk's CRC up to IEND for integrity.

use super::exif;
use super::facts::MediaFacts;
use super::reader::{malformed, PResult, Reader};
use super::Integrity;

/// Chunk lengths are at most 2^31-1 (§5.3).
const MAX_CHUNK: u32 = 0x7FFF_FFFF;
/// eXIf payloads larger than this are not parsed.
const MAX_EXIF: u32 = 64 * 1024;

/// Short of [`Integrity::Full`], reads chunks up to the first IDAT and (with `HeadAndTail`)
/// checks that the tail holds IEND instead of hashing every chunk (remote inputs).
pub(crate) fn probe(r: &mut Reader, facts: &mut MediaFacts, integrity: Integrity) -> PResult<()> {
    let mut seq = r.seq(8);
    let mut first = true;
    let mut seen_idat = false;
    loop {
        let at = seq.pos();
        let mut hdr = [0; 8];
        seq.read_exact(&mut hdr, "a chunk header")?;
        let len = u32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
        let ctype: [u8; 4] = [hdr[4], hdr[5], hdr[6], hdr[7]];
        let name = super::reader::fourcc_str(&ctype);
        if len > MAX_CHUNK {
            return malformed(format!("PNG chunk '{name}' at offset {at} declares length {len}, over 2^31-1"));
        }
        if !ctype.iter().all(u8::is_ascii_alphabetic) {
            return malformed(format!("invalid PNG chunk type '{name}' at offset {at}"));
        }
        if first && &ctype != b"IHDR" {
            return malformed("the first PNG chunk is not IHDR");
        }
        if integrity != Integrity::Full && &ctype == b"IDAT" {
            if facts.width.is_none() {
                return malformed("the first PNG chunk is not IHDR");
            }
            if integrity == Integrity::HeadOnly {
                return Ok(());
            }
            drop(seq);
            return r.check_tail(b"IEND\xAE\x42\x60\x82", 12, "the PNG has no IEND chunk at its end (truncated?)");
        }
        let mut crc = crc32fast::Hasher::new();
        crc.update(&ctype);
        // Small chunks whose contents we need are kept; everything else is only hashed.
        let keep = match &ctype {
            b"IHDR" | b"acTL" => len <= 64,
            b"eXIf" => len <= MAX_EXIF,
            _ => false,
        };
        let mut data = Vec::new();
        if keep {
            data.resize(len as usize, 0);
            seq.read_exact(&mut data, "a chunk")?;
            crc.update(&data);
        } else {
            seq.stream(u64::from(len), &format!("PNG chunk '{name}'"), |b| crc.update(b))?;
        }
        let mut stored = [0; 4];
        seq.read_exact(&mut stored, "a chunk CRC")?;
        // A bad CRC in a critical chunk (upper-case first letter) is damage; in an ancillary
        // chunk libpng and Pillow only drop the chunk, so it does not fail the image.
        let critical = ctype[0].is_ascii_uppercase();
        if crc.finalize() != u32::from_be_bytes(stored) && critical {
            return malformed(format!("PNG chunk '{name}' at offset {at} has a bad CRC (damaged data)"));
        }
        match &ctype {
            b"IHDR" if first => read_ihdr(&data, facts)?,
            b"IHDR" => return malformed("a second IHDR chunk"),
            b"eXIf" if keep => {
                facts.orientation = exif::read_tiff(&data).orientation;
                facts.apply_orientation();
            }
            b"acTL" => facts.animated = Some(true),
            // A transparent colour (or palette alpha) makes pixels see-through, as an alpha
            // channel does.
            b"tRNS" => facts.alpha = Some(true),
            b"IDAT" => seen_idat = true,
            b"IEND" => {
                if !seen_idat {
                    return malformed("the PNG has no image data (IDAT)");
                }
                return Ok(());
            }
            _ => {}
        }
        first = false;
    }
}

fn read_ihdr(d: &[u8], facts: &mut MediaFacts) -> PResult<()> {
    if d.len() != 13 {
        return malformed(format!("PNG IHDR has length {}, not 13", d.len()));
    }
    let width = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
    let height = u32::from_be_bytes([d[4], d[5], d[6], d[7]]);
    let (depth, color) = (d[8], d[9]);
    if width == 0 || height == 0 || width > MAX_CHUNK || height > MAX_CHUNK {
        return malformed(format!("PNG IHDR declares an impossible size {width}x{height}"));
    }
    let color_name = match (color, depth) {
        (0, 1 | 2 | 4 | 8 | 16) => "gray",
        (2, 8 | 16) => "rgb",
        (3, 1 | 2 | 4 | 8) => "palette",
        (4, 8 | 16) => "gray-alpha",
        (6, 8 | 16) => "rgba",
        _ => return malformed(format!("PNG IHDR has an invalid colour type {color} / bit depth {depth}")),
    };
    facts.bit_depth = Some(depth);
    facts.color_type = Some(color_name.to_string());
    facts.alpha = Some(matches!(color, 4 | 6));
    facts.animated = Some(false);
    facts.set_image_size(width, height);
    Ok(())
}
