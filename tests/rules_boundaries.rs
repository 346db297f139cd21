//! Every rule on both sides of its boundary, through real files where a file can carry the
//! case and through facts where one cannot (an odd 2049-px H.264 frame, say).

use proptest::prelude::*;
use wanprep::{check, is_compliant, probe, Format, Limits, MediaFacts, Role};

use crate::util::fixture;

fn rules_of(path: &str, role: Role) -> Vec<&'static str> {
    let facts = probe(fixture(path)).unwrap();
    check(&facts, role, &Limits::default()).into_iter().filter(|f| f.is_error()).map(|f| f.rule.as_str()).collect()
}

#[test]
fn image_dimensions_199_200_4096_4097() {
    assert_eq!(rules_of("image/dims_199x300.png", Role::Image), ["image.dimensions"]);
    assert_eq!(rules_of("image/dims_300x199.png", Role::Image), ["image.dimensions"]);
    assert!(rules_of("image/dims_200x300.png", Role::Image).is_empty());
    assert!(rules_of("image/dims_4096x1500.png", Role::Image).is_empty());
    assert_eq!(rules_of("image/dims_4097x1500.png", Role::Image), ["image.dimensions"]);
    assert_eq!(rules_of("image/dims_1500x4097.png", Role::Image), ["image.dimensions"]);
}

#[test]
fn image_aspect_ratio_exactly_3_passes() {
    assert!(rules_of("image/dims_600x200.png", Role::Image).is_empty());
    assert!(rules_of("image/dims_200x600.png", Role::Image).is_empty());
    assert_eq!(rules_of("image/dims_601x200.png", Role::Image), ["image.aspect_ratio"]);
    assert_eq!(rules_of("image/dims_200x601.png", Role::Image), ["image.aspect_ratio"]);
}

#[test]
fn image_format_and_integrity() {
    assert_eq!(rules_of("image/not_accepted_300x300.gif", Role::Image), ["image.format"]);
    assert_eq!(rules_of("image/not_accepted_300x300.tif", Role::Image), ["image.format"]);
    assert_eq!(rules_of("other/heic_header.heic", Role::Image), ["image.format"]);
    assert_eq!(rules_of("image/truncated_half.jpg", Role::Image), ["image.integrity"]);
    assert_eq!(rules_of("image/bad_crc.png", Role::Image), ["image.integrity"]);
    for ok in ["image/ok_800x600.jpg", "image/ok_800x600.png", "image/ok_320x240.bmp", "image/ok_lossy_800x600.webp"] {
        assert!(rules_of(ok, Role::Image).is_empty(), "{ok}");
    }
}

#[test]
fn exif_rotation_never_changes_the_image_verdict() {
    let facts = probe(fixture("image/exif_orient6_800x600.jpg")).unwrap();
    assert_eq!((facts.display_width, facts.display_height), (Some(600), Some(800)));
    assert!(is_compliant(&check(&facts, Role::Image, &Limits::default())));
}

#[test]
fn video_dimensions_198_200_2048_2050() {
    assert_eq!(rules_of("video/dims_198x300.mp4", Role::Video), ["video.dimensions"]);
    assert!(rules_of("video/dims_200x300.mp4", Role::Video).is_empty());
    assert!(rules_of("video/dims_2048x684.mp4", Role::Video).is_empty());
    assert_eq!(rules_of("video/dims_2050x684.mp4", Role::Video), ["video.dimensions"]);
}

fn video_facts(w: u32, h: u32) -> MediaFacts {
    let mut f = probe(fixture("video/ok_640x360_3s.mp4")).unwrap();
    f.width = Some(w);
    f.height = Some(h);
    f.display_width = Some(w);
    f.display_height = Some(h);
    f
}

#[test]
fn video_dimensions_2049_fails_and_199_fails_by_facts() {
    let l = Limits::default();
    let errs = |f: &MediaFacts| {
        check(f, Role::Video, &l).into_iter().filter(|x| x.is_error()).map(|x| x.rule).collect::<Vec<_>>()
    };
    assert_eq!(errs(&video_facts(2049, 1000)), ["video.dimensions"]);
    assert_eq!(errs(&video_facts(1000, 2049)), ["video.dimensions"]);
    assert!(errs(&video_facts(2048, 1000)).is_empty());
    assert_eq!(errs(&video_facts(199, 300)), ["video.dimensions"]);
    let f = check(&video_facts(2049, 1000), Role::Video, &l).remove(0);
    assert_eq!((f.actual.as_f64(), f.limit.as_f64()), (Some(2049.0), Some(2048.0)));
}

