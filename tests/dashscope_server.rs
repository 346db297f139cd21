//! A protocol-faithful stand-in for DashScope on 127.0.0.1, started by the tests. It follows
//! `../shared/research/dashscope-protocol.md` and is strict where the service is:
//!
//! - API listener (`/api/v1/…`): create (`POST /services/aigc/image2video/video-synthesis`),
//!   query (`GET /tasks/{id}`), getPolicy (`GET /uploads?action=getPolicy&model=…`). Every call
//!   needs `Authorization: Bearer KEY`; create needs `X-DashScope-Async: enable`, a JSON body of
//!   exactly the documented shape, and `X-DashScope-OssResourceResolve: enable` iff an input is
//!   `oss://` (which must name an uploaded object).
//! - Storage listener (another port, so another origin): the OSS PostObject form at `/` (fields
//!   in the documented order, `file` last, a policy this server issued, no overwrite), and
//!   results at `/results/{task}.mp4` with `Range` support.
//! - Tasks go PENDING → RUNNING → SUCCEEDED as they are polled.
//!
//! Knobs make it throttle creates, fail tasks, answer polls with 5xx, hold or cut the create
//! answer, and serve results slowly or cut them off once. Every request is logged.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Multipart, Request, State};
use axum::http::{header, HeaderMap, Method, Response};
use axum::Router;
use futures_util::stream;
use serde::Deserialize;

pub const KEY: &str = "sk-test-0123456789abcdef-SECRET";
pub const MODEL: &str = "wan2.2-animate-move";

#[derive(Debug, Clone)]
pub struct Logged {
    pub listener: &'static str,
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub range: Option<String>,
    pub oss_resolve: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Task {
    pub image_url: String,
    pub video_url: String,
    pub mode: String,
    pub watermark: bool,
    pub polls: u32,
}

#[derive(Default)]
pub struct Knobs {
    /// The next N creates answer 429 Throttling with `Retry-After: 0`.
    pub throttle_creates: AtomicU32,
    /// The next N queries answer 503 (odd) or 500 (even).
    pub poll_errors: AtomicU32,
    /// Tasks end FAILED with this code and message.
    pub fail_with: Mutex<Option<(String, String)>>,
    /// Queries answer UNKNOWN.
    pub unknown: AtomicBool,
    /// Polls before a task succeeds.
    pub polls_to_finish: AtomicU32,
    /// Hold the create answer this long (ms) after recording the task.
    pub create_delay_ms: AtomicU32,
    /// Record the task, then cut the create answer's connection.
    pub cut_create: AtomicBool,
    /// Cut the next result download halfway (once).
    pub cut_result_once: AtomicBool,
    /// Send results in 16 KiB pieces with this pause (ms) between them.
    pub slow_result_ms: AtomicU32,
    /// Queries answer 302 to the storage host (a key must never follow it).
    pub redirect_queries: AtomicBool,
    /// The storage host answers the next form POST with "Policy expired".
    pub expire_policy_once: AtomicBool,
    /// Results are an endless body with no length.
    pub endless_result: AtomicBool,
    /// Results declare this many bytes (and send the real file).
    pub result_declares: std::sync::atomic::AtomicU64,
    /// The storage host answers form POSTs 500 with an endless body.
    pub endless_upload_error: AtomicBool,
    /// Queries answer about another task than the one asked for.
    pub wrong_task: AtomicBool,
}

#[derive(Default)]
pub struct Inner {
    pub log: Mutex<Vec<Logged>>,
    pub tasks: Mutex<HashMap<String, Task>>,
    pub objects: Mutex<HashMap<String, Vec<u8>>>,
    pub upload_dirs: Mutex<Vec<String>>,
    pub knobs: Knobs,
    pub result_file: PathBuf,
    pub storage_base: Mutex<String>,
    counter: AtomicU32,
    instance: u16,
}

pub struct Stand {
    pub api_base: String,
    pub state: Arc<Inner>,
    _rt: tokio::runtime::Runtime,
}

impl Stand {
    pub fn start() -> Stand {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let result_file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/video/mp4v_640x360.mp4");
        let instance = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() ^ (d.as_secs() as u32))
            .wrapping_add(std::process::id()) as u16;
        let state = Arc::new(Inner { result_file, instance, ..Inner::default() });
        state.knobs.polls_to_finish.store(2, Ordering::SeqCst);
        let api = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let storage = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let api_base = format!("http://{}", api.local_addr().unwrap());
        let storage_base = format!("http://{}", storage.local_addr().unwrap());
        *state.storage_base.lock().unwrap() = storage_base;
        let api_app = Router::new().fallback(api_handler).with_state(state.clone());
        let storage_app = Router::new().fallback(storage_handler).with_state(state.clone());
        rt.spawn(async move { axum::serve(api, api_app).await.unwrap() });
        rt.spawn(async move { axum::serve(storage, storage_app).await.unwrap() });
        Stand { api_base, state, _rt: rt }
    }

