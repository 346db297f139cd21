//! HTTP for the client: one client that carries the key and talks only to the API host (no
//! redirects, so the key cannot follow one elsewhere), and one without any credentials for the
//! upload host and result URLs.

use std::time::{Duration, SystemTime};

use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::Url;

use super::api::ApiError;
use super::config::Config;
use crate::net::{chain, describe, install_crypto};

/// A request that got no usable HTTP answer, or an error answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    /// No HTTP answer. `maybe_delivered` is false only when the connection was never made, so
    /// the server cannot have seen the request.
    #[error("{message}")]
    Network {
        /// What happened, for people.
        message: String,
        /// Whether the server may have received the request.
        maybe_delivered: bool,
    },
    /// An error answer from the service.
    #[error("{error}")]
    Api {
        /// The envelope.
        error: ApiError,
        /// `Retry-After`, when sent.
        retry_after: Option<Duration>,
    },
    /// The answer was about another task than the one asked for.
    #[error("asked for task {asked}, the service answered about task {answered}: the answer is not used")]
    WrongTask {
        /// The task asked for.
        asked: String,
        /// The task the answer named.
        answered: String,
    },
}

impl TransportError {
    /// Worth another try later: network trouble, 429, 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            TransportError::Network { .. } => true,
            TransportError::Api { error, .. } => matches!(error.http_status, 408 | 429 | 500..=599),
            TransportError::WrongTask { .. } => false,
        }
    }

    /// The server's requested delay, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            TransportError::Api { retry_after, .. } => *retry_after,
            TransportError::Network { .. } | TransportError::WrongTask { .. } => None,
        }
    }

    /// The HTTP status of an error answer.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            TransportError::Api { error, .. } => Some(error.http_status),
            TransportError::Network { .. } | TransportError::WrongTask { .. } => None,
        }
    }

    pub(crate) fn from_reqwest(e: &reqwest::Error) -> TransportError {
        // reqwest's text can hold the URL: ours never carry the key (it only travels in a header).
        TransportError::Network { message: describe(e), maybe_delivered: !e.is_connect() }
    }
}

/// The two HTTP clients and the configuration.
#[derive(Debug, Clone)]
pub struct Transport {
    config: Config,
    api: Client,
    /// Built on first use: setting up TLS parses the system's certificates (milliseconds),
    /// and a resumed submit never needs this client.
    plain: std::sync::OnceLock<Client>,
}

/// A successful answer from the API: its body and request id.
#[derive(Debug, Clone)]
pub struct ApiAnswer {
    /// The body, as received.
    pub body: Vec<u8>,
    /// HTTP status (2xx).
    pub status: u16,
}

/// Most bytes read from an API answer (they are small JSON documents).
const MAX_API_BODY: u64 = 4 << 20;
/// Largest error body read (the message, code and request id are at its start).
pub(crate) const MAX_ERROR_BODY: u64 = 64 << 10;

