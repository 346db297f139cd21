//! What the movie's boxes say, as facts: the main video and audio tracks, size and rotation,
//! codec, durations (samples win over headers that contradict them) and frame rate.

use super::tables::{sample_count, stts_totals};
use super::{Movie, Track};
use crate::probe::facts::{reduce, round_to, MediaFacts};
use crate::probe::reader::fourcc_str;

/// Clockwise rotation (0/90/180/270) of a `tkhd` matrix `[a b u; c d v; x y w]`: the angle of
/// the first row, atan2(b, a), snapped to a quarter turn (flips are ignored).
pub(crate) fn rotation_of_matrix(m: &[i32; 9]) -> u16 {
    let (a, b) = (i64::from(m[0]), i64::from(m[1]));
    if a == 0 && b == 0 {
        return 0;
    }
    if a.abs() >= b.abs() {
        if a > 0 {
            0
        } else {
            180
        }
    } else if b > 0 {
        90
    } else {
        270
    }
}

/// Codec name for a sample entry fourcc (names follow FFmpeg's).
pub(crate) fn codec_name(fourcc: &[u8; 4]) -> String {
    match fourcc {
        b"avc1" | b"avc2" | b"avc3" | b"avc4" => "h264",
        b"hvc1" | b"hev1" | b"dvh1" | b"dvhe" => "hevc",
        b"mp4v" => "mpeg4",
        b"av01" => "av1",
        b"vp08" => "vp8",
        b"vp09" => "vp9",
        b"ap4h" | b"ap4x" | b"apch" | b"apcn" | b"apcs" | b"apco" => "prores",
        b"jpeg" | b"mjpa" | b"mjpb" => "mjpeg",
        b"mjp2" => "jpeg2000",
        b"s263" | b"h263" => "h263",
        b"png " => "png",
        b"raw " | b"2vuy" | b"yuv2" => "rawvideo",
        b"dvc " | b"dvcp" | b"dv5n" | b"dv5p" => "dvvideo",
        b"mp4a" => "aac",
        b"ac-3" => "ac3",
        b"ec-3" => "eac3",
        b"Opus" => "opus",
        b"fLaC" => "flac",
        b"alac" => "alac",
        b".mp3" => "mp3",
        b"sowt" | b"twos" | b"lpcm" | b"in24" | b"in32" | b"fl32" | b"ipcm" => "pcm",
        b"samr" => "amr_nb",
        other => return fourcc_str(other).trim().to_string(),
    }
    .to_string()
}

/// A track's samples and their ticks: the sample table in `moov` plus every fragment.
pub(super) fn track_samples(t: &Track) -> (u64, u64) {
    let (count, ticks) = stts_totals(t.stts);
    let count = count.max(sample_count(t).unwrap_or(0));
    (count.saturating_add(t.fragment_samples), ticks.saturating_add(t.fragment_ticks))
}

/// A track's media duration in its own ticks: the media header's, unless the file is
/// fragmented (the header then covers only the samples before the first fragment) or the
/// header contradicts the samples it describes — then the samples.
fn media_ticks(t: &Track, fragmented: bool) -> u64 {
    let (_, ticks) = track_samples(t);
    if fragmented || t.duration == 0 {
        return ticks;
    }
    let off = t.duration.abs_diff(ticks) as f64;
    let slack = (0.05 * ticks as f64).max(0.5 * f64::from(t.timescale));
    if ticks > 0 && off > slack {
        ticks
    } else {
        t.duration
    }
}

/// The track of `handler` that facts are taken from: the first with samples (a track with no
/// samples next to a playable one is ignored, as players do), else the first there is.
pub(super) fn main_track<'m, 'a>(movie: &'m Movie<'a>, handler: &[u8; 4]) -> Option<&'m Track<'a>> {
    let mut of_kind = movie.tracks.iter().filter(|t| &t.handler == handler && t.entry.is_some());
    let first = of_kind.clone().next();
    of_kind.find(|t| track_samples(t).0 > 0).or(first)
}

