//! Blind NMF V ≈ W·H for the β-divergence by multiplicative updates, as scikit-learn's `NMF`
//! with `solver="mu"` computes it (Févotte & Idier, "Algorithms for nonnegative matrix
//! factorization with the β-divergence", Neural Computation 2011; `sklearn.decomposition._nmf`),
//! with no score: every entry of W and H may be non-zero.
//!
//! V is K × N (bins × frames), W K × R (templates, librosa's `components`), H R × N
//! (activations). `librosa.decompose.decompose(S)` calls scikit-learn on Sᵀ, whose W is our Hᵀ
//! and whose H is our Wᵀ; each iteration updates H first, then W from the new H, as it does:
//!
//! ```text
//! H ← H ⊙ [ (Wᵀ·(V ⊙ Λ^(β−2))) ⊘ (Wᵀ·Λ^(β−1) + λ₁ᴴ + λ₂ᴴ·H) ]^γ
//! W ← W ⊙ [ ((V ⊙ Λ^(β−2))·Hᵀ) ⊘ (Λ^(β−1)·Hᵀ + λ₁ᵂ + λ₂ᵂ·W) ]^γ        Λ = W·H
//! ```
//!
//! with γ = 1/(2 − β) for β < 1, 1/(β − 1) for β > 2, else 1. For β = 2 (Euclidean) the terms
//! are WᵀV ⊘ (WᵀW)·H and V·Hᵀ ⊘ W·(H·Hᵀ); for β = 1 (Kullback–Leibler) Wᵀ·Λ^0 is the column
//! sums of W and Λ^0·Hᵀ the row sums of H (a zero sum taken as 1, as scikit-learn does). Where
//! β < 2, Λ in V ⊙ Λ^(β−2) is floored at ε (float32's machine epsilon), and for β < 1 in
//! Λ^(β−1) too; a zero denominator is set to ε. After each update, for β < 1 the entries of H
//! and for β ≤ 1 those of W below float64's epsilon are set to zero (scikit-learn's stability
//! rule).
//!
//! Regularization as scikit-learn's `alpha_W`, `alpha_H`, `l1_ratio` (ρ), scaled by the other
//! dimension: λ₁ᴴ = K·αᴴ·ρ, λ₂ᴴ = K·αᴴ·(1 − ρ), λ₁ᵂ = N·αᵂ·ρ, λ₂ᵂ = N·αᵂ·(1 − ρ). Through
//! librosa, scikit-learn's `alpha_W` is our αᴴ (activations) and its `alpha_H` our αᵂ.
//!
//! Stopping: every 10 iterations the error e = √(2·D_β(V‖WH)) is computed (the squared
//! difference, generalized KL or Itakura–Saito only over entries of V above ε, as scikit-learn's
//! `_beta_divergence` with `square_root=True`); the loop stops when (e_prev − e)/e₀ < tol.
//!
//! With W fixed (a dictionary, scikit-learn's `transform`), H starts at √(mean(V)/R)
//! everywhere and only H is updated.
//!
//! The frames are cut into fixed chunks, processed in parallel. One pass per iteration does,
//! for each chunk, its H update and then, from its new H, its share of the W update's sums
//! (while the chunk of V is in cache); the W update follows from those sums, added over a fixed
//! partition of the chunks in a fixed order, so the result does not depend on the number of
//! threads. This is exactly the H update followed by the W update. Λ is formed chunk by chunk
//! and never held whole; V stays in the type it was given in (f32 from the STFT), converted
//! chunk by chunk when the arithmetic is the other type.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use nalgebra::DMatrix;
use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::nmf::{Float, Precision};

/// float32's machine epsilon, scikit-learn's `EPSILON`.
const EPS: f64 = f32::EPSILON as f64;
/// Frames per chunk.
const CHUNK: usize = 128;
/// Groups of consecutive chunks whose partial sums are kept (fixed: the sums' order).
const GROUPS: usize = 32;
/// Iterations between two evaluations of the stopping rule (scikit-learn's).
const CHECK_EVERY: usize = 10;

/// Parameters of the blind factorization (scikit-learn `NMF(solver="mu")` defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BetaParams {
    /// β: 2 Euclidean, 1 Kullback–Leibler, 0 Itakura–Saito, or any other value.
    pub beta: f64,
    /// Most iterations (`max_iter`, 200).
    pub max_iter: usize,
    /// Relative decrease of the error under which it stops (`tol`, 1e-4; 0 never stops).
    pub tol: f64,
    /// αᵂ: regularization of W (scikit-learn's `alpha_H` through librosa).
    pub alpha_w: f64,
    /// αᴴ: regularization of H (scikit-learn's `alpha_W` through librosa).
    pub alpha_h: f64,
    /// Share of L1 in the regularization (`l1_ratio`).
    pub l1_ratio: f64,
    /// Keep W as given; update H only.
    pub fixed_w: bool,
    pub precision: Precision,
}

