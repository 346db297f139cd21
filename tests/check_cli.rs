//! The CLI's contract: JSON shape, exit codes, roles, pair warnings, colour.

use crate::util::{code, errors, json, wanprep, warnings};

#[test]
fn a_compliant_pair_exits_0_with_the_contract_json_shape() {
    let o = wanprep(&[
        "check",
        "--json",
        "--image",
        "fixtures/image/ok_800x600.jpg",
        "--video",
        "fixtures/video/ok_640x360_3s.mp4",
    ]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let doc = json(&o);
    assert_eq!(doc["compliant"], true);
    let inputs = doc["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 2);
    assert_eq!(inputs[0]["input"], "fixtures/image/ok_800x600.jpg");
    assert_eq!(inputs[0]["kind"], "image");
    assert_eq!(inputs[0]["compliant"], true);
    assert_eq!(inputs[0]["media"]["format"], "jpeg");
    assert_eq!(inputs[0]["media"]["width"], 800);
    assert_eq!(inputs[0]["media"]["display_height"], 600);
    let v = &inputs[1]["media"];
    assert_eq!(inputs[1]["kind"], "video");
    for key in [
        "format",
        "size_bytes",
        "width",
        "height",
        "display_width",
        "display_height",
        "rotation",
        "duration_s",
        "frame_rate",
        "video_codec",
    ] {
        assert!(!v[key].is_null(), "media.{key} missing: {v}");
    }
    assert_eq!(v["duration_s"], 3.0);
    assert_eq!(v["frame_rate"], 25.0);
    assert_eq!(v["video_codec"], "h264");
    // Absent facts are omitted, not null.
    assert!(inputs[0]["media"].get("duration_s").is_none());
}

#[test]
fn findings_carry_rule_severity_message_actual_limit_fixable() {
    let o = wanprep(&["check", "--json", "fixtures/video/dur_30.5s_10fps.mp4"]);
    assert_eq!(code(&o), 1);
    let doc = json(&o);
    assert_eq!(doc["compliant"], false);
    let f = doc["inputs"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "video.duration")
        .unwrap()
        .clone();
    assert_eq!(f["severity"], "error");
    assert_eq!(f["actual"], 30.5);
    assert_eq!(f["limit"], 30.0);
    assert_eq!(f["fixable"], true);
    assert!(f["message"].as_str().unwrap().contains("longer than 30 s"));
}

#[test]
fn a_missing_file_exits_2_and_is_reported() {
    let o = wanprep(&["check", "--json", "fixtures/image/ok_800x600.jpg", "no/such/file.jpg"]);
    assert_eq!(code(&o), 2);
    let doc = json(&o);
    assert_eq!(doc["inputs"][1]["error"], "no such file");
    assert_eq!(doc["inputs"][0]["compliant"], true);
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(code(&wanprep(&["check"])), 2);
    assert_eq!(code(&wanprep(&["check", "--bogus", "x"])), 2);
    assert_eq!(code(&wanprep(&["check", "--limit", "nope=3", "fixtures/image/ok_800x600.jpg"])), 2);
    assert_eq!(code(&wanprep(&["check", "--limit", "image.max_side", "fixtures/image/ok_800x600.jpg"])), 2);
    assert_eq!(code(&wanprep(&["frobnicate"])), 2);
}

#[test]
fn a_directory_cannot_be_read_as_an_input() {
    assert_eq!(code(&wanprep(&["check", "fixtures/image"])), 2);
}

#[test]
fn a_jpeg_given_as_video_is_a_video_format_error() {
    let doc = json(&wanprep(&["check", "--json", "--video", "fixtures/image/ok_800x600.jpg"]));
    assert_eq!(errors(&doc, 0), ["video.format"]);
    assert_eq!(doc["inputs"][0]["kind"], "image");
    assert_eq!(doc["inputs"][0]["findings"][0]["fixable"], false);
}

#[test]
fn an_mkv_given_as_image_is_an_image_format_error() {
    let doc = json(&wanprep(&["check", "--json", "--image", "fixtures/video/h264_640x360.mkv"]));
    assert_eq!(errors(&doc, 0), ["image.format"]);
    assert_eq!(doc["inputs"][0]["kind"], "video");
}

#[test]
fn inputs_without_role_are_judged_by_content() {
    let doc = json(&wanprep(&[
        "check",
        "--json",
        "fixtures/other/text.txt",
        "fixtures/video/h264_640x360.mkv",
        "fixtures/image/not_accepted_300x300.gif",
    ]));
    assert_eq!(doc["inputs"][0]["kind"], "unknown");
    assert_eq!(errors(&doc, 0), ["image.format"]);
    assert_eq!(doc["inputs"][1]["kind"], "video");
    assert_eq!(errors(&doc, 1), ["video.format"]);
    assert_eq!(doc["inputs"][1]["findings"][0]["fixable"], true);
    assert_eq!(errors(&doc, 2), ["image.format"]);
    assert_eq!(doc["inputs"][2]["media"]["format"], "gif");
}

#[test]
fn a_portrait_video_with_a_landscape_image_warns_pair_orientation() {
    let o = wanprep(&[
        "check",
        "--json",
        "--image",
        "fixtures/image/ok_800x600.jpg",
        "--video",
        "fixtures/video/rot90_1280x720.mp4",
    ]);
    assert_eq!(code(&o), 0, "a warning never makes a pair non-compliant");
    let doc = json(&o);
    assert_eq!(doc["findings"][0]["rule"], "pair.orientation");
    assert!(warnings(&doc, 1).contains(&"pair.orientation".to_string()));
    // An EXIF-rotated portrait image matches the portrait video: no warning.
    let doc = json(&wanprep(&[
        "check",
        "--json",
        "--image",
        "fixtures/image/exif_orient6_800x600.jpg",
        "--video",
        "fixtures/video/rot90_1280x720.mp4",
    ]));
    assert!(doc.get("findings").is_none(), "{doc}");
}

#[test]
fn extension_lies_are_warnings_not_errors() {
    let o =
        wanprep(&["check", "--json", "fixtures/image/png_content_named.jpg", "fixtures/video/mov_content_named.mp4"]);
    assert_eq!(code(&o), 0);
    let doc = json(&o);
    assert_eq!(doc["inputs"][0]["media"]["format"], "png");
    assert!(warnings(&doc, 0).contains(&"image.extension".to_string()));
    assert!(warnings(&doc, 1).contains(&"video.extension".to_string()));
}

#[test]
fn limits_can_be_overridden() {
    let o = wanprep(&["check", "--json", "--limit", "video.max_duration_s=2.5", "fixtures/video/ok_640x360_3s.mp4"]);
    assert_eq!(code(&o), 1);
    assert_eq!(errors(&json(&o), 0), ["video.duration"]);
}

#[test]
fn rules_json_lists_every_contract_rule() {
    let o = wanprep(&["rules", "--json"]);
    assert_eq!(code(&o), 0);
    let doc = json(&o);
    let ids: Vec<&str> = doc["rules"].as_array().unwrap().iter().map(|r| r["rule"].as_str().unwrap()).collect();
    for id in [
        "image.format",
        "image.integrity",
        "image.dimensions",
        "image.aspect_ratio",
        "image.file_size",
        "video.format",
        "video.integrity",
        "video.duration",
        "video.dimensions",
        "video.aspect_ratio",
        "video.file_size",
        "url.scheme",
        "url.encoding",
        "url.reachable",
        "video.frame_rate",
        "image.resolution",
        "video.resolution",
        "image.extension",
        "video.extension",
        "pair.orientation",
        "url.public",
        "video.codec",
    ] {
        assert!(ids.contains(&id), "{id} missing from `wanprep rules`");
    }
    assert_eq!(doc["limits"]["image.max_bytes"], 5_000_000.0);
    let human = String::from_utf8(wanprep(&["rules", "--limit", "image.max_side=2048"]).stdout).unwrap();
    assert!(human.contains("[200, 2048] px"), "{human}");
}

#[test]
fn colour_only_when_asked_or_on_a_terminal() {
    let plain = wanprep(&["check", "fixtures/image/dims_199x300.png"]);
    assert!(!plain.stdout.contains(&0x1b), "no escape codes when stdout is a pipe");
    let text = String::from_utf8(plain.stdout).unwrap();
    assert!(text.contains("FAIL") && text.contains("image.dimensions"), "{text}");
    let coloured = wanprep(&["check", "--color", "always", "fixtures/image/dims_199x300.png"]);
    assert!(coloured.stdout.contains(&0x1b));
}

#[test]
fn control_characters_in_names_do_not_reach_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let evil = dir.path().join("a\x1b[31mb.jpg");
    std::fs::copy(crate::util::fixture("image/ok_800x600.jpg"), &evil).unwrap();
    let o = wanprep(&["check", evil.to_str().unwrap()]);
    assert_eq!(code(&o), 0);
    assert!(!o.stdout.contains(&0x1b));
}

#[test]
fn deep_decoding_passes_intact_files_and_keeps_the_verdict() {
    let o = wanprep(&[
        "check",
        "--json",
        "--deep",
        "fixtures/image/ok_800x600.png",
        "fixtures/image/ok_lossy_800x600.webp",
        "fixtures/video/ok_640x360_3s.mp4",
        "fixtures/video/ok_640x360_3s.avi",
    ]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn deep_decoding_catches_damage_the_structure_hides() {
    // Corrupt the entropy-coded data of a JPEG without touching its markers: the structural
    // walk still reaches EOI, the decoder does not produce the picture it claims to.
    let dir = tempfile::tempdir().unwrap();
    let mut b = std::fs::read(crate::util::fixture("image/ok_800x600.png")).unwrap();
    let idat = b.windows(4).position(|w| w == b"IDAT").unwrap();
    // Replace the zlib stream with garbage and fix the CRC, so only decoding can tell.
    let len = u32::from_be_bytes(b[idat - 4..idat].try_into().unwrap()) as usize;
    for x in &mut b[idat + 4..idat + 4 + len] {
        *x = 0xAB;
    }
    let crc = crate::util::crc32(&b[idat..idat + 4 + len]);
    b[idat + 4 + len..idat + 8 + len].copy_from_slice(&crc.to_be_bytes());
    let p = dir.path().join("garbage_idat.png");
    std::fs::write(&p, &b).unwrap();
    let shallow = json(&wanprep(&["check", "--json", p.to_str().unwrap()]));
    assert_eq!(shallow["compliant"], true, "the structure is intact");
    let deep = json(&wanprep(&["check", "--json", "--deep", p.to_str().unwrap()]));
    assert_eq!(errors(&deep, 0), ["image.integrity"]);
}

#[test]
fn the_readme_rules_table_is_the_generated_one() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/usage.md")).unwrap();
    let start = "<!-- rules-table: generated by `wanprep rules --markdown` -->\n";
    let from = readme.find(start).expect("the README marks its rules table") + start.len();
    let to = readme[from..].find("<!-- /rules-table -->").expect("end marker") + from;
    let generated = wanprep::rules::markdown_table(&wanprep::Limits::default());
    assert_eq!(&readme[from..to], generated, "docs/usage.md's rules table is stale: paste `wanprep rules --markdown`");
    // And every id in it parses back to the rule it names.
    for r in wanprep::rules::RuleId::ALL {
        assert_eq!(r.as_str().parse::<wanprep::rules::RuleId>().unwrap(), *r);
    }
}

#[test]
fn the_helper_refuses_a_request_of_another_protocol() {
    use std::io::Write;
    let helper = env!("CARGO_BIN_EXE_wanprep-av");
    let v = std::process::Command::new(helper).arg("--protocol").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&v.stdout).trim(), wanprep::av::PROTOCOL.to_string());
    // A request as an older wanprep wrote it (no envelope), and one from a newer build.
    for body in [r#"{"op":"probe","path":"fixtures/video/ok_640x360_3s.mp4"}"#.to_string(), {
        let p = wanprep::av::PROTOCOL + 1;
        format!(r#"{{"protocol":{p},"body":{{"op":"probe","path":"fixtures/video/ok_640x360_3s.mp4"}}}}"#)
    }] {
        let mut child = std::process::Command::new(helper)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{body}");
        assert!(o.stdout.is_empty(), "nothing that could be misread: {}", String::from_utf8_lossy(&o.stdout));
        assert!(String::from_utf8_lossy(&o.stderr).contains("protocol"), "{}", String::from_utf8_lossy(&o.stderr));
    }
}
