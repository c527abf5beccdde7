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
//!
//! **Cost that follows the score.** H₀ is mostly zeros: a pitch is active only near its notes.
//! The time axis is cut into tiles of [`NmfParams::tile`] frames; a tile keeps only the rows of H
//! that H₀ allows somewhere in it (A), as a dense |A| × T block. Every product above splits
//! exactly over tiles — (WᵀV)[A, tile] = W[:, A]ᵀ·V[:, tile], (V·Hᵀ) = Σ_tiles V[:, tile]·H[A,
//! tile]ᵀ scattered into the columns A, likewise H·Hᵀ and W·H — so an iteration costs
//! 2·K·Σ_tiles |A|·T per big product instead of 2·K·R·N, and rows outside A, which are zero and
//! would stay zero, are never touched. The H update of a tile and its share of the W update's
//! sums are done in one pass while the tile of V is in cache. Tiles are processed in parallel
//! (rayon); the W sums are reduced over a fixed partition of the tiles in a fixed order, so the
//! result does not depend on the number of threads. The matrix products go through faer's GEMM,
//! in `f32` or `f64` ([`Precision`]).

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use nalgebra::{DMatrix, SymmetricEigen};
use rayon::prelude::*;
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

/// The floating-point type of the factorization's arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// `f32`: twice the GEMM throughput and half the memory of `f64`.
    Single,
    /// `f64`, as numpy computes libfmp's NMF (parity with the reference to ~1e-15).
    Double,
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
    pub precision: Precision,
    /// Frames per time tile of the sparse products (see the module's documentation). It changes
    /// only the speed and the rounding order, not the updates.
    pub tile: usize,
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
            precision: Precision::Single,
            tile: 32,
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
    /// Σ over tiles of |A|·T: the entries of H the updates touch (R·N when H₀ has no zeros).
    pub active_entries: usize,
}

/// Factorizes `v` (K × N) from `w0` (K × R) and `h0` (R × N). `progress` is called after each
/// iteration with its number.
pub fn factorize(
    v: &DMatrix<f32>,
    w0: DMatrix<f64>,
    h0: DMatrix<f64>,
    p: &NmfParams,
    progress: impl FnMut(usize),
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
    if v.iter().any(|x| !(*x >= 0.0) || !x.is_finite())
        || w0
            .iter()
            .chain(h0.iter())
            .any(|x| !(*x >= 0.0) || !x.is_finite())
    {
        return Err(Error::Param(
            "NMF needs finite non-negative V, W₀ and H₀".into(),
        ));
    }
    if p.tile == 0 {
        return Err(Error::Param(
            "the NMF tile must be at least one frame".into(),
        ));
    }
    match p.precision {
        Precision::Single => Engine::<f32>::new(v.as_slice(), k, &w0, &h0, p).run(p, progress),
        Precision::Double => Engine::<f64>::new(v.as_slice(), k, &w0, &h0, p).run(p, progress),
    }
}

/// The arithmetic the engine is generic over: `f32` or `f64`.
pub trait Float:
    faer::traits::RealField
    + faer::traits::Conjugate<Canonical = Self>
    + Copy
    + Send
    + Sync
    + PartialOrd
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::AddAssign
    + std::ops::MulAssign
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    /// C = Aᵀ·B by columns ([`crate::kernel`]).
    fn at_b(a: &[&[Self]], b: &[&[Self]], c: &mut [Self]);
    /// `src` in this type: itself for `f32`, else converted into `buf`.
    fn from_f32_slice<'s>(src: &'s [f32], buf: &'s mut Vec<Self>) -> &'s [Self];
}

