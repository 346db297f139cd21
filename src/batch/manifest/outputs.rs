//! Where results go, decided and checked before anything is uploaded or paid for.

use std::path::{Path, PathBuf};

use super::{Pair, PairReport, PairStatus};
use crate::batch::BatchError;
use crate::client::{Client, Job};

/// Where each pair's result goes (relative to the output folder), decided for the whole
/// manifest before anything is uploaded or created: an `output` given in the manifest must
/// differ from every other (after normalisation, case-insensitively, so two rows never pay
/// for one file) and stay out of `inputs/`, where fixed inputs go; a default name
/// (`IMAGE_VIDEO.mp4`) taken by another row gets its line number (`cat_dance.line3.mp4`).
pub fn plan_outputs(pairs: &[Pair]) -> Result<Vec<PathBuf>, BatchError> {
    use std::collections::HashMap;
    let normal =
        |p: &Path| -> PathBuf { p.components().filter(|c| !matches!(c, std::path::Component::CurDir)).collect() };
    let key = |p: &Path| p.to_string_lossy().to_lowercase();
    let mut claimed: HashMap<String, usize> = HashMap::new();
    for p in pairs {
        let Some(o) = &p.output else { continue };
        let o = normal(o);
        if o.as_os_str().is_empty() {
            return Err(BatchError::Usage(format!("line {}: the output names no file", p.line)));
        }
        if o.components().next().is_some_and(|c| c.as_os_str().eq_ignore_ascii_case("inputs")) {
            return Err(BatchError::Usage(format!(
                "line {}: output '{}' is inside inputs/, where fixed inputs are written: name another",
                p.line,
                o.display()
            )));
        }
        if let Some(other) = claimed.insert(key(&o), p.line) {
            return Err(BatchError::Usage(format!(
                "lines {other} and {} both name the output '{}': two tasks would be paid for one file",
                p.line,
                o.display()
            )));
        }
    }
    let defaults: Vec<Option<PathBuf>> = pairs
        .iter()
        .map(|p| p.output.is_none().then(|| Job::new(p.image.clone(), p.video.clone(), p.mode).default_output()))
        .collect();
    let mut uses: HashMap<String, usize> = HashMap::new();
    for d in defaults.iter().flatten() {
        *uses.entry(key(d)).or_default() += 1;
    }
    let mut out = Vec::with_capacity(pairs.len());
    for (p, d) in pairs.iter().zip(defaults) {
        let o = match (&p.output, d) {
            (Some(o), _) => normal(o),
            (None, Some(d)) => {
                if uses[&key(&d)] > 1 || claimed.contains_key(&key(&d)) {
                    let stem = d.file_stem().unwrap_or_default().to_string_lossy().into_owned();
                    let named = PathBuf::from(format!("{stem}.line{}.mp4", p.line));
                    if claimed.contains_key(&key(&named)) {
                        return Err(BatchError::Usage(format!(
                            "line {}: the output names '{}', which line {} needs: name another",
                            claimed[&key(&named)],
                            named.display(),
                            p.line
                        )));
                    }
                    named
                } else {
                    d
                }
            }
            (None, None) => unreachable!("a pair without an output has a default"),
        };
        out.push(o);
    }
    Ok(out)
}

/// Checks, before any upload or create, that every ready pair's result can be written: its
/// folder exists or is made, and the file is not there already — unless `force`, or it is this
/// very job's saved result (a re-run then downloads nothing).
pub(super) fn check_output_files(
    reports: &[PairReport],
    client: &mut Client,
    outdir: &Path,
    force: bool,
) -> Result<(), BatchError> {
    for r in reports.iter().filter(|r| r.status == PairStatus::Ready) {
        let Some(out) = &r.output else { continue };
        let out = outdir.join(out);
        let dir = crate::fsutil::parent_dir(&out);
        std::fs::create_dir_all(dir)
            .map_err(|e| BatchError::io(format!("line {}: creating the folder {}", r.pair.line, dir.display()), e))?;
        if std::fs::symlink_metadata(&out).is_err() || force {
            continue;
        }
        let job = r.job();
        let own = client
            .existing(&job)
            .ok()
            .flatten()
            .and_then(|e| e.task_id)
            .is_some_and(|id| client.saved_output(&id).as_deref() == Some(out.as_path()));
        if !own {
            return Err(BatchError::OutputExists { line: r.pair.line, path: out });
        }
    }
    Ok(())
}
