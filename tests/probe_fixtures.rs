//! Facts read from real files made by scripts/make-fixtures.py.

use wanprep::{probe, Format};

use crate::util::fixture;

struct Img {
    file: &'static str,
    format: Format,
    size: (u32, u32),
    display: (u32, u32),
}

const IMAGES: &[Img] = &[
    Img { file: "ok_800x600.jpg", format: Format::Jpeg, size: (800, 600), display: (800, 600) },
    Img { file: "ok_progressive_800x600.jpg", format: Format::Jpeg, size: (800, 600), display: (800, 600) },
    Img { file: "ok_gray_800x600.jpg", format: Format::Jpeg, size: (800, 600), display: (800, 600) },
    Img { file: "ok_800x600.png", format: Format::Png, size: (800, 600), display: (800, 600) },
    Img { file: "ok_gray16_400x300.png", format: Format::Png, size: (400, 300), display: (400, 300) },
    Img { file: "ok_palette_300x300.png", format: Format::Png, size: (300, 300), display: (300, 300) },
    Img { file: "ok_320x240.bmp", format: Format::Bmp, size: (320, 240), display: (320, 240) },
    Img { file: "ok_palette_320x240.bmp", format: Format::Bmp, size: (320, 240), display: (320, 240) },
    Img { file: "ok_topdown_240x200.bmp", format: Format::Bmp, size: (240, 200), display: (240, 200) },
    Img { file: "ok_lossy_800x600.webp", format: Format::Webp, size: (800, 600), display: (800, 600) },
    Img { file: "ok_lossless_400x300.webp", format: Format::Webp, size: (400, 300), display: (400, 300) },
    Img { file: "ok_alpha_400x300.webp", format: Format::Webp, size: (400, 300), display: (400, 300) },
    Img { file: "animated_400x300.webp", format: Format::Webp, size: (400, 300), display: (400, 300) },
    Img { file: "exif_orient6_800x600.jpg", format: Format::Jpeg, size: (800, 600), display: (600, 800) },
    Img { file: "exif_orient6_600x400.png", format: Format::Png, size: (600, 400), display: (400, 600) },
    Img { file: "exif_orient8_600x400.webp", format: Format::Webp, size: (600, 400), display: (400, 600) },
    Img { file: "not_accepted_300x300.gif", format: Format::Gif, size: (300, 300), display: (300, 300) },
    Img { file: "not_accepted_300x300.tif", format: Format::Tiff, size: (300, 300), display: (300, 300) },
    Img { file: "png_content_named.jpg", format: Format::Png, size: (400, 300), display: (400, 300) },
    Img { file: "jpeg_content_named.png", format: Format::Jpeg, size: (400, 300), display: (400, 300) },
];

#[test]
fn images_report_stored_and_displayed_size_by_content() {
    for c in IMAGES {
        let f = probe(fixture(&format!("image/{}", c.file))).expect(c.file);
        assert_eq!(f.format, c.format, "{}", c.file);
        assert_eq!((f.width, f.height), (Some(c.size.0), Some(c.size.1)), "{}", c.file);
        assert_eq!((f.display_width, f.display_height), (Some(c.display.0), Some(c.display.1)), "{}", c.file);
        assert!(f.is_intact(), "{}: {:?}", c.file, f.integrity_problem);
        assert_eq!(f.size_bytes, std::fs::metadata(fixture(&format!("image/{}", c.file))).unwrap().len());
    }
}

#[test]
fn image_details_are_read_where_cheap() {
    let p = |n: &str| probe(fixture(&format!("image/{n}"))).unwrap();
    assert_eq!(p("ok_progressive_800x600.jpg").coding.as_deref(), Some("progressive"));
    assert_eq!(p("ok_800x600.jpg").coding.as_deref(), Some("baseline"));
    assert_eq!(p("ok_gray_800x600.jpg").color_type.as_deref(), Some("gray"));
    let g16 = p("ok_gray16_400x300.png");
    assert_eq!((g16.bit_depth, g16.color_type.as_deref()), (Some(16), Some("gray")));
    assert_eq!(p("ok_palette_300x300.png").color_type.as_deref(), Some("palette"));
    assert_eq!(p("ok_topdown_240x200.bmp").coding.as_deref(), Some("top-down"));
    assert_eq!(p("ok_lossless_400x300.webp").coding.as_deref(), Some("lossless"));
    assert_eq!(p("ok_alpha_400x300.webp").color_type.as_deref(), Some("rgba"));
    assert_eq!(p("animated_400x300.webp").animated, Some(true));
    assert_eq!(p("ok_lossy_800x600.webp").animated, Some(false));
    assert_eq!(p("exif_orient6_800x600.jpg").orientation, Some(6));
    assert_eq!(p("exif_orient8_600x400.webp").orientation, Some(8));
    assert_eq!(p("ok_800x600.jpg").orientation, None);
}

