//! What `fix` did (or, with a dry run, would do) to one input.

use serde::Serialize;

use crate::fix::{FixOutcome, FixPlan};
use crate::probe::MediaFacts;
use crate::rules::Finding;

/// The result of fixing one input: `fix --json`.
#[derive(Debug, Serialize)]
pub struct FixReport {
    /// The input as given.
    pub input: String,
    /// The output as given.
    pub output: String,
    /// Only planned: nothing was written.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// Whether a compliant output was written (absent for a dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compliant: Option<bool>,
    /// The plan (what ran, or would run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<FixPlan>,
    /// Each change made, for people (`scaled 5000x3000 -> 4096x2458`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
    /// The output's facts, from the same probe as `check`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media: Option<MediaFacts>,
    /// The output's findings (warnings only: an error would have stopped the fix).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub findings: Option<Vec<Finding>>,
    /// Images: how many encodes of the whole picture fitting the size budget took.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_encodes: Option<u32>,
    /// Why no compliant output was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl FixReport {
    /// The report of a fix that wrote a compliant output.
    pub fn written(input: &str, output: &str, o: &FixOutcome) -> FixReport {
        FixReport {
            compliant: Some(true),
            plan: Some(o.plan.clone()),
            changes: o.changes.clone(),
            media: Some(o.media.clone()),
            findings: Some(o.findings.clone()),
            full_encodes: o.full_encodes,
            ..FixReport::empty(input, output)
        }
    }

    /// The report of a fix that wrote nothing, and why.
    pub fn failed(input: &str, output: &str, error: impl Into<String>) -> FixReport {
        FixReport { compliant: Some(false), error: Some(error.into()), ..FixReport::empty(input, output) }
    }

    /// The report of a dry run: the plan.
    pub fn dry_run(input: &str, output: &str, plan: &FixPlan) -> FixReport {
        FixReport { dry_run: true, plan: Some(plan.clone()), ..FixReport::empty(input, output) }
    }

    fn empty(input: &str, output: &str) -> FixReport {
        FixReport {
            input: input.to_string(),
            output: output.to_string(),
            dry_run: false,
            compliant: None,
            plan: None,
            changes: Vec::new(),
            media: None,
            findings: None,
            full_encodes: None,
            error: None,
        }
    }
}
