//! Harmonic–percussive separation by median filtering (Fitzgerald, "Harmonic/percussive
//! separation using median filtering", DAFx 2010; Driedger, Müller & Disch, "Extending
//! harmonic-percussive separation of audio signals", ISMIR 2014, for the margin), as
//! `librosa.decompose.hpss` computes it.
//!
//! On the magnitude spectrogram S (bins × frames):
//!
//! ```text
//! H̃ = median over ℓ_h frames of S (along time),   P̃ = median over ℓ_p bins of S (along frequency)
//! M_H = H̃^p / (H̃^p + (β_h·P̃)^p),                  M_P = P̃^p / (P̃^p + (β_p·H̃)^p)
//! ```
//!
//! computed as librosa's `util.softmask`: both terms divided by Z = max(X, X_ref) first; where
//! Z is below the type's smallest normal number the mask is ½ if both margins are 1, else 0.
//! p = ∞ gives binary masks (X > X_ref). The median filters are scipy's `median_filter` with
//! `mode="reflect"` (the edge sample repeated: d c b a | a b c d | d c b a); a window of even
//! length ℓ covers ℓ/2 samples before and ℓ/2 − 1 after, and takes the (ℓ/2 + 1)-th smallest
//! (scipy's rank ⌊ℓ/2⌋). Computed in `f32`, as librosa does on its default float32 spectrogram.

use nalgebra::DMatrix;
use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};

/// Parameters of [`masks`] (librosa's defaults: 31, 31, 2, 1, 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HpssParams {
    /// ℓ_h: frames of the harmonic (time) median filter.
    pub kernel_harmonic: usize,
    /// ℓ_p: bins of the percussive (frequency) median filter.
    pub kernel_percussive: usize,
    /// p: the masks' power (`f64::INFINITY`: binary masks).
    pub power: f64,
    /// β_h ≥ 1.
    pub margin_harmonic: f64,
    /// β_p ≥ 1.
    pub margin_percussive: f64,
}

impl Default for HpssParams {
    fn default() -> Self {
        HpssParams {
            kernel_harmonic: 31,
            kernel_percussive: 31,
            power: 2.0,
            margin_harmonic: 1.0,
            margin_percussive: 1.0,
        }
    }
}

impl HpssParams {
    fn check(&self) -> Result<()> {
        if self.kernel_harmonic == 0 || self.kernel_percussive == 0 {
            return Err(Error::Param("HPSS kernels must be at least 1".into()));
        }
        let margin_fine = |m: f64| m.is_finite() && m >= 1.0;
        if !margin_fine(self.margin_harmonic) || !margin_fine(self.margin_percussive) {
            return Err(Error::Param(
                "HPSS margins must be at least 1 (a typical range is 1 to 10)".into(),
            ));
        }
        if self.power.is_nan() || self.power <= 0.0 {
            return Err(Error::Param(format!(
                "HPSS power {}: must be positive",
                self.power
            )));
        }
        Ok(())
    }

    /// Whether the margins leave a residual (1 − M_H − M_P > 0 somewhere).
    pub fn has_residual(&self) -> bool {
        self.margin_harmonic > 1.0 || self.margin_percussive > 1.0
    }
}

/// The harmonic and percussive masks (M_H, M_P) of the magnitude spectrogram `s` (bins ×
/// frames).
pub fn masks(s: &DMatrix<f32>, p: &HpssParams) -> Result<(DMatrix<f32>, DMatrix<f32>)> {
    p.check()?;
    if s.iter().any(|x| !(x.is_finite() && *x >= 0.0)) {
        return Err(Error::Param(
            "HPSS needs a finite non-negative spectrogram".into(),
        ));
    }
    let mut harm = median_along_time(s, p.kernel_harmonic);
    let mut perc = median_along_frequency(s, p.kernel_percussive);
    let split_zeros = p.margin_harmonic == 1.0 && p.margin_percussive == 1.0;
    let (bh, bp) = (p.margin_harmonic as f32, p.margin_percussive as f32);
    // Both masks in place of the filtered spectrograms, entry by entry.
    harm.as_mut_slice()
        .par_chunks_mut(1 << 14)
        .zip(perc.as_mut_slice().par_chunks_mut(1 << 14))
        .for_each(|(hs, ps)| {
            for (h, q) in hs.iter_mut().zip(ps.iter_mut()) {
                let (a, b) = (*h, *q);
                *h = soft(a, b * bh, p.power, split_zeros);
                *q = soft(b, a * bp, p.power, split_zeros);
            }
        });
    Ok((harm, perc))
}

/// librosa's `util.softmask(x, x_ref, power, split_zeros)` for one entry (x_ref already times
/// the margin).
#[inline(always)]
fn soft(x: f32, x_ref: f32, power: f64, split: bool) -> f32 {
    if power.is_infinite() {
        return if x > x_ref { 1.0 } else { 0.0 };
    }
    let z = x.max(x_ref);
    if z < f32::MIN_POSITIVE {
        return if split { 0.5 } else { 0.0 };
    }
    let pow = |v: f32| {
        if power == 2.0 {
            v * v
        } else if power == 1.0 {
            v
        } else {
            v.powf(power as f32)
        }
    };
    let m = pow(x / z);
    let r = pow(x_ref / z);
    m / (m + r)
}