#[test]
fn damaged_images_are_flagged() {
    for n in [
        "truncated_half.jpg",
        "truncated_no_eoi.jpg",
        "truncated_half.png",
        "bad_crc.png",
        "truncated_half.webp",
        "truncated_half.bmp",
    ] {
        let f = probe(fixture(&format!("image/{n}"))).unwrap();
        assert!(!f.is_intact(), "{n} should be flagged");
    }
    let crc = probe(fixture("image/bad_crc.png")).unwrap();
    assert!(crc.integrity_problem.unwrap().contains("CRC"));
}

struct Vid {
    file: &'static str,
    format: Format,
    size: (u32, u32),
    display: (u32, u32),
    rotation: u16,
    duration: f64,
    fps: f64,
    codec: &'static str,
}

const VIDEOS: &[Vid] = &[
    Vid {
        file: "ok_640x360_3s.mp4",
        format: Format::Mp4,
        size: (640, 360),
        display: (640, 360),
        rotation: 0,
        duration: 3.0,
        fps: 25.0,
        codec: "h264",
    },
    Vid {
        file: "ok_moov_end_640x360_3s.mp4",
        format: Format::Mp4,
        size: (640, 360),
        display: (640, 360),
        rotation: 0,
        duration: 3.0,
        fps: 25.0,
        codec: "h264",
    },
    Vid {
        file: "ok_640x360_3s.mov",
        format: Format::Mov,
        size: (640, 360),
        display: (640, 360),
        rotation: 0,
        duration: 3.0,
        fps: 25.0,
        codec: "h264",
    },
    Vid {
        file: "ok_640x360_3s.avi",
        format: Format::Avi,
        size: (640, 360),
        display: (640, 360),
        rotation: 0,
        duration: 3.0,
        fps: 25.0,
        codec: "mpeg4",
    },
    Vid {
        file: "ntsc_29.97fps_640x360.mov",
        format: Format::Mov,
        size: (640, 360),
        display: (640, 360),
        rotation: 0,
        duration: 3.003,
        fps: 29.97,
        codec: "h264",
    },
    Vid {
        file: "rot90_1280x720.mp4",
        format: Format::Mp4,
        size: (1280, 720),
        display: (720, 1280),
        rotation: 90,
        duration: 2.52,
        fps: 25.0,
        codec: "h264",
    },
    Vid {
        file: "rot180_1280x720.mp4",
        format: Format::Mp4,
        size: (1280, 720),
        display: (1280, 720),
        rotation: 180,
        duration: 2.52,
        fps: 25.0,
        codec: "h264",
    },
    Vid {
        file: "rot270_1280x720.mp4",
        format: Format::Mp4,
        size: (1280, 720),
        display: (720, 1280),
        rotation: 270,
        duration: 2.52,
        fps: 25.0,
        codec: "h264",
    },
    Vid {
        file: "sar4_3_1440x1080.mp4",
        format: Format::Mp4,
        size: (1440, 1080),
        display: (1920, 1080),
        rotation: 0,
        duration: 2.52,
        fps: 25.0,
        codec: "h264",
    },
    Vid {
        file: "sar1_2_1200x300.mp4",
        format: Format::Mp4,
        size: (1200, 300),
        display: (600, 300),
        rotation: 0,
        duration: 2.52,
        fps: 25.0,
        codec: "h264",
    },
    Vid {
        file: "hevc_hvc1_640x360.mp4",
        format: Format::Mp4,
        size: (640, 360),
        display: (640, 360),
        rotation: 0,
        duration: 2.52,
        fps: 25.0,
        codec: "hevc",
    },
    Vid {
        file: "mp4v_640x360.mp4",
        format: Format::Mp4,
        size: (640, 360),
        display: (640, 360),
        rotation: 0,
        duration: 2.52,
        fps: 25.0,
        codec: "mpeg4",
    },
    Vid {
        file: "prores_320x240.mov",
        format: Format::Mov,
        size: (320, 240),
        display: (320, 240),
        rotation: 0,
        duration: 2.52,
        fps: 25.0,
        codec: "prores",
    },
    Vid {
        file: "no_ftyp_640x360.mov",
        format: Format::Mov,
        size: (640, 360),
        display: (640, 360),
        rotation: 0,
        duration: 2.52,
        fps: 25.0,
        codec: "h264",
    },
    Vid {
        file: "mov_content_named.mp4",
        format: Format::Mov,
        size: (640, 360),
        display: (640, 360),
        rotation: 0,
        duration: 2.52,
        fps: 25.0,
        codec: "h264",
    },
];