/// How long a track lasts in seconds: its samples when the file is fragmented (the `moov`
/// header then covers only what was written before the first fragment), else its edit list,
/// its media header, or its samples.
fn track_seconds(movie: &Movie, t: &Track, fragmented: bool) -> Option<f64> {
    let media_ticks = media_ticks(t, fragmented);
    let media = (t.timescale > 0 && media_ticks > 0).then(|| media_ticks as f64 / f64::from(t.timescale));
    if fragmented {
        return media;
    }
    let edited = t.edit_duration.filter(|_| movie.timescale > 0).map(|d| d as f64 / f64::from(movie.timescale));
    edited.or(media)
}

pub(super) fn fill_facts(movie: &Movie, facts: &mut MediaFacts, fragmented: bool) {
    let video = main_track(movie, b"vide");
    let audio = main_track(movie, b"soun");
    facts.has_video = Some(video.is_some());
    if let Some(e) = audio.and_then(|a| a.entry.as_ref()) {
        facts.audio_codec = Some(codec_name(&e.fourcc));
    }
    let encrypted = [video, audio].into_iter().flatten().any(|t| t.entry.as_ref().is_some_and(|e| e.encrypted));
    if encrypted {
        facts.encrypted = Some(true);
    }
    if let Some(v) = video {
        let e = v.entry.as_ref().expect("video track has an entry");
        facts.video_codec = Some(e.codec.map_or_else(|| codec_name(&e.fourcc), str::to_string));
        facts.codec_tag = Some(fourcc_str(&e.fourcc));
        let (samples, ticks) = track_samples(v);
        // One picture next to an audio track is cover art (an audio file), not a video.
        let cover = samples == 1 && audio.is_some_and(|a| track_samples(a).0 > 1);
        if cover {
            facts.has_video = Some(false);
            facts.frame_count = Some(1);
        } else {
            let (w, h) = if e.width > 0 && e.height > 0 {
                (u32::from(e.width), u32::from(e.height))
            } else {
                (v.tkhd_width, v.tkhd_height)
            };
            if w > 0 && h > 0 {
                // As FFmpeg's mov demuxer: `pasp` first, then a track header size that differs
                // from the coded size, then the bitstream's VUI.
                let tkhd_sar = (v.tkhd_width > 0 && v.tkhd_height > 0 && (v.tkhd_width, v.tkhd_height) != (w, h))
                    .then(|| reduce(u64::from(h) * u64::from(v.tkhd_width), u64::from(w) * u64::from(v.tkhd_height)))
                    .flatten();
                let sar = e.pasp.or(tkhd_sar).or(e.bitstream_sar);
                facts.set_video_size(w, h, sar, rotation_of_matrix(&v.matrix));
            }
            let media_ticks = media_ticks(v, fragmented);
            if v.timescale > 0 && media_ticks > 0 {
                facts.video_duration_s = Some(round_to(media_ticks as f64 / f64::from(v.timescale), 6));
            }
            if samples > 0 && ticks > 0 && v.timescale > 0 {
                facts.frame_count = Some(samples);
                facts.frame_rate = Some(round_to(samples as f64 * f64::from(v.timescale) / ticks as f64, 3));
            }
        }
    }
    // What the tracks hold (video and audio with samples), against what the headers declare.
    let held = [video, audio]
        .into_iter()
        .flatten()
        .filter(|t| track_samples(t).0 > 0)
        .filter_map(|t| track_seconds(movie, t, fragmented))
        .reduce(f64::max);
    let ts = f64::from(movie.timescale.max(1));
    let declared = (movie.timescale > 0 && movie.duration > 0)
        .then(|| movie.duration as f64 / ts)
        .or_else(|| movie.fragment_duration.filter(|_| movie.timescale > 0).map(|d| d as f64 / ts));
    let duration = match (declared, held) {
        // A fragmented file's header covers what was known when it was written (an empty moov,
        // or only the samples before the first fragment; mehd may be a guess): samples win.
        (_, Some(h)) if fragmented => Some(h),
        // A header that contradicts what the tracks hold is broken: samples win.
        (Some(d), Some(h)) if (d - h).abs() > (0.05 * h).max(0.5) => Some(h),
        (d, h) => d.or(h),
    };
    facts.duration_s = duration.map(|d| round_to(d, 6));
}
