//! Remote inputs against the local server in `http_server.rs` (127.0.0.1 only).

use std::time::Duration;

use wanprep::probe::HttpOptions;
use wanprep::{check_input, CheckOptions, InputReport, InputSpec, ProbeOptions, Role};

use crate::http_server::TestServer;
use crate::util::{code, fixtures_in, json, wanprep};

fn opts() -> CheckOptions {
    CheckOptions {
        http: HttpOptions::default()
            .timeouts(Duration::from_secs(5), Duration::from_secs(5))
            .retries(2, Duration::from_millis(20)),
        ..CheckOptions::default()
    }
}

fn local(rel: &str, role: Option<Role>) -> InputReport {
    let path = crate::util::fixture(rel);
    check_input(&InputSpec::new(path.to_string_lossy(), role), &opts())
}

fn remote(server: &TestServer, prefix: &str, rel: &str, role: Option<Role>, o: &CheckOptions) -> InputReport {
    check_input(&InputSpec::new(server.url(&format!("{prefix}/{rel}")), role), o)
}

fn error_rules(r: &InputReport) -> Vec<&'static str> {
    r.findings.iter().filter(|f| f.is_error()).map(|f| f.rule.as_str()).collect()
}

/// Every fixture whose damage shows in its head or tail (bad_crc.png is damaged in the middle:
/// over HTTP only `--deep` reads that far, tested below).
fn all_fixtures() -> Vec<String> {
    let mut v = Vec::new();
    for dir in ["image", "video", "other"] {
        for p in fixtures_in(dir) {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if name == "bad_crc.png" || name == "empty.bin" {
                continue;
            }
            v.push(format!("{dir}/{name}"));
        }
    }
    v
}

fn assert_same_as_disk(prefix: &str) {
    let server = TestServer::start();
    let o = opts();
    for rel in all_fixtures() {
        let disk = local(&rel, None);
        let net = remote(&server, prefix, &rel, None, &o);
        assert!(net.error.is_none(), "{prefix}/{rel}: {:?}", net.error);
        let disk_media = serde_json::to_value(&disk.media).unwrap();
        let net_media = serde_json::to_value(&net.media).unwrap();
        // Containers only FFmpeg reads (FLV, MPEG-TS) are measured through it on disk; over
        // HTTP only what the probe reads itself is known, and the verdict is the same.
        let ffmpeg_only = ["flv", "mpegts"].contains(&net_media["format"].as_str().unwrap_or(""));
        if ffmpeg_only {
            assert_eq!(disk_media["format"], net_media["format"], "{prefix}/{rel}");
        } else {
            assert_eq!(disk_media, net_media, "{prefix}/{rel}: media facts differ");
        }
        assert_eq!(error_rules(&disk), error_rules(&net), "{prefix}/{rel}: verdict differs");
        assert!(net.findings.iter().any(|f| f.rule == "url.public"), "{rel}: loopback must warn url.public");
        assert!(net.bytes_fetched.is_some());
    }
}

#[test]
fn facts_and_verdicts_over_http_with_ranges_equal_those_from_disk() {
    assert_same_as_disk("range");
}

#[test]
fn facts_and_verdicts_over_http_without_ranges_equal_those_from_disk() {
    assert_same_as_disk("norange");
}

#[test]
fn an_image_probe_reads_at_most_64_kib() {
    let server = TestServer::start();
    let o = opts();
    for p in fixtures_in("image") {
        let rel = format!("image/{}", p.file_name().unwrap().to_string_lossy());
        server.stats.reset();
        let r = remote(&server, "range", &rel, None, &o);
        let served = server.stats.bytes();
        assert_eq!(Some(served), r.bytes_fetched, "{rel}: client and server disagree");
        // A 16 KiB first read, the segments the header walk names, the tail's end marker. A file
        // whose marker is not in its last bytes is searched 64 KiB back (data after the marker).
        let budget = if r.findings.iter().any(|f| f.rule == "image.integrity") { 96 } else { 64 };
        assert!(served <= budget * 1024, "{rel}: {served} bytes");
        let size = std::fs::metadata(&p).unwrap().len();
        if size > budget * 1024 {
            assert!(served < size, "{rel}: read all {size} bytes");
        }
    }
}