impl Default for BetaParams {
    fn default() -> Self {
        BetaParams {
            beta: 2.0,
            max_iter: 200,
            tol: 1e-4,
            alpha_w: 0.0,
            alpha_h: 0.0,
            l1_ratio: 0.0,
            fixed_w: false,
            precision: Precision::Double,
        }
    }
}

/// The result of [`factorize`].
#[derive(Debug, Clone)]
pub struct BlindFactorization {
    /// K × R.
    pub w: DMatrix<f64>,
    /// R × N.
    pub h: DMatrix<f64>,
    /// Iterations run.
    pub iterations: usize,
    /// Whether the stopping rule ended the loop before `max_iter`.
    pub converged: bool,
    /// √(2·D_β(V‖WH)) before the first iteration.
    pub error_at_init: f64,
    /// The same at the end (scikit-learn's `reconstruction_err_`).
    pub error: f64,
    /// (iteration, error) at every evaluation of the stopping rule.
    pub errors: Vec<(usize, f64)>,
}

/// Factorizes `v` (K × N) from `w0` (K × R) and `h0` (R × N). `progress` is called after each
/// iteration with its number.
pub fn factorize<S: Stored<f32> + Stored<f64>>(
    v: &DMatrix<S>,
    w0: DMatrix<f64>,
    h0: DMatrix<f64>,
    p: &BetaParams,
    progress: impl FnMut(usize),
) -> Result<BlindFactorization> {
    check(v, &w0, &h0, p)?;
    match p.precision {
        Precision::Double => Engine::<f64, S>::new(v, &w0, &h0, p).run(progress),
        Precision::Single => Engine::<f32, S>::new(v, &w0, &h0, p).run(progress),
    }
}

fn check<S: Float>(
    v: &DMatrix<S>,
    w0: &DMatrix<f64>,
    h0: &DMatrix<f64>,
    p: &BetaParams,
) -> Result<()> {
    let (k, n) = v.shape();
    let r = w0.ncols();
    if w0.nrows() != k || h0.shape() != (r, n) || r == 0 {
        return Err(Error::Param(format!(
            "NMF shapes do not fit: V {k}×{n}, W {}×{r}, H {}×{}",
            w0.nrows(),
            h0.nrows(),
            h0.ncols()
        )));
    }
    let fine = |x: &f64| x.is_finite() && *x >= 0.0;
    if !v.iter().all(|x| fine(&x.to_f64())) || !w0.iter().all(fine) || !h0.iter().all(fine) {
        return Err(Error::Param(
            "NMF needs finite non-negative V, W and H".into(),
        ));
    }
    if !p.beta.is_finite() {
        return Err(Error::Param(format!("--beta {}: must be finite", p.beta)));
    }
    if p.beta <= 0.0 && v.iter().any(|&x| x == S::ZERO) {
        return Err(Error::Param(format!(
            "--beta {}: the spectrogram has zeros, where β ≤ 0 diverges; add a small floor \
             (e.g. --floor 1e-10) or use β > 0",
            p.beta
        )));
    }
    let fine_param = |x: f64| x.is_finite() && x >= 0.0;
    if !fine_param(p.alpha_w) || !fine_param(p.alpha_h) || !(0.0..=1.0).contains(&p.l1_ratio) {
        return Err(Error::Param(
            "regularization: alphas must be ≥ 0 and the L1 ratio in [0, 1]".into(),
        ));
    }
    if !fine_param(p.tol) {
        return Err(Error::Param(format!("--tol {}: must be ≥ 0", p.tol)));
    }
    Ok(())
}

/// How the β at hand shapes the updates.
#[derive(Clone, Copy)]
struct Beta {
    beta: f64,
    gamma: f64,
}

impl Beta {
    fn new(beta: f64) -> Beta {
        let gamma = if beta < 1.0 {
            1.0 / (2.0 - beta)
        } else if beta > 2.0 {
            1.0 / (beta - 1.0)
        } else {
            1.0
        };
        Beta { beta, gamma }
    }

