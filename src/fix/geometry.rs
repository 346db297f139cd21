//! Sizes and cuts, in pure Rust: fitting a size into the limits (pad or crop to the aspect
//! limit, then scale), the libavfilter graph that does it to video frames, and cut times down
//! to whole frames.

use super::plan::{Anchor, AspectMode};

/// `t` seconds down to the end of the last whole frame at `fps` (a cut keeps whole frames).
pub(crate) fn whole_frames(t: f64, fps: Option<f64>) -> f64 {
    match fps.filter(|&f| f.is_finite() && f > 0.0) {
        Some(f) => round6(((t * f) + 1e-6).floor() / f),
        None => t,
    }
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

impl Anchor {
    /// Where the kept window sits along the cut side, from 0 (top/left) to 1 (bottom/right);
    /// `Auto` is decided from the pixels, and is the middle until then.
    pub fn fraction(self) -> f64 {
        match self {
            Anchor::Top | Anchor::Left => 0.0,
            Anchor::Bottom | Anchor::Right => 1.0,
            Anchor::Centre | Anchor::Auto => 0.5,
        }
    }
}

/// The libavfilter graph that turns a decoded frame (stored size, any sample aspect ratio,
/// `rotation` degrees clockwise to display) into `g.scaled` square pixels: rotate, scale, and
/// pad or crop to the aspect limit. A crop keeps the window at `crop_at` (0 = top/left,
/// 1 = bottom/right) along the side it cuts.
pub fn video_filter(dw: u32, dh: u32, rotation: u16, g: Geometry, mode: AspectMode, crop_at: f64) -> String {
    let rotate = match rotation {
        90 => "transpose=clock,",
        180 => "hflip,vflip,",
        270 => "transpose=cclock,",
        _ => "",
    };
    let even = |x: f64| ((x.round() as u32).max(2) + 1) & !1;
    let [cw, ch] = g.canvas;
    let [sw, sh] = g.scaled;
    if [cw, ch] == [dw, dh] {
        return format!("{rotate}scale={sw}:{sh}:flags=lanczos,setsar=1,format=yuv420p");
    }
    match mode {
        AspectMode::Pad => {
            let s = f64::from(sw) / f64::from(cw);
            let (pw, ph) = (even(f64::from(dw) * s).min(sw), even(f64::from(dh) * s).min(sh));
            format!(
                "{rotate}scale={pw}:{ph}:flags=lanczos,setsar=1,pad={sw}:{sh}:(ow-iw)/2:(oh-ih)/2:color=black,format=yuv420p"
            )
        }
        AspectMode::Crop => {
            let (fw, fh) = (even(f64::from(dw)), even(f64::from(dh)));
            let (cw, ch) = (even(f64::from(cw)).min(fw), even(f64::from(ch)).min(fh));
            let at = crop_at.clamp(0.0, 1.0);
            let (x, y) = (((fw - cw) as f64 * at).round() as u32, ((fh - ch) as f64 * at).round() as u32);
            format!(
                "{rotate}scale={fw}:{fh}:flags=lanczos,setsar=1,crop={cw}:{ch}:{x}:{y},scale={sw}:{sh}:flags=lanczos,format=yuv420p"
            )
        }
    }
}

/// The outcome of fitting a size into the limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Size after padding or cropping to the aspect limit.
    pub canvas: [u32; 2],
    /// Size after scaling into [min, max] per side.
    pub scaled: [u32; 2],
}

