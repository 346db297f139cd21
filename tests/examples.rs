//! The library examples in `examples/` run and do what they say (the submit one against the
//! protocol stand-in).

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::submit::Env;
use crate::util::{code, fixture};

/// The example's binary (built with `cargo test`; built here when a run selected only this
/// test target).
fn example(name: &str) -> PathBuf {
    let test_exe = std::env::current_exe().unwrap();
    let dir = test_exe.parent().unwrap().parent().unwrap().join("examples");
    let path = dir.join(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo).args(["build", "--examples"]).status().unwrap();
        assert!(st.success(), "building the examples failed");
    }
    path
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn check_folder_prints_the_check_report() {
    let o = Command::new(example("check_folder")).arg(fixture("image")).output().unwrap();
    assert_eq!(code(&o), 0, "{}", text(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let inputs = doc["inputs"].as_array().unwrap();
    assert!(inputs.len() > 20, "{}", inputs.len());
    let oversized = inputs.iter().find(|i| i["input"].as_str().unwrap().ends_with("dims_4097x1500.png")).unwrap();
    assert_eq!(oversized["compliant"], false);
    assert!(String::from_utf8_lossy(&o.stderr).contains("files would be accepted"));
}

#[test]
fn fix_with_limit_applies_the_stricter_limit() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("small.png");
    let o = Command::new(example("fix_with_limit"))
        .args([fixture("image/dims_4096x1500.png"), out.clone()])
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", text(&o));
    let facts = wanprep::probe(&out).unwrap();
    assert_eq!((facts.display_width, facts.display_height), (Some(1024), Some(375)), "{}", text(&o));
}

#[test]
fn submit_and_wait_runs_the_whole_flow_and_resumes_on_a_second_run() {
    let env = Env::new();
    let out = env.dir.path().join("out.mp4");
    let run = || {
        // The stand-in's settings (key, base URL, HOME), for another program.
        let settings = env.command(&[]);
        let mut c2 = Command::new(example("submit_and_wait"));
        for (k, v) in settings.get_envs() {
            match v {
                Some(v) => c2.env(k, v),
                None => c2.env_remove(k),
            };
        }
        c2.current_dir(env.dir.path())
            .env("POLL_INTERVAL_S", "0.05")
            .args([fixture("image/ok_800x600.jpg"), fixture("video/ok_640x360_3s.mp4"), out.clone()])
            .output()
            .unwrap()
    };
    let first = run();
    assert_eq!(code(&first), 0, "{}", text(&first));
    assert!(text(&first).contains("created task"), "{}", text(&first));
    assert!(wanprep::probe(&out).unwrap().duration_s.is_some());
    let second = run();
    assert_eq!(code(&second), 0, "{}", text(&second));
    assert!(text(&second).contains("already saved"), "{}", text(&second));
    assert_eq!(env.stand.creates(), 1, "one task for two runs");
}
