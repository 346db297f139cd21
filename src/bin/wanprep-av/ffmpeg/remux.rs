//! Stream copy into MP4 or MOV: the display matrix and sample entry kept, cut exactly where
//! asked (frames decoded before the cut kept; the caller ends the presentation there).

use std::path::Path;

use ff::Rescale;
use ffmpeg_next as ff;
use wanprep::av::{Container, Remuxed};

use super::{init, next_packet, open_input, open_output, Progress};
use crate::audio::AacTranscoder;

/// Sample-entry tags an ISO-BMFF source may carry that mean something the muxer would not
/// choose by itself: `hvc1` (parameter sets only in the sample entry, what Apple players and
/// many services require) is written as `hev1` unless it is asked for.
const KEPT_TAGS: [&[u8; 4]; 4] = [b"avc1", b"avc3", b"hvc1", b"hev1"];

/// Adds an output stream that carries `ist`'s packets unchanged (stream copy), with its display
/// matrix (rotation) and, from an ISO-BMFF source, its sample-entry tag; returns its index.
pub(super) fn add_copied_stream(
    octx: &mut ff::format::context::Output,
    ist: &ff::format::stream::Stream,
) -> Result<usize, String> {
    let mut ost =
        octx.add_stream(ff::encoder::find(ff::codec::Id::None)).map_err(|e| format!("cannot add a stream: {e}"))?;
    ost.set_parameters(ist.parameters());
    let tag = ist.parameters().codec_tag_bytes();
    // Another container's codec tag (e.g. AVI's 'H264') is not valid in MP4: let the muxer
    // choose, unless it is one of the ISO-BMFF tags that carry meaning.
    let keep = KEPT_TAGS.iter().any(|t| **t == tag);
    #[allow(unsafe_code)]
    unsafe {
        (*ost.parameters().as_mut_ptr()).codec_tag = if keep { u32::from_le_bytes(tag) } else { 0 };
    }
    copy_display_matrix(ist, &mut ost)?;
    Ok(ost.index())
}

/// Copies the display matrix (rotation, flips) of `ist` to `ost`: the muxer writes it into the
/// track header, and without it a portrait phone clip plays landscape.
fn copy_display_matrix(
    ist: &ff::format::stream::Stream,
    ost: &mut ff::format::stream::StreamMut,
) -> Result<(), String> {
    let kind = ff::codec::packet::side_data::Type::DisplayMatrix;
    let Some(matrix) = ist.side_data().find(|d| d.kind() == kind) else { return Ok(()) };
    let data = matrix.data();
    #[allow(unsafe_code)]
    unsafe {
        let dst = ff::ffi::av_stream_new_side_data(ost.as_mut_ptr(), kind.into(), data.len());
        if dst.is_null() {
            return Err("out of memory copying the display matrix".into());
        }
        std::ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len());
    }
    Ok(())
}

/// A codec tag as its four bytes.
trait TagBytes {
    fn codec_tag_bytes(&self) -> [u8; 4];
}

impl TagBytes for ff::codec::Parameters {
    fn codec_tag_bytes(&self) -> [u8; 4] {
        #[allow(unsafe_code)]
        let tag = unsafe { (*self.as_ptr()).codec_tag };
        tag.to_le_bytes()
    }
}

/// Codecs that are copied into MP4 as they are.
const MP4_VIDEO: [ff::codec::Id; 2] = [ff::codec::Id::H264, ff::codec::Id::HEVC];
const MP4_AUDIO: [ff::codec::Id; 4] = [ff::codec::Id::AAC, ff::codec::Id::MP3, ff::codec::Id::AC3, ff::codec::Id::EAC3];