/// Fits `w`x`h` into the limits: first the aspect ratio (pad or crop to exactly `max_aspect`),
/// then scale (aspect kept) so both sides land in `[min, max]`. `even` rounds to even sizes
/// (for 4:2:0 video).
pub fn fit(w: u32, h: u32, min: u32, max: u32, max_aspect: f64, mode: AspectMode, even: bool) -> Geometry {
    let (w, h) = (w.max(1), h.max(1));
    let (mut cw, mut ch) = (w, h);
    if f64::from(w) > max_aspect * f64::from(h) {
        match mode {
            AspectMode::Pad => ch = (f64::from(w) / max_aspect).ceil() as u32,
            AspectMode::Crop => cw = (max_aspect * f64::from(h)).floor() as u32,
        }
    } else if f64::from(h) > max_aspect * f64::from(w) {
        match mode {
            AspectMode::Pad => cw = (f64::from(h) / max_aspect).ceil() as u32,
            AspectMode::Crop => ch = (max_aspect * f64::from(w)).floor() as u32,
        }
    }
    let (long, short) = (f64::from(cw.max(ch)), f64::from(cw.min(ch)));
    let mut s = 1.0f64;
    if long > f64::from(max) {
        s = f64::from(max) / long;
    }
    if short * s < f64::from(min) {
        s = f64::from(min) / short;
    }
    let round = |x: f64| -> u32 {
        let v = x.round().max(1.0) as u32;
        if even {
            (v + 1) & !1
        } else {
            v
        }
    };
    let (mut sw, mut sh) =
        if s == 1.0 && !even { (cw, ch) } else { (round(f64::from(cw) * s), round(f64::from(ch) * s)) };
    // Rounding may step over a limit by a pixel: pull back inside.
    let step = if even { 2 } else { 1 };
    let (lo, hi) = (if even { (min + 1) & !1 } else { min }, if even { max & !1 } else { max });
    sw = sw.clamp(lo, hi.max(lo));
    sh = sh.clamp(lo, hi.max(lo));
    while f64::from(sw) > max_aspect * f64::from(sh) && sw - step >= lo {
        sw -= step;
    }
    while f64::from(sh) > max_aspect * f64::from(sw) && sh - step >= lo {
        sh -= step;
    }
    Geometry { canvas: [cw, ch], scaled: [sw, sh] }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn examples() {
        let g = fit(5000, 3000, 200, 4096, 3.0, AspectMode::Pad, false);
        assert_eq!(g, Geometry { canvas: [5000, 3000], scaled: [4096, 2458] });
        let g = fit(1200, 300, 200, 4096, 3.0, AspectMode::Pad, false);
        assert_eq!(g.canvas, [1200, 400]);
        let g = fit(1200, 300, 200, 4096, 3.0, AspectMode::Crop, false);
        assert_eq!(g.canvas, [900, 300]);
        let g = fit(100, 150, 200, 4096, 3.0, AspectMode::Pad, false);
        assert_eq!(g.scaled, [200, 300]);
    }

    proptest! {
        #[test]
        fn fitted_sizes_are_inside_the_limits_and_keep_the_aspect(w in 1u32..20_000, h in 1u32..20_000, crop in any::<bool>(), even in any::<bool>()) {
            let mode = if crop { AspectMode::Crop } else { AspectMode::Pad };
            let (min, max) = if even { (200, 2048) } else { (200, 4096) };
            let g = fit(w, h, min, max, 3.0, mode, even);
            let [sw, sh] = g.scaled;
            prop_assert!((min..=max).contains(&sw) && (min..=max).contains(&sh), "{:?}", g);
            prop_assert!(u64::from(sw) <= 3 * u64::from(sh) && u64::from(sh) <= 3 * u64::from(sw), "{:?}", g);
            if even {
                prop_assert!(sw % 2 == 0 && sh % 2 == 0);
            }
            // The canvas is scaled uniformly: aspect kept within rounding (2 px either side),
            // unless a side hit a limit the other could not follow (extreme inputs).
            let [cw, ch] = g.canvas;
            let canvas_aspect = f64::from(cw) / f64::from(ch);
            let out_aspect = f64::from(sw) / f64::from(sh);
            let tol = 2.5 / f64::from(sw.min(sh)) + 0.01;
            let in_range = (1.0 / 3.0..=3.0).contains(&canvas_aspect);
            if in_range && sw > min && sh > min && sw < max && sh < max {
                prop_assert!((canvas_aspect / out_aspect - 1.0).abs() < tol, "{:?} {canvas_aspect} {out_aspect}", g);
            }
        }
    }
}
