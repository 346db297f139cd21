//! Listing the files of a folder: relative paths, sorted, hidden entries skipped unless asked,
//! symbolic links followed only when they stay inside the folder.

use std::path::{Path, PathBuf};

/// One file found (or a place the walk could not use, with why).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Path relative to the folder.
    pub rel: PathBuf,
    /// The file to read (the link target for a symbolic link).
    pub path: PathBuf,
    /// Why this entry cannot be read as a file: a subfolder that cannot be listed, or
    /// something that is not a regular file (a FIFO would block a reader forever).
    pub problem: Option<String>,
}

/// Files under `root` (recursively), sorted by relative path. Hidden names (a leading dot) are
/// skipped unless `hidden`; a symbolic link is followed only when its target lies inside `root`
/// (so a link cannot pull in, or loop over, the rest of the disk). A subfolder that cannot be
/// listed and an entry that is not a regular file are returned with their `problem`, so the
/// run reports them and goes on; only an unreadable `root` is an error.
pub fn walk(root: &Path, hidden: bool) -> std::io::Result<Vec<Found>> {
    let canon_root = root.canonicalize()?;
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    let mut seen_dirs = std::collections::HashSet::new();
    seen_dirs.insert(canon_root.clone());
    while let Some(rel_dir) = stack.pop() {
        let dir = canon_root.join(&rel_dir);
        let listing = match std::fs::read_dir(&dir) {
            Ok(l) => l,
            Err(e) if rel_dir.as_os_str().is_empty() => return Err(e),
            Err(e) => {
                out.push(Found { rel: rel_dir, path: dir, problem: Some(format!("cannot list this folder: {e}")) });
                continue;
            }
        };
        let mut entries: Vec<_> = listing.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name();
            if !hidden && name.to_string_lossy().starts_with('.') {
                continue;
            }
            let rel = rel_dir.join(&name);
            let Ok(ft) = e.file_type() else { continue };
            let path = e.path();
            let (target, ft) = if ft.is_symlink() {
                let Ok(t) = path.canonicalize() else { continue };
                if !t.starts_with(&canon_root) {
                    continue;
                }
                let Ok(md) = std::fs::metadata(&t) else { continue };
                (t, md.file_type())
            } else {
                (path.clone(), ft)
            };
            let (is_dir, is_file) = (ft.is_dir(), ft.is_file());
            if is_dir {
                let canon = target.canonicalize().unwrap_or(target);
                if seen_dirs.insert(canon) {
                    stack.push(rel);
                }
            } else if is_file {
                out.push(Found { rel, path: target, problem: None });
            } else {
                use std::os::unix::fs::FileTypeExt;
                let what = if ft.is_fifo() {
                    "a FIFO (named pipe)"
                } else if ft.is_socket() {
                    "a socket"
                } else {
                    "a device"
                };
                let problem = Some(format!("{what}: wanprep reads only regular files"));
                out.push(Found { rel, path: target, problem });
            }
        }
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

/// Whether `rel` belongs to shard `k` of `n` (1-based): a stable hash of the relative path, so
/// every run and every machine splits the same way.
pub fn in_shard(rel: &Path, k: u32, n: u32) -> bool {
    if n <= 1 {
        return true;
    }
    // FNV-1a: fixed, not randomised per process like std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in rel.as_os_str().as_encoded_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % u64::from(n)) as u32 == k - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_every_file_exactly_once() {
        let names: Vec<PathBuf> = (0..1000).map(|i| PathBuf::from(format!("d{}/f{i}.jpg", i % 7))).collect();
        let mut counts = [0usize; 4];
        for n in &names {
            let owners: Vec<u32> = (1..=4).filter(|k| in_shard(n, *k, 4)).collect();
            assert_eq!(owners.len(), 1);
            counts[owners[0] as usize - 1] += 1;
        }
        assert!(counts.iter().all(|c| *c > 200), "{counts:?}");
    }

    #[test]
    fn hidden_files_and_links_out_of_the_folder_are_skipped() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.jpg"), b"x").unwrap();
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("sub/a.png"), b"a").unwrap();
        std::fs::write(d.path().join(".hidden.png"), b"h").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret.jpg"), d.path().join("out.jpg")).unwrap();
        std::os::unix::fs::symlink(d.path().join("sub/a.png"), d.path().join("in.png")).unwrap();
        std::os::unix::fs::symlink(d.path(), d.path().join("sub/loop")).unwrap();
        let rels: Vec<_> = walk(d.path(), false).unwrap().into_iter().map(|f| f.rel).collect();
        assert_eq!(rels, vec![PathBuf::from("in.png"), PathBuf::from("sub/a.png")]);
        let with_hidden = walk(d.path(), true).unwrap();
        assert!(with_hidden.iter().any(|f| f.rel == Path::new(".hidden.png")));
    }
}
