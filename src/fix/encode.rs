//! Encoding a fixed picture within the size budget: JPEG at the highest quality that fits,
//! searched on a sample and then on full encodes; any format scaled to the largest size that
//! fits, searched on the real encoder output.

use std::cell::Cell;

use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image::codecs::webp::WebPEncoder;
use image::{DynamicImage, GenericImageView, ImageEncoder};

use super::image::resize;
use super::FixError;
use crate::probe::Format;
use crate::rules::Limits;

/// Baseline JPEG, 4:2:0 (as libjpeg and vips write by default), from 8-bit RGB or grey pixels:
/// through libjpeg-turbo when it is built in, else `jpeg-encoder`.
fn jpeg(pixels: &[u8], w: u32, h: u32, grey: bool, quality: u8) -> Result<Vec<u8>, FixError> {
    #[cfg(feature = "turbojpeg")]
    if let Some(bytes) = super::turbo::encode(pixels, w, h, grey, quality) {
        return Ok(bytes);
    }
    let (w16, h16) = match (u16::try_from(w), u16::try_from(h)) {
        (Ok(w), Ok(h)) => (w, h),
        _ => return Err(FixError::Failed(format!("{w}x{h} is too large for JPEG"))),
    };
    let mut out = Vec::with_capacity(pixels.len() / 8);
    let mut enc = jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100));
    enc.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
    let color = if grey { jpeg_encoder::ColorType::Luma } else { jpeg_encoder::ColorType::Rgb };
    enc.encode(pixels, w16, h16, color).map_err(|e| FixError::Failed(format!("encoding JPEG failed: {e}")))?;
    Ok(out)
}

/// The picture as 8-bit RGB or grey bytes, borrowed when it already is.
fn jpeg_pixels(img: &DynamicImage) -> (std::borrow::Cow<'_, [u8]>, bool) {
    match img {
        DynamicImage::ImageRgb8(b) => (std::borrow::Cow::Borrowed(b.as_raw().as_slice()), false),
        DynamicImage::ImageLuma8(b) => (std::borrow::Cow::Borrowed(b.as_raw().as_slice()), true),
        DynamicImage::ImageLuma16(_) | DynamicImage::ImageLumaA8(_) | DynamicImage::ImageLumaA16(_) => {
            (std::borrow::Cow::Owned(img.to_luma8().into_raw()), true)
        }
        _ => (std::borrow::Cow::Owned(img.to_rgb8().into_raw()), false),
    }
}

fn encode(img: &DynamicImage, format: Format, quality: u8) -> Result<Vec<u8>, FixError> {
    let mut out = Vec::new();
    let fail = |e: image::ImageError| FixError::Failed(format!("encoding {} failed: {e}", format.name()));
    let grey = matches!(
        img,
        DynamicImage::ImageLuma8(_)
            | DynamicImage::ImageLuma16(_)
            | DynamicImage::ImageLumaA8(_)
            | DynamicImage::ImageLumaA16(_)
    );
    match format {
        Format::Jpeg => {
            let (px, grey) = jpeg_pixels(img);
            return jpeg(&px, img.width(), img.height(), grey, quality);
        }
        Format::Png => {
            // 8 bits per channel; grey stays grey, alpha stays alpha.
            let img = match (grey, img.color().has_alpha()) {
                (true, true) => DynamicImage::ImageLumaA8(img.to_luma_alpha8()),
                (true, false) => DynamicImage::ImageLuma8(img.to_luma8()),
                (false, true) => DynamicImage::ImageRgba8(img.to_rgba8()),
                (false, false) => DynamicImage::ImageRgb8(img.to_rgb8()),
            };
            let enc = PngEncoder::new_with_quality(&mut out, CompressionType::Best, PngFilter::Adaptive);
            enc.write_image(img.as_bytes(), img.width(), img.height(), img.color().into()).map_err(fail)?;
        }
        Format::Webp => {
            let enc = WebPEncoder::new_lossless(&mut out);
            if img.color().has_alpha() {
                let rgba = img.to_rgba8();
                enc.write_image(&rgba, rgba.width(), rgba.height(), image::ExtendedColorType::Rgba8).map_err(fail)?;
            } else {
                let rgb = img.to_rgb8();
                enc.write_image(&rgb, rgb.width(), rgb.height(), image::ExtendedColorType::Rgb8).map_err(fail)?;
            }
        }
        Format::Bmp => {
            let rgb = img.to_rgb8();
            image::codecs::bmp::BmpEncoder::new(&mut out)
                .write_image(&rgb, rgb.width(), rgb.height(), image::ExtendedColorType::Rgb8)
                .map_err(fail)?;
        }
        other => return Err(FixError::Failed(format!("cannot encode {}", other.name()))),
    }
    Ok(out)
}

