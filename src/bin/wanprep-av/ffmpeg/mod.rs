//! The one place that talks to FFmpeg (system libraries via `ffmpeg-next`): opening files (only
//! through `file:`), reading a stream's facts, decoding frames (`--deep`, crop placement); the
//! stream-copy remux and trim live in `remux`, re-encoding in `reencode`.

use std::path::Path;
use std::sync::Once;

use ffmpeg_next as ff;
mod reencode;
mod remux;
mod scenes;

pub use reencode::reencode;
pub use remux::remux;
pub use scenes::cuts;

use wanprep::av::{Container, StreamInfo};

static INIT: Once = Once::new();

/// Reports seconds of output written on stderr (`progress S`), at most four times a second.
#[derive(Default)]
pub(super) struct Progress {
    last: Option<std::time::Instant>,
}

impl Progress {
    pub(super) fn report(&mut self, secs: f64) {
        if self.last.is_some_and(|t| t.elapsed().as_millis() < 250) {
            return;
        }
        self.last = Some(std::time::Instant::now());
        // A closed pipe means wanprep is gone; the parent watchdog cleans up, so no panic here.
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "{}{secs:.2}", wanprep::av::PROGRESS_PREFIX);
    }
}

pub(super) fn init() {
    INIT.call_once(|| {
        let _ = ff::init();
        ff::util::log::set_level(ff::util::log::Level::Fatal);
    });
}

/// The FFmpeg this helper runs on: its release and its libraries' versions.
pub fn versions() -> String {
    let v = |n: u32| format!("{}.{}.{}", n >> 16, (n >> 8) & 0xff, n & 0xff);
    #[allow(unsafe_code)]
    // SAFETY: av_version_info returns a static NUL-terminated string (or null).
    let release = unsafe {
        let p = ff::ffi::av_version_info();
        if p.is_null() {
            "unknown".to_string()
        } else {
            std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    };
    format!(
        "FFmpeg {release} (libavformat {}, libavcodec {}, libswscale {}, libavfilter {})",
        v(ff::format::version()),
        v(ff::codec::version()),
        v(ff::software::scaling::version()),
        v(ff::filter::version())
    )
}

/// A local path as FFmpeg must see it: through the `file:` protocol, so a name like
/// `concat:other.mkv` or `http://…` is a file name, never a protocol that reads something else.
fn file_url(path: &Path) -> Result<String, String> {
    let s = path.to_str().ok_or("the path is not valid UTF-8, which FFmpeg cannot open")?;
    Ok(format!("file:{s}"))
}

/// Opens a local file for demuxing: `file:` only (the protocol whitelist refuses any other,
/// also for files a demuxer would open by itself, such as an HLS playlist's segments).
pub(super) fn open_input(path: &Path) -> Result<ff::format::context::Input, String> {
    let mut opts = ff::Dictionary::new();
    opts.set("protocol_whitelist", "file");
    ff::format::input_with_dictionary(&file_url(path)?, opts).map_err(|e| format!("FFmpeg cannot open the file: {e}"))
}

/// Creates the output file through the `file:` protocol.
pub(super) fn open_output(path: &Path, container: Container) -> Result<ff::format::context::Output, String> {
    ff::format::output_as(&file_url(path)?, container.muxer()).map_err(|e| format!("cannot create the output: {e}"))
}

/// The best video stream's facts, as FFmpeg's demuxer sees them.
pub fn probe(path: &Path) -> Result<StreamInfo, String> {
    init();
    let ictx = open_input(path)?;
    let stream = ictx.streams().best(ff::media::Type::Video).ok_or("FFmpeg finds no video stream")?;
    let params = stream.parameters();
    #[allow(unsafe_code)]
    let (width, height, sar) = unsafe {
        let p = &*params.as_ptr();
        (p.width, p.height, p.sample_aspect_ratio)
    };
    let sar = (sar.num > 0 && sar.den > 0 && sar.num != sar.den).then_some([sar.num as u32, sar.den as u32]);
    // The display matrix (16.16 fixed point): atan2(m[1], m[0]) is the clockwise turn.
    let rotation = stream
        .side_data()
        .find(|d| d.kind() == ff::codec::packet::side_data::Type::DisplayMatrix)
        .and_then(|d| {
            let m = d.data();
            let word =
                |i: usize| m.get(i * 4..i * 4 + 4).map(|b| f64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])));
            Some(word(1)?.atan2(word(0)?).to_degrees())
        })
        .map(|deg| ((deg / 90.0).round() as i64).rem_euclid(4) as u16 * 90)
        .unwrap_or(0);
    let fr = stream.avg_frame_rate();
    let frame_rate = (fr.numerator() > 0 && fr.denominator() > 0).then(|| f64::from(fr));
    let duration_s = (ictx.duration() > 0).then(|| ictx.duration() as f64 / f64::from(ff::ffi::AV_TIME_BASE));
    let codec = format!("{:?}", params.id()).to_lowercase();
    let audio_codec =
        ictx.streams().best(ff::media::Type::Audio).map(|a| format!("{:?}", a.parameters().id()).to_lowercase());
    if width <= 0 || height <= 0 {
        return Err("FFmpeg does not know the frame size".into());
    }
    Ok(StreamInfo {
        width: width as u32,
        height: height as u32,
        sar,
        rotation,
        duration_s,
        codec,
        frame_rate,
        audio_codec,
    })
}

