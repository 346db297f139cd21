//! Shot changes (`video.scene_cut`) without decoding the whole clip.
//!
//! Decoding every frame of a 30 s 1080p clip takes seconds; decoding only its keyframes takes a
//! fraction of that. So the scan runs in two passes: (1) decode the keyframes alone and compare
//! consecutive ones by colour histogram, and note the packets far bigger than their neighbours
//! (a frame after a cut cannot be predicted from the one before, so the encoder spends about a
//! keyframe's bits on it: that finds cuts in a long group of pictures, even after its last
//! keyframe); (2) only where two keyframes differ (a cut may lie between them, or the encoder
//! put a keyframe on the cut, as x264 does) or a packet stands out, decode that span, with the
//! loop filter skipped, and compare consecutive frames to place each cut on its frame. A span whose frames change gradually (a pan, a dancer crossing the frame)
//! has no single jump and is no cut. Pass 2 stops at `max_frames`; spans left over are reported
//! as `unplaced` with their bounds.

use std::path::Path;

use ffmpeg_next as ff;

use super::{init, next_packet, open_input};
use wanprep::av::{Cut, CutScan};

/// Side of the thumbnails compared (pixels): a histogram needs no detail.
const THUMB: u32 = 48;
/// Bins per colour channel.
const BINS: usize = 16;
/// A keyframe pair this much less different than a cut still gets its span decoded: the
/// keyframes on either side of a cut differ a little less than the two frames at the cut
/// when the shots drift.
const CANDIDATE_SHARE: f64 = 0.6;
/// A jump must stand out from the span's ordinary frame-to-frame change by this factor.
const SPIKE: f64 = 3.0;
/// A predicted frame this many times bigger than the biggest of the few before it (with
/// B-frames, those include a P-frame: a P-frame is compared with P-frames)…
const SIZE_SPIKE: f64 = 1.8;
/// …and at least this share of a typical keyframe's size may start a new shot.
const SIZE_OF_KEY: f64 = 0.25;
/// Predicted packets before it that a packet's size is compared with.
const SIZE_WINDOW: usize = 4;
/// Packets whose sizes are kept (a bound on memory: 2 hours at 60 fps).
const MAX_PACKETS: usize = 432_000;
/// How far past a big packet's time the span is decoded (B-frames shown around it).
const SPIKE_MARGIN_S: f64 = 0.3;

type Hist = [f32; BINS * 3];

fn distance(a: &Hist, b: &Hist) -> f64 {
    // Half the L1 distance of each channel's normalised histogram, averaged over the channels.
    a.iter().zip(b).map(|(x, y)| f64::from((x - y).abs())).sum::<f64>() / 6.0
}

struct Thumbs {
    scaler: Option<(ff::format::Pixel, u32, u32, ff::software::scaling::Context)>,
    rgb: ff::frame::Video,
}

impl Thumbs {
    fn hist(&mut self, frame: &ff::frame::Video) -> Result<Hist, String> {
        let (w, h, fmt) = (frame.width(), frame.height(), frame.format());
        if w == 0 || h == 0 {
            return Err("an empty frame".into());
        }
        if self.scaler.as_ref().is_none_or(|(f, sw, sh, _)| (*f, *sw, *sh) != (fmt, w, h)) {
            let s = f64::from(THUMB) / f64::from(w.max(h));
            let (dw, dh) = (((f64::from(w) * s).round() as u32).max(1), ((f64::from(h) * s).round() as u32).max(1));
            let ctx = ff::software::scaling::Context::get(
                fmt,
                w,
                h,
                ff::format::Pixel::RGB24,
                dw,
                dh,
                ff::software::scaling::Flags::AREA,
            )
            .map_err(|e| format!("cannot scale the frame: {e}"))?;
            self.scaler = Some((fmt, w, h, ctx));
        }
        let Some((_, _, _, scaler)) = self.scaler.as_mut() else { return Err("no scaler".into()) };
        scaler.run(frame, &mut self.rgb).map_err(|e| format!("cannot scale the frame: {e}"))?;
        let (tw, th, stride) = (self.rgb.width() as usize, self.rgb.height() as usize, self.rgb.stride(0));
        let data = self.rgb.data(0);
        let mut hist = [0f32; BINS * 3];
        for row in 0..th {
            for px in data[row * stride..row * stride + tw * 3].chunks_exact(3) {
                for (c, &v) in px.iter().enumerate() {
                    hist[c * BINS + usize::from(v) * BINS / 256] += 1.0;
                }
            }
        }
        let n = (tw * th).max(1) as f32;
        hist.iter_mut().for_each(|v| *v /= n);
        Ok(hist)
    }
}