    pub fn log(&self) -> Vec<Logged> {
        self.state.log.lock().unwrap().clone()
    }

    pub fn count(&self, method: &str, path_prefix: &str) -> usize {
        self.log().iter().filter(|l| l.method == method && l.path.starts_with(path_prefix)).count()
    }

    pub fn creates(&self) -> usize {
        self.count("POST", "/api/v1/services/aigc/image2video/video-synthesis")
    }

    /// Form POSTs to the storage host.
    pub fn uploads(&self) -> usize {
        self.log().iter().filter(|l| l.listener == "storage" && l.method == "POST").count()
    }

    pub fn tasks(&self) -> HashMap<String, Task> {
        self.state.tasks.lock().unwrap().clone()
    }

    pub fn knobs(&self) -> &Knobs {
        &self.state.knobs
    }
}

fn json(status: u16, v: serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(v.to_string()))
        .unwrap()
}

fn api_error(status: u16, code: &str, message: &str) -> Response<Body> {
    json(status, serde_json::json!({"code": code, "message": message, "request_id": "req-err-1"}))
}

fn xml_error(status: u16, code: &str, message: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/xml")
        .body(Body::from(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>OSS-REQ-1</RequestId></Error>"
        )))
        .unwrap()
}

fn log(state: &Inner, listener: &'static str, method: &Method, path: &str, headers: &HeaderMap) {
    state.log.lock().unwrap().push(Logged {
        listener,
        method: method.to_string(),
        path: path.to_string(),
        authorization: headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_string),
        range: headers.get(header::RANGE).and_then(|v| v.to_str().ok()).map(str::to_string),
        oss_resolve: headers.get("x-dashscope-ossresourceresolve").and_then(|v| v.to_str().ok()).map(str::to_string),
    });
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    model: String,
    input: CreateInput,
    parameters: CreateParameters,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateInput {
    image_url: String,
    video_url: String,
    #[serde(default)]
    watermark: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateParameters {
    mode: String,
    #[serde(default)]
    #[allow(dead_code)] // validated as a bool by serde; its value changes nothing here
    check_image: Option<bool>,
}

async fn api_handler(State(state): State<Arc<Inner>>, req: Request) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    log(
        &state,
        "api",
        &parts.method,
        &format!("{path}{}", if query.is_empty() { String::new() } else { format!("?{query}") }),
        &parts.headers,
    );
    let auth = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    if auth.is_none() {
        return api_error(401, "InvalidApiKey", "No API-key provided.");
    }
    if auth != Some(&format!("Bearer {KEY}")) {
        return api_error(401, "InvalidApiKey", "Invalid API-key provided.");
    }
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    match (parts.method.as_str(), path.as_str()) {
        ("POST", "/api/v1/services/aigc/image2video/video-synthesis") => create(&state, &parts.headers, &body).await,
        ("GET", "/api/v1/uploads") => get_policy(&state, &query),
        ("GET", p) if p.starts_with("/api/v1/tasks/") => query_task(&state, &p["/api/v1/tasks/".len()..]),
        _ => api_error(404, "NotFound", "path not found"),
    }
}

