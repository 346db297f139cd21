//! The limits table: every number the rules check against, named for `--limit NAME=VALUE`.

/// The limits the rules check against. [`Limits::default`] is the API's documented set.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Limits {
    /// Smallest image side in pixels.
    pub image_min_side: u32,
    /// Largest image side in pixels.
    pub image_max_side: u32,
    /// Largest image file in bytes.
    pub image_max_bytes: u64,
    /// Largest ratio of the longer to the shorter side (images and videos).
    pub max_aspect: f64,
    /// Smallest video side in pixels.
    pub video_min_side: u32,
    /// Largest video side in pixels.
    pub video_max_side: u32,
    /// Largest video file in bytes.
    pub video_max_bytes: u64,
    /// Shortest video in seconds.
    pub video_min_duration_s: f64,
    /// Longest video in seconds.
    pub video_max_duration_s: f64,
    /// Below this shorter side an image gets the `image.resolution` warning.
    pub image_recommended_min_side: u32,
    /// Below this shorter side a video gets the `video.resolution` warning.
    pub video_recommended_min_side: u32,
    /// Below this frame rate a video gets the `video.frame_rate` warning.
    pub video_recommended_min_fps: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            image_min_side: 200,
            image_max_side: 4096,
            image_max_bytes: 5_000_000,
            max_aspect: 3.0,
            video_min_side: 200,
            video_max_side: 2048,
            video_max_bytes: 200_000_000,
            video_min_duration_s: 2.0,
            video_max_duration_s: 30.0,
            image_recommended_min_side: 512,
            video_recommended_min_side: 480,
            video_recommended_min_fps: 20.0,
        }
    }
}

/// A named, settable limit (for `wanprep rules` and `--limit NAME=VALUE`).
pub struct LimitInfo {
    /// Name used on the command line.
    pub name: &'static str,
    /// What it limits.
    pub description: &'static str,
    get: fn(&Limits) -> f64,
    set: fn(&mut Limits, f64),
}

macro_rules! limit {
    ($name:literal, $field:ident, $t:ty, $desc:literal) => {
        LimitInfo { name: $name, description: $desc, get: |l| l.$field as f64, set: |l, v| l.$field = v as $t }
    };
}

/// Every limit, in the order `wanprep rules` prints them.
pub const LIMITS: &[LimitInfo] = &[
    limit!("image.min_side", image_min_side, u32, "smallest image width/height (px)"),
    limit!("image.max_side", image_max_side, u32, "largest image width/height (px)"),
    limit!("image.max_bytes", image_max_bytes, u64, "largest image file (bytes)"),
    limit!("max_aspect", max_aspect, f64, "largest longer:shorter side ratio (images and videos)"),
    limit!("video.min_side", video_min_side, u32, "smallest video width/height (px)"),
    limit!("video.max_side", video_max_side, u32, "largest video width/height (px)"),
    limit!("video.max_bytes", video_max_bytes, u64, "largest video file (bytes)"),
    limit!("video.min_duration_s", video_min_duration_s, f64, "shortest video (s)"),
    limit!("video.max_duration_s", video_max_duration_s, f64, "longest video (s)"),
    limit!("image.recommended_min_side", image_recommended_min_side, u32, "warn below this image side (px)"),
    limit!("video.recommended_min_side", video_recommended_min_side, u32, "warn below this video side (px)"),
    limit!("video.recommended_min_fps", video_recommended_min_fps, f64, "warn below this frame rate (fps)"),
];

impl LimitInfo {
    /// The limit's value in `limits`.
    pub fn get(&self, limits: &Limits) -> f64 {
        (self.get)(limits)
    }
}

impl Limits {
    /// Sets a limit by name (see [`LIMITS`]); the value must be a finite, non-negative number.
    pub fn set(&mut self, name: &str, value: f64) -> Result<(), String> {
        let info = LIMITS.iter().find(|l| l.name == name).ok_or_else(|| {
            let names: Vec<_> = LIMITS.iter().map(|l| l.name).collect();
            format!("unknown limit '{name}' (known: {})", names.join(", "))
        })?;
        if !value.is_finite() || value < 0.0 {
            return Err(format!("limit '{name}' must be a non-negative number"));
        }
        // Values that make no sense (a side of a million pixels, an aspect limit under 1:1)
        // would make `fix` plan absurd sizes: refuse them here.
        let (lo, hi, whole) = match name {
            n if n.ends_with("_side") => (1.0, 65_535.0, true),
            "max_aspect" => (1.0, 1_000.0, false),
            n if n.ends_with("max_bytes") => (1.0, 1e12, true),
            n if n.ends_with("duration_s") => (0.0, 86_400.0, false),
            n if n.ends_with("fps") => (0.0, 1_000.0, false),
            _ => (0.0, f64::MAX, false),
        };
        if value < lo || value > hi || (whole && value.fract() != 0.0) {
            let kind = if whole { "a whole number" } else { "a number" };
            return Err(format!("limit '{name}' must be {kind} from {lo} to {hi}, got {value}"));
        }
        (info.set)(self, value);
        Ok(())
    }

    /// Checks that the limits make sense together (each minimum at most its maximum).
    pub fn validate(&self) -> Result<(), String> {
        let pairs = [
            ("image.min_side", f64::from(self.image_min_side), "image.max_side", f64::from(self.image_max_side)),
            ("video.min_side", f64::from(self.video_min_side), "video.max_side", f64::from(self.video_max_side)),
            ("video.min_duration_s", self.video_min_duration_s, "video.max_duration_s", self.video_max_duration_s),
        ];
        for (lo_name, lo, hi_name, hi) in pairs {
            if lo > hi {
                return Err(format!("limit '{lo_name}' ({lo}) is above '{hi_name}' ({hi})"));
            }
        }
        if self.max_aspect < 1.0 {
            return Err(format!("limit 'max_aspect' must be at least 1, got {}", self.max_aspect));
        }
        Ok(())
    }

    /// These limits, tightened where they are looser than the API's documented ones: what a
    /// job sent to the service must meet whatever `--limit` loosened for local checks.
    pub fn within_api(&self) -> Limits {
        let api = Limits::default();
        Limits {
            image_min_side: self.image_min_side.max(api.image_min_side),
            image_max_side: self.image_max_side.min(api.image_max_side),
            image_max_bytes: self.image_max_bytes.min(api.image_max_bytes),
            max_aspect: self.max_aspect.min(api.max_aspect),
            video_min_side: self.video_min_side.max(api.video_min_side),
            video_max_side: self.video_max_side.min(api.video_max_side),
            video_max_bytes: self.video_max_bytes.min(api.video_max_bytes),
            video_min_duration_s: self.video_min_duration_s.max(api.video_min_duration_s),
            video_max_duration_s: self.video_max_duration_s.min(api.video_max_duration_s),
            ..self.clone()
        }
    }
}
