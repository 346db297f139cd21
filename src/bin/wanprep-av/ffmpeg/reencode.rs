//! Re-encoding to H.264 through a libavfilter graph: rotation applied, scaled, padded or
//! cropped, square pixels, frame rate kept, cut to whole frames, looped when asked.

use std::path::Path;

use ffmpeg_next as ff;
use wanprep::av::{Container, Reencode, Remuxed};

use super::remux::add_copied_stream;
use super::{drain, init, next_packet, open_input, open_output, unref, Progress};
use crate::audio::AacTranscoder;

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
