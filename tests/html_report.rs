//! `batch --html` (issue 15 item 4): the page is loaded in headless Chromium (Debian's
//! `chromium`, installed by scripts/setup): every thumbnail decodes, the counts match the JSON
//! report, nothing is fetched from outside the page, and a screenshot is taken.

use std::process::Command;

use crate::submit::text;
use crate::util::{code, fixture, wanprep};

fn chromium(args: &[&str], page: &std::path::Path) -> std::process::Output {
    Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions"])
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium is installed (scripts/setup)")
}

#[test]
fn the_html_report_shows_every_thumbnail_and_the_json_counts_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    for f in [
        "image/dims_4097x1500.png",
        "image/ok_800x600.jpg",
        "image/exif_orient6_800x600.jpg",
        "video/ok_640x360_3s.mp4",
        "video/dur_30.5s_10fps.mp4",
        "video/dur_1.9s_10fps.mp4",
        "people/astronaut.jpg",
    ] {
        std::fs::copy(fixture(f), input.join(f.rsplit('/').next().unwrap())).unwrap();
    }
    // Text that would break out of the page if it were not escaped.
    std::fs::write(input.join("<script>alert(1)<!--.txt"), "not media").unwrap();
    let page = dir.path().join("report.html");
    let json = dir.path().join("report.json");
    let out = dir.path().join("out");
    let o = wanprep(&[
        "batch",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--html",
        page.to_str().unwrap(),
        "--report",
        json.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1, "a not-media and an unfixable input: {}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("<script>alert"), "names are escaped");
    assert!(!html.contains("http://") && !html.contains("https://"), "self-contained");

    // Thumbnails: every media input, and every output written.
    let items = report["inputs"].as_array().unwrap();
    let media = items.iter().filter(|i| i["kind"] != "unknown").count();
    let outputs = items.iter().filter(|i| i["output"].is_string()).count();
    let dom =
        String::from_utf8_lossy(&chromium(&["--virtual-time-budget=5000", "--dump-dom"], &page).stdout).into_owned();
    let body = dom.split("<body").nth(1).and_then(|b| b.split('>').next()).expect("a body");
    let attr = |name: &str| -> usize {
        let at = body.find(&format!("{name}=\"")).unwrap_or_else(|| panic!("{name} missing: {body}"));
        body[at + name.len() + 2..].split('"').next().unwrap().parse().unwrap()
    };
    assert_eq!(attr("data-thumbs-total"), media + outputs, "{body}");
    assert_eq!(attr("data-thumbs-decoded"), media + outputs, "every thumbnail decoded: {body}");

    // Counts: rows per status and the totals are the JSON report's.
    let summary = &report["summary"];
    for status in ["compliant", "fixed", "unfixable", "not_media"] {
        let rows = dom.matches(&format!("<tr data-status=\"{status}\"")).count();
        let want = items.iter().filter(|i| i["status"] == status).count();
        assert_eq!(rows, want, "{status}");
        assert_eq!(summary[status].as_u64().unwrap() as usize, want, "{status}");
        let total = format!("data-count=\"{status}\">{want}<");
        assert!(dom.contains(&total), "{total}");
        if want > 0 {
            assert!(dom.contains(&format!(">{} ({want})</button>", status.replace('_', " "))), "{status} filter");
        }
    }

    // A screenshot of the page, decoded.
    let shot = dir.path().join("shot.png");
    let o = chromium(&[&format!("--screenshot={}", shot.display()), "--window-size=1200,900"], &page);
    assert!(shot.exists(), "{}", String::from_utf8_lossy(&o.stderr));
    let png = image::open(&shot).unwrap();
    assert_eq!((png.width(), png.height()), (1200, 900));
}
