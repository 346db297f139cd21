//! Submits a character image and a reference video, waits for the task and saves the result —
//! the whole of `wanprep submit --wait` as one library call. Needs `DASHSCOPE_API_KEY` (and
//! `DASHSCOPE_BASE_URL` for a stand-in service). Running it again resumes the same task
//! instead of paying for another.
//!
//! ```sh
//! DASHSCOPE_API_KEY=sk-... cargo run --example submit_and_wait -- character.png dance.mp4 out.mp4
//! ```

use std::path::PathBuf;
use std::time::Duration;

use wanprep::client::{Client, Config, ConfigOverrides, Event, Job, Mode, RunOptions, RunResult, TaskEnd, WaitOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [image, video, output] = args.as_slice() else {
        return Err("usage: submit_and_wait IMAGE VIDEO OUTPUT.mp4".into());
    };
    let config = Config::from_env(&ConfigOverrides::default())?;
    let mut client = Client::new(config)?;
    let job = Job::new(image.as_str(), video.as_str(), Mode::Std);
    // The documented 15 s unless told otherwise (a stand-in service answers at once).
    let poll_s = std::env::var("POLL_INTERVAL_S").ok().and_then(|s| s.parse().ok()).unwrap_or(15.0);
    let opts = RunOptions {
        output: Some(PathBuf::from(output)),
        wait: Some(WaitOptions { poll_interval: Duration::from_secs_f64(poll_s), ..Default::default() }),
        ..Default::default()
    };
    let result = client.run(&job, &opts, &mut |event| match event {
        Event::Created { task_id } => eprintln!("created task {task_id}"),
        Event::Resumed { entry } => eprintln!("resuming task {}", entry.task_id.as_deref().unwrap_or("?")),
        Event::Status { status, .. } => eprintln!("status {status}"),
        _ => {}
    })?;
    match result {
        RunResult::NotSent(report) => {
            for input in report.inputs.iter().filter(|i| !i.compliant) {
                for f in &input.findings {
                    eprintln!("{}: {} {}", input.input, f.rule, f.message);
                }
            }
            Err("not sent: the inputs would be rejected (fix them first)".into())
        }
        RunResult::Finished(done) => match done.end {
            TaskEnd::Downloaded { file, .. } => {
                println!("task {} saved {} ({} bytes)", done.task_id, file.path.display(), file.bytes);
                Ok(())
            }
            TaskEnd::AlreadySaved => {
                println!("task {} already saved at {}", done.task_id, done.output.display());
                Ok(())
            }
            TaskEnd::Unsuccessful(resp) => Err(format!("task {} ended {}", done.task_id, resp.status()).into()),
        },
        RunResult::Submitted(s) => Err(format!("task {} was not waited for", s.task_id).into()),
    }
}
