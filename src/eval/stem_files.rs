//! The stem files BSS Eval compares: a reference and an estimate folder matched by file name
//! (or two lists of files), read as mono mix-downs of one rate and length, as `eval stems` and
//! corpus summaries use them.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::io::audio;

/// The (reference, estimate) files to compare. Two folders: the files of the reference folder
/// whose name the estimate folder also has (refused when none is shared, or when a reference
/// has no estimate); otherwise the comma-separated lists, in order.
pub fn stem_pairs(reference: &Path, estimate: &Path) -> Result<Vec<(PathBuf, PathBuf)>> {
    if reference.is_dir() && estimate.is_dir() {
        return folder_pairs(reference, estimate);
    }
    let list = |arg: &Path| -> Result<Vec<PathBuf>> {
        if arg.is_dir() {
            return files_in(arg);
        }
        let files: Vec<PathBuf> = arg
            .to_string_lossy()
            .split(',')
            .map(|s| PathBuf::from(s.trim()))
            .collect();
        if let Some(missing) = files.iter().find(|f| !f.is_file()) {
            let e = std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such file or folder of stems",
            );
            return Err(Error::read(missing, e));
        }
        Ok(files)
    };
    let (refs, ests) = (list(reference)?, list(estimate)?);
    if refs.is_empty() || refs.len() != ests.len() {
        return Err(Error::Param(format!(
            "{} reference stems ({}) and {} estimated ({}): need the same number, at least one",
            refs.len(),
            reference.display(),
            ests.len(),
            estimate.display()
        )));
    }
    Ok(refs.into_iter().zip(ests).collect())
}

/// The files of two folders matched by name; see [`stem_pairs`]. Folders that hold folders
/// of stems (a run's `stems/`, with `instrument/`, `pitch/`, …) are refused: one grouping at a
/// time is what BSS Eval compares.
pub fn folder_pairs(reference: &Path, estimate: &Path) -> Result<Vec<(PathBuf, PathBuf)>> {
    for dir in [reference, estimate] {
        let subs = subfolders(dir);
        if !subs.is_empty() {
            return Err(Error::Param(format!(
                "{} holds folders ({}): give one grouping's folder on both sides, e.g. {}",
                dir.display(),
                listing(&subs),
                dir.join(&subs[0]).display()
            )));
        }
    }
    let names = |dir: &Path| -> Result<Vec<String>> {
        Ok(files_in(dir)?
            .iter()
            .map(|p| {
                p.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect())
    };
    let (refs, ests) = (names(reference)?, names(estimate)?);
    let missing: Vec<&String> = refs.iter().filter(|n| !ests.contains(n)).collect();
    if refs.is_empty() || missing.len() == refs.len() {
        return Err(Error::Param(format!(
            "{} and {} have no stem file name in common ({}: {}; {}: {})",
            reference.display(),
            estimate.display(),
            reference.display(),
            listing(&refs),
            estimate.display(),
            listing(&ests),
        )));
    }
    if !missing.is_empty() {
        return Err(Error::Param(format!(
            "{}: no estimate for the reference stem(s) {}",
            estimate.display(),
            listing(&missing)
        )));
    }
    Ok(refs
        .iter()
        .map(|n| (reference.join(n), estimate.join(n)))
        .collect())
}

/// At most a few names, comma-separated, or "no files".
fn listing<S: AsRef<str>>(names: &[S]) -> String {
    const AT_MOST: usize = 6;
    if names.is_empty() {
        return "no files".into();
    }
    let mut s = names
        .iter()
        .take(AT_MOST)
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > AT_MOST {
        s.push_str(&format!(" and {} more", names.len() - AT_MOST));
    }
    s
}

/// The folders in `dir` (hidden ones aside), sorted by name.
pub fn subfolders(dir: &Path) -> Vec<String> {
    let mut subs: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    subs.sort();
    subs
}

/// The files (not folders) directly in `dir`, sorted by name.
fn files_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::read(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// How much an estimate's length may differ from its reference's (as a fraction of the
/// reference's), the shorter then zero-padded; more means the wrong file.
pub const LENGTH_SLACK: f64 = 0.01;

/// The pairs' mono mix-downs, all zero-padded to the longest reference; one sample rate. An
/// estimate must have its reference's rate and channel count, and its length within
/// [`LENGTH_SLACK`].
#[allow(clippy::type_complexity)]
pub fn load_pairs(pairs: &[(PathBuf, PathBuf)]) -> Result<(u32, Vec<Vec<f64>>, Vec<Vec<f64>>)> {
    let load = |p: &Path| -> Result<(u32, usize, Vec<f64>)> {
        let a = audio::read_audio(p)?;
        let mono = a.mono().into_iter().map(f64::from).collect();
        Ok((a.sample_rate, a.channels.len(), mono))
    };
    let mut refs = Vec::new();
    let mut ests = Vec::new();
    let mut rate = None;
    for (rp, ep) in pairs {
        let (rr, rc, rs) = load(rp)?;
        let (er, ec, mut es) = load(ep)?;
        let mismatch = |what: String| {
            Err(Error::Param(format!(
                "{}: {what} (reference {})",
                ep.display(),
                rp.display()
            )))
        };
        if rate.is_some_and(|x| x != rr) || er != rr {
            return mismatch(format!(
                "sample rate {er} Hz differs from the references' {rr} Hz"
            ));
        }
        if ec != rc {
            return mismatch(format!("{ec} channels where the reference has {rc}"));
        }
        if (es.len() as f64 - rs.len() as f64).abs() > LENGTH_SLACK * rs.len() as f64 {
            return mismatch(format!(
                "{} samples where the reference has {}: more than 1 % apart",
                es.len(),
                rs.len()
            ));
        }
        rate = Some(rr);
        es.resize(rs.len(), 0.0);
        refs.push(rs);
        ests.push(es);
    }
    let n = refs.iter().map(Vec::len).max().unwrap_or(0);
    for s in refs.iter_mut().chain(ests.iter_mut()) {
        s.resize(n, 0.0);
    }
    Ok((rate.unwrap_or(1), refs, ests))
}
