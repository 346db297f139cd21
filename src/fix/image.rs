//! Carries out an image plan: decode (under memory limits), orient, pad or crop, resample with
//! `fast_image_resize` (Lanczos3), encode — re-compressing before it ever scales down further.

use std::io::Cursor;
use std::path::Path;

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, GenericImageView, ImageFormat, Rgba, RgbaImage};

use super::plan::{Anchor, FixPlan, FixSpec, Op};
use super::{saliency, FixError};
use crate::probe::{Format, MediaFacts};

/// Largest side decoded.
const MAX_SIDE: u32 = 30_000;

/// The most memory one image fix may use by default (`--max-decode-memory`).
pub const DEFAULT_MAX_DECODE_BYTES: u64 = 1 << 30;

/// What fixing this image takes in memory at its peak, from its header alone: what decoding
/// takes ([`MediaFacts::decode_memory_estimate`]), a second copy of the picture (orientation,
/// conversion to 8 bits, padding), and the output side (resampling and encoding, at most the
/// 4096 px limit). Deliberately on the high side: the decision is made before a byte is
/// allocated, and a wrong "fits" would be a broken promise.
pub fn fix_memory_estimate(facts: &MediaFacts) -> Option<u64> {
    let decode = facts.decode_memory_estimate()?;
    let output = 4096 * 4096 * 4 * 3;
    decode.checked_add(facts.picture_bytes()?)?.checked_add(output)
}

/// The picture of a local image file for the quality advisor: decoded under `budget` (from the
/// header, as a fix is), at a JPEG's DCT scale when its longest side stays at least `side`.
pub fn decode_for_quality(input: &Path, facts: &MediaFacts, budget: u64, side: u32) -> Result<DynamicImage, String> {
    if fix_memory_estimate(facts).unwrap_or(u64::MAX) > budget {
        return Err("too large to decode within the memory budget".into());
    }
    let data = crate::probe::read_regular(input, budget).map_err(|e| e.to_string())?;
    let (w, h) = (facts.width.unwrap_or(0).max(1), facts.height.unwrap_or(0).max(1));
    let s = f64::from(side) / f64::from(w.max(h));
    let at_least = (s < 1.0).then(|| ((f64::from(w) * s).ceil() as u32, (f64::from(h) * s).ceil() as u32));
    decode(&data, facts.format, budget, at_least).map_err(|e| e.to_string())
}

/// What the image executor wrote.
pub(crate) struct Encoded {
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// The format of the bytes.
    pub format: Format,
    /// Size of the picture written.
    pub width: u32,
    /// Size of the picture written.
    pub height: u32,
    /// Whether the picture written has an alpha channel.
    pub alpha: bool,
    /// Encodes of the whole picture the size budget took.
    pub full_encodes: u32,
}

