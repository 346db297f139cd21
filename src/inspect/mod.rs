//! Probe + rules for a list of inputs: the `check` flow, run in parallel over the inputs.
//! An input is a local path or an http(s) URL; both end in the same facts and rules.

mod report;

use std::path::Path;

use crate::probe::http::{self, HttpOptions, Opened};
use crate::probe::{
    deep_decode_bytes, looks_like_url, probe_path, probe_source_with, ByteSource, Integrity, Kind, MediaFacts,
    ProbeOptions,
};

use crate::quality::Framing;
use crate::rules::{check, check_remote, check_url_syntax, is_compliant, pair_findings, unreachable, Limits, Role};
pub use report::{CheckReport, InputReport};

/// One input to check: a local path or an http(s) URL and, optionally, its role.
#[derive(Debug, Clone)]
pub struct InputSpec {
    /// Local path or URL, as given.
    pub input: String,
    /// `Some` when given as `--image` / `--video`.
    pub role: Option<Role>,
}

impl InputSpec {
    /// An input with an optional role.
    pub fn new(input: impl Into<String>, role: Option<Role>) -> Self {
        InputSpec { input: input.into(), role }
    }
}

/// Settings for [`check_inputs`].
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Probe options (`--deep`).
    pub probe: ProbeOptions,
    /// The limits to check against.
    pub limits: Limits,
    /// Worker threads (0 = one per core).
    pub jobs: usize,
    /// Timeouts, retries and redirects for URL inputs.
    pub http: HttpOptions,
    /// Add the quality advisor's warnings (`--quality`): sharpness and exposure, measured on
    /// the pixels of local files.
    pub quality: bool,
}

/// Probes and checks every input (in parallel), adding pair findings when one image role and
/// one video role were given.
///
/// ```
/// use wanprep::{check_inputs, CheckOptions, InputSpec, Role};
/// let report = check_inputs(
///     &[InputSpec::new("fixtures/image/ok_800x600.jpg", Some(Role::Image))],
///     &CheckOptions::default(),
/// );
/// assert!(report.compliant);
/// ```
pub fn check_inputs(inputs: &[InputSpec], opts: &CheckOptions) -> CheckReport {
    let mut reports = run_parallel(inputs, opts);
    let image = inputs.iter().position(|i| i.role == Some(Role::Image));
    let video = inputs.iter().position(|i| i.role == Some(Role::Video));
    let mut pair = Vec::new();
    if let (Some(i), Some(v)) = (image, video) {
        if let (Some(im), Some(vm)) = (&reports[i].media, &reports[v].media) {
            pair = pair_findings(im, vm);
            if let (Some(fi), Some(fv)) = (&reports[i].framing, &reports[v].framing) {
                pair.extend(crate::quality::pair_framing(fi, fv, &inputs[i].input, &inputs[v].input));
            }
            reports[v].findings.extend(pair.iter().cloned());
        }
    }
    let compliant = reports.iter().all(|r| r.compliant);
    CheckReport { compliant, inputs: reports, findings: pair }
}

/// Checks one input (a path or a URL).
pub fn check_input(input: &InputSpec, opts: &CheckOptions) -> InputReport {
    if looks_like_url(&input.input) {
        return check_url(input, opts);
    }
    match probe_path(Path::new(&input.input), &opts.probe) {
        Ok(facts) => {
            let mut report = judged(input, facts, Vec::new(), opts);
            if opts.quality {
                add_quality(&mut report, Path::new(&input.input));
            }
            report
        }
        Err(e) => unreadable(input, io_message(&e)),
    }
}

/// The quality advisor's warnings for a local input that is intact media in its role.
fn add_quality(report: &mut InputReport, path: &Path) {
    if let (Some(facts), Some(role)) = (report.media.as_ref(), report.role) {
        let (mut found, framing) = quality(path, facts, role, true);
        report.findings.append(&mut found);
        report.framing = framing;
    }
}

/// The quality advisor's warnings for a local file in `role`, and (with `find_character`, for
/// a pair) where the character is in it. What cannot be measured (no helper for a video, a
/// picture that does not decode, damaged media) is left unsaid: the advisor never turns into
/// an error.
pub(crate) fn quality(
    path: &Path,
    facts: &MediaFacts,
    role: Role,
    find_character: bool,
) -> (Vec<crate::Finding>, Option<Framing>) {
    if !facts.is_intact() {
        return (Vec::new(), None);
    }
    let found = match (role, facts.kind) {
        (Role::Image, Kind::Image) if crate::quality::supports_image(facts.format) => {
            crate::quality::measure_image_file(path, facts, find_character)
                .map(|(m, f)| (crate::quality::image_findings(&m), f))
        }
        (Role::Video, Kind::Video) => {
            crate::quality::video_findings(path, facts, crate::quality::VIDEO_FRAMES, find_character)
        }
        _ => return (Vec::new(), None),
    };
    found.map_or((Vec::new(), None), |(f, framing)| (f, find_character.then_some(framing)))
}

/// [`quality`]'s warnings alone (no pair to compare a framing with: the character is not
/// searched for).
pub(crate) fn quality_findings(path: &Path, facts: &MediaFacts, role: Role) -> Vec<crate::Finding> {
    quality(path, facts, role, false).0
}

