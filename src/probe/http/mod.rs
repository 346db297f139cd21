//! Remote inputs: an HTTP(S) [`ByteSource`] that reads with `Range` requests through a block
//! cache, or — when the server ignores `Range` — from the streamed body, stopping as soon as the
//! probe has what it needs and never past a byte budget.
//!
//! [`open`] first asks for the first 16 KiB with a ranged GET (its answer gives the length and
//! the bytes most headers live in), following redirects itself so that every hop is recorded and re-checked, and resolving every
//! host so that the rules can tell whether the service could reach it ([`RemoteFacts`]).
//! Transient failures (connection reset, timeouts, 502/503/504) are retried a bounded number of
//! times with jittered exponential backoff.

use std::io::Read;
use std::net::{IpAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE};
use reqwest::{StatusCode, Url};
use serde::Serialize;

pub use crate::net::is_non_public;
use crate::net::{chain, describe, install_crypto};

/// The first request asks for this many leading bytes (the headers of most files, and the
/// boxes before a `moov`); later requests are sized to what the parsers ask for.
pub const FIRST_READ: u64 = 16 * 1024;

/// Settings for remote reads.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpOptions {
    /// Time allowed to establish a connection.
    pub connect_timeout: Duration,
    /// Time allowed for each read or write on a connection.
    pub read_timeout: Duration,
    /// Most redirects followed.
    pub max_redirects: u32,
    /// Extra attempts for a transient failure.
    pub retries: u32,
    /// First backoff delay (doubled per attempt, jittered, capped at 2 s).
    pub backoff: Duration,
    /// Time allowed for everything one URL takes (all requests, redirects, retries and body
    /// reads): a server that sends a byte a second cannot hold a check for longer.
    pub deadline: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            max_redirects: 5,
            retries: 2,
            backoff: Duration::from_millis(200),
            deadline: Duration::from_secs(60),
        }
    }
}

impl HttpOptions {
    /// Sets both timeouts.
    pub fn timeouts(mut self, connect: Duration, read: Duration) -> Self {
        self.connect_timeout = connect;
        self.read_timeout = read;
        self
    }

    /// Sets the number of retries and the first backoff delay.
    pub fn retries(mut self, retries: u32, backoff: Duration) -> Self {
        self.retries = retries;
        self.backoff = backoff;
        self
    }

    /// Sets the total time allowed per URL.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }
}

/// The error for a URL that took longer than its deadline.
pub(super) fn past_deadline(opts: &HttpOptions) -> String {
    format!("the URL took longer than the {:.0} s allowed for it", opts.deadline.as_secs_f64())
}

/// A host met on the way to the resource, with the addresses it resolved to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostAddresses {
    /// Host name or literal address.
    pub host: String,
    /// What it resolved to.
    pub addresses: Vec<IpAddr>,
}

/// What the HTTP exchange showed about a remote input.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct RemoteFacts {
    /// The URL after redirects.
    pub final_url: String,
    /// Each redirect target, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub redirects: Vec<String>,
    /// HTTP status of the final answer.
    pub status: u16,
    /// `Content-Type`, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Declared length in bytes, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_length: Option<u64>,
    /// Whether the server answered a range request with 206.
    pub range_supported: bool,
    /// Whether the whole body had to be read (no range support and data at the end).
    pub whole_body_read: bool,
    /// Every host on the way, resolved (for the `url.public` rule).
    #[serde(skip)]
    pub hosts: Vec<HostAddresses>,
    /// Body bytes received.
    #[serde(skip)]
    pub bytes_fetched: u64,
    /// Requests sent (HEAD and GET, retries included).
    pub requests: u32,
    /// Whether a read wanted bytes past the body budget (a server without range support and a
    /// file over the size limit): what lies there was not seen, so its absence proves nothing.
    #[serde(skip)]
    pub budget_exceeded: bool,
}

/// Why a remote input could not be read at all (no HTTP answer), with the error behind it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct NetworkError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl NetworkError {
    pub(crate) fn new(message: impl Into<String>) -> NetworkError {
        NetworkError { message: message.into(), source: None }
    }

    pub(crate) fn caused(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> NetworkError {
        NetworkError { message: message.into(), source: Some(source.into()) }
    }
}

/// The result of [`open`]: a readable source, or an HTTP answer that is not a success.
pub enum Opened {
    /// 2xx: the body can be read.
    Readable(Box<HttpSource>),
    /// The final answer was not a success (4xx, 5xx, a redirect loop…).
    Failed {
        /// What the exchange showed.
        facts: RemoteFacts,
        /// What went wrong, for people.
        reason: String,
    },
}

