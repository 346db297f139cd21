//! Issue 11 — safety: never lose a file, never hang, never run away with memory or disk. Each
//! test reproduces an attack from the issue (named `itemN_…`) on 127.0.0.1 or in a temporary
//! folder, bounded in time.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use crate::dashscope_server::KEY;
use crate::http_server::TestServer;
use crate::submit::{assert_no_key, text, Env};
use crate::util::{code, fixture, json, wanprep};

/// Runs the CLI and returns its output with its peak resident memory in bytes. The CLI is
/// started by a small Python process that reports its child's `ru_maxrss`: a child spawned
/// straight from this (large, multi-threaded) test process would inherit this process's
/// high-water mark through `vfork`, and the figure would be ours, not the CLI's.
fn run_measured(args: &[&str], env: &[(&str, &str)]) -> (Output, u64) {
    let report = tempfile::NamedTempFile::new().unwrap();
    let script = "import resource, subprocess, sys\n\
                  r = subprocess.run(sys.argv[2:])\n\
                  open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n\
                  sys.exit(r.returncode)\n";
    let mut c = Command::new("python3");
    c.args(["-c", script]).arg(report.path()).arg(env!("CARGO_BIN_EXE_wanprep")).args(args);
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    let kib: u64 = std::fs::read_to_string(report.path()).unwrap().trim().parse().unwrap();
    (o, kib * 1024)
}

fn manifest_run(env: &Env, manifest: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "batch",
        "--manifest",
        manifest.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--submit",
        "--poll-interval",
        "0.05",
        "--state-dir",
    ];
    let state = env.state();
    args.push(state.to_str().unwrap());
    args.extend_from_slice(extra);
    env.run(&args)
}

#[test]
fn item1_manifest_outputs_are_checked_before_anything_is_uploaded_or_paid_for() {
    let env = Env::new();
    let d = env.dir.path();
    let img = fixture("image/ok_800x600.jpg");
    let vid = fixture("video/ok_640x360_3s.mp4");
    for sub in ["a", "b"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
        std::fs::copy(&img, d.join(sub).join("cat.jpg")).unwrap();
    }
    let out = d.join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("keep.mp4"), b"precious").unwrap();
    // An output naming an existing file: refused before any request.
    let m = d.join("existing.csv");
    std::fs::write(&m, format!("image,video,output\n{},{},keep.mp4\n", img.display(), vid.display())).unwrap();
    let o = manifest_run(&env, &m, &out, &[]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("keep.mp4") && text(&o).contains("--force"), "{}", text(&o));
    assert_eq!((env.stand.uploads(), env.stand.creates()), (0, 0), "nothing uploaded or paid for");
    assert_eq!(std::fs::read(out.join("keep.mp4")).unwrap(), b"precious");
    // Two rows naming one output: refused before any request.
    let m = d.join("twice.csv");
    std::fs::write(
        &m,
        format!("image,video,output\n{i},{v},x/one.mp4\n{i},{v},./x/ONE.mp4\n", i = img.display(), v = vid.display()),
    )
    .unwrap();
    let o = manifest_run(&env, &m, &out, &[]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("lines 2 and 3"), "{}", text(&o));
    assert_eq!(env.stand.creates(), 0);
    // Same default name (a/cat.jpg and b/cat.jpg, two different cats, with one video): two
    // files; and an output in a folder that does not exist yet is made before paying.
    std::fs::copy(fixture("image/lowres_400x300.jpg"), d.join("b").join("cat.jpg")).unwrap();
    let m = d.join("pairs.csv");
    std::fs::write(
        &m,
        format!(
            "image,video,watermark,output\na/cat.jpg,{v},false,\nb/cat.jpg,{v},false,\na/cat.jpg,{v},true,new/sub/r.mp4\n",
            v = vid.display()
        ),
    )
    .unwrap();
    let o = manifest_run(&env, &m, &out, &["--json", "-"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let outputs: Vec<&str> = doc["pairs"].as_array().unwrap().iter().map(|p| p["output"].as_str().unwrap()).collect();
    assert_eq!(outputs, ["cat_ok_640x360_3s.line2.mp4", "cat_ok_640x360_3s.line3.mp4", "new/sub/r.mp4"]);
    for o in outputs {
        assert!(out.join(o).is_file(), "{o}");
    }
    assert_eq!(std::fs::read(out.join("keep.mp4")).unwrap(), b"precious");
}

#[test]
fn item2_an_input_folder_inside_the_output_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir_all(photos.join("photos")).unwrap();
    std::fs::copy(fixture("image/ok_800x600.jpg"), photos.join("a.jpg")).unwrap();
    std::fs::copy(fixture("image/dims_4097x1500.png"), photos.join("photos/a.png")).unwrap();
    let before = std::fs::read(photos.join("a.jpg")).unwrap();
    // `batch photos -o .` run from photos' parent: photos/photos/a.* would land on photos/a.*.
    let o = Command::new(env!("CARGO_BIN_EXE_wanprep"))
        .args(["batch", "photos", "-o", "."])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(code(&o), 2, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("inside the output folder"));
    assert_eq!(std::fs::read(photos.join("a.jpg")).unwrap(), before);
    assert!(!photos.join("a.png").exists());
}

