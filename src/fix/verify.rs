//! What a written file must show, and the checked write: a temporary file beside the output,
//! probed and judged by the same rules as `check` and against what the plan promised, before
//! it is renamed into place.

use std::path::Path;

use super::{FixError, FixSpec};
use crate::probe::{probe, Format, MediaFacts};
use crate::rules::{check, is_compliant, Finding, Role};

/// What the written file must show, from the input and the plan: checked after every write,
/// before the rename, besides the rules.
#[derive(Debug, Default)]
pub(crate) struct Expected {
    pub format: Option<Format>,
    /// Displayed width and height, and how far each may be off (a sample aspect ratio
    /// carried over by another container is rounded).
    pub display: Option<[u32; 2]>,
    pub display_slack: u32,
    pub rotation: Option<u16>,
    /// Duration and the tolerance either side.
    pub duration_s: Option<(f64, f64)>,
    pub frame_rate: Option<f64>,
    pub alpha: Option<bool>,
    pub codec_tag: Option<String>,
}

impl Expected {
    /// A copy shows what the input shows.
    pub(crate) fn same_as(facts: &MediaFacts) -> Expected {
        Expected {
            format: Some(facts.format),
            display: facts.display_width.zip(facts.display_height).map(|(w, h)| [w, h]),
            duration_s: facts.duration_s.map(|d| (d, 1e-3)),
            ..Expected::default()
        }
    }

    /// An encoded picture is what the executor reports it wrote.
    pub(crate) fn image(e: &super::image::Encoded) -> Expected {
        Expected {
            format: Some(e.format),
            display: Some([e.width, e.height]),
            alpha: Some(e.alpha),
            ..Expected::default()
        }
    }
}

/// How the written file differs from what the plan promised, if it does.
pub(crate) fn mismatch(e: &Expected, got: &MediaFacts) -> Option<String> {
    if let Some(f) = e.format {
        if got.format != f {
            return Some(format!("the file holds {} where {} was planned", got.format.name(), f.name()));
        }
    }
    if let Some([w, h]) = e.display {
        let (gw, gh) = (got.display_width.unwrap_or(0), got.display_height.unwrap_or(0));
        let off = |a: u32, b: u32| a.abs_diff(b) > e.display_slack;
        if off(gw, w) || off(gh, h) || (gw > gh) != (w > h) {
            return Some(format!("it displays {gw}x{gh} where {w}x{h} was planned"));
        }
    }
    if let (Some(r), Some(g)) = (e.rotation, got.rotation) {
        if r != g {
            return Some(format!("its rotation is {g}° where {r}° was planned"));
        }
    }
    if let Some((d, tol)) = e.duration_s {
        match got.duration_s {
            Some(g) if (g - d).abs() <= tol => {}
            g => return Some(format!("it lasts {g:?} s where {d:.3} s (± {tol:.3}) was planned")),
        }
    }
    if let (Some(r), Some(g)) = (e.frame_rate, got.frame_rate) {
        if (g / r - 1.0).abs() > 0.02 {
            return Some(format!("its frame rate is {g} fps where {r} was kept"));
        }
    }
    if let Some(a) = e.alpha {
        if got.alpha.unwrap_or(false) != a {
            let what = if a { "lost its transparency" } else { "has transparency that was flattened" };
            return Some(format!("the picture {what}"));
        }
    }
    if let Some(tag) = &e.codec_tag {
        if got.codec_tag.as_ref() != Some(tag) {
            return Some(format!("its sample entry is {:?} where {tag} was kept", got.codec_tag));
        }
    }
    None
}

/// Has `produce` write a temporary file beside `output` (and say what it must show), flushes it
/// to disk, checks it with the same probe and rules as `check` and against what was promised,
/// and only then renames it into place. On any failure the temporary file is removed and
/// `output` is untouched.
pub(crate) fn write_checked(
    output: &Path,
    role: Role,
    spec: &FixSpec,
    force: bool,
    expected: &mut Expected,
    produce: impl FnOnce(&Path, &mut Expected) -> Result<(), FixError>,
) -> Result<(MediaFacts, Vec<Finding>), FixError> {
    let io = |e: std::io::Error| FixError::io(format!("writing {}", output.display()), e);
    // Random name, created exclusively, locked while it lives; leftovers of a killed run for
    // the same output are removed first.
    let tmp = crate::fsutil::temp_beside(output).map_err(io)?;
    produce(tmp.path(), expected)?;
    // Written by path (FFmpeg, fs::copy): reopen to flush what landed there.
    std::fs::File::open(tmp.path()).and_then(|f| f.sync_all()).map_err(io)?;
    let mut media = probe(tmp.path()).map_err(io)?;
    media.extension = output.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let findings = check(&media, role, &spec.limits);
    if !is_compliant(&findings) {
        let errors: Vec<_> = findings.iter().filter(|f| f.is_error()).map(|f| f.message.clone()).collect();
        return Err(FixError::Failed(format!("the result would still not be compliant: {}", errors.join("; "))));
    }
    if let Some(why) = mismatch(expected, &media) {
        return Err(FixError::Internal(why));
    }
    let persisted = if force { tmp.persist(output).map(|_| ()) } else { tmp.persist_noclobber(output).map(|_| ()) };
    persisted.map_err(|e| io(e.error))?;
    crate::fsutil::sync_dir(output);
    Ok((media, findings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Format;

    fn video(w: u32, h: u32, rotation: u16, duration: f64) -> MediaFacts {
        let mut f = MediaFacts::new(Format::Mp4, 1000);
        f.set_video_size(w, h, None, rotation);
        f.duration_s = Some(duration);
        f.frame_rate = Some(30.0);
        f
    }

    #[test]
    fn a_result_that_lost_its_rotation_or_its_length_is_not_what_was_planned() {
        let src = video(640, 360, 90, 30.0);
        let planned = Expected {
            format: Some(Format::Mp4),
            display: Some([360, 640]),
            rotation: Some(90),
            duration_s: Some((30.0, 0.04)),
            frame_rate: Some(30.0),
            ..Expected::default()
        };
        assert_eq!(mismatch(&planned, &src), None);
        // The portrait clip turned landscape (the old stream copy dropped the display matrix).
        let why = mismatch(&planned, &video(640, 360, 0, 30.0)).unwrap();
        assert!(why.contains("displays 640x360"), "{why}");
        assert!(mismatch(&planned, &video(640, 360, 90, 29.9)).unwrap().contains("lasts"));
        let mut mov = src.clone();
        mov.format = Format::Mov;
        assert!(mismatch(&planned, &mov).unwrap().contains("holds mov"));
        let mut slow = src.clone();
        slow.frame_rate = Some(25.0);
        assert!(mismatch(&planned, &slow).unwrap().contains("frame rate"));
    }

    #[test]
    fn transparency_must_be_kept_or_flattened_as_reported() {
        let mut png = MediaFacts::new(Format::Png, 10);
        png.set_image_size(10, 10);
        png.alpha = Some(false);
        let kept = Expected { alpha: Some(true), ..Expected::default() };
        assert!(mismatch(&kept, &png).unwrap().contains("lost its transparency"));
        png.alpha = Some(true);
        assert_eq!(mismatch(&kept, &png), None);
        let flattened = Expected { alpha: Some(false), ..Expected::default() };
        assert!(mismatch(&flattened, &png).is_some());
    }
}
