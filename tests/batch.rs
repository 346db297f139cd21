//! `batch` on generated folders and manifests (submission against the protocol stand-in).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::dashscope_server::{Stand, KEY};
use crate::util::{code, fixture};

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wanprep"));
    c.args(args).env_remove("DASHSCOPE_API_KEY").env_remove("DASHSCOPE_BASE_URL");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Every file under `dir` with its content hash.
fn tree(dir: &Path) -> BTreeMap<PathBuf, u32> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().filter_map(Result::ok) {
            let p = e.path();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() {
                out.insert(p.strip_prefix(dir).unwrap().to_path_buf(), crate::util::crc32(&std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

/// A mixed folder: compliant, fixable, unfixable, non-media, nested, hidden, a link out.
fn mixed_folder(outside: &Path) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    std::fs::create_dir_all(p.join("chars/nested")).unwrap();
    std::fs::create_dir_all(p.join("clips")).unwrap();
    for (src, dst) in [
        ("image/ok_800x600.jpg", "chars/ok.jpg"),
        ("image/dims_4097x1500.png", "chars/too_wide.png"),
        ("image/not_accepted_300x300.gif", "chars/nested/anim.gif"),
        ("image/truncated_half.jpg", "chars/broken.jpg"),
        ("video/ok_640x360_3s.mp4", "clips/ok.mp4"),
        ("video/dur_30.5s_10fps.mp4", "clips/long.mp4"),
        ("video/dur_1.9s_10fps.mp4", "clips/short.mp4"),
        ("video/h264_640x360.mkv", "clips/wrong_container.mkv"),
    ] {
        std::fs::copy(fixture(src), p.join(dst)).unwrap();
    }
    std::fs::write(p.join("README.txt"), b"not media").unwrap();
    std::fs::copy(fixture("image/ok_800x600.png"), p.join(".hidden.png")).unwrap();
    std::fs::write(outside.join("elsewhere.jpg"), std::fs::read(fixture("image/ok_800x600.jpg")).unwrap()).unwrap();
    std::os::unix::fs::symlink(outside.join("elsewhere.jpg"), p.join("link_out.jpg")).unwrap();
    d
}

#[test]
fn a_folder_is_copied_fixed_and_listed_into_the_same_tree_and_a_rerun_does_no_work() {
    let outside = tempfile::tempdir().unwrap();
    let input = mixed_folder(outside.path());
    let before = tree(input.path());
    let out_parent = tempfile::tempdir().unwrap();
    let out = out_parent.path().join("out");
    let report = out_parent.path().join("report.json");
    let (i, o, r) = (input.path().to_str().unwrap(), out.to_str().unwrap(), report.to_str().unwrap());

    let first = run(&["batch", i, "-o", o, "--report", r, "--jobs", "2"], &[]);
    assert_eq!(code(&first), 1, "some inputs cannot be fixed: {}", text(&first));
    assert_eq!(tree(input.path()), before, "the input folder was written to");

    let files: Vec<PathBuf> = tree(&out).into_keys().filter(|p| !p.to_string_lossy().starts_with('.')).collect();
    let expected: Vec<PathBuf> = [
        "chars/nested/anim.png",
        "chars/ok.jpg",
        "chars/too_wide.png",
        "clips/long.mp4",
        "clips/ok.mp4",
        "clips/wrong_container.mp4",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    assert_eq!(files, expected);
    assert_eq!(
        std::fs::read(out.join("chars/ok.jpg")).unwrap(),
        std::fs::read(fixture("image/ok_800x600.jpg")).unwrap()
    );
    // Every output passes check.
    let check = run(&["check", "--json", out.join("chars").to_str().unwrap()], &[]);
    assert_eq!(code(&check), 2, "a folder is not an input");
    for f in &expected {
        let c = run(&["check", out.join(f).to_str().unwrap()], &[]);
        assert_eq!(code(&c), 0, "{}: {}", f.display(), text(&c));
    }

    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let s = &doc["summary"];
    assert_eq!(
        (
            s["inputs"].as_u64(),
            s["compliant"].as_u64(),
            s["fixed"].as_u64(),
            s["unfixable"].as_u64(),
            s["not_media"].as_u64()
        ),
        (Some(9), Some(2), Some(4), Some(2), Some(1)),
        "{s}"
    );
    let items = doc["inputs"].as_array().unwrap();
    let by_input =
        |p: &str| items.iter().find(|it| it["input"] == p).unwrap_or_else(|| panic!("{p} not in the report"));
    assert_eq!(by_input("clips/short.mp4")["status"], "unfixable");
    assert!(by_input("clips/short.mp4")["reason"].as_str().unwrap().contains("shorter than 2 s"));
    assert_eq!(by_input("chars/broken.jpg")["status"], "unfixable");
    assert_eq!(by_input("README.txt")["status"], "not_media");
    assert_eq!(by_input("clips/wrong_container.mkv")["output"], "clips/wrong_container.mp4");
    assert!(by_input("clips/long.mp4")["changes"].to_string().contains("trimmed"));
    assert!(items.iter().all(|it| it["input"] != ".hidden.png"), "hidden files are skipped");
    assert!(items.iter().all(|it| it["input"] != "link_out.jpg"), "links out of the folder are not followed");

    // A second run finds everything done and verified.
    let out_before = tree(&out);
    let second = run(&["batch", i, "-o", o, "--report", r], &[]);
    assert_eq!(code(&second), 1);
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(doc["summary"]["skipped"].as_u64(), Some(9), "{}", doc["summary"]);
    assert_eq!(tree(&out), out_before, "the second run wrote nothing");

    // A damaged output is not trusted: it is made again.
    std::fs::write(out.join("chars/too_wide.png"), b"tampered").unwrap();
    let third = run(&["batch", i, "-o", o, "--report", r], &[]);
    assert_eq!(code(&third), 1);
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(doc["summary"]["skipped"].as_u64(), Some(8));
    assert_eq!(tree(&out)[Path::new("chars/too_wide.png")], out_before[Path::new("chars/too_wide.png")]);
}

#[test]
fn dry_run_writes_nothing_and_an_output_inside_the_input_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    let input = mixed_folder(outside.path());
    let out = tempfile::tempdir().unwrap();
    let o = out.path().join("never");
    let dry =
        run(&["batch", input.path().to_str().unwrap(), "-o", o.to_str().unwrap(), "--dry-run", "--json", "-"], &[]);
    assert_eq!(code(&dry), 1, "{}", text(&dry));
    assert!(!o.exists(), "dry run created the output folder");
    let doc: serde_json::Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(doc["summary"]["planned"].as_u64(), Some(6));

    let inside = input.path().join("out");
    let refused = run(&["batch", input.path().to_str().unwrap(), "-o", inside.to_str().unwrap()], &[]);
    assert_eq!(code(&refused), 2);
    assert!(text(&refused).contains("inside the input folder"));
    assert!(!inside.exists());
}

#[test]
fn shards_split_a_folder_into_disjoint_parts_that_cover_it() {
    let outside = tempfile::tempdir().unwrap();
    let input = mixed_folder(outside.path());
    let out = tempfile::tempdir().unwrap();
    let mut seen = Vec::new();
    for k in 1..=3 {
        let o = run(
            &[
                "batch",
                input.path().to_str().unwrap(),
                "-o",
                out.path().to_str().unwrap(),
                "--dry-run",
                "--json",
                "-",
                "--shard",
                &format!("{k}/3"),
            ],
            &[],
        );
        let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        seen.extend(doc["inputs"].as_array().unwrap().iter().map(|i| i["input"].as_str().unwrap().to_string()));
    }
    seen.sort();
    let mut dedup = seen.clone();
    dedup.dedup();
    assert_eq!(seen, dedup, "an input landed in two shards");
    assert_eq!(seen.len(), 9);
    let bad =
        run(&["batch", input.path().to_str().unwrap(), "-o", out.path().to_str().unwrap(), "--shard", "0/3"], &[]);
    assert_eq!(code(&bad), 2);
}

fn manifest(dir: &Path) -> PathBuf {
    let m = dir.join("pairs.csv");
    std::fs::write(
        &m,
        format!(
            "image,video,mode,watermark,output\n{},{},wan-std,false,a.mp4\n{},{},wan-pro,true,b.mp4\n{},{},,,c.mp4\n",
            fixture("image/ok_800x600.jpg").display(),
            fixture("video/ok_640x360_3s.mp4").display(),
            fixture("image/dims_4097x1500.png").display(),
            fixture("video/ok_640x360_3s.mp4").display(),
            fixture("image/ok_800x600.jpg").display(),
            fixture("video/dur_1.9s_10fps.mp4").display(),
        ),
    )
    .unwrap();
    m
}

#[test]
fn a_manifest_is_checked_fixed_submitted_and_downloaded_and_a_killed_run_resumes_without_duplicates() {
    let stand = Stand::start();
    stand.knobs().polls_to_finish.store(1_000_000, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path());
    let out = dir.path().join("out");
    let state = dir.path().join("state");
    let env = [("DASHSCOPE_API_KEY", KEY), ("DASHSCOPE_BASE_URL", stand.api_base.as_str())];
    let args = [
        "batch",
        "--manifest",
        m.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--submit",
        "--max-in-flight",
        "1",
        "--poll-interval",
        "0.05",
        "--state-dir",
        state.to_str().unwrap(),
    ];
    // First run: killed while the first task is still running.
    let mut child = Command::new(env!("CARGO_BIN_EXE_wanprep"))
        .args(args)
        .envs(env)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while stand.count("GET", "/api/v1/tasks/") < 2 {
        assert!(start.elapsed() < Duration::from_secs(60), "no polling");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(stand.creates(), 1, "max-in-flight 1: one task at a time");

    // Second run: tasks finish; the first task is resumed, not created again.
    stand.knobs().polls_to_finish.store(2, Ordering::SeqCst);
    let o = run(&[&args[..], &["--json", "-"]].concat(), &env);
    let all = text(&o);
    assert!(!all.contains(KEY));
    assert_eq!(code(&o), 1, "one pair is unfixable: {all}");
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let s = &doc["summary"];
    assert_eq!((s["downloaded"].as_u64(), s["unfixable"].as_u64()), (Some(2), Some(1)), "{s}");
    assert_eq!(stand.creates(), 2, "two compliant pairs, two tasks, none twice");
    let tasks = stand.tasks();
    let pro = tasks.values().find(|t| t.mode == "wan-pro").expect("the wan-pro pair");
    assert!(pro.watermark);
    assert!(pro.image_url.starts_with("oss://"), "the fixed image was uploaded");
    assert!(out.join("a.mp4").is_file() && out.join("b.mp4").is_file() && !out.join("c.mp4").exists());
    let pairs = doc["pairs"].as_array().unwrap();
    assert!(pairs[1]["changes"].to_string().contains("scaled 4097x1500 -> 4096x1500"));
    assert!(pairs[2]["error"].as_str().unwrap().contains("shorter than 2 s"));

    // Third run: everything is already downloaded; nothing is fetched again.
    let results = stand.count("GET", "/results/");
    let again = run(&args, &env);
    assert_eq!(code(&again), 1);
    assert_eq!(stand.count("GET", "/results/"), results, "a result was downloaded twice");
    assert_eq!(stand.creates(), 2);
}

#[test]
fn ctrl_c_stops_a_batch_kills_its_encode_and_still_writes_the_report() {
    let input = tempfile::tempdir().unwrap();
    // Wide clips need a re-encode that runs for seconds each.
    for i in 0..3 {
        crate::util::make_clip(&input.path().join(format!("wide{i}.mp4")), "2400x600", 30, 20, &[]);
    }
    let out = tempfile::tempdir().unwrap();
    let o = out.path().join("out");
    let report = out.path().join("report.json");
    let child = Command::new(env!("CARGO_BIN_EXE_wanprep"))
        .args(["batch", input.path().to_str().unwrap(), "-o", o.to_str().unwrap(), "--jobs", "1"])
        .args(["--json", report.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let writing = || {
        std::fs::read_dir(&o)
            .ok()
            .is_some_and(|d| d.filter_map(Result::ok).any(|e| e.file_name().to_string_lossy().ends_with(".part")))
    };
    while !writing() {
        assert!(start.elapsed() < Duration::from_secs(60), "the encode never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let done = child.wait_with_output().unwrap();
    assert_eq!(code(&done), 2, "{}", text(&done));
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(doc["summary"]["cancelled"].as_u64(), Some(3), "{}", doc["summary"]);
    let left: Vec<_> = std::fs::read_dir(&o).unwrap().filter_map(Result::ok).map(|e| e.file_name()).collect();
    assert!(left.iter().all(|n| n.to_string_lossy().starts_with(".wanprep-batch")), "left behind: {left:?}");
}

#[test]
fn inputs_that_would_share_an_output_name_keep_their_own() {
    let input = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("image/not_accepted_300x300.gif"), input.path().join("pic.gif")).unwrap();
    std::fs::copy(fixture("image/not_accepted_300x300.tif"), input.path().join("pic.tif")).unwrap();
    std::fs::copy(fixture("image/not_accepted_300x300.gif"), input.path().join("alone.gif")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = out.path().join("out");
    let (i, os) = (input.path().to_str().unwrap(), o.to_str().unwrap());
    assert_eq!(code(&run(&["batch", i, "-o", os], &[])), 0);
    let files: Vec<PathBuf> = tree(&o).into_keys().filter(|p| !p.to_string_lossy().starts_with('.')).collect();
    assert_eq!(files, ["alone.png", "pic.gif.png", "pic.tif.png"].map(PathBuf::from).to_vec());
    let again = run(&["batch", i, "-o", os, "--json", "-"], &[]);
    let doc: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(doc["summary"]["skipped"].as_u64(), Some(3), "{}", doc["summary"]);
}
