//! Carries out an image plan: decode (under memory limits), orient, pad or crop, resample with
//! `fast_image_resize` (Lanczos3), encode — re-compressing before it ever scales down further.

use std::io::Cursor;
use std::path::Path;

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::codecs::jpeg::JpegEncoder;
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
    // 8-bit RGB(A) keeps the resampler on its fast paths and every encoder happy.
    let src = if img.color().has_alpha() {
        DynamicImage::ImageRgba8(img.to_rgba8())
    } else {
        DynamicImage::ImageRgb8(img.to_rgb8())
    };
    let mut dst = DynamicImage::new(w, h, src.color());
    let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    Resizer::new().resize(&src, &mut dst, &opts).map_err(|e| FixError::Failed(format!("resampling failed: {e}")))?;
    Ok(dst)
}

fn encode(img: &DynamicImage, format: &str, quality: u8) -> Result<Vec<u8>, FixError> {
    let mut out = Vec::new();
    let fail = |e: image::ImageError| FixError::Failed(format!("encoding {format} failed: {e}"));
    match format {
        "jpeg" => {
            let rgb = img.to_rgb8();
            JpegEncoder::new_with_quality(&mut out, quality)
                .write_image(&rgb, rgb.width(), rgb.height(), image::ExtendedColorType::Rgb8)
                .map_err(fail)?;
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

/// Encodes to fit `max_bytes`: JPEG by bisecting the quality (95 down to 30); other formats as
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
        } else {
            let best = encode(img, "jpeg", 92)?;
            if best.len() as u64 <= max_bytes {
                notes.push("encoded JPEG q=92".into());
                return Ok((best, notes));
            }
            // Largest quality whose file fits.
            let (mut lo, mut hi) = (30u8, 91u8);
            let mut fit: Option<(u8, Vec<u8>)> = None;
            while lo <= hi {
                let q = lo + (hi - lo) / 2;
                let b = encode(img, "jpeg", q)?;
                if b.len() as u64 <= max_bytes {
                    fit = Some((q, b));
                    lo = q + 1;
                } else {
                    hi = q - 1;
                }
            }
            if let Some((q, b)) = fit {
                notes.push(format!("re-encoded JPEG q={q} to fit {} MB", max_bytes as f64 / 1e6));
                return Ok((b, notes));
            }
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
