//! Initial W and H for the blind factorization ([`crate::model::beta_nmf`]), as scikit-learn's
//! `_initialize_nmf` computes them, so that a seed gives scikit-learn's numbers.
//!
//! scikit-learn factorizes X (samples × features); `librosa.decompose.decompose` hands it
//! X = Vᵀ (frames × bins). Its W (frames × R) is our Hᵀ and its H (R × bins) our Wᵀ; a
//! row-major scikit-learn matrix is therefore our matrix in column-major order, and the random
//! numbers below fill our matrices' buffers in the order numpy fills scikit-learn's.
//!
//! - **random**: H ← |a·g|, then W ← |a·g| (scikit-learn draws its H first), a = √(mean(V)/R),
//!   g standard normal.
//! - **nndsvd** (Boutsidis & Gallopoulos, "SVD based initialization: a head start for
//!   nonnegative matrix factorization", Pattern Recognition 2008): from the leading R singular
//!   triplets (σ_j, u_j, v_j) of V, W₁ = √σ₁|u₁|, H₁ = √σ₁|v₁|; for j ≥ 2, the positive parts
//!   (u⁺, v⁺) or negative parts (u⁻, v⁻), whichever has the larger ‖u‖‖v‖ = m, normalized and
//!   scaled by √(σ_j m); entries below 10⁻⁶ set to 0.
//! - **nndsvda**: nndsvd with its zeros set to mean(V).
//! - **nndsvdar**: nndsvd with its zeros set to |mean(V)·g/100|.
//!
//! The singular triplets come from scikit-learn's `randomized_svd` (Halko, Martinsson & Tropp,
//! "Finding structure with randomness", SIAM Review 2011, algorithm 4.4): R + 10 Gaussian test
//! vectors, 7 power iterations (4 when R ≥ 10 % of the smaller dimension), each product
//! re-orthonormalized, then the exact SVD of the small projection. The approximation depends on
//! the test vectors, so they are drawn as numpy's legacy `RandomState(seed)` draws them
//! ([`NumpyRng`]: MT19937 seeded by `init_genrand`, normals by the polar method). Each power
//! step is orthonormalized by a QR decomposition where scikit-learn uses LU: both give a basis
//! of the same column space, which is all the result depends on. The products with V run over
//! fixed blocks of its columns, their sums added in a fixed order, so the result does not
//! depend on the number of threads.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};
use nalgebra::DMatrix;
use rand_mt::Mt;
use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::nmf::Float;

/// How W and H start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum InitMethod {
    /// Non-negative Gaussian matrices scaled by √(mean(V)/R) (seeded).
    Random,
    /// Non-negative double SVD: sparse (zeros stay zero under multiplicative updates).
    Nndsvd,
    /// NNDSVD with zeros filled with mean(V) (scikit-learn's default for R ≤ min(K, N)).
    Nndsvda,
    /// NNDSVD with zeros filled with small random values (seeded).
    Nndsvdar,
}

/// numpy's legacy `RandomState`: MT19937 and its Gaussian by the polar Box–Muller method, value
/// for value (`np.random.RandomState(seed).standard_normal(…)`).
pub struct NumpyRng {
    mt: Mt,
    /// The second value of the last polar draw, returned by the next call.
    spare: Option<f64>,
}

impl NumpyRng {
    /// `RandomState(seed)`.
    pub fn new(seed: u32) -> Self {
        NumpyRng {
            mt: Mt::new(seed),
            spare: None,
        }
    }