    /// V ⊙ Λ^(β−2), Λ floored at ε for β < 2.
    #[inline(always)]
    fn numerator_term<T: Float>(self, v: T, wh: T) -> T {
        let eps = T::from_f64(EPS);
        let b = self.beta;
        let wh = if b < 2.0 && wh < eps { eps } else { wh };
        if b == 1.0 {
            v / wh
        } else if b == 0.0 {
            let inv = T::ONE / wh;
            inv * inv * v
        } else {
            T::from_f64(wh.to_f64().powf(b - 2.0)) * v
        }
    }

    /// Λ^(β−1), Λ floored at ε for β < 1 (not used for β = 1 and 2).
    #[inline(always)]
    fn denominator_term<T: Float>(self, wh: T) -> T {
        let eps = T::from_f64(EPS);
        let b = self.beta;
        let wh = if b < 1.0 && wh < eps { eps } else { wh };
        if b == 0.0 {
            T::ONE / wh
        } else {
            T::from_f64(wh.to_f64().powf(b - 1.0))
        }
    }

    /// The multiplicative factor (num/den)^γ, a zero denominator taken as ε.
    #[inline(always)]
    fn factor<T: Float>(self, num: T, den: T) -> T {
        let den = if den == T::ZERO {
            T::from_f64(EPS)
        } else {
            den
        };
        let q = num / den;
        if self.gamma == 1.0 {
            q
        } else {
            T::from_f64(q.to_f64().powf(self.gamma))
        }
    }
}

/// The regularization weights (λ₁, λ₂) of one factor.
#[derive(Clone, Copy)]
struct Reg {
    l1: f64,
    l2: f64,
}

struct Engine<'v, T: Float, S> {
    v: &'v [S],
    k: usize,
    r: usize,
    n: usize,
    w: Vec<T>,
    h: Vec<T>,
    beta: Beta,
    reg_w: Reg,
    reg_h: Reg,
    p: BetaParams,
    /// Per group: its chunks as (first frame, frames).
    groups: Vec<Vec<(usize, usize)>>,
}

/// A stored spectrogram's entries in the engine's type: borrowed where the types agree, else
/// converted chunk by chunk into a buffer (so V is held once, in the type it was given in).
pub trait Stored<T>: Float {
    fn cast<'a>(s: &'a [Self], buf: &'a mut Vec<T>) -> &'a [T];
}
macro_rules! same {
    ($t:ty) => {
        impl Stored<$t> for $t {
            fn cast<'a>(s: &'a [$t], _: &'a mut Vec<$t>) -> &'a [$t] {
                s
            }
        }
    };
}
macro_rules! convert {
    ($s:ty, $t:ty) => {
        impl Stored<$t> for $s {
            fn cast<'a>(s: &'a [$s], buf: &'a mut Vec<$t>) -> &'a [$t] {
                buf.clear();
                buf.extend(s.iter().map(|&x| x as $t));
                buf
            }
        }
    };
}
same!(f32);
same!(f64);
convert!(f32, f64);
convert!(f64, f32);

fn mat<T: Float>(s: &[T], rows: usize, cols: usize) -> MatRef<'_, T> {
    MatRef::from_column_major_slice(&s[..rows * cols], rows, cols)
}

fn mat_mut<T: Float>(s: &mut [T], rows: usize, cols: usize) -> MatMut<'_, T> {
    MatMut::from_column_major_slice_mut(&mut s[..rows * cols], rows, cols)
}

/// dst ← a·b or dst += a·b, sequentially (the parallelism is over chunks).
fn gemm<T: Float>(dst: MatMut<'_, T>, add: bool, a: MatRef<'_, T>, b: MatRef<'_, T>) {
    let accum = if add { Accum::Add } else { Accum::Replace };
    matmul(dst, accum, a, b, T::ONE, Par::Seq);
}

/// What a group adds to the W update: the numerator's and denominator's sums over its frames
/// (K × R), H·Hᵀ (R × R) and the row sums of H.
struct Partial<T> {
    num: Vec<T>,
    den: Vec<T>,
    hh: Vec<T>,
    rowsum: Vec<T>,
}

impl<'v, T: Float, S: Stored<T>> Engine<'v, T, S> {
    fn new(v: &'v DMatrix<S>, w0: &DMatrix<f64>, h0: &DMatrix<f64>, p: &BetaParams) -> Self {
        let (k, n) = v.shape();
        let r = w0.ncols();
        let chunks: Vec<(usize, usize)> = (0..n)
            .step_by(CHUNK)
            .map(|a| (a, CHUNK.min(n - a)))
            .collect();
        let per = chunks.len().div_ceil(GROUPS).max(1);
        let groups = chunks.chunks(per).map(<[_]>::to_vec).collect();
        let reg = |alpha: f64, scale: usize| Reg {
            l1: scale as f64 * alpha * p.l1_ratio,
            l2: scale as f64 * alpha * (1.0 - p.l1_ratio),
        };
        Engine {
            v: v.as_slice(),
            k,
            r,
            n,
            w: w0.iter().map(|&x| T::from_f64(x)).collect(),
            h: h0.iter().map(|&x| T::from_f64(x)).collect(),
            beta: Beta::new(p.beta),
            reg_w: reg(p.alpha_w, n),
            reg_h: reg(p.alpha_h, k),
            p: *p,
            groups,
        }
    }