impl Float for f32 {
    const ZERO: f32 = 0.0;
    const ONE: f32 = 1.0;
    fn from_f64(x: f64) -> f32 {
        x as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn at_b(a: &[&[f32]], b: &[&[f32]], c: &mut [f32]) {
        crate::kernel::at_b_f32(a, b, c)
    }
    fn from_f32_slice<'s>(src: &'s [f32], _: &'s mut Vec<f32>) -> &'s [f32] {
        src
    }
}

impl Float for f64 {
    const ZERO: f64 = 0.0;
    const ONE: f64 = 1.0;
    fn from_f64(x: f64) -> f64 {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn at_b(a: &[&[f64]], b: &[&[f64]], c: &mut [f64]) {
        crate::kernel::at_b_f64(a, b, c)
    }
    fn from_f32_slice<'s>(src: &'s [f32], buf: &'s mut Vec<f64>) -> &'s [f64] {
        buf.clear();
        buf.extend(src.iter().map(|&x| x as f64));
        buf
    }
}

/// Frames `start..start + len` of H, restricted to the rows H₀ allows somewhere in them.
struct Tile<T> {
    start: usize,
    len: usize,
    rows: Vec<usize>,
    /// |rows| × len, column-major.
    h: Vec<T>,
}

/// What one group of tiles adds to the sums of the W update and the stop test.
struct Sums<T> {
    /// V·Hᵀ (Euclidean) or (V ⊘ WH)·Hᵀ (KL), K × R column-major.
    vh: Vec<T>,
    /// H·Hᵀ, R × R (Euclidean).
    hh: Vec<T>,
    /// Row sums of H (KL).
    rowsum: Vec<T>,
    /// ΔH·ΔHᵀ, R × R, for ‖ΔH‖₂.
    dh: Vec<f64>,
}

impl<T: Float> Sums<T> {
    fn zeros(k: usize, r: usize) -> Self {
        Sums {
            vh: vec![T::ZERO; k * r],
            hh: vec![T::ZERO; r * r],
            rowsum: vec![T::ZERO; r],
            dh: vec![0.0; r * r],
        }
    }

    fn add(&mut self, o: &Sums<T>) {
        for (a, b) in self.vh.iter_mut().zip(&o.vh) {
            *a += *b;
        }
        for (a, b) in self.hh.iter_mut().zip(&o.hh) {
            *a += *b;
        }
        for (a, b) in self.rowsum.iter_mut().zip(&o.rowsum) {
            *a += *b;
        }
        for (a, b) in self.dh.iter_mut().zip(&o.dh) {
            *a += *b;
        }
    }
}

/// Tiles per group whose W sums are reduced together: a fixed partition, so the reduction order
/// (and the result) does not depend on the number of threads.
const GROUPS: usize = 32;

struct Engine<'a, T: Float> {
    /// V, K × N column-major, as it is stored (f32); each tile is converted to `T` as it is
    /// used, so an `f64` factorization streams half the bytes and holds no second copy.
    v: &'a [f32],
    k: usize,
    r: usize,
    n: usize,
    /// K × R column-major.
    w: Vec<T>,
    tiles: Vec<Tile<T>>,
    eps: T,
    /// The CPU runs [`crate::kernel`].
    fast: bool,
}

fn mat<T: Float>(s: &[T], rows: usize, cols: usize) -> MatRef<'_, T> {
    MatRef::from_column_major_slice(&s[..rows * cols], rows, cols)
}

fn mat_mut<T: Float>(s: &mut [T], rows: usize, cols: usize) -> MatMut<'_, T> {
    MatMut::from_column_major_slice_mut(&mut s[..rows * cols], rows, cols)
}

/// dst ← a·b (or dst += a·b), sequential: the parallelism is over tiles.
fn gemm<T: Float>(dst: MatMut<'_, T>, add: bool, a: MatRef<'_, T>, b: MatRef<'_, T>) {
    let accum = if add { Accum::Add } else { Accum::Replace };
    matmul(dst, accum, a, b, T::ONE, Par::Seq);
}

