//! The money path (issue 12) against the protocol stand-in: an unanswered create resolved from
//! the service's task list (adopted, created, or picked by the user), cancel, spend, the rate
//! limiter measured at the server, regions, hints, and kills at the new steps.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::dashscope_server::{Stand, KEY};
use crate::submit::{assert_no_key, text, Env};
use crate::util::{code, fixture, json};

fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn lists(env: &Env) -> usize {
    env.stand.count("GET", "/api/v1/tasks?")
}

fn journal(env: &Env) -> serde_json::Value {
    json(&env.run(&["tasks", "--json", "--state-dir", env.state().to_str().unwrap()]))
}

/// A 500 after the task was made: uncertain; the hint never invites a second create.
fn lose_the_create_answer(env: &Env) {
    env.stand.knobs().create_500_after_record.store(true, Ordering::SeqCst);
    let o = env.submit(&["--json"]);
    env.stand.knobs().create_500_after_record.store(false, Ordering::SeqCst);
    assert_eq!(code(&o), 2, "{}", text(&o));
    let doc = json(&o);
    let hint = doc["hint"].as_str().unwrap_or_default();
    assert!(hint.contains("may exist") && hint.contains("same command again"), "{doc}");
    assert!(!text(&o).contains("--new"), "nothing may suggest --new while a task may exist: {}", text(&o));
    assert_eq!(env.stand.creates(), 1);
}

#[test]
fn a_lost_create_answer_is_adopted_on_the_rerun_whichever_zone_the_list_reads() {
    for utc in [false, true] {
        let env = Env::new();
        env.stand.knobs().list_in_utc.store(utc, Ordering::SeqCst);
        lose_the_create_answer(&env);
        // A task of another client, created long before the attempt, is not a candidate.
        env.stand.add_foreign_task(3 * 3600);
        let o = env.submit(&["--wait", "--json"]);
        assert_eq!(code(&o), 0, "utc={utc}: {}", text(&o));
        assert_eq!(env.stand.creates(), 1, "adopted, not created again");
        assert!(lists(&env) >= 1, "the task list was consulted");
        let doc = json(&o);
        assert_eq!((doc["resumed"].as_bool(), doc["downloaded"].as_bool()), (Some(true), Some(true)), "{doc}");
        let mine: Vec<String> = env.stand.tasks().into_iter().filter(|(_, t)| !t.foreign).map(|(id, _)| id).collect();
        assert_eq!(doc["task_id"].as_str(), Some(mine[0].as_str()));
        let j = journal(&env);
        let adopted = j["tasks"][0]["adopted"].as_str().unwrap_or_default();
        assert!(adopted.contains("only unclaimed"), "the journal records how: {j}");
        assert_eq!(env.stand.count("GET", "/results/"), 1, "one download");
    }
}