/// The size of the moov box of an MP4/MOV file.
fn moov_size(data: &[u8]) -> u64 {
    let mut pos = 0usize;
    while pos + 8 <= data.len() {
        let size = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        if &data[pos + 4..pos + 8] == b"moov" {
            return size as u64;
        }
        if size < 8 {
            break;
        }
        pos += size;
    }
    panic!("no moov");
}

#[test]
fn a_video_probe_reads_the_moov_plus_16_kib_in_at_most_three_requests() {
    // Multi-megabyte clips (made here with the ffmpeg CLI), moov at the start and at the end.
    let dir = tempfile::tempdir().unwrap();
    for (name, extra) in [
        ("faststart.mp4", &["-movflags", "+faststart"][..]),
        ("moov_end.mp4", &[][..]),
        ("movie.mov", &["-f", "mov"][..]),
    ] {
        let mut args = vec!["-crf", "20"];
        args.extend_from_slice(extra);
        crate::util::make_clip(&dir.path().join(name), "1280x720", 30, 4, &args);
    }
    let server = TestServer::start_in(dir.path().to_path_buf());
    let o = opts();
    for name in ["faststart.mp4", "moov_end.mp4", "movie.mov"] {
        let data = std::fs::read(dir.path().join(name)).unwrap();
        assert!(data.len() > 1_000_000, "{name} is {} bytes", data.len());
        let local = check_input(&InputSpec::new(dir.path().join(name).to_string_lossy(), Some(Role::Video)), &o);
        server.stats.reset();
        let r = remote(&server, "range", name, Some(Role::Video), &o);
        assert_eq!(serde_json::to_value(&r.media).unwrap(), serde_json::to_value(&local.media).unwrap(), "{name}");
        assert_eq!(error_rules(&r), error_rules(&local), "{name}");
        let served = server.stats.bytes();
        let moov = moov_size(&data);
        assert!(served <= moov + 16 * 1024, "{name}: {served} bytes for a {moov}-byte moov");
        assert!(server.stats.requests() <= 3, "{name}: {} requests", server.stats.requests());
        assert_eq!(Some(served), r.bytes_fetched);
    }
}

#[test]
fn redirects_are_followed_and_recorded_up_to_a_bound() {
    let server = TestServer::start();
    let o = opts();
    // /redirect/2/… → /redirect/1/… → /redirect/0/… → /range/…: three hops.
    let r = remote(&server, "redirect/2/range", "video/ok_640x360_3s.mp4", None, &o);
    assert!(error_rules(&r).is_empty(), "{:?}", r.findings);
    let remote_facts = r.remote.unwrap();
    assert_eq!(remote_facts.redirects.len(), 3);
    assert!(remote_facts.final_url.ends_with("/range/video/ok_640x360_3s.mp4"));
    let r = remote(&server, "redirect/9/range", "video/ok_640x360_3s.mp4", None, &o);
    assert_eq!(error_rules(&r), ["url.reachable"]);
    assert!(r.findings[0].message.contains("redirects"));
}

#[test]
fn a_server_that_refuses_head_is_read_with_ranged_gets() {
    let server = TestServer::start();
    let r = remote(&server, "nohead", "image/ok_800x600.jpg", None, &opts());
    assert!(error_rules(&r).is_empty(), "{:?}", r.findings);
    assert_eq!(r.media.unwrap().width, Some(800));
}

