//! Matrices in and out: NumPy `.npy` (what a Python user loads with `np.load`) and CSV (one row
//! per matrix row, comma-separated, full precision).
//!
//! A matrix is read from `.npy` (float64 or float32, 2-D, either memory order) or from CSV
//! (numbers only, every row as long as the first); it is written as float64 `.npy` in C order
//! and as CSV with the shortest text that reads back to the same `f64`.

use std::io::Write;
use std::path::Path;

use nalgebra::DMatrix;
use ndarray::{Array2, ArrayView2};
use ndarray_npy::{ViewNpyExt, WriteNpyExt};

use crate::error::{Error, Result};
use crate::io::atomic;

fn bad(path: &Path, msg: impl Into<String>) -> Error {
    Error::Matrix {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

/// Reads a 2-D matrix from `.npy` or CSV (by the file's extension: `.npy`, else CSV).
pub fn read_matrix(path: &Path) -> Result<DMatrix<f64>> {
    let bytes = std::fs::read(path).map_err(|e| Error::read(path, e))?;
    parse(path, &bytes)
}

/// A matrix from the bytes of `path` (`.npy` or CSV by its extension; the path names the file
/// in errors).
pub fn parse(path: &Path, bytes: &[u8]) -> Result<DMatrix<f64>> {
    let m = if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"))
    {
        read_npy(path, bytes)?
    } else {
        read_csv(path, bytes)?
    };
    if let Some(x) = m.iter().find(|x| !x.is_finite()) {
        return Err(bad(path, format!("holds {x}; every entry must be finite")));
    }
    Ok(m)
}

/// A `.npy` file's matrix. The header's declared length is checked against the file first,
/// and the data is viewed in place (ndarray-npy checks that the shape fits the bytes), so a
/// corrupt header never makes the reader allocate what the file does not hold.
fn read_npy(path: &Path, bytes: &[u8]) -> Result<DMatrix<f64>> {
    npy_header_fits(bytes).map_err(|msg| bad(path, msg))?;
    // An 8-byte aligned copy, so the data (at a multiple of 16 or 64 bytes in the file) can be
    // viewed as f64 or f32.
    let mut words = vec![0u64; bytes.len().div_ceil(8)];
    // SAFETY: `words` has room for `bytes.len()` bytes; u64 has no invalid bit patterns.
    let aligned: &mut [u8] =
        unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), bytes.len()) };
    aligned.copy_from_slice(bytes);
    let aligned: &[u8] = aligned;
    let to_matrix = |a: ArrayView2<f64>| DMatrix::from_fn(a.nrows(), a.ncols(), |i, j| a[(i, j)]);
    match ArrayView2::<f64>::view_npy(aligned) {
        Ok(a) => Ok(to_matrix(a)),
        Err(first) => match ArrayView2::<f32>::view_npy(aligned) {
            Ok(a) => Ok(DMatrix::from_fn(a.nrows(), a.ncols(), |i, j| {
                a[(i, j)] as f64
            })),
            Err(_) => Err(bad(
                path,
                format!("not a 2-D little-endian float64 or float32 .npy array: {first}"),
            )),
        },
    }
}

/// Checks the `.npy` magic, version and that the header the file declares lies within it.
fn npy_header_fits(bytes: &[u8]) -> std::result::Result<(), String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not a .npy file (no \\x93NUMPY magic string)".into());
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        2 | 3 => return Err("truncated .npy header".into()),
        v => return Err(format!(".npy format version {v} is not supported")),
    };
    if start + len > bytes.len() {
        return Err(format!(
            "truncated: its header declares {len} bytes, the file has {}",
            bytes.len()
        ));
    }
    Ok(())
}

fn read_csv(path: &Path, bytes: &[u8]) -> Result<DMatrix<f64>> {
    let mut rows: Vec<Vec<f64>> = Vec::new();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    for (i, rec) in reader.records().enumerate() {
        let line = i as u64 + 1;
        let rec = rec.map_err(|e| Error::Csv {
            path: path.to_path_buf(),
            line: Some(line),
            column: None,
            msg: e.to_string(),
        })?;
        let row = rec
            .iter()
            .enumerate()
            .map(|(j, f)| {
                f.parse::<f64>().map_err(|_| Error::Csv {
                    path: path.to_path_buf(),
                    line: Some(line),
                    column: Some((j + 1).to_string()),
                    msg: format!("{f:?} is not a number"),
                })
            })
            .collect::<Result<Vec<f64>>>()?;
        if let Some(first) = rows.first() {
            if first.len() != row.len() {
                return Err(Error::Csv {
                    path: path.to_path_buf(),
                    line: Some(line),
                    column: None,
                    msg: format!("{} values, the first row has {}", row.len(), first.len()),
                });
            }
        }
        rows.push(row);
    }
    if rows.is_empty() || rows[0].is_empty() {
        return Err(bad(path, "holds no matrix"));
    }
    Ok(DMatrix::from_fn(rows.len(), rows[0].len(), |i, j| {
        rows[i][j]
    }))
}

/// Writes `m` as float64 `.npy` (C order), atomically.
pub fn write_npy(path: &Path, m: &DMatrix<f64>) -> Result<()> {
    let a = Array2::from_shape_fn(m.shape(), |(i, j)| m[(i, j)]);
    atomic::write_with(path, |w| a.write_npy(w).map_err(std::io::Error::other))
}

/// Writes `m` as CSV, one line per row, atomically.
pub fn write_csv(path: &Path, m: &DMatrix<f64>) -> Result<()> {
    atomic::write_with(path, |w| {
        for i in 0..m.nrows() {
            for j in 0..m.ncols() {
                if j > 0 {
                    w.write_all(b",")?;
                }
                write!(w, "{:?}", m[(i, j)])?;
            }
            w.write_all(b"\n")?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_and_csv_round_trip() {
        let dir = std::env::temp_dir().join(format!("scorenmf-matrix-{}", std::process::id()));
        let m = DMatrix::from_fn(3, 4, |i, j| (i as f64 + 0.1) * (j as f64 - 1.7) / 3.0);
        write_npy(&dir.join("m.npy"), &m).unwrap();
        write_csv(&dir.join("m.csv"), &m).unwrap();
        assert_eq!(read_matrix(&dir.join("m.npy")).unwrap(), m);
        assert_eq!(read_matrix(&dir.join("m.csv")).unwrap(), m);
        std::fs::write(dir.join("bad.csv"), "1,2\n3,x\n").unwrap();
        let e = read_matrix(&dir.join("bad.csv")).unwrap_err().to_string();
        assert!(e.contains("line 2, column 2"), "{e}");
        std::fs::write(dir.join("bad.npy"), "not numpy").unwrap();
        assert!(read_matrix(&dir.join("bad.npy")).is_err());
        // A header that claims 4 GB, and a shape the data does not fill: errors, no allocation.
        let mut huge = b"\x93NUMPY\x02\x00".to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        std::fs::write(dir.join("huge.npy"), &huge).unwrap();
        let e = read_matrix(&dir.join("huge.npy")).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
        let mut bytes = std::fs::read(dir.join("m.npy")).unwrap();
        let at = bytes
            .windows(6)
            .position(|w| w == b"(3, 4)")
            .expect("the shape");
        bytes[at..at + 6].copy_from_slice(b"(9, 9)");
        std::fs::write(dir.join("short.npy"), &bytes).unwrap();
        let e = read_matrix(&dir.join("short.npy")).unwrap_err().to_string();
        assert!(e.contains("short.npy"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