/// Runs `plan` on `input` and returns the encoded picture and the changes made, for people.
pub(crate) fn run(
    input: &Path,
    facts: &MediaFacts,
    plan: &FixPlan,
    spec: &FixSpec,
) -> Result<(Encoded, Vec<String>), FixError> {
    // Decided from the header, before anything is read or allocated.
    let budget = spec.max_decode_bytes.unwrap_or(DEFAULT_MAX_DECODE_BYTES);
    let need = fix_memory_estimate(facts).unwrap_or(u64::MAX);
    if need > budget {
        let (w, h) = (facts.width.unwrap_or(0), facts.height.unwrap_or(0));
        let coding = facts.coding.as_deref().map(|c| format!("{c} ")).unwrap_or_default();
        return Err(FixError::Unfixable(format!(
            "fixing this {w}x{h} {coding}{} needs about {:.1} GB of memory, over the {:.1} GB allowed \
             (--max-decode-memory raises it)",
            facts.format.name().to_ascii_uppercase(),
            need as f64 / 1e9,
            budget as f64 / 1e9
        )));
    }
    // Held only until it is decoded: a 25 MB JPEG need not sit beside its pixels.
    let mut data =
        Some(crate::probe::read_regular(input, budget).map_err(|e| FixError::io(input.display().to_string(), e))?);
    let mut changes = Vec::new();
    let mut img = DynamicImage::new_rgb8(1, 1);
    let target = plan.ops.iter().find_map(|op| match op {
        Op::Encode { format, .. } => Some(*format),
        _ => None,
    });
    let keeps_alpha = target.is_some_and(|f| matches!(f, Format::Png | Format::Webp));
    let background = spec.background.unwrap_or([255, 255, 255]);
    for op in &plan.ops {
        match op {
            Op::Copy => return Err(FixError::Failed("a copy is not an image operation".into())),
            Op::Remux { .. } | Op::Trim { .. } | Op::Reencode { .. } => {
                return Err(FixError::Failed("not an image operation".into()))
            }
            Op::Decode { format, animated } => {
                let bytes = data.take().ok_or_else(|| FixError::Failed("the plan decodes twice".into()))?;
                img = decode(&bytes, *format, budget, shrink_target(plan))?;
                drop(bytes);
                if *animated {
                    changes.push(format!(
                        "kept the first frame of the animated {} (the API uses one picture)",
                        format.name().to_ascii_uppercase()
                    ));
                }
                // A format without alpha gets the picture flattened at once, so padding and
                // scaling work on what will be seen; an alpha channel that is opaque
                // everywhere (GIF and BMP decode with one) carries nothing and is dropped.
                let transparent = img.color().has_alpha() && has_transparency(&img);
                if img.color().has_alpha() && (!keeps_alpha || !transparent) {
                    img = flatten(&img, background);
                    if transparent {
                        let name = target.map_or("the output format", |f| f.name()).to_ascii_uppercase();
                        changes.push(format!(
                            "flattened transparency onto #{:02X}{:02X}{:02X} ({name} has no alpha channel; \
                             --background sets the colour)",
                            background[0], background[1], background[2]
                        ));
                    }
                }
            }
            Op::Orient { orientation } => {
                let o = image::metadata::Orientation::from_exif(*orientation)
                    .unwrap_or(image::metadata::Orientation::NoTransforms);
                let (w, h) = img.dimensions();
                img.apply_orientation(o);
                let (nw, nh) = img.dimensions();
                changes.push(format!("applied EXIF orientation {orientation} ({w}x{h} -> {nw}x{nh})"));
            }
            Op::Pad { from, to } => {
                let transparent = keeps_alpha && img.color().has_alpha() && spec.pad_color.is_none();
                img = pad(&img, to[0], to[1], spec.pad_color, transparent);
                let how = if transparent { " with transparent bars" } else { "" };
                changes.push(format!(
                    "padded {}x{} -> {}x{}{how} to fit the aspect ratio",
                    from[0], from[1], to[0], to[1]
                ));
            }
            Op::Crop { from, to, anchor } => {
                let vertical = to[1] < from[1];
                let (full, kept) = if vertical { (from[1], to[1]) } else { (from[0], to[0]) };
                let offset = match anchor {
                    Anchor::Auto => {
                        let at = subject_position(&img, f64::from(kept) / f64::from(full), vertical)?;
                        ((f64::from(full - kept) * at).round() as u32).min(full - kept)
                    }
                    a => a.offset(full, kept, vertical),
                };
                let (x, y) = if vertical { (0, offset) } else { (offset, 0) };
                img = img.crop_imm(x, y, to[0], to[1]);
                let axis = if vertical { "rows" } else { "columns" };
                let how =
                    if *anchor == Anchor::Auto { "the most salient part".to_string() } else { anchor_name(*anchor) };
                changes.push(format!(
                    "cropped {}x{} -> {}x{} (kept {axis} {offset}..{}: {how})",
                    from[0],
                    from[1],
                    to[0],
                    to[1],
                    offset + kept
                ));
            }
            Op::Reframe { from, to, at, face } => {
                let transparent = keeps_alpha && img.color().has_alpha() && spec.pad_color.is_none();
                img = pad_at(&img, to[0], to[1], at, spec.pad_color, transparent);
                let how = if to[0] > from[0] { "padded" } else { "cropped" };
                changes.push(format!(
                    "{how} {}x{} -> {}x{} to match the video's framing: the face goes from {:.1} % to {:.1} % of \
                     the height{}",
                    from[0],
                    from[1],
                    to[0],
                    to[1],
                    face[0] * 100.0,
                    face[1] * 100.0,
                    match spec.match_framing.and_then(|m| m.video.face_height) {
                        Some(v) if (v - face[1]).abs() > 0.005 => {
                            format!(" (the video: {:.1} %; as far as the size limits allow)", v * 100.0)
                        }
                        _ => " (as in the video)".to_string(),
                    }
                ));
            }
            Op::Scale { from, to } => {
                img = resize(&img, to[0], to[1])?;
                changes.push(format!("scaled {}x{} -> {}x{}", from[0], from[1], to[0], to[1]));
            }
            Op::Encode { format, max_bytes } => {
                let format = *format;
                let (bytes, notes, full_encodes) =
                    super::encode::encode_to_fit(&mut img, format, *max_bytes, &spec.limits)?;
                changes.extend(notes);
                let (width, height) = img.dimensions();
                let alpha = keeps_alpha && img.color().has_alpha();
                return Ok((Encoded { bytes, format, width, height, alpha, full_encodes }, changes));
            }
        }
    }
    Err(FixError::Failed("the plan has no encode step".into()))
}

fn anchor_name(a: Anchor) -> String {
    match a {
        Anchor::Auto => "auto",
        Anchor::Centre => "centred",
        Anchor::Top => "top",
        Anchor::Bottom => "bottom",
        Anchor::Left => "left",
        Anchor::Right => "right",
    }
    .to_string()
}

