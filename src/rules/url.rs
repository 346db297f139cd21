//! Rules on URL inputs: their text, and what fetching them showed.

use serde_json::{json, Value};

use super::{Finding, RuleId};
use crate::probe::http::{is_non_public, RemoteFacts};

/// Rules on a URL's text, before anything is fetched: `url.scheme` and `url.encoding`.
///
/// ```
/// use wanprep::rules::check_url_syntax;
/// assert_eq!(check_url_syntax("ftp://host/a.mp4")[0].rule, "url.scheme");
/// let f = check_url_syntax("https://host/舞蹈.mp4");
/// assert_eq!(f[0].rule, "url.encoding");
/// assert!(f[0].message.contains("https://host/%E8%88%9E%E8%B9%88.mp4"));
/// assert!(check_url_syntax("https://host/a%20b.mp4").is_empty());
/// ```
pub fn check_url_syntax(raw: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let scheme = raw.split_once(':').map(|(s, _)| s.to_ascii_lowercase()).unwrap_or_default();
    if !matches!(scheme.as_str(), "http" | "https") {
        let why = match scheme.as_str() {
            "ftp" | "ftps" | "sftp" => "the service fetches only over HTTP(S): serve the file over https",
            "file" => "a file: URL names a file on this machine, which the service cannot read: pass the path instead",
            "data" => "inline data: URLs are not accepted: serve the file over https",
            "oss" => "oss:// URLs are accepted only as produced by the upload step: pass the local file instead",
            "s3" | "gs" | "gcs" | "az" | "abfs" => {
                "an object-storage address is not a public URL: use a (presigned) https URL"
            }
            _ => "only http and https URLs are accepted",
        };
        out.push(Finding::error(
            RuleId::UrlScheme,
            format!("{scheme}: {why}"),
            json!(scheme),
            json!("http|https"),
            false,
        ));
        return out;
    }
    if raw.chars().any(|c| !c.is_ascii() || c.is_ascii_whitespace() || c.is_ascii_control()) {
        out.push(Finding::error(
            RuleId::UrlEncoding,
            format!("the URL has raw non-ASCII or space characters; send it percent-encoded: {}", percent_encode(raw)),
            json!(raw),
            json!(percent_encode(raw)),
            true,
        ));
    }
    out
}

/// Percent-encodes non-ASCII bytes, spaces and controls (leaves everything else as it is).
fn percent_encode(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if c.is_ascii() && !c.is_ascii_whitespace() && !c.is_ascii_control() {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// Rules on what fetching a URL showed: `url.public` for every host on the way (redirects
/// included) that is, or resolves to, an address the service cannot reach.
pub fn check_remote(facts: &RemoteFacts) -> Vec<Finding> {
    let mut out = Vec::new();
    for h in &facts.hosts {
        if let Some(ip) = h.addresses.iter().find(|ip| is_non_public(**ip)) {
            let what = if h.host.trim_matches(['[', ']']) == ip.to_string() {
                format!("host {ip} is")
            } else {
                format!("host '{}' resolves to {ip},", h.host)
            };
            out.push(Finding::warning(
                RuleId::UrlPublic,
                format!(
                    "{what} a loopback, private or link-local address: the service cannot fetch it; \
                     use a public URL (or a local path, which wanprep uploads)"
                ),
                json!(ip.to_string()),
                json!("a public address"),
            ));
        }
    }
    out
}

/// The `url.reachable` error for an answer that is not a success.
pub fn unreachable(reason: &str, status: u16) -> Finding {
    Finding::error(
        RuleId::UrlReachable,
        format!("{reason}: the service would fail to fetch it; check the URL and that it is public"),
        if status == 0 { Value::Null } else { json!(status) },
        json!("2xx"),
        false,
    )
}