impl<'a, T: Float> Engine<'a, T> {
    fn new(v: &'a [f32], k: usize, w0: &DMatrix<f64>, h0: &DMatrix<f64>, p: &NmfParams) -> Self {
        let (r, n) = h0.shape();
        let w = w0.iter().map(|&x| T::from_f64(x)).collect();
        let tiles = (0..n)
            .step_by(p.tile)
            .map(|start| {
                let len = p.tile.min(n - start);
                let rows: Vec<usize> = (0..r)
                    .filter(|&ri| (start..start + len).any(|c| h0[(ri, c)] != 0.0))
                    .collect();
                let mut h = Vec::with_capacity(rows.len() * len);
                for c in start..start + len {
                    h.extend(rows.iter().map(|&ri| T::from_f64(h0[(ri, c)])));
                }
                Tile {
                    start,
                    len,
                    rows,
                    h,
                }
            })
            .collect();
        Engine {
            v,
            k,
            r,
            n,
            w,
            tiles,
            eps: T::from_f64(p.eps),
            fast: crate::kernel::available(),
        }
    }

    /// The frames of V in tile `t`, K × len column-major, in `T` (converted into `buf` if
    /// `T` is not `f32`).
    fn v_tile<'s>(&'s self, t: &Tile<T>, buf: &'s mut Vec<T>) -> &'s [T] {
        T::from_f32_slice(&self.v[t.start * self.k..(t.start + t.len) * self.k], buf)
    }

    /// out (|rows| × |cols|) = W[:, rows]ᵀ·[cols]: by the dot-product kernel where the CPU runs
    /// it, else by faer's GEMM on a gathered copy of W[:, rows] (in `wa`).
    fn wt_times(&self, rows: &[usize], cols: &[&[T]], wa: &mut Vec<T>, out: &mut [T]) {
        if self.fast {
            let w: Vec<&[T]> = rows
                .iter()
                .map(|&r| &self.w[r * self.k..(r + 1) * self.k])
                .collect();
            T::at_b(&w, cols, out);
        } else {
            self.gather_w(rows, wa);
            let mut b = Vec::with_capacity(cols.len() * self.k);
            for c in cols {
                b.extend_from_slice(c);
            }
            let (a, n) = (rows.len(), cols.len());
            gemm(
                mat_mut(out, a, n),
                false,
                mat(wa, self.k, a).transpose(),
                mat(&b, self.k, n),
            );
        }
    }

    /// W[:, rows], K × |rows|.
    fn gather_w(&self, rows: &[usize], out: &mut Vec<T>) {
        out.clear();
        for &ri in rows {
            out.extend_from_slice(&self.w[ri * self.k..(ri + 1) * self.k]);
        }
    }

    fn run(mut self, p: &NmfParams, mut progress: impl FnMut(usize)) -> Result<Factorization> {
        let (k, r) = (self.k, self.r);
        let stop = p.stop_threshold;
        let mut done = 0;
        for it in 1..=p.iterations {
            let sums = match p.divergence {
                Divergence::Euclidean => self.euclidean_pass(p.fixed_w, stop.is_some()),
                Divergence::Kl => self.kl_pass(p.fixed_w, stop.is_some()),
            };
            let mut dw = vec![0.0f64; r * r];
            if !p.fixed_w {
                let new_w = match p.divergence {
                    Divergence::Euclidean => {
                        // W ← W ⊙ (V·Hᵀ) ⊘ (W·(H·Hᵀ) + ε)
                        let mut den = vec![T::ZERO; k * r];
                        matmul(
                            mat_mut(&mut den, k, r),
                            Accum::Replace,
                            mat(&self.w, k, r),
                            mat(&sums.hh, r, r),
                            T::ONE,
                            Par::Seq,
                        );
                        let eps = self.eps;
                        let mut w = self.w.clone();
                        w.par_iter_mut()
                            .zip(sums.vh.par_iter().zip(den.par_iter()))
                            .for_each(|(x, (&a, &b))| *x = *x * (a / (b + eps)));
                        w
                    }
                    Divergence::Kl => {
                        // W ← W ⊙ ((V ⊘ WH)·Hᵀ) ⊘ (1·Hᵀ + ε)
                        let mut w = self.w.clone();
                        for (ci, col) in w.chunks_mut(k).enumerate() {
                            let den = sums.rowsum[ci] + self.eps;
                            for (x, &a) in col.iter_mut().zip(&sums.vh[ci * k..(ci + 1) * k]) {
                                *x = *x * (a / den);
                            }
                        }
                        w
                    }
                };
                if stop.is_some() {
                    let d: Vec<T> = new_w.iter().zip(&self.w).map(|(&a, &b)| a - b).collect();
                    let mut g = vec![T::ZERO; r * r];
                    matmul(
                        mat_mut(&mut g, r, r),
                        Accum::Replace,
                        mat(&d, k, r).transpose(),
                        mat(&d, k, r),
                        T::ONE,
                        Par::Seq,
                    );
                    dw = g.iter().map(|x| x.to_f64()).collect();
                }
                self.w = new_w;
            }
            done = it;
            progress(it);
            if let Some(t) = stop {
                if gram_norm(&sums.dh, r) < t && gram_norm(&dw, r) < t {
                    break;
                }
            }
        }
        Ok(self.finish(p.normalize, done))
    }