async fn create(state: &Arc<Inner>, headers: &HeaderMap, body: &[u8]) -> Response<Body> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_ascii_lowercase);
    if header("x-dashscope-async").as_deref() != Some("enable") {
        return api_error(403, "AccessDenied", "current user api does not support synchronous calls");
    }
    if !header("content-type").is_some_and(|c| c.starts_with("application/json")) {
        return api_error(400, "InvalidParameter", "Content-Type must be application/json");
    }
    let k = &state.knobs;
    if k.throttle_creates.load(Ordering::SeqCst) > 0 {
        k.throttle_creates.fetch_sub(1, Ordering::SeqCst);
        let mut r = api_error(429, "Throttling.RateQuota", "Requests rate limit exceeded, please try again later.");
        r.headers_mut().insert(header::RETRY_AFTER, "0".parse().unwrap());
        return r;
    }
    let b: CreateBody = match serde_json::from_slice(body) {
        Ok(b) => b,
        Err(e) => return api_error(400, "InvalidParameter", &format!("Required parameter(s) missing or invalid: {e}")),
    };
    if b.model != MODEL {
        return api_error(400, "InvalidParameter", "Model not exist.");
    }
    if b.parameters.mode != "wan-std" && b.parameters.mode != "wan-pro" {
        return api_error(400, "InvalidParameter", "mode must be wan-std or wan-pro");
    }
    let resolve = header("x-dashscope-ossresourceresolve").as_deref() == Some("enable");
    let any_oss = b.input.image_url.starts_with("oss://") || b.input.video_url.starts_with("oss://");
    if resolve && !any_oss {
        return api_error(400, "InvalidParameter", "X-DashScope-OssResourceResolve is only for oss:// inputs");
    }
    for url in [&b.input.image_url, &b.input.video_url] {
        if let Some(key) = url.strip_prefix("oss://") {
            if !resolve {
                return api_error(
                    400,
                    "InvalidParameter.DataInspection",
                    "The media format is not supported or incorrect for the data inspection.",
                );
            }
            if !state.objects.lock().unwrap().contains_key(key) {
                return api_error(
                    400,
                    "InvalidParameter.DataInspection",
                    "Download the media resource failed: no such object.",
                );
            }
        } else if !(url.starts_with("http://") || url.starts_with("https://")) {
            return api_error(400, "InvalidURL", "Invalid URL provided in your request.");
        }
    }
    let n = state.counter.fetch_add(1, Ordering::SeqCst);
    // Unique across stand-ins and runs, as the service's ids are (journals outlive a test).
    let id = format!("0385dc79-{:04x}-4d82-bcb6-{n:012}", state.instance);
    state.tasks.lock().unwrap().insert(
        id.clone(),
        Task {
            image_url: b.input.image_url,
            video_url: b.input.video_url,
            mode: b.parameters.mode,
            watermark: b.input.watermark.unwrap_or(false),
            polls: 0,
        },
    );
    let delay = k.create_delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay.into())).await;
    }
    let answer = serde_json::json!({"output": {"task_status": "PENDING", "task_id": id}, "request_id": "req-create-1"});
    if k.cut_create.load(Ordering::SeqCst) {
        // Headers, then an error instead of the body: the client sees the connection die.
        let body = stream::iter(vec![Err::<Bytes, _>(std::io::Error::other("cut"))]);
        return Response::builder()
            .status(200)
            .header(header::CONTENT_LENGTH, answer.to_string().len())
            .body(Body::from_stream(body))
            .unwrap();
    }
    json(200, answer)
}

fn get_policy(state: &Arc<Inner>, query: &str) -> Response<Body> {
    let pairs: HashMap<&str, &str> = query.split('&').filter_map(|p| p.split_once('=')).collect();
    if pairs.get("action") != Some(&"getPolicy") || pairs.get("model") != Some(&MODEL) {
        return api_error(400, "InvalidParameter", "action=getPolicy and model are required");
    }
    let n = state.counter.fetch_add(1, Ordering::SeqCst);
    let dir = format!("dashscope-instant/acct/2026-11-25/u{n}");
    state.upload_dirs.lock().unwrap().push(dir.clone());
    let host = state.storage_base.lock().unwrap().clone();
    json(
        200,
        serde_json::json!({"request_id": "req-policy", "data": {
            "policy": format!("policy-{n}"), "signature": format!("sig-{n}"), "upload_dir": dir,
            "upload_host": host, "expire_in_seconds": "300", "max_file_size_mb": 100,
            "capacity_limit_mb": 999999999, "oss_access_key_id": "LTAI-test",
            "x_oss_object_acl": "private", "x_oss_forbid_overwrite": "true"}}),
    )
}