impl Transport {
    /// Builds both clients. Proxies from the environment are ignored for the API client: the key
    /// goes to the API host and nowhere else.
    pub fn new(config: Config) -> Result<Transport, TransportError> {
        install_crypto();
        let ua = concat!("wanprep/", env!("CARGO_PKG_VERSION"));
        let setup = |e: reqwest::Error| TransportError::Network {
            message: format!("cannot set up HTTP: {}", chain(&e)),
            maybe_delivered: false,
        };
        let api = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent(ua)
            .build()
            .map_err(setup)?;
        super::rate::global().set_rate(config.max_qps);
        Ok(Transport { config, api, plain: std::sync::OnceLock::new() })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A client with no credentials, for upload hosts and result URLs.
    pub fn plain(&self) -> &Client {
        self.plain.get_or_init(|| {
            Client::builder()
                .redirect(reqwest::redirect::Policy::limited(5))
                .connect_timeout(Duration::from_secs(10))
                .timeout(None)
                .user_agent(concat!("wanprep/", env!("CARGO_PKG_VERSION")))
                .build()
                // Only fails when the TLS backend cannot initialise, which `new` already proved.
                .unwrap_or_else(|_| Client::new())
        })
    }

    fn authorized(&self, rb: RequestBuilder) -> RequestBuilder {
        let mut headers = HeaderMap::new();
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", self.config.api_key.expose()))
            .expect("ApiKey::new admits only header-safe characters");
        auth.set_sensitive(true);
        headers.insert(AUTHORIZATION, auth);
        headers.insert("Accept", HeaderValue::from_static("application/json"));
        if let Some(ws) = &self.config.workspace {
            if let Ok(v) = HeaderValue::from_str(ws) {
                headers.insert("X-DashScope-WorkSpace", v);
            }
        }
        rb.headers(headers)
    }

    /// `GET {base}/{path}` with the key.
    pub fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<ApiAnswer, TransportError> {
        let mut url = self.config.endpoint(path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        self.send(self.authorized(self.api.get(url)).timeout(Duration::from_secs(30)))
    }

    /// `POST {base}/{path}` with a JSON body, the key and extra headers.
    pub fn post_json(
        &self,
        path: &str,
        body: &impl serde::Serialize,
        extra: &[(&'static str, &'static str)],
    ) -> Result<ApiAnswer, TransportError> {
        let url = self.config.endpoint(path);
        let json = serde_json::to_vec(body).map_err(|e| TransportError::Network {
            message: format!("cannot encode the request: {e}"),
            maybe_delivered: false,
        })?;
        let mut rb = self.authorized(self.api.post(url)).header(CONTENT_TYPE, "application/json").body(json);
        for (k, v) in extra {
            rb = rb.header(*k, *v);
        }
        self.send(rb)
    }

    /// Every API request goes through here: it takes a slot of the process's rate limiter
    /// first, and a throttling answer pauses every request for its `Retry-After` (1 s if none).
    /// `POST {base}/{path}` with no body (cancel).
    pub fn post_empty(&self, path: &str) -> Result<ApiAnswer, TransportError> {
        self.send(self.authorized(self.api.post(self.config.endpoint(path))))
    }

    fn send(&self, rb: RequestBuilder) -> Result<ApiAnswer, TransportError> {
        let limiter = super::rate::global();
        limiter.acquire();
        let resp = rb.send().map_err(|e| TransportError::from_reqwest(&e))?;
        let answer = read_answer(resp);
        if let Err(TransportError::Api { error, retry_after }) = &answer {
            if error.http_status == 429 {
                limiter.hold(retry_after.unwrap_or(Duration::from_secs(1)));
            }
        }
        answer
    }

    /// Whether `url` is on the API host (same scheme, host and port).
    pub fn is_api_origin(&self, url: &Url) -> bool {
        let b = &self.config.base_url;
        url.scheme() == b.scheme()
            && url.host_str() == b.host_str()
            && url.port_or_known_default() == b.port_or_known_default()
    }
}

fn read_answer(resp: Response) -> Result<ApiAnswer, TransportError> {
    use std::io::Read;
    let status = resp.status().as_u16();
    let request_id = ["x-request-id", "x-dashscope-request-id", "x-acs-request-id"]
        .iter()
        .find_map(|h| resp.headers().get(*h).and_then(|v| v.to_str().ok()).map(str::to_string));
    let retry_after = retry_after(resp.headers());
    let mut body = Vec::new();
    // An error answer is read only as far as its message could reach: a hostile or broken
    // server cannot fill memory with an endless error body.
    let cap = if (200..300).contains(&status) { MAX_API_BODY } else { MAX_ERROR_BODY };
    resp.take(cap).read_to_end(&mut body).map_err(|e| TransportError::Network {
        message: format!("the answer was cut off: {e}"),
        maybe_delivered: true,
    })?;
    if (200..300).contains(&status) {
        Ok(ApiAnswer { body, status })
    } else {
        Err(TransportError::Api { error: ApiError::from_body(status, &body, request_id), retry_after })
    }
}

/// `Retry-After` (seconds or an HTTP date) or `retry-after-ms`, capped at 10 minutes.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let cap = Duration::from_secs(600);
    if let Some(ms) =
        headers.get("retry-after-ms").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<f64>().ok())
    {
        if ms.is_finite() && ms >= 0.0 {
            return Some(Duration::from_secs_f64(ms / 1000.0).min(cap));
        }
    }
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(cap));
    }
    let when = crate::dates::http_date(v)?;
    Some(when.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO).min(cap))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert("retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(1500)));
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"));
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        assert_eq!(
            crate::dates::http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777))
        );
        assert_eq!(crate::dates::http_date("garbage"), None);
    }
}
