//! An axum service that checks an uploaded file before a job is paid for: `POST
//! /check?role=image|video` with the file as the body answers the check report as JSON (200
//! when the service would accept it, 422 when not). The check runs on tokio's blocking pool
//! through `wanprep::asynch`, so the server keeps answering meanwhile.
//!
//! ```sh
//! cargo run --example axum_check -- 127.0.0.1:8080
//! curl --data-binary @dance.mp4 'http://127.0.0.1:8080/check?role=video'
//! ```

use std::io::Write;

use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use wanprep::{asynch, CheckOptions, Role};

async fn check(uri: Uri, body: Bytes) -> Response {
    let role = match uri.query().and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("role="))) {
        Some("image") => Some(Role::Image),
        Some("video") => Some(Role::Video),
        None => None,
        Some(_) => return (StatusCode::BAD_REQUEST, "role is image or video\n").into_response(),
    };
    // The upload goes to a private temporary file (removed when `file` is dropped): the probe
    // reads headers from a file, and videos are checked by the FFmpeg helper from a path.
    let stored = tokio::task::spawn_blocking(move || -> std::io::Result<tempfile::NamedTempFile> {
        let mut file = tempfile::NamedTempFile::new()?;
        file.write_all(&body)?;
        file.flush()?;
        Ok(file)
    })
    .await;
    let Ok(Ok(file)) = stored else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "cannot store the upload\n").into_response();
    };
    let mut report = asynch::check_file(file.path(), role, CheckOptions::default()).await;
    report.input = "upload".into();
    let status = if report.compliant { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let json = serde_json::to_string_pretty(&report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    (status, [(header::CONTENT_TYPE, "application/json")], json).into_response()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8080".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    std::io::stdout().flush()?;
    // The largest input the API takes (a 200 MB video) plus one byte, so a bigger one is judged.
    let app = Router::new().route("/check", post(check)).layer(DefaultBodyLimit::max(200_000_001));
    axum::serve(listener, app).await?;
    Ok(())
}
