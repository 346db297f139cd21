//! JPEG through the system's libjpeg-turbo (TurboJPEG API): decoding at 1/2, 1/4 or 1/8 scale
//! when the picture is to be shrunk at least that much (the DCT does the first halvings almost
//! for free, as in vipsthumbnail's shrink-on-load), and encoding, about three times as fast as
//! `jpeg-encoder` here and smaller at the same quality. Anything libjpeg-turbo refuses (CMYK,
//! a warning on damaged data) returns `None`, and the caller decodes as before.

use image::DynamicImage;
use turbojpeg::{Colorspace, Compressor, Decompressor, Image, PixelFormat, Subsamp};

/// The scale denominators tried, largest first.
const SCALES: [usize; 3] = [8, 4, 2];

/// Decodes a JPEG, at the smallest DCT scale whose picture is still at least `at_least`
/// (width, height) when given. `max_bytes` bounds the pixels allocated; `max_side` each side.
pub(super) fn decode(data: &[u8], at_least: Option<(u32, u32)>, max_side: u32, max_bytes: u64) -> Option<DynamicImage> {
    let mut d = Decompressor::new().ok()?;
    let header = d.read_header(data).ok()?;
    if header.width == 0 || header.height == 0 || header.width > max_side as usize || header.height > max_side as usize
    {
        return None;
    }
    let (format, channels) = match header.colorspace {
        Colorspace::Gray => (PixelFormat::GRAY, 1),
        Colorspace::RGB | Colorspace::YCbCr => (PixelFormat::RGB, 3),
        _ => return None,
    };
    // TurboJPEG scales to the largest factor whose output fits the size asked for: ask for
    // exactly the scaled size (rounded up, as TJSCALED does).
    let scaled = |n: usize, den: usize| n.div_ceil(den);
    let den = at_least
        .and_then(|(tw, th)| {
            SCALES
                .into_iter()
                .find(|&den| scaled(header.width, den) >= tw as usize && scaled(header.height, den) >= th as usize)
        })
        .unwrap_or(1);
    let (w, h) = (scaled(header.width, den), scaled(header.height, den));
    let bytes = w.checked_mul(h)?.checked_mul(channels)?;
    if bytes as u64 > max_bytes {
        return None;
    }
    let mut pixels = vec![0u8; bytes];
    let image = Image { pixels: &mut pixels[..], width: w, pitch: w * channels, height: h, format };
    d.decompress(data, image).ok()?;
    let (w, h) = (u32::try_from(w).ok()?, u32::try_from(h).ok()?);
    if channels == 1 {
        image::GrayImage::from_raw(w, h, pixels).map(DynamicImage::ImageLuma8)
    } else {
        image::RgbImage::from_raw(w, h, pixels).map(DynamicImage::ImageRgb8)
    }
}

/// Baseline JPEG of 8-bit RGB (4:2:0) or grey pixels.
pub(super) fn encode(pixels: &[u8], w: u32, h: u32, grey: bool, quality: u8) -> Option<Vec<u8>> {
    let mut c = Compressor::new().ok()?;
    c.set_quality(i32::from(quality.clamp(1, 100)));
    let (format, channels) = if grey { (PixelFormat::GRAY, 1) } else { (PixelFormat::RGB, 3) };
    c.set_subsamp(if grey { Subsamp::Gray } else { Subsamp::Sub2x2 });
    let (w, h) = (w as usize, h as usize);
    if pixels.len() != w.checked_mul(h)?.checked_mul(channels)? {
        return None;
    }
    c.compress_to_vec(Image { pixels, width: w, pitch: w * channels, height: h, format }).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_picture_survives_the_round_trip_and_shrinks_on_load() {
        let (w, h) = (640u32, 480u32);
        let px: Vec<u8> = (0..w * h).flat_map(|i| [(i % w) as u8, (i / w) as u8, 128]).collect();
        let jpeg = encode(&px, w, h, false, 90).expect("encodes");
        let full = decode(&jpeg, None, 30_000, 1 << 30).expect("decodes");
        assert_eq!((full.width(), full.height()), (640, 480));
        // At least 150x100: a quarter (160x120) is the smallest scale that is big enough.
        let small = decode(&jpeg, Some((150, 100)), 30_000, 1 << 30).expect("decodes scaled");
        assert_eq!((small.width(), small.height()), (160, 120));
        let grey: Vec<u8> = (0..w * h).map(|i| (i % 251) as u8).collect();
        let g = decode(&encode(&grey, w, h, true, 90).unwrap(), None, 30_000, 1 << 30).unwrap();
        assert!(matches!(g, DynamicImage::ImageLuma8(_)), "grey stays grey");
        // Limits are kept and hostile bytes refused, never a panic.
        assert!(decode(&jpeg, None, 600, 1 << 30).is_none(), "a side over the limit");
        assert!(decode(&jpeg, None, 30_000, 1000).is_none(), "over the memory budget");
        assert!(decode(&jpeg[..jpeg.len() / 3], None, 30_000, 1 << 30).is_none(), "truncated: left to the fallback");
        assert!(decode(b"not a jpeg", None, 30_000, 1 << 30).is_none());
    }
}
