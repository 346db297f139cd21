//! The one place that talks to FFmpeg (system libraries via `ffmpeg-next`).
//!
//! Used by `--deep` to decode the first and the last frames of a video: a file whose headers
//! are fine but whose bitstream is damaged fails here.

use std::path::Path;
use std::sync::Once;

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
