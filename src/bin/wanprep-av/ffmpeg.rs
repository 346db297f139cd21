//! The one place that talks to FFmpeg (system libraries via `ffmpeg-next`): decoding the first
//! and last frames (`--deep`), stream-copy remux and trim, and re-encoding through a
//! libavfilter graph.

use std::path::Path;
use std::sync::Once;

use ff::Rescale;
use ffmpeg_next as ff;
use wanprep::av::{Container, Reencode, Remuxed, StreamInfo};

use crate::audio::AacTranscoder;

static INIT: Once = Once::new();

/// Reports seconds of output written on stderr (`progress S`), at most four times a second.
#[derive(Default)]
struct Progress {
    last: Option<std::time::Instant>,
}

impl Progress {
    fn report(&mut self, secs: f64) {
        if self.last.is_some_and(|t| t.elapsed().as_millis() < 250) {
            return;
        }
        self.last = Some(std::time::Instant::now());
        // A closed pipe means wanprep is gone; the parent watchdog cleans up, so no panic here.
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "{}{secs:.2}", wanprep::av::PROGRESS_PREFIX);
    }
}

fn init() {
    INIT.call_once(|| {
        let _ = ff::init();
        ff::util::log::set_level(ff::util::log::Level::Fatal);
    });
}

/// A local path as FFmpeg must see it: through the `file:` protocol, so a name like
/// `concat:other.mkv` or `http://…` is a file name, never a protocol that reads something else.
fn file_url(path: &Path) -> Result<String, String> {
    let s = path.to_str().ok_or("the path is not valid UTF-8, which FFmpeg cannot open")?;
    Ok(format!("file:{s}"))
}

/// Opens a local file for demuxing: `file:` only (the protocol whitelist refuses any other,
/// also for files a demuxer would open by itself, such as an HLS playlist's segments).
fn open_input(path: &Path) -> Result<ff::format::context::Input, String> {
    let mut opts = ff::Dictionary::new();
    opts.set("protocol_whitelist", "file");
    ff::format::input_with_dictionary(&file_url(path)?, opts).map_err(|e| format!("FFmpeg cannot open the file: {e}"))
}

