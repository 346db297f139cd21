//! WebP (RIFF container, RFC 9649): VP8 / VP8L / VP8X headers for size, EXIF for orientation,
//! ANIM for animation, and whether every chunk fits in the RIFF payload the file holds.

use super::exif;
use super::facts::MediaFacts;
use super::reader::{fourcc_str, malformed, Bytes, PResult, Reader};

/// Chunk payloads read into memory are capped (headers are tiny; EXIF is capped too).
const MAX_READ: u32 = 64 * 1024;

pub(crate) fn probe(r: &mut Reader, facts: &mut MediaFacts) -> PResult<()> {
    let mut hdr = [0; 12];
    r.read_exact_at(0, &mut hdr, "the RIFF header")?;
    let riff_size = u32::from_le_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]);
    let mut riff_end = 8 + u64::from(riff_size);
    if riff_end > r.len() {
        // Read the headers that are there, but the file is cut short.
        facts.flag(format!("truncated: the WebP RIFF header declares {riff_end} bytes, but the file has {}", r.len()));
        riff_end = r.len();
    }
    let mut pos = 12u64;
    let mut first = true;
    let mut saw_image = false;
    let mut exif_allowed = false;
    while pos + 8 <= riff_end {
        let mut ch = [0; 8];
        r.read_exact_at(pos, &mut ch, "a WebP chunk header")?;
        let fourcc: [u8; 4] = [ch[0], ch[1], ch[2], ch[3]];
        let size = u32::from_le_bytes([ch[4], ch[5], ch[6], ch[7]]);
        let data_start = pos + 8;
        let data_end = data_start + u64::from(size);
        // A cut chunk: read the bitstream header if it is there, then report the truncation.
        let cut = data_end > riff_end;
        let cut_message = || {
            format!(
                "truncated: WebP chunk '{}' at offset {pos} needs {size} bytes past the end of the file",
                fourcc_str(&fourcc)
            )
        };
        if cut && !matches!(&fourcc, b"VP8 " | b"VP8L") {
            facts.flag(cut_message());
            break;
        }
        let want = size.min(MAX_READ);
        let read_len = match &fourcc {
            b"VP8 " | b"VP8L" => want.min(32),
            b"VP8X" | b"ANIM" | b"EXIF" => want,
            _ => 0,
        };
        let data = r.read_vec(data_start, u64::from(read_len), u64::from(MAX_READ), "a WebP chunk")?;
        match &fourcc {
            b"VP8X" if first => {
                read_vp8x(&data, facts)?;
                exif_allowed = true;
            }
            b"VP8 " if !saw_image => {
                if facts.width.is_none() {
                    read_vp8(&data, facts)?;
                }
                saw_image = true;
            }
            b"VP8L" if !saw_image => {
                if facts.width.is_none() {
                    read_vp8l(&data, facts)?;
                }
                saw_image = true;
            }
            b"ANMF" => saw_image = true,
            b"EXIF" if exif_allowed => {
                let tiff = data.strip_prefix(b"Exif\0\0").unwrap_or(&data);
                facts.orientation = exif::read_tiff(tiff).orientation;
                facts.apply_orientation();
            }
            _ if first => {
                return malformed(format!("the first WebP chunk is '{}', not VP8/VP8L/VP8X", fourcc_str(&fourcc)))
            }
            _ => {}
        }
        if cut {
            facts.flag(cut_message());
            break;
        }
        first = false;
        // Chunks are padded to an even size.
        pos = data_end + u64::from(size & 1);
    }
    if !saw_image {
        return malformed("the WebP holds no image data (VP8/VP8L/ANMF)");
    }
    Ok(())
}

fn read_vp8x(d: &[u8], facts: &mut MediaFacts) -> PResult<()> {
    let mut b = Bytes::new(d, "the VP8X chunk");
    let flags = b.u8()?;
    b.skip(3)?;
    let w = b.take(3)?;
    let h = b.take(3)?;
    let width = 1 + u32::from_le_bytes([w[0], w[1], w[2], 0]);
    let height = 1 + u32::from_le_bytes([h[0], h[1], h[2], 0]);
    facts.animated = Some(flags & 0x02 != 0);
    facts.color_type = Some(if flags & 0x10 != 0 { "rgba" } else { "rgb" }.to_string());
    facts.alpha = Some(flags & 0x10 != 0);
    facts.set_image_size(width, height);
    Ok(())
}

/// VP8 key frame header (RFC 6386 §9.1): 3-byte frame tag, start code 9d 01 2a, 14-bit sizes.
fn read_vp8(d: &[u8], facts: &mut MediaFacts) -> PResult<()> {
    let mut b = Bytes::new(d, "the VP8 frame header");
    let tag = b.take(3)?;
    if tag[0] & 1 != 0 {
        return malformed("the WebP's VP8 frame is not a key frame");
    }
    if b.take(3)? != [0x9D, 0x01, 0x2A] {
        return malformed("the WebP's VP8 frame has no start code");
    }
    let width = u32::from(b.u16le()? & 0x3FFF);
    let height = u32::from(b.u16le()? & 0x3FFF);
    if width == 0 || height == 0 {
        return malformed("the WebP's VP8 frame declares a zero size");
    }
    facts.color_type = Some("rgb".into());
    facts.alpha = facts.alpha.or(Some(false));
    facts.coding = Some("lossy".into());
    facts.animated = Some(false);
    facts.set_image_size(width, height);
    Ok(())
}

/// VP8L header (lossless bitstream spec §3): signature 0x2f, 14-bit width-1 and height-1.
fn read_vp8l(d: &[u8], facts: &mut MediaFacts) -> PResult<()> {
    let mut b = Bytes::new(d, "the VP8L header");
    if b.u8()? != 0x2F {
        return malformed("the WebP's VP8L data has no signature");
    }
    let bits = b.u32le()?;
    let width = (bits & 0x3FFF) + 1;
    let height = ((bits >> 14) & 0x3FFF) + 1;
    if bits >> 29 != 0 {
        return malformed("the WebP's VP8L header has an unknown version");
    }
    facts.color_type = Some(if (bits >> 28) & 1 != 0 { "rgba" } else { "rgb" }.to_string());
    facts.alpha = facts.alpha.or(Some((bits >> 28) & 1 != 0));
    facts.coding = Some("lossless".into());
    facts.animated = Some(false);
    facts.set_image_size(width, height);
    Ok(())
}
