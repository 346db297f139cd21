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

#[test]
fn the_axum_example_checks_uploads_through_the_async_api() {
    use std::io::BufRead;
    let mut server = Command::new(example("axum_check"))
        .arg("127.0.0.1:0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("listening on ").expect("the address").to_string();
    let http = reqwest::blocking::Client::new();
    let post = |path: &str, file: &str| {
        let body = std::fs::read(fixture(file)).unwrap();
        http.post(format!("{base}{path}")).body(body).send().unwrap()
    };
    let ok = post("/check?role=video", "video/ok_640x360_3s.mp4");
    assert_eq!(ok.status().as_u16(), 200);
    let doc: serde_json::Value = serde_json::from_str(&ok.text().unwrap()).unwrap();
    assert_eq!((doc["input"].as_str(), doc["media"]["width"].as_u64()), (Some("upload"), Some(640)), "{doc}");
    let narrow = post("/check?role=image", "image/dims_199x300.png");
    assert_eq!(narrow.status().as_u16(), 422);
    assert!(narrow.text().unwrap().contains("image.dimensions"));
    // A JPEG sent as the video is judged in that role.
    let wrong = post("/check?role=video", "image/ok_800x600.jpg");
    assert!(wrong.text().unwrap().contains("video.format"));
    assert_eq!(post("/check?role=audio", "image/ok_800x600.jpg").status().as_u16(), 400);
    server.kill().unwrap();
    let _ = server.wait();
}

#[test]
fn the_async_api_gives_the_blocking_answers_and_resumes_a_job() {
    use wanprep::client::{Config, Job, Mode, RunOptions, RunResult};
    use wanprep::{asynch, CheckOptions, InputSpec, Role};
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let image = fixture("image/ok_800x600.jpg");
    let video = fixture("video/ok_640x360_3s.mp4");
    let inputs = vec![
        InputSpec::new(image.display().to_string(), Some(Role::Image)),
        InputSpec::new(video.display().to_string(), Some(Role::Video)),
    ];
    let blocking = wanprep::check_inputs(&inputs, &CheckOptions::default());
    let asynchronous = rt.block_on(asynch::check_inputs(inputs, CheckOptions::default()));
    assert_eq!(serde_json::to_value(&blocking).unwrap(), serde_json::to_value(&asynchronous).unwrap());

    // Submit twice through the async client against the stand-in: one task, resumed.
    let env = Env::new();
    let key = wanprep::client::ApiKey::new(crate::dashscope_server::KEY).unwrap();
    let config = Config::new(key, &env.stand.api_base, env.dir.path().join("state")).unwrap();
    let task_ids = rt.block_on(async {
        let client = asynch::Client::new(config).await.unwrap();
        let job = Job::new(image.display().to_string(), video.display().to_string(), Mode::Std);
        let mut ids = Vec::new();
        for _ in 0..2 {
            match client.run(job.clone(), RunOptions::default()).await.unwrap() {
                RunResult::Submitted(s) => ids.push(s.task_id),
                other => panic!("{other:?}"),
            }
        }
        let status = client.status(ids[0].clone()).await.unwrap();
        assert_eq!(status.output.task_id.as_deref(), Some(ids[0].as_str()));
        ids
    });
    assert_eq!(task_ids[0], task_ids[1], "the second run resumes the first task");
    assert_eq!(env.stand.creates(), 1);
}