#[test]
fn item3_inputs_sharing_names_never_share_an_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::copy(fixture("image/not_accepted_300x300.gif"), input.join("a.gif")).unwrap();
    std::fs::copy(fixture("image/not_accepted_300x300.tif"), input.join("a.tif")).unwrap();
    std::fs::copy(fixture("image/ok_800x600.png"), input.join("a.gif.png")).unwrap();
    let out = dir.path().join("out");
    let report = dir.path().join("r.json");
    let run = || {
        let o = wanprep(&[
            "batch",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--json",
            report.to_str().unwrap(),
        ]);
        assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
        let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
        let mut names: Vec<String> =
            doc["inputs"].as_array().unwrap().iter().map(|i| i["output"].as_str().unwrap().to_string()).collect();
        names.sort();
        (names, doc["summary"]["skipped"].as_u64().unwrap())
    };
    let (first, _) = run();
    assert_eq!(first, ["a.gif.png", "a.gif~1.png", "a.tif.png"]);
    let (second, skipped) = run();
    assert_eq!((second, skipped), (first.clone(), 3), "stable, and nothing redone");
    // The kept PNG is the one named a.gif.png; the GIF's output does not overwrite it.
    assert_eq!(std::fs::read(out.join("a.gif.png")).unwrap(), std::fs::read(input.join("a.gif.png")).unwrap());
}

