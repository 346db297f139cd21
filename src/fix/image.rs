//! Carries out an image plan: decode (under memory limits), orient, pad or crop, resample with
//! `fast_image_resize` (Lanczos3), encode — re-compressing before it ever scales down further.

use std::io::Cursor;
use std::path::Path;

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image::codecs::webp::WebPEncoder;
use image::{DynamicImage, GenericImageView, ImageEncoder, ImageFormat, Rgba, RgbaImage};

use super::plan::{FixPlan, Op};
use super::FixError;

/// Largest side decoded.
const MAX_SIDE: u32 = 30_000;
/// Largest decoder allocation.
const MAX_ALLOC: u64 = 1536 * 1024 * 1024;

/// Runs `plan` on `input` and returns the encoded bytes and the changes made, for people.
pub(crate) fn run(
    input: &Path,
    plan: &FixPlan,
    pad_color: Option<[u8; 3]>,
) -> Result<(Vec<u8>, Vec<String>), FixError> {
    let data = std::fs::read(input).map_err(|e| FixError::Io(format!("{}: {e}", input.display())))?;
    let mut changes = Vec::new();
    let mut img = DynamicImage::new_rgb8(1, 1);
    for op in &plan.ops {
        match op {
            Op::Copy => return Ok((data, vec!["copied (already compliant)".into()])),
            Op::Remux { .. } | Op::Trim { .. } | Op::Reencode { .. } => {
                return Err(FixError::Failed("not an image operation".into()))
            }
            Op::Decode { format } => img = decode(&data, format)?,
            Op::Orient { orientation } => {
                let o = image::metadata::Orientation::from_exif(*orientation)
                    .unwrap_or(image::metadata::Orientation::NoTransforms);
                let (w, h) = img.dimensions();
                img.apply_orientation(o);
                let (nw, nh) = img.dimensions();
                changes.push(format!("applied EXIF orientation {orientation} ({w}x{h} -> {nw}x{nh})"));
            }
            Op::Pad { from, to } => {
                img = pad(&img, to[0], to[1], pad_color);
                changes.push(format!("padded {}x{} -> {}x{} to fit the aspect ratio", from[0], from[1], to[0], to[1]));
            }
            Op::Crop { from, to } => {
                let x = (from[0] - to[0]) / 2;
                let y = (from[1] - to[1]) / 2;
                img = img.crop_imm(x, y, to[0], to[1]);
                changes.push(format!("cropped {}x{} -> {}x{} (centred)", from[0], from[1], to[0], to[1]));
            }
            Op::Scale { from, to } => {
                img = resize(&img, to[0], to[1])?;
                changes.push(format!("scaled {}x{} -> {}x{}", from[0], from[1], to[0], to[1]));
            }
            Op::Encode { format, max_bytes } => {
                let (bytes, note) = encode_to_fit(&mut img, format, *max_bytes)?;
                changes.extend(note);
                return Ok((bytes, changes));
            }
        }
    }
    Err(FixError::Failed("the plan has no encode step".into()))
}

fn decode(data: &[u8], format: &str) -> Result<DynamicImage, FixError> {
    let fmt = match format {
        "jpeg" => ImageFormat::Jpeg,
        "png" => ImageFormat::Png,
        "bmp" => ImageFormat::Bmp,
        "webp" => ImageFormat::WebP,
        "gif" => ImageFormat::Gif,
        "tiff" => ImageFormat::Tiff,
        other => return Err(FixError::Unfixable(format!("{other} cannot be decoded here"))),
    };
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    let mut reader = image::ImageReader::with_format(Cursor::new(data), fmt);
    reader.limits(limits);
    let decoder = reader.into_decoder().map_err(|e| FixError::Unfixable(format!("cannot decode the image: {e}")))?;
    // The orientation is applied by the plan's Orient step (from the probe), not by the decoder.
    DynamicImage::from_decoder(decoder).map_err(|e| FixError::Unfixable(format!("cannot decode the image: {e}")))
}

/// A neutral colour matched to the picture's edges: the mean of its border pixels.
fn edge_color(img: &DynamicImage) -> [u8; 3] {
    let (w, h) = img.dimensions();
    let (mut sum, mut n) = ([0u64; 3], 0u64);
    let step = ((w + h) / 512).max(1);
    let mut add = |x: u32, y: u32| {
        let p = img.get_pixel(x, y).0;
        for c in 0..3 {
            sum[c] += u64::from(p[c]);
        }
        n += 1;
    };
    for x in (0..w).step_by(step as usize) {
        add(x, 0);
        add(x, h - 1);
    }
    for y in (0..h).step_by(step as usize) {
        add(0, y);
        add(w - 1, y);
    }
    let n = n.max(1);
    [(sum[0] / n) as u8, (sum[1] / n) as u8, (sum[2] / n) as u8]
}

fn pad(img: &DynamicImage, w: u32, h: u32, color: Option<[u8; 3]>) -> DynamicImage {
    let [r, g, b] = color.unwrap_or_else(|| edge_color(img));
    let mut canvas = RgbaImage::from_pixel(w, h, Rgba([r, g, b, 255]));
    let (iw, ih) = img.dimensions();
    image::imageops::overlay(&mut canvas, &img.to_rgba8(), i64::from((w - iw) / 2), i64::from((h - ih) / 2));
    if img.color().has_alpha() {
        DynamicImage::ImageRgba8(canvas)
    } else {
        DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(canvas).to_rgb8())
    }
}