    fn run(mut self, mut progress: impl FnMut(usize)) -> Result<BlindFactorization> {
        let error_at_init = self.error();
        let mut previous = error_at_init;
        let mut errors = vec![(0, error_at_init)];
        let mut converged = false;
        let mut iterations = 0;
        // With W fixed and β = 2, WᵀV does not change (scikit-learn keeps it too).
        let mut wtv: Option<Vec<T>> = None;
        for it in 1..=self.p.max_iter {
            self.iterate(&mut wtv);
            iterations = it;
            progress(it);
            if self.p.tol > 0.0 && it % CHECK_EVERY == 0 {
                let e = self.error();
                errors.push((it, e));
                if (previous - e) / error_at_init < self.p.tol {
                    converged = true;
                    break;
                }
                previous = e;
            }
        }
        let error = match errors.last() {
            Some(&(it, e)) if it == iterations => e,
            _ => self.error(),
        };
        if errors.last().map(|x| x.0) != Some(iterations) {
            errors.push((iterations, error));
        }
        let (k, r, n) = (self.k, self.r, self.n);
        Ok(BlindFactorization {
            w: DMatrix::from_iterator(k, r, self.w.iter().map(|x| x.to_f64())),
            h: DMatrix::from_iterator(r, n, self.h.iter().map(|x| x.to_f64())),
            iterations,
            converged,
            error_at_init,
            error,
            errors,
        })
    }

