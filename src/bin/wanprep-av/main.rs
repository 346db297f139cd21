//! `wanprep-av`: the FFmpeg helper of wanprep. Reads one JSON request on stdin, does the work
//! with the system FFmpeg, writes one JSON answer on stdout. See `wanprep::av`.
#![deny(missing_docs)]

mod audio;
mod ffmpeg;

use std::io::{Read, Write};
use std::process::ExitCode;

use wanprep::av::{Envelope, Request, Response, PROTOCOL};

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("--protocol") => {
            println!("{PROTOCOL}");
            return ExitCode::SUCCESS;
        }
        Some("--version") => {
            println!("wanprep-av {} (protocol {PROTOCOL}); {}", env!("CARGO_PKG_VERSION"), ffmpeg::versions());
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let mut input = Vec::new();
    if std::io::stdin().take(1 << 20).read_to_end(&mut input).is_err() {
        eprintln!("wanprep-av: cannot read the request");
        return ExitCode::from(2);
    }
    // Checked before anything else: a request from another build is refused, not misread.
    let version = serde_json::from_slice::<serde_json::Value>(&input)
        .ok()
        .and_then(|v| v.get("protocol").and_then(serde_json::Value::as_u64));
    if version != Some(u64::from(PROTOCOL)) {
        let found = version.map_or("no protocol version".to_string(), |v| format!("protocol {v}"));
        eprintln!(
            "wanprep-av: not a request of protocol {PROTOCOL} ({found}): install wanprep and wanprep-av together"
        );
        return ExitCode::from(2);
    }
    let req: Request = match serde_json::from_slice::<Envelope<Request>>(&input) {
        Ok(r) => r.body,
        Err(e) => {
            eprintln!("wanprep-av: not a request ({e}); this program is run by wanprep");
            return ExitCode::from(2);
        }
    };
    watch_parent(match &req {
        Request::DecodeEnds { .. } | Request::Probe { .. } | Request::Frames { .. } | Request::Cuts { .. } => None,
        Request::Remux { output, .. } | Request::Reencode { output, .. } => Some(output.clone()),
    });
    let answer = match req {
        Request::Probe { path } => match ffmpeg::probe(&path) {
            Ok(info) => Response::Probed(info),
            Err(e) => Response::Failed(e),
        },
        Request::Frames { path, count, max_side, keyframes } => match ffmpeg::frames(&path, count, max_side, keyframes)
        {
            Ok(p) => Response::Frames(p),
            Err(e) => Response::Failed(e),
        },
        Request::Cuts { path, threshold, max_frames } => match ffmpeg::cuts(&path, threshold, max_frames) {
            Ok(scan) => Response::Cuts(scan),
            Err(e) => Response::Failed(e),
        },
        Request::DecodeEnds { path } => match ffmpeg::decode_first_and_last_frames(&path) {
            Ok(()) => Response::Decoded,
            Err(e) => Response::Failed(e),
        },
        Request::Remux { input, output, container, max_duration_s, end_s } => {
            match ffmpeg::remux(&input, &output, container, max_duration_s, end_s) {
                Ok(r) => Response::Written(r),
                Err(e) => Response::Failed(e),
            }
        }
        Request::Reencode { input, output, container, spec } => {
            match ffmpeg::reencode(&input, &output, container, &spec) {
                Ok(r) => Response::Written(r),
                Err(e) => Response::Failed(e),
            }
        }
    };
    let mut out = std::io::stdout().lock();
    match serde_json::to_writer(&mut out, &Envelope::new(answer)).map(|_| out.flush()) {
        Ok(_) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(2),
    }
}

/// If wanprep dies (killed, crashed), stop too: remove the partial output and exit, rather than
/// encode for nobody. A dead parent shows as a changed parent id (the process is re-parented).
fn watch_parent(partial_output: Option<std::path::PathBuf>) {
    let parent = std::os::unix::process::parent_id();
    std::thread::spawn(move || loop {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if std::os::unix::process::parent_id() != parent {
            if let Some(p) = &partial_output {
                let _ = std::fs::remove_file(p);
            }
            std::process::exit(3);
        }
    });
}