/// The report for facts judged in the input's role (or the role its content implies).
fn judged(input: &InputSpec, facts: MediaFacts, mut findings: Vec<crate::Finding>, opts: &CheckOptions) -> InputReport {
    let role = input.role.unwrap_or_else(|| Role::for_facts(&facts));
    let mut media_findings = check(&facts, role, &opts.limits);
    media_findings.append(&mut findings);
    InputReport {
        input: input.input.clone(),
        kind: facts.kind,
        role: Some(role),
        compliant: is_compliant(&media_findings),
        media: Some(facts),
        findings: media_findings,
        error: None,
        bytes_fetched: None,
        remote: None,
        framing: None,
    }
}

fn unreadable(input: &InputSpec, error: String) -> InputReport {
    InputReport {
        input: input.input.clone(),
        kind: Kind::Unknown,
        role: input.role,
        compliant: false,
        media: None,
        findings: Vec::new(),
        error: Some(error),
        bytes_fetched: None,
        remote: None,
        framing: None,
    }
}

/// A URL that failed its rules before any media was read (bad scheme, HTTP error).
fn without_media(input: &InputSpec, findings: Vec<crate::Finding>, remote: Option<http::RemoteFacts>) -> InputReport {
    InputReport {
        input: input.input.clone(),
        kind: Kind::Unknown,
        role: input.role,
        compliant: is_compliant(&findings),
        media: None,
        findings,
        error: None,
        bytes_fetched: remote.as_ref().map(|r| r.bytes_fetched),
        remote,
        framing: None,
    }
}

/// The largest file the input's role allows (the video limit when the role is not known yet).
fn size_limit(role: Option<Role>, limits: &Limits) -> u64 {
    match role {
        Some(Role::Image) => limits.image_max_bytes,
        Some(Role::Video) => limits.video_max_bytes,
        None => limits.video_max_bytes.max(limits.image_max_bytes),
    }
}

fn check_url(input: &InputSpec, opts: &CheckOptions) -> InputReport {
    let raw = input.input.as_str();
    let mut url_findings = check_url_syntax(raw);
    if url_findings.iter().any(|f| f.rule == crate::rules::RuleId::UrlScheme) {
        return without_media(input, url_findings, None);
    }
    let limit = size_limit(input.role, &opts.limits);
    // Never read more than the limit + 1 byte of a body: enough to know it is too big.
    let opened = match http::open(raw, &opts.http, limit.saturating_add(1)) {
        Ok(o) => o,
        Err(e) => return unreadable(input, e.to_string()),
    };
    let mut src = match opened {
        Opened::Failed { facts, reason } => {
            url_findings.push(unreachable(&reason, facts.status));
            url_findings.extend(check_remote(&facts));
            return without_media(input, url_findings, Some(facts));
        }
        Opened::Readable(src) => *src,
    };
    let probe_opts = ProbeOptions {
        integrity: if opts.probe.deep { Integrity::Full } else { Integrity::HeadAndTail },
        ..opts.probe.clone()
    };
    // Over the size limit the headers are still read (range requests, or the first bytes of
    // the body within the budget), so the user learns everything wrong at once; the file is
    // rejected anyway, so its tail is not fetched to judge its integrity.
    let over_limit = src.len() > limit;
    let probe_opts = if over_limit { probe_opts.integrity(Integrity::HeadOnly) } else { probe_opts };
    let mut facts = match probe_source_with(&mut src, &probe_opts) {
        Ok(f) => f,
        Err(e) => return unreadable(input, format!("reading the body failed: {e}")),
    };
    if src.facts().budget_exceeded {
        // Bytes past the budget were never seen: a "truncation" there is not a finding, and
        // what lies there is unknown rather than missing.
        facts.integrity_problem = None;
        facts.headers_incomplete = true;
    }
    if opts.probe.deep && facts.is_intact() && src.len() <= limit {
        match read_all(&mut src) {
            Ok(data) => {
                if let Err(e) = deep_decode_bytes(&data, &mut facts) {
                    return unreadable(input, format!("decoding failed: {e}"));
                }
            }
            Err(e) => return unreadable(input, format!("reading the body failed: {e}")),
        }
    }
    facts.extension = url_extension(raw);
    let remote = src.into_facts();
    url_findings.extend(check_remote(&remote));
    let mut r = judged(input, facts, url_findings, opts);
    r.bytes_fetched = Some(remote.bytes_fetched);
    r.remote = Some(remote);
    r
}

/// The whole body (bounded by the caller's size check).
fn read_all(src: &mut dyn ByteSource) -> std::io::Result<Vec<u8>> {
    let mut data = vec![0; usize::try_from(src.len()).unwrap_or(usize::MAX)];
    let n = src.read_at(0, &mut data)?;
    data.truncate(n);
    Ok(data)
}

/// The extension of a URL's path (for the `*.extension` warning), ignoring query and fragment.
fn url_extension(raw: &str) -> Option<String> {
    let path = raw.split(['?', '#']).next()?;
    let name = path.rsplit('/').next()?;
    let (_, ext) = name.rsplit_once('.')?;
    (!ext.is_empty() && ext.len() <= 5).then(|| ext.to_ascii_lowercase())
}

fn io_message(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::IsADirectory => {
            "is a folder: to check every file in it, run `wanprep batch FOLDER -o OUTDIR --dry-run`".into()
        }
        _ => e.to_string(),
    }
}

fn run_parallel(inputs: &[InputSpec], opts: &CheckOptions) -> Vec<InputReport> {
    crate::pool::map(inputs, opts.jobs, |_, _, input| check_input(input, opts))
}
