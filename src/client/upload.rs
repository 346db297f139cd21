//! Local files into the service's temporary storage: getPolicy → OSS form POST → `oss://` URL.

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::blocking::multipart::{Form, Part};
use serde::Deserialize;

use super::config::MODEL;
use super::transport::{Transport, TransportError};

/// An upload credential from `GET /uploads?action=getPolicy`.
#[derive(Debug, Clone, Deserialize)]
pub struct Policy {
    /// Base64 policy document.
    pub policy: String,
    /// Its signature.
    pub signature: String,
    /// Key prefix for the objects.
    pub upload_dir: String,
    /// The bucket URL to POST the form to.
    pub upload_host: String,
    /// Lifetime of the credential.
    #[serde(deserialize_with = "number_or_string")]
    pub expire_in_seconds: f64,
    /// Largest file accepted.
    #[serde(default, deserialize_with = "opt_number_or_string")]
    pub max_file_size_mb: Option<f64>,
    /// The access key id for the form.
    pub oss_access_key_id: String,
    /// `x-oss-object-acl` form field.
    pub x_oss_object_acl: String,
    /// `x-oss-forbid-overwrite` form field.
    pub x_oss_forbid_overwrite: String,
}

// The reference types every field as a string while its example shows numbers: take both.
fn number_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    opt_number_or_string(d)?.ok_or_else(|| serde::de::Error::custom("expected a number"))
}

fn opt_number_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => Ok(n.as_f64()),
        Some(serde_json::Value::String(s)) => {
            s.trim().parse().map(Some).map_err(|_| serde::de::Error::custom(format!("'{s}' is not a number")))
        }
        Some(other) => Err(serde::de::Error::custom(format!("expected a number, got {other}"))),
    }
}

#[derive(Deserialize)]
struct PolicyAnswer {
    data: Policy,
}

/// Why an upload failed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// getPolicy failed.
    #[error("getting an upload credential failed: {0}")]
    Policy(TransportError),
    /// The credential answer could not be read.
    #[error("the upload credential could not be read: {0}")]
    BadPolicy(String),
    /// The file is larger than the credential allows.
    #[error("{name} is {size} bytes; temporary storage takes at most {max_mb} MB for this model")]
    TooLarge {
        /// File name.
        name: String,
        /// Its size.
        size: u64,
        /// The credential's limit.
        max_mb: f64,
    },
    /// Reading the local file failed.
    #[error("cannot read {name}: {source}")]
    Io {
        /// File name.
        name: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The storage host refused the file or could not be reached.
    #[error("uploading {name} to {host} failed: {message}")]
    Storage {
        /// File name.
        name: String,
        /// Upload host.
        host: String,
        /// OSS code and message (from its XML error), or the network error.
        message: String,
    },
}

impl UploadError {
    /// The service refused to hand out an upload credential (not a local or network problem).
    pub fn is_refusal(&self) -> bool {
        matches!(self, UploadError::Policy(TransportError::Api { .. }) | UploadError::BadPolicy(_))
    }
}

/// Uploads files, reusing one credential while it is valid.
#[derive(Debug, Default)]
pub struct Uploader {
    current: Option<(Policy, Instant)>,
    counter: u32,
}

/// Margin before a credential's expiry after which a fresh one is fetched.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);
/// Attempts for getPolicy and the form POST when throttled or on a transient failure.
const ATTEMPTS: u32 = 4;

impl Uploader {
    /// A fresh uploader (no credential yet).
    pub fn new() -> Self {
        Uploader::default()
    }