    /// H's columns split by group.
    fn h_by_group<'a>(
        h: &'a mut [T],
        r: usize,
        groups: &[Vec<(usize, usize)>],
    ) -> Vec<&'a mut [T]> {
        let mut out = Vec::with_capacity(groups.len());
        let mut rest = h;
        for g in groups {
            let frames: usize = g.iter().map(|c| c.1).sum();
            let (a, b) = rest.split_at_mut(frames * r);
            out.push(a);
            rest = b;
        }
        out
    }

    /// One iteration: for each chunk, its H update and, from the new H, its share of the W
    /// update's sums, in one pass while the chunk of V is in cache; then the W update from the
    /// groups' sums added in order. Exactly the two updates one after the other: the W update
    /// uses the old W and the new H, as it would after a whole H update.
    fn iterate(&mut self, wtv: &mut Option<Vec<T>>) {
        let (k, r, n) = (self.k, self.r, self.n);
        let kind = Kind::of(self.beta.beta);
        let update_w = !self.p.fixed_w;
        let w = &self.w;
        let gram: Vec<T> = if kind == Kind::Euclid {
            let mut g = vec![T::ZERO; r * r];
            gemm(
                mat_mut(&mut g, r, r),
                false,
                mat(w, k, r).transpose(),
                mat(w, k, r),
            );
            g
        } else {
            Vec::new()
        };
        let colsum: Vec<T> = (0..r)
            .map(|j| w[j * k..(j + 1) * k].iter().fold(T::ZERO, |a, &b| a + b))
            .collect();
        if kind == Kind::Euclid && !update_w && wtv.is_none() {
            let mut out = vec![T::ZERO; r * n];
            for (a, len) in (0..n).step_by(CHUNK).map(|a| (a, CHUNK.min(n - a))) {
                let mut buf = Vec::new();
                let vb = S::cast(&self.v[a * k..(a + len) * k], &mut buf);
                gemm(
                    mat_mut(&mut out[a * r..], r, len),
                    false,
                    mat(w, k, r).transpose(),
                    mat(vb, k, len),
                );
            }
            *wtv = Some(out);
        }
        let ctx = Pass {
            v: self.v,
            w,
            k,
            r,
            beta: self.beta,
            kind,
            reg: self.reg_h,
            gram: &gram,
            colsum: &colsum,
            cached: wtv.as_deref(),
            update_w,
        };
        let groups = &self.groups;
        let parts = Self::h_by_group(&mut self.h, r, groups);
        let partials: Vec<Partial<T>> = parts
            .into_par_iter()
            .zip(groups.par_iter())
            .map(|(hg, chunks)| ctx.group(hg, chunks))
            .collect();
        if update_w {
            self.update_w(partials, kind);
        }
    }

    /// The W update from the groups' sums, added in order.
    fn update_w(&mut self, partials: Vec<Partial<T>>, kind: Kind) {
        let (k, r) = (self.k, self.r);
        let mut total = partials.into_iter();
        let mut sum = total.next().expect("at least one group");
        for p in total {
            sum.add(&p);
        }
        let w = &self.w;
        let den = match kind {
            Kind::Euclid => {
                let mut d = vec![T::ZERO; k * r];
                gemm(
                    mat_mut(&mut d, k, r),
                    false,
                    mat(w, k, r),
                    mat(&sum.hh, r, r),
                );
                d
            }
            Kind::Kl => {
                let mut d = vec![T::ZERO; k * r];
                for j in 0..r {
                    let s = if sum.rowsum[j] == T::ZERO {
                        T::ONE
                    } else {
                        sum.rowsum[j]
                    };
                    d[j * k..(j + 1) * k].fill(s);
                }
                d
            }
            _ => sum.den,
        };
        let beta = self.beta;
        apply(
            &mut self.w,
            &sum.num,
            &den,
            beta,
            self.reg_w,
            beta.beta <= 1.0,
        );
    }

    /// √(2·D_β(V‖WH)) over all of V, as scikit-learn's `_beta_divergence(…, square_root=True)`.
    fn error(&self) -> f64 {
        let (k, r) = (self.k, self.r);
        let (w, h, v) = (&self.w, &self.h, &self.v);
        let b = self.beta.beta;
        let kind = Kind::of(b);
        // Per group: the divergence's sums over its frames (see `divergence_sums`).
        let parts: Vec<[f64; 3]> = self
            .groups
            .par_iter()
            .map(|chunks| {
                let mut wh = vec![T::ZERO; k * CHUNK];
                let mut buf = Vec::new();
                let mut s = [0.0f64; 3];
                for &(a, len) in chunks {
                    gemm(
                        mat_mut(&mut wh, k, len),
                        false,
                        mat(w, k, r),
                        mat(&h[a * r..], r, len),
                    );
                    let vb = S::cast(&v[a * k..(a + len) * k], &mut buf);
                    let part = divergence_sums(kind, b, vb, &wh[..k * len]);
                    for (x, y) in s.iter_mut().zip(part) {
                        *x += y;
                    }
                }
                s
            })
            .collect();
        let [a_sum, b_sum, c_sum] = parts
            .iter()
            .fold([0.0; 3], |s, p| [s[0] + p[0], s[1] + p[1], s[2] + p[2]]);
        let res = match kind {
            Kind::Euclid => a_sum / 2.0,
            Kind::Kl => {
                let sum_wh: f64 = (0..r)
                    .map(|j| {
                        let cw: f64 = w[j * k..(j + 1) * k].iter().map(|x| x.to_f64()).sum();
                        let rh: f64 = (0..self.n).map(|c| h[c * r + j].to_f64()).sum();
                        cw * rh
                    })
                    .sum();
                a_sum + sum_wh - b_sum
            }
            Kind::Is => a_sum - (k * self.n) as f64,
            Kind::General => (a_sum - b * b_sum + c_sum * (b - 1.0)) / (b * (b - 1.0)),
        };
        (2.0 * res.max(0.0)).sqrt()
    }
}

/// The β cases with their own element-wise loops.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Euclid,
    Kl,
    Is,
    General,
}

impl Kind {
    fn of(beta: f64) -> Kind {
        if beta == 2.0 {
            Kind::Euclid
        } else if beta == 1.0 {
            Kind::Kl
        } else if beta == 0.0 {
            Kind::Is
        } else {
            Kind::General
        }
    }
}

/// What one iteration's pass over the chunks reads.
struct Pass<'a, T, S> {
    v: &'a [S],
    w: &'a [T],
    k: usize,
    r: usize,
    beta: Beta,
    kind: Kind,
    reg: Reg,
    /// WᵀW (β = 2).
    gram: &'a [T],
    /// Column sums of W (β = 1).
    colsum: &'a [T],
    /// WᵀV, when W is fixed and β = 2.
    cached: Option<&'a [T]>,
    update_w: bool,
}

