//! Writing output files all at once or not at all.
//!
//! Each output is written to a temporary file beside its destination and renamed into place only
//! when complete, so a failed or interrupted run never leaves a half-written file under the final
//! name. A run's outputs as a whole go through a [`Staging`] folder inside the output folder and
//! are moved into place together when the run has succeeded, `run.json` last: a folder with a
//! `run.json` holds exactly the outputs of the run it describes, never a mix of two runs.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The temporary name used while `path` is being written: `.tmp-PID-` and at most 64 bytes of
/// the final name, so it is never much longer than that name.
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let short: String = name.chars().take(64).collect();
    path.with_file_name(format!(".tmp-{}-{short}", std::process::id()))
}

/// The prefix of a run's staging folder inside its output folder.
const STAGING_PREFIX: &str = ".scorenmf-staging-";

/// A folder inside the output folder where a run writes its outputs before they replace the
/// old ones. Dropped without [`Staging::commit`] (a failed run), it is removed, and the output
/// folder keeps the old outputs. A killed run leaves it behind; the next run in that folder
/// removes it (and temporary files of writers that are no longer running).
pub struct Staging {
    outdir: PathBuf,
    root: PathBuf,
    committed: bool,
}

impl Staging {
    /// Creates `outdir` if needed and a fresh staging folder in it, after removing what killed
    /// runs left there.
    pub fn new(outdir: &Path) -> Result<Staging> {
        fs::create_dir_all(outdir).map_err(|e| Error::write(outdir, e))?;
        remove_leftovers(outdir);
        let root = outdir.join(format!("{STAGING_PREFIX}{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir(&root).map_err(|e| Error::write(&root, e))?;
        Ok(Staging {
            outdir: outdir.to_path_buf(),
            root,
            committed: false,
        })
    }

    /// Where the run writes the outputs it will commit.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Moves the staged outputs into the output folder. `owned` names every output a run can
    /// write (files and folders, relative to the folder, `run.json` last); those this run did
    /// not write are removed, so what is left is this run's alone. The old `run.json` goes first
    /// and the new one comes last, so an interruption leaves a folder without `run.json`.
    pub fn commit(mut self, owned: &[&str]) -> Result<()> {
        let remove = |p: &Path| {
            if p.is_dir() {
                fs::remove_dir_all(p)
            } else {
                fs::remove_file(p)
            }
        };
        let record = owned.last().copied().unwrap_or("run.json");
        let old_record = self.outdir.join(record);
        if old_record.exists() {
            remove(&old_record).map_err(|e| Error::write(&old_record, e))?;
        }
        // Old folders are only moved aside here (into the staging folder or beside it) and
        // removed once the new run.json is in place, so the window without one stays short.
        let mut aside = Vec::new();
        for name in owned {
            let (new, dest) = (self.root.join(name), self.outdir.join(name));
            if new.exists() {
                aside.extend(replace(&new, &dest).map_err(|e| Error::write(&dest, e))?);
            } else if dest.exists() {
                remove(&dest).map_err(|e| Error::write(&dest, e))?;
            }
        }
        self.committed = true;
        for old in aside {
            let _ = fs::remove_dir_all(old);
        }
        let _ = fs::remove_dir_all(&self.root);
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.root);
        }
    }
}

/// Puts `new` at `dest`: a file by one rename; a folder by exchanging the two atomically where
/// the system can (Linux), else by moving the old one aside first. Returns where the old
/// folder now is, for the caller to remove.
fn replace(new: &Path, dest: &Path) -> std::io::Result<Option<PathBuf>> {
    if !(new.is_dir() && dest.exists()) {
        return fs::rename(new, dest).map(|()| None);
    }
    if exchange(new, dest).is_ok() {
        return Ok(Some(new.to_path_buf()));
    }
    let aside = dest.with_file_name(format!(".old-{}", std::process::id()));
    fs::rename(dest, &aside)?;
    fs::rename(new, dest)?;
    Ok(Some(aside))
}

#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other);
    let (ca, cb) = (c(a)?, c(b)?);
    // SAFETY: two valid NUL-terminated paths; renameat2 reads them and touches nothing else.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::Error::other("no atomic exchange here"))
}

/// Removes, in `dir` and its stems folders, the staging folders and temporary files of runs
/// that are no longer running (Linux: no `/proc/PID`; elsewhere only this process's own).
fn remove_leftovers(dir: &Path) {
    let mut dirs = vec![dir.to_path_buf()];
    for sub in ["stems", "stems/instrument", "stems/pitch", "stems/note"] {
        dirs.push(dir.join(sub));
    }
    for d in dirs {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = name
                .strip_prefix(STAGING_PREFIX)
                .or_else(|| name.strip_prefix(".old-"))
                .or_else(|| name.strip_prefix(".tmp-").and_then(|r| r.split('-').next()))
                .or_else(|| {
                    name.starts_with('.')
                        .then(|| name.rsplit_once(".tmp-").map(|(_, p)| p))
                        .flatten()
                })
                .and_then(|p| p.parse::<u32>().ok());
            let left_by_a_dead_run = pid.is_some_and(|p| !alive(p));
            if !left_by_a_dead_run {
                continue;
            }
            let p = e.path();
            let _ = if p.is_dir() {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
        }
    }
}

/// Whether process `pid` is running (on systems without `/proc`, only this one counts).
fn alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    if Path::new("/proc/self").exists() {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

/// Writes a file through `fill`, which receives a buffered writer; the file appears under `path`
/// only if `fill` and the final flush succeed.
pub fn write_with<F>(path: &Path, fill: F) -> Result<()>
where
    F: FnOnce(&mut BufWriter<fs::File>) -> std::io::Result<()>,
{
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))?;
    }
    let tmp = temp_path(path);
    let result = (|| {
        let file = fs::File::create(&tmp)?;
        let mut w = BufWriter::new(file);
        fill(&mut w)?;
        w.flush()?;
        w.get_ref().sync_all()?;
        Ok(())
    })();
    match result.and_then(|()| fs::rename(&tmp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(Error::write(path, e))
        }
    }
}

/// Writes `bytes` to `path` atomically.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with(path, |w| w.write_all(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_fill_leaves_nothing() {
        let dir = std::env::temp_dir().join(format!("scorenmf-atomic-{}", std::process::id()));
        let path = dir.join("out.txt");
        let err = write_with(&path, |w| {
            w.write_all(b"partial")?;
            Err(std::io::Error::other("boom"))
        });
        assert!(err.is_err());
        assert!(!path.exists());
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            0,
            "temp file left behind"
        );
        write_bytes(&path, b"whole").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"whole");
        fs::remove_dir_all(&dir).unwrap();
    }
}