    /// Runs `work` on the fixed partition of the tiles into groups, in parallel, and adds up
    /// the groups' sums in group order.
    fn by_groups(
        &mut self,
        fixed_w: bool,
        work: impl Fn(&Self, &mut [Tile<T>]) -> Sums<T> + Sync,
    ) -> Sums<T> {
        let mut tiles = std::mem::take(&mut self.tiles);
        let per_group = tiles.len().div_ceil(GROUPS).max(1);
        let this = &*self;
        let partials: Vec<Sums<T>> = tiles
            .par_chunks_mut(per_group)
            .map(|group| work(this, group))
            .collect();
        self.tiles = tiles;
        reduce(partials, if fixed_w { 0 } else { self.k }, self.r)
    }

    /// The H update of every tile, and the sums the W update needs (with the new H).
    fn euclidean_pass(&mut self, fixed_w: bool, track_change: bool) -> Sums<T> {
        let (k, r) = (self.k, self.r);
        // WᵀW, R × R.
        let mut g = vec![T::ZERO; r * r];
        matmul(
            mat_mut(&mut g, r, r),
            Accum::Replace,
            mat(&self.w, k, r).transpose(),
            mat(&self.w, k, r),
            T::ONE,
            Par::Seq,
        );
        self.by_groups(fixed_w, |this, group| {
            let mut sums = Sums::zeros(if fixed_w { 0 } else { k }, r);
            let mut vbuf = Vec::new();
            let (mut wa, mut ga, mut num, mut den, mut old, mut scratch) = (
                Vec::new(),
                Vec::new(),
                Vec::new(),
                Vec::new(),
                Vec::new(),
                Vec::new(),
            );
            for t in group.iter_mut() {
                let a = t.rows.len();
                if a == 0 {
                    continue;
                }
                let len = t.len;
                ga.clear();
                for &j in &t.rows {
                    ga.extend(t.rows.iter().map(|&i| g[i + j * r]));
                }
                let vs = this.v_tile(t, &mut vbuf);
                let vt = mat(vs, k, len);
                // H ← H ⊙ (WᵀV) ⊘ ((WᵀW)·H + ε) on the tile.
                num.resize(a * len, T::ZERO);
                den.resize(a * len, T::ZERO);
                let vcols: Vec<&[T]> = vs.chunks(k).collect();
                this.wt_times(&t.rows, &vcols, &mut wa, &mut num);
                gemm(
                    mat_mut(&mut den, a, len),
                    false,
                    mat(&ga, a, a),
                    mat(&t.h, a, len),
                );
                if track_change {
                    old.clear();
                    old.extend_from_slice(&t.h);
                }
                for ((x, &nu), &de) in t.h.iter_mut().zip(&num).zip(&den) {
                    *x = *x * (nu / (de + this.eps));
                }
                if track_change {
                    for (o, &x) in old.iter_mut().zip(&t.h) {
                        *o = x - *o;
                    }
                    add_gram(&mut sums.dh, r, &t.rows, &old, len, &mut scratch);
                }
                if !fixed_w {
                    let ht = mat(&t.h, a, len);
                    // V·Hᵀ into the columns `rows`, H·Hᵀ into rows × rows.
                    scratch.resize((k * a).max(a * a), T::ZERO);
                    gemm(mat_mut(&mut scratch, k, a), false, vt, ht.transpose());
                    for (j, &ri) in t.rows.iter().enumerate() {
                        for (s, &x) in sums.vh[ri * k..(ri + 1) * k]
                            .iter_mut()
                            .zip(&scratch[j * k..(j + 1) * k])
                        {
                            *s += x;
                        }
                    }
                    gemm(mat_mut(&mut scratch, a, a), false, ht, ht.transpose());
                    for (j, &rj) in t.rows.iter().enumerate() {
                        for (i, &ri) in t.rows.iter().enumerate() {
                            sums.hh[ri + rj * r] += scratch[i + j * a];
                        }
                    }
                }
            }
            sums
        })
    }

