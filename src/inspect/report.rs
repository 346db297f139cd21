//! What `check` found, as data: the contract's shape (`CONTRACT.md`, "check --json output").

use serde::Serialize;

use crate::probe::http::RemoteFacts;
use crate::probe::{Kind, MediaFacts};
use crate::rules::{Finding, Role};

/// The result of checking one or more inputs.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// Whether every input is compliant (and could be read).
    pub compliant: bool,
    /// One entry per input, in the order given.
    pub inputs: Vec<InputReport>,
    /// Findings about the pair (`pair.orientation`), when an image and a video were checked
    /// together. They are also listed on the video's entry.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
}

/// The result for one input.
#[derive(Debug, Clone, Serialize)]
pub struct InputReport {
    /// The path (or URL) as given.
    pub input: String,
    /// What the content is.
    pub kind: Kind,
    /// The role it was judged in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Whether it has no error finding (and could be read).
    pub compliant: bool,
    /// What could be measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media: Option<MediaFacts>,
    /// Errors and warnings.
    pub findings: Vec<Finding>,
    /// Why the input could not be read at all (missing file, permission, no HTTP answer…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For a URL: body bytes transferred to probe it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_fetched: Option<u64>,
    /// For a URL: what the HTTP exchange showed (final URL, status, range support…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteFacts>,
    /// With `--quality`: where the character's face is (see `pair.framing`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub framing: Option<crate::quality::Framing>,
}

impl InputReport {
    /// Whether the input could not be read at all.
    pub fn is_unreadable(&self) -> bool {
        self.error.is_some()
    }
}

impl CheckReport {
    /// Whether any input could not be read (exit code 2).
    pub fn any_unreadable(&self) -> bool {
        self.inputs.iter().any(InputReport::is_unreadable)
    }
}
