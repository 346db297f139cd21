//! The rules and the limits in force: `rules --json`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::rules::{AppliesTo, Limits, RuleId, Severity, LIMITS};

/// Every rule with its requirement under the given limits, and the limits themselves.
#[derive(Debug, Serialize)]
pub struct RulesReport {
    /// One entry per rule, in the table's order.
    pub rules: Vec<RuleReport>,
    /// Every limit by name (`image.max_side`…), as `--limit NAME=VALUE` sets them.
    pub limits: BTreeMap<String, f64>,
}

/// One rule.
#[derive(Debug, Serialize)]
pub struct RuleReport {
    /// Its id (`video.duration`).
    pub rule: RuleId,
    /// The input it concerns.
    pub applies_to: AppliesTo,
    /// Error or warning.
    pub severity: Severity,
    /// What it asks, with the limits filled in.
    pub requirement: String,
}

impl RulesReport {
    /// The rules under `limits`.
    pub fn new(limits: &Limits) -> RulesReport {
        RulesReport {
            rules: RuleId::ALL
                .iter()
                .map(|&rule| RuleReport {
                    rule,
                    applies_to: rule.applies_to(),
                    severity: rule.severity(),
                    requirement: rule.requirement(limits),
                })
                .collect(),
            limits: LIMITS.iter().map(|l| (l.name.to_string(), l.get(limits))).collect(),
        }
    }
}