    /// The KL H update of every tile, and the sums of the W update (with the new H).
    fn kl_pass(&mut self, fixed_w: bool, track_change: bool) -> Sums<T> {
        let (k, r) = (self.k, self.r);
        // Wᵀ·1: the column sums of W.
        let colsum: Vec<T> = self
            .w
            .chunks(k)
            .map(|c| c.iter().fold(T::ZERO, |s, &x| s + x))
            .collect();
        self.by_groups(fixed_w, |this, group| {
            let mut sums = Sums::zeros(if fixed_w { 0 } else { k }, r);
            let mut wa_copy = Vec::new();
            let mut vbuf = Vec::new();
            let (mut wa, mut q, mut num, mut old, mut scratch) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for t in group.iter_mut() {
                let a = t.rows.len();
                if a == 0 {
                    continue;
                }
                let len = t.len;
                this.gather_w(&t.rows, &mut wa);
                let v_slice = this.v_tile(t, &mut vbuf);
                // Q = V ⊘ (W·H + ε) on the tile.
                let ratio = |q: &mut Vec<T>, h: &[T]| {
                    q.resize(k * len, T::ZERO);
                    gemm(mat_mut(q, k, len), false, mat(&wa, k, a), mat(h, a, len));
                    for (x, &vv) in q.iter_mut().zip(v_slice) {
                        *x = vv / (*x + this.eps);
                    }
                };
                ratio(&mut q, &t.h);
                num.resize(a * len, T::ZERO);
                let qcols: Vec<&[T]> = q.chunks(k).collect();
                this.wt_times(&t.rows, &qcols, &mut wa_copy, &mut num);
                if track_change {
                    old.clear();
                    old.extend_from_slice(&t.h);
                }
                for (hc, nc) in t.h.chunks_mut(a).zip(num.chunks(a)) {
                    for ((x, &nu), &ri) in hc.iter_mut().zip(nc).zip(&t.rows) {
                        *x = *x * (nu / (colsum[ri] + this.eps));
                    }
                }
                if track_change {
                    for (o, &x) in old.iter_mut().zip(&t.h) {
                        *o = x - *o;
                    }
                    add_gram(&mut sums.dh, r, &t.rows, &old, len, &mut scratch);
                }
                if !fixed_w {
                    ratio(&mut q, &t.h);
                    scratch.resize(k * a, T::ZERO);
                    gemm(
                        mat_mut(&mut scratch, k, a),
                        false,
                        mat(&q, k, len),
                        mat(&t.h, a, len).transpose(),
                    );
                    for (j, &ri) in t.rows.iter().enumerate() {
                        for (s, &x) in sums.vh[ri * k..(ri + 1) * k]
                            .iter_mut()
                            .zip(&scratch[j * k..(j + 1) * k])
                        {
                            *s += x;
                        }
                        let mut s = T::ZERO;
                        for c in 0..len {
                            s += t.h[j + c * a];
                        }
                        sums.rowsum[ri] += s;
                    }
                }
            }
            sums
        })
    }