/// Creates the output file through the `file:` protocol.
fn open_output(path: &Path, container: Container) -> Result<ff::format::context::Output, String> {
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
pub fn frames(path: &Path, count: u32, max_side: u32) -> Result<Vec<wanprep::av::Picture>, String> {
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
                if secs + 1e-3 >= t || duration <= 0.0 {
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
fn next_packet(ictx: &mut ff::format::context::Input, packet: &mut ff::Packet) -> Result<bool, String> {
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

/// Sample-entry tags an ISO-BMFF source may carry that mean something the muxer would not
/// choose by itself: `hvc1` (parameter sets only in the sample entry, what Apple players and
/// many services require) is written as `hev1` unless it is asked for.
const KEPT_TAGS: [&[u8; 4]; 4] = [b"avc1", b"avc3", b"hvc1", b"hev1"];

/// Adds an output stream that carries `ist`'s packets unchanged (stream copy), with its display
/// matrix (rotation) and, from an ISO-BMFF source, its sample-entry tag; returns its index.
fn add_copied_stream(
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

/// Decodes the best video stream, runs it through `r.filter`, encodes H.264 (libx264,
/// yuv420p, CRF 20, veryfast) into an MP4 or MOV with `+faststart`, keeping the frame rate; an
/// AAC audio stream is copied, others are re-encoded to AAC. A frame that would end after
/// `r.end_s` is left out, so the output lasts at most the time asked for and at most one frame
/// less. Returns the remux-style summary.
pub fn reencode(input: &Path, output: &Path, container: Container, r: &Reencode) -> Result<Remuxed, String> {
    init();
    fn e(what: &'static str) -> impl Fn(ff::Error) -> String {
        move |err| format!("{what}: {err}")
    }
    let mut ictx = open_input(input)?;
    let duration = ictx.duration() as f64 / f64::from(ff::ffi::AV_TIME_BASE);
    let ist = ictx.streams().best(ff::media::Type::Video).ok_or("no video stream")?;
    let (vi, in_tb) = (ist.index(), ist.time_base());
    let frame_rate = ist.avg_frame_rate();
    let source_codec = format!("{:?}", ist.parameters().id()).to_lowercase();
    // Frame threads on every core, as the ffmpeg CLI does (the default is one thread).
    let mut decoder = ff::codec::Context::from_parameters(ist.parameters())
        .and_then(|mut c| {
            c.set_threading(ff::codec::threading::Config {
                kind: ff::codec::threading::Type::Frame,
                count: 0,
                safe: false,
            });
            c.decoder().video()
        })
        .map_err(e("no decoder for the video"))?;
    let audio = ictx
        .streams()
        .best(ff::media::Type::Audio)
        .map(|s| (s.index(), s.parameters().id(), s.time_base(), s.parameters()));

    let mut octx = open_output(output, container)?;
    let global_header = octx.format().flags().contains(ff::format::Flags::GLOBAL_HEADER);
    let codec = ff::encoder::find_by_name("libx264").ok_or("this FFmpeg has no libx264")?;
    let mut ost = octx.add_stream(codec).map_err(e("cannot add the video stream"))?;
    let vo = ost.index();
    let mut enc = ff::codec::Context::new_with_codec(codec).encoder().video().map_err(e("libx264"))?;
    enc.set_width(r.width);
    enc.set_height(r.height);
    enc.set_format(ff::format::Pixel::YUV420P);
    enc.set_aspect_ratio(ff::Rational::new(1, 1));
    enc.set_time_base(in_tb);
    if frame_rate.numerator() > 0 {
        enc.set_frame_rate(Some(frame_rate));
    }
    if global_header {
        enc.set_flags(ff::codec::Flags::GLOBAL_HEADER);
    }
    let mut opts = ff::Dictionary::new();
    opts.set("preset", "veryfast");
    opts.set("crf", "20");
    opts.set("threads", "auto");
    if let Some(b) = r.max_bitrate {
        opts.set("maxrate", &b.to_string());
        opts.set("bufsize", &(2 * b).to_string());
    }
    let mut enc = enc.open_with(opts).map_err(e("cannot open libx264"))?;
    ost.set_parameters(&enc);

    let mut copied_audio = None;
    let mut dropped_audio = None;
    let mut ao = None;
    let mut transcoder = None;
    if let Some((ai, id, _, params)) = &audio {
        if *id == ff::codec::Id::AAC {
            let ist = ictx.stream(*ai).ok_or("stream vanished")?;
            ao = Some(add_copied_stream(&mut octx, &ist)?);
            copied_audio = Some("aac".to_string());
        } else {
            match AacTranscoder::new(&mut octx, params.clone()) {
                Ok(t) => transcoder = Some(t),
                Err(why) => dropped_audio = Some(format!("{} ({why})", format!("{id:?}").to_lowercase())),
            }
        }
    }

    let mut graph = ff::filter::Graph::new();
    let pix: ff::ffi::AVPixelFormat = decoder.format().into();
    let sar = decoder.aspect_ratio();
    let (sn, sd) = if sar.numerator() > 0 { (sar.numerator(), sar.denominator()) } else { (1, 1) };
    let args = format!(
        "video_size={}x{}:pix_fmt={}:time_base={}/{}:pixel_aspect={sn}/{sd}",
        decoder.width(),
        decoder.height(),
        pix as i32,
        in_tb.numerator(),
        in_tb.denominator()
    );
    let buffer = ff::filter::find("buffer").ok_or("no buffer filter")?;
    let sink = ff::filter::find("buffersink").ok_or("no buffersink filter")?;
    graph.add(&buffer, "in", &args).map_err(e("filter input"))?;
    graph.add(&sink, "out", "").map_err(e("filter output"))?;
    graph.get("out").ok_or("filter output")?.set_pixel_format(ff::format::Pixel::YUV420P);
    graph
        .output("in", 0)
        .and_then(|p| p.input("out", 0))
        .and_then(|p| p.parse(&r.filter))
        .map_err(e("bad filter graph"))?;
    graph.validate().map_err(e("filter graph"))?;

    let mut opts = ff::Dictionary::new();
    opts.set("movflags", "+faststart");
    octx.write_header_with(opts).map_err(e("cannot write the MP4 header"))?;
    let ost_tb = octx.stream(vo).ok_or("stream vanished")?.time_base();
    let aost_tb = ao.and_then(|o| octx.stream(o)).map(|s| s.time_base());
    let frame_dur = if frame_rate.numerator() > 0 {
        (f64::from(frame_rate.denominator()) / f64::from(frame_rate.numerator()) / f64::from(in_tb)).round() as i64
    } else {
        0
    };

    let mut packet = ff::Packet::empty();
    let mut decoded = ff::frame::Video::empty();
    let mut filtered = ff::frame::Video::empty();
    let mut encoded = ff::Packet::empty();
    let mut first_pts: Option<i64> = None;
    // The output starts at the first frame at or after `start_s` (which may fall between two
    // frames), and its length is counted from there.
    let first_kept: std::cell::Cell<Option<i64>> = std::cell::Cell::new(None);
    let kept_s = r.end_s.map(|end| end - r.start_s);
    // Looping: each pass is shifted by the length already written (in input ticks); frames
    // at or past `loop_to_s` of output time end the work.
    let loop_offset = std::cell::Cell::new(0i64);
    let written_end = std::cell::Cell::new(0i64);
    let step = if frame_dur > 0 { frame_dur } else { (0.04 / f64::from(in_tb)).round().max(1.0) as i64 };
    let loop_end_ticks = r.loop_to_s.map(|t| (t / f64::from(in_tb)).round() as i64);
    let mut progress = Progress::default();
    let mut pump = |decoder: &mut ff::decoder::Video,
                    graph: &mut ff::filter::Graph,
                    enc: &mut ff::encoder::Video,
                    octx: &mut ff::format::context::Output,
                    flush: bool|
     -> Result<(), String> {
        while decoder.receive_frame(&mut decoded).is_ok() {
            let ts = decoded.timestamp();
            let base = *first_pts.get_or_insert(ts.unwrap_or(0));
            let pts = ts.map(|t| t - base);
            let secs = pts.map(|p| p as f64 * f64::from(in_tb));
            // A frame that would still be showing at the cut is left out: the output never
            // lasts longer than asked, and at most one frame less.
            let frame_s = step as f64 * f64::from(in_tb);
            if secs.is_some_and(|t| t < r.start_s - 5e-7) {
                continue;
            }
            let first = match (first_kept.get(), pts) {
                (Some(f), _) => f,
                (None, Some(p)) => {
                    first_kept.set(Some(p));
                    p
                }
                (None, None) => 0,
            };
            let since_first = pts.map(|p| (p - first) as f64 * f64::from(in_tb));
            if since_first.is_some_and(|t| kept_s.is_some_and(|k| t + frame_s > k + 5e-7)) {
                continue;
            }
            let out_pts = pts.map(|p| p - first + loop_offset.get());
            if let (Some(p), Some(end)) = (out_pts, loop_end_ticks) {
                if p >= end {
                    continue;
                }
            }
            if let Some(p) = out_pts {
                written_end.set(written_end.get().max(p + step));
            }
            decoded.set_pts(out_pts);
            graph.get("in").ok_or("filter input")?.source().add(&decoded).map_err(e("filter"))?;
        }
        if flush {
            let _ = graph.get("in").ok_or("filter input")?.source().flush();
        }
        while graph.get("out").ok_or("filter output")?.sink().frame(&mut filtered).is_ok() {
            filtered.set_kind(ff::picture::Type::None);
            progress.report(filtered.pts().unwrap_or(0) as f64 * f64::from(in_tb));
            enc.send_frame(&filtered).map_err(e("encoding failed"))?;
            unref(&mut filtered);
            drain(enc, octx, &mut encoded, vo, in_tb, ost_tb, frame_dur)?;
        }
        Ok(())
    };
    let mut passes = 0;
    loop {
        passes += 1;
        loop {
            if !next_packet(&mut ictx, &mut packet)? {
                break;
            }
            let i = packet.stream();
            if i == vi {
                decoder.send_packet(&packet).map_err(e("decoding failed"))?;
                pump(&mut decoder, &mut graph, &mut enc, &mut octx, false)?;
            } else if let Some((ai, _, a_tb, _)) = &audio {
                if i != *ai {
                    continue;
                }
                let secs = packet.pts().map(|p| p as f64 * f64::from(*a_tb));
                let dur_s = packet.duration() as f64 * f64::from(*a_tb);
                if secs.is_some_and(|t| t < r.start_s || r.end_s.is_some_and(|end| t + dur_s > end + 5e-7)) {
                    continue;
                }
                let offset_s = loop_offset.get() as f64 * f64::from(in_tb);
                if r.loop_to_s.is_some_and(|end| secs.unwrap_or(0.0) - r.start_s + offset_s >= end) {
                    continue;
                }
                if let Some(t) = transcoder.as_mut() {
                    t.send(&packet, &mut octx)?;
                    continue;
                }
                let (Some(o), Some(ot)) = (ao, aost_tb) else { continue };
                let shift = ((r.start_s - offset_s) / f64::from(*a_tb)).round() as i64;
                packet.set_pts(packet.pts().map(|t| t - shift));
                packet.set_dts(packet.dts().map(|t| t - shift));
                packet.rescale_ts(*a_tb, ot);
                packet.set_position(-1);
                packet.set_stream(o);
                packet.write_interleaved(&mut octx).map_err(e("writing audio failed"))?;
            }
        }
        decoder.send_eof().map_err(e("decoding failed"))?;
        pump(&mut decoder, &mut graph, &mut enc, &mut octx, false)?;
        let short = loop_end_ticks.is_some_and(|end| written_end.get() < end);
        // A clip whose frames never reach the output (all before --start) would loop forever.
        if !short || passes >= 1000 || written_end.get() == loop_offset.get() {
            break;
        }
        decoder.flush();
        loop_offset.set(written_end.get());
        ictx.seek(0, ..1).map_err(e("cannot go back to the start to loop"))?;
    }
    pump(&mut decoder, &mut graph, &mut enc, &mut octx, true)?;
    enc.send_eof().map_err(e("encoding failed"))?;
    drain(&mut enc, &mut octx, &mut encoded, vo, in_tb, ost_tb, frame_dur)?;
    if let Some(t) = transcoder.as_mut() {
        t.finish(&mut octx)?;
        copied_audio = Some(format!("{} -> aac (re-encoded)", t.source_codec));
    }
    octx.write_trailer().map_err(e("finishing the MP4 failed"))?;
    Ok(Remuxed {
        source_duration_s: duration,
        kept_end_s: None,
        video_codec: source_codec,
        audio: copied_audio,
        dropped_audio,
    })
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
fn drain(
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