fn query_task(state: &Arc<Inner>, id: &str) -> Response<Body> {
    let k = &state.knobs;
    if k.redirect_queries.load(Ordering::SeqCst) {
        let to = format!("{}/steal/{id}", state.storage_base.lock().unwrap());
        return Response::builder().status(302).header(header::LOCATION, to).body(Body::empty()).unwrap();
    }
    if k.poll_errors.load(Ordering::SeqCst) > 0 {
        let left = k.poll_errors.fetch_sub(1, Ordering::SeqCst);
        return if left % 2 == 1 {
            let mut r = api_error(503, "ServiceUnavailable", "busy");
            r.headers_mut().insert(header::RETRY_AFTER, "0".parse().unwrap());
            r
        } else {
            api_error(500, "InternalError", "An internal error has occured, please try again later.")
        };
    }
    if k.wrong_task.load(Ordering::SeqCst) {
        return json(
            200,
            serde_json::json!({"request_id": "req-q", "output": {"task_id": "someone-elses-task", "task_status": "SUCCEEDED",
                "results": {"video_url": "http://127.0.0.1:9/stolen.mp4"}}}),
        );
    }
    let mut tasks = state.tasks.lock().unwrap();
    let Some(task) = tasks.get_mut(id) else {
        return json(
            200,
            serde_json::json!({"request_id": "req-q", "output": {"task_id": id, "task_status": "UNKNOWN"}}),
        );
    };
    if k.unknown.load(Ordering::SeqCst) {
        return json(
            200,
            serde_json::json!({"request_id": "req-q", "output": {"task_id": id, "task_status": "UNKNOWN"}}),
        );
    }
    task.polls += 1;
    let finish = k.polls_to_finish.load(Ordering::SeqCst);
    let times = serde_json::json!("2026-11-25 15:32:00.105");
    if task.polls <= 1 && finish > 1 {
        return json(
            200,
            serde_json::json!({"request_id": "req-q", "output": {"task_id": id, "task_status": "PENDING", "submit_time": times}}),
        );
    }
    if task.polls < finish {
        return json(
            200,
            serde_json::json!({"request_id": "req-q", "output": {"task_id": id, "task_status": "RUNNING", "submit_time": times}}),
        );
    }
    if let Some((code, message)) = k.fail_with.lock().unwrap().clone() {
        return json(
            200,
            serde_json::json!({"request_id": "req-q", "output": {
            "task_id": id, "task_status": "FAILED", "code": code, "message": message}}),
        );
    }
    let storage = state.storage_base.lock().unwrap().clone();
    json(
        200,
        serde_json::json!({"request_id": "req-q",
            "output": {"task_id": id, "task_status": "SUCCEEDED", "submit_time": times,
                "scheduled_time": "2026-11-25 15:32:15.066", "end_time": "2026-11-25 15:34:41.898",
                "results": {"video_url": format!("{storage}/results/{id}.mp4?Expires=1795700000&Signature=abc")}},
            "usage": {"video_duration": 3.0, "video_ratio": "standard"}}),
    )
}

/// The documented fields, in the documented order (the file comes after them).
const FORM_ORDER: [&str; 7] = [
    "OSSAccessKeyId",
    "policy",
    "Signature",
    "key",
    "x-oss-object-acl",
    "x-oss-forbid-overwrite",
    "success_action_status",
];

async fn storage_handler(State(state): State<Arc<Inner>>, req: Request) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    log(&state, "storage", &parts.method, &path, &parts.headers);
    if parts.headers.contains_key(header::AUTHORIZATION) {
        return xml_error(400, "InvalidArgument", "Authorization header is not expected with a POST policy");
    }
    if parts.method == Method::POST && path == "/" {
        let req = Request::from_parts(parts, body);
        let multipart = match <Multipart as axum::extract::FromRequest<()>>::from_request(req, &()).await {
            Ok(m) => m,
            Err(e) => return xml_error(400, "InvalidArgument", &format!("not a form: {e}")),
        };
        return post_object(&state, multipart).await;
    }
    if parts.method == Method::GET && path.starts_with("/results/") {
        return result(&state, &parts.headers).await;
    }
    xml_error(404, "NoSuchKey", "The specified key does not exist.")
}

