//! Where the subject is, for `--anchor auto` crops: the approach of libvips' `attention`
//! crop (vips_smartcrop): a picture is interesting where it has edges, skin-like hues and
//! saturated colour. Each pixel of a small copy of the picture gets a score from those three,
//! and the crop window with the highest total score along the cut side wins.

/// Long side of the working copy the scores are computed on (detail finer than this does not
/// move a crop window by more than a pixel or two of the output).
pub(crate) const WORK_SIDE: u32 = 256;

/// A picture as 8-bit RGB rows.
pub(crate) struct Rgb<'a> {
    pub width: usize,
    pub height: usize,
    pub data: &'a [u8],
}

/// Per-pixel interest of `img`: the absolute Laplacian of the luma (edges), plus the
/// saturation, plus a strong bonus for skin-like colour (the classic RGB skin rule of Kovač et
/// al.), which is what a character's face and hands look like.
pub(crate) fn scores(img: &Rgb) -> Vec<f32> {
    let (w, h) = (img.width, img.height);
    let mut out = vec![0f32; w * h];
    if w == 0 || h == 0 || img.data.len() < w * h * 3 {
        return out;
    }
    let luma: Vec<f32> = img
        .data
        .chunks_exact(3)
        .take(w * h)
        // Integer weights: flat areas then have an exactly zero Laplacian.
        .map(|p| ((299 * u32::from(p[0]) + 587 * u32::from(p[1]) + 114 * u32::from(p[2]) + 500) / 1000) as f32)
        .collect();
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let at = |xx: usize, yy: usize| luma[yy * w + xx];
            let edge = if x > 0 && y > 0 && x + 1 < w && y + 1 < h {
                (4.0 * at(x, y) - at(x - 1, y) - at(x + 1, y) - at(x, y - 1) - at(x, y + 1)).abs()
            } else {
                0.0
            };
            let p = &img.data[i * 3..i * 3 + 3];
            let (r, g, b) = (i32::from(p[0]), i32::from(p[1]), i32::from(p[2]));
            let (max, min) = (r.max(g).max(b), r.min(g).min(b));
            let saturation = if max > 0 { (max - min) as f32 / max as f32 * 64.0 } else { 0.0 };
            let skin = r > 95 && g > 40 && b > 20 && max - min > 15 && (r - g).abs() > 15 && r > g && r > b;
            out[i] = edge.min(255.0) + saturation + if skin { 160.0 } else { 0.0 };
        }
    }
    out
}

/// Sums of `scores` (a `w` x `h` grid) per column (`vertical` false: the cut is in width) or
/// per row (`vertical` true: the cut is in height).
pub(crate) fn profile(scores: &[f32], w: usize, h: usize, vertical: bool) -> Vec<f64> {
    let mut out = vec![0f64; if vertical { h } else { w }];
    for y in 0..h {
        for x in 0..w {
            let s = f64::from(scores[y * w + x]);
            out[if vertical { y } else { x }] += s;
        }
    }
    out
}

/// Where a window keeping `kept` of the side (0 < kept <= 1) scores highest along `profile`:
/// 0 = at the start (top/left), 1 = at the end.
///
/// The profile is first smoothed over 4 % of its length, so a window that cuts right at the
/// edge of a subject (a head touching the top) scores less than one that leaves it a margin.
/// Among windows that score the same (a subject smaller than the window fits in many), the one
/// that centres the subject wins; a picture with no subject at all is cut evenly.
pub(crate) fn best_window(profile: &[f64], kept: f64) -> f64 {
    let n = profile.len();
    let win = ((kept * n as f64).round() as usize).clamp(1, n.max(1));
    if n == 0 || win >= n {
        return 0.5;
    }
    let smoothed = box_blur(profile, (n as f64 * 0.04).round() as usize);
    let mut sum: f64 = smoothed[..win].iter().sum();
    let mut sums = vec![sum];
    for i in win..n {
        sum += smoothed[i] - smoothed[i - win];
        sums.push(sum);
    }
    let best = sums.iter().cloned().fold(f64::MIN, f64::max);
    let spare = (n - win) as f64;
    if best <= 0.0 {
        return 0.5;
    }
    // The subject's centre of mass, within the best window.
    let first_best = sums.iter().position(|&s| s >= best).unwrap_or(0);
    let (mass, moment) = (first_best..first_best + win)
        .fold((0.0, 0.0), |(m, mo), i| (m + profile[i], mo + profile[i] * (i as f64 + 0.5)));
    let centre = if mass > 0.0 { moment / mass } else { n as f64 / 2.0 };
    let start = sums
        .iter()
        .enumerate()
        .filter(|(_, &s)| s >= best * (1.0 - 1e-3))
        .map(|(i, _)| i as f64)
        .min_by(|a, b| (a + win as f64 / 2.0 - centre).abs().total_cmp(&(b + win as f64 / 2.0 - centre).abs()))
        .unwrap_or(spare / 2.0);
    start / spare
}

/// `v` averaged over a window of `radius` either side (edges use what there is).
fn box_blur(v: &[f64], radius: usize) -> Vec<f64> {
    if radius == 0 {
        return v.to_vec();
    }
    let mut prefix = vec![0.0; v.len() + 1];
    for (i, x) in v.iter().enumerate() {
        prefix[i + 1] = prefix[i] + x;
    }
    (0..v.len())
        .map(|i| {
            let (a, b) = (i.saturating_sub(radius), (i + radius + 1).min(v.len()));
            (prefix[b] - prefix[a]) / (b - a) as f64
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flat grey picture with a skin-coloured, edged blob at (`cx`, `cy`).
    fn picture_with_subject(w: usize, h: usize, cx: usize, cy: usize) -> Vec<u8> {
        let mut data = vec![128u8; w * h * 3];
        for y in 0..h {
            for x in 0..w {
                let (dx, dy) = (x as i64 - cx as i64, y as i64 - cy as i64);
                if dx * dx + dy * dy < 64 {
                    data[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&[224, 172, 140]);
                }
            }
        }
        data
    }

    #[test]
    fn the_window_follows_the_subject_along_either_side() {
        let (w, h) = (250, 50);
        let data = picture_with_subject(w, h, 30, 25);
        let s = scores(&Rgb { width: w, height: h, data: &data });
        let at = best_window(&profile(&s, w, h, false), 0.6);
        assert!(at < 0.1, "subject on the left: {at}");
        let data = picture_with_subject(h, w, 25, 220);
        let s = scores(&Rgb { width: h, height: w, data: &data });
        let at = best_window(&profile(&s, h, w, true), 0.6);
        assert!(at > 0.9, "subject at the bottom: {at}");
    }

    #[test]
    fn a_picture_without_a_subject_is_cut_in_the_middle() {
        let data = vec![90u8; 100 * 40 * 3];
        let s = scores(&Rgb { width: 100, height: 40, data: &data });
        assert_eq!(best_window(&profile(&s, 100, 40, false), 0.5), 0.5);
    }

    #[test]
    fn degenerate_windows_do_not_panic() {
        assert_eq!(best_window(&[], 0.5), 0.5);
        assert_eq!(best_window(&[1.0, 2.0], 1.0), 0.5);
        assert!((0.0..=1.0).contains(&best_window(&[1.0, 2.0, 3.0], 0.0)));
    }
}
