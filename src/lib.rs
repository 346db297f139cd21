//! # wanprep
//!
//! Gets inputs right for the Wan image-to-action API (`wan2.2-animate-move`): a character image
//! (JPEG/PNG/BMP/WEBP, 200–4096 px, aspect 1:3–3:1, ≤ 5 MB) and a reference video (MP4/AVI/MOV,
//! 2–30 s, 200–2048 px, aspect 1:3–3:1, ≤ 200 MB).
//!
//! - [`probe()`] reads a file's headers (never decoding pixels, never reading `mdat`) into
//!   [`MediaFacts`]: format by content, stored and displayed size, rotation, EXIF orientation,
//!   sample aspect ratio, duration, frame rate, codec, and structural integrity.
//! - [`check`] is a pure function from facts, a [`Role`] and [`Limits`] to [`Finding`]s, each
//!   with a rule id from the contract, severity, actual value, limit and a message that says
//!   what to do.
//! - [`check_inputs`] runs both over many files in parallel and builds a [`CheckReport`].
//! - [`fix::plan()`] decides the cheapest changes that make an input compliant, and
//!   [`fix::fix_file()`] carries them out atomically (video work runs in the FFmpeg helper, [`av`]).
//! - [`client`] submits a compliant pair to the service: upload, journal, create, poll, download —
//!   never creating a task twice.
//! - [`batch`] runs all of it over a folder or a manifest of pairs, in parallel and resumably.
//!
//! ```
//! use wanprep::{check, probe, Limits, Role};
//!
//! let facts = probe("fixtures/video/ok_640x360_3s.mp4")?;
//! assert_eq!(facts.format, wanprep::Format::Mp4);
//! let findings = check(&facts, Role::Video, &Limits::default());
//! assert!(wanprep::is_compliant(&findings));
//! # Ok::<(), std::io::Error>(())
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

// The helper protocol is shared with the `wanprep-av` binary; it is not the library's API.
#[doc(hidden)]
#[cfg(feature = "async")]
pub mod asynch;
pub mod av;
pub mod batch;
pub mod client;
mod dates;
pub mod fix;
mod fsutil;
mod inspect;
mod net;
mod pool;
pub mod probe;
pub mod quality;
pub mod report;
mod retry;
pub mod rules;
pub mod shellword;
mod spend;

pub use inspect::{check_input, check_inputs, CheckOptions, InputSpec};
pub use inspect::{CheckReport, InputReport};
pub use probe::{probe, probe_bytes, probe_path, probe_source, ByteSource, Format, Kind, MediaFacts, ProbeOptions};
pub use rules::{check, is_compliant, pair_findings, Finding, Limits, Role, RuleId, Severity};
pub use spend::{ModeSpend, Prices, Spend};

/// What the `wanprep` binary, the fuzz targets and the tests reach below the API. No stability
/// promise: not part of the library.
#[doc(hidden)]
pub mod internals {
    pub use crate::batch::naming::{conversion_stems, output_rel};
    pub use crate::client::api::ApiError;
    pub use crate::client::download::{download, part_path};
    pub use crate::fsutil::{private_dir, write_atomic};
    pub use crate::probe::http::client as http_client;
}
