//! One JSON dialect: every `--json` prints exactly one JSON document on stdout — failures
//! included — and batch's report file is `--report FILE` (`--json FILE` still works, with a note).

use std::process::Output;

use crate::submit::Env;
use crate::util::{code, fixture, wanprep};

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The whole of stdout is one JSON object.
fn one_doc(o: &Output) -> serde_json::Value {
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", text(o)));
    assert!(doc.is_object(), "{doc}");
    doc
}

#[test]
fn a_command_that_cannot_start_still_prints_json_when_asked() {
    for args in [
        vec!["check", "--json", "--limit", "image.max_side=abc", "x.png"],
        vec!["rules", "--json", "--limit", "no.such_limit=1"],
        vec!["fix", "--json", "x.png", "-o", "y.png", "--pad-color", "zz"],
    ] {
        let o = wanprep(&args);
        assert_eq!(code(&o), 2, "{args:?}: {}", text(&o));
        let doc = one_doc(&o);
        assert!(doc["error"].as_str().is_some_and(|e| !e.is_empty()), "{args:?}: {doc}");
    }
}

#[test]
fn fix_json_has_one_shape_in_a_fixed_order_with_errors_included() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jpg");
    let input = fixture("image/ok_800x600.jpg");
    let ok = wanprep(&["fix", "--json", input.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(code(&ok), 0, "{}", text(&ok));
    let doc = one_doc(&ok);
    // Declared order (input first), not alphabetical.
    let raw = String::from_utf8_lossy(&ok.stdout);
    let at = |k: &str| raw.find(&format!("\n  \"{k}\":")).unwrap_or_else(|| panic!("no {k}: {raw}"));
    assert!(at("input") < at("output") && at("output") < at("compliant") && at("compliant") < at("changes"), "{raw}");
    assert_eq!(doc["compliant"], true);
    assert!(doc["media"]["width"].as_u64().is_some(), "{doc}");
    // The output exists now: refused, as JSON, with the sentence people see on stderr.
    let again = wanprep(&["fix", "--json", input.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(code(&again), 2, "{}", text(&again));
    let doc = one_doc(&again);
    assert_eq!(doc["compliant"], false);
    assert!(doc["error"].as_str().unwrap().contains("--force"), "{doc}");
    let dry = wanprep(&["fix", "--json", "--dry-run", input.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    let doc = one_doc(&dry);
    assert_eq!((doc["dry_run"].as_bool(), doc.get("compliant")), (Some(true), None), "{doc}");
    assert!(doc["plan"]["ops"].is_array(), "{doc}");
}

#[test]
fn rules_json_lists_every_rule_and_limit() {
    let doc = one_doc(&wanprep(&["rules", "--json", "--limit", "video.max_duration_s=15"]));
    let rules = doc["rules"].as_array().unwrap();
    assert!(rules.iter().any(|r| r["rule"] == "video.duration" && r["requirement"].as_str().unwrap().contains("15")));
    assert_eq!(doc["limits"]["video.max_duration_s"], 15.0);
}

#[test]
fn batch_json_means_stdout_and_the_report_file_is_report() {
    let input = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("image/ok_800x600.jpg"), input.path().join("a.jpg")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let (i, o) = (input.path().to_str().unwrap(), out.path().join("o"));
    let o = o.to_str().unwrap();
    // --json alone: the report on stdout, per-input entries under `inputs`.
    let doc = one_doc(&wanprep(&["batch", i, "-o", o, "--json"]));
    assert_eq!(doc["inputs"][0]["input"], "a.jpg", "{doc}");
    // --json before DIR: DIR is still the folder, not a report file name.
    let doc = one_doc(&wanprep(&["batch", "--json", i, "-o", o]));
    assert_eq!(doc["summary"]["inputs"], 1, "{doc}");
    // --report FILE: written atomically; the summary stays on stdout.
    let report = out.path().join("r.json");
    let r = wanprep(&["batch", i, "-o", o, "--report", report.to_str().unwrap()]);
    assert_eq!(code(&r), 0, "{}", text(&r));
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(doc["inputs"][0]["input"], "a.jpg");
    // The older --json FILE still writes the file, and says what replaces it.
    let old = out.path().join("old.json");
    let r = wanprep(&["batch", i, "-o", o, "--json", old.to_str().unwrap()]);
    assert_eq!(code(&r), 0, "{}", text(&r));
    assert!(String::from_utf8_lossy(&r.stderr).contains("--report FILE"), "{}", text(&r));
    assert!(serde_json::from_slice::<serde_json::Value>(&std::fs::read(&old).unwrap()).is_ok());
}

#[test]
fn status_json_is_json_on_an_http_error_too() {
    let env = Env::new();
    let state = env.state();
    let o = env
        .command(&["status", "some-task", "--json", "--state-dir", state.to_str().unwrap()])
        .env("DASHSCOPE_API_KEY", "sk-wrong-key-PRIVATE")
        .output()
        .unwrap();
    assert_eq!(code(&o), 2, "{}", text(&o));
    let doc = one_doc(&o);
    assert_eq!(doc["task_id"], "some-task");
    assert!(doc["error"].as_str().unwrap().contains("InvalidApiKey"), "{doc}");
    assert!(doc["hint"].as_str().is_some(), "a hint for the known code: {doc}");
    assert!(!text(&o).contains("sk-wrong-key-PRIVATE"));
}

#[test]
fn submit_and_wait_json_share_one_task_shape() {
    let env = Env::new();
    let submitted = one_doc(&env.submit(&["--json"]));
    assert_eq!(submitted["submitted"], true, "{submitted}");
    let id = submitted["task_id"].as_str().unwrap().to_string();
    let (state, out) = (env.state(), env.out());
    let waited = one_doc(&env.wait(&id, &["--json"]));
    assert_eq!((waited["task_id"].as_str(), waited["status"].as_str()), (Some(id.as_str()), Some("SUCCEEDED")));
    assert_eq!(waited["downloaded"], true, "{waited}");
    assert_eq!(waited["bytes"].as_u64(), Some(std::fs::metadata(&out).unwrap().len()));
    // A refused output is a report too, before anything is paid for.
    let again = env.submit(&["--json", "--wait", "--new"]);
    let doc = one_doc(&again);
    assert_eq!(code(&again), 2, "{doc}");
    assert!(doc["error"].as_str().unwrap().contains("exists"), "{doc}");
    let tasks = one_doc(&env.run(&["tasks", "--json", "--state-dir", state.to_str().unwrap()]));
    assert!(tasks["tasks"].as_array().unwrap().iter().any(|t| t["task_id"] == id.as_str()), "{tasks}");
}
