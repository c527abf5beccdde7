//! Constrained non-negative matrix factorization V ≈ W·H by multiplicative updates
//! (Lee & Seung, "Algorithms for non-negative matrix factorization", NIPS 2000; FMP notebook
//! C8S3 and libfmp `nmf`).
//!
//! **Euclidean distance** ‖V − WH‖²_F, in FMP's order (H first, then W with the new H):
//!
//! ```text
//! H ← H ⊙ (WᵀV) ⊘ ((WᵀW)·H + ε)
//! W ← W ⊙ (V·Hᵀ) ⊘ (W·(H·Hᵀ) + ε)
//! ```
//!
//! (libfmp computes the W denominator as (W·H)·Hᵀ; W·(H·Hᵀ) is the same up to rounding, at a
//! fraction of the cost.)
//!
//! **Generalized Kullback–Leibler divergence** D(V‖WH) = Σ V log(V/WH) − V + WH:
//!
//! ```text
//! H ← H ⊙ (Wᵀ·(V ⊘ (WH + ε))) ⊘ (Wᵀ·1 + ε)
//! W ← W ⊙ ((V ⊘ (WH + ε))·Hᵀ) ⊘ (1·Hᵀ + ε)
//! ```
//!
//! ⊙ and ⊘ are element-wise; ε is float32's machine epsilon (1.1920929e-07) as in libfmp. The
//! updates are multiplicative, so every zero of W₀ and H₀ — the score constraints — stays zero.
//! Optionally the loop stops early once ‖ΔH‖₂ and ‖ΔW‖₂ (spectral norms of the change in one
//! iteration, libfmp's `np.linalg.norm(·, ord=2)`) both fall under a threshold. With `normalize`,
//! each column of W is divided by its maximum at the end and the matching row of H multiplied
//! by it (libfmp `norm=True`), which leaves W·H unchanged.

use nalgebra::{DMatrix, SymmetricEigen};
use serde::Serialize;

use crate::error::{Error, Result};

/// The cost the updates decrease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Divergence {
    /// Squared Euclidean distance (FMP).
    Euclidean,
    /// Generalized Kullback–Leibler divergence.
    Kl,
}

/// Parameters of the factorization.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct NmfParams {
    pub divergence: Divergence,
    /// Maximum number of iterations (FMP notebooks: 100).
    pub iterations: usize,
    /// Stop early when both ‖ΔH‖₂ and ‖ΔW‖₂ fall under this (libfmp's `thresh`); `None` runs all
    /// iterations.
    pub stop_threshold: Option<f64>,
    /// Added to denominators (libfmp: float32 machine epsilon).
    pub eps: f64,
    /// Keep W = W₀ and update only H.
    pub fixed_w: bool,
    /// Max-normalize the columns of W at the end, rescaling H (libfmp `norm=True`).
    pub normalize: bool,
}

impl Default for NmfParams {
    fn default() -> Self {
        NmfParams {
            divergence: Divergence::Euclidean,
            iterations: 100,
            stop_threshold: Some(0.001),
            eps: f32::EPSILON as f64,
            fixed_w: false,
            normalize: true,
        }
    }
}

/// The result of [`factorize`].
#[derive(Debug, Clone)]
pub struct Factorization {
    /// Templates, K × R.
    pub w: DMatrix<f64>,
    /// Activations, R × N.
    pub h: DMatrix<f64>,
    /// Iterations run.
    pub iterations: usize,
    /// ‖V − WH‖_F / ‖V‖_F at the end.
    pub rel_error: f64,
}

/// Factorizes `v` (K × N) from `w0` (K × R) and `h0` (R × N). `progress` is called after each
/// iteration with its number.
pub fn factorize(
    v: &DMatrix<f64>,
    w0: DMatrix<f64>,
    h0: DMatrix<f64>,
    p: &NmfParams,
    mut progress: impl FnMut(usize),
) -> Result<Factorization> {
    let (k, n) = v.shape();
    let r = w0.ncols();
    if w0.nrows() != k || h0.shape() != (r, n) {
        return Err(Error::Param(format!(
            "NMF shapes do not fit: V {k}×{n}, W {}×{}, H {}×{}",
            w0.nrows(),
            w0.ncols(),
            h0.nrows(),
            h0.ncols()
        )));
    }
    if v.iter()
        .chain(w0.iter())
        .chain(h0.iter())
        .any(|x| !(*x >= 0.0) || !x.is_finite())
    {
        return Err(Error::Param(
            "NMF needs finite non-negative V, W₀ and H₀".into(),
        ));
    }
    let mut w = w0;
    let mut h = h0;
    let eps = p.eps;
    let mut done = 0;
    for it in 1..=p.iterations {
        let (h_prev, w_prev) = match p.stop_threshold {
            Some(_) => (Some(h.clone()), Some(w.clone())),
            None => (None, None),
        };
        match p.divergence {
            Divergence::Euclidean => {
                let wt = w.transpose();
                let num = &wt * v;
                let den = (&wt * &w) * &h;
                h.zip_zip_apply(&num, &den, |x, a, b| *x *= a / (b + eps));
                if !p.fixed_w {
                    let ht = h.transpose();
                    let num = v * &ht;
                    let den = &w * (&h * &ht);
                    w.zip_zip_apply(&num, &den, |x, a, b| *x *= a / (b + eps));
                }
            }
            Divergence::Kl => {
                let q = kl_ratio(v, &w, &h, eps);
                let num = w.transpose() * &q;
                let col_sums: Vec<f64> = w.column_iter().map(|c| c.sum()).collect();
                for (ri, mut row) in h.row_iter_mut().enumerate() {
                    for (x, a) in row.iter_mut().zip(num.row(ri).iter()) {
                        *x *= a / (col_sums[ri] + eps);
                    }
                }
                if !p.fixed_w {
                    let q = kl_ratio(v, &w, &h, eps);
                    let num = &q * h.transpose();
                    let row_sums: Vec<f64> = h.row_iter().map(|rw| rw.sum()).collect();
                    for (ci, mut col) in w.column_iter_mut().enumerate() {
                        for (x, a) in col.iter_mut().zip(num.column(ci).iter()) {
                            *x *= a / (row_sums[ci] + eps);
                        }
                    }
                }
            }
        }
        done = it;
        progress(it);
        if let (Some(t), Some(hp), Some(wp)) = (p.stop_threshold, h_prev, w_prev) {
            if spectral_norm(&(&h - hp)) < t && spectral_norm(&(&w - wp)) < t {
                break;
            }
        }
    }
    if p.normalize {
        for ri in 0..r {
            let vmax = w.column(ri).max();
            if vmax > 0.0 {
                w.column_mut(ri).unscale_mut(vmax);
                h.row_mut(ri).scale_mut(vmax);
            }
        }
    }
    let rel_error = (v - &w * &h).norm() / v.norm();
    Ok(Factorization {
        w,
        h,
        iterations: done,
        rel_error,
    })
}

