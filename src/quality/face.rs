//! Finds faces with OpenCV's frontal-face Haar cascade (Viola–Jones, trained by Rainer
//! Lienhart), evaluated here: the cascade ships inside wanprep (`assets/face-cascade.txt`,
//! converted from Debian's `opencv-data` by `scripts/make-cascade.py`), so nothing is loaded
//! or downloaded at run time and no OpenCV is linked.
//!
//! The evaluation follows OpenCV's `CascadeClassifier::detectMultiScale`: an image pyramid
//! (scale step 1.1), a 24×24 window moved by 2 px (OpenCV moves it by 1 px once the picture is
//! shrunk by more than 2; 2 px everywhere halves the time and still gives a face a dozen
//! hits), each window normalised by the standard deviation of its inner 22×22 pixels, 25
//! boosted stages of stumps; then overlapping hits are grouped and a face needs
//! [`MIN_NEIGHBOURS`] hits. Why here and not a crate: the face-detection crates either need
//! OpenCV itself or ship no model in their package.

use std::sync::OnceLock;

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::GrayImage;

/// Hits a face needs around it (OpenCV's `minNeighbors`): fewer are noise.
pub const MIN_NEIGHBOURS: usize = 3;
/// Pyramid step.
const SCALE_STEP: f64 = 1.1;
/// Most pixels of the picture searched (a bound on time); a larger one is searched shrunk.
pub const MAX_PIXELS: u64 = 1_200_000;

/// A face found, in pixels of the picture searched.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Face {
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width.
    pub w: f64,
    /// Height.
    pub h: f64,
    /// Window hits grouped into it (more is surer).
    pub hits: usize,
}

struct Stump {
    feature: u32,
    threshold: f32,
    left: f32,
    right: f32,
}

struct Stage {
    threshold: f32,
    weak: std::ops::Range<usize>,
}

#[derive(Clone, Copy)]
struct Rect {
    x: u32,
    y: u32,
    w: u32,
    h: u32,
    weight: f32,
}

/// A boosted cascade of Haar features with stump classifiers.
pub struct Cascade {
    win_w: u32,
    win_h: u32,
    stages: Vec<Stage>,
    stumps: Vec<Stump>,
    features: Vec<Vec<Rect>>,
}

impl Cascade {
    /// Reads the text form `scripts/make-cascade.py` writes. Every index and rectangle is
    /// checked, so evaluation cannot read outside a window.
    pub fn parse(text: &str) -> Result<Cascade, String> {
        let mut words = text.lines().filter(|l| !l.starts_with('#')).flat_map(str::split_whitespace);
        if words.next() != Some("haar") {
            return Err("not a Haar cascade".into());
        }
        let mut next = || words.next().ok_or_else(|| "the cascade ends early".to_string());
        fn num<T: std::str::FromStr>(w: &str) -> Result<T, String> {
            w.parse().map_err(|_| format!("not a number: {w:?}"))
        }
        let (win_w, win_h): (u32, u32) = (num(next()?)?, num(next()?)?);
        let (n_stages, n_features): (usize, usize) = (num(next()?)?, num(next()?)?);
        if !(8..=64).contains(&win_w) || !(8..=64).contains(&win_h) || n_stages > 100 || n_features > 100_000 {
            return Err("implausible cascade sizes".into());
        }
        let mut stages = Vec::with_capacity(n_stages);
        let mut stumps = Vec::new();
        for _ in 0..n_stages {
            let count: usize = num(next()?)?;
            let threshold: f32 = num(next()?)?;
            if count > 10_000 {
                return Err("implausible stage".into());
            }
            let first = stumps.len();
            for _ in 0..count {
                let feature: u32 = num(next()?)?;
                if feature as usize >= n_features {
                    return Err("a classifier names a missing feature".into());
                }
                stumps.push(Stump { feature, threshold: num(next()?)?, left: num(next()?)?, right: num(next()?)? });
            }
            stages.push(Stage { threshold, weak: first..stumps.len() });
        }
        let mut features = Vec::with_capacity(n_features);
        for _ in 0..n_features {
            let n: usize = num(next()?)?;
            if !(1..=3).contains(&n) {
                return Err("a feature needs 1 to 3 rectangles".into());
            }
            let mut rects = Vec::with_capacity(n);
            for _ in 0..n {
                let r = Rect {
                    x: num(next()?)?,
                    y: num(next()?)?,
                    w: num(next()?)?,
                    h: num(next()?)?,
                    weight: num(next()?)?,
                };
                if r.x.checked_add(r.w).is_none_or(|e| e > win_w) || r.y.checked_add(r.h).is_none_or(|e| e > win_h) {
                    return Err("a rectangle leaves the window".into());
                }
                rects.push(r);
            }
            features.push(rects);
        }
        Ok(Cascade { win_w, win_h, stages, stumps, features })
    }