#[test]
fn videos_report_size_rotation_sar_duration_rate_and_codec() {
    for c in VIDEOS {
        let f = probe(fixture(&format!("video/{}", c.file))).expect(c.file);
        assert_eq!(f.format, c.format, "{}", c.file);
        assert!(f.is_intact(), "{}: {:?}", c.file, f.integrity_problem);
        assert_eq!((f.width, f.height), (Some(c.size.0), Some(c.size.1)), "{}", c.file);
        assert_eq!((f.display_width, f.display_height), (Some(c.display.0), Some(c.display.1)), "{}", c.file);
        assert_eq!(f.rotation, Some(c.rotation), "{}", c.file);
        assert!((f.duration_s.unwrap() - c.duration).abs() < 1e-3, "{}: {:?}", c.file, f.duration_s);
        assert_eq!(f.frame_rate, Some(c.fps), "{}", c.file);
        assert_eq!(f.video_codec.as_deref(), Some(c.codec), "{}", c.file);
        assert_eq!(f.has_video, Some(true));
    }
}

#[test]
fn moov_position_is_reported() {
    assert_eq!(probe(fixture("video/ok_640x360_3s.mp4")).unwrap().moov_before_mdat, Some(true));
    assert_eq!(probe(fixture("video/ok_moov_end_640x360_3s.mp4")).unwrap().moov_before_mdat, Some(false));
}

#[test]
fn audio_only_mp4_has_no_video_stream() {
    let f = probe(fixture("video/audio_only.mp4")).unwrap();
    assert_eq!(f.has_video, Some(false));
    assert_eq!(f.audio_codec.as_deref(), Some("aac"));
}

#[test]
fn damaged_videos_are_flagged() {
    for n in
        ["truncated_moov_end.mp4", "truncated_faststart.mp4", "truncated.avi", "box_size_max.mp4", "zero_size_box.mp4"]
    {
        let f = probe(fixture(&format!("video/{n}"))).unwrap();
        assert!(!f.is_intact(), "{n} should be flagged");
    }
    // moov first, media cut: the facts are still there, and so is the problem.
    let f = probe(fixture("video/truncated_faststart.mp4")).unwrap();
    assert_eq!(f.width, Some(640));
    assert!(f.integrity_problem.unwrap().contains("truncated"));
    assert!(probe(fixture("video/truncated_moov_end.mp4")).unwrap().width.is_none());
}

#[test]
fn other_containers_are_named() {
    let p = |n: &str| probe(fixture(n)).unwrap().format;
    assert_eq!(p("video/h264_640x360.mkv"), Format::Mkv);
    assert_eq!(p("video/vp9_320x240.webm"), Format::Webm);
    assert_eq!(p("video/h264_320x240.flv"), Format::Flv);
    assert_eq!(p("video/h264_320x240.ts"), Format::MpegTs);
    assert_eq!(p("other/heic_header.heic"), Format::Heif);
    assert_eq!(p("other/avif_header.avif"), Format::Avif);
    assert_eq!(p("other/text.txt"), Format::Unknown);
    assert_eq!(p("other/empty.bin"), Format::Unknown);
}

#[test]
fn files_from_other_encoders_and_muxer_settings() {
    let p = |n: &str| probe(fixture(n)).unwrap();
    for v in ["3", "4", "5"] {
        let f = p(&format!("image/im_bmp{v}_160x120.bmp"));
        assert_eq!((f.width, f.height, f.is_intact()), (Some(160), Some(120), true), "BMP v{v}");
    }
    assert_eq!(p("image/im_cmyk_640x480.jpg").color_type.as_deref(), Some("cmyk"));
    assert_eq!(p("image/im_progressive_restart_640x480.jpg").coding.as_deref(), Some("progressive"));
    assert!(p("image/im_progressive_restart_640x480.jpg").is_intact());
    assert_eq!(p("image/im_rgb16_400x300.png").bit_depth, Some(16));
    assert!(p("image/vips_q70_640x480.jpg").is_intact());
    let codec = |n: &str| p(n).video_codec.unwrap();
    assert_eq!(codec("video/av1_320x240.mp4"), "av1");
    assert_eq!(codec("video/hevc_hev1_320x240.mp4"), "hevc");
    assert_eq!(codec("video/mjpeg_320x240.avi"), "mjpeg");
    assert_eq!(codec("video/timecode_320x240.mov"), "h264");
    assert_eq!(p("video/ipod_320x240.m4v").format, Format::Mp4);
    assert_eq!(p("video/brand_mp42_320x240.mp4").format, Format::Mp4);
    assert_eq!(p("video/h264_320x240.3gp").format, Format::ThreeGp);
    assert_eq!(p("video/timecode_320x240.mov").duration_s, Some(2.52));
}
