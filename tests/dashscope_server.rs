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
    /// When the request arrived (for the rate measurements).
    pub at: std::time::Instant,
}

#[derive(Debug, Clone)]
pub struct Task {
    pub image_url: String,
    pub video_url: String,
    pub mode: String,
    pub watermark: bool,
    pub polls: u32,
    /// Creation time, Unix milliseconds (the list's `gmt_create`).
    pub created_ms: i64,
    pub canceled: bool,
    /// Made by another client of the account (not through wanprep).
    pub foreign: bool,
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
    /// Creates record the task, then answer 500 InternalError (a task exists, the client
    /// cannot know).
    pub create_500_after_record: AtomicBool,
    /// Tasks stay PENDING however often they are polled (they can be canceled meanwhile).
    pub hold_pending: AtomicBool,
    /// The list reads start_time/end_time as UTC (default: UTC+8, as the service's other times).
    pub list_in_utc: AtomicBool,
    /// The list answers 500.
    pub list_fails: AtomicBool,
    /// getPolicy answers 403 AccessDenied (temporary storage not offered here).
    pub refuse_policy: AtomicBool,
    /// Hold the list answer this long (ms).
    pub list_delay_ms: AtomicU32,
    /// Creates are refused with this HTTP status and code (`Retry-After: 0` on 429).
    pub refuse_create_with: Mutex<Option<(u16, String)>>,
    /// The next N result downloads answer 403 (an expired link).
    pub result_403: AtomicU32,
    /// Every request waits this long (ms) before it is answered (a distant service).
    pub latency_ms: AtomicU32,
    /// Form POSTs being handled now, and the most at once.
    pub uploads_now: AtomicU32,
    pub uploads_peak: AtomicU32,
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

    /// A task made by another client of the same account, `age_s` seconds ago.
    pub fn add_foreign_task(&self, age_s: i64) -> String {
        let n = self.state.counter.fetch_add(1, Ordering::SeqCst);
        let id = format!("f0reign00-{:04x}-4d82-bcb6-{n:012}", self.state.instance);
        let created_ms = now_ms() - age_s * 1000;
        self.state.tasks.lock().unwrap().insert(
            id.clone(),
            Task {
                image_url: "https://example.com/other.png".into(),
                video_url: "https://example.com/other.mp4".into(),
                mode: "wan-std".into(),
                watermark: false,
                polls: 0,
                created_ms,
                canceled: false,
                foreign: true,
            },
        );
        id
    }

    /// The most API requests that arrived within any one second.
    pub fn max_api_requests_per_second(&self) -> usize {
        let times: Vec<std::time::Instant> = self.log().iter().filter(|l| l.listener == "api").map(|l| l.at).collect();
        (0..times.len())
            .map(|i| times[i..].iter().take_while(|t| t.duration_since(times[i]) < Duration::from_secs(1)).count())
            .max()
            .unwrap_or(0)
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
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
        at: std::time::Instant::now(),
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

async fn latency(state: &Inner) {
    let ms = state.knobs.latency_ms.load(Ordering::SeqCst);
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms.into())).await;
    }
}

async fn api_handler(State(state): State<Arc<Inner>>, req: Request) -> Response<Body> {
    latency(&state).await;
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
        ("GET", "/api/v1/tasks" | "/api/v1/tasks/") => {
            let delay = state.knobs.list_delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay.into())).await;
            }
            list_tasks(&state, &query)
        }
        ("POST", p) if p.starts_with("/api/v1/tasks/") && p.ends_with("/cancel") => {
            if !body.is_empty() {
                return api_error(400, "InvalidParameter", "cancel takes no body");
            }
            cancel_task(&state, &p["/api/v1/tasks/".len()..p.len() - "/cancel".len()])
        }
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
    if let Some((status, code)) = k.refuse_create_with.lock().unwrap().clone() {
        let mut r = api_error(status, &code, "refused by the stand-in");
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
            created_ms: now_ms(),
            canceled: false,
            foreign: false,
        },
    );
    if k.create_500_after_record.load(Ordering::SeqCst) {
        return api_error(
            500,
            "InternalError",
            "An internal error has occured, please try again later or contact service support.",
        );
    }
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

/// The status a task shows now (without counting a poll).
fn current_status(k: &Knobs, t: &Task) -> &'static str {
    let finish = k.polls_to_finish.load(Ordering::SeqCst);
    if t.canceled {
        "CANCELED"
    } else if k.hold_pending.load(Ordering::SeqCst) || t.polls == 0 || (t.polls <= 1 && finish > 1) {
        "PENDING"
    } else if t.polls < finish {
        "RUNNING"
    } else {
        "SUCCEEDED"
    }
}

/// `YYYYMMDDhhmmss` → Unix seconds, read in the zone `offset_s` east of UTC.
fn parse_compact(s: &str, offset_s: i64) -> Option<i64> {
    if s.len() != 14 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (n(0..4)?, n(4..6)?, n(6..8)?, n(8..10)?, n(10..12)?, n(12..14)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 59 {
        return None;
    }
    // Days from civil (Howard Hinnant), as the service would.
    let (yy, mm) = if mo <= 2 { (y - 1, mo + 9) } else { (y, mo - 3) };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * mm + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se - offset_s)
}