    fn policy(&mut self, t: &Transport, refresh: bool) -> Result<Policy, UploadError> {
        if !refresh {
            if let Some((p, at)) = &self.current {
                let life = Duration::from_secs_f64(p.expire_in_seconds.clamp(0.0, 86_400.0));
                if at.elapsed() + EXPIRY_MARGIN < life {
                    return Ok(p.clone());
                }
            }
        }
        let mut attempt = 0;
        let answer = loop {
            match t.get("uploads", &[("action", "getPolicy"), ("model", MODEL)]) {
                Ok(a) => break a,
                Err(e) if e.is_transient() && attempt + 1 < ATTEMPTS => {
                    std::thread::sleep(delay(&e, attempt));
                    attempt += 1;
                }
                Err(e) => return Err(UploadError::Policy(e)),
            }
        };
        let parsed: PolicyAnswer =
            serde_json::from_slice(&answer.body).map_err(|e| UploadError::BadPolicy(e.to_string()))?;
        let p = parsed.data;
        let host =
            reqwest::Url::parse(&p.upload_host).map_err(|e| UploadError::BadPolicy(format!("upload_host: {e}")))?;
        if !matches!(host.scheme(), "http" | "https") {
            return Err(UploadError::BadPolicy(format!("upload_host is not http(s): {}", p.upload_host)));
        }
        self.current = Some((p.clone(), Instant::now()));
        Ok(p)
    }

    /// Uploads one file and returns its `oss://` URL. `content_hash` makes the object key unique
    /// (the storage refuses to overwrite).
    pub fn upload(&mut self, t: &Transport, path: &Path, content_hash: &str) -> Result<String, UploadError> {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "input".into());
        let size = std::fs::metadata(path).map_err(|e| UploadError::Io { name: name.clone(), source: e })?.len();
        let mut refreshed = false;
        let mut attempt = 0;
        loop {
            let p = self.policy(t, false)?;
            if let Some(max) = p.max_file_size_mb.filter(|m| *m > 0.0) {
                if size as f64 > max * 1_000_000.0 {
                    return Err(UploadError::TooLarge { name, size, max_mb: max });
                }
            }
            self.counter += 1;
            let key = format!(
                "{}/{}-{}-{}",
                p.upload_dir.trim_end_matches('/'),
                &content_hash[..content_hash.len().min(16)],
                self.counter,
                safe_name(&name)
            );
            match post_form(t, &p, &key, path, size, &name) {
                Ok(()) => return Ok(format!("oss://{key}")),
                Err(PostError::Expired(_)) if !refreshed => {
                    self.policy(t, true)?;
                    refreshed = true;
                }
                Err(PostError::Transient(_, wait)) if attempt + 1 < ATTEMPTS => {
                    std::thread::sleep(crate::retry::UPLOAD.delay(attempt, wait));
                    attempt += 1;
                }
                Err(PostError::Io(e)) => return Err(UploadError::Io { name, source: e }),
                Err(PostError::Expired(m) | PostError::Transient(m, _) | PostError::Refused(m)) => {
                    return Err(UploadError::Storage { name, host: p.upload_host.clone(), message: m })
                }
            }
        }
    }
}

fn delay(e: &TransportError, attempt: u32) -> Duration {
    crate::retry::UPLOAD.delay(attempt, e.retry_after())
}

enum PostError {
    Expired(String),
    Transient(String, Option<Duration>),
    Refused(String),
    Io(std::io::Error),
}

