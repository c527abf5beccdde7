//! The report's raster images: matrices resampled onto a display grid and written as 8-bit
//! greyscale PNG (dark = large, as FMP's `gray_r` figures), with the `png` crate.

use std::path::Path;

use nalgebra::DMatrix;

use crate::error::{Error, Result};
use crate::io::atomic;

/// A greyscale raster, row-major, top row first; each value in [0, 1] (1 draws black).
#[derive(Debug, Clone, PartialEq)]
pub struct Raster {
    pub width: usize,
    pub height: usize,
    pub values: Vec<f32>,
}

impl Raster {
    pub fn new(width: usize, height: usize) -> Raster {
        Raster {
            width,
            height,
            values: vec![0.0; width * height],
        }
    }

    /// The value at column `x`, row `y` (from the top).
    pub fn at(&self, x: usize, y: usize) -> f32 {
        self.values[y * self.width + x]
    }

    /// Every value divided by `scale` and clipped to [0, 1] (a `scale` of 0 leaves zeros).
    pub fn normalize(&mut self, scale: f32) {
        let s = if scale > 0.0 { 1.0 / scale } else { 0.0 };
        for v in &mut self.values {
            *v = (*v * s).clamp(0.0, 1.0);
        }
    }

    /// The largest value (0 for an empty raster).
    pub fn max(&self) -> f32 {
        self.values.iter().fold(0.0f32, |m, &v| m.max(v))
    }

    /// 8-bit grey levels: 255 (white) for 0, 0 (black) for 1.
    pub fn grey_levels(&self) -> Vec<u8> {
        self.values
            .iter()
            .map(|&v| 255 - (v.clamp(0.0, 1.0) * 255.0).round() as u8)
            .collect()
    }
}

/// Column groups for at most `max_width` display columns over `n` columns: the display column
/// `x` covers source columns `x·f .. (x+1)·f` for the pooling factor f = ⌈n / max_width⌉.
pub fn pooling(n: usize, max_width: usize) -> usize {
    n.div_ceil(max_width.max(1)).max(1)
}

/// The rows `rows` of `m` as a raster (top row first), columns max-pooled by `factor`.
pub fn rows_raster(m: &DMatrix<f64>, rows: &[usize], factor: usize) -> Raster {
    let width = m.ncols().div_ceil(factor);
    let mut r = Raster::new(width, rows.len());
    for (y, &row) in rows.iter().enumerate() {
        for x in 0..width {
            let end = ((x + 1) * factor).min(m.ncols());
            let v = (x * factor..end).fold(0.0f64, |a, c| a.max(m[(row, c)]));
            r.values[y * width + x] = v as f32;
        }
    }
    r
}

/// The bins `0..bins` of `m`'s columns as a raster with the lowest bin at the bottom, one
/// display column per column of `m`.
pub fn columns_raster(m: &DMatrix<f64>, bins: usize) -> Raster {
    let bins = bins.min(m.nrows());
    let mut r = Raster::new(m.ncols(), bins);
    for c in 0..m.ncols() {
        for b in 0..bins {
            r.values[(bins - 1 - b) * m.ncols() + c] = m[(b, c)] as f32;
        }
    }
    r
}