/// Where the subject is along the side a crop cuts (0 = start, 1 = end), from a small copy of
/// the picture (see [`super::saliency`]).
fn subject_position(img: &DynamicImage, kept: f64, vertical: bool) -> Result<f64, FixError> {
    let (w, h) = img.dimensions();
    let s = (f64::from(saliency::WORK_SIDE) / f64::from(w.max(h))).min(1.0);
    let (sw, sh) = (((f64::from(w) * s).round() as u32).max(1), ((f64::from(h) * s).round() as u32).max(1));
    // Transparent areas count as flat grey: their hidden colours are not the subject.
    let small = resize(&flatten(img, [128, 128, 128]), sw, sh)?.to_rgb8();
    let (sw, sh) = (small.width() as usize, small.height() as usize);
    let scores = saliency::scores(&saliency::Rgb { width: sw, height: sh, data: small.as_raw() });
    Ok(saliency::best_window(&saliency::profile(&scores, sw, sh, vertical), kept))
}

/// Whether any pixel is less than opaque.
fn has_transparency(img: &DynamicImage) -> bool {
    match img {
        DynamicImage::ImageRgba8(b) => b.pixels().any(|p| p.0[3] < 255),
        DynamicImage::ImageLumaA8(b) => b.pixels().any(|p| p.0[1] < 255),
        DynamicImage::ImageRgba16(b) => b.pixels().any(|p| p.0[3] < u16::MAX),
        DynamicImage::ImageLumaA16(b) => b.pixels().any(|p| p.0[1] < u16::MAX),
        DynamicImage::ImageRgba32F(b) => b.pixels().any(|p| p.0[3] < 1.0),
        other => other.color().has_alpha() && other.to_rgba8().pixels().any(|p| p.0[3] < 255),
    }
}

/// The picture composited over `bg` (8-bit, no alpha): the colours hidden under transparent
/// pixels never show. Grey stays grey when the background is grey.
fn flatten(img: &DynamicImage, bg: [u8; 3]) -> DynamicImage {
    if !img.color().has_alpha() {
        return img.clone();
    }
    let blend = |c: u8, b: u8, a: u8| -> u8 {
        let (c, b, a) = (u32::from(c), u32::from(b), u32::from(a));
        ((c * a + b * (255 - a) + 127) / 255) as u8
    };
    let grey =
        !matches!(img, DynamicImage::ImageRgba8(_) | DynamicImage::ImageRgba16(_) | DynamicImage::ImageRgba32F(_))
            && bg[0] == bg[1]
            && bg[1] == bg[2];
    if grey {
        let la = img.to_luma_alpha8();
        let out = image::GrayImage::from_fn(la.width(), la.height(), |x, y| {
            let p = la.get_pixel(x, y).0;
            image::Luma([blend(p[0], bg[0], p[1])])
        });
        return DynamicImage::ImageLuma8(out);
    }
    let rgba = img.to_rgba8();
    let out = image::RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let p = rgba.get_pixel(x, y).0;
        image::Rgb([blend(p[0], bg[0], p[3]), blend(p[1], bg[1], p[3]), blend(p[2], bg[2], p[3])])
    });
    DynamicImage::ImageRgb8(out)
}

/// The size the picture is scaled to when nothing but an orientation comes between decoding
/// and scaling (so a smaller decode changes nothing else): a JPEG may then be decoded at a DCT
/// scale that is still at least this big, in its stored orientation.
fn shrink_target(plan: &FixPlan) -> Option<(u32, u32)> {
    let mut swapped = false;
    for op in plan.ops.iter().skip_while(|op| !matches!(op, Op::Decode { .. })).skip(1) {
        match op {
            Op::Orient { orientation } => swapped = *orientation >= 5,
            Op::Scale { to, .. } => return Some(if swapped { (to[1], to[0]) } else { (to[0], to[1]) }),
            _ => return None,
        }
    }
    None
}