    /// A uniform double in [0, 1) from 53 random bits (`random_sample`).
    pub fn uniform(&mut self) -> f64 {
        let a = (self.mt.next_u32() >> 5) as f64;
        let b = (self.mt.next_u32() >> 6) as f64;
        (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }

    /// A standard normal value (`standard_normal`, `normal(0, 1)`).
    pub fn normal(&mut self) -> f64 {
        if let Some(g) = self.spare.take() {
            return g;
        }
        loop {
            let x1 = 2.0 * self.uniform() - 1.0;
            let x2 = 2.0 * self.uniform() - 1.0;
            let r2 = x1 * x1 + x2 * x2;
            if r2 < 1.0 && r2 != 0.0 {
                let f = (-2.0 * r2.ln() / r2).sqrt();
                self.spare = Some(f * x1);
                return f * x2;
            }
        }
    }
}

/// Initial W (K × R) and H (R × N) for V (K × N) by `method`, with `seed` for the random
/// numbers (the SVD's test vectors, the random fills).
pub fn initialize<S: Float>(
    v: &DMatrix<S>,
    r: usize,
    method: InitMethod,
    seed: u32,
) -> Result<(DMatrix<f64>, DMatrix<f64>)> {
    let (k, n) = v.shape();
    let mean = mean(v);
    if method == InitMethod::Random {
        let a = (mean / r as f64).sqrt();
        let mut rng = NumpyRng::new(seed);
        // scikit-learn draws its H (our W) first.
        let w = fill_in_order(DMatrix::zeros(k, r), || (a * rng.normal()).abs());
        let h = fill_in_order(DMatrix::zeros(r, n), || (a * rng.normal()).abs());
        return Ok((w, h));
    }
    if r > k.min(n) {
        return Err(Error::Param(format!(
            "--init {}: needs at most min(bins, frames) = {} components, not {r}",
            method_name(method),
            k.min(n)
        )));
    }
    let svd = randomized_svd(v, r, seed);
    let (mut w, mut h) = nndsvd(&svd, k, n);
    match method {
        InitMethod::Nndsvd | InitMethod::Random => {}
        InitMethod::Nndsvda => {
            for x in h.iter_mut().chain(w.iter_mut()) {
                if *x == 0.0 {
                    *x = mean;
                }
            }
        }
        InitMethod::Nndsvdar => {
            // scikit-learn fills its W (our H) first, then its H (our W), from one fresh
            // RandomState(seed).
            let mut rng = NumpyRng::new(seed);
            for x in h.iter_mut().filter(|x| **x == 0.0) {
                *x = (mean * rng.normal() / 100.0).abs();
            }
            for x in w.iter_mut().filter(|x| **x == 0.0) {
                *x = (mean * rng.normal() / 100.0).abs();
            }
        }
    }
    Ok((w, h))
}

fn method_name(m: InitMethod) -> &'static str {
    match m {
        InitMethod::Random => "random",
        InitMethod::Nndsvd => "nndsvd",
        InitMethod::Nndsvda => "nndsvda",
        InitMethod::Nndsvdar => "nndsvdar",
    }
}

/// Fills `m` entry by entry in column-major order.
fn fill_in_order(mut m: DMatrix<f64>, mut f: impl FnMut() -> f64) -> DMatrix<f64> {
    for x in m.iter_mut() {
        *x = f();
    }
    m
}

/// The start from a fixed dictionary `w0` (K × R templates): W₀ = `w0`, H₀ = √(mean(V)/R)
/// everywhere (scikit-learn's start of `transform`). `Err` says why `w0` cannot be one: rows
/// other than V's (`v_rows` says what V's rows are, e.g. "the spectrogram has 1025 bins"), a
/// negative or non-finite entry, more than `max_components` columns.
pub fn from_dictionary<S: Float>(
    v: &DMatrix<S>,
    w0: DMatrix<f64>,
    max_components: usize,
    v_rows: &str,
) -> std::result::Result<(DMatrix<f64>, DMatrix<f64>), String> {
    if w0.nrows() != v.nrows() {
        return Err(format!(
            "{} rows, but {v_rows}; a dictionary is bins × components",
            w0.nrows()
        ));
    }
    if w0.iter().any(|&x| !(x >= 0.0 && x.is_finite())) {
        return Err(
            "holds negative entries (or non-finite ones); templates must be non-negative".into(),
        );
    }
    let r = w0.ncols();
    if r > max_components {
        return Err(format!("{r} components: at most {max_components}"));
    }
    let h0 = DMatrix::from_element(r, v.ncols(), (mean(v) / r as f64).sqrt());
    Ok((w0, h0))
}