    /// The frontal-face cascade wanprep ships.
    pub fn frontal_face() -> &'static Cascade {
        static FACE: OnceLock<Cascade> = OnceLock::new();
        FACE.get_or_init(|| {
            // The asset is part of the build and checked by a test: a failure is a build bug.
            Cascade::parse(include_str!("../../assets/face-cascade.txt")).expect("the shipped face cascade parses")
        })
    }

    /// Faces in a greyscale picture, largest first. Pictures over [`MAX_PIXELS`] are searched
    /// shrunk (the faces are given in the picture's own pixels).
    pub fn detect(&self, picture: &GrayImage) -> Vec<Face> {
        let (w, h) = picture.dimensions();
        let pixels = u64::from(w) * u64::from(h);
        let shrink = if pixels > MAX_PIXELS { (pixels as f64 / MAX_PIXELS as f64).sqrt() } else { 1.0 };
        let mut hits = Vec::new();
        let mut scale = shrink;
        loop {
            let (sw, sh) = ((f64::from(w) / scale) as u32, (f64::from(h) / scale) as u32);
            if sw < self.win_w + 2 || sh < self.win_h + 2 {
                break;
            }
            if let Some(level) = resized(picture, sw, sh) {
                let step = 2;
                self.scan(&level, step, |x, y| {
                    hits.push(Face {
                        x: f64::from(x) * scale,
                        y: f64::from(y) * scale,
                        w: f64::from(self.win_w) * scale,
                        h: f64::from(self.win_h) * scale,
                        hits: 1,
                    })
                });
            }
            scale *= SCALE_STEP;
        }
        let mut faces = group(&hits, MIN_NEIGHBOURS);
        faces.sort_by(|a, b| (b.w * b.h).total_cmp(&(a.w * a.h)));
        faces
    }

    fn scan(&self, level: &GrayImage, step: u32, mut hit: impl FnMut(u32, u32)) {
        let (w, h) = level.dimensions();
        let integral = Integral::new(level);
        let stride = integral.stride;
        // Each stump with its rectangles' corners as offsets from the window's top-left
        // corner in this level's table: the inner loop is four loads per rectangle.
        let corners = |r: &Rect| {
            let at = |x: u32, y: u32| y as usize * stride + x as usize;
            [at(r.x, r.y), at(r.x + r.w, r.y), at(r.x, r.y + r.h), at(r.x + r.w, r.y + r.h)]
        };
        let stumps: Vec<LevelStump> = self
            .stumps
            .iter()
            .map(|s| {
                let rects = &self.features[s.feature as usize];
                let mut l = LevelStump {
                    corners: [[0; 4]; 3],
                    weights: [0.0; 3],
                    threshold: s.threshold,
                    left: s.left,
                    right: s.right,
                };
                for (i, r) in rects.iter().enumerate().take(3) {
                    l.corners[i] = corners(r);
                    l.weights[i] = r.weight;
                }
                l
            })
            .collect();
        let (inner_w, inner_h) = (self.win_w - 2, self.win_h - 2);
        let area = f64::from(inner_w * inner_h);
        let mut y = 0;
        while y + self.win_h <= h {
            let mut x = 0;
            while x + self.win_w <= w {
                let sum = integral.sum(x + 1, y + 1, inner_w, inner_h) as f64;
                let sq = integral.sq_sum(x + 1, y + 1, inner_w, inner_h) as f64;
                let nf = area * sq - sum * sum;
                let norm = if nf > 0.0 { nf.sqrt() as f32 } else { 1.0 };
                if self.passes(&integral.sum, y as usize * stride + x as usize, &stumps, norm) {
                    hit(x, y);
                }
                x += step;
            }
            y += step;
        }
    }

    fn passes(&self, table: &[i32], base: usize, stumps: &[LevelStump], norm: f32) -> bool {
        let table = &table[base..];
        for stage in &self.stages {
            let mut total = 0f32;
            for s in &stumps[stage.weak.clone()] {
                let mut value = 0f32;
                for (c, wt) in s.corners.iter().zip(s.weights) {
                    // Unused rectangles have weight 0 and corners 0: they add nothing.
                    let area = table[c[3]] - table[c[2]] - table[c[1]] + table[c[0]];
                    value += wt * area as f32;
                }
                total += if value < s.threshold * norm { s.left } else { s.right };
            }
            if total < stage.threshold {
                return false;
            }
        }
        true
    }
}

