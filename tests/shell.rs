//! Shell conventions (issue 15 item 3): completions, the man page, `--version` naming the
//! helper and FFmpeg, `-q`, `check -`, `check DIR`, a closed pipe, colour and status words.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::submit::text;
use crate::util::{code, fixture, json, wanprep};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn completions_for_every_shell_and_a_man_page() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let o = wanprep(&["completions", shell]);
        assert_eq!(code(&o), 0, "{shell}: {}", text(&o));
        let script = stdout(&o);
        assert!(script.contains("wanprep") && script.contains("match-framing"), "{shell}: {script}");
    }
    // bash parses what it would source.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wanprep.bash");
    std::fs::write(&path, wanprep(&["completions", "bash"]).stdout).unwrap();
    let syntax = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(syntax.status.success(), "{}", String::from_utf8_lossy(&syntax.stderr));
    let man = stdout(&wanprep(&["man"]));
    assert!(man.contains(".TH wanprep 1") && man.contains("completions") && man.contains(".SH"), "{man}");
    assert_eq!(code(&wanprep(&["completions", "tcsh"])), 2, "an unknown shell is a usage error");
}

#[test]
fn version_names_the_helper_and_ffmpeg() {
    let o = wanprep(&["--version"]);
    assert_eq!(code(&o), 0);
    let v = stdout(&o);
    let lines: Vec<&str> = v.lines().collect();
    assert!(lines[0].starts_with("wanprep "), "{v}");
    let protocol = format!("protocol {}", wanprep::av::PROTOCOL);
    assert!(lines[1].starts_with("wanprep-av ") && lines[1].contains(&protocol), "{v}");
    assert!(lines[1].contains("FFmpeg 5.") && lines[1].contains("libavcodec"), "{v}");
}

#[test]
fn quiet_prints_nothing_but_json_and_errors_and_keeps_the_exit_status() {
    let bad = fixture("image/dims_199x300.png");
    let o = wanprep(&["-q", "check", bad.to_str().unwrap()]);
    assert_eq!((code(&o), stdout(&o).as_str()), (1, ""), "{}", text(&o));
    let o = wanprep(&["check", "--quiet", "--json", bad.to_str().unwrap()]);
    assert_eq!(json(&o)["compliant"], false, "--json output stays");
    let o = wanprep(&["-q", "check", "/nonexistent/x.png"]);
    assert_eq!(code(&o), 2);
}

fn check_stdin(args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wanprep"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let o = child.wait_with_output().unwrap();
    writer.join().unwrap();
    o
}

#[test]
fn check_reads_standard_input_and_a_folder_points_to_batch() {
    let jpeg = std::fs::read(fixture("image/ok_800x600.jpg")).unwrap();
    let o = check_stdin(&["check", "--json", "-"], &jpeg);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let doc = json(&o);
    assert_eq!(doc["inputs"][0]["input"], "-");
    assert_eq!(doc["inputs"][0]["media"]["width"], 800);
    let clip = std::fs::read(fixture("video/dims_198x300.mp4")).unwrap();
    let o = check_stdin(&["check", "--json", "--video", "-"], &clip);
    assert_eq!(code(&o), 1, "too narrow: {}", text(&o));
    assert!(json(&o)["inputs"][0].to_string().contains("video.dimensions"));
    assert_eq!(code(&check_stdin(&["check", "-", "-"], b"")), 2, "stdin once");

    let o = wanprep(&["check", fixture("image").to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    assert!(text(&o).contains("wanprep batch FOLDER -o OUTDIR --dry-run"), "{}", text(&o));
}

#[test]
fn a_closed_pipe_ends_quietly() {
    for args in [&["rules", "--json"][..], &["rules"], &["completions", "bash"], &["man"]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wanprep"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before the first write.
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        assert_eq!(code(&o), 0, "{args:?}");
        assert_eq!(String::from_utf8_lossy(&o.stderr), "", "{args:?}: no 'Broken pipe', no panic");
    }
}

#[test]
fn batch_words_are_human_and_coloured_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    std::fs::copy(fixture("image/dims_199x300.png"), input.join("narrow.png")).unwrap();
    std::fs::write(input.join("notes.txt"), "not media").unwrap();
    let out = dir.path().join("out");
    let run = |color: &str| {
        let o =
            wanprep(&["batch", input.to_str().unwrap(), "-o", out.to_str().unwrap(), "--dry-run", "--color", color]);
        stdout(&o)
    };
    let plain = run("never");
    assert!(plain.contains("plan") && plain.contains("NOT MEDIA"), "{plain}");
    assert!(!plain.contains('\x1b') && !plain.contains("NotMedia"), "{plain}");
    let coloured = run("always");
    assert!(coloured.contains("\x1b[31;1m   NOT MEDIA\x1b[0m"), "{coloured:?}");
}