/// A client for remote probing: no automatic redirects (each hop is checked), no proxies from
/// the environment, rustls with the ring provider.
pub fn client(opts: &HttpOptions) -> Result<Client, NetworkError> {
    install_crypto();
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(opts.connect_timeout)
        .timeout(opts.read_timeout)
        .user_agent(concat!("wanprep/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| NetworkError::caused(format!("cannot set up HTTP: {}", chain(&e)), e))
}

/// Asks for a resource's headers, following redirects (each recorded and re-checked).
/// `max_body` bounds how much of a body is ever read (the size limit + 1).
pub fn open(url: &str, opts: &HttpOptions, max_body: u64) -> Result<Opened, NetworkError> {
    let deadline_at = Instant::now() + opts.deadline;
    let client = client(opts)?;
    let mut facts = RemoteFacts::default();
    let mut current = Url::parse(url).map_err(|e| NetworkError::caused(format!("not a valid URL: {e}"), e))?;
    let mut hops = 0;
    loop {
        resolve_host(&current, &mut facts)?;
        // A ranged GET rather than a HEAD: the answer carries the length (Content-Range) and the
        // first bytes the parsers read, in one request; signed object-storage URLs that refuse
        // HEAD accept it.
        let request = || client.get(current.clone()).header(RANGE, format!("bytes=0-{}", FIRST_READ - 1));
        let resp = send(&request, opts, &mut facts, deadline_at)?;
        let status = resp.status();
        facts.status = status.as_u16();
        if status.is_redirection() {
            let Some(location) = resp.headers().get(LOCATION).and_then(|l| l.to_str().ok()) else {
                return Ok(failed(facts, format!("HTTP {status} without a Location header")));
            };
            let next =
                current.join(location).map_err(|e| NetworkError::caused(format!("bad redirect target: {e}"), e))?;
            hops += 1;
            if hops > opts.max_redirects {
                return Ok(failed(facts, format!("more than {} redirects", opts.max_redirects)));
            }
            if !matches!(next.scheme(), "http" | "https") {
                return Ok(failed(facts, format!("redirected to a {}: URL, which cannot be fetched", next.scheme())));
            }
            facts.redirects.push(next.to_string());
            current = next;
            continue;
        }
        // An empty resource answers a range request with 416 and its length (`*/0`).
        let empty = status == StatusCode::RANGE_NOT_SATISFIABLE && total_from_content_range(&resp) == Some(0);
        if !status.is_success() && !empty {
            let reason = status.canonical_reason().unwrap_or("error");
            return Ok(failed(facts, format!("the server answered HTTP {} {reason}", status.as_u16())));
        }
        facts.status = if empty { 200 } else { facts.status };
        facts.final_url = current.to_string();
        facts.content_type = resp.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(|s| s.to_string());
        let (length, mode, initial) = if empty {
            (Some(0), Mode::Ranges, Vec::new())
        } else if status == StatusCode::PARTIAL_CONTENT {
            facts.range_supported = true;
            let length = total_from_content_range(&resp);
            let mut first = Vec::new();
            let read = resp.take(FIRST_READ).read_to_end(&mut first);
            if read.is_err() && Instant::now() >= deadline_at {
                return Err(NetworkError::new(past_deadline(opts)));
            }
            facts.bytes_fetched += first.len() as u64;
            (length, Mode::Ranges, first)
        } else {
            // A 200 to a range request: the whole body is coming. Read on from it.
            (header_u64(&resp, CONTENT_LENGTH), Mode::Stream { resp: Some(resp), pos: 0 }, Vec::new())
        };
        facts.content_length = length;
        return HttpSource::new(client, current, length, initial, facts, max_body, opts.clone(), mode, deadline_at)
            .map(|s| Opened::Readable(Box::new(s)));
    }
}

fn failed(mut facts: RemoteFacts, reason: String) -> Opened {
    if facts.final_url.is_empty() {
        facts.final_url = facts.redirects.last().cloned().unwrap_or_default();
    }
    Opened::Failed { facts, reason }
}

/// Resolves the URL's host (DNS failures are network errors: there is no answer at all).
fn resolve_host(url: &Url, facts: &mut RemoteFacts) -> Result<(), NetworkError> {
    let host = url.host_str().ok_or_else(|| NetworkError::new("the URL has no host"))?;
    let port = url.port_or_known_default().unwrap_or(80);
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addresses: Vec<IpAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => (bare, port)
            .to_socket_addrs()
            .map_err(|e| NetworkError::caused(format!("cannot resolve host '{host}': {e}"), e))?
            .map(|a| a.ip())
            .collect(),
    };
    if !facts.hosts.iter().any(|h| h.host == host) {
        facts.hosts.push(HostAddresses { host: host.to_string(), addresses });
    }
    Ok(())
}

/// Sends a request, retrying transient failures with jittered exponential backoff, never past
/// `deadline_at` (the request's own timeout, body included, is cut to what is left).
pub(super) fn send(
    build: &dyn Fn() -> RequestBuilder,
    opts: &HttpOptions,
    facts: &mut RemoteFacts,
    deadline_at: Instant,
) -> Result<Response, NetworkError> {
    let mut attempt = 0;
    loop {
        let left = deadline_at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(NetworkError::new(past_deadline(opts)));
        }
        facts.requests += 1;
        let outcome = build().timeout(left.min(opts.read_timeout.max(opts.connect_timeout))).send();
        if outcome.as_ref().is_err_and(|e| e.is_timeout()) && Instant::now() >= deadline_at {
            return Err(NetworkError::new(past_deadline(opts)));
        }
        let retryable = match &outcome {
            Ok(r) => matches!(r.status().as_u16(), 502..=504),
            Err(e) => e.is_connect() || e.is_timeout() || e.is_request() || e.is_body(),
        };
        if !retryable || attempt >= opts.retries {
            return outcome.map_err(|e| NetworkError::caused(describe(&e), e));
        }
        std::thread::sleep(
            crate::retry::Backoff { base: opts.backoff, ..crate::retry::PROBE }
                .delay(attempt, None)
                .min(deadline_at.saturating_duration_since(Instant::now())),
        );
        attempt += 1;
    }
}

fn header_u64(resp: &Response, name: reqwest::header::HeaderName) -> Option<u64> {
    resp.headers().get(name)?.to_str().ok()?.trim().parse().ok()
}

/// The total in `Content-Range: bytes a-b/TOTAL`.
fn total_from_content_range(resp: &Response) -> Option<u64> {
    let v = resp.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    v.rsplit_once('/')?.1.trim().parse().ok()
}

mod source;

pub use source::HttpSource;
use source::Mode;