#[test]
fn a_declared_size_over_the_limit_is_a_finding_without_the_body() {
    let server = TestServer::start();
    let r = remote(&server, "biglen/6000000", "image/ok_800x600.jpg", Some(Role::Image), &opts());
    assert_eq!(error_rules(&r), ["image.file_size"]);
    let media = r.media.as_ref().unwrap();
    assert_eq!(media.size_bytes, 6_000_000);
    // Issue 10 item 13: the facts a local file would show, from the headers alone.
    assert_eq!((media.width, media.height), (Some(800), Some(600)));
    assert!(server.stats.bytes() <= 64 * 1024, "{} bytes", server.stats.bytes());
}

#[test]
fn a_video_over_the_size_limit_still_reports_its_size_and_duration() {
    // Regression, issue 10 item 13: a remote video over the limit used to show no facts.
    let server = TestServer::start();
    let mut o = opts();
    o.limits.video_max_bytes = 10_000;
    for how in ["range", "norange"] {
        let r = remote(&server, how, "video/ok_moov_end_640x360_3s.mp4", Some(Role::Video), &o);
        assert_eq!(error_rules(&r), ["video.file_size"], "{how}: {:?}", r.findings);
        let media = r.media.as_ref().unwrap();
        if how == "range" {
            assert_eq!((media.width, media.height, media.duration_s), (Some(640), Some(360), Some(3.0)), "{how}");
        } else {
            // Without ranges the budget (limit + 1 byte) ends before the moov at the end: the
            // facts there are unknown, and their absence is not called damage.
            assert!(media.duration_s.is_none());
        }
    }
}

#[test]
fn a_content_length_longer_than_the_body_is_a_truncated_file() {
    let server = TestServer::start();
    let r = remote(&server, "badlen", "video/ok_moov_end_640x360_3s.mp4", None, &opts());
    assert_eq!(error_rules(&r), ["video.integrity"], "{:?}", r.findings);
    let r = remote(&server, "badlen", "image/ok_800x600.jpg", None, &opts());
    assert_eq!(error_rules(&r), ["image.integrity"], "{:?}", r.findings);
}

#[test]
fn a_body_cut_short_is_a_truncated_file() {
    let server = TestServer::start();
    let r = remote(&server, "cut", "video/ok_moov_end_640x360_3s.mp4", None, &opts());
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(error_rules(&r), ["video.integrity"], "{:?}", r.findings);
}

#[test]
fn a_slow_server_times_out_and_is_unreadable() {
    let server = TestServer::start();
    let o = CheckOptions {
        http: HttpOptions::default()
            .timeouts(Duration::from_millis(300), Duration::from_millis(300))
            .retries(1, Duration::from_millis(10)),
        ..CheckOptions::default()
    };
    let r = remote(&server, "slow/2000", "image/ok_800x600.jpg", None, &o);
    let err = r.error.expect("unreadable");
    assert!(err.contains("timed out"), "{err}");
}

#[test]
fn transient_failures_are_retried() {
    let server = TestServer::start();
    let r = remote(&server, "flaky", "image/ok_800x600.jpg", None, &opts());
    assert!(error_rules(&r).is_empty(), "{:?}", r.findings);
    assert!(r.remote.unwrap().requests >= 3, "the 503 was retried");
}

#[test]
fn http_errors_are_reachability_findings() {
    let server = TestServer::start();
    for code in [404, 500, 403] {
        let r = check_input(&InputSpec::new(server.url(&format!("status/{code}")), None), &opts());
        assert!(r.error.is_none());
        assert_eq!(error_rules(&r), ["url.reachable"], "{code}");
        assert_eq!(r.findings[0].actual, serde_json::json!(code));
    }
}

