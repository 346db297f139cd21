//! `submit`, `wait`, `status`, `tasks` against the protocol stand-in (`dashscope_server`).

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::dashscope_server::{Stand, KEY};
use crate::http_server::TestServer;
use crate::util::{code, fixture};

const IMAGE: &str = "image/ok_800x600.jpg";
const VIDEO: &str = "video/ok_640x360_3s.mp4";

/// A stand-in service and a private folder (HOME, journal, outputs), shared with the safety tests.
pub(crate) struct Env {
    pub(crate) stand: Stand,
    pub(crate) dir: tempfile::TempDir,
}

impl Env {
    pub(crate) fn new() -> Env {
        Env { stand: Stand::start(), dir: tempfile::tempdir().unwrap() }
    }

    pub(crate) fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub(crate) fn out(&self) -> PathBuf {
        self.dir.path().join("result.mp4")
    }

    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_wanprep"));
        c.args(args)
            .current_dir(self.dir.path())
            .env("DASHSCOPE_API_KEY", KEY)
            .env("DASHSCOPE_BASE_URL", &self.stand.api_base)
            .env_remove("DASHSCOPE_WORKSPACE_ID")
            .env_remove("DASHSCOPE_REGION")
            .env("HOME", self.dir.path());
        c
    }

    /// Runs wanprep and checks that the key appears in none of its output.
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        let o = self.command(args).output().expect("run wanprep");
        assert_no_key(&o);
        o
    }

    pub(crate) fn submit_args(&self, extra: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = vec![
            "submit".into(),
            "--image".into(),
            fixture(IMAGE).display().to_string(),
            "--video".into(),
            fixture(VIDEO).display().to_string(),
            "--state-dir".into(),
            self.state().display().to_string(),
            "-o".into(),
            self.out().display().to_string(),
            "--poll-interval".into(),
            "0.05".into(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    }

    /// `wait ID -o OUT --poll-interval 0.05 --state-dir STATE` and `extra`, run.
    pub(crate) fn wait(&self, id: &str, extra: &[&str]) -> Output {
        let (out, state) = (self.out(), self.state());
        let mut args = vec!["wait", id, "-o", out.to_str().unwrap(), "--poll-interval", "0.05"];
        args.extend(["--state-dir", state.to_str().unwrap()]);
        args.extend(extra);
        self.run(&args)
    }

    pub(crate) fn submit(&self, extra: &[&str]) -> Output {
        let o = self.submit_command(extra).output().expect("run wanprep");
        assert_no_key(&o);
        o
    }

    /// The submit command of `submit_args`, to adjust before running.
    pub(crate) fn submit_command(&self, extra: &[&str]) -> Command {
        let args = self.submit_args(extra);
        self.command(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// Starts a submit in the background (for the kill tests), output discarded.
    pub(crate) fn spawn_submit(&self, extra: &[&str]) -> std::process::Child {
        self.submit_command(extra).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap()
    }
}

pub(crate) fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

pub(crate) fn assert_no_key(o: &Output) {
    let all = text(o);
    assert!(!all.contains(KEY) && !all.contains("SECRET"), "the key leaked into the output:\n{all}");
}

fn result_bytes() -> Vec<u8> {
    std::fs::read(fixture("video/mp4v_640x360.mp4")).unwrap()
}

fn task_id_from(o: &Output) -> String {
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    doc["task_id"].as_str().expect("task_id").to_string()
}

fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn local_files_are_uploaded_created_polled_and_downloaded() {
    let env = Env::new();
    let o = env.submit(&["--wait", "--json"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(std::fs::read(env.out()).unwrap(), result_bytes(), "the result is saved byte for byte");
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["status"], "SUCCEEDED");
    assert_eq!(doc["downloaded"], true);

    let s = &env.stand;
    assert_eq!(s.creates(), 1);
    assert_eq!(s.count("GET", "/api/v1/uploads?action=getPolicy"), 1, "one credential serves both files");
    let tasks = s.tasks();
    let task = tasks.values().next().unwrap();
    assert!(task.image_url.starts_with("oss://dashscope-instant/") && task.video_url.starts_with("oss://"));
    assert_eq!(task.mode, "wan-std");
    let objects = s.state.objects.lock().unwrap();
    assert_eq!(objects[task.image_url.strip_prefix("oss://").unwrap()], std::fs::read(fixture(IMAGE)).unwrap());
    assert_eq!(objects[task.video_url.strip_prefix("oss://").unwrap()], std::fs::read(fixture(VIDEO)).unwrap());
    for l in s.log() {
        match l.listener {
            "api" => assert_eq!(l.authorization.as_deref(), Some(format!("Bearer {KEY}").as_str()), "{l:?}"),
            _ => assert_eq!(l.authorization, None, "the key went to the storage host: {l:?}"),
        }
    }
    let create = s.log().into_iter().find(|l| l.method == "POST" && l.listener == "api").unwrap();
    assert_eq!(create.oss_resolve.as_deref(), Some("enable"));
    // No partial file is left beside the output.
    let leftovers: Vec<_> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A second wait finds the saved result and downloads nothing.
    let results_before = s.count("GET", "/results/");
    let id = task_id_from(&o);
    let again = env.run(&["wait", &id, "--state-dir", env.state().to_str().unwrap()]);
    assert_eq!(code(&again), 0, "{}", text(&again));
    assert!(text(&again).contains("already saved"), "{}", text(&again));
    assert_eq!(s.count("GET", "/results/"), results_before);

    // The journal lists it.
    let tasks = env.run(&["tasks", "--json", "--state-dir", env.state().to_str().unwrap()]);
    let doc: serde_json::Value = serde_json::from_slice(&tasks.stdout).unwrap();
    let entry = &doc["tasks"][0];
    assert_eq!(entry["task_id"], id.as_str());
    assert_eq!(entry["task_status"], "SUCCEEDED");
    assert_eq!(entry["output_path"], env.out().display().to_string());
}

#[test]
fn url_inputs_are_probed_and_sent_as_they_are() {
    let env = Env::new();
    let files = TestServer::start();
    let image = files.url("range/image/ok_800x600.jpg");
    let video = files.url("range/video/ok_640x360_3s.mp4");
    let state = env.state();
    let o = env.run(&[
        "submit",
        "--image",
        &image,
        "--video",
        &video,
        "--mode",
        "wan-pro",
        "--watermark",
        "--state-dir",
        state.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let tasks = env.stand.tasks();
    let task = tasks.values().next().unwrap();
    assert_eq!((task.image_url.as_str(), task.video_url.as_str()), (image.as_str(), video.as_str()));
    assert_eq!(task.mode, "wan-pro");
    assert!(task.watermark);
    assert_eq!(env.stand.count("GET", "/api/v1/uploads"), 0, "URLs are not uploaded");
    assert!(files.stats.gets() > 0, "the URLs were probed before sending");
}

#[test]
fn a_non_compliant_input_sends_nothing() {
    let env = Env::new();
    let state = env.state();
    let o = env.run(&[
        "submit",
        "--image",
        fixture("image/dims_199x300.png").to_str().unwrap(),
        "--video",
        fixture(VIDEO).to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    assert!(text(&o).contains("image.dimensions"), "{}", text(&o));
    assert!(env.stand.log().is_empty(), "the server saw {:?}", env.stand.log());
}

#[test]
fn a_rerun_resumes_the_task_and_new_forces_another() {
    let env = Env::new();
    let first = env.submit(&["--json"]);
    assert_eq!(code(&first), 0, "{}", text(&first));
    let second = env.submit(&["--json"]);
    assert_eq!(code(&second), 0, "{}", text(&second));
    assert_eq!(task_id_from(&first), task_id_from(&second));
    let doc: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(doc["resumed"], true);
    assert_eq!(env.stand.creates(), 1, "no duplicate task");
    assert_eq!(env.stand.uploads(), 2, "the resumed run uploaded nothing");
    // Other parameters are another job.
    let pro = env.submit(&["--json", "--mode", "wan-pro"]);
    assert_ne!(task_id_from(&pro), task_id_from(&first));
    // --new creates another for the same job.
    let forced = env.submit(&["--json", "--new"]);
    assert_ne!(task_id_from(&forced), task_id_from(&first));
    assert_eq!(env.stand.creates(), 3);
    // Uploads of the same content were reused, not repeated.
    assert_eq!(env.stand.uploads(), 2);
}

#[test]
fn a_throttled_create_is_sent_again_and_makes_one_task() {
    let env = Env::new();
    env.stand.knobs().throttle_creates.store(2, Ordering::SeqCst);
    let o = env.submit(&["--json"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(env.stand.creates(), 3, "two refusals, then the create");
    assert_eq!(env.stand.tasks().len(), 1);
}

#[test]
fn transient_poll_errors_do_not_end_the_wait() {
    let env = Env::new();
    env.stand.knobs().poll_errors.store(3, Ordering::SeqCst);
    let o = env.submit(&["--wait", "--json"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(std::fs::read(env.out()).unwrap(), result_bytes());
    assert!(env.stand.count("GET", "/api/v1/tasks/") >= 3 + 2);
}

#[test]
fn a_failed_task_exits_1_with_code_message_and_hint() {
    let env = Env::new();
    *env.stand.knobs().fail_with.lock().unwrap() =
        Some(("DataInspectionFailed".into(), "Input or output data may contain inappropriate content.".into()));
    let o = env.submit(&["--wait"]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("FAILED") && t.contains("DataInspectionFailed") && t.contains("inappropriate content"), "{t}");
    assert!(t.contains("moderation"), "a hint for the known code: {t}");
    assert!(!env.out().exists());
    // A failed task is not resumed: a new submit may create another (failures are not billed).
    let again = env.submit(&["--json"]);
    assert_eq!(code(&again), 0, "{}", text(&again));
    assert_eq!(env.stand.creates(), 2);
}

#[test]
fn an_unknown_task_is_terminal() {
    let env = Env::new();
    env.stand.knobs().unknown.store(true, Ordering::SeqCst);
    let o = env.submit(&["--wait"]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    assert!(text(&o).contains("UNKNOWN"), "{}", text(&o));
    assert!(env.stand.count("GET", "/api/v1/tasks/") <= 2, "UNKNOWN ends the polling");
}

#[test]
fn a_wrong_key_is_reported_with_a_hint_and_never_printed() {
    let env = Env::new();
    let o = env.submit_command(&[]).env("DASHSCOPE_API_KEY", "sk-wrong-key-PRIVATE").output().unwrap();
    assert_eq!(code(&o), 2, "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("InvalidApiKey") && t.contains("region"), "{t}");
    assert!(!t.contains("sk-wrong-key-PRIVATE"), "{t}");
    assert_eq!(env.stand.creates(), 0);
}

#[test]
fn a_missing_key_is_a_usage_error() {
    let env = Env::new();
    let o = env.submit_command(&[]).env_remove("DASHSCOPE_API_KEY").output().unwrap();
    assert_eq!(code(&o), 2);
    assert!(text(&o).contains("DASHSCOPE_API_KEY"), "{}", text(&o));
    assert!(env.stand.log().is_empty());
}

#[test]
fn killed_while_the_create_is_in_flight_then_rerun_adopts_the_task() {
    let env = Env::new();
    env.stand.knobs().create_delay_ms.store(5_000, Ordering::SeqCst);
    let mut child = env.spawn_submit(&[]);
    wait_until("the create to arrive", Duration::from_secs(30), || env.stand.tasks().len() == 1);
    child.kill().unwrap(); // SIGKILL: no chance to record anything.
    child.wait().unwrap();
    env.stand.knobs().create_delay_ms.store(0, Ordering::SeqCst);

    // The journal says "sending" and its sender is dead: the re-run looks the attempt up in
    // the service's task list and adopts the one task it made.
    let again = env.submit(&["--json"]);
    assert_eq!(code(&again), 0, "{}", text(&again));
    assert_eq!(env.stand.creates(), 1, "the rerun did not create blindly");
    let id = env.stand.tasks().into_keys().next().unwrap();
    assert_eq!(task_id_from(&again), id);
    assert!(env.stand.count("GET", "/api/v1/tasks?") >= 1, "the task list was consulted");
    // --new still creates another when asked.
    let forced = env.submit(&["--new"]);
    assert_eq!(code(&forced), 0, "{}", text(&forced));
    assert_eq!(env.stand.creates(), 2);
}

#[test]
fn killed_after_the_create_then_rerun_resumes_and_downloads() {
    let env = Env::new();
    env.stand.knobs().polls_to_finish.store(1_000_000, Ordering::SeqCst);
    let mut child = env.spawn_submit(&["--wait"]);
    wait_until("polling to start", Duration::from_secs(30), || env.stand.count("GET", "/api/v1/tasks/") >= 1);
    child.kill().unwrap();
    child.wait().unwrap();
    env.stand.knobs().polls_to_finish.store(1, Ordering::SeqCst);
    let again = env.submit(&["--wait", "--json"]);
    assert_eq!(code(&again), 0, "{}", text(&again));
    assert_eq!(env.stand.creates(), 1, "resumed, not created again");
    assert_eq!(std::fs::read(env.out()).unwrap(), result_bytes());
}

#[test]
fn an_unanswered_create_is_recorded_as_uncertain_and_resolved_by_the_rerun() {
    let env = Env::new();
    env.stand.knobs().cut_create.store(true, Ordering::SeqCst);
    let o = env.submit(&[]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("not sent again") && text(&o).contains("same command again"), "{}", text(&o));
    assert!(!text(&o).contains("--new"), "{}", text(&o));
    let tasks = env.run(&["tasks", "--state-dir", env.state().to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&tasks.stdout).contains("uncertain"), "{}", text(&tasks));
    env.stand.knobs().cut_create.store(false, Ordering::SeqCst);
    let again = env.submit(&[]);
    assert_eq!(code(&again), 0, "{}", text(&again));
    assert!(text(&again).contains("adopted"), "{}", text(&again));
    assert_eq!(env.stand.creates(), 1);
}

#[test]
fn a_killed_download_resumes_with_range() {
    let env = Env::new();
    env.stand.knobs().polls_to_finish.store(1, Ordering::SeqCst);
    env.stand.knobs().slow_result_ms.store(150, Ordering::SeqCst);
    let mut child = env.spawn_submit(&["--wait"]);
    let part = || -> Option<PathBuf> {
        std::fs::read_dir(env.dir.path())
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(".part"))
    };
    wait_until("part of the result to arrive", Duration::from_secs(30), || {
        part().is_some_and(|p| std::fs::metadata(p).is_ok_and(|m| m.len() >= 32 * 1024))
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!env.out().exists(), "no partial output under the final name");
    let have = std::fs::metadata(part().unwrap()).unwrap().len();
    env.stand.knobs().slow_result_ms.store(0, Ordering::SeqCst);

    let tasks = env.stand.tasks();
    let id = tasks.keys().next().unwrap().clone();
    let o = env.run(&["wait", &id, "--state-dir", env.state().to_str().unwrap(), "--poll-interval", "0.05"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(std::fs::read(env.out()).unwrap(), result_bytes(), "the journal's output path was used");
    let last = env.stand.log().into_iter().rfind(|l| l.path.starts_with("/results/")).unwrap();
    assert_eq!(last.range, Some(format!("bytes={have}-")), "resumed where it stopped");
    assert!(part().is_none());
}

#[test]
fn a_cut_download_and_an_expired_policy_recover_within_one_run() {
    let env = Env::new();
    env.stand.knobs().cut_result_once.store(true, Ordering::SeqCst);
    env.stand.knobs().expire_policy_once.store(true, Ordering::SeqCst);
    let o = env.submit(&["--wait"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(std::fs::read(env.out()).unwrap(), result_bytes());
    assert_eq!(env.stand.count("GET", "/api/v1/uploads"), 2, "a fresh credential after 'Policy expired'");
    let ranges: Vec<_> =
        env.stand.log().into_iter().filter(|l| l.path.starts_with("/results/")).map(|l| l.range).collect();
    assert_eq!(ranges.len(), 2);
    assert!(ranges[1].as_deref().is_some_and(|r| r.starts_with("bytes=") && r != "bytes=0-"), "{ranges:?}");
}

#[test]
fn an_existing_output_is_not_overwritten_without_force() {
    let env = Env::new();
    std::fs::write(env.out(), b"precious").unwrap();
    let o = env.submit(&["--wait"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert_eq!(std::fs::read(env.out()).unwrap(), b"precious");
    assert_eq!(env.stand.creates(), 0, "refused before paying for a task");
    let forced = env.submit(&["--wait", "--force"]);
    assert_eq!(code(&forced), 0, "{}", text(&forced));
    assert_eq!(std::fs::read(env.out()).unwrap(), result_bytes());
}

#[test]
fn status_prints_the_task_and_json_passes_the_answer_through() {
    let env = Env::new();
    let o = env.submit(&["--json"]);
    let id = task_id_from(&o);
    let s = env.run(&["status", &id, "--json", "--state-dir", env.state().to_str().unwrap()]);
    assert_eq!(code(&s), 0, "{}", text(&s));
    let doc: serde_json::Value = serde_json::from_slice(&s.stdout).unwrap();
    assert_eq!(doc["output"]["task_id"], id.as_str());
    assert_eq!(doc["request_id"], "req-q");
    let human = env.run(&["status", &id, "--state-dir", env.state().to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&human.stdout).contains(&id));
    let missing = env.run(&["status", "no-such-task", "--state-dir", env.state().to_str().unwrap()]);
    assert_eq!(code(&missing), 1, "UNKNOWN is a failed outcome");
}

#[test]
fn the_wait_timeout_leaves_the_task_running_and_says_how_to_resume() {
    let env = Env::new();
    env.stand.knobs().polls_to_finish.store(1_000_000, Ordering::SeqCst);
    let o = env.submit(&["--wait", "--timeout", "0.5"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("wanprep wait "), "{}", text(&o));
}

#[test]
fn ctrl_c_while_waiting_leaves_the_task_running_and_says_how_to_resume() {
    let env = Env::new();
    env.stand.knobs().polls_to_finish.store(1_000_000, Ordering::SeqCst);
    let child = env.submit_command(&["--wait"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    wait_until("polling to start", Duration::from_secs(30), || env.stand.count("GET", "/api/v1/tasks/") >= 1);
    let sent = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(sent.success());
    let o = child.wait_with_output().unwrap();
    assert_no_key(&o);
    assert_eq!(code(&o), 2, "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("interrupted") && t.contains("wanprep wait 0385dc79"), "{t}");
    assert_eq!(env.stand.count("POST", "/api/v1/tasks/"), 0, "nothing cancelled the task");
}

#[test]
fn the_key_never_follows_a_redirect() {
    let env = Env::new();
    env.stand.knobs().redirect_queries.store(true, Ordering::SeqCst);
    let o = env.submit(&["--wait"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(env.stand.log().iter().all(|l| !l.path.starts_with("/steal")), "a redirect was followed");
    assert_eq!(env.stand.creates(), 1);
}

#[test]
fn a_resumed_job_whose_result_is_saved_needs_no_force() {
    let env = Env::new();
    assert_eq!(code(&env.submit(&["--wait"])), 0);
    let again = env.submit(&["--wait"]);
    assert_eq!(code(&again), 0, "{}", text(&again));
    assert!(text(&again).contains("already saved"), "{}", text(&again));
    assert_eq!(env.stand.creates(), 1);
    // Another job must not take over that file.
    let other = env.submit(&["--wait", "--mode", "wan-pro"]);
    assert_eq!(code(&other), 2, "{}", text(&other));
    assert_eq!(env.stand.creates(), 1, "refused before creating");
}

#[test]
fn an_unusable_home_falls_back_to_a_temporary_journal_with_a_warning() {
    let env = Env::new();
    let o = env
        .command(&["submit", "--image", fixture(IMAGE).to_str().unwrap(), "--video", fixture(VIDEO).to_str().unwrap()])
        .env("HOME", "/proc/wanprep-no-home")
        .env_remove("XDG_DATA_HOME")
        .output()
        .unwrap();
    assert_no_key(&o);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("warning") && text(&o).contains("journal"), "{}", text(&o));
    assert_eq!(env.stand.creates(), 1);
}
