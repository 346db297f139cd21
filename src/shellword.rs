//! Words for commands printed for people to paste into a POSIX shell.

/// `s` as one shell word: as is when it is plain, in single quotes otherwise.
///
/// ```
/// assert_eq!(wanprep::shellword::quote("clip.mp4"), "clip.mp4");
/// assert_eq!(wanprep::shellword::quote("my clip's.mp4"), r"'my clip'\''s.mp4'");
/// ```
pub fn quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&b)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