/// The index `i` (possibly outside 0..len) reflected into the line, scipy's `reflect`.
fn reflect(i: isize, len: usize) -> usize {
    let l = len as isize;
    let m = i.rem_euclid(2 * l);
    (if m < l { m } else { 2 * l - 1 - m }) as usize
}

/// The running median (rank ⌊ℓ/2⌋) of `x` over windows of `len` samples, into `out`.
fn running_median(x: &[f32], len: usize, out: &mut [f32]) {
    let n = x.len();
    if n == 0 {
        return;
    }
    let before = (len / 2) as isize;
    let rank = len / 2;
    let at = |i: isize| x[reflect(i, n)];
    let mut window: Vec<f32> = (0..len as isize).map(|o| at(o - before)).collect();
    window.sort_by(f32::total_cmp);
    out[0] = window[rank];
    for i in 1..n as isize {
        let gone = at(i - 1 - before);
        let come = at(i - 1 - before + len as isize);
        if gone.to_bits() != come.to_bits() {
            let pos = window
                .binary_search_by(|v| v.total_cmp(&gone))
                .expect("the leaving sample is in the window");
            window.remove(pos);
            let ins = window.partition_point(|v| v.total_cmp(&come).is_lt());
            window.insert(ins, come);
        }
        out[i as usize] = window[rank];
    }
}

/// Rows per job of the time filter.
const ROWS: usize = 16;

/// The median filter along each row (time): rows in groups, each group's results written
/// into the output under a lock (the filtering, not the writing, is the work).
fn median_along_time(s: &DMatrix<f32>, len: usize) -> DMatrix<f32> {
    let (k, n) = s.shape();
    let out = std::sync::Mutex::new(DMatrix::<f32>::zeros(k, n));
    (0..k.div_ceil(ROWS)).into_par_iter().for_each(|g| {
        let rows = g * ROWS..((g + 1) * ROWS).min(k);
        let mut done = vec![0.0f32; rows.len() * n];
        let mut row = vec![0.0f32; n];
        for (i, r) in rows.clone().enumerate() {
            for (x, y) in row.iter_mut().zip(s.row(r).iter()) {
                *x = *y;
            }
            running_median(&row, len, &mut done[i * n..(i + 1) * n]);
        }
        let mut o = out.lock().expect("no panics while held");
        for (i, r) in rows.enumerate() {
            for (j, &x) in done[i * n..(i + 1) * n].iter().enumerate() {
                o[(r, j)] = x;
            }
        }
    });
    out.into_inner().expect("no panics while held")
}

/// The median filter along each column (frequency).
fn median_along_frequency(s: &DMatrix<f32>, len: usize) -> DMatrix<f32> {
    let (k, n) = s.shape();
    let mut out = DMatrix::<f32>::zeros(k, n);
    if k == 0 {
        return out;
    }
    out.as_mut_slice()
        .par_chunks_mut(k)
        .zip(s.as_slice().par_chunks(k))
        .for_each(|(o, col)| running_median(col, len, o));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sliding median against sorting every window.
    #[test]
    fn running_median_matches_sorting_each_window() {
        let x: Vec<f32> = (0..40).map(|i| ((i * 37) % 11) as f32 * 0.5).collect();
        for len in [1, 2, 5, 30, 31, 97] {
            let mut fast = vec![0.0; x.len()];
            running_median(&x, len, &mut fast);
            for i in 0..x.len() as isize {
                let mut w: Vec<f32> = (0..len as isize)
                    .map(|o| x[reflect(i + o - (len / 2) as isize, x.len())])
                    .collect();
                w.sort_by(f32::total_cmp);
                assert_eq!(fast[i as usize], w[len / 2], "len {len}, at {i}");
            }
        }
    }

    #[test]
    fn reflect_repeats_the_edge() {
        let idx: Vec<usize> = (-5..9).map(|i| reflect(i, 4)).collect();
        assert_eq!(idx, vec![3, 3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0, 0]);
    }

    /// A steady tone goes to the harmonic mask, a click to the percussive one.
    #[test]
    fn tones_are_harmonic_and_clicks_percussive() {
        let mut s = DMatrix::<f32>::from_element(64, 80, 0.01);
        for j in 0..80 {
            s[(10, j)] = 1.0;
        }
        for i in 0..64 {
            s[(i, 40)] = 1.0;
        }
        let (h, p) = masks(&s, &HpssParams::default()).unwrap();
        assert!(h[(10, 20)] > 0.99 && p[(10, 20)] < 0.01);
        assert!(p[(30, 40)] > 0.99 && h[(30, 40)] < 0.01);
        let bad = HpssParams {
            margin_harmonic: 0.5,
            ..Default::default()
        };
        assert!(masks(&s, &bad).is_err());
    }
}
