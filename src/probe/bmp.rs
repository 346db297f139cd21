//! BMP (Windows bitmap: BITMAPFILEHEADER + BITMAPCOREHEADER/BITMAPINFOHEADER/V4/V5): size,
//! orientation of rows (top-down when the height is negative), and whether the file holds the
//! pixel data its headers declare.

use super::facts::MediaFacts;
use super::reader::{malformed, Bytes, PResult, Reader};

pub(crate) fn probe(r: &mut Reader, facts: &mut MediaFacts) -> PResult<()> {
    let mut hdr = [0; 14 + 40];
    let n = (r.len().min(hdr.len() as u64)) as usize;
    r.read_exact_at(0, &mut hdr[..n], "the bitmap headers")?;
    let mut b = Bytes::new(&hdr[..n], "the bitmap headers");
    b.skip(2)?; // "BM"
    let _file_size = b.u32le()?; // often wrong in the wild; the pixel data is what counts
    b.skip(4)?;
    let pixel_offset = b.u32le()?;
    let dib_size = b.u32le()?;
    let (width, height, bpp, compression, image_size): (i64, i64, u16, u32, u32) = if dib_size == 12 {
        let w = b.u16le()?;
        let h = b.u16le()?;
        b.skip(2)?;
        (i64::from(w), i64::from(h), b.u16le()?, 0, 0)
    } else if dib_size >= 16 {
        let w = b.i32le()?;
        let h = b.i32le()?;
        b.skip(2)?;
        let bpp = b.u16le()?;
        let (comp, size) = if dib_size >= 40 {
            let comp = b.u32le()?;
            (comp, b.u32le()?)
        } else {
            (0, 0)
        };
        (i64::from(w), i64::from(h), bpp, comp, size)
    } else {
        return malformed(format!("unsupported bitmap header size {dib_size}"));
    };
    if width <= 0 {
        return malformed(format!("bitmap declares width {width}"));
    }
    if height == 0 || height == i64::from(i32::MIN) {
        return malformed(format!("bitmap declares height {height}"));
    }
    let top_down = height < 0;
    let rows = height.unsigned_abs();
    if width > i64::from(u32::MAX) || rows > u64::from(u32::MAX) {
        return malformed("bitmap size out of range");
    }
    if !matches!(bpp, 1 | 2 | 4 | 8 | 16 | 24 | 32 | 64) {
        return malformed(format!("bitmap declares {bpp} bits per pixel"));
    }
    facts.bit_depth = Some(bpp.min(255) as u8);
    facts.color_type = Some(
        if bpp <= 8 {
            "palette"
        } else if bpp == 32 {
            "rgba"
        } else {
            "rgb"
        }
        .to_string(),
    );
    facts.coding = Some(if top_down { "top-down" } else { "bottom-up" }.to_string());
    facts.set_image_size(width as u32, rows as u32);

    let min_offset = 14u64 + u64::from(dib_size);
    if u64::from(pixel_offset) < min_offset {
        return malformed(format!("bitmap pixel data offset {pixel_offset} points inside its headers"));
    }
    // BI_RGB (0) and BI_BITFIELDS (3, 6): rows padded to 4 bytes. Compressed: sizeImage.
    let data_len = match compression {
        0 | 3 | 6 => {
            let bits = (width as u64).checked_mul(u64::from(bpp)).ok_or_else(too_big)?;
            let stride = bits.div_ceil(32) * 4;
            stride.checked_mul(rows).ok_or_else(too_big)?
        }
        1 | 2 | 4 | 5 => {
            if top_down && matches!(compression, 1 | 2) {
                return malformed("a compressed (RLE) bitmap cannot be top-down");
            }
            u64::from(image_size)
        }
        other => return malformed(format!("unknown bitmap compression {other}")),
    };
    let needed = u64::from(pixel_offset).checked_add(data_len).ok_or_else(too_big)?;
    if needed > r.len() {
        return malformed(format!(
            "truncated: the bitmap needs {needed} bytes for its pixel data, but the file has {}",
            r.len()
        ));
    }
    Ok(())
}

fn too_big() -> super::reader::ParseError {
    super::reader::ParseError::Malformed("bitmap size overflows".into())
}