/// The documented batch query: `start_time`/`end_time` (`YYYYMMDDhhmmss`, span at most 24 h,
/// defaults: the last 24 h), `model_name`, `status`, `page_no`, `page_size`; newest first.
fn list_tasks(state: &Arc<Inner>, query: &str) -> Response<Body> {
    let k = &state.knobs;
    if k.list_fails.load(Ordering::SeqCst) {
        return api_error(500, "InternalError", "An internal error has occured, please try again later.");
    }
    let q: HashMap<String, String> =
        reqwest::Url::parse(&format!("http://list/?{query}")).unwrap().query_pairs().into_owned().collect();
    let offset = if k.list_in_utc.load(Ordering::SeqCst) { 0 } else { 8 * 3600 };
    let bad = |m: &str| api_error(400, "InvalidParameter", m);
    let now_s = now_ms() / 1000;
    let end = match q.get("end_time") {
        Some(e) => match parse_compact(e, offset) {
            Some(t) => t,
            None => return bad("end_time must be YYYYMMDDhhmmss"),
        },
        None => now_s,
    };
    let start = match q.get("start_time") {
        Some(e) => match parse_compact(e, offset) {
            Some(t) => t,
            None => return bad("start_time must be YYYYMMDDhhmmss"),
        },
        None => end - 86_400,
    };
    if end < start || end - start > 86_400 {
        return bad("the time span must be at most 24 hours");
    }
    let page_no: usize = match q.get("page_no").map(|p| p.parse()) {
        None => 1,
        Some(Ok(p)) if p >= 1 => p,
        _ => return bad("page_no must be a positive integer"),
    };
    let page_size: usize = match q.get("page_size").map(|p| p.parse()) {
        None => 10,
        Some(Ok(p)) if (1..=100).contains(&p) => p,
        _ => return bad("page_size must be between 1 and 100"),
    };
    let tasks = state.tasks.lock().unwrap();
    let mut rows: Vec<(&String, &Task)> = tasks
        .iter()
        .filter(|(_, t)| (start * 1000..=end * 1000 + 999).contains(&t.created_ms))
        .filter(|_| q.get("model_name").is_none_or(|m| m == MODEL))
        .filter(|(_, t)| q.get("status").is_none_or(|s| s == current_status(k, t)))
        .collect();
    rows.sort_by_key(|(_, t)| std::cmp::Reverse(t.created_ms));
    let total = rows.len();
    let data: Vec<serde_json::Value> = rows
        .iter()
        .skip((page_no - 1) * page_size)
        .take(page_size)
        .map(|(id, t)| {
            serde_json::json!({"api_key_id": "1234", "caller_parent_id": "1000000000000001",
                "caller_uid": "1000000000000001", "gmt_create": t.created_ms, "start_time": t.created_ms + 1000,
                "end_time": t.created_ms + 60_000, "model_name": MODEL, "region": "cn-beijing",
                "request_id": "req-create-1", "status": current_status(k, t), "task_id": id,
                "user_api_unique_key": "apikey:v1:x:wanx:wan2.2-animate-move"})
        })
        .collect();
    json(
        200,
        serde_json::json!({"total": total, "data": data, "total_page": total.div_ceil(page_size),
            "page_no": page_no, "page_size": page_size, "request_id": "req-list"}),
    )
}

/// Cancel: PENDING tasks only; anything else is the documented 400 UnsupportedOperation.
fn cancel_task(state: &Arc<Inner>, id: &str) -> Response<Body> {
    let mut tasks = state.tasks.lock().unwrap();
    let Some(task) = tasks.get_mut(id) else {
        return api_error(
            400,
            "UnsupportedOperation",
            "Failed to cancel the task, please confirm if the task is in PENDING status.",
        );
    };
    if current_status(&state.knobs, task) != "PENDING" {
        return api_error(
            400,
            "UnsupportedOperation",
            "Failed to cancel the task, please confirm if the task is in PENDING status.",
        );
    }
    task.canceled = true;
    json(200, serde_json::json!({"request_id": "req-cancel"}))
}

fn get_policy(state: &Arc<Inner>, query: &str) -> Response<Body> {
    if state.knobs.refuse_policy.load(Ordering::SeqCst) {
        return api_error(403, "AccessDenied", "Access denied: temporary storage is not available.");
    }
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
    if task.canceled || k.hold_pending.load(Ordering::SeqCst) {
        let status = if task.canceled { "CANCELED" } else { "PENDING" };
        return json(200, serde_json::json!({"request_id": "req-q", "output": {"task_id": id, "task_status": status}}));
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
        let k = &state.knobs;
        let now = k.uploads_now.fetch_add(1, Ordering::SeqCst) + 1;
        k.uploads_peak.fetch_max(now, Ordering::SeqCst);
        latency(&state).await;
        let req = Request::from_parts(parts, body);
        let answer = match <Multipart as axum::extract::FromRequest<()>>::from_request(req, &()).await {
            Ok(m) => post_object(&state, m).await,
            Err(e) => xml_error(400, "InvalidArgument", &format!("not a form: {e}")),
        };
        k.uploads_now.fetch_sub(1, Ordering::SeqCst);
        return answer;
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
    let expired = &state.knobs.result_403;
    if expired.load(Ordering::SeqCst) > 0 {
        expired.fetch_sub(1, Ordering::SeqCst);
        return xml_error(403, "AccessDenied", "Request has expired.");
    }
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
