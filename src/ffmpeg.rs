//! The one place that talks to FFmpeg (system libraries via `ffmpeg-next`).
//!
//! Used by `--deep` to decode the first and the last frames of a video: a file whose headers
//! are fine but whose bitstream is damaged fails here.

use std::path::Path;
use std::sync::Once;

use ff::Rescale;
use ffmpeg_next as ff;

static INIT: Once = Once::new();

fn init() {
    INIT.call_once(|| {
        let _ = ff::init();
        ff::util::log::set_level(ff::util::log::Level::Fatal);
    });
}

/// Decodes the first frame, then seeks near the end and decodes every frame to the end.
/// Returns a human-readable reason on failure.
pub(crate) fn decode_first_and_last_frames(path: &Path) -> Result<(), String> {
    init();
    let mut ictx = ff::format::input(path).map_err(|e| format!("FFmpeg cannot open the file: {e}"))?;
    let stream = ictx.streams().best(ff::media::Type::Video).ok_or("FFmpeg finds no video stream")?;
    let index = stream.index();
    let ctx = ff::codec::Context::from_parameters(stream.parameters()).map_err(|e| e.to_string())?;
    let mut decoder = ctx.decoder().video().map_err(|e| format!("no decoder for the video codec: {e}"))?;

    let first = decode_until(&mut ictx, &mut decoder, index, Some(1))?;
    if first == 0 {
        return Err("no video frame could be decoded at the start".into());
    }
    let duration = ictx.duration();
    if duration > 0 {
        // Seek to a keyframe at most ~2 s before the end, then decode through to the end.
        let target = (duration - 2 * i64::from(ff::ffi::AV_TIME_BASE)).max(0);
        ictx.seek(target, ..target).map_err(|e| format!("cannot seek near the end: {e}"))?;
        decoder.flush();
        let last = decode_until(&mut ictx, &mut decoder, index, None)?;
        if last == 0 {
            return Err("no video frame could be decoded near the end".into());
        }
    }
    Ok(())
}

/// Decodes packets of stream `index` until `limit` frames came out (or to the end).
fn decode_until(
    ictx: &mut ff::format::context::Input,
    decoder: &mut ff::decoder::Video,
    index: usize,
    limit: Option<usize>,
) -> Result<usize, String> {
    let mut frame = ff::frame::Video::empty();
    let mut frames = 0usize;
    let mut packet = ff::Packet::empty();
    loop {
        match packet.read(ictx) {
            Ok(()) => {}
            Err(ff::Error::Eof) => break,
            Err(e) => return Err(format!("reading packets failed: {e}")),
        }
        if packet.stream() != index {
            continue;
        }
        decoder.send_packet(&packet).map_err(|e| format!("the decoder rejected a packet: {e}"))?;
        while decoder.receive_frame(&mut frame).is_ok() {
            frames += 1;
            if limit.is_some_and(|l| frames >= l) {
                return Ok(frames);
            }
        }
    }
    decoder.send_eof().map_err(|e| e.to_string())?;
    while decoder.receive_frame(&mut frame).is_ok() {
        frames += 1;
    }
    Ok(frames)
}

/// What a remux did.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Remuxed {
    /// Duration of the source in seconds (container's view).
    pub source_duration_s: f64,
    /// Codec of the video stream copied.
    pub video_codec: String,
    /// Audio codec copied, if any.
    pub audio: Option<String>,
    /// Audio stream left out because MP4 cannot carry its codec, if any.
    pub dropped_audio: Option<String>,
}

/// Codecs that are copied into MP4 as they are.
const MP4_VIDEO: [ff::codec::Id; 2] = [ff::codec::Id::H264, ff::codec::Id::HEVC];
const MP4_AUDIO: [ff::codec::Id; 4] = [ff::codec::Id::AAC, ff::codec::Id::MP3, ff::codec::Id::AC3, ff::codec::Id::EAC3];