impl<T: Float, S: Stored<T>> Pass<'_, T, S> {
    /// The H update of a group's chunks (`hg`: their columns of H) and their share of the W
    /// update's sums.
    fn group(&self, hg: &mut [T], chunks: &[(usize, usize)]) -> Partial<T> {
        let (k, r, kind) = (self.k, self.r, self.kind);
        let euclid = kind == Kind::Euclid;
        let with_den = matches!(kind, Kind::Is | Kind::General);
        let mut p = Partial {
            num: vec![T::ZERO; if self.update_w { k * r } else { 0 }],
            den: vec![T::ZERO; if self.update_w && with_den { k * r } else { 0 }],
            hh: vec![T::ZERO; if self.update_w && euclid { r * r } else { 0 }],
            rowsum: vec![T::ZERO; r],
        };
        let mut num = vec![T::ZERO; r * CHUNK];
        let mut den = vec![T::ZERO; r * CHUNK];
        let mut wh = vec![T::ZERO; if euclid { 0 } else { k * CHUNK }];
        let mut dt = vec![T::ZERO; if with_den { k * CHUNK } else { 0 }];
        let mut buf = Vec::new();
        let first = chunks.first().map_or(0, |c| c.0);
        let wr = mat(self.w, k, r);
        for &(a, len) in chunks {
            let hb = &mut hg[(a - first) * r..(a - first + len) * r];
            let vb = S::cast(&self.v[a * k..(a + len) * k], &mut buf);
            // The H update.
            if euclid {
                match self.cached {
                    Some(c) => num[..r * len].copy_from_slice(&c[a * r..(a + len) * r]),
                    None => gemm(
                        mat_mut(&mut num, r, len),
                        false,
                        wr.transpose(),
                        mat(vb, k, len),
                    ),
                }
                gemm(
                    mat_mut(&mut den, r, len),
                    false,
                    mat(self.gram, r, r),
                    mat(hb, r, len),
                );
            } else {
                gemm(mat_mut(&mut wh, k, len), false, wr, mat(hb, r, len));
                self.terms(vb, &mut wh[..k * len], &mut dt);
                gemm(
                    mat_mut(&mut num, r, len),
                    false,
                    wr.transpose(),
                    mat(&wh, k, len),
                );
                if with_den {
                    gemm(
                        mat_mut(&mut den, r, len),
                        false,
                        wr.transpose(),
                        mat(&dt, k, len),
                    );
                } else {
                    for c in 0..len {
                        den[c * r..(c + 1) * r].copy_from_slice(self.colsum);
                    }
                }
            }
            apply(
                hb,
                &num[..r * len],
                &den[..r * len],
                self.beta,
                self.reg,
                self.beta.beta < 1.0,
            );
            if !self.update_w {
                continue;
            }
            // The chunk's share of the W update, from its new H.
            let hm = mat(hb, r, len);
            if euclid {
                gemm(
                    mat_mut(&mut p.num, k, r),
                    true,
                    mat(vb, k, len),
                    hm.transpose(),
                );
                gemm(mat_mut(&mut p.hh, r, r), true, hm, hm.transpose());
                continue;
            }
            gemm(mat_mut(&mut wh, k, len), false, wr, hm);
            self.terms(vb, &mut wh[..k * len], &mut dt);
            gemm(
                mat_mut(&mut p.num, k, r),
                true,
                mat(&wh, k, len),
                hm.transpose(),
            );
            if with_den {
                gemm(
                    mat_mut(&mut p.den, k, r),
                    true,
                    mat(&dt, k, len),
                    hm.transpose(),
                );
            } else {
                for c in 0..len {
                    for j in 0..r {
                        p.rowsum[j] += hb[c * r + j];
                    }
                }
            }
        }
        p
    }

    /// Λ (in `wh`) → V ⊙ Λ^(β−2) in place, and Λ^(β−1) into `dt` (β ∉ {1, 2}).
    fn terms(&self, vb: &[T], wh: &mut [T], dt: &mut [T]) {
        let eps = T::from_f64(EPS);
        let beta = self.beta;
        crate::model::kernel::wide(
            #[inline(always)]
            || match self.kind {
                Kind::Kl => {
                    for (x, &y) in wh.iter_mut().zip(vb) {
                        let d = if *x < eps { eps } else { *x };
                        *x = y / d;
                    }
                }
                Kind::Is => {
                    for ((x, &y), d) in wh.iter_mut().zip(vb).zip(dt.iter_mut()) {
                        let inv = T::ONE / if *x < eps { eps } else { *x };
                        *d = inv;
                        *x = inv * inv * y;
                    }
                }
                Kind::General => {
                    for ((x, &y), d) in wh.iter_mut().zip(vb).zip(dt.iter_mut()) {
                        *d = beta.denominator_term(*x);
                        *x = beta.numerator_term(y, *x);
                    }
                }
                Kind::Euclid => {}
            },
        );
    }
}