/// The PostObject form. No credentials of ours.
fn post_form(t: &Transport, p: &Policy, key: &str, path: &Path, size: u64, name: &str) -> Result<(), PostError> {
    let file = crate::probe::open_regular(path).map_err(PostError::Io)?;
    let mime = mime_for(name);
    let part = Part::reader_with_length(file, size)
        .file_name(safe_name(name))
        .mime_str(mime)
        .expect("a fixed, valid MIME type");
    // The documented fields in the documented order (OSSAccessKeyId, policy, Signature, key,
    // x-oss-object-acl, x-oss-forbid-overwrite, success_action_status), `file` last; the file's
    // MIME type travels in its part header.
    let form = Form::new()
        .text("OSSAccessKeyId", p.oss_access_key_id.clone())
        .text("policy", p.policy.clone())
        .text("Signature", p.signature.clone())
        .text("key", key.to_string())
        .text("x-oss-object-acl", p.x_oss_object_acl.clone())
        .text("x-oss-forbid-overwrite", p.x_oss_forbid_overwrite.clone())
        .text("success_action_status", "200")
        .part("file", part);
    let resp = t
        .plain()
        .post(&p.upload_host)
        .timeout(Duration::from_secs(3600))
        .multipart(form)
        .send()
        .map_err(|e| PostError::Transient(TransportError::from_reqwest(&e).to_string(), None))?;
    let status = resp.status().as_u16();
    if status == 200 || status == 204 {
        return Ok(());
    }
    let wait = super::transport::retry_after(resp.headers());
    let body = {
        use std::io::Read;
        let mut raw = Vec::new();
        let _ = resp.take(super::transport::MAX_ERROR_BODY).read_to_end(&mut raw);
        String::from_utf8_lossy(&raw).into_owned()
    };
    let code = xml_tag(&body, "Code").unwrap_or_default();
    let message = xml_tag(&body, "Message").unwrap_or_else(|| body.chars().take(200).collect());
    let request_id = xml_tag(&body, "RequestId").map(|r| format!(" (request id {r})")).unwrap_or_default();
    let text = format!("HTTP {status} {code}: {message}{request_id}");
    if status == 403 && message.to_ascii_lowercase().contains("expired") {
        Err(PostError::Expired(text))
    } else if matches!(status, 429 | 500 | 502 | 503 | 504) {
        Err(PostError::Transient(text, wait))
    } else {
        Err(PostError::Refused(text))
    }
}

/// The text of the first `<tag>…</tag>` in an OSS error document.
fn xml_tag(body: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{tag}>"))? + start;
    Some(body[start..end].trim().to_string())
}

/// ASCII letters, digits, `.`, `-` and `_` only: the key goes into an `oss://` URL unescaped.
fn safe_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
        .take(100)
        .collect();
    if s.trim_matches('.').is_empty() {
        "input".into()
    } else {
        s
    }
}

fn mime_for(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "bmp" => "image/bmp",
        "webp" => "image/webp",
        "mp4" => "video/mp4",
        "mov" => "video/quicktime",
        "avi" => "video/x-msvideo",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // OSS error bodies and file names come from outside: no input panics, and a safe name
        // only ever holds characters that can go into an oss:// key unescaped.
        #[test]
        fn xml_and_names_never_panic(body in "\\PC{0,80}", name in "\\PC{0,80}") {
            let _ = xml_tag(&body, "Code");
            let n = safe_name(&name);
            prop_assert!(!n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')));
        }
    }

    #[test]
    fn policy_numbers_may_be_strings() {
        let p: PolicyAnswer = serde_json::from_str(
            r#"{"request_id":"r","data":{"policy":"p","signature":"s","upload_dir":"d","upload_host":"https://h",
                "expire_in_seconds":"300","max_file_size_mb":100,"capacity_limit_mb":"999",
                "oss_access_key_id":"id","x_oss_object_acl":"private","x_oss_forbid_overwrite":"true"}}"#,
        )
        .unwrap();
        assert_eq!(p.data.expire_in_seconds, 300.0);
        assert_eq!(p.data.max_file_size_mb, Some(100.0));
    }

    #[test]
    fn names_and_xml() {
        assert_eq!(safe_name("tänzer clip.mp4"), "t_nzer_clip.mp4");
        assert_eq!(safe_name(".."), "input");
        let xml = "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>Invalid according to Policy: Policy expired.</Message><RequestId>R1</RequestId></Error>";
        assert_eq!(xml_tag(xml, "Code").as_deref(), Some("AccessDenied"));
        assert_eq!(xml_tag(xml, "RequestId").as_deref(), Some("R1"));
        assert_eq!(xml_tag("nope", "Code"), None);
    }
}
