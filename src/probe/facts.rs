//! What a probe learns about one input.

use serde::Serialize;

use super::sniff::{Format, Kind};

/// Measured facts about one input. Absent facts are `None` (and omitted from JSON), never guessed.
///
/// Sizes are in pixels; `width`/`height` are the stored frame, `display_width`/`display_height`
/// what a viewer sees after rotation, EXIF orientation and sample aspect ratio are applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct MediaFacts {
    /// Image, video or unknown, from the content.
    #[serde(skip)]
    pub kind: Kind,
    /// Format recognised from the content.
    #[serde(serialize_with = "ser_format")]
    pub format: Format,
    /// File size in bytes.
    pub size_bytes: u64,
    /// Stored frame width in pixels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Stored frame height in pixels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Displayed width in pixels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_width: Option<u32>,
    /// Displayed height in pixels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_height: Option<u32>,
    /// Degrees clockwise (0/90/180/270) that turn the stored frame into the displayed one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation: Option<u16>,
    /// EXIF orientation tag (1–8) of an image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orientation: Option<u8>,
    /// Sample (pixel) aspect ratio `[num, den]` when it is not 1:1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_aspect_ratio: Option<[u32; 2]>,
    /// Duration of the file in seconds (the movie's duration for MP4/MOV).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    /// Duration of the video track in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video_duration_s: Option<f64>,
    /// Average frame rate in frames per second (29.97 stays 29.97).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_rate: Option<f64>,
    /// Number of video frames (samples) when the container says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_count: Option<u64>,
    /// Video codec name (`h264`, `hevc`, `mpeg4`, `prores`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video_codec: Option<String>,
    /// The four-character code the codec was named from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codec_tag: Option<String>,
    /// Audio codec name, when there is an audio stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio_codec: Option<String>,
    /// Whether a video container holds a video stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_video: Option<bool>,
    /// Whether the `moov` box comes before the media data (MP4/MOV "faststart").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moov_before_mdat: Option<bool>,
    /// Bits per sample (per channel) of an image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bit_depth: Option<u8>,
    /// Colour model of an image (`rgb`, `rgba`, `gray`, `palette`, `ycbcr`, `cmyk`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color_type: Option<String>,
    /// JPEG coding: `baseline`, `progressive`, `lossless`, …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coding: Option<String>,
    /// Whether an image is animated (APNG, animated WebP/GIF).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub animated: Option<bool>,
    /// Whether an image has an alpha channel or a transparent colour (PNG `tRNS`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpha: Option<bool>,
    /// Whether a stream is encrypted (CENC/CBCS `encv`/`enca` sample entries, Matroska
    /// ContentEncryption): the codec fields then name the codec inside.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<bool>,
    /// Why the file is broken, if it is (truncated, bad CRC, sample data outside the file…).
    #[serde(skip)]
    pub integrity_problem: Option<String>,
    /// Whether `--deep` decoding ran (and found no problem if `integrity_problem` is `None`).
    #[serde(skip)]
    pub deep_checked: bool,
    /// Whether some headers could not be read (a remote file over the size limit from a server
    /// without range requests): absent facts are then unknown, not missing, and no integrity
    /// judgement is made.
    #[serde(skip)]
    pub headers_incomplete: bool,
    /// The file-name extension, lower-cased, when there is one.
    #[serde(skip)]
    pub extension: Option<String>,
}

fn ser_format<S: serde::Serializer>(f: &Format, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(f.name())
}

impl MediaFacts {
    /// Empty facts for a format and size.
    pub fn new(format: Format, size_bytes: u64) -> Self {
        Self {
            kind: format.kind(),
            format,
            size_bytes,
            width: None,
            height: None,
            display_width: None,
            display_height: None,
            rotation: None,
            orientation: None,
            sample_aspect_ratio: None,
            duration_s: None,
            video_duration_s: None,
            frame_rate: None,
            frame_count: None,
            video_codec: None,
            codec_tag: None,
            audio_codec: None,
            has_video: None,
            moov_before_mdat: None,
            bit_depth: None,
            color_type: None,
            coding: None,
            animated: None,
            alpha: None,
            encrypted: None,
            integrity_problem: None,
            deep_checked: false,
            headers_incomplete: false,
            extension: None,
        }
    }

    /// Whether the content is an intact file of its format as far as the probe could tell.
    pub fn is_intact(&self) -> bool {
        self.integrity_problem.is_none()
    }