#[test]
fn a_lost_create_that_made_no_task_is_created_on_the_rerun() {
    let env = Env::new();
    lose_the_create_answer(&env);
    // The service lost it: no task exists after all.
    env.stand.state.tasks.lock().unwrap().clear();
    let o = env.submit(&["--wait"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("did not happen"), "{}", text(&o));
    assert_eq!(env.stand.creates(), 2);
    assert_eq!(env.stand.tasks().len(), 1, "one task in the end");
    let j = journal(&env);
    let states: Vec<&str> = j["tasks"].as_array().unwrap().iter().map(|t| t["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["created", "rejected"], "{j}");
}

#[test]
fn several_candidates_are_listed_and_adopt_picks_one() {
    let env = Env::new();
    lose_the_create_answer(&env);
    let foreign = env.stand.add_foreign_task(5);
    let mine = env.stand.tasks().into_iter().find(|(_, t)| !t.foreign).map(|(id, _)| id).unwrap();
    let o = env.submit(&["--wait"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    let t = text(&o);
    assert!(t.contains(&foreign) && t.contains(&mine) && t.contains("wanprep adopt"), "{t}");
    assert!(!t.contains("--new"), "{t}");
    assert_eq!(env.stand.creates(), 1);

    // A task the service does not know is refused; so is the right one for another job.
    let (img, vid) = (fixture("image/ok_800x600.jpg"), fixture("video/ok_640x360_3s.mp4"));
    let state = env.state();
    let adopt = |id: &str, video: &Path| {
        env.run(&[
            "adopt",
            id,
            "--image",
            img.to_str().unwrap(),
            "--video",
            video.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ])
    };
    let o = adopt("no-such-task", &vid);
    assert_eq!(code(&o), 1, "{}", text(&o));
    assert!(text(&o).contains("does not know"), "{}", text(&o));
    let o = adopt(&mine, &vid);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let o = adopt(&mine, &fixture("video/ok_640x360_3s.mov"));
    assert_eq!(code(&o), 1, "another job cannot take it: {}", text(&o));

    let o = env.submit(&["--wait", "--json"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(json(&o)["task_id"].as_str(), Some(mine.as_str()));
    assert_eq!(env.stand.creates(), 1);
    assert!(journal(&env)["tasks"][0]["adopted"].as_str().unwrap().contains("wanprep adopt"));
}

#[test]
fn when_the_list_cannot_be_read_the_job_stops_without_creating() {
    let env = Env::new();
    lose_the_create_answer(&env);
    env.stand.knobs().list_fails.store(true, Ordering::SeqCst);
    let o = env.submit(&["--json"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    let doc = json(&o);
    assert!(doc["error"].as_str().unwrap().contains("task list failed"), "{doc}");
    assert!(doc["hint"].as_str().unwrap().contains("wanprep adopt"), "{doc}");
    assert!(!text(&o).contains("--new"));
    assert_eq!(env.stand.creates(), 1);
}

#[test]
fn two_submits_at_once_share_one_task() {
    let env = Env::new();
    env.stand.knobs().create_delay_ms.store(1500, Ordering::SeqCst);
    let a = env.submit_command(&["--json"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let b = env.submit_command(&["--json"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert_eq!((code(&a), code(&b)), (0, 0), "{}\n{}", text(&a), text(&b));
    assert_eq!(env.stand.creates(), 1, "the second waited for the first's answer");
    assert_eq!(json(&a)["task_id"], json(&b)["task_id"]);
    assert!(!text(&a).contains("--new") && !text(&b).contains("--new"));
}

#[test]
fn killed_at_each_new_step_then_rerun_yields_one_task_and_one_download() {
    // While the create is in flight, and while the lookup of a lost answer is in flight.
    for step in ["create", "lookup"] {
        let env = Env::new();
        if step == "lookup" {
            lose_the_create_answer(&env);
            env.stand.knobs().list_delay_ms.store(5_000, Ordering::SeqCst);
            let mut child = env.spawn_submit(&["--wait"]);
            wait_until("the lookup", Duration::from_secs(30), || lists(&env) >= 1);
            child.kill().unwrap();
            child.wait().unwrap();
            env.stand.knobs().list_delay_ms.store(0, Ordering::SeqCst);
        } else {
            env.stand.knobs().create_delay_ms.store(5_000, Ordering::SeqCst);
            let mut child = env.spawn_submit(&["--wait"]);
            wait_until("the create", Duration::from_secs(30), || env.stand.tasks().len() == 1);
            child.kill().unwrap(); // SIGKILL: the journal says "sending", its sender is dead.
            child.wait().unwrap();
            env.stand.knobs().create_delay_ms.store(0, Ordering::SeqCst);
        }
        let o = env.submit(&["--wait", "--json"]);
        assert_eq!(code(&o), 0, "{step}: {}", text(&o));
        assert_eq!(env.stand.creates(), 1, "{step}: exactly one task");
        let again = env.submit(&["--wait", "--json"]);
        assert_eq!(code(&again), 0, "{step}: {}", text(&again));
        assert_eq!(env.stand.creates(), 1, "{step}");
        assert_eq!(env.stand.count("GET", "/results/"), 1, "{step}: one download per result");
    }
}

#[test]
fn cancel_stops_a_pending_task_and_explains_a_running_one() {
    let env = Env::new();
    let state = env.state();
    let st = state.to_str().unwrap();
    env.stand.knobs().hold_pending.store(true, Ordering::SeqCst);
    let o = env.submit(&["--json"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let id = json(&o)["task_id"].as_str().unwrap().to_string();
    let o = env.run(&["cancel", &id, "--state-dir", st]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("canceled"), "{}", text(&o));
    assert_eq!(env.stand.count("POST", &format!("/api/v1/tasks/{id}/cancel")), 1);
    assert_eq!(journal(&env)["tasks"][0]["task_status"], "CANCELED");
    // A canceled task is over: the same job gets a new task.
    let o = env.submit(&["--json"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let second = json(&o)["task_id"].as_str().unwrap().to_string();
    assert_ne!(second, id);

    // Running: refused with the service's reason and the status.
    env.stand.knobs().hold_pending.store(false, Ordering::SeqCst);
    env.stand.knobs().polls_to_finish.store(1_000_000, Ordering::SeqCst);
    let w = env.wait(&second, &["--timeout", "0.5"]);
    assert_eq!(code(&w), 2, "still running: {}", text(&w));
    let o = env.run(&["cancel", &second, "--state-dir", st, "--json"]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    let doc = json(&o);
    assert_eq!(doc["tasks"][0]["status"], "RUNNING", "{doc}");
    assert_eq!(doc["tasks"][0]["code"], "UnsupportedOperation", "{doc}");
    assert_eq!(doc["refused"], 1);

    // --all-pending: every journal task last seen PENDING.
    env.stand.knobs().hold_pending.store(true, Ordering::SeqCst);
    let o1 = env.submit(&["--new", "--json"]);
    let o2 = env.submit(&["--new", "--json"]);
    let ids = [json(&o1)["task_id"].clone(), json(&o2)["task_id"].clone()];
    let o = env.run(&["cancel", "--all-pending", "--state-dir", st, "--json"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let doc = json(&o);
    assert_eq!(doc["canceled"], 2, "{doc}");
    let done: Vec<&serde_json::Value> = doc["tasks"].as_array().unwrap().iter().map(|t| &t["task_id"]).collect();
    assert!(ids.iter().all(|i| done.contains(&i)), "{doc}");
}

#[test]
fn spend_is_recorded_totalled_priced_and_estimated_before_paying() {
    let env = Env::new();
    let st = env.state().display().to_string();
    // Before anything is sent: the estimate, and not one request.
    let o = env.submit(&["--dry-run", "--price", "std=0.5,pro=0.75", "--json"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let doc = json(&o);
    let est = &doc["estimate"];
    assert_eq!(est["estimate"], true);
    let secs = est["total_seconds"].as_f64().unwrap();
    assert!((secs - 3.0).abs() < 0.1, "the reference video lasts 3 s: {doc}");
    assert!((est["total_cost"].as_f64().unwrap() - secs * 0.5).abs() < 1e-6, "{doc}");
    assert!(env.stand.log().is_empty(), "a dry run sends nothing");

    for mode in ["wan-std", "wan-pro"] {
        let o = env.submit(&["--wait", "--mode", mode, "--force"]);
        assert_eq!(code(&o), 0, "{}", text(&o));
    }
    let j = journal(&env);
    for t in j["tasks"].as_array().unwrap() {
        assert_eq!(t["video_duration"].as_f64(), Some(3.0), "{t}");
        assert!(t["mode"] == "wan-std" || t["mode"] == "wan-pro", "{t}");
    }
    assert_eq!(j["totals"]["total_seconds"].as_f64(), Some(6.0), "{j}");
    assert_eq!(j["totals"]["modes"]["wan-pro"]["tasks"], 1);
    let o = env.run(&["tasks", "--state-dir", &st, "--price", "std=0.4,pro=0.6"]);
    let t = text(&o);
    assert!(t.contains("wan-std 3.0 s (1 task) = 1.20") && t.contains("wan-pro 3.0 s (1 task) = 1.80"), "{t}");
    assert!(t.contains("total 6.0 s = 3.00"), "{t}");
    // A dry run of a job already submitted says nothing new is paid.
    let o = env.submit(&["--dry-run", "--mode", "wan-pro"]);
    assert!(text(&o).contains("nothing new is paid"), "{}", text(&o));
    assert_eq!(code(&env.run(&["tasks", "--price", "fast=1", "--state-dir", &st])), 2);
}

/// `n` distinct small PNG characters and a manifest pairing each with the 3 s video.
fn distinct_pairs(dir: &Path, n: usize) -> PathBuf {
    let mut rows = String::from("image,video,mode\n");
    for i in 0..n {
        let img = image::RgbImage::from_fn(240, 320, |x, y| image::Rgb([(x as u8) ^ (i as u8), y as u8, i as u8]));
        let p = dir.join(format!("char{i}.png"));
        img.save(&p).unwrap();
        rows.push_str(&format!("{},{},wan-std\n", p.display(), fixture("video/ok_640x360_3s.mp4").display()));
    }
    let m = dir.join("pairs.csv");
    std::fs::write(&m, rows).unwrap();
    m
}

/// `batch --manifest MANIFEST -o DIR/out --submit --state-dir DIR/state` and `extra`, against
/// the stand-in.
fn manifest_command(stand: &Stand, dir: &Path, manifest: &Path, extra: &[&str]) -> Command {
    let (out, state) = (dir.join("out"), dir.join("state"));
    let mut c = Command::new(env!("CARGO_BIN_EXE_wanprep"));
    c.args(["batch", "--manifest", manifest.to_str().unwrap(), "-o", out.to_str().unwrap(), "--submit"])
        .args(["--state-dir", state.to_str().unwrap()])
        .args(extra)
        .env("DASHSCOPE_API_KEY", KEY)
        .env("DASHSCOPE_BASE_URL", &stand.api_base)
        .env_remove("DASHSCOPE_WORKSPACE_ID")
        .env_remove("DASHSCOPE_REGION");
    c
}

/// A manifest run polling every 0.05 s, run to its end; the key appears in none of its output.
fn manifest_run(stand: &Stand, dir: &Path, manifest: &Path, extra: &[&str]) -> Output {
    let o = manifest_command(stand, dir, manifest, &[&["--poll-interval", "0.05"], extra].concat()).output().unwrap();
    assert_no_key(&o);
    o
}

#[test]
fn the_rate_limiter_holds_at_the_server_and_the_batch_totals_the_spend() {
    let stand = Stand::start();
    let dir = tempfile::tempdir().unwrap();
    let m = distinct_pairs(dir.path(), 6);
    let o = manifest_run(
        &stand,
        dir.path(),
        &m,
        &["--max-in-flight", "6", "--max-qps", "3", "--json", "--price", "std=0.4"],
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
    let peak = stand.max_api_requests_per_second();
    assert!(peak <= 3, "{peak} API requests arrived within one second with --max-qps 3");
    assert_eq!(stand.creates(), 6);
    let doc = json(&o);
    assert_eq!(doc["generated"]["total_seconds"].as_f64(), Some(18.0), "{}", doc["generated"]);
    assert!((doc["generated"]["total_cost"].as_f64().unwrap() - 7.2).abs() < 1e-9);
    assert!((doc["estimate"]["total_seconds"].as_f64().unwrap() - 18.0).abs() < 0.5, "{}", doc["estimate"]);
}

#[test]
fn a_twenty_task_manifest_stays_within_the_default_rate() {
    let stand = Stand::start();
    let dir = tempfile::tempdir().unwrap();
    let m = distinct_pairs(dir.path(), 20);
    let start = Instant::now();
    let o = manifest_run(&stand, dir.path(), &m, &["--max-in-flight", "20"]);
    let elapsed = start.elapsed().as_secs_f64();
    assert_eq!(code(&o), 0, "{}", text(&o));
    let api = stand.log().iter().filter(|l| l.listener == "api").count();
    let peak = stand.max_api_requests_per_second();
    // Quoted in the issue note.
    eprintln!("20-task manifest: {api} API requests in {elapsed:.1} s, peak {peak} in any one second (limit 10)");
    assert!(peak <= 10, "peak {peak} requests in one second");
    assert_eq!(stand.creates(), 20);
}

#[test]
fn the_manifest_dry_run_estimates_and_new_creates_again() {
    let stand = Stand::start();
    let dir = tempfile::tempdir().unwrap();
    let m = distinct_pairs(dir.path(), 2);
    let o = manifest_run(&stand, dir.path(), &m, &["--dry-run", "--price", "std=0.5"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("estimate: wan-std 6.0 s (2 tasks) = 3.00"), "{}", text(&o));
    assert!(stand.log().is_empty(), "a dry run sends nothing");
    assert_eq!(code(&manifest_run(&stand, dir.path(), &m, &[])), 0);
    assert_eq!(stand.creates(), 2);
    assert_eq!(code(&manifest_run(&stand, dir.path(), &m, &["--force"])), 0);
    assert_eq!(stand.creates(), 2, "a re-run resumes");
    let o = manifest_run(&stand, dir.path(), &m, &["--new", "--force"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(stand.creates(), 4, "--new creates again, as in submit");
}

/// Starts a manifest run whose tasks stay PENDING, interrupts it with SIGINT, and returns
/// its output.
fn interrupted_manifest(stand: &Stand, dir: &Path, extra: &[&str]) -> Output {
    let m = distinct_pairs(dir, 2);
    stand.knobs().hold_pending.store(true, Ordering::SeqCst);
    let child =
        manifest_command(stand, dir, &m, &[&["--poll-interval", "0.05", "--max-in-flight", "2"], extra].concat())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
    wait_until("both tasks polled", Duration::from_secs(60), || stand.count("GET", "/api/v1/tasks/") >= 2);
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    child.wait_with_output().unwrap()
}

#[test]
fn ctrl_c_on_a_manifest_prints_the_cancel_line_or_cancels_itself() {
    let stand = Stand::start();
    let dir = tempfile::tempdir().unwrap();
    let o = interrupted_manifest(&stand, dir.path(), &[]);
    let t = text(&o);
    let ids: Vec<String> = stand.tasks().keys().cloned().collect();
    assert_eq!(ids.len(), 2);
    let line = t.lines().find(|l| l.trim_start().starts_with("wanprep cancel")).unwrap_or_else(|| panic!("{t}"));
    assert!(ids.iter().all(|i| line.contains(i.as_str())) && line.contains("--state-dir"), "{line}");
    assert!(stand.tasks().values().all(|t| !t.canceled), "asked nothing, canceled nothing");
    // The printed line works as it is.
    let words: Vec<&str> = line.split_whitespace().skip(1).map(|w| w.trim_matches('\'')).collect();
    let c = Command::new(env!("CARGO_BIN_EXE_wanprep"))
        .args(&words)
        .env("DASHSCOPE_API_KEY", KEY)
        .env("DASHSCOPE_BASE_URL", &stand.api_base)
        .output()
        .unwrap();
    assert_eq!(code(&c), 0, "{}", text(&c));
    assert!(stand.tasks().values().all(|t| t.canceled));

    let stand = Stand::start();
    let dir = tempfile::tempdir().unwrap();
    let o = interrupted_manifest(&stand, dir.path(), &["--cancel-on-interrupt"]);
    assert!(text(&o).contains("canceled 2 queued"), "{}", text(&o));
    assert!(stand.tasks().values().all(|t| t.canceled));
}

#[test]
fn region_endpoint_and_key_files_are_explicit() {
    let env = Env::new();
    // Local files outside Beijing: the refusal is explained with the region and the way out.
    env.stand.knobs().refuse_policy.store(true, Ordering::SeqCst);
    let o = env.submit_command(&[]).env("DASHSCOPE_REGION", "ap-southeast-1").output().unwrap();
    assert_eq!(code(&o), 2, "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("ap-southeast-1") && t.contains("Beijing") && t.contains("public http(s) URL"), "{t}");
    assert_eq!(env.stand.creates(), 0);

    // A workspace id without a region: said once, and in --json (a dry run sends nothing).
    let o = env
        .submit_command(&["--dry-run", "--json"])
        .env_remove("DASHSCOPE_BASE_URL")
        .env("DASHSCOPE_WORKSPACE_ID", "ws-test1")
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", text(&o));
    let doc = json(&o);
    assert_eq!(doc["endpoint"], "https://dashscope.aliyuncs.com/api/v1", "{doc}");
    assert!(doc["endpoint_note"].as_str().unwrap().contains("Beijing"));
    assert_eq!(String::from_utf8_lossy(&o.stderr).matches("Beijing endpoint").count(), 1);

    // The official SDK's key files.
    env.stand.knobs().refuse_policy.store(false, Ordering::SeqCst);
    let file = env.dir.path().join("key.txt");
    std::fs::write(&file, format!("{KEY}\n")).unwrap();
    let o = env
        .submit_command(&[])
        .env_remove("DASHSCOPE_API_KEY")
        .env("DASHSCOPE_API_KEY_FILE_PATH", &file)
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "DASHSCOPE_API_KEY_FILE_PATH: {}", text(&o));
    assert_no_key(&o);
    std::fs::create_dir_all(env.dir.path().join(".dashscope")).unwrap();
    std::fs::write(env.dir.path().join(".dashscope/api_key"), KEY).unwrap();
    let o = env.submit_command(&["--json"]).env_remove("DASHSCOPE_API_KEY").output().unwrap();
    assert_eq!(code(&o), 0, "~/.dashscope/api_key: {}", text(&o));
    assert_eq!(json(&o)["resumed"], true, "the same account's journal entry");
}

#[test]
fn hints_for_what_users_hit() {
    let env = Env::new();
    let cases = [
        (403, "AllocationQuota.FreeTierOnly", "free tier only"),
        (429, "Throttling.AllocationQuota", "not the request rate"),
        (429, "Throttling.RateQuota", "--max-qps"),
    ];
    for (status, code_, expect) in cases {
        *env.stand.knobs().refuse_create_with.lock().unwrap() = Some((status, code_.to_string()));
        let o = env.submit(&["--json"]);
        assert_eq!(code(&o), 2, "{}", text(&o));
        let doc = json(&o);
        assert_eq!(doc["code"], code_, "{doc}");
        assert!(doc["hint"].as_str().unwrap_or_default().contains(expect), "{code_}: {doc}");
    }
    *env.stand.knobs().refuse_create_with.lock().unwrap() = None;
    // An expired result link: fetched afresh once by itself; when that fails too, the hint.
    env.stand.knobs().result_403.store(1, Ordering::SeqCst);
    let o = env.submit(&["--wait"]);
    assert_eq!(code(&o), 0, "a fresh link is fetched: {}", text(&o));
    let id = journal(&env)["tasks"][0]["task_id"].as_str().unwrap().to_string();
    std::fs::remove_file(env.out()).unwrap();
    env.stand.knobs().result_403.store(100, Ordering::SeqCst);
    let o = env.wait(&id, &["--json"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(json(&o)["hint"].as_str().unwrap().contains(&format!("wanprep wait {id}")), "{}", text(&o));
}

#[test]
fn a_manifest_killed_while_a_create_is_in_flight_resumes_with_one_task_per_job() {
    let stand = Stand::start();
    let dir = tempfile::tempdir().unwrap();
    let m = distinct_pairs(dir.path(), 3);
    stand.knobs().create_delay_ms.store(5_000, Ordering::SeqCst);
    let mut child = manifest_command(&stand, dir.path(), &m, &["--max-in-flight", "3"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The second create is being answered (slowly) when the run dies: one task made and known,
    // one made and unknown, one never sent.
    wait_until("two creates", Duration::from_secs(60), || stand.tasks().len() == 2);
    child.kill().unwrap();
    child.wait().unwrap();
    stand.knobs().create_delay_ms.store(0, Ordering::SeqCst);
    let o = manifest_run(&stand, dir.path(), &m, &["--max-in-flight", "3", "--json"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(stand.creates(), 3, "exactly one task per job");
    assert_eq!(stand.tasks().len(), 3);
    assert_eq!(stand.count("GET", "/results/"), 3, "one download per result");
    let again = manifest_run(&stand, dir.path(), &m, &["--max-in-flight", "3"]);
    assert_eq!(code(&again), 0, "{}", text(&again));
    assert_eq!((stand.creates(), stand.count("GET", "/results/")), (3, 3), "nothing paid or fetched twice");
}

#[test]
fn every_page_of_the_task_list_is_read() {
    let env = Env::new();
    lose_the_create_answer(&env);
    // More candidates than one page holds (wanprep asks for 20 a page).
    let foreign: Vec<String> = (0..25).map(|_| env.stand.add_foreign_task(2)).collect();
    let o = env.submit(&["--json"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    let err = json(&o)["error"].as_str().unwrap().to_string();
    assert!(err.contains("26 unclaimed tasks"), "{err}");
    assert!(foreign.iter().all(|f| err.contains(f.as_str())), "{err}");
    assert!(env.stand.count("GET", "/api/v1/tasks?") >= 4, "two pages a query");
    assert_eq!(env.stand.creates(), 1);
}

#[test]
fn a_manifest_uploads_its_local_inputs_several_at_once_and_each_once() {
    let stand = Stand::start();
    stand.knobs().latency_ms.store(150, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let m = distinct_pairs(dir.path(), 6);
    let o = manifest_run(&stand, dir.path(), &m, &["--max-in-flight", "6", "--jobs", "3"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    // Six images and one video shared by every pair: seven uploads, at most three at once.
    assert_eq!(stand.uploads(), 7);
    let peak = stand.knobs().uploads_peak.load(Ordering::SeqCst);
    assert!((2..=3).contains(&peak), "{peak} uploads at once with --jobs 3");
    assert_eq!(stand.creates(), 6);
    // Every create names an object that was uploaded (the creates found them in the journal).
    assert!(stand.tasks().values().all(|t| t.image_url.starts_with("oss://") && t.video_url.starts_with("oss://")));
}