/// A spectrogram on a pitch axis: display row `y` (from the top) is pitch
/// `top + 0.5 − (y + 0.5) / rows_per_semitone`, sampled at its centre frequency
/// f = a4 · 2^((p − 69)/12) — linearly between the two nearest bins where a row spans less than
/// a bin, the largest bin in the row's band where it spans more; columns max-pooled by `factor`.
/// `display` maps each value of `v` first (e.g. log compression). Only `v`'s columns `cols`
/// are drawn.
#[allow(clippy::too_many_arguments)]
pub fn pitch_raster(
    v: &DMatrix<f32>,
    cols: std::ops::Range<usize>,
    bin_hz: f64,
    a4: f64,
    (low, top): (u8, u8),
    rows_per_semitone: usize,
    factor: usize,
    display: impl Fn(f32) -> f32,
) -> Raster {
    let rows = (top - low + 1) as usize * rows_per_semitone;
    let cols = cols.start.min(v.ncols())..cols.end.min(v.ncols());
    let width = cols.len().div_ceil(factor);
    let last_bin = v.nrows().saturating_sub(1) as f64;
    let bin_of = |p: f64| (a4 * 2f64.powf((p - 69.0) / 12.0) / bin_hz).min(last_bin);
    let half = 0.5 / rows_per_semitone as f64;
    let spans: Vec<(f64, usize, usize)> = (0..rows)
        .map(|y| {
            let p = top as f64 + 0.5 - (y as f64 + 0.5) / rows_per_semitone as f64;
            let (lo, hi) = (bin_of(p - half), bin_of(p + half));
            (bin_of(p), lo.ceil() as usize, hi.floor() as usize)
        })
        .collect();
    let mut r = Raster::new(width, rows);
    for x in 0..width {
        let start = cols.start + x * factor;
        let end = (start + factor).min(cols.end);
        for (y, &(centre, lo, hi)) in spans.iter().enumerate() {
            let mut best = 0.0f32;
            for c in start..end {
                let col = v.column(c);
                let value = if hi > lo {
                    (lo..=hi).fold(0.0f32, |m, b| m.max(col[b]))
                } else {
                    let b0 = centre.floor() as usize;
                    let b1 = (b0 + 1).min(v.nrows() - 1);
                    let t = (centre - b0 as f64) as f32;
                    col[b0] * (1.0 - t) + col[b1] * t
                };
                best = best.max(display(value));
            }
            r.values[y * width + x] = best;
        }
    }
    r
}

/// Writes `r` to `path` as an 8-bit greyscale PNG (atomically).
pub fn write_png(path: &Path, r: &Raster) -> Result<()> {
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, r.width.max(1) as u32, r.height.max(1) as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Fast);
        let fail = |e: png::EncodingError| Error::Output {
            path: path.to_path_buf(),
            msg: format!("cannot encode the PNG: {e}"),
        };
        let mut w = enc.write_header().map_err(fail)?;
        let levels = if r.values.is_empty() {
            vec![255]
        } else {
            r.grey_levels()
        };
        w.write_image_data(&levels).map_err(fail)?;
    }
    atomic::write_bytes(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pitch_raster_puts_a_bin_at_its_pitch_row() {
        // 1025 bins at 22050/2048 Hz; all energy in the bin of A4 (440 Hz → bin 40.87, so 40–41).
        let bin_hz = 22050.0 / 2048.0;
        let mut v = DMatrix::<f32>::zeros(1025, 3);
        for c in 0..3 {
            v[(41, c)] = 1.0;
        }
        let r = pitch_raster(&v, 0..3, bin_hz, 440.0, (60, 80), 2, 1, |x| x);
        // Row of pitch 69 (centre 69.25 and 68.75 for the two rows of the semitone).
        let row_69 = (80 - 69) * 2;
        let (best, _) = (0..r.height)
            .map(|y| (y, r.at(1, y)))
            .fold((0, 0.0f32), |b, (y, v)| if v > b.1 { (y, v) } else { b });
        assert!(best.abs_diff(row_69) <= 1, "{best} vs {row_69}");
        assert_eq!(r.at(1, 0), 0.0);
    }

    #[test]
    fn rows_raster_pools_by_max_and_grey_levels_run_white_to_black() {
        let m = DMatrix::from_row_slice(2, 4, &[0.0, 1.0, 0.5, 0.0, 2.0, 0.0, 0.0, 0.0]);
        let mut r = rows_raster(&m, &[1, 0], 2);
        assert_eq!((r.width, r.height), (2, 2));
        assert_eq!(r.values, vec![2.0, 0.0, 1.0, 0.5]);
        r.normalize(2.0);
        assert_eq!(r.grey_levels(), vec![0, 255, 127, 191]);
        assert_eq!(pooling(10_000, 4000), 3);
    }
}
