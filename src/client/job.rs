//! A job (the pair and its parameters), its pre-flight check, and its identity: the content
//! digests and the journal key that make a re-run resume rather than pay twice.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{journal, Mode, SubmitError};
use crate::inspect::{check_inputs, CheckOptions, CheckReport, InputSpec};
use crate::probe::looks_like_url;
use crate::rules::Role;

/// One job: a character image and a reference video (paths or URLs) and the parameters.
#[derive(Debug, Clone)]
pub struct Job {
    /// Local path or http(s)/oss:// URL of the image.
    pub image: String,
    /// Local path or http(s)/oss:// URL of the video.
    pub video: String,
    /// `wan-std` or `wan-pro`.
    pub mode: Mode,
    /// Add the service's watermark.
    pub watermark: bool,
    /// Let the service validate the image (its default).
    pub check_image: bool,
}

impl Job {
    /// A job with the service's defaults (no watermark, image check on).
    pub fn new(image: impl Into<String>, video: impl Into<String>, mode: Mode) -> Job {
        Job { image: image.into(), video: video.into(), mode, watermark: false, check_image: true }
    }

    /// The default output name: `<image stem>_<video stem>.mp4`.
    pub fn default_output(&self) -> PathBuf {
        let stem = |s: &str| {
            let last = s.split(['?', '#']).next().unwrap_or(s).rsplit(['/', '\\']).next().unwrap_or(s);
            let stem = last.rsplit_once('.').map_or(last, |(a, _)| a);
            let clean: String = stem
                .chars()
                .map(|c| if c.is_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
                .take(60)
                .collect();
            if clean.is_empty() {
                "input".to_string()
            } else {
                clean
            }
        };
        PathBuf::from(format!("{}_{}.mp4", stem(&self.image), stem(&self.video)))
    }
}

/// Checks both inputs in their roles with the same code as `wanprep check` (URLs are probed
/// remotely). Nothing is sent to the service.
pub fn preflight(job: &Job, opts: &CheckOptions) -> CheckReport {
    // Inputs already in temporary storage cannot be probed from here; they came from our upload.
    let specs: Vec<InputSpec> = [(&job.image, Role::Image), (&job.video, Role::Video)]
        .into_iter()
        .filter(|(i, _)| !i.starts_with("oss://"))
        .map(|(i, r)| InputSpec::new(i.clone(), Some(r)))
        .collect();
    check_inputs(&specs, opts)
}

/// The journal's key for a job.
pub(super) fn job_key<'a>(job: &'a Job, fingerprint: &'a str, key_tag: &'a str) -> journal::JobKey<'a> {
    journal::JobKey {
        fingerprint,
        key_tag,
        image: &job.image,
        video: &job.video,
        mode: job.mode.as_str(),
        watermark: job.watermark,
    }
}

/// SHA-256 of a local file's content, or of the URL text for a URL.
pub(super) fn digest_input(input: &str) -> Result<String, SubmitError> {
    if looks_like_url(input) || input.starts_with("oss://") {
        return Ok(hex(&Sha256::digest(format!("url:{input}").as_bytes())));
    }
    let io = |source| SubmitError::Io { path: input.to_string(), source };
    let mut f = crate::probe::open_regular(Path::new(input)).map_err(io)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