struct LevelStump {
    corners: [[usize; 4]; 3],
    weights: [f32; 3],
    threshold: f32,
    left: f32,
    right: f32,
}

fn resized(picture: &GrayImage, w: u32, h: u32) -> Option<GrayImage> {
    if picture.dimensions() == (w, h) {
        return Some(picture.clone());
    }
    let mut dst = GrayImage::new(w, h);
    let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    Resizer::new().resize(picture, &mut dst, &opts).ok()?;
    Some(dst)
}

/// Summed-area tables of the pixels and of their squares, one row and column of zeros first.
struct Integral {
    stride: usize,
    sum: Vec<i32>,
    sq: Vec<u64>,
}

impl Integral {
    fn new(img: &GrayImage) -> Integral {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let stride = w + 1;
        let mut sum = vec![0i32; stride * (h + 1)];
        let mut sq = vec![0u64; stride * (h + 1)];
        let px = img.as_raw();
        for y in 0..h {
            let (mut row, mut row_sq) = (0i32, 0u64);
            for x in 0..w {
                let v = px[y * w + x];
                row += i32::from(v);
                row_sq += u64::from(u32::from(v) * u32::from(v));
                sum[(y + 1) * stride + x + 1] = sum[y * stride + x + 1] + row;
                sq[(y + 1) * stride + x + 1] = sq[y * stride + x + 1] + row_sq;
            }
        }
        Integral { stride, sum, sq }
    }

    fn sum(&self, x: u32, y: u32, w: u32, h: u32) -> i64 {
        let at = |x: u32, y: u32| i64::from(self.sum[y as usize * self.stride + x as usize]);
        // i32 holds the sums: MAX_PIXELS * 255 is far below 2^31.
        at(x + w, y + h) - at(x, y + h) - at(x + w, y) + at(x, y)
    }

    fn sq_sum(&self, x: u32, y: u32, w: u32, h: u32) -> u64 {
        let at = |x: u32, y: u32| self.sq[y as usize * self.stride + x as usize];
        (at(x + w, y + h) + at(x, y)).wrapping_sub(at(x, y + h) + at(x + w, y))
    }
}

