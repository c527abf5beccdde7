//! Matrices in and out: NumPy `.npy` (what a Python user loads with `np.load`) and CSV (one row
//! per matrix row, comma-separated, full precision).
//!
//! A matrix is read from `.npy` (float64 or float32, 2-D, either memory order) or from CSV
//! (numbers only, every row as long as the first); it is written as float64 `.npy` in C order
//! and as CSV with the shortest text that reads back to the same `f64`.

use std::io::Write;
use std::path::Path;

use nalgebra::DMatrix;
use ndarray::Array2;
use ndarray_npy::{ReadNpyExt, WriteNpyExt};

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
    let m = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy")) {
        read_npy(path, &bytes)?
    } else {
        read_csv(path, &bytes)?
    };
    if let Some(x) = m.iter().find(|x| !x.is_finite()) {
        return Err(bad(path, format!("holds {x}; every entry must be finite")));
    }
    Ok(m)
}

fn read_npy(path: &Path, bytes: &[u8]) -> Result<DMatrix<f64>> {
    let to_matrix = |a: Array2<f64>| DMatrix::from_fn(a.nrows(), a.ncols(), |i, j| a[(i, j)]);
    match Array2::<f64>::read_npy(bytes) {
        Ok(a) => Ok(to_matrix(a)),
        Err(first) => match Array2::<f32>::read_npy(bytes) {
            Ok(a) => Ok(to_matrix(a.mapv(f64::from))),
            Err(_) => Err(bad(
                path,
                format!("not a 2-D float64 or float32 .npy array: {first}"),
            )),
        },
    }
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
    Ok(DMatrix::from_fn(rows.len(), rows[0].len(), |i, j| rows[i][j]))
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
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
