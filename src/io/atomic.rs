//! Writing output files all at once or not at all.
//!
//! Each output is written to a temporary file beside its destination and renamed into place only
//! when complete, so a failed or interrupted run never leaves a half-written file under the final
//! name.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The temporary name used while `path` is being written.
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
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