/// Finds the cuts: see the module's comment.
pub fn cuts(path: &Path, threshold: f64, max_frames: u32) -> Result<CutScan, String> {
    init();
    let mut ictx = open_input(path)?;
    let stream = ictx.streams().best(ff::media::Type::Video).ok_or("FFmpeg finds no video stream")?;
    let (index, tb) = (stream.index(), f64::from(stream.time_base()));
    let start = stream.start_time();
    let start_s = if start == ff::ffi::AV_NOPTS_VALUE { 0.0 } else { start as f64 * tb };
    let mut ctx = ff::codec::Context::from_parameters(stream.parameters()).map_err(|e| e.to_string())?;
    ctx.set_threading(ff::codec::threading::Config { kind: ff::codec::threading::Type::Frame, count: 0, safe: false });
    let mut decoder = ctx.decoder().video().map_err(|e| format!("no decoder for the video codec: {e}"))?;
    // Thumbnails do not need the deblocking filter; skipping it makes decoding cheaper.
    decoder.skip_loop_filter(ff::Discard::All);
    let mut thumbs = Thumbs { scaler: None, rgb: ff::frame::Video::empty() };
    let mut frame = ff::frame::Video::empty();
    let mut packet = ff::Packet::empty();
    let time = |frame: &ff::frame::Video| frame.timestamp().map(|t| t as f64 * tb - start_s);

    // Pass 1: the keyframes alone.
    let mut keys: Vec<(f64, Hist)> = Vec::new();
    let mut receive = |decoder: &mut ff::decoder::Video, keys: &mut Vec<(f64, Hist)>| -> Result<(), String> {
        while decoder.receive_frame(&mut frame).is_ok() {
            if let Some(t) = time(&frame) {
                keys.push((t, thumbs.hist(&frame)?));
            }
        }
        Ok(())
    };
    // (time, size, key) of each packet of the stream, in decode order.
    let mut sizes: Vec<(f64, usize, bool)> = Vec::new();
    while next_packet(&mut ictx, &mut packet)? {
        // Packets an edit list hides (kept by a stream-copy trim for the frames that refer to
        // them) are not shown: they are no part of the clip.
        if packet.stream() != index || hidden(&packet) {
            continue;
        }
        if sizes.len() < MAX_PACKETS {
            if let Some(pts) = packet.pts().or(packet.dts()) {
                sizes.push((pts as f64 * tb - start_s, packet.size(), packet.is_key()));
            }
        }
        if !packet.is_key() {
            continue;
        }
        // A damaged keyframe is skipped, not fatal: the scan is advice.
        if decoder.send_packet(&packet).is_ok() {
            receive(&mut decoder, &mut keys)?;
        }
    }
    let _ = decoder.send_eof();
    receive(&mut decoder, &mut keys)?;
    keys.sort_by(|a, b| a.0.total_cmp(&b.0));
    keys.dedup_by(|a, b| (a.0 - b.0).abs() < 1e-6);

    let mut scan = CutScan { keyframes: keys.len() as u32, ..CutScan::default() };
    let key_times: Vec<f64> = keys.iter().map(|k| k.0).collect();
    let mut spans: Vec<(f64, f64)> = keys
        .windows(2)
        .filter(|w| distance(&w[0].1, &w[1].1) >= threshold * CANDIDATE_SHARE)
        .map(|w| (w[0].0, w[1].0))
        .collect();
    spans.extend(big_packets(&sizes).into_iter().filter_map(|t| {
        let from = key_times.iter().copied().rfind(|k| *k <= t)?;
        let next = key_times.iter().copied().find(|k| *k > t).unwrap_or(f64::MAX);
        Some((from, (t + SPIKE_MARGIN_S).min(next)))
    }));
    let spans = merged(spans);

    // Pass 2: decode each span from its first keyframe through its last, frame by frame.
    let mut thumbs = Thumbs { scaler: None, rgb: ff::frame::Video::empty() };
    let mut frame = ff::frame::Video::empty();
    for (a, b) in spans {
        if scan.frames_decoded >= max_frames {
            scan.unplaced.push([a, b]);
            continue;
        }
        let target = ((a + start_s) * f64::from(ff::ffi::AV_TIME_BASE)) as i64;
        if ictx.seek(target, ..target + 1).is_err() {
            scan.unplaced.push([a, b]);
            continue;
        }
        decoder.flush();
        let mut seen: Vec<(f64, Hist)> = Vec::new();
        let (mut done, mut out_of_budget) = (false, false);
        'read: while next_packet(&mut ictx, &mut packet)? {
            if packet.stream() != index || decoder.send_packet(&packet).is_err() {
                continue;
            }
            while decoder.receive_frame(&mut frame).is_ok() {
                let Some(t) = time(&frame) else { continue };
                if t + 1e-6 < a {
                    continue;
                }
                scan.frames_decoded += 1;
                seen.push((t, thumbs.hist(&frame)?));
                if t + 1e-6 >= b {
                    done = true;
                    break 'read;
                }
                if scan.frames_decoded >= max_frames {
                    out_of_budget = true;
                    break 'read;
                }
            }
        }
        if !done {
            let _ = decoder.send_eof();
            while decoder.receive_frame(&mut frame).is_ok() {
                if let Some(t) = time(&frame).filter(|t| *t + 1e-6 >= a && *t <= b + 1e-6) {
                    scan.frames_decoded += 1;
                    seen.push((t, thumbs.hist(&frame)?));
                }
            }
        }
        seen.sort_by(|x, y| x.0.total_cmp(&y.0));
        let found = jumps(&seen, threshold);
        if found.is_empty() && out_of_budget {
            scan.unplaced.push([a, b]);
        }
        scan.cuts.extend(found);
    }
    scan.cuts.sort_by(|x, y| x.time_s.total_cmp(&y.time_s));
    scan.cuts.dedup_by(|x, y| (x.time_s - y.time_s).abs() < 1e-6);
    Ok(scan)
}