    /// Sets the stored size and derives the displayed size from an EXIF orientation (1–8):
    /// 5–8 turn the image a quarter, so width and height swap.
    pub(crate) fn set_image_size(&mut self, width: u32, height: u32) {
        self.width = Some(width);
        self.height = Some(height);
        self.apply_orientation();
    }

    pub(crate) fn apply_orientation(&mut self) {
        let (Some(w), Some(h)) = (self.width, self.height) else { return };
        let swap = matches!(self.orientation, Some(5..=8));
        let (dw, dh) = if swap { (h, w) } else { (w, h) };
        self.display_width = Some(dw);
        self.display_height = Some(dh);
    }

    /// Sets the stored size of a video and derives the displayed size from the sample aspect
    /// ratio (which widens the width) and the rotation (which may swap the axes).
    pub(crate) fn set_video_size(&mut self, width: u32, height: u32, sar: Option<(u32, u32)>, rotation: u16) {
        self.width = Some(width);
        self.height = Some(height);
        self.rotation = Some(rotation);
        let mut dw = width;
        if let Some((n, d)) = sar.filter(|&(n, d)| n > 0 && d > 0 && n != d) {
            self.sample_aspect_ratio = Some([n, d]);
            let scaled = (u64::from(width) * u64::from(n) + u64::from(d) / 2) / u64::from(d);
            dw = u32::try_from(scaled).unwrap_or(u32::MAX);
        }
        let (dw, dh) = if rotation % 180 == 90 { (height, dw) } else { (dw, height) };
        self.display_width = Some(dw);
        self.display_height = Some(dh);
    }

    /// Memory that decoding this image takes, from its header alone: the decoded picture
    /// (channels × bytes per sample, palettes expanded to RGBA) plus, for a progressive JPEG,
    /// the coefficient buffers held until the last scan (two bytes per sample of each
    /// component). `None` when the size is unknown.
    pub fn decode_memory_estimate(&self) -> Option<u64> {
        let (w, h) = (u64::from(self.width?), u64::from(self.height?));
        let pixels = w.checked_mul(h)?;
        let channels: u64 = match (self.format, self.color_type.as_deref()) {
            (Format::Jpeg, Some("gray")) => 1,
            (Format::Jpeg, Some("cmyk")) => 4,
            (Format::Jpeg, _) => 3,
            (Format::Png, Some("gray")) => 1,
            (Format::Png, Some("gray-alpha")) => 2,
            (Format::Png, Some("rgb")) => 3,
            _ => 4,
        };
        let sixteen = self.bit_depth.is_some_and(|d| d > 8) && self.format != Format::Jpeg;
        let picture = pixels.checked_mul(channels * if sixteen { 2 } else { 1 })?;
        let coefficients = if self.format == Format::Jpeg && self.coding.as_deref() == Some("progressive") {
            pixels.checked_mul(channels.min(3) * 2)?
        } else {
            0
        };
        // The JPEG decoder fills its own buffer, which is then copied; WebP's lossy decoder
        // holds its YUV planes beside the RGBA picture.
        let working = match self.format {
            Format::Jpeg => picture,
            Format::Webp => pixels.checked_mul(3)? / 2,
            _ => 0,
        };
        picture.checked_add(coefficients)?.checked_add(working)
    }

    /// The decoded picture alone at 8 bits per sample (what one more copy of it costs), from
    /// the header.
    pub fn picture_bytes(&self) -> Option<u64> {
        let (w, h) = (u64::from(self.width?), u64::from(self.height?));
        let channels = match self.color_type.as_deref() {
            Some("gray") => 1,
            Some("gray-alpha") => 2,
            Some("rgb") | Some("ycbcr") => 3,
            _ => 4,
        };
        w.checked_mul(h)?.checked_mul(channels)
    }

    /// Records the first integrity problem found (later ones are usually consequences).
    pub(crate) fn flag(&mut self, problem: impl Into<String>) {
        if self.integrity_problem.is_none() {
            self.integrity_problem = Some(problem.into());
        }
    }
}

/// Rounds to `digits` decimals, for reporting rates and durations without float noise.
pub(crate) fn round_to(x: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (x * p).round() / p
}

/// Greatest common divisor.
pub(crate) fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// A ratio reduced to lowest terms, if both parts fit in `u32` and are non-zero.
pub(crate) fn reduce(n: u64, d: u64) -> Option<(u32, u32)> {
    if n == 0 || d == 0 {
        return None;
    }
    let g = gcd(n, d);
    Some((u32::try_from(n / g).ok()?, u32::try_from(d / g).ok()?))
}