/// Refits activations with the templates fixed: `iterations` Euclidean multiplicative updates
/// H ← H ⊙ (WᵀV) ⊘ ((WᵀW)·H + ε) from `h`, and returns H and ‖V − WH‖²_F.
pub fn refit_h(
    v: &DMatrix<f64>,
    w: &DMatrix<f64>,
    mut h: DMatrix<f64>,
    iterations: usize,
    eps: f64,
) -> (DMatrix<f64>, f64) {
    let wt = w.transpose();
    let wtv = &wt * v;
    let wtw = &wt * w;
    for _ in 0..iterations {
        let den = &wtw * &h;
        h.zip_zip_apply(&wtv, &den, |x, a, b| *x *= a / (b + eps));
    }
    let err = (v - w * &h).norm_squared();
    (h, err)
}

/// V ⊘ (WH + ε).
fn kl_ratio(v: &DMatrix<f64>, w: &DMatrix<f64>, h: &DMatrix<f64>, eps: f64) -> DMatrix<f64> {
    let mut q = w * h;
    q.zip_apply(v, |x, vv| *x = vv / (*x + eps));
    q
}

/// The largest singular value of `m`, from the eigenvalues of its smaller Gram matrix.
pub fn spectral_norm(m: &DMatrix<f64>) -> f64 {
    let gram = if m.nrows() <= m.ncols() {
        m * m.transpose()
    } else {
        m.transpose() * m
    };
    if gram.is_empty() {
        return 0.0;
    }
    SymmetricEigen::new(gram)
        .eigenvalues
        .iter()
        .fold(0.0f64, |a, &b| a.max(b))
        .sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rank-2 product with known factors, and a zero pattern to respect.
    fn problem() -> (DMatrix<f64>, DMatrix<f64>, DMatrix<f64>) {
        let w = DMatrix::from_row_slice(4, 2, &[1.0, 0.0, 0.5, 0.2, 0.0, 1.0, 0.3, 0.6]);
        let h = DMatrix::from_row_slice(2, 5, &[1.0, 2.0, 0.0, 0.0, 1.0, 0.0, 0.5, 1.0, 2.0, 0.0]);
        let v = &w * &h;
        let w0 = w.map(|x| if x > 0.0 { 0.5 } else { 0.0 });
        let h0 = h.map(|x| if x > 0.0 { 1.0 } else { 0.0 });
        (v, w0, h0)
    }

    #[test]
    fn both_divergences_fit_and_keep_zeros() {
        for divergence in [Divergence::Euclidean, Divergence::Kl] {
            let (v, w0, h0) = problem();
            let p = NmfParams {
                divergence,
                iterations: 2000,
                stop_threshold: None,
                ..Default::default()
            };
            let f = factorize(&v, w0.clone(), h0.clone(), &p, |_| {}).unwrap();
            assert!(f.rel_error < 1e-3, "{divergence:?}: {}", f.rel_error);
            for (a, b) in f.w.iter().zip(w0.iter()).chain(f.h.iter().zip(h0.iter())) {
                assert!(*b != 0.0 || *a == 0.0, "a zero of W₀/H₀ became {a}");
            }
            // Max-normalized columns.
            for c in f.w.column_iter() {
                assert!((c.max() - 1.0).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn fixed_w_leaves_w_alone_and_stop_threshold_stops() {
        let (v, w0, h0) = problem();
        let p = NmfParams {
            fixed_w: true,
            normalize: false,
            iterations: 500,
            stop_threshold: Some(1e-6),
            ..Default::default()
        };
        let f = factorize(&v, w0.clone(), h0, &p, |_| {}).unwrap();
        assert_eq!(f.w, w0);
        assert!(f.iterations < 500, "ran {}", f.iterations);
    }

    #[test]
    fn spectral_norm_of_known_matrices() {
        let m = DMatrix::from_row_slice(2, 3, &[3.0, 0.0, 0.0, 0.0, 4.0, 0.0]);
        assert!((spectral_norm(&m) - 4.0).abs() < 1e-12);
        assert!((spectral_norm(&m.transpose()) - 4.0).abs() < 1e-12);
    }

    #[test]
    fn rejects_bad_input() {
        let (v, w0, h0) = problem();
        assert!(factorize(
            &v,
            w0.clone(),
            h0.transpose(),
            &NmfParams::default(),
            |_| {}
        )
        .is_err());
        let mut bad = v.clone();
        bad[(0, 0)] = f64::NAN;
        assert!(factorize(&bad, w0, h0, &NmfParams::default(), |_| {}).is_err());
    }
}
