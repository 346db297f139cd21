//! Output names: the same relative tree, with the extension of the format written, and never
//! two outputs of a folder on one file.

use std::path::{Path, PathBuf};

use crate::fix::{self, Op};

/// The stem each input's output takes if its extension changes (a conversion), decided for a
/// whole listing at once — before sharding, so every shard agrees — such that no two outputs of
/// a folder can ever be the same file:
///
/// - a file whose extension stays keeps its own name;
/// - a file whose stem no other file of its folder has (case-insensitively) keeps its stem:
///   `clip.mkv` → `clip.mp4`;
/// - otherwise its whole name becomes the stem (`pic.gif` → `pic.gif.png` beside `pic.tif`),
///   or, when another file already has that stem (`pic.gif.png`), the first free `NAME~K`.
///
/// Every stem chosen is either the file's own stem, unique in the folder, or one no input has
/// and no other choice took, and outputs that keep their names have input stems: so the
/// mapping is injective (a proptest checks it).
pub fn conversion_stems(rels: &[PathBuf]) -> std::collections::HashMap<PathBuf, std::ffi::OsString> {
    use std::collections::{HashMap, HashSet};
    let key = |stem: &std::ffi::OsStr| stem.to_string_lossy().to_lowercase();
    let folder = |rel: &Path| rel.parent().unwrap_or(Path::new("")).to_path_buf();
    let mut stems: HashMap<PathBuf, HashMap<String, usize>> = HashMap::new();
    for rel in rels {
        *stems.entry(folder(rel)).or_default().entry(key(rel.file_stem().unwrap_or_default())).or_default() += 1;
    }
    let mut sorted: Vec<&PathBuf> = rels.iter().collect();
    sorted.sort();
    let mut taken: HashMap<PathBuf, HashSet<String>> = HashMap::new();
    let mut out = HashMap::new();
    for rel in sorted {
        let dir = folder(rel);
        let counts = &stems[&dir];
        let taken = taken.entry(dir).or_default();
        let own = rel.file_stem().unwrap_or_default().to_os_string();
        let free = |k: &str, taken: &HashSet<String>| !counts.contains_key(k) && !taken.contains(k);
        let stem = if counts.get(&key(&own)) == Some(&1) {
            own
        } else {
            let name = rel.file_name().unwrap_or_default().to_os_string();
            let mut candidate = name.clone();
            let mut k = 1u32;
            while !free(&key(&candidate), taken) {
                candidate = name.clone();
                candidate.push(format!("~{k}"));
                k += 1;
            }
            taken.insert(key(&candidate));
            candidate
        };
        out.insert(rel.clone(), stem);
    }
    out
}

/// The extension of the file a plan writes, when it writes one.
fn planned_extension(plan: &fix::FixPlan) -> Option<&'static str> {
    plan.ops.iter().find_map(|op| match op {
        Op::Encode { format: crate::Format::Jpeg, .. } => Some("jpg"),
        Op::Encode { format, .. } | Op::Remux { to: format, .. } | Op::Reencode { container: format, .. } => {
            Some(format.name())
        }
        _ => None,
    })
}

/// The output's relative path: the input's own when the extension stays (`jpeg` and `jpg`
/// are one), else `conversion_stem` (see [`conversion_stems`]) with the new extension.
pub fn output_rel(rel: &Path, plan: &fix::FixPlan, conversion_stem: &std::ffi::OsStr) -> PathBuf {
    let Some(ext) = planned_extension(plan) else { return rel.to_path_buf() };
    let same = rel
        .extension()
        .and_then(|x| x.to_str())
        .is_some_and(|x| x.eq_ignore_ascii_case(ext) || (ext == "jpg" && x.eq_ignore_ascii_case("jpeg")));
    if same {
        return rel.to_path_buf();
    }
    let mut name = conversion_stem.to_os_string();
    name.push(".");
    name.push(ext);
    rel.with_file_name(name)
}