/// Highest and lowest JPEG quality tried.
const JPEG_BEST: u8 = 92;
const JPEG_WORST: u8 = 30;

/// The highest JPEG quality (92 down to 30) whose file fits `max_bytes`, with the bytes.
///
/// Full encodes of a 4096-px picture are the cost, so the quality is first searched on a sample
/// — one 16-row band in eight, whole MCUs, so the sample compresses like the picture — whose size
/// times eight predicts the full size; then the full picture is encoded at the predicted
/// quality, stepping down if it still comes out too big. Usually one full encode.
fn jpeg_to_fit(
    img: &DynamicImage,
    max_bytes: u64,
    full_encodes: &Cell<u32>,
) -> Result<Option<(u8, Vec<u8>)>, FixError> {
    let (px, grey) = jpeg_pixels(img);
    let (w, h) = img.dimensions();
    let full = |q: u8| {
        full_encodes.set(full_encodes.get() + 1);
        jpeg(&px, w, h, grey, q)
    };
    let fits = |b: &[u8]| b.len() as u64 <= max_bytes;
    let bpp = if grey { 1 } else { 3 };
    let row = w as usize * bpp;
    const BAND: usize = 16;
    let bands = (h as usize).div_ceil(BAND);
    let mut start = JPEG_BEST;
    if bands >= 32 {
        // One band in eight, or in sixteen for tall pictures: enough rows to be representative.
        let every = if bands >= 128 { 16 } else { 8 };
        let mut sample = Vec::with_capacity(px.len() / (every - 1));
        for b in (0..bands).step_by(every) {
            let (y0, y1) = (b * BAND, ((b + 1) * BAND).min(h as usize));
            sample.extend_from_slice(&px[y0 * row..y1 * row]);
        }
        let sh = (sample.len() / row) as u32;
        let scale = f64::from(h) / f64::from(sh);
        // 4% under the limit: the prediction is within a few percent on photos and noise.
        let predicted_fits = |q: u8| -> Result<bool, FixError> {
            Ok(jpeg(&sample, w, sh, grey, q)?.len() as f64 * scale <= max_bytes as f64 * 0.96)
        };
        start = if predicted_fits(JPEG_BEST)? {
            JPEG_BEST
        } else {
            // Largest predicted-to-fit quality in [lo, hi], two qualities per step on two
            // threads (the machine this targets has two cores).
            let (mut lo, mut hi) = (JPEG_WORST, JPEG_BEST - 1);
            let mut best = JPEG_WORST;
            while lo <= hi {
                let span = hi - lo;
                let (q1, q2) = (lo + span / 3, lo + 2 * span / 3 + u8::from(span > 0 && span % 3 == 0));
                let (f1, f2) = std::thread::scope(|s| {
                    let t = s.spawn(|| predicted_fits(q2));
                    let f1 = predicted_fits(q1);
                    (f1, t.join().unwrap_or_else(|_| Err(FixError::Failed("JPEG size search failed".into()))))
                });
                let (f1, f2) = (f1?, f2?);
                match (f1, f2) {
                    (true, true) => {
                        best = q2;
                        lo = q2 + 1;
                    }
                    (true, false) => {
                        best = q1;
                        lo = q1 + 1;
                        hi = q2.saturating_sub(1);
                    }
                    _ => {
                        if q1 == 0 {
                            break;
                        }
                        hi = q1 - 1;
                    }
                }
                if lo > hi || hi < JPEG_WORST {
                    break;
                }
            }
            best
        };
    }
    let mut q = start;
    let (mut q, mut bytes) = loop {
        let b = full(q)?;
        if fits(&b) {
            break (q, b);
        }
        if q == JPEG_WORST {
            return Ok(None);
        }
        q = q.saturating_sub(3).max(JPEG_WORST);
    };
    // The sample can undershoot (small pictures, unusual content): when the file fills less
    // than 90 % of the budget, search upwards on full encodes.
    let (mut lo, mut hi) = (q, JPEG_BEST);
    while lo < hi && (bytes.len() as f64) < max_bytes as f64 * 0.9 {
        let mid = (lo + hi).div_ceil(2);
        let b = full(mid)?;
        if fits(&b) {
            (lo, q, bytes) = (mid, mid, b);
        } else {
            hi = mid - 1;
        }
    }
    Ok(Some((q, bytes)))
}

