//! Where the API is and who we are to it: key, region, workspace, state directory.
//!
//! The only place in the library that reads environment variables.

use std::fmt;
use std::path::{Path, PathBuf};

use reqwest::Url;

/// The model every request names.
pub const MODEL: &str = "wan2.2-animate-move";

/// An API key. Its `Debug` never shows it and there is no `Display`: only the transport reads
/// it, for requests to the API host.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key, trimming surrounding whitespace (a key file usually ends with a newline).
    pub fn new(key: impl Into<String>) -> Result<Self, ConfigError> {
        let key = key.into().trim().to_string();
        if key.is_empty() {
            return Err(ConfigError::MissingKey);
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::Invalid("the API key holds characters that cannot go in a header".into()));
        }
        Ok(ApiKey(key))
    }

    /// The key itself, for the Authorization header.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// A short, one-way tag of the key: the journal uses it so a task is only resumed with the
    /// account that created it. Not reversible, and too short to confirm a guess.
    pub fn tag(&self) -> String {
        use sha2::{Digest, Sha256};
        let d = Sha256::digest(format!("wanprep-key-tag:{}", self.0).as_bytes());
        d[..4].iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// The documented regions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    /// China (Beijing): `https://dashscope.aliyuncs.com/api/v1`.
    CnBeijing,
    /// Singapore: `https://{workspace}.ap-southeast-1.maas.aliyuncs.com/api/v1`, or the legacy
    /// `https://dashscope-intl.aliyuncs.com/api/v1` without a workspace.
    ApSoutheast1,
}

impl Region {
    /// The region's id.
    pub fn as_str(self) -> &'static str {
        match self {
            Region::CnBeijing => "cn-beijing",
            Region::ApSoutheast1 => "ap-southeast-1",
        }
    }

    /// Parses `cn-beijing` or `ap-southeast-1`.
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cn-beijing" | "beijing" => Ok(Region::CnBeijing),
            "ap-southeast-1" | "singapore" | "intl" => Ok(Region::ApSoutheast1),
            other => Err(ConfigError::Invalid(format!("unknown region '{other}': use cn-beijing or ap-southeast-1"))),
        }
    }
}

/// Everything the client needs to talk to the service.
#[derive(Debug, Clone)]
pub struct Config {
    /// The key, sent only to the API host.
    pub api_key: ApiKey,
    /// `…/api/v1`, without a trailing slash.
    pub base_url: Url,
    /// Sent as `X-DashScope-WorkSpace` when set.
    pub workspace: Option<String>,
    /// Where the journal lives.
    pub state_dir: PathBuf,
    /// The region named by `--region` or `DASHSCOPE_REGION` (also when `DASHSCOPE_BASE_URL`
    /// overrides its endpoint).
    pub region: Option<Region>,
    /// Said once to the user when the endpoint was chosen by default where they may have meant
    /// another (a workspace id without a region means Beijing).
    pub endpoint_note: Option<String>,
    /// Most API requests in any one second, for the whole process (default
    /// [`DEFAULT_MAX_QPS`](super::rate::DEFAULT_MAX_QPS)).
    pub max_qps: u32,
}

/// A configuration problem: exit 2, with a message that says what to set.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No key anywhere.
    #[error(
        "no API key: set DASHSCOPE_API_KEY, pass --api-key-file, or put it where the official SDK reads it \
         (DASHSCOPE_API_KEY_FILE_PATH, ~/.dashscope/api_key)"
    )]
    MissingKey,
    /// A value that cannot be used.
    #[error("{0}")]
    Invalid(String),
}

/// What the user gave on the command line; environment variables fill the gaps.
#[derive(Debug, Clone, Default)]
pub struct ConfigOverrides {
    /// The key itself (the Python API's `Client(api_key=…)`); wins over everything else.
    pub api_key: Option<String>,
    /// `--api-key-file`.
    pub api_key_file: Option<PathBuf>,
    /// `--region`.
    pub region: Option<String>,
    /// `--workspace`.
    pub workspace: Option<String>,
    /// `--state-dir`.
    pub state_dir: Option<PathBuf>,
    /// `--max-qps`.
    pub max_qps: Option<u32>,
}

