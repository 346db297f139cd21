//! The one way wanprep makes files: temporary files with unpredictable names created
//! exclusively (`O_EXCL`, by `tempfile`) beside their destination, locked while they live so a
//! later run can tell one left by a killed process from one still being written, and renamed
//! into place; appends and reads of our own files never follow a symbolic link.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

/// The folder a path lives in (`.` for a bare name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// The start of the names of `dest`'s temporary files: `.NAME.wanprep-`.
fn temp_prefix(dest: &Path) -> String {
    format!(".{}.wanprep-", dest.file_name().map(|n| n.to_string_lossy()).unwrap_or_default())
}

/// A temporary file beside `dest` (same file system, so the final rename is atomic), named
/// `.NAME.wanprep-RANDOM.part`, created exclusively with ordinary permissions (the umask
/// applies) and locked (`flock`) for as long as it is open. Temporary files that a killed run
/// left for the same destination are removed first.
pub(crate) fn temp_beside(dest: &Path) -> io::Result<NamedTempFile> {
    remove_stale_temps(dest);
    let tmp = tempfile::Builder::new()
        .prefix(&temp_prefix(dest))
        .suffix(".part")
        .permissions(std::fs::Permissions::from_mode(0o644))
        .tempfile_in(parent_dir(dest))?;
    tmp.as_file().lock()?;
    Ok(tmp)
}

/// Removes `dest`'s temporary files that nobody holds locked any more (left by a killed run).
/// Only regular files of the expected name are touched; symbolic links are never followed.
pub(crate) fn remove_stale_temps(dest: &Path) {
    let prefix = temp_prefix(dest);
    let Ok(entries) = std::fs::read_dir(parent_dir(dest)) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with(&prefix) || !name.ends_with(".part") {
            continue;
        }
        let path = entry.path();
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let Ok(f) = open_nofollow_read(&path) else { continue };
        // A live run holds the lock: leave its file alone.
        if f.try_lock().is_ok() {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Opens an existing file for reading without following a symbolic link at `path`.
pub(crate) fn open_nofollow_read(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path)
}

/// Opens `path` for appending (creating it with mode 0644), refusing a symbolic link or
/// anything but a regular file there.
pub(crate) fn open_append_nofollow(path: &Path) -> io::Result<File> {
    let f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    if !f.metadata()?.file_type().is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{} is not a regular file", path.display())));
    }
    Ok(f)
}

/// Writes `data` to `dest` atomically: a locked temporary file beside it, flushed, then
/// renamed over it (a symbolic link at `dest` is replaced, never followed).
pub fn write_atomic(dest: &Path, data: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut tmp = temp_beside(dest)?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    tmp.persist(dest).map_err(|e| e.error)?;
    sync_dir(dest);
    Ok(())
}

/// Flushes the folder holding `path`, so a rename into it survives a crash.
pub(crate) fn sync_dir(path: &Path) {
    if let Ok(d) = File::open(parent_dir(path)) {
        let _ = d.sync_all();
    }
}

/// A private folder for wanprep's own state: created with mode 0700 when missing; an existing
/// one is used only when it is a real folder (not a symbolic link) owned by this user and
/// closed to others.
pub fn private_dir(path: &Path) -> io::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    match std::fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = std::fs::symlink_metadata(path)?;
    let me = std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(meta.uid());
    let bad = |why: &str| io::Error::new(io::ErrorKind::PermissionDenied, format!("{}: {why}", path.display()));
    if !meta.file_type().is_dir() {
        return Err(bad("not a folder (a symbolic link or a file)"));
    }
    if meta.uid() != me {
        return Err(bad("owned by another user"));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(bad("open to other users (it must be mode 0700)"));
    }
    Ok(path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_temporary_file_left_by_a_killed_run_is_removed_and_a_live_one_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.png");
        let live = temp_beside(&dest).unwrap();
        // What a killed run leaves: the same kind of name, nobody holding its lock.
        let stale = dir.path().join(".out.png.wanprep-abc123.part");
        std::fs::write(&stale, b"half").unwrap();
        let other = dir.path().join(".other.png.wanprep-abc123.part");
        std::fs::write(&other, b"another output's").unwrap();
        remove_stale_temps(&dest);
        assert!(!stale.exists());
        assert!(live.path().exists(), "a live run's file is kept");
        assert!(other.exists(), "another destination's file is not ours to remove");
    }

    #[test]
    fn an_atomic_write_replaces_the_whole_file_and_leaves_nothing_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("report.json");
        std::fs::write(&dest, b"old and longer than the new content").unwrap();
        write_atomic(&dest, b"new").unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"new");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["report.json"], "no temporary file left");
        // A write that cannot happen leaves the old state.
        let missing = dir.path().join("no-such-dir").join("r.json");
        assert!(write_atomic(&missing, b"x").is_err());
        assert_eq!(std::fs::read(&dest).unwrap(), b"new");
    }

    #[test]
    fn a_planted_symlink_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let state = dir.path().join("state.jsonl");
        std::os::unix::fs::symlink(&victim, &state).unwrap();
        assert!(open_append_nofollow(&state).is_err());
        let dest = dir.path().join("report.json");
        std::os::unix::fs::symlink(&victim, &dest).unwrap();
        write_atomic(&dest, b"new").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep", "the link was replaced, not followed");
        assert_eq!(std::fs::read(&dest).unwrap(), b"new");
    }

    #[test]
    fn a_private_folder_must_be_ours_and_closed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state");
        private_dir(&p).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o700);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(private_dir(&p).is_err(), "readable by others");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path(), &link).unwrap();
        assert!(private_dir(&link).is_err());
    }
}