/// The mean of every entry.
pub fn mean<S: Float>(v: &DMatrix<S>) -> f64 {
    let sum: f64 = v
        .as_slice()
        .par_chunks(1 << 16)
        .map(|c| c.iter().map(|x| x.to_f64()).sum::<f64>())
        .collect::<Vec<_>>()
        .iter()
        .sum();
    sum / v.len().max(1) as f64
}

/// The leading singular triplets of V: `bins[j]` (length K) and `frames[j]` (length N) are
/// the j-th left and right singular vectors, `sigma[j]` its value, largest first.
pub struct Svd {
    pub sigma: Vec<f64>,
    pub bins: Vec<Vec<f64>>,
    pub frames: Vec<Vec<f64>>,
}

/// An orthonormal basis of the columns of `m` (Householder QR, thin Q).
fn orthonormal(m: &Mat<f64>) -> Mat<f64> {
    let dm = DMatrix::from_fn(m.nrows(), m.ncols(), |i, j| m[(i, j)]);
    let q = dm.qr().q();
    Mat::from_fn(q.nrows(), q.ncols(), |i, j| q[(i, j)])
}

/// Test vectors beyond R in the randomized SVD (scikit-learn's `n_oversamples`).
const OVERSAMPLES: usize = 10;
/// Columns of V per block of its products.
const BLOCK_COLS: usize = 256;
/// Groups of blocks whose partial sums V·Q keeps (fixed: the sums' order).
const GROUPS: usize = 32;

/// Column blocks of V (first column, columns), in f64.
fn column_blocks(n: usize) -> Vec<(usize, usize)> {
    (0..n)
        .step_by(BLOCK_COLS)
        .map(|a| (a, BLOCK_COLS.min(n - a)))
        .collect()
}

fn block_f64<S: Float>(v: &DMatrix<S>, (a, len): (usize, usize)) -> Mat<f64> {
    let k = v.nrows();
    let s = &v.as_slice()[a * k..(a + len) * k];
    Mat::from_fn(k, len, |i, j| s[j * k + i].to_f64())
}

/// V·Q (K × s) for Q (N × s): the column blocks' products added in a fixed order.
fn v_times<S: Float>(v: &DMatrix<S>, q: MatRef<'_, f64>) -> Mat<f64> {
    let blocks = column_blocks(v.ncols());
    let per = blocks.len().div_ceil(GROUPS).max(1);
    let parts: Vec<Mat<f64>> = blocks
        .par_chunks(per)
        .map(|group| {
            let mut acc = Mat::<f64>::zeros(v.nrows(), q.ncols());
            for &(a, len) in group {
                let b = block_f64(v, (a, len));
                matmul(
                    acc.as_mut(),
                    Accum::Add,
                    b.as_ref(),
                    q.subrows(a, len),
                    1.0,
                    Par::Seq,
                );
            }
            acc
        })
        .collect();
    let mut it = parts.into_iter();
    let mut sum = it
        .next()
        .unwrap_or_else(|| Mat::zeros(v.nrows(), q.ncols()));
    for p in it {
        sum += p;
    }
    sum
}

/// Vᵀ·Q (N × s) for Q (K × s): each column block gives its rows.
fn vt_times<S: Float>(v: &DMatrix<S>, q: MatRef<'_, f64>) -> Mat<f64> {
    let blocks = column_blocks(v.ncols());
    let rows: Vec<Mat<f64>> = blocks
        .par_iter()
        .map(|&blk| {
            let b = block_f64(v, blk);
            let mut out = Mat::<f64>::zeros(blk.1, q.ncols());
            matmul(
                out.as_mut(),
                Accum::Replace,
                b.as_ref().transpose(),
                q,
                1.0,
                Par::Seq,
            );
            out
        })
        .collect();
    let mut out = Mat::<f64>::zeros(v.ncols(), q.ncols());
    for (&(a, len), m) in blocks.iter().zip(&rows) {
        out.as_mut()
            .submatrix_mut(a, 0, len, q.ncols())
            .copy_from(m.as_ref());
    }
    out
}