fn resize(img: &DynamicImage, w: u32, h: u32) -> Result<DynamicImage, FixError> {
    // 8-bit grey or RGB(A) keeps the resampler on its fast paths and every encoder happy; an image that
    // already is one is read in place (no 70 MB copy of a 24-megapixel picture).
    let converted;
    let src = match img {
        DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) | DynamicImage::ImageLuma8(_) => img,
        _ if img.color().has_alpha() => {
            converted = DynamicImage::ImageRgba8(img.to_rgba8());
            &converted
        }
        _ => {
            converted = DynamicImage::ImageRgb8(img.to_rgb8());
            &converted
        }
    };
    let mut dst = DynamicImage::new(w, h, src.color());
    let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    Resizer::new().resize(src, &mut dst, &opts).map_err(|e| FixError::Failed(format!("resampling failed: {e}")))?;
    Ok(dst)
}

/// Baseline JPEG, 4:2:0 (as libjpeg and vips write by default), from 8-bit RGB or grey pixels.
fn jpeg(pixels: &[u8], w: u32, h: u32, grey: bool, quality: u8) -> Result<Vec<u8>, FixError> {
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

fn encode(img: &DynamicImage, format: &str, quality: u8) -> Result<Vec<u8>, FixError> {
    let mut out = Vec::new();
    let fail = |e: image::ImageError| FixError::Failed(format!("encoding {format} failed: {e}"));
    match format {
        "jpeg" => {
            let (px, grey) = jpeg_pixels(img);
            return jpeg(&px, img.width(), img.height(), grey, quality);
        }
        "png" => {
            let enc = PngEncoder::new_with_quality(&mut out, CompressionType::Best, PngFilter::Adaptive);
            let img = if img.color().has_alpha() {
                DynamicImage::ImageRgba8(img.to_rgba8())
            } else {
                DynamicImage::ImageRgb8(img.to_rgb8())
            };
            enc.write_image(img.as_bytes(), img.width(), img.height(), img.color().into()).map_err(fail)?;
        }
        "webp" => {
            let rgba = img.to_rgba8();
            WebPEncoder::new_lossless(&mut out)
                .write_image(&rgba, rgba.width(), rgba.height(), image::ExtendedColorType::Rgba8)
                .map_err(fail)?;
        }
        "bmp" => {
            let rgb = img.to_rgb8();
            image::codecs::bmp::BmpEncoder::new(&mut out)
                .write_image(&rgb, rgb.width(), rgb.height(), image::ExtendedColorType::Rgb8)
                .map_err(fail)?;
        }
        other => return Err(FixError::Failed(format!("cannot encode {other}"))),
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
fn jpeg_to_fit(img: &DynamicImage, max_bytes: u64) -> Result<Option<(u8, Vec<u8>)>, FixError> {
    let (px, grey) = jpeg_pixels(img);
    let (w, h) = img.dimensions();
    let full = |q: u8| jpeg(&px, w, h, grey, q);
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
    loop {
        let b = full(q)?;
        if fits(&b) {
            return Ok(Some((q, b)));
        }
        if q == JPEG_WORST {
            return Ok(None);
        }
        q = q.saturating_sub(3).max(JPEG_WORST);
    }
}

/// Encodes to fit `max_bytes`: JPEG at the highest quality that fits (92 down to 30); other formats as
/// they are, falling back to JPEG (no alpha) or to scaling down (alpha) when too big.
fn encode_to_fit(img: &mut DynamicImage, format: &str, max_bytes: u64) -> Result<(Vec<u8>, Vec<String>), FixError> {
    let mut notes = Vec::new();
    let mut format = format;
    for _round in 0..8 {
        if format != "jpeg" {
            let bytes = encode(img, format, 0)?;
            if bytes.len() as u64 <= max_bytes {
                notes.push(format!("encoded {}", format.to_uppercase()));
                return Ok((bytes, notes));
            }
            if !img.color().has_alpha() {
                notes.push(format!("{} would be {} bytes: switched to JPEG", format.to_uppercase(), bytes.len()));
                format = "jpeg";
                continue;
            }
        } else if let Some((q, b)) = jpeg_to_fit(img, max_bytes)? {
            notes.push(if q == JPEG_BEST {
                format!("encoded JPEG q={q}")
            } else {
                format!("re-encoded JPEG q={q} to fit {} MB", max_bytes as f64 / 1e6)
            });
            return Ok((b, notes));
        }
        // Even the strongest compression is too big: scale down by the size ratio and retry.
        let (w, h) = img.dimensions();
        let (nw, nh) = (((f64::from(w) * 0.8) as u32).max(200), ((f64::from(h) * 0.8) as u32).max(200));
        if (nw, nh) == (w, h) {
            break;
        }
        *img = resize(img, nw, nh)?;
        notes.push(format!("scaled {w}x{h} -> {nw}x{nh} to fit {} MB", max_bytes as f64 / 1e6));
    }
    Err(FixError::Unfixable(format!("cannot make the image fit {max_bytes} bytes")))
}