impl Config {
    /// Builds the configuration from the overrides and the environment:
    /// `DASHSCOPE_API_KEY` (else the SDK's key files: `DASHSCOPE_API_KEY_FILE_PATH`,
    /// `~/.dashscope/api_key`), `DASHSCOPE_BASE_URL` (requests then go to `$DASHSCOPE_BASE_URL/api/v1/…`),
    /// `DASHSCOPE_REGION`, `DASHSCOPE_WORKSPACE_ID`, and `XDG_DATA_HOME`/`HOME` for the journal.
    pub fn from_env(o: &ConfigOverrides) -> Result<Config, ConfigError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let api_key = match &o.api_key_file {
            _ if o.api_key.is_some() => ApiKey::new(o.api_key.clone().unwrap_or_default())?,
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError::Invalid(format!("cannot read the API key file {}: {e}", path.display()))
                })?;
                ApiKey::new(text)?
            }
            None => match var("DASHSCOPE_API_KEY") {
                Some(k) => ApiKey::new(k)?,
                None => key_from_sdk_files(var("DASHSCOPE_API_KEY_FILE_PATH"), var("HOME"))?,
            },
        };
        let workspace = o.workspace.clone().or_else(|| var("DASHSCOPE_WORKSPACE_ID"));
        if let Some(ws) = &workspace {
            validate_workspace(ws)?;
        }
        let region = o.region.clone().or_else(|| var("DASHSCOPE_REGION"));
        let region = region.as_deref().map(Region::parse).transpose()?;
        let mut endpoint_note = None;
        let base_url = match var("DASHSCOPE_BASE_URL") {
            // An explicit --region wins over a base URL left in the environment.
            Some(base) if o.region.is_none() => api_base_from_override(&base)?,
            _ => {
                let url = region_base(region.unwrap_or(Region::CnBeijing), workspace.as_deref())?;
                if region.is_none() && workspace.is_some() {
                    endpoint_note = Some(format!(
                        "a workspace id is set but no region: using the Beijing endpoint {url} (workspace endpoints \
                         are Singapore's: pass --region ap-southeast-1 or set DASHSCOPE_REGION for them)"
                    ));
                }
                url
            }
        };
        let state_dir = Config::state_dir_from_env(o)?;
        let max_qps = o.max_qps.unwrap_or(super::rate::DEFAULT_MAX_QPS);
        Ok(Config { api_key, base_url, workspace, state_dir, region, endpoint_note, max_qps })
    }

    /// The journal directory alone (for commands that need no key): `--state-dir`, else
    /// `$XDG_DATA_HOME/wanprep`, else `~/.local/share/wanprep`.
    pub fn state_dir_from_env(o: &ConfigOverrides) -> Result<PathBuf, ConfigError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        match &o.state_dir {
            Some(d) => Ok(d.clone()),
            None => default_state_dir(var("XDG_DATA_HOME").map(PathBuf::from), var("HOME").map(PathBuf::from)),
        }
    }

    /// A configuration with an explicit base (`…/api/v1` or a host root) and state directory.
    pub fn new(api_key: ApiKey, base: &str, state_dir: impl AsRef<Path>) -> Result<Config, ConfigError> {
        Ok(Config {
            api_key,
            base_url: api_base_from_override(base)?,
            workspace: None,
            state_dir: state_dir.as_ref().to_path_buf(),
            region: None,
            endpoint_note: None,
            max_qps: super::rate::DEFAULT_MAX_QPS,
        })
    }

    /// `{base}/{path}`.
    pub fn endpoint(&self, path: &str) -> Url {
        let mut s = self.base_url.as_str().trim_end_matches('/').to_string();
        s.push('/');
        s.push_str(path.trim_start_matches('/'));
        Url::parse(&s).expect("a valid base joined with a fixed path is a valid URL")
    }
}

/// Where the official SDK reads a key when `DASHSCOPE_API_KEY` is unset: the file named by
/// `DASHSCOPE_API_KEY_FILE_PATH`, else `~/.dashscope/api_key`. A named file that cannot be read
/// is an error (the user pointed at it); a missing default file means no key.
fn key_from_sdk_files(named: Option<String>, home: Option<String>) -> Result<ApiKey, ConfigError> {
    if let Some(path) = named {
        let text = std::fs::read_to_string(&path).map_err(|e| {
            ConfigError::Invalid(format!("cannot read the API key file {path} (DASHSCOPE_API_KEY_FILE_PATH): {e}"))
        })?;
        return ApiKey::new(text);
    }
    let default = Path::new(&home.ok_or(ConfigError::MissingKey)?).join(".dashscope/api_key");
    match std::fs::read_to_string(&default) {
        Ok(text) => ApiKey::new(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ConfigError::MissingKey),
        Err(e) => Err(ConfigError::Invalid(format!("cannot read the API key file {}: {e}", default.display()))),
    }
}

