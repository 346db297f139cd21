//! A local HTTP server on 127.0.0.1 for the remote-input tests, started by the tests
//! themselves. It serves `fixtures/` with behaviours chosen by the path prefix:
//!
//! | path | behaviour |
//! |---|---|
//! | `/range/F` | HEAD and GET with `Range` support (206, `Content-Range`) |
//! | `/norange/F` | `Range` ignored: always 200 with the whole body |
//! | `/nohead/F` | HEAD answers 405; GET supports `Range` |
//! | `/redirect/N/REST` | 302 to `/redirect/N-1/REST`, and at 0 to `/REST` |
//! | `/biglen/N/F` | HEAD declares N bytes; GET as `/range/F` |
//! | `/badlen/F` | HEAD declares 1000 bytes more than the file; ranges are clamped to the file |
//! | `/cut/F` | `Range` ignored; the body stops halfway and the connection closes |
//! | `/slow/MS/F` | waits MS milliseconds before answering, then as `/range/F` |
//! | `/flaky/F` | the first request for F answers 503, later ones as `/range/F` |
//! | `/status/CODE` | answers CODE |
//! | `/drip/MS/F` | headers at once (the whole length declared, `Range` ignored), then one body byte every MS milliseconds |
//! | `/endless` | 200 with no length and a body that never ends |
//!
//! Body bytes sent and requests (HEAD and GET separately) are counted.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, Response, Uri};
use axum::Router;
use futures_util::stream;

#[derive(Default)]
pub struct Stats {
    root: PathBuf,
    pub body_bytes: AtomicU64,
    pub gets: AtomicU64,
    pub heads: AtomicU64,
    flaky_seen: Mutex<HashMap<String, u32>>,
}

impl Stats {
    pub fn reset(&self) {
        self.body_bytes.store(0, Ordering::SeqCst);
        self.gets.store(0, Ordering::SeqCst);
        self.heads.store(0, Ordering::SeqCst);
    }
    pub fn bytes(&self) -> u64 {
        self.body_bytes.load(Ordering::SeqCst)
    }
    pub fn gets(&self) -> u64 {
        self.gets.load(Ordering::SeqCst)
    }
    /// Every request, HEAD and GET.
    pub fn requests(&self) -> u64 {
        self.gets() + self.heads.load(Ordering::SeqCst)
    }
}

pub struct TestServer {
    pub base: String,
    pub stats: Arc<Stats>,
    _runtime: tokio::runtime::Runtime,
}