/// Decodes the first frame, then seeks near the end and decodes every frame to the end.
/// Returns a human-readable reason on failure.
pub fn decode_first_and_last_frames(path: &Path) -> Result<(), String> {
    init();
    let mut ictx = open_input(path)?;
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

/// Most frames [`frames`] decodes in one request.
const MAX_FRAMES: u32 = 64;

/// Decodes `count` frames spread evenly through the video (the first frame at or after each
/// of the times (k + 0.5) / count of the duration), each scaled to at most `max_side` pixels
/// with square pixels, in stored orientation, as RGB.
pub fn frames(path: &Path, count: u32, max_side: u32, keyframes: bool) -> Result<Vec<wanprep::av::Picture>, String> {
    init();
    let mut ictx = open_input(path)?;
    let stream = ictx.streams().best(ff::media::Type::Video).ok_or("FFmpeg finds no video stream")?;
    let (index, tb) = (stream.index(), stream.time_base());
    let ctx = ff::codec::Context::from_parameters(stream.parameters()).map_err(|e| e.to_string())?;
    let mut decoder = ctx.decoder().video().map_err(|e| format!("no decoder for the video codec: {e}"))?;
    let duration = ictx.duration().max(0) as f64 / f64::from(ff::ffi::AV_TIME_BASE);
    let count = count.clamp(1, MAX_FRAMES);
    let mut out = Vec::new();
    let mut frame = ff::frame::Video::empty();
    let mut packet = ff::Packet::empty();
    for k in 0..count {
        let t = duration * (f64::from(k) + 0.5) / f64::from(count);
        let target = (t * f64::from(ff::ffi::AV_TIME_BASE)) as i64;
        if ictx.seek(target, ..target).is_err() {
            continue;
        }
        decoder.flush();
        let mut got = None;
        'read: while next_packet(&mut ictx, &mut packet)? {
            if packet.stream() != index || decoder.send_packet(&packet).is_err() {
                continue;
            }
            while decoder.receive_frame(&mut frame).is_ok() {
                let secs = frame.timestamp().map_or(t, |p| p as f64 * f64::from(tb));
                if secs + 1e-3 >= t || duration <= 0.0 || keyframes {
                    got = Some(secs);
                    break 'read;
                }
            }
        }
        let Some(secs) = got else { continue };
        let (w, h) = (frame.width(), frame.height());
        if w == 0 || h == 0 {
            continue;
        }
        let sar = frame.aspect_ratio();
        let shown_w = if sar.numerator() > 0 && sar.denominator() > 0 {
            f64::from(w) * f64::from(sar.numerator()) / f64::from(sar.denominator())
        } else {
            f64::from(w)
        };
        let s = (f64::from(max_side.max(8)) / shown_w.max(f64::from(h))).min(1.0);
        let (dw, dh) = (((shown_w * s).round() as u32).max(1), ((f64::from(h) * s).round() as u32).max(1));
        let mut scaler = ff::software::scaling::Context::get(
            frame.format(),
            w,
            h,
            ff::format::Pixel::RGB24,
            dw,
            dh,
            ff::software::scaling::Flags::AREA,
        )
        .map_err(|e| format!("cannot scale the frame: {e}"))?;
        let mut rgb = ff::frame::Video::empty();
        scaler.run(&frame, &mut rgb).map_err(|e| format!("cannot scale the frame: {e}"))?;
        let stride = rgb.stride(0);
        let data = rgb.data(0);
        let mut bytes = Vec::with_capacity((dw * dh * 3) as usize);
        for row in 0..dh as usize {
            bytes.extend_from_slice(&data[row * stride..row * stride + dw as usize * 3]);
        }
        out.push(wanprep::av::Picture { width: dw, height: dh, time_s: secs, rgb: bytes });
    }
    if out.is_empty() {
        return Err("no video frame could be decoded".into());
    }
    Ok(out)
}

/// Reads the next packet: `Ok(false)` at the end. (`Input::packets()` would swallow errors.)
pub(super) fn next_packet(ictx: &mut ff::format::context::Input, packet: &mut ff::Packet) -> Result<bool, String> {
    match packet.read(ictx) {
        Ok(()) => Ok(true),
        Err(ff::Error::Eof) => Ok(false),
        Err(e) => Err(format!("reading packets failed: {e}")),
    }
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
        if !next_packet(ictx, &mut packet)? {
            break;
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

/// Releases a frame's buffers. `av_buffersink_get_frame` moves a new reference into the frame
/// without releasing the old one (unlike `avcodec_receive_frame`), so a frame reused across
/// calls leaks one picture per call: 400 MB for 10 s of 720p before this was found.
pub fn unref(frame: &mut ff::Frame) {
    #[allow(unsafe_code)]
    unsafe {
        ff::ffi::av_frame_unref(frame.as_mut_ptr());
    }
}

/// Writes every packet the encoder has ready, with a duration so the container's length is right.
pub(super) fn drain(
    enc: &mut ff::encoder::Video,
    octx: &mut ff::format::context::Output,
    pkt: &mut ff::Packet,
    stream: usize,
    enc_tb: ff::Rational,
    ost_tb: ff::Rational,
    frame_dur: i64,
) -> Result<(), String> {
    while enc.receive_packet(pkt).is_ok() {
        pkt.set_stream(stream);
        if pkt.duration() == 0 && frame_dur > 0 {
            pkt.set_duration(frame_dur);
        }
        pkt.rescale_ts(enc_tb, ost_tb);
        pkt.write_interleaved(octx).map_err(|err| format!("writing video failed: {err}"))?;
    }
    Ok(())
}