/// `DASHSCOPE_BASE_URL` names the host root (`http://127.0.0.1:8080`); a value that already
/// ends in `/api/v1` is taken as is.
fn api_base_from_override(base: &str) -> Result<Url, ConfigError> {
    let trimmed = base.trim().trim_end_matches('/');
    let full = if trimmed.ends_with("/api/v1") { trimmed.to_string() } else { format!("{trimmed}/api/v1") };
    let url = Url::parse(&full)
        .map_err(|e| ConfigError::Invalid(format!("DASHSCOPE_BASE_URL '{trimmed}' is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConfigError::Invalid(format!("DASHSCOPE_BASE_URL '{trimmed}' must be an http(s) URL")));
    }
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
        return Err(ConfigError::Invalid("DASHSCOPE_BASE_URL must not carry credentials or a query".into()));
    }
    Ok(url)
}

fn region_base(region: Region, workspace: Option<&str>) -> Result<Url, ConfigError> {
    let s = match (region, workspace) {
        (Region::CnBeijing, _) => "https://dashscope.aliyuncs.com/api/v1".to_string(),
        (Region::ApSoutheast1, Some(ws)) => format!("https://{ws}.ap-southeast-1.maas.aliyuncs.com/api/v1"),
        (Region::ApSoutheast1, None) => "https://dashscope-intl.aliyuncs.com/api/v1".to_string(),
    };
    Url::parse(&s).map_err(|e| ConfigError::Invalid(format!("bad endpoint {s}: {e}")))
}

/// The SDK's rule (`\A[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z`): the workspace becomes part of a host
/// name, so anything else could point the key at another host.
pub fn validate_workspace(ws: &str) -> Result<(), ConfigError> {
    let b = ws.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid(format!(
            "workspace id '{}' is not valid: letters, digits, '_' and '-', starting with a letter or digit, at most 64",
            ws.escape_debug()
        )))
    }
}

fn default_state_dir(xdg_data: Option<PathBuf>, home: Option<PathBuf>) -> Result<PathBuf, ConfigError> {
    match (xdg_data, home) {
        (Some(d), _) if d.is_absolute() => Ok(d.join("wanprep")),
        (_, Some(h)) => Ok(h.join(".local/share/wanprep")),
        _ => Err(ConfigError::Invalid("no HOME or XDG_DATA_HOME: pass --state-dir".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_ids_that_could_change_the_host_are_refused() {
        assert!(validate_workspace("ws-123_abc").is_ok());
        for bad in ["", "-ws", "a.b", "evil.com/x", "a b", "ws:80", &"a".repeat(65), "ä"] {
            assert!(validate_workspace(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn base_url_override_gets_api_v1_once() {
        assert_eq!(api_base_from_override("http://127.0.0.1:8080").unwrap().as_str(), "http://127.0.0.1:8080/api/v1");
        assert_eq!(api_base_from_override("http://h:1/api/v1/").unwrap().as_str(), "http://h:1/api/v1");
        assert!(api_base_from_override("ftp://h").is_err());
        assert!(api_base_from_override("http://u:p@h").is_err());
    }

    #[test]
    fn regions_map_to_documented_endpoints() {
        assert_eq!(region_base(Region::CnBeijing, None).unwrap().as_str(), "https://dashscope.aliyuncs.com/api/v1");
        assert_eq!(
            region_base(Region::ApSoutheast1, Some("ws1")).unwrap().as_str(),
            "https://ws1.ap-southeast-1.maas.aliyuncs.com/api/v1"
        );
        assert_eq!(
            region_base(Region::ApSoutheast1, None).unwrap().as_str(),
            "https://dashscope-intl.aliyuncs.com/api/v1"
        );
    }

    #[test]
    fn key_is_never_in_debug_output() {
        let k = ApiKey::new("sk-secret-123\n").unwrap();
        assert_eq!(k.expose(), "sk-secret-123");
        assert!(!format!("{k:?}").contains("secret"));
        assert_eq!(k.tag().len(), 8);
        assert!(ApiKey::new("  ").is_err());
    }
}