impl<T: Float> Partial<T> {
    fn add(&mut self, o: &Partial<T>) {
        for (a, b) in self.num.iter_mut().zip(&o.num) {
            *a += *b;
        }
        for (a, b) in self.den.iter_mut().zip(&o.den) {
            *a += *b;
        }
        for (a, b) in self.hh.iter_mut().zip(&o.hh) {
            *a += *b;
        }
        for (a, b) in self.rowsum.iter_mut().zip(&o.rowsum) {
            *a += *b;
        }
    }
}

/// The sums of D_β(V‖Λ) over one chunk: β = 2: [Σ (v − λ)², 0, 0]; β = 1, over v > ε with λ
/// floored at ε: [Σ v·ln(v/λ), Σ v, 0]; β = 0, likewise: [Σ (v/λ − ln(v/λ)), 0, 0]; other β:
/// [Σ v^β, Σ v·λ^(β−1), Σ_all λ^β].
fn divergence_sums<T: Float>(kind: Kind, b: f64, v: &[T], wh: &[T]) -> [f64; 3] {
    use wide::{f64x4, CmpGt};
    let eps = EPS;
    crate::model::kernel::wide(
        #[inline(always)]
        || {
            let mut s = [0.0f64; 3];
            match kind {
                Kind::Euclid => {
                    let mut acc = [0.0f64; 8];
                    let (vs, ws) = (v.chunks_exact(8), wh.chunks_exact(8));
                    let (vr, wr) = (vs.remainder(), ws.remainder());
                    for (x, y) in vs.zip(ws) {
                        for l in 0..8 {
                            let d = x[l].to_f64() - y[l].to_f64();
                            acc[l] += d * d;
                        }
                    }
                    for (x, y) in vr.iter().zip(wr) {
                        let d = x.to_f64() - y.to_f64();
                        acc[0] += d * d;
                    }
                    s[0] = acc.iter().sum();
                }
                Kind::Kl | Kind::Is => {
                    // Lanes of four: v/λ and its logarithm (a vectorized ln), entries with
                    // v ≤ ε left out (as zeros that add nothing).
                    let mut a = f64x4::ZERO;
                    let mut c = f64x4::ZERO;
                    let (vs, ws) = (v.chunks_exact(4), wh.chunks_exact(4));
                    let (vr, wr) = (vs.remainder(), ws.remainder());
                    let lane = |x: &[T], y: &[T]| {
                        let xv = f64x4::from(std::array::from_fn::<f64, 4, _>(|l| x[l].to_f64()));
                        let yv = f64x4::from(std::array::from_fn::<f64, 4, _>(|l| {
                            y[l].to_f64().max(eps)
                        }));
                        (xv, yv)
                    };
                    for (x, y) in vs.zip(ws) {
                        let (xv, yv) = lane(x, y);
                        let keep = xv.cmp_gt(f64x4::splat(eps));
                        let q = keep.blend(xv / yv, f64x4::ONE);
                        let l = q.ln();
                        if kind == Kind::Kl {
                            a += keep.blend(xv * l, f64x4::ZERO);
                            c += keep.blend(xv, f64x4::ZERO);
                        } else {
                            a += keep.blend(q - l, f64x4::ZERO);
                        }
                    }
                    let (mut a_s, mut c_s): (f64, f64) = (a.reduce_add(), c.reduce_add());
                    for (x, y) in vr.iter().zip(wr) {
                        let (x, y) = (x.to_f64(), y.to_f64().max(eps));
                        if x <= eps {
                            continue;
                        }
                        let q = x / y;
                        if kind == Kind::Kl {
                            a_s += x * q.ln();
                            c_s += x;
                        } else {
                            a_s += q - q.ln();
                        }
                    }
                    s[0] = a_s;
                    s[1] = c_s;
                }
                Kind::General => {
                    for (&x, &y) in v.iter().zip(wh) {
                        let (x, y) = (x.to_f64(), y.to_f64());
                        s[2] += y.powf(b);
                        if x <= eps {
                            continue;
                        }
                        let y = y.max(eps);
                        s[0] += x.powf(b);
                        s[1] += x * y.powf(b - 1.0);
                    }
                }
            }
            s
        },
    )
}