impl TestServer {
    /// Serves `fixtures/`.
    pub fn start() -> TestServer {
        Self::start_in(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures"))
    }

    /// Serves the files under `root`.
    pub fn start_in(root: PathBuf) -> TestServer {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let stats = Arc::new(Stats { root, ..Stats::default() });
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().fallback(handle).with_state(stats.clone());
        runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
        TestServer { base: format!("http://{addr}"), stats, _runtime: runtime }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }
}

fn fixture(root: &std::path::Path, rel: &str) -> Option<Vec<u8>> {
    if rel.contains("..") {
        return None;
    }
    std::fs::read(root.join(rel)).ok()
}

fn status(code: u16) -> Response<Body> {
    Response::builder().status(code).body(Body::empty()).unwrap()
}

async fn handle(State(stats): State<Arc<Stats>>, method: Method, uri: Uri, headers: HeaderMap) -> Response<Body> {
    if method == Method::HEAD {
        stats.heads.fetch_add(1, Ordering::SeqCst);
    } else {
        stats.gets.fetch_add(1, Ordering::SeqCst);
    }
    let path = uri.path().trim_start_matches('/').to_string();
    let (mode, rest) = path.split_once('/').unwrap_or((path.as_str(), ""));
    match mode {
        "status" => status(rest.parse().unwrap_or(500)),
        "redirect" => {
            let (n, rest) = rest.split_once('/').unwrap_or(("0", ""));
            let n: u32 = n.parse().unwrap_or(0);
            let to = if n == 0 { format!("/{rest}") } else { format!("/redirect/{}/{rest}", n - 1) };
            Response::builder().status(302).header(header::LOCATION, to).body(Body::empty()).unwrap()
        }
        "slow" => {
            let (ms, rest) = rest.split_once('/').unwrap_or(("0", ""));
            tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
            serve(&stats, &method, &headers, rest, Serve::default())
        }
        "flaky" => {
            let first = {
                let mut seen = stats.flaky_seen.lock().unwrap();
                let n = seen.entry(rest.to_string()).or_default();
                *n += 1;
                *n == 1
            };
            if first {
                status(503)
            } else {
                serve(&stats, &method, &headers, rest, Serve::default())
            }
        }
        "range" => serve(&stats, &method, &headers, rest, Serve::default()),
        "norange" => serve(&stats, &method, &headers, rest, Serve { ignore_range: true, ..Serve::default() }),
        "nohead" => {
            if method == Method::HEAD {
                return status(405);
            }
            serve(&stats, &method, &headers, rest, Serve::default())
        }
        "biglen" => {
            let (n, rest) = rest.split_once('/').unwrap_or(("0", ""));
            serve(&stats, &method, &headers, rest, Serve { declared: n.parse().ok(), ..Serve::default() })
        }
        "badlen" => serve(&stats, &method, &headers, rest, Serve { extra_len: 1000, ..Serve::default() }),
        "cut" => serve(&stats, &method, &headers, rest, Serve { ignore_range: true, cut: true, ..Serve::default() }),
        "drip" => {
            let (ms, rest) = rest.split_once('/').unwrap_or(("1000", ""));
            let Some(data) = fixture(&stats.root, rest) else { return status(404) };
            let pause = Duration::from_millis(ms.parse().unwrap_or(1000));
            let b = Response::builder().status(200).header(header::CONTENT_LENGTH, data.len());
            if method == Method::HEAD {
                return b.body(Body::empty()).unwrap();
            }
            let stats2 = stats.clone();
            let body = stream::unfold((data, 0usize), move |(data, i)| {
                let stats = stats2.clone();
                async move {
                    if i >= data.len() {
                        return None;
                    }
                    tokio::time::sleep(pause).await;
                    stats.body_bytes.fetch_add(1, Ordering::SeqCst);
                    Some((Ok::<_, std::io::Error>(Bytes::copy_from_slice(&data[i..i + 1])), (data, i + 1)))
                }
            });
            b.body(Body::from_stream(body)).unwrap()
        }
        "endless" => endless(),
        _ => status(404),
    }
}

#[derive(Default)]
struct Serve {
    ignore_range: bool,
    declared: Option<u64>,
    extra_len: u64,
    cut: bool,
}

fn serve(stats: &Arc<Stats>, method: &Method, headers: &HeaderMap, rel: &str, how: Serve) -> Response<Body> {
    let Some(data) = fixture(&stats.root, rel) else { return status(404) };
    let len = data.len() as u64;
    let declared = how.declared.unwrap_or(len + how.extra_len);
    let accept = if how.ignore_range { "none" } else { "bytes" };
    if method == Method::HEAD {
        return Response::builder()
            .header(header::CONTENT_LENGTH, declared)
            .header(header::ACCEPT_RANGES, accept)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(Body::empty())
            .unwrap();
    }
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).and_then(parse_range);
    match range {
        Some((start, end)) if !how.ignore_range => {
            if start >= len {
                return Response::builder()
                    .status(416)
                    .header(header::CONTENT_RANGE, format!("bytes */{declared}"))
                    .body(Body::empty())
                    .unwrap();
            }
            let end = end.unwrap_or(u64::MAX).min(len - 1);
            let body = data[start as usize..=end as usize].to_vec();
            stats.body_bytes.fetch_add(body.len() as u64, Ordering::SeqCst);
            Response::builder()
                .status(206)
                .header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{declared}"))
                .header(header::CONTENT_LENGTH, body.len())
                .body(Body::from(body))
                .unwrap()
        }
        _ if how.cut => {
            // Declare the whole length, send half, then fail the stream: the connection closes.
            let half = Bytes::from(data[..data.len() / 2].to_vec());
            stats.body_bytes.fetch_add(half.len() as u64, Ordering::SeqCst);
            Response::builder().header(header::CONTENT_LENGTH, len).body(cut_after(half)).unwrap()
        }
        _ => {
            // Streamed in 16 KiB pieces and counted as they are handed to the socket, so a
            // client that stops reading early is not sent (much of) the rest.
            let stats = stats.clone();
            let body = stream::unfold((Bytes::from(data), 0usize), move |(data, pos)| {
                let stats = stats.clone();
                async move {
                    if pos >= data.len() {
                        return None;
                    }
                    let end = (pos + 16 * 1024).min(data.len());
                    stats.body_bytes.fetch_add((end - pos) as u64, Ordering::SeqCst);
                    Some((Ok::<_, std::io::Error>(data.slice(pos..end)), (data, end)))
                }
            });
            Response::builder()
                .header(header::CONTENT_LENGTH, len)
                .header(header::ACCEPT_RANGES, accept)
                .body(Body::from_stream(body))
                .unwrap()
        }
    }
}

/// `bytes=a-b` or `bytes=a-`.
fn parse_range(v: &str) -> Option<(u64, Option<u64>)> {
    let spec = v.strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    Some((a.trim().parse().ok()?, if b.trim().is_empty() { None } else { Some(b.trim().parse().ok()?) }))
}

/// A body that sends `first`, pauses (so the headers and those bytes reach the client), then
/// fails: the connection closes mid-body.
/// A 200 answer whose body never ends (64 KiB pieces of zeros, as fast as they are read).
pub fn endless() -> Response<Body> {
    let body =
        stream::unfold((), |()| async { Some((Ok::<_, std::io::Error>(Bytes::from(vec![0u8; 64 * 1024])), ())) });
    Response::builder().status(200).body(Body::from_stream(body)).unwrap()
}

pub fn cut_after(first: Bytes) -> Body {
    Body::from_stream(stream::unfold(0u8, move |step| {
        let first = first.clone();
        async move {
            match step {
                0 => Some((Ok(first), 1)),
                1 => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Some((Err(std::io::Error::other("cut")), 2))
                }
                _ => None,
            }
        }
    }))
}
