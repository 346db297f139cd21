//! What earlier runs of a batch finished, so a re-run skips it: one JSON line per finished
//! input, appended to `.wanprep-batch.jsonl` in the output folder as soon as it finishes (a
//! killed run keeps everything it completed). Later lines win.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The state file's name, inside the output folder.
pub const STATE_FILE: &str = ".wanprep-batch.jsonl";

/// Paths in JSON, exactly: a UTF-8 path as a string, any other as `{"hex": "…"}` of its bytes
/// (file names on Linux are bytes; a lossy name would never match the file again).
pub(crate) mod exact_path {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Path, PathBuf};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Text(String),
        Bytes { hex: String },
    }

    fn repr(p: &Path) -> Repr {
        match p.to_str() {
            Some(s) => Repr::Text(s.to_string()),
            None => Repr::Bytes { hex: super::super::hex_bytes(p.as_os_str().as_bytes()) },
        }
    }

    fn path(r: Repr) -> Option<PathBuf> {
        match r {
            Repr::Text(s) => Some(PathBuf::from(s)),
            Repr::Bytes { hex } => super::super::unhex(&hex).map(|b| PathBuf::from(std::ffi::OsStr::from_bytes(&b))),
        }
    }

    pub fn serialize<S: Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
        repr(p).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
        path(Repr::deserialize(d)?).ok_or_else(|| serde::de::Error::custom("bad hex path"))
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(p: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
            p.as_deref().map(repr).serialize(s)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
            match Option::<Repr>::deserialize(d)? {
                None => Ok(None),
                Some(r) => path(r).map(Some).ok_or_else(|| serde::de::Error::custom("bad hex path")),
            }
        }
    }
}

/// One finished input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    /// Input path relative to the batch folder.
    #[serde(with = "exact_path")]
    pub rel: PathBuf,
    /// Input size when it was done.
    pub input_size: u64,
    /// Input modification time (ns since the epoch) when it was done.
    pub input_mtime_ns: i128,
    /// What happened (`compliant`, `fixed`, `unfixable`, `not_media`).
    pub status: String,
    /// Output path relative to the output folder, if one was written.
    #[serde(with = "exact_path::option", default)]
    pub output: Option<PathBuf>,
    /// Output size.
    pub output_size: Option<u64>,
    /// Output SHA-256.
    pub output_sha256: Option<String>,
    /// Why it is unfixable or not media.
    #[serde(default)]
    pub reason: Option<String>,
    /// Changes made, for the report.
    #[serde(default)]
    pub changes: Vec<String>,
}

/// The finished inputs of earlier runs, by relative path.
#[derive(Debug, Default)]
pub struct State {
    done: HashMap<PathBuf, Done>,
    path: PathBuf,
    outdir: PathBuf,
}

impl State {
    /// Reads the state of `outdir` (empty when there is none; unreadable lines are ignored).
    pub fn load(outdir: &Path) -> State {
        let path = outdir.join(STATE_FILE);
        let mut done = HashMap::new();
        if let Ok(f) = crate::fsutil::open_nofollow_read(&path) {
            for line in std::io::BufReader::new(f).lines().map_while(Result::ok) {
                if let Ok(d) = serde_json::from_str::<Done>(&line) {
                    done.insert(d.rel.clone(), d);
                }
            }
        }
        State { done, path, outdir: outdir.to_path_buf() }
    }

    /// The output folder this state belongs to.
    pub fn outdir(&self) -> &Path {
        &self.outdir
    }

    /// The earlier result for `rel`, if the input is unchanged and its output (if any) is still
    /// there with the recorded size and hash.
    pub fn verified(&self, rel: &Path, input: &Path, outdir: &Path) -> Option<&Done> {
        let d = self.done.get(rel)?;
        let (size, mtime) = input_stamp(input)?;
        if d.input_size != size || d.input_mtime_ns != mtime {
            return None;
        }
        if let Some(out) = &d.output {
            let p = outdir.join(out);
            let md = std::fs::metadata(&p).ok()?;
            if Some(md.len()) != d.output_size || sha256_file(&p).ok() != d.output_sha256 {
                return None;
            }
        }
        Some(d)
    }

    /// Appends one finished input (a whole line in one write, flushed to disk).
    pub fn record(&self, d: &Done) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(d).map_err(std::io::Error::other)?;
        line.push(b'\n');
        // Never through a symbolic link planted at the state file's name.
        let mut f = crate::fsutil::open_append_nofollow(&self.path)?;
        f.write_all(&line)?;
        f.sync_data()
    }
}

/// Size and modification time of a file.
pub fn input_stamp(path: &Path) -> Option<(u64, i128)> {
    let md = std::fs::metadata(path).ok()?;
    let mtime = md.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos() as i128;
    Some((md.len(), mtime))
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}