/// JPEG quality used while searching the scale of a picture that no quality fits at full size;
/// the highest quality is searched again at the scale found.
const JPEG_SCALE_SEARCH_QUALITY: u8 = 75;

/// A search for the size budget stops once the file fills this share of it.
const TIGHT: f64 = 0.9;

/// Encodes `img` as `format` within `max_bytes`: a re-compression before a downscale. JPEG
/// takes the highest quality (92 down to 30) that fits; only when none fits, or for a lossless
/// format that is too big, is the picture scaled to the largest size that fits (the aspect
/// ratio kept, no side under the minimum), found on the real encoder output to within 10 % of
/// the budget. A format that cannot fit even at the smallest size allowed is an error naming
/// one that can.
/// Also returns how many encodes of the whole picture ran (the sample encodes of the search
/// are not counted).
pub(super) fn encode_to_fit(
    img: &mut DynamicImage,
    format: Format,
    max_bytes: u64,
    limits: &Limits,
) -> Result<(Vec<u8>, Vec<String>, u32), FixError> {
    let full_encodes = Cell::new(0u32);
    let (bytes, notes) = fit(img, format, max_bytes, limits, &full_encodes)?;
    Ok((bytes, notes, full_encodes.get()))
}

fn fit(
    img: &mut DynamicImage,
    format: Format,
    max_bytes: u64,
    limits: &Limits,
    full_encodes: &Cell<u32>,
) -> Result<(Vec<u8>, Vec<String>), FixError> {
    let counted = |i: &DynamicImage, q: u8| {
        full_encodes.set(full_encodes.get() + 1);
        encode(i, format, q)
    };
    let mb = max_bytes as f64 / 1e6;
    let name = format.name().to_ascii_uppercase();
    let first = if format == Format::Jpeg {
        if let Some((q, b)) = jpeg_to_fit(img, max_bytes, full_encodes)? {
            let note = if q == JPEG_BEST {
                format!("encoded JPEG q={q}")
            } else {
                format!("re-encoded JPEG q={q} to fit {mb} MB")
            };
            return Ok((b, vec![note]));
        }
        counted(img, JPEG_WORST)?.len() as u64
    } else {
        let b = counted(img, 0)?;
        if b.len() as u64 <= max_bytes {
            return Ok((b, vec![format!("encoded {name}")]));
        }
        b.len() as u64
    };
    let quality = if format == Format::Jpeg { JPEG_SCALE_SEARCH_QUALITY } else { 0 };
    let (w, h) = img.dimensions();
    let Some(scaled) = largest_fitting_scale(img, first, max_bytes, limits, |i| counted(i, quality))? else {
        let instead = if format == Format::Jpeg { "" } else { " (.jpg compresses photographs far more)" };
        return Err(FixError::Unfixable(format!(
            "{name} cannot fit {mb} MB even at the smallest size allowed ({} px on the shorter side): \
             name the output .jpg{instead}",
            limits.image_min_side
        )));
    };
    *img = scaled.0;
    let (nw, nh) = img.dimensions();
    let at_full = if format == Format::Jpeg {
        format!("even JPEG q={JPEG_WORST} at full size is {first} bytes")
    } else {
        format!("{name} at full size is {first} bytes")
    };
    let mut notes = vec![format!("scaled {w}x{h} -> {nw}x{nh} to fit {mb} MB ({at_full})")];
    let bytes = if format == Format::Jpeg {
        // The scale was found at a middling quality: take the highest that fits there.
        match jpeg_to_fit(img, max_bytes, full_encodes)? {
            Some((q, b)) => {
                notes.push(format!("re-encoded JPEG q={q} to fit {mb} MB"));
                b
            }
            None => scaled.1,
        }
    } else {
        notes.push(format!("encoded {name}"));
        scaled.1
    };
    Ok((bytes, notes))
}

