//! Every `--json` document as a type: what `check`, `fix`, `submit`, `wait`, `status`,
//! `tasks`, `rules` and `batch` report, errors included. The CLI only serialises these (one JSON
//! document on stdout); a library user gets the same data without parsing text.
//!
//! Conventions, one dialect for all: fields in a fixed order; absent facts omitted, never
//! `null`; `compliant` wherever a verdict is made; `error` (a sentence) with an optional
//! `hint` wherever something could not be done; per-input lists are named `inputs`.

mod fix;
pub mod html;
mod rules;
mod task;

pub use crate::batch::manifest::{ManifestReport, ManifestSummary, PairReport, PairStatus};
pub use crate::batch::{BatchReport, ItemReport, ItemStatus, Summary};
pub use crate::inspect::{CheckReport, InputReport};
pub use crate::{ModeSpend, Spend};
pub use fix::FixReport;
pub use rules::{RuleReport, RulesReport};
pub use task::{
    AdoptReport, CancelItem, CancelReport, ErrorReport, InputWarning, StatusReport, TaskReport, TasksReport,
};