    /// Normalizes, measures the error and gathers the tiles into a dense H.
    fn finish(mut self, normalize: bool, iterations: usize) -> Factorization {
        let (k, r, n) = (self.k, self.r, self.n);
        if normalize {
            let scale: Vec<T> = self
                .w
                .chunks(k)
                .map(|c| c.iter().fold(T::ZERO, |m, &x| if x > m { x } else { m }))
                .collect();
            for (col, &s) in self.w.chunks_mut(k).zip(&scale) {
                if s > T::ZERO {
                    col.iter_mut().for_each(|x| *x = *x / s);
                }
            }
            for t in &mut self.tiles {
                let a = t.rows.len();
                for (i, x) in t.h.iter_mut().enumerate() {
                    let s = scale[t.rows[i % a]];
                    if s > T::ZERO {
                        *x *= s;
                    }
                }
            }
        }
        // ‖V − WH‖²_F and ‖V‖²_F, tile by tile (in f64, summed in tile order).
        let this = &self;
        let errs: Vec<(f64, f64)> = self
            .tiles
            .par_iter()
            .map(|t| {
                let a = t.rows.len();
                let v_slice = &this.v[t.start * k..(t.start + t.len) * k];
                let vv: f64 = v_slice.iter().map(|&x| x as f64 * x as f64).sum();
                if a == 0 {
                    return (vv, vv);
                }
                let mut wa = Vec::new();
                this.gather_w(&t.rows, &mut wa);
                let mut wh = vec![T::ZERO; k * t.len];
                gemm(
                    mat_mut(&mut wh, k, t.len),
                    false,
                    mat(&wa, k, a),
                    mat(&t.h, a, t.len),
                );
                let e: f64 = wh
                    .iter()
                    .zip(v_slice)
                    .map(|(&x, &y)| (y as f64 - x.to_f64()).powi(2))
                    .sum();
                (e, vv)
            })
            .collect();
        let (e, vv) = errs.iter().fold((0.0, 0.0), |s, x| (s.0 + x.0, s.1 + x.1));
        let mut h = DMatrix::zeros(r, n);
        let mut active_entries = 0;
        for t in &self.tiles {
            let a = t.rows.len();
            active_entries += a * t.len;
            for c in 0..t.len {
                for (j, &ri) in t.rows.iter().enumerate() {
                    h[(ri, t.start + c)] = t.h[j + c * a].to_f64();
                }
            }
        }
        Factorization {
            w: DMatrix::from_iterator(k, r, self.w.iter().map(|x| x.to_f64())),
            h,
            iterations,
            rel_error: (e / vv.max(f64::MIN_POSITIVE)).sqrt(),
            active_entries,
        }
    }
}

/// Adds D·Dᵀ of a tile's |rows| × len block `d` into the R × R `gram`.
fn add_gram<T: Float>(
    gram: &mut [f64],
    r: usize,
    rows: &[usize],
    d: &[T],
    len: usize,
    scratch: &mut Vec<T>,
) {
    let a = rows.len();
    scratch.resize(scratch.len().max(a * a), T::ZERO);
    let dm = mat(d, a, len);
    gemm(mat_mut(scratch, a, a), false, dm, dm.transpose());
    for (j, &rj) in rows.iter().enumerate() {
        for (i, &ri) in rows.iter().enumerate() {
            gram[ri + rj * r] += scratch[i + j * a].to_f64();
        }
    }
}

/// The sums of all groups, added in group order.
fn reduce<T: Float>(partials: Vec<Sums<T>>, k: usize, r: usize) -> Sums<T> {
    let mut total = Sums::zeros(k, r);
    for s in &partials {
        total.add(s);
    }
    total
}

