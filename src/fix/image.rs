//! Carries out an image plan: decode (under memory limits), orient, pad or crop, resample with
//! `fast_image_resize` (Lanczos3), encode — re-compressing before it ever scales down further.

use std::io::Cursor;
use std::path::Path;

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image::codecs::webp::WebPEncoder;
use image::{DynamicImage, GenericImageView, ImageEncoder, ImageFormat, Rgba, RgbaImage};

use super::plan::{Anchor, FixPlan, FixSpec, Op};
use super::{saliency, FixError};
use crate::probe::{Format, MediaFacts};
use crate::rules::Limits;

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
    let data =
        crate::probe::read_regular(input, budget).map_err(|e| FixError::Io(format!("{}: {e}", input.display())))?;
    let mut changes = Vec::new();
    let mut img = DynamicImage::new_rgb8(1, 1);
    let target = plan.ops.iter().find_map(|op| match op {
        Op::Encode { format, .. } => Format::from_extension(format),
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
                img = decode(&data, format, budget)?;
                if *animated {
                    changes.push(format!(
                        "kept the first frame of the animated {} (the API uses one picture)",
                        format.to_ascii_uppercase()
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
            Op::Scale { from, to } => {
                img = resize(&img, to[0], to[1])?;
                changes.push(format!("scaled {}x{} -> {}x{}", from[0], from[1], to[0], to[1]));
            }
            Op::Encode { format, max_bytes } => {
                let format = Format::from_extension(format)
                    .ok_or_else(|| FixError::Failed(format!("cannot encode {format}")))?;
                let (bytes, notes) = encode_to_fit(&mut img, format, *max_bytes, &spec.limits)?;
                changes.extend(notes);
                let (width, height) = img.dimensions();
                let alpha = keeps_alpha && img.color().has_alpha();
                return Ok((Encoded { bytes, format, width, height, alpha }, changes));
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

fn decode(data: &[u8], format: &str, max_alloc: u64) -> Result<DynamicImage, FixError> {
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
    let [r, g, b] = color.unwrap_or_else(|| edge_color(img));
    let alpha = if transparent { 0 } else { 255 };
    let mut canvas = RgbaImage::from_pixel(w, h, Rgba([r, g, b, alpha]));
    let (iw, ih) = img.dimensions();
    image::imageops::overlay(&mut canvas, &img.to_rgba8(), i64::from((w - iw) / 2), i64::from((h - ih) / 2));
    if img.color().has_alpha() {
        DynamicImage::ImageRgba8(canvas)
    } else if matches!(img, DynamicImage::ImageLuma8(_) | DynamicImage::ImageLuma16(_)) && r == g && g == b {
        DynamicImage::ImageLuma8(DynamicImage::ImageRgba8(canvas).to_luma8())
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
fn encode_to_fit(
    img: &mut DynamicImage,
    format: Format,
    max_bytes: u64,
    limits: &Limits,
) -> Result<(Vec<u8>, Vec<String>), FixError> {
    let mb = max_bytes as f64 / 1e6;
    let name = format.name().to_ascii_uppercase();
    let first = if format == Format::Jpeg {
        if let Some((q, b)) = jpeg_to_fit(img, max_bytes)? {
            let note = if q == JPEG_BEST {
                format!("encoded JPEG q={q}")
            } else {
                format!("re-encoded JPEG q={q} to fit {mb} MB")
            };
            return Ok((b, vec![note]));
        }
        encode(img, format, JPEG_WORST)?.len() as u64
    } else {
        let b = encode(img, format, 0)?;
        if b.len() as u64 <= max_bytes {
            return Ok((b, vec![format!("encoded {name}")]));
        }
        b.len() as u64
    };
    let quality = if format == Format::Jpeg { JPEG_SCALE_SEARCH_QUALITY } else { 0 };
    let (w, h) = img.dimensions();
    let Some(scaled) = largest_fitting_scale(img, first, max_bytes, limits, |i| encode(i, format, quality))? else {
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
        match jpeg_to_fit(img, max_bytes)? {
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