#[test]
fn cli_exit_codes_for_urls() {
    let server = TestServer::start();
    let ok = wanprep(&["check", "--json", &server.url("range/image/ok_800x600.jpg")]);
    assert_eq!(code(&ok), 0, "{}", String::from_utf8_lossy(&ok.stdout));
    let doc = json(&ok);
    assert!(doc["inputs"][0]["bytes_fetched"].as_u64().unwrap() > 0);
    assert_eq!(code(&wanprep(&["check", &server.url("status/404")])), 1);
    // Nothing listens on port 1: a network failure before any answer.
    let refused = wanprep(&["check", "--json", "--retries", "0", "http://127.0.0.1:1/a.jpg"]);
    assert_eq!(code(&refused), 2);
    assert!(json(&refused)["inputs"][0]["error"].as_str().unwrap().contains("connect"));
}

#[test]
fn a_pair_mixes_urls_and_paths() {
    let server = TestServer::start();
    let o = wanprep(&[
        "check",
        "--json",
        "--image",
        &server.url("range/image/ok_800x600.jpg"),
        "--video",
        "fixtures/video/rot90_1280x720.mp4",
    ]);
    assert_eq!(code(&o), 0);
    let doc = json(&o);
    assert_eq!(doc["findings"][0]["rule"], "pair.orientation");
}

#[test]
fn url_scheme_and_encoding_rules() {
    for url in ["ftp://example.com/a.mp4", "file:///tmp/a.mp4", "data:image/png;base64,AAAA", "s3://bucket/a.mp4"] {
        let o = wanprep(&["check", "--json", url]);
        assert_eq!(code(&o), 1, "{url}");
        let doc = json(&o);
        assert_eq!(doc["inputs"][0]["findings"][0]["rule"], "url.scheme", "{url}");
    }
    let server = TestServer::start();
    let r =
        check_input(&InputSpec::new(format!("{}?name=舞蹈", server.url("range/image/ok_800x600.jpg")), None), &opts());
    let enc = r.findings.iter().find(|f| f.rule == "url.encoding").expect("url.encoding");
    assert!(enc.message.contains("?name=%E8%88%9E%E8%B9%88"), "{}", enc.message);
    assert_eq!(r.media.unwrap().width, Some(800), "still probed");
}

#[test]
fn deep_over_http_reads_the_body_and_catches_mid_file_damage() {
    let server = TestServer::start();
    let shallow = remote(&server, "range", "image/bad_crc.png", None, &opts());
    assert!(error_rules(&shallow).is_empty(), "head and tail are intact");
    let deep = CheckOptions { probe: ProbeOptions::new().deep(true), ..opts() };
    let r = remote(&server, "range", "image/bad_crc.png", None, &deep);
    assert_eq!(error_rules(&r), ["image.integrity"]);
    let r = remote(&server, "range", "video/ok_640x360_3s.mp4", None, &deep);
    assert!(error_rules(&r).is_empty(), "{:?}", r.findings);
}

#[test]
fn without_range_support_a_moov_at_the_end_means_reading_the_whole_body_and_the_report_says_so() {
    let dir = tempfile::tempdir().unwrap();
    crate::util::make_clip(&dir.path().join("moov_end.mp4"), "1280x720", 30, 3, &["-crf", "20"]);
    let size = std::fs::metadata(dir.path().join("moov_end.mp4")).unwrap().len();
    let server = TestServer::start_in(dir.path().to_path_buf());
    let r = remote(&server, "norange", "moov_end.mp4", Some(Role::Video), &opts());
    assert!(error_rules(&r).is_empty(), "{:?}", r.findings);
    let facts = r.remote.unwrap();
    assert!(!facts.range_supported);
    assert!(facts.whole_body_read);
    assert_eq!(r.bytes_fetched, Some(size), "read exactly the body, once");
    // With a video limit below the file size, reading stops at the limit + 1 byte.
    let mut small = opts();
    small.limits.video_max_bytes = size / 2;
    let r = remote(&server, "norange", "moov_end.mp4", Some(Role::Video), &small);
    assert!(r.bytes_fetched.unwrap() <= size / 2 + 1 + 64 * 1024, "{:?}", r.bytes_fetched);
    assert!(error_rules(&r).contains(&"video.file_size"));
}