#[test]
fn video_aspect_ratio_exactly_3_passes() {
    assert!(rules_of("video/dims_600x200.mp4", Role::Video).is_empty());
    assert_eq!(rules_of("video/dims_602x200.mp4", Role::Video), ["video.aspect_ratio"]);
    assert_eq!(rules_of("video/dims_200x602.mp4", Role::Video), ["video.aspect_ratio"]);
}

#[test]
fn video_duration_1_9_2_0_30_0_30_5() {
    assert_eq!(rules_of("video/dur_1.9s_10fps.mp4", Role::Video), ["video.duration"]);
    assert!(rules_of("video/dur_2.0s_10fps.mp4", Role::Video).is_empty());
    assert!(rules_of("video/dur_30.0s_10fps.mp4", Role::Video).is_empty());
    assert_eq!(rules_of("video/dur_30.5s_10fps.mp4", Role::Video), ["video.duration"]);
    let short = check(&probe(fixture("video/dur_1.9s_10fps.mp4")).unwrap(), Role::Video, &Limits::default());
    assert!(!short[0].fixable, "a too-short clip cannot be fixed without --extend loop");
}

#[test]
fn video_format_and_integrity() {
    assert_eq!(rules_of("video/h264_640x360.mkv", Role::Video), ["video.format"]);
    assert_eq!(rules_of("video/vp9_320x240.webm", Role::Video), ["video.format"]);
    assert_eq!(rules_of("video/h264_320x240.flv", Role::Video), ["video.format"]);
    assert_eq!(rules_of("video/h264_320x240.ts", Role::Video), ["video.format"]);
    assert_eq!(rules_of("video/audio_only.mp4", Role::Video), ["video.format"]);
    assert_eq!(rules_of("video/truncated_moov_end.mp4", Role::Video), ["video.integrity"]);
    assert_eq!(rules_of("video/truncated_faststart.mp4", Role::Video), ["video.integrity"]);
    assert_eq!(rules_of("video/truncated.avi", Role::Video), ["video.integrity"]);
    for ok in [
        "video/ok_640x360_3s.mp4",
        "video/ok_moov_end_640x360_3s.mp4",
        "video/ok_640x360_3s.mov",
        "video/ok_640x360_3s.avi",
        "video/no_ftyp_640x360.mov",
    ] {
        assert!(rules_of(ok, Role::Video).is_empty(), "{ok}");
    }
}

#[test]
fn rotated_videos_pass_like_their_unrotated_twin() {
    for r in ["rot90", "rot180", "rot270"] {
        assert!(rules_of(&format!("video/{r}_1280x720.mp4"), Role::Video).is_empty(), "{r}");
    }
}

#[test]
fn anamorphic_videos_are_judged_stored_and_displayed() {
    // 1440x1080 at SAR 4:3 displays 1920x1080: both fit.
    assert!(rules_of("video/sar4_3_1440x1080.mp4", Role::Video).is_empty());
    // 1200x300 at SAR 1:2 displays 2:1 but is stored 4:1: aspect error, fixable.
    assert_eq!(rules_of("video/sar1_2_1200x300.mp4", Role::Video), ["video.aspect_ratio"]);
    // 1600x900 at SAR 4:3 displays 2133 px wide: a dimensions error on the displayed frame.
    let facts = probe(fixture("video/sar4_3_1600x900.mp4")).unwrap();
    let f = check(&facts, Role::Video, &Limits::default()).into_iter().find(|f| f.is_error()).unwrap();
    assert_eq!(f.rule, "video.dimensions");
    assert_eq!(f.actual.as_f64(), Some(2133.0));
    assert!(f.message.contains("displayed"));
}