/// Copies the best video stream (H.264/H.265) and a copyable audio stream of `input` into an
/// MP4 or MOV at `output` with the index up front (`+faststart`), without re-encoding: the
/// display matrix and the sample-entry tag are kept. Fails with a reason when the video codec
/// cannot be copied or the clip is longer than `max_duration_s` (trimming is not done here).
///
/// With `end_s`, the kept part ends there: video packets decoded at or after it are dropped —
/// every frame shown before it is decoded before it (a decoding time never exceeds its
/// presentation time), and so is every frame those refer to — and audio packets that would end
/// after it. [`Remuxed::kept_end_s`] says where the last video sample kept ends, so the caller
/// can end the presentation exactly at `end_s`.
pub fn remux(
    input: &Path,
    output: &Path,
    container: Container,
    max_duration_s: f64,
    end_s: Option<f64>,
) -> Result<Remuxed, String> {
    init();
    let mut ictx = open_input(input)?;
    let duration = ictx.duration() as f64 / f64::from(ff::ffi::AV_TIME_BASE);
    if end_s.is_none() && ictx.duration() > 0 && duration > max_duration_s {
        return Err(format!("{duration:.2} s is longer than {max_duration_s} s: it needs trimming (--duration)"));
    }
    let video = ictx.streams().best(ff::media::Type::Video).ok_or("no video stream")?;
    let video_index = video.index();
    let video_id = video.parameters().id();
    let video_fps = video.avg_frame_rate();
    if !MP4_VIDEO.contains(&video_id) {
        return Err(format!("the {video_id:?} video must be re-encoded to H.264, which this build cannot do yet"));
    }
    let audio = ictx.streams().best(ff::media::Type::Audio).map(|s| (s.index(), s.parameters().id()));
    let mut octx = open_output(output, container)?;
    let mut map: Vec<Option<usize>> = vec![None; ictx.nb_streams() as usize];
    let mut copied_audio = None;
    let mut dropped_audio = None;
    let mut transcoder: Option<(usize, AacTranscoder)> = None;
    for ist in ictx.streams() {
        let i = ist.index();
        let keep = if i == video_index {
            true
        } else if audio.is_some_and(|(a, id)| a == i && MP4_AUDIO.contains(&id)) {
            copied_audio = Some(format!("{:?}", ist.parameters().id()).to_lowercase());
            true
        } else {
            if audio.is_some_and(|(a, _)| a == i) {
                match AacTranscoder::new(&mut octx, ist.parameters()) {
                    Ok(t) => transcoder = Some((i, t)),
                    Err(why) => dropped_audio = Some(format!("{:?} ({why})", ist.parameters().id()).to_lowercase()),
                }
            }
            false
        };
        if !keep {
            continue;
        }
        map[i] = Some(add_copied_stream(&mut octx, &ist)?);
    }
    let mut opts = ff::Dictionary::new();
    opts.set("movflags", "+faststart");
    octx.write_header_with(opts).map_err(|e| format!("cannot write the MP4 header: {e}"))?;
    // Start the output at 0: a source that starts late (MPEG-TS starts at ~1.4 s) would
    // otherwise get an empty edit, and a movie duration longer than its media.
    let av_tb = ff::Rational::new(1, ff::ffi::AV_TIME_BASE);
    let start = ictx
        .streams()
        .filter(|s| map[s.index()].is_some() && s.start_time() != ff::ffi::AV_NOPTS_VALUE)
        .map(|s| s.start_time().rescale(s.time_base(), av_tb))
        .min()
        .unwrap_or(0)
        .max(0);
    // A frame's length when the packet does not say (in the video stream's time base).
    let video_tb = ictx.stream(video_index).ok_or("stream vanished")?.time_base();
    let nominal_frame = if video_fps.numerator() > 0 && video_fps.denominator() > 0 {
        (f64::from(video_fps.denominator()) / f64::from(video_fps.numerator()) / f64::from(video_tb)).round() as i64
    } else {
        0
    };
    let mut kept_end: Option<i64> = None;
    // Half a microsecond of slack: a cut at a frame boundary keeps the frame that ends there.
    let eps = 5e-7;
    let mut packet = ff::Packet::empty();
    let mut progress = Progress::default();
    loop {
        if !next_packet(&mut ictx, &mut packet)? {
            break;
        }
        let i = packet.stream();
        if let Some((ai, t)) = transcoder.as_mut().filter(|(ai, _)| *ai == i) {
            let ist_tb = ictx.stream(*ai).ok_or("stream vanished")?.time_base();
            let t_s =
                packet.pts().map(|p| (p - start.rescale(av_tb, ist_tb) + packet.duration()) as f64 * f64::from(ist_tb));
            if !end_s.is_some_and(|end| t_s.is_some_and(|t| t > end + eps)) {
                t.send(&packet, &mut octx)?;
            }
            continue;
        }
        let Some(o) = map.get(i).copied().flatten() else { continue };
        let ist_tb = ictx.stream(i).ok_or("stream vanished")?.time_base();
        let shift = start.rescale(av_tb, ist_tb);
        packet.set_pts(packet.pts().map(|t| t - shift));
        packet.set_dts(packet.dts().map(|t| t - shift));
        if let Some(end) = end_s {
            let secs = |t: i64| t as f64 * f64::from(ist_tb);
            let dropped = if i == video_index {
                // Decoded at or after the cut: no frame shown before it needs this one.
                packet.dts().or(packet.pts()).is_some_and(|t| secs(t) >= end - eps)
            } else {
                // Audio: nothing may play past the cut.
                packet.pts().is_some_and(|t| secs(t + packet.duration()) > end + eps)
            };
            if dropped {
                continue;
            }
            if i == video_index {
                let dur = if packet.duration() > 0 { packet.duration() } else { nominal_frame };
                let end_ts = packet.pts().unwrap_or(0) + dur;
                kept_end = Some(kept_end.map_or(end_ts, |k| k.max(end_ts)));
            }
        }
        if i == video_index {
            progress.report(packet.dts().unwrap_or(0) as f64 * f64::from(ist_tb));
        }
        let ost_tb = octx.stream(o).ok_or("stream vanished")?.time_base();
        packet.rescale_ts(ist_tb, ost_tb);
        packet.set_position(-1);
        packet.set_stream(o);
        packet.write_interleaved(&mut octx).map_err(|e| format!("writing a packet failed: {e}"))?;
    }
    if let Some((_, t)) = transcoder.as_mut() {
        t.finish(&mut octx)?;
        copied_audio = Some(format!("{} -> aac (re-encoded)", t.source_codec));
    }
    octx.write_trailer().map_err(|e| format!("finishing the {} failed: {e}", container.muxer().to_uppercase()))?;
    Ok(Remuxed {
        source_duration_s: duration,
        kept_end_s: kept_end.map(|t| t as f64 * f64::from(video_tb)),
        video_codec: format!("{video_id:?}").to_lowercase(),
        audio: copied_audio,
        dropped_audio,
    })
}