/// √λ_max of an R × R Gram matrix (column-major): the spectral norm of the matrix it came from.
fn gram_norm(gram: &[f64], r: usize) -> f64 {
    if r == 0 {
        return 0.0;
    }
    let g = DMatrix::from_column_slice(r, r, gram);
    SymmetricEigen::new(g)
        .eigenvalues
        .iter()
        .fold(0.0f64, |a, &b| a.max(b))
        .sqrt()
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
    fn problem() -> (DMatrix<f32>, DMatrix<f64>, DMatrix<f64>) {
        let w = DMatrix::from_row_slice(4, 2, &[1.0, 0.0, 0.5, 0.2, 0.0, 1.0, 0.3, 0.6]);
        let h = DMatrix::from_row_slice(2, 5, &[1.0, 2.0, 0.0, 0.0, 1.0, 0.0, 0.5, 1.0, 2.0, 0.0]);
        let v = (&w * &h).map(|x| x as f32);
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

    /// A larger random problem with a banded (score-like) zero pattern.
    fn banded(k: usize, r: usize, n: usize) -> (DMatrix<f32>, DMatrix<f64>, DMatrix<f64>) {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let v = DMatrix::from_fn(k, n, |_, _| rng.random::<f32>());
        let w0 = DMatrix::from_fn(k, r, |i, j| if (i + j) % 3 == 0 { 0.0 } else { 1.0 });
        // Row j is active on frames [7j, 7j + 40).
        let h0 = DMatrix::from_fn(r, n, |j, c| {
            if c >= 7 * j && c < 7 * j + 40 {
                1.0
            } else {
                0.0
            }
        });
        (v, w0, h0)
    }

    #[test]
    fn tiles_do_not_change_the_result_and_threads_do_not_change_a_bit() {
        for divergence in [Divergence::Euclidean, Divergence::Kl] {
            let (v, w0, h0) = banded(60, 12, 150);
            let run = |tile: usize, threads: usize| {
                let p = NmfParams {
                    divergence,
                    precision: Precision::Double,
                    tile,
                    iterations: 30,
                    ..Default::default()
                };
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                pool.install(|| factorize(&v, w0.clone(), h0.clone(), &p, |_| {}).unwrap())
            };
            // One tile holding every frame is the dense computation.
            let dense = run(150, 1);
            assert_eq!(dense.active_entries, 12 * 150);
            for tile in [1, 8, 32] {
                let f = run(tile, 2);
                assert!(
                    f.active_entries < 12 * 150,
                    "tile {tile}: {}",
                    f.active_entries
                );
                let d = (&f.h - &dense.h).amax() / dense.h.amax() + (&f.w - &dense.w).amax();
                assert!(d < 1e-9, "{divergence:?}, tile {tile}: {d:e}");
                let again = run(tile, 1);
                assert_eq!(again.h, f.h, "{divergence:?}: 1 and 2 threads differ");
                assert_eq!(again.w, f.w);
            }
        }
    }

    #[test]
    fn the_gemm_fallback_agrees_with_the_kernel() {
        let (v, w0, h0) = banded(60, 12, 150);
        let p = NmfParams {
            iterations: 20,
            precision: Precision::Double,
            ..Default::default()
        };
        let run = |fast: bool| {
            let mut e = Engine::<f64>::new(v.as_slice(), 60, &w0, &h0, &p);
            e.fast = fast;
            e.run(&p, |_| {}).unwrap()
        };
        let slow = run(false);
        if crate::kernel::available() {
            let fast = run(true);
            assert!((&fast.h - &slow.h).amax() < 1e-9 * slow.h.amax());
            assert!((&fast.w - &slow.w).amax() < 1e-9);
        }
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
        bad[(0, 0)] = f32::NAN;
        assert!(factorize(&bad, w0, h0, &NmfParams::default(), |_| {}).is_err());
    }
}