#[test]
fn warnings_for_frame_rate_resolution_and_codec() {
    let warn = |p: &str| {
        let f = probe(fixture(p)).unwrap();
        check(&f, Role::Video, &Limits::default())
            .into_iter()
            .filter(|x| !x.is_error())
            .map(|x| x.rule.as_str())
            .collect::<Vec<_>>()
    };
    assert!(warn("video/dur_2.0s_10fps.mp4").contains(&"video.frame_rate"));
    assert!(!warn("video/ok_640x360_3s.mp4").contains(&"video.frame_rate"));
    assert!(warn("video/mp4v_640x360.mp4").contains(&"video.codec"));
    assert!(warn("video/prores_320x240.mov").contains(&"video.codec"));
    assert!(!warn("video/hevc_hvc1_640x360.mp4").contains(&"video.codec"));
    assert!(warn("video/dims_200x300.mp4").contains(&"video.resolution"));
    assert!(!warn("video/rot90_1280x720.mp4").contains(&"video.resolution"));
    let f = probe(fixture("image/lowres_400x300.jpg")).unwrap();
    let w: Vec<_> = check(&f, Role::Image, &Limits::default()).into_iter().map(|x| x.rule).collect();
    assert_eq!(w, ["image.resolution"]);
}

#[test]
fn file_size_boundaries_by_facts() {
    let l = Limits::default();
    let mut img = probe(fixture("image/ok_800x600.jpg")).unwrap();
    img.size_bytes = 5_000_000;
    assert!(is_compliant(&check(&img, Role::Image, &l)));
    img.size_bytes = 5_000_001;
    assert_eq!(check(&img, Role::Image, &l)[0].rule, "image.file_size");
    let mut vid = probe(fixture("video/ok_640x360_3s.mp4")).unwrap();
    vid.size_bytes = 200_000_000;
    assert!(is_compliant(&check(&vid, Role::Video, &l)));
    vid.size_bytes = 200_000_001;
    assert!(check(&vid, Role::Video, &l).iter().any(|f| f.rule == "video.file_size" && f.is_error()));
}

fn image_facts(w: u32, h: u32) -> MediaFacts {
    let mut f = MediaFacts::new(Format::Png, 1000);
    f.width = Some(w);
    f.height = Some(h);
    f.display_width = Some(w);
    f.display_height = Some(h);
    f
}

fn has_error(f: &MediaFacts, role: Role, rule: &str) -> bool {
    check(f, role, &Limits::default()).iter().any(|x| x.is_error() && x.rule == rule)
}

proptest! {
    #[test]
    fn image_dimension_rule_is_exactly_the_inclusive_range(w in 1u32..10_000, h in 1u32..10_000) {
        let inside = (200..=4096).contains(&w) && (200..=4096).contains(&h);
        prop_assert_eq!(has_error(&image_facts(w, h), Role::Image, "image.dimensions"), !inside);
    }

    #[test]
    fn aspect_rule_is_exact_integer_comparison(w in 1u32..10_000, h in 1u32..10_000) {
        let inside = u64::from(w) <= 3 * u64::from(h) && u64::from(h) <= 3 * u64::from(w);
        prop_assert_eq!(has_error(&image_facts(w, h), Role::Image, "image.aspect_ratio"), !inside);
        prop_assert_eq!(has_error(&video_facts(w, h), Role::Video, "video.aspect_ratio"), !inside);
    }

    #[test]
    fn rotation_never_changes_a_video_verdict(w in 1u32..5_000, h in 1u32..5_000) {
        let a = check(&video_facts(w, h), Role::Video, &Limits::default());
        let mut rotated = video_facts(w, h);
        rotated.rotation = Some(90);
        rotated.display_width = Some(h);
        rotated.display_height = Some(w);
        let b = check(&rotated, Role::Video, &Limits::default());
        prop_assert_eq!(is_compliant(&a), is_compliant(&b));
        let ids = |v: &[wanprep::Finding]| v.iter().map(|f| f.rule.as_str()).collect::<Vec<_>>();
        prop_assert_eq!(ids(&a), ids(&b));
    }

    #[test]
    fn image_verdict_is_symmetric_under_transposition(w in 1u32..10_000, h in 1u32..10_000) {
        let a = is_compliant(&check(&image_facts(w, h), Role::Image, &Limits::default()));
        let b = is_compliant(&check(&image_facts(h, w), Role::Image, &Limits::default()));
        prop_assert_eq!(a, b);
    }

    #[test]
    fn duration_rule_is_the_inclusive_range(d in 0.0f64..60.0) {
        let mut f = video_facts(640, 360);
        f.duration_s = Some(d);
        prop_assert_eq!(has_error(&f, Role::Video, "video.duration"), !(2.0..=30.0).contains(&d));
    }
}