/// scikit-learn's `randomized_svd(Vᵀ, r, random_state=seed)` (see the module's documentation),
/// in V's orientation.
pub fn randomized_svd<S: Float>(v: &DMatrix<S>, r: usize, seed: u32) -> Svd {
    let (k, n) = v.shape();
    // scikit-learn's M is Vᵀ (frames × bins); it works on A = Mᵀ = V when frames < bins, else
    // on A = Vᵀ.
    let transpose = n < k;
    let a_cols = if transpose { n } else { k };
    let a_times = |q: &Mat<f64>| {
        if transpose {
            v_times(v, q.as_ref())
        } else {
            vt_times(v, q.as_ref())
        }
    };
    let at_times = |q: &Mat<f64>| {
        if transpose {
            vt_times(v, q.as_ref())
        } else {
            v_times(v, q.as_ref())
        }
    };
    let size = r + OVERSAMPLES;
    let n_iter = if (r as f64) < 0.1 * k.min(n) as f64 {
        7
    } else {
        4
    };
    let mut rng = NumpyRng::new(seed);
    // normal(size=(A.cols, size)) in C order.
    let mut g = vec![0.0; a_cols * size];
    for x in g.iter_mut() {
        *x = rng.normal();
    }
    let mut q = Mat::from_fn(a_cols, size, |i, j| g[i * size + j]);
    for _ in 0..n_iter {
        q = orthonormal(&a_times(&q));
        q = orthonormal(&at_times(&q));
    }
    let q = orthonormal(&a_times(&q));
    // B = Qᵀ A, computed as (Aᵀ Q)ᵀ.
    let bt = at_times(&q);
    let b = DMatrix::from_fn(bt.ncols(), bt.nrows(), |i, j| bt[(j, i)]);
    let svd = b.svd(true, true);
    let (u_hat, vt) = (svd.u.expect("asked for"), svd.v_t.expect("asked for"));
    let mut order: Vec<usize> = (0..svd.singular_values.len()).collect();
    order.sort_by(|&x, &y| svd.singular_values[y].total_cmp(&svd.singular_values[x]));
    let order = &order[..r.min(order.len())];
    // U = Q·Û: the left singular vectors of A.
    let u_hat = Mat::from_fn(u_hat.nrows(), order.len(), |i, j| u_hat[(i, order[j])]);
    // Small (the long side × R + 10 times R + 10 × R): one sequential product.
    let mut u = Mat::<f64>::zeros(q.nrows(), u_hat.ncols());
    matmul(
        u.as_mut(),
        Accum::Replace,
        q.as_ref(),
        u_hat.as_ref(),
        1.0,
        Par::Seq,
    );
    let left: Vec<Vec<f64>> = (0..order.len())
        .map(|j| (0..u.nrows()).map(|i| u[(i, j)]).collect())
        .collect();
    let right: Vec<Vec<f64>> = order
        .iter()
        .map(|&j| (0..vt.ncols()).map(|i| vt[(j, i)]).collect())
        .collect();
    let sigma = order.iter().map(|&j| svd.singular_values[j]).collect();
    // A = V: left vectors over bins; A = Vᵀ: left vectors over frames.
    let (bins, frames) = if transpose {
        (left, right)
    } else {
        (right, left)
    };
    Svd {
        sigma,
        bins,
        frames,
    }
}

/// Entries of the NNDSVD below this are set to zero (scikit-learn's `eps`).
const NNDSVD_FLOOR: f64 = 1e-6;