fn decode(
    data: &[u8],
    format: Format,
    max_alloc: u64,
    shrink_to: Option<(u32, u32)>,
) -> Result<DynamicImage, FixError> {
    #[cfg(feature = "turbojpeg")]
    if format == Format::Jpeg {
        if let Some(img) = super::turbo::decode(data, shrink_to, MAX_SIDE, max_alloc) {
            return Ok(img);
        }
    }
    let _ = shrink_to;
    let fmt = match format {
        Format::Jpeg => ImageFormat::Jpeg,
        Format::Png => ImageFormat::Png,
        Format::Bmp => ImageFormat::Bmp,
        Format::Webp => ImageFormat::WebP,
        Format::Gif => ImageFormat::Gif,
        Format::Tiff => ImageFormat::Tiff,
        other => return Err(FixError::Unfixable(format!("{} cannot be decoded here", other.name()))),
    };
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(max_alloc);
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

/// Bars around the picture up to `w`x`h`: in `color`, else a neutral colour matched to the
/// picture's edges, or fully transparent (`transparent`, for a picture with alpha kept in the
/// output).
fn pad(img: &DynamicImage, w: u32, h: u32, color: Option<[u8; 3]>, transparent: bool) -> DynamicImage {
    let (iw, ih) = img.dimensions();
    let at = [i64::from(w.saturating_sub(iw) / 2), i64::from(h.saturating_sub(ih) / 2)];
    pad_at(img, w, h, &at, color, transparent)
}

/// `img` on a `w`×`h` canvas with its top-left corner at `at` (negative: cut off); bars in
/// `color` (default: the picture's edge colour), or transparent.
fn pad_at(
    img: &DynamicImage,
    w: u32,
    h: u32,
    at: &[i64; 2],
    color: Option<[u8; 3]>,
    transparent: bool,
) -> DynamicImage {
    let (iw, ih) = img.dimensions();
    if at[0] <= 0 && at[1] <= 0 && i64::from(iw) + at[0] >= i64::from(w) && i64::from(ih) + at[1] >= i64::from(h) {
        // Inside the picture: a plain crop, no canvas.
        return img.crop_imm((-at[0]) as u32, (-at[1]) as u32, w, h);
    }
    let [r, g, b] = color.unwrap_or_else(|| edge_color(img));
    let alpha = if transparent { 0 } else { 255 };
    let mut canvas = RgbaImage::from_pixel(w, h, Rgba([r, g, b, alpha]));
    image::imageops::overlay(&mut canvas, &img.to_rgba8(), at[0], at[1]);
    if img.color().has_alpha() {
        DynamicImage::ImageRgba8(canvas)
    } else if matches!(img, DynamicImage::ImageLuma8(_) | DynamicImage::ImageLuma16(_)) && r == g && g == b {
        DynamicImage::ImageLuma8(DynamicImage::ImageRgba8(canvas).to_luma8())
    } else {
        DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(canvas).to_rgb8())
    }
}

/// Output rows resampled at once.
const RESIZE_BAND: u32 = 256;

pub(super) fn resize(img: &DynamicImage, w: u32, h: u32) -> Result<DynamicImage, FixError> {
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
    let failed = |e: &dyn std::fmt::Display| FixError::Failed(format!("resampling failed: {e}"));
    // In bands of output rows: the filter still reads the source rows around each band (the
    // result is bit for bit the same as in one pass), but the horizontal pass's intermediate is
    // one band high, not the whole picture (49 MB for 6000x4000 -> 4096 wide), and it stays in
    // cache.
    let (sw, sh) = src.dimensions();
    let scale = f64::from(sh) / f64::from(h);
    let mut resizer = Resizer::new();
    let mut y0 = 0;
    while y0 < h {
        let rows = RESIZE_BAND.min(h - y0);
        let mut band =
            fast_image_resize::images::CroppedImageMut::new(&mut dst, 0, y0, w, rows).map_err(|e| failed(&e))?;
        // The last band ends exactly at the source's end (floating point could pass it).
        let top = f64::from(y0) * scale;
        let bottom = if y0 + rows == h { f64::from(sh) } else { (f64::from(y0 + rows) * scale).min(f64::from(sh)) };
        let crop = opts.crop(0.0, top, f64::from(sw), bottom - top);
        resizer.resize(src, &mut band, &crop).map_err(|e| failed(&e))?;
        y0 += rows;
    }
    Ok(dst)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resampling in bands gives exactly what one pass gives, whatever the band count (one
    /// band, a band boundary falling anywhere, upscaling too), in grey and in colour.
    #[test]
    fn banded_resampling_is_bit_identical_to_one_pass() {
        for (sw, sh, dw, dh) in [(700, 900, 500, 600), (640, 520, 300, 257), (300, 200, 420, 280), (100, 1000, 60, 600)]
        {
            let rgb =
                image::RgbImage::from_fn(sw, sh, |x, y| image::Rgb([(x * 7 + y) as u8, (x ^ y) as u8, (y * 3) as u8]));
            for img in [
                DynamicImage::ImageRgb8(rgb.clone()),
                DynamicImage::ImageLuma8(DynamicImage::ImageRgb8(rgb).to_luma8()),
            ] {
                let banded = resize(&img, dw, dh).unwrap();
                let mut one = DynamicImage::new(dw, dh, img.color());
                let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
                Resizer::new().resize(&img, &mut one, &opts).unwrap();
                assert_eq!(banded.as_bytes(), one.as_bytes(), "{sw}x{sh} -> {dw}x{dh} {:?}", img.color());
            }
        }
    }
}