/// OpenCV's `groupRectangles`: hits that overlap closely (`eps` 0.2) form a group, averaged;
/// groups with fewer than `min_hits` + 1 hits are dropped, and so are groups inside a stronger one.
fn group(hits: &[Face], min_hits: usize) -> Vec<Face> {
    const EPS: f64 = 0.2;
    let similar = |a: &Face, b: &Face| {
        let delta = EPS * (a.w.min(b.w) + a.h.min(b.h)) * 0.5;
        (a.x - b.x).abs() <= delta
            && (a.y - b.y).abs() <= delta
            && (a.x + a.w - b.x - b.w).abs() <= delta
            && (a.y + a.h - b.y - b.h).abs() <= delta
    };
    // Union-find over the hits.
    let mut parent: Vec<usize> = (0..hits.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for i in 0..hits.len() {
        for j in 0..i {
            if similar(&hits[i], &hits[j]) {
                let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                parent[a] = b;
            }
        }
    }
    let mut groups: std::collections::BTreeMap<usize, Face> = std::collections::BTreeMap::new();
    for (i, f) in hits.iter().enumerate() {
        let g = groups.entry(root(&mut parent, i)).or_insert(Face { x: 0.0, y: 0.0, w: 0.0, h: 0.0, hits: 0 });
        g.x += f.x;
        g.y += f.y;
        g.w += f.w;
        g.h += f.h;
        g.hits += 1;
    }
    let averaged: Vec<Face> = groups
        .into_values()
        .filter(|g| g.hits > min_hits)
        .map(|g| {
            let n = g.hits as f64;
            Face { x: g.x / n, y: g.y / n, w: g.w / n, h: g.h / n, hits: g.hits }
        })
        .collect();
    averaged
        .iter()
        .filter(|a| {
            !averaged.iter().any(|b| {
                let (dx, dy) = (b.w * EPS, b.h * EPS);
                !std::ptr::eq(*a, b)
                    && b.hits > a.hits.max(3)
                    && a.x >= b.x - dx
                    && a.y >= b.y - dy
                    && a.x + a.w <= b.x + b.w + dx
                    && a.y + a.h <= b.y + b.h + dy
            })
        })
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_cascade_parses_and_hostile_ones_are_refused() {
        let c = Cascade::frontal_face();
        assert_eq!((c.win_w, c.win_h, c.stages.len(), c.features.len()), (24, 24, 25, 2913));
        for bad in [
            "",
            "haar 24 24 1 1\n1 0.5\n5 0 1 1\n1 0 0 4 4 1", // a missing feature
            "haar 24 24 1 1\n1 0.5\n0 0 1 1\n1 20 0 8 4 1", // a rectangle outside
            "haar 24 24 1 1\n1 0.5\n0 0 1 1\n1 0 0 4",     // cut short
            "haar 24 24 99999 1",                          // implausible
            "haar 24 24 1 1\n1 0.5\n0 0 1 1\n1 0 0 4294967295 4 1", // overflowing
        ] {
            assert!(Cascade::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_flat_or_noisy_picture_has_no_face() {
        let c = Cascade::frontal_face();
        assert!(c.detect(&GrayImage::from_pixel(300, 300, image::Luma([128]))).is_empty());
        let noise = GrayImage::from_fn(300, 300, |x, y| image::Luma([((x * 7919 + y * 104_729) % 251) as u8]));
        assert!(c.detect(&noise).is_empty());
        // Too small to hold a window: no panic, no face.
        assert!(c.detect(&GrayImage::new(10, 40)).is_empty());
    }

    proptest::proptest! {
        /// Any text: parsed or refused, never a panic; a cascade that parses evaluates any
        /// picture without reading outside its window.
        #[test]
        fn hostile_cascades_never_panic(words in proptest::collection::vec(0u32..40, 0..60), w in 1u32..80, h in 1u32..80) {
            let body: Vec<String> = words.iter().map(u32::to_string).collect();
            let text = format!("haar 24 24 {}", body.join(" "));
            if let Ok(c) = Cascade::parse(&text) {
                let _ = c.detect(&GrayImage::from_fn(w, h, |x, y| image::Luma([(x * 7 + y * 3) as u8])));
            }
        }
    }

    #[test]
    fn grouping_needs_neighbours_and_averages_them() {
        let f = |x: f64| Face { x, y: 10.0, w: 50.0, h: 50.0, hits: 1 };
        let hits = [f(10.0), f(11.0), f(12.0), f(13.0), f(200.0)];
        let g = group(&hits, 3);
        assert_eq!(g.len(), 1);
        assert_eq!((g[0].x, g[0].hits), (11.5, 4));
    }
}

#[cfg(test)]
mod photo_tests {
    use super::*;

    fn luma(path: &str) -> GrayImage {
        image::open(path).unwrap().to_luma8()
    }

    #[test]
    fn finds_the_astronauts_face_where_it_is_and_no_face_on_the_cat() {
        let c = Cascade::frontal_face();
        let faces = c.detect(&luma("fixtures/people/astronaut.jpg"));
        // The face spans about x 175-275, y 65-165 of the 512x512 portrait.
        let f = faces.first().expect("a face");
        let centre = (f.x + f.w / 2.0, f.y + f.h / 2.0);
        assert!((centre.0 - 224.0).abs() < 15.0 && (centre.1 - 115.0).abs() < 15.0, "{f:?}");
        assert!((85.0..115.0).contains(&f.h), "{f:?}");
        assert!(c.detect(&luma("fixtures/people/chelsea.jpg")).is_empty());
    }
}