/// NNDSVD's W (K × R) and H (R × N) from the singular triplets (signs do not matter: a flipped
/// pair swaps its positive and negative parts, and the larger is taken).
fn nndsvd(svd: &Svd, k: usize, n: usize) -> (DMatrix<f64>, DMatrix<f64>) {
    let r = svd.sigma.len();
    let mut w = DMatrix::zeros(k, r);
    let mut h = DMatrix::zeros(r, n);
    for j in 0..r {
        let (x, y) = (&svd.bins[j], &svd.frames[j]);
        let (u, vv, scale): (Vec<f64>, Vec<f64>, f64) = if j == 0 {
            let s = svd.sigma[0].sqrt();
            (
                x.iter().map(|a| a.abs()).collect(),
                y.iter().map(|a| a.abs()).collect(),
                s,
            )
        } else {
            let pos = |z: &[f64]| z.iter().map(|&a| a.max(0.0)).collect::<Vec<_>>();
            let neg = |z: &[f64]| z.iter().map(|&a| a.min(0.0).abs()).collect::<Vec<_>>();
            let norm = |z: &[f64]| z.iter().map(|a| a * a).sum::<f64>().sqrt();
            let (xp, yp, xn, yn) = (pos(x), pos(y), neg(x), neg(y));
            let (xpn, ypn, xnn, ynn) = (norm(&xp), norm(&yp), norm(&xn), norm(&yn));
            let (mp, mn) = (xpn * ypn, xnn * ynn);
            let (a, b, na, nb, sigma) = if mp > mn {
                (xp, yp, xpn, ypn, mp)
            } else {
                (xn, yn, xnn, ynn, mn)
            };
            let lbd = (svd.sigma[j] * sigma).sqrt();
            (
                a.iter().map(|z| z / na * lbd).collect(),
                b.iter().map(|z| z / nb * lbd).collect(),
                1.0,
            )
        };
        for (i, z) in u.iter().enumerate() {
            w[(i, j)] = scale * z;
        }
        for (i, z) in vv.iter().enumerate() {
            h[(j, i)] = scale * z;
        }
    }
    for x in w.iter_mut().chain(h.iter_mut()) {
        if *x < NNDSVD_FLOOR {
            *x = 0.0;
        }
    }
    (w, h)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `np.random.RandomState(0).random_sample(3)` and `RandomState(0).standard_normal(3)`.
    #[test]
    fn numpy_legacy_streams() {
        let mut rng = NumpyRng::new(0);
        let u: Vec<f64> = (0..3).map(|_| rng.uniform()).collect();
        assert_eq!(
            u,
            [0.5488135039273248, 0.7151893663724195, 0.6027633760716439]
        );
        let mut rng = NumpyRng::new(0);
        let g: Vec<f64> = (0..3).map(|_| rng.normal()).collect();
        assert_eq!(
            g,
            [1.764052345967664, 0.4001572083672233, 0.9787379841057392]
        );
    }

    /// On a matrix of known rank the randomized SVD gives the exact singular values.
    #[test]
    fn randomized_svd_of_a_low_rank_matrix() {
        let (k, n) = (40, 30);
        let a = DMatrix::from_fn(k, 3, |i, j| ((i * (j + 2)) % 7) as f64 + 1.0);
        let b = DMatrix::from_fn(3, n, |i, j| ((j * (i + 3)) % 5) as f64 + 0.5);
        let v = &a * &b;
        let exact = v.clone().svd(false, false).singular_values;
        let svd = randomized_svd(&v, 3, 7);
        for j in 0..3 {
            assert!((svd.sigma[j] - exact[j]).abs() < 1e-9 * exact[0]);
        }
        // The vectors reproduce V.
        let mut back = DMatrix::zeros(k, n);
        for j in 0..3 {
            for c in 0..n {
                for r in 0..k {
                    back[(r, c)] += svd.sigma[j] * svd.bins[j][r] * svd.frames[j][c];
                }
            }
        }
        assert!((back - v.clone()).norm() < 1e-9 * v.norm());
    }

    #[test]
    fn nndsvd_is_non_negative_and_nndsvda_has_no_zeros() {
        let v = DMatrix::from_fn(20, 25, |i, j| ((i * 3 + j * 5) % 11) as f64);
        let (w, h) = initialize(&v, 4, InitMethod::Nndsvd, 0).unwrap();
        assert!(w.iter().chain(h.iter()).all(|&x| x >= 0.0));
        assert!(w.iter().chain(h.iter()).any(|&x| x == 0.0));
        let (w, h) = initialize(&v, 4, InitMethod::Nndsvda, 0).unwrap();
        assert!(w.iter().chain(h.iter()).all(|&x| x > 0.0));
        assert!(initialize(&v, 21, InitMethod::Nndsvd, 0).is_err());
    }
}
