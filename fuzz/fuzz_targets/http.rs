#![no_main]
//! Whole HTTP responses (status line, headers, body framing: lengths, chunking, truncation),
//! served raw from 127.0.0.1 to wanprep's remote probe (HEAD, range GETs, streaming) and to the
//! result download, and their bodies to the API answer readers. Every read must end — in a
//! finding, an error or a file — within its deadline, never in a panic or a hang.
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use wanprep::probe::HttpOptions;
use wanprep::{check_input, CheckOptions, InputSpec};

/// A server that answers every connection with the current fuzz input, then closes it.
fn server() -> &'static (String, Arc<Mutex<Vec<u8>>>) {
    static SERVER: OnceLock<(String, Arc<Mutex<Vec<u8>>>)> = OnceLock::new();
    SERVER.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/clip.mp4", listener.local_addr().expect("addr"));
        let answer = Arc::new(Mutex::new(Vec::new()));
        let shared = answer.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut s = stream;
                let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
                let mut req = [0u8; 4096];
                let _ = s.read(&mut req);
                let bytes = shared.lock().map(|b| b.clone()).unwrap_or_default();
                let _ = s.write_all(&bytes);
            }
        });
        (url, answer)
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (url, answer) = server();
    *answer.lock().expect("lock") = data.to_vec();
    let http = HttpOptions::default()
        .timeouts(Duration::from_millis(500), Duration::from_millis(500))
        .retries(0, Duration::from_millis(1))
        .deadline(Duration::from_secs(2));
    for role in [None, Some(wanprep::Role::Video)] {
        let opts = CheckOptions { http: http.clone(), ..CheckOptions::default() };
        let r = check_input(&InputSpec::new(url.clone(), role), &opts);
        assert!(r.error.is_some() || r.media.is_some() || !r.findings.is_empty());
    }
    if let Ok(client) = wanprep::internals::http_client(&http) {
        let dir = std::env::temp_dir().join(format!("wanprep-fuzz-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        // Retries of a broken answer would take seconds: stop them after a moment.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let timer = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            timer.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        let out = dir.join("r.mp4");
        let _ = wanprep::internals::download(&client, url, &out, "t", Some(&stop), 1 << 20, |_, _| {});
    }
    // The body, whatever its framing, as the API readers see it.
    let body = data.windows(4).position(|w| w == b"\r\n\r\n").map_or(data, |i| &data[i + 4..]);
    let _ = serde_json::from_slice::<wanprep::client::TaskResponse>(body);
    let _ = wanprep::client::ApiError::from_body(500, body, None);
});