/// The largest scale of `img` (aspect kept, shorter side at least the minimum) whose `encode`d
/// size fits `max_bytes`, given that full size takes `full_size` bytes; `None` when even the
/// smallest size allowed does not fit. Encoded sizes grow with the pixel count, so each guess
/// interpolates (log size against log scale) between the nearest sizes that fit and that do
/// not; the search stops within 10 % under the budget, usually after two or three encodes.
fn largest_fitting_scale(
    img: &DynamicImage,
    full_size: u64,
    max_bytes: u64,
    limits: &Limits,
    encode: impl Fn(&DynamicImage) -> Result<Vec<u8>, FixError>,
) -> Result<Option<(DynamicImage, Vec<u8>)>, FixError> {
    let (w, h) = img.dimensions();
    let short = f64::from(w.min(h));
    let s_min = f64::from(limits.image_min_side) / short;
    if s_min >= 1.0 {
        return Ok(None);
    }
    let target = max_bytes as f64 * 0.95;
    let mut too_big = (1.0f64, full_size as f64);
    let mut fits: Option<(f64, f64, DynamicImage, Vec<u8>)> = None;
    let mut s = (target / full_size as f64).sqrt().clamp(s_min, 0.995);
    let mut tried: Vec<(u32, u32)> = Vec::new();
    for _ in 0..12 {
        let (nw, nh) = scaled_size(w, h, s, limits);
        if tried.contains(&(nw, nh)) {
            break;
        }
        tried.push((nw, nh));
        let scaled = resize(img, nw, nh)?;
        let bytes = encode(&scaled)?;
        let size = bytes.len() as f64;
        if size <= max_bytes as f64 {
            if fits.as_ref().is_none_or(|f| s > f.0) {
                fits = Some((s, size, scaled, bytes));
            }
        } else if s < too_big.0 {
            too_big = (s, size);
        }
        let best = fits.as_ref().map(|f| (f.0, f.1));
        match best {
            Some((_, fs)) if fs >= max_bytes as f64 * TIGHT => break,
            _ if s <= s_min && size > max_bytes as f64 => return Ok(None),
            _ => {}
        }
        s = match best {
            // Between a fitting and a too-big scale: interpolate in log-log space.
            Some((fs_s, fs_size)) => {
                let k = (too_big.1 / fs_size).ln() / (too_big.0 / fs_s).ln().max(1e-9);
                let guess = fs_s * (target / fs_size).powf(1.0 / k.max(0.5));
                guess.clamp(fs_s + (too_big.0 - fs_s) * 0.1, too_big.0 - (too_big.0 - fs_s) * 0.1)
            }
            // Nothing fits yet: shrink as the pixel count says, a little further each time.
            None => (s * (target / size).sqrt() * 0.97).max(s_min),
        };
        if (too_big.0 - s).abs() < 1e-4 {
            break;
        }
    }
    Ok(fits.map(|f| (f.2, f.3)))
}

/// `w`x`h` scaled by `s`, the aspect ratio kept within a pixel, no side under the minimum and
/// the ratio never past the limit.
fn scaled_size(w: u32, h: u32, s: f64, limits: &Limits) -> (u32, u32) {
    let min = limits.image_min_side;
    let (mut nw, mut nh) = (((f64::from(w) * s).round() as u32).max(1), ((f64::from(h) * s).round() as u32).max(1));
    if nw < min {
        nw = min;
        nh = ((f64::from(h) * f64::from(min) / f64::from(w)).round() as u32).max(min);
    }
    if nh < min {
        nh = min;
        nw = ((f64::from(w) * f64::from(min) / f64::from(h)).round() as u32).max(min);
    }
    while f64::from(nw) > limits.max_aspect * f64::from(nh) && nw > min {
        nw -= 1;
    }
    while f64::from(nh) > limits.max_aspect * f64::from(nw) && nh > min {
        nh -= 1;
    }
    (nw.min(w), nh.min(h))
}
