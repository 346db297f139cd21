//! The probe's fallback for containers it recognises but does not read (FLV, MPEG-TS, MPEG-PS,
//! ASF, and Matroska without a duration): FFmpeg's demuxer, in the `wanprep-av` helper, fills
//! in the size, duration and codec, so every caller gets complete facts from one call.

use std::path::Path;

use super::facts::MediaFacts;
use super::sniff::{Format, Kind};
use crate::av;

/// Whether the probe's own parsers leave facts for FFmpeg to find.
fn needs_ffmpeg(facts: &MediaFacts) -> bool {
    // MP4/MOV/3GP/MJ2/AVI are read whole by the probe: what it did not find is not there.
    let own = matches!(facts.format, Format::Mp4 | Format::Mov | Format::ThreeGp | Format::Mj2 | Format::Avi);
    facts.kind == Kind::Video && !own && (facts.width.is_none() || facts.duration_s.is_none())
}

/// Fills in what FFmpeg's demuxer knows and the probe did not find. Without the helper the
/// facts stay as they are and are marked incomplete (unknown, not missing).
pub(crate) fn complete(input: &Path, facts: &mut MediaFacts) {
    if !needs_ffmpeg(facts) {
        return;
    }
    let info = match av::probe_stream(input) {
        Ok(info) => info,
        Err(av::AvError::Missing | av::AvError::Cancelled | av::AvError::WrongProtocol { .. }) => {
            facts.headers_incomplete = true;
            return;
        }
        // FFmpeg cannot read it either: what the probe found is all there is.
        Err(av::AvError::Crashed(_)) => return,
    };
    if facts.width.is_none() {
        facts.set_video_size(info.width, info.height, info.sar.map(|[n, d]| (n, d)), info.rotation);
    }
    facts.duration_s = facts.duration_s.or(info.duration_s);
    facts.video_codec = facts.video_codec.take().or(Some(info.codec));
    facts.frame_rate = facts.frame_rate.or(info.frame_rate);
    facts.audio_codec = facts.audio_codec.take().or(info.audio_codec);
    facts.has_video = Some(true);
}