/// Output names for `names` (in one folder), each written with the extension in `exts`
/// (`None`: its own name), as the batch names them.
fn outputs(names: &[String], exts: &[Option<&'static str>]) -> Vec<PathBuf> {
    let rels: Vec<PathBuf> = names.iter().map(PathBuf::from).collect();
    let stems = wanprep::internals::conversion_stems(&rels);
    rels.iter()
        .zip(exts)
        .map(|(rel, ext)| {
            let ops = match ext {
                None => vec![wanprep::fix::Op::Copy],
                Some(e) => {
                    vec![wanprep::fix::Op::Encode { format: wanprep::Format::from_extension(e).unwrap(), max_bytes: 1 }]
                }
            };
            let plan = wanprep::fix::FixPlan { kind: wanprep::Kind::Image, ops, unfixable: None };
            wanprep::internals::output_rel(rel, &plan, &stems[rel])
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Item 3: whatever the names (shared stems, every extension, case variants, names that
    /// look like earlier outputs) and whichever files are converted, no two outputs of a folder
    /// are the same (even on a case-insensitive disk), and the names do not depend on order.
    #[test]
    fn item3_output_names_are_injective_and_stable(
        picks in proptest::collection::vec((0usize..6, 0usize..14, 0usize..8), 1..12),
        order_seed in any::<u64>(),
    ) {
        const STEMS: [&str; 6] = ["a", "A", "a.gif", "a.gif~1", "b", "a.GIF"];
        const EXTS: [&str; 14] = ["gif", "GIF", "tif", "png", "PNG", "jpg", "jpeg", "mp4", "mkv", "mov", "webp", "bmp", "", "gif.png"];
        const CONVERT: [Option<&str>; 8] = [None, None, Some("png"), Some("jpg"), Some("mp4"), Some("mov"), Some("webp"), Some("png")];
        let mut names: Vec<String> = Vec::new();
        let mut exts = Vec::new();
        for (s, e, c) in picks {
            let name = if EXTS[e].is_empty() { STEMS[s].to_string() } else { format!("{}.{}", STEMS[s], EXTS[e]) };
            if names.iter().any(|n| n == &name) {
                continue;
            }
            names.push(name);
            exts.push(CONVERT[c]);
        }
        let out = outputs(&names, &exts);
        for i in 0..out.len() {
            for j in i + 1..out.len() {
                prop_assert!(out[i] != out[j], "two outputs named {:?}: {:?} -> {:?}", out[i], names, out);
                // Case-insensitively too (a Mac or Windows disk), unless both are inputs that keep
                // their own names, which were already distinct only by case.
                let kept = |k: usize| out[k] == Path::new(&names[k]);
                let same = out[i].to_string_lossy().to_lowercase() == out[j].to_string_lossy().to_lowercase();
                prop_assert!(!same || (kept(i) && kept(j)), "{:?} and {:?} differ only by case: {:?}", out[i], out[j], names);
            }
        }
        // Another listing order (as shards and reruns may see) gives the same names.
        let mut idx: Vec<usize> = (0..names.len()).collect();
        let mut x = order_seed | 1;
        for i in (1..idx.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            idx.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let shuffled: Vec<String> = idx.iter().map(|&i| names[i].clone()).collect();
        let shuffled_exts: Vec<_> = idx.iter().map(|&i| exts[i]).collect();
        let again = outputs(&shuffled, &shuffled_exts);
        for (k, &i) in idx.iter().enumerate() {
            prop_assert_eq!(&again[k], &out[i]);
        }
    }
}

#[test]
fn item4_a_file_name_that_is_not_utf8_is_reported_exactly_and_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9.jpg");
    std::fs::copy(fixture("image/ok_800x600.jpg"), input.join(name)).unwrap();
    std::fs::copy(fixture("image/dims_4097x1500.png"), input.join(std::ffi::OsStr::from_bytes(b"b\xffig.png")))
        .unwrap();
    let out = dir.path().join("out");
    let run = || wanprep(&["batch", input.to_str().unwrap(), "-o", out.to_str().unwrap(), "--json", "-"]);
    let o = run();
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let doc = json(&o);
    let items = doc["inputs"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let cafe = items.iter().find(|i| i["path_bytes"] == "636166e92e6a7067").expect("exact bytes of caf\\xe9.jpg");
    assert_eq!(cafe["input"], "caf\u{FFFD}.jpg");
    assert!(out.join(name).is_file());
    // Both finished entries reached the state file: a second run redoes nothing.
    let doc = json(&run());
    assert_eq!(doc["summary"]["skipped"], 2, "{doc}");
}

#[test]
fn item5_concurrent_runs_wait_for_the_journal_instead_of_failing() {
    for round in 0..4 {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let children: Vec<_> = (0..6)
            .map(|_| {
                Command::new(env!("CARGO_BIN_EXE_wanprep"))
                    .args(["tasks", "--state-dir", state.to_str().unwrap()])
                    .env("DASHSCOPE_API_KEY", KEY)
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let o = c.wait_with_output().unwrap();
            assert_eq!(code(&o), 0, "round {round}: {}", String::from_utf8_lossy(&o.stderr));
        }
    }
}

#[test]
fn item5_a_fallback_journal_folder_open_to_others_is_refused() {
    let env = Env::new();
    let tmp = env.dir.path().join("tmp");
    let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap());
    let planted = tmp.join(format!("wanprep-state-{uid}"));
    std::fs::create_dir_all(&planted).unwrap();
    std::fs::set_permissions(&planted, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let (image, video) = (fixture("image/ok_800x600.jpg"), fixture("video/ok_640x360_3s.mp4"));
    let o = env
        .command(&["submit", "--image", image.to_str().unwrap(), "--video", video.to_str().unwrap()])
        .env("HOME", "/proc/wanprep-no-home")
        .env_remove("XDG_DATA_HOME")
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    assert_no_key(&o);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("open to other users"), "{}", text(&o));
    assert!(std::fs::read_dir(&planted).unwrap().next().is_none(), "nothing was written there");
    assert_eq!(env.stand.creates(), 0);
}

#[test]
fn item6_a_temporary_file_left_by_a_killed_fix_is_removed_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.png");
    // What a SIGKILL leaves: a temporary file for this output that nobody holds.
    let stale = dir.path().join(".out.png.wanprep-Zq81xA.part");
    std::fs::write(&stale, b"half a picture").unwrap();
    let unrelated = dir.path().join(".other.png.wanprep-Zq81xA.part");
    std::fs::write(&unrelated, b"another output's").unwrap();
    let o = wanprep(&["fix", "fixtures/image/dims_4097x1500.png", "-o", out.to_str().unwrap()]);
    assert_eq!(code(&o), 0);
    assert!(!stale.exists(), "the stale file is gone");
    assert!(unrelated.exists(), "another output's file is left alone");
    assert!(out.is_file());
}

#[test]
fn item7_a_planted_symlink_is_never_written_through() {
    // The partial download of a result.
    let env = Env::new();
    let victim = env.dir.path().join("victim.txt");
    std::fs::write(&victim, b"do not touch").unwrap();
    let o = env.submit(&["--json"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let id = json(&o)["task_id"].as_str().unwrap().to_string();
    let part = wanprep::internals::part_path(&env.out(), &id);
    std::os::unix::fs::symlink(&victim, &part).unwrap();
    let o = env.wait(&id, &[]);
    assert_ne!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("not a partial download of ours"), "{}", text(&o));
    assert_eq!(std::fs::read(&victim).unwrap(), b"do not touch");
    assert!(!env.out().exists());
    // The batch state file.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::copy(fixture("image/ok_800x600.jpg"), input.join("a.jpg")).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::os::unix::fs::symlink(&victim, out.join(".wanprep-batch.jsonl")).unwrap();
    let _ = wanprep(&["batch", input.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(std::fs::read(&victim).unwrap(), b"do not touch");
}

#[test]
fn item7_parallel_deep_checks_of_equal_sized_urls_never_share_a_temporary_file() {
    // Two videos of one size: one intact, one whose decoder configuration is destroyed.
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(fixture("video/ok_640x360_3s.mp4")).unwrap();
    let mut bad = good.clone();
    let at = bad.windows(4).position(|w| w == b"avcC").unwrap() + 4;
    bad[at + 8..at + 30].iter_mut().for_each(|b| *b = 0xFF);
    std::fs::write(dir.path().join("good.mp4"), &good).unwrap();
    std::fs::write(dir.path().join("bad.mp4"), &bad).unwrap();
    let server = TestServer::start_in(dir.path().to_path_buf());
    for _ in 0..3 {
        let o = wanprep(&[
            "check",
            "--deep",
            "--json",
            "--jobs",
            "2",
            &server.url("range/good.mp4"),
            &server.url("range/bad.mp4"),
        ]);
        let doc = json(&o);
        assert_eq!(doc["inputs"][0]["compliant"], true, "{doc}");
        assert_eq!(doc["inputs"][1]["compliant"], false, "{doc}");
    }
}

#[test]
fn item8_a_fifo_is_refused_at_once_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.mp4");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let start = Instant::now();
    let o = wanprep(&["check", fifo.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stdout).contains("FIFO"), "{}", String::from_utf8_lossy(&o.stdout));
    // In a folder: listed, not read, and the run goes on.
    std::fs::copy(fixture("image/ok_800x600.jpg"), dir.path().join("a.jpg")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let o =
        wanprep(&["batch", dir.path().to_str().unwrap(), "-o", out.path().join("o").to_str().unwrap(), "--json", "-"]);
    let doc = json(&o);
    let pipe = doc["inputs"].as_array().unwrap().iter().find(|i| i["input"] == "pipe.mp4").unwrap();
    assert_eq!(pipe["status"], "not_media", "{pipe}");
    assert!(out.path().join("o/a.jpg").is_file());
    // In a manifest.
    let m = dir.path().join("m.csv");
    std::fs::write(&m, format!("image,video\n{},{}\n", fixture("image/ok_800x600.jpg").display(), fifo.display()))
        .unwrap();
    let o = wanprep(&["batch", "--manifest", m.to_str().unwrap(), "-o", out.path().join("m").to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    assert!(start.elapsed() < Duration::from_secs(60), "nothing waited on the FIFO");
}

#[test]
fn item8_an_unreadable_subfolder_is_listed_as_failed_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let locked = dir.path().join("locked");
    std::fs::create_dir_all(&locked).unwrap();
    std::fs::copy(fixture("image/ok_800x600.jpg"), locked.join("x.jpg")).unwrap();
    std::fs::copy(fixture("image/ok_800x600.jpg"), dir.path().join("a.jpg")).unwrap();
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    if std::fs::read_dir(&locked).is_ok() {
        // Running as root: permissions do not stop the listing, so there is nothing to test.
        eprintln!("skipped: this user can list a mode-000 folder");
        std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let o =
        wanprep(&["batch", dir.path().to_str().unwrap(), "-o", out.path().join("o").to_str().unwrap(), "--json", "-"]);
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let doc = json(&o);
    let entry = doc["inputs"].as_array().unwrap().iter().find(|i| i["input"] == "locked").unwrap();
    assert_eq!(entry["status"], "failed");
    assert!(out.path().join("o/a.jpg").is_file());
}

#[test]
fn item9_a_file_name_is_never_an_ffmpeg_protocol() {
    let dir = tempfile::tempdir().unwrap();
    // `concat:other.mkv` is a file (640x360); `other.mkv` is another file (320x240) that the
    // concat protocol would read instead.
    std::fs::copy(fixture("video/h264_640x360.mkv"), dir.path().join("concat:other.mkv")).unwrap();
    let other = dir.path().join("other.mkv");
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=3"])
        .args(["-c:v", "libx264", "-preset", "ultrafast"])
        .arg(&other)
        .status()
        .unwrap();
    assert!(status.success());
    let o = Command::new(env!("CARGO_BIN_EXE_wanprep"))
        .args(["fix", "concat:other.mkv", "-o", "out.mp4"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let f = wanprep::probe(dir.path().join("out.mp4")).unwrap();
    assert_eq!((f.width, f.height), (Some(640), Some(360)), "the file named, not the one the protocol names");
}

#[test]
fn item10_a_url_that_sends_a_byte_a_second_meets_its_deadline() {
    let server = TestServer::start();
    let start = Instant::now();
    let o = wanprep(&["check", "--json", "--url-timeout", "3", &server.url("drip/1000/image/ok_800x600.jpg")]);
    let took = start.elapsed();
    assert_eq!(code(&o), 2, "{}", String::from_utf8_lossy(&o.stdout));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("longer than the 3 s allowed"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(took < Duration::from_secs(15), "{took:?}");
}

#[test]
fn item10_an_endless_or_oversized_result_is_stopped_at_the_cap() {
    let env = Env::new();
    env.stand.knobs().endless_result.store(true, Ordering::SeqCst);
    let args = env.submit_args(&["--wait", "--max-download", "5000000"]);
    let (o, rss) = run_measured(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &[
            ("DASHSCOPE_API_KEY", KEY),
            ("DASHSCOPE_BASE_URL", &env.stand.api_base),
            ("HOME", env.dir.path().to_str().unwrap()),
        ],
    );
    assert_no_key(&o);
    assert_ne!(code(&o), 0);
    assert!(text(&o).contains("--max-download"), "{}", text(&o));
    assert!(!env.out().exists());
    let leftovers: Vec<_> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "nothing kept: {leftovers:?}");
    assert!(rss < 300 << 20, "peak {} MB", rss >> 20);
    // A declared length over the cap is refused before a byte is written.
    let env = Env::new();
    env.stand.knobs().result_declares.store(10_000_000_000, Ordering::SeqCst);
    let o = env.submit(&["--wait"]);
    assert_ne!(code(&o), 0);
    assert!(text(&o).contains("10000000000"), "{}", text(&o));
}

#[test]
fn item10_an_endless_upload_error_body_is_read_only_to_its_cap() {
    let env = Env::new();
    env.stand.knobs().endless_upload_error.store(true, Ordering::SeqCst);
    let (o, rss) = run_measured(
        &env.submit_args(&[]).iter().map(String::as_str).collect::<Vec<_>>(),
        &[
            ("DASHSCOPE_API_KEY", KEY),
            ("DASHSCOPE_BASE_URL", &env.stand.api_base),
            ("HOME", env.dir.path().to_str().unwrap()),
        ],
    );
    assert_no_key(&o);
    assert_ne!(code(&o), 0);
    assert!(rss < 200 << 20, "peak {} MB", rss >> 20);
    assert_eq!(env.stand.creates(), 0);
}

/// A JPEG whose frame header claims `w`x`h` (the data is a small picture's).
fn patched_jpeg(src: &str, w: u16, h: u16) -> Vec<u8> {
    let mut d = std::fs::read(fixture(src)).unwrap();
    let sof = d.windows(2).position(|x| x[0] == 0xFF && matches!(x[1], 0xC0 | 0xC2)).unwrap();
    d[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    d[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    d
}

/// A grey PNG of `w`x`h` that compresses to almost nothing (zlib of zero rows, by Python).
fn zero_png(path: &Path, w: u32, h: u32) {
    let script = format!(
        "import zlib,struct\n\
         def chunk(t,d): return struct.pack('>I',len(d))+t+d+struct.pack('>I',zlib.crc32(t+d)&0xffffffff)\n\
         c=zlib.compressobj(9); row=bytes({w}+1); parts=[]\n\
         for _ in range({h}): parts.append(c.compress(row))\n\
         parts.append(c.flush())\n\
         ihdr=struct.pack('>IIBBBBB',{w},{h},8,0,0,0,0)\n\
         open('{p}','wb').write(b'\\x89PNG\\r\\n\\x1a\\n'+chunk(b'IHDR',ihdr)+chunk(b'IDAT',b''.join(parts))+chunk(b'IEND',b''))\n",
        p = path.display()
    );
    let status = Command::new("python3").args(["-c", &script]).status().unwrap();
    assert!(status.success());
}

#[test]
fn item11_decompression_bombs_are_refused_from_the_header_within_memory() {
    let dir = tempfile::tempdir().unwrap();
    let jpeg = dir.path().join("bomb.jpg");
    std::fs::write(&jpeg, patched_jpeg("image/ok_progressive_800x600.jpg", 29_999, 29_999)).unwrap();
    let png = dir.path().join("bomb.png");
    zero_png(&png, 22_000, 22_000);
    assert!(std::fs::metadata(&png).unwrap().len() < 2_000_000);
    for (input, out) in [(&jpeg, "a.jpg"), (&png, "b.png")] {
        let start = Instant::now();
        let (o, rss) =
            run_measured(&["fix", input.to_str().unwrap(), "-o", dir.path().join(out).to_str().unwrap()], &[]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(code(&o), 1, "{err}");
        assert!(err.contains("--max-decode-memory"), "{err}");
        assert!(rss < 150 << 20, "{}: peak {} MB", input.display(), rss >> 20);
        assert!(start.elapsed() < Duration::from_secs(10));
    }
    // --deep keeps its 512 MiB decode cap: a 13000x13000 JPEG header is not decoded.
    let deep = dir.path().join("deep.jpg");
    std::fs::write(&deep, patched_jpeg("image/ok_800x600.jpg", 13_000, 13_000)).unwrap();
    let (o, rss) = run_measured(&["check", "--deep", "--json", deep.to_str().unwrap()], &[]);
    assert_eq!(code(&o), 1);
    assert!(rss < 600 << 20, "peak {} MB", rss >> 20);
}

#[test]
fn item11_batch_keeps_the_fixes_in_flight_under_max_memory() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    // Two 6000x6000 pictures to fix (over 4096 px): about 0.4 GB each by the estimate.
    let img = image::RgbImage::from_fn(6000, 6000, |x, y| image::Rgb([(x / 24) as u8, (y / 24) as u8, 90]));
    img.save(input.join("a.png")).unwrap();
    std::fs::copy(input.join("a.png"), input.join("b.png")).unwrap();
    let facts = wanprep::probe(input.join("a.png")).unwrap();
    let one = wanprep::fix::fix_memory_estimate(&facts).unwrap();
    let run = |max: u64, out: &str| {
        run_measured(
            &[
                "batch",
                input.to_str().unwrap(),
                "-o",
                dir.path().join(out).to_str().unwrap(),
                "--jobs",
                "2",
                "--max-memory",
                &max.to_string(),
            ],
            &[],
        )
    };
    let (o, serial) = run(one + one / 2, "serial");
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
    let (o, parallel) = run(one * 4, "parallel");
    assert_eq!(code(&o), 0);
    // Under the budget the two fixes never overlap: the peak is one fix's, well under two.
    assert!(serial < one + (64 << 20), "serial peak {} MB, one fix {} MB", serial >> 20, one >> 20);
    assert!(parallel > serial, "without the limit they overlap: {} vs {} MB", parallel >> 20, serial >> 20);
}

#[test]
fn item12_entry_counts_a_box_cannot_hold_are_damage() {
    let mut d = std::fs::read(fixture("video/ok_640x360_3s.mp4")).unwrap();
    let stts = d.windows(4).position(|w| w == b"stts").unwrap();
    d[stts + 8..stts + 12].copy_from_slice(&u32::MAX.to_be_bytes());
    let f = wanprep::probe_bytes(&d);
    assert!(f.integrity_problem.as_deref().is_some_and(|p| p.contains("stts")), "{:?}", f.integrity_problem);
    let mut d = std::fs::read(fixture("video/ok_640x360_3s.mp4")).unwrap();
    let stsd = d.windows(4).position(|w| w == b"stsd").unwrap();
    d[stsd + 8..stsd + 12].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(!wanprep::probe_bytes(&d).is_intact());
}

#[test]
fn item13_nonsensical_limits_are_refused_and_never_loosen_a_submit() {
    for limit in
        ["max_aspect=0", "image.min_side=1e6", "image.min_side=5000", "video.max_duration_s=-1", "image.max_side=0.5"]
    {
        let o = wanprep(&["fix", "--limit", limit, "fixtures/image/dims_199x300.png", "-o", "/tmp/never.png"]);
        assert_eq!(code(&o), 2, "{limit}: {}", String::from_utf8_lossy(&o.stderr));
    }
    // A 30.5 s clip passes a local check at 60 s, but is never sent: the API takes 30 s.
    let env = Env::new();
    let o = env.run(&[
        "submit",
        "--image",
        fixture("image/ok_800x600.jpg").to_str().unwrap(),
        "--video",
        fixture("video/dur_30.5s_10fps.mp4").to_str().unwrap(),
        "--limit",
        "video.max_duration_s=60",
        "--state-dir",
        env.state().to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    assert_eq!((env.stand.uploads(), env.stand.creates()), (0, 0));
}

#[test]
fn item14_an_answer_about_another_task_is_refused_and_names_are_escaped() {
    let env = Env::new();
    let o = env.submit(&["--json"]);
    let id = json(&o)["task_id"].as_str().unwrap().to_string();
    env.stand.knobs().wrong_task.store(true, Ordering::SeqCst);
    let o = env.wait(&id, &[]);
    assert_ne!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("someone-elses-task"), "{}", text(&o));
    assert!(!env.out().exists(), "nothing downloaded from the other task's answer");
    // A task id with a terminal escape and a right-to-left override is shown, not obeyed.
    env.stand.knobs().wrong_task.store(false, Ordering::SeqCst);
    let o = env.run(&["status", "abc\u{1b}[31m\u{202e}xyz", "--state-dir", env.state().to_str().unwrap()]);
    let all = text(&o);
    assert!(!all.contains('\u{1b}') && !all.contains('\u{202e}'), "{all:?}");
    assert!(all.contains("\\u{202e}"), "{all}");
}
