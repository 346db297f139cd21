//! Checks every file in a folder against the API's rules and prints the report as JSON —
//! the same document `wanprep check --json` prints.
//!
//! ```sh
//! cargo run --example check_folder -- fixtures/image
//! ```

use std::path::PathBuf;

use wanprep::{check_inputs, CheckOptions, InputSpec};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).ok_or("usage: check_folder DIR")?);
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&dir)?.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_file()).collect();
    files.sort();
    // No role: each file is judged as what its content is (image or video).
    let inputs: Vec<InputSpec> = files.iter().map(|p| InputSpec::new(p.display().to_string(), None)).collect();
    let report = check_inputs(&inputs, &CheckOptions::default());
    println!("{}", serde_json::to_string_pretty(&report)?);
    let compliant = report.inputs.iter().filter(|i| i.compliant).count();
    eprintln!("{compliant} of {} files would be accepted", report.inputs.len());
    Ok(())
}