fn hidden(packet: &ff::Packet) -> bool {
    packet.flags().bits() & ff::ffi::AV_PKT_FLAG_DISCARD != 0
}

/// Times of predicted packets far bigger than their neighbours (see the module's comment).
fn big_packets(sizes: &[(f64, usize, bool)]) -> Vec<f64> {
    let mut keys: Vec<usize> = sizes.iter().filter(|p| p.2).map(|p| p.1).collect();
    keys.sort_unstable();
    let Some(&key_size) = keys.get(keys.len() / 2) else { return Vec::new() };
    let mut out = Vec::new();
    let mut before: std::collections::VecDeque<usize> = std::collections::VecDeque::with_capacity(SIZE_WINDOW);
    for &(t, size, key) in sizes {
        if key {
            // A new group of pictures: its first predicted frames have nothing to compare with.
            before.clear();
            continue;
        }
        let biggest = before.iter().copied().max();
        if before.len() == SIZE_WINDOW {
            before.pop_front();
        }
        before.push_back(size);
        if let Some(b) = biggest {
            if size as f64 >= SIZE_SPIKE * b as f64 && size as f64 >= SIZE_OF_KEY * key_size as f64 {
                out.push(t);
            }
        }
    }
    out
}

/// Spans sorted, with overlapping ones joined.
fn merged(mut spans: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out: Vec<(f64, f64)> = Vec::new();
    for (a, b) in spans {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// The frame-to-frame jumps in a run of frames that are cuts: over the threshold, and standing
/// out from the run's ordinary change (so fast motion or a pan is not a cut).
fn jumps(frames: &[(f64, Hist)], threshold: f64) -> Vec<Cut> {
    let steps: Vec<(f64, f64)> = frames.windows(2).map(|w| (w[1].0, distance(&w[0].1, &w[1].1))).collect();
    let mut ordinary: Vec<f64> = steps.iter().map(|s| s.1).collect();
    ordinary.sort_by(f64::total_cmp);
    // Two frames side by side (all-intra video) have no ordinary change to compare with.
    let median = if ordinary.len() >= 3 { ordinary[ordinary.len() / 2] } else { 0.0 };
    steps
        .iter()
        .filter(|(_, d)| *d >= threshold && *d >= SPIKE * median)
        .map(|&(time_s, distance)| Cut { time_s, distance })
        .collect()
}