/// x ← x ⊙ factor(num, den + λ₁ + λ₂·x), then entries below float64's epsilon set to zero if
/// `floor` (scikit-learn's rule for β < 1 / β ≤ 1); entries below the type's smallest normal
/// number are flushed to zero (they add nothing measurable and slow the arithmetic).
fn apply<T: Float>(x: &mut [T], num: &[T], den: &[T], beta: Beta, reg: Reg, floor: bool) {
    let (l1, l2) = (T::from_f64(reg.l1), T::from_f64(reg.l2));
    let tiny = if floor {
        T::from_f64(f64::EPSILON)
    } else {
        T::MIN_NORMAL
    };
    for ((x, &nu), &de) in x.iter_mut().zip(num).zip(den) {
        let mut d = de;
        if reg.l1 > 0.0 {
            d += l1;
        }
        if reg.l2 > 0.0 {
            d += l2 * *x;
        }
        let y = *x * beta.factor(nu, d);
        *x = if y < tiny { T::ZERO } else { y };
    }
}

/// The bin of template `j`'s maximum (its first maximum, as numpy's `argmax`).
pub fn peak_bin(w: &DMatrix<f64>, j: usize) -> usize {
    let col = w.column(j);
    (0..col.len()).fold(0, |best, i| if col[i] > col[best] { i } else { best })
}

/// The order librosa's `decompose(…, sort=True)` puts components in: by [`peak_bin`], lowest
/// first; ties keep their order.
pub fn sort_order(w: &DMatrix<f64>) -> Vec<usize> {
    let mut order: Vec<usize> = (0..w.ncols()).collect();
    order.sort_by_key(|&j| peak_bin(w, j));
    order
}

/// W's columns and H's rows in `order`.
pub fn reorder(
    w: &DMatrix<f64>,
    h: &DMatrix<f64>,
    order: &[usize],
) -> (DMatrix<f64>, DMatrix<f64>) {
    let w2 = DMatrix::from_fn(w.nrows(), order.len(), |i, j| w[(i, order[j])]);
    let h2 = DMatrix::from_fn(order.len(), h.ncols(), |i, j| h[(order[i], j)]);
    (w2, h2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> (DMatrix<f64>, DMatrix<f64>, DMatrix<f64>) {
        let w = DMatrix::from_fn(30, 3, |i, j| ((i * (j + 1)) % 7) as f64 + 0.1);
        let h = DMatrix::from_fn(3, 300, |i, j| ((j * (i + 2)) % 5) as f64 + 0.2);
        let v = &w * &h;
        let w0 = DMatrix::from_element(30, 3, 1.0);
        let h0 = DMatrix::from_fn(3, 300, |i, j| 1.0 + 0.1 * ((i + j) % 3) as f64);
        (v, w0, h0)
    }

    #[test]
    fn every_beta_decreases_the_error() {
        let (v, w0, h0) = toy();
        for beta in [2.0, 1.0, 0.0, 0.5, 1.5, 3.0] {
            let p = BetaParams {
                beta,
                tol: 0.0,
                max_iter: 50,
                ..Default::default()
            };
            let f = factorize(&v, w0.clone(), h0.clone(), &p, |_| {}).unwrap();
            assert!(
                f.error < 0.5 * f.error_at_init,
                "β {beta}: {} → {}",
                f.error_at_init,
                f.error
            );
        }
    }

    #[test]
    fn the_result_does_not_depend_on_the_threads() {
        let (v, w0, h0) = toy();
        let p = BetaParams {
            beta: 1.0,
            ..Default::default()
        };
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let a = one.install(|| factorize(&v, w0.clone(), h0.clone(), &p, |_| {}).unwrap());
        let b = factorize(&v, w0, h0, &p, |_| {}).unwrap();
        assert_eq!(a.w, b.w);
        assert_eq!(a.h, b.h);
    }

    #[test]
    fn a_fixed_w_stays_and_h_fits() {
        let (v, w0, h0) = toy();
        let p = BetaParams {
            fixed_w: true,
            ..Default::default()
        };
        let f = factorize(&v, w0.clone(), h0, &p, |_| {}).unwrap();
        assert_eq!(f.w, w0);
        assert!(f.error < f.error_at_init);
    }

    #[test]
    fn zeros_refused_for_itakura_saito() {
        let (mut v, w0, h0) = toy();
        v[(0, 0)] = 0.0;
        let p = BetaParams {
            beta: 0.0,
            ..Default::default()
        };
        assert!(factorize(&v, w0, h0, &p, |_| {}).is_err());
    }

    #[test]
    fn sort_by_peak_bin() {
        let w = DMatrix::from_row_slice(3, 3, &[0.0, 1.0, 0.0, 0.0, 0.0, 2.0, 3.0, 0.0, 0.0]);
        assert_eq!(sort_order(&w), vec![1, 2, 0]);
    }
}