async fn post_object(state: &Arc<Inner>, mut form: Multipart) -> Response<Body> {
    if state.knobs.endless_upload_error.load(Ordering::SeqCst) {
        let mut r = crate::http_server::endless();
        *r.status_mut() = axum::http::StatusCode::INTERNAL_SERVER_ERROR;
        return r;
    }
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut file: Option<Vec<u8>> = None;
    loop {
        match form.next_field().await {
            Ok(Some(f)) => {
                let name = f.name().unwrap_or("").to_string();
                if file.is_some() {
                    return xml_error(400, "InvalidArgument", "file must be the last form field");
                }
                if name == "file" {
                    file = Some(f.bytes().await.map(|b| b.to_vec()).unwrap_or_default());
                } else {
                    fields.push((name, f.text().await.unwrap_or_default()));
                }
            }
            Ok(None) => break,
            Err(e) => return xml_error(400, "InvalidArgument", &format!("bad form: {e}")),
        }
    }
    let Some(file) = file else { return xml_error(400, "InvalidArgument", "no file field") };
    let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
    if names != FORM_ORDER {
        return xml_error(400, "InvalidArgument", &format!("form fields out of order: {names:?}"));
    }
    let get = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()).unwrap_or_default();
    if state.knobs.expire_policy_once.swap(false, Ordering::SeqCst) {
        return xml_error(403, "AccessDenied", "Invalid according to Policy: Policy expired.");
    }
    let key = get("key");
    let policy = get("policy");
    let n = policy.strip_prefix("policy-").unwrap_or("x");
    if get("Signature") != format!("sig-{n}") || get("OSSAccessKeyId") != "LTAI-test" {
        return xml_error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match.");
    }
    let dirs = state.upload_dirs.lock().unwrap().clone();
    if !dirs.iter().any(|d| key.starts_with(&format!("{d}/")) && d.ends_with(&format!("u{n}"))) {
        return xml_error(403, "AccessDenied", "Invalid according to Policy: key is outside the upload_dir.");
    }
    if get("success_action_status") != "200" {
        return Response::builder().status(204).body(Body::empty()).unwrap();
    }
    let mut objects = state.objects.lock().unwrap();
    if objects.contains_key(&key) && get("x-oss-forbid-overwrite") == "true" {
        return xml_error(
            409,
            "FileAlreadyExists",
            "The object you specified already exists and can not be overwritten.",
        );
    }
    objects.insert(key, file);
    Response::builder().status(200).body(Body::empty()).unwrap()
}

async fn result(state: &Arc<Inner>, headers: &HeaderMap) -> Response<Body> {
    if state.knobs.endless_result.load(Ordering::SeqCst) {
        return crate::http_server::endless();
    }
    let data = std::fs::read(&state.result_file).unwrap();
    let declared = state.knobs.result_declares.load(Ordering::SeqCst);
    if declared > 0 {
        // A stream, so the declared length is sent as it is; after the real bytes it stalls
        // (ending short of the declared length would make the server drop the connection).
        use futures_util::StreamExt;
        let body = stream::iter([Ok::<_, std::io::Error>(Bytes::from(data))]).chain(stream::pending());
        return Response::builder()
            .status(200)
            .header(header::CONTENT_LENGTH, declared)
            .body(Body::from_stream(body))
            .unwrap();
    }
    let len = data.len();
    let start = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.split('-').next())
        .and_then(|v| v.parse::<usize>().ok());
    let (status, from) = match start {
        Some(s) if s >= len => {
            return Response::builder()
                .status(416)
                .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                .body(Body::empty())
                .unwrap()
        }
        Some(s) => (206, s),
        None => (200, 0),
    };
    let slice = Bytes::from(data[from..].to_vec());
    let mut b = Response::builder()
        .status(status)
        .header(header::CONTENT_LENGTH, slice.len())
        .header(header::ACCEPT_RANGES, "bytes");
    if status == 206 {
        b = b.header(header::CONTENT_RANGE, format!("bytes {from}-{}/{len}", len - 1));
    }
    let k = &state.knobs;
    if k.cut_result_once.swap(false, Ordering::SeqCst) {
        return b.body(crate::http_server::cut_after(slice.slice(..slice.len() / 2))).unwrap();
    }
    let pause = k.slow_result_ms.load(Ordering::SeqCst);
    if pause > 0 {
        let pieces: Vec<Bytes> = slice.chunks(16 * 1024).map(Bytes::copy_from_slice).collect();
        let body = stream::unfold(pieces.into_iter(), move |mut it| async move {
            let next = it.next()?;
            tokio::time::sleep(Duration::from_millis(pause.into())).await;
            Some((Ok::<_, std::io::Error>(next), it))
        });
        return b.body(Body::from_stream(body)).unwrap();
    }
    b.body(Body::from(slice)).unwrap()
}