/// Copies the best video stream (H.264/H.265) and a copyable audio stream of `input` into an
/// MP4 at `output` with the index up front (`+faststart`), without re-encoding. Fails with a
/// reason when the video codec cannot be copied or the clip is longer than `max_duration_s`
/// (trimming is not done here).
///
/// With `end_s`, packets are copied up to that time from the start: video packets whose
/// decoding time is at or past it are dropped (so every kept frame still has its references),
/// audio packets whose presentation time is. Without it, a source longer than `max_duration_s`
/// is refused.
pub(crate) fn remux_to_mp4(
    input: &Path,
    output: &Path,
    max_duration_s: f64,
    end_s: Option<f64>,
) -> Result<Remuxed, String> {
    init();
    let mut ictx = ff::format::input(input).map_err(|e| format!("FFmpeg cannot open the file: {e}"))?;
    let duration = ictx.duration() as f64 / f64::from(ff::ffi::AV_TIME_BASE);
    if end_s.is_none() && ictx.duration() > 0 && duration > max_duration_s {
        return Err(format!("{duration:.2} s is longer than {max_duration_s} s: it needs trimming (--duration)"));
    }
    let video = ictx.streams().best(ff::media::Type::Video).ok_or("no video stream")?;
    let video_index = video.index();
    let video_id = video.parameters().id();
    if !MP4_VIDEO.contains(&video_id) {
        return Err(format!("the {video_id:?} video must be re-encoded to H.264, which this build cannot do yet"));
    }
    let audio = ictx.streams().best(ff::media::Type::Audio).map(|s| (s.index(), s.parameters().id()));
    let mut octx = ff::format::output_as(output, "mp4").map_err(|e| format!("cannot create the output: {e}"))?;
    let mut map: Vec<Option<usize>> = vec![None; ictx.nb_streams() as usize];
    let mut copied_audio = None;
    let mut dropped_audio = None;
    for ist in ictx.streams() {
        let i = ist.index();
        let keep = if i == video_index {
            true
        } else if audio.is_some_and(|(a, id)| a == i && MP4_AUDIO.contains(&id)) {
            copied_audio = Some(format!("{:?}", ist.parameters().id()).to_lowercase());
            true
        } else {
            if audio.is_some_and(|(a, _)| a == i) {
                dropped_audio = Some(format!("{:?}", ist.parameters().id()).to_lowercase());
            }
            false
        };
        if !keep {
            continue;
        }
        let mut ost = octx.add_stream(ff::encoder::find(ff::codec::Id::None)).map_err(|e| e.to_string())?;
        ost.set_parameters(ist.parameters());
        // The source container's codec tag (e.g. AVI's 'H264') is not valid in MP4: let the
        // muxer choose.
        #[allow(unsafe_code)]
        unsafe {
            (*ost.parameters().as_mut_ptr()).codec_tag = 0;
        }
        map[i] = Some(ost.index());
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
    let mut packet = ff::Packet::empty();
    loop {
        match packet.read(&mut ictx) {
            Ok(()) => {}
            Err(ff::Error::Eof) => break,
            Err(e) => return Err(format!("reading packets failed: {e}")),
        }
        let i = packet.stream();
        let Some(o) = map.get(i).copied().flatten() else { continue };
        let ist_tb = ictx.stream(i).ok_or("stream vanished")?.time_base();
        let shift = start.rescale(av_tb, ist_tb);
        packet.set_pts(packet.pts().map(|t| t - shift));
        packet.set_dts(packet.dts().map(|t| t - shift));
        if let Some(end) = end_s {
            let when = if i == video_index { packet.dts().or(packet.pts()) } else { packet.pts() };
            if when.is_some_and(|t| t as f64 * f64::from(ist_tb) >= end) {
                continue;
            }
        }
        let ost_tb = octx.stream(o).ok_or("stream vanished")?.time_base();
        packet.rescale_ts(ist_tb, ost_tb);
        packet.set_position(-1);
        packet.set_stream(o);
        packet.write_interleaved(&mut octx).map_err(|e| format!("writing a packet failed: {e}"))?;
    }
    octx.write_trailer().map_err(|e| format!("finishing the MP4 failed: {e}"))?;
    Ok(Remuxed {
        source_duration_s: duration,
        video_codec: format!("{video_id:?}").to_lowercase(),
        audio: copied_audio,
        dropped_audio,
    })
}
