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
//! by it (libfmp `norm=True`), which leaves W·H unchanged. An entry an update leaves below the
//! smallest normal number of its type is set to zero (see `flush`): libfmp keeps it, but it adds
//! nothing measurable and subnormal arithmetic is slow.
//!
//! **Cost that follows the score.** H₀ is mostly zeros: a pitch is active only near its notes.
//! The time axis is cut into tiles of at most [`NmfParams::tile`] frames, where the score's
//! active rows change ([`tile_bounds`]); a tile keeps only the rows of H that H₀ allows somewhere
//! in it (A), as a dense |A| × T block. Every product above splits exactly over tiles —
//! (WᵀV)[A, tile] = W[:, A]ᵀ·V[:, tile], (V·Hᵀ) = Σ_tiles V[:, tile]·H[A, tile]ᵀ scattered
//! into the columns A, likewise H·Hᵀ and W·H — so an iteration costs
//! 2·K·Σ_tiles |A|·T per big product instead of 2·K·R·N, and rows outside A, which are zero and
//! would stay zero, are never touched. The H update of a tile and its share of the W update's
//! sums are done in one pass while the tile of V is in cache. Tiles are processed in parallel
//! (rayon); the W sums are reduced over a fixed partition of the tiles in a fixed order, so the
//! result does not depend on the number of threads. The two big products of a tile run in the
//! SIMD kernels of [`crate::model::kernel`] (AVX-512F, AVX2+FMA or NEON, whichever the CPU runs
//! best; on V and W stored with columns padded to whole cache lines), or through faer's GEMM
//! where it runs none; in `f32` or `f64` ([`Precision`]).

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use nalgebra::{DMatrix, SymmetricEigen};
use rayon::prelude::*;
use serde::Serialize;
use std::ops::Range;

use crate::error::{Error, Result};
use crate::model::kernel::{padded, wide, Aligned, Path};

/// The cost the updates decrease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Divergence {
    /// Squared Euclidean distance (FMP).
    Euclidean,
    /// Generalized Kullback–Leibler divergence.
    Kl,
}

/// The floating-point type of the factorization's arithmetic.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// `f32`: twice the GEMM throughput and half the memory of `f64`.
    Single,
    /// `f64`, as numpy computes libfmp's NMF (parity with the reference to ~1e-15).
    Double,
}

/// Parameters of the factorization.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
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
    /// Most frames per time tile of the sparse products (see the module's documentation). It
    /// changes only the speed and the rounding order, not the updates.
    pub tile: usize,
    /// The instruction set of the big products; `None` (or one this CPU does not run) takes
    /// [`kernel::path`]. Set by benchmarks and tests to measure or check one path beside another
    /// in one process. Not recorded in run.json: like the thread count, it changes only the
    /// speed and (from one path to another) the last bits.
    ///
    /// [`kernel::path`]: crate::model::kernel::path
    #[serde(skip)]
    pub kernels: Option<Path>,
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
            tile: 16,
            kernels: None,
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
    /// (iteration, ‖V − WH‖_F / ‖V‖_F) at [`TRACE_POINTS`] iterations or so, the first and the
    /// last among them, when traced ([`factorize_traced`]); else empty.
    pub errors: Vec<(usize, f64)>,
    /// Σ over tiles of |A|·T: the entries of H the updates touch (R·N when H₀ has no zeros).
    pub active_entries: usize,
    /// (‖ΔH‖₂, ‖ΔW‖₂) of each iteration, the spectral norms the stop test compares (libfmp's
    /// `H_W_error`); empty without a stop threshold, which skips measuring them.
    pub changes: Vec<(f64, f64)>,
}

/// Factorizes `v` (K × N) from `w0` (K × R) and `h0` (R × N). `progress` is called after each
/// iteration with its number. The factorization works on its own copy of V, laid out for its
/// kernels; [`factorize_in_place`] lays out the caller's V in place instead.
pub fn factorize(
    v: &DMatrix<f32>,
    w0: DMatrix<f64>,
    h0: DMatrix<f64>,
    p: &NmfParams,
    progress: impl FnMut(usize),
) -> Result<Factorization> {
    check(v, &w0, &h0, p)?;
    let (k, n) = v.shape();
    let v = Aligned::columns(v.as_slice(), k, padded::<f32>(k), n);
    Ok(run(v, k, &w0, &h0, p, false, progress).0)
}

/// [`factorize`] without a second copy of V: `v` is laid out for the kernels in place and put
/// back as it was (the same values) before this returns.
pub fn factorize_in_place(
    v: &mut DMatrix<f32>,
    w0: DMatrix<f64>,
    h0: DMatrix<f64>,
    p: &NmfParams,
    progress: impl FnMut(usize),
) -> Result<Factorization> {
    in_place(v, w0, h0, p, false, progress)
}

/// About how many iterations [`factorize_traced`] measures the error after.
pub const TRACE_POINTS: usize = 20;

/// [`factorize_in_place`], also recording ‖V − WH‖_F / ‖V‖_F after the first iteration, every
/// ⌈iterations / [`TRACE_POINTS`]⌉-th and the last ([`Factorization::errors`]; each costs one
/// more pass over V with W·H, about an iteration's time). The factors are the same as without
/// the trace.
pub fn factorize_traced(
    v: &mut DMatrix<f32>,
    w0: DMatrix<f64>,
    h0: DMatrix<f64>,
    p: &NmfParams,
    progress: impl FnMut(usize),
) -> Result<Factorization> {
    in_place(v, w0, h0, p, true, progress)
}

/// V laid out in place, the iterations (with the error traced or not), V put back.
fn in_place(
    v: &mut DMatrix<f32>,
    w0: DMatrix<f64>,
    h0: DMatrix<f64>,
    p: &NmfParams,
    trace: bool,
    progress: impl FnMut(usize),
) -> Result<Factorization> {
    check(v, &w0, &h0, p)?;
    let (k, n) = v.shape();
    let taken: Vec<f32> = std::mem::replace(v, DMatrix::zeros(0, 0)).data.into();
    let laid_out = Aligned::columns_in_place(taken, k, n);
    let (f, back) = run(laid_out, k, &w0, &h0, p, trace, progress);
    *v = DMatrix::from_vec(k, n, back.into_columns(k, n));
    Ok(f)
}

fn check(v: &DMatrix<f32>, w0: &DMatrix<f64>, h0: &DMatrix<f64>, p: &NmfParams) -> Result<()> {
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
    // Branch-free, so that it vectorizes: NaN fails both comparisons.
    let fine = |ok: bool, x: f64| ok & (x >= 0.0) & (x <= f64::MAX);
    let v_fine = v.as_slice().par_chunks(1 << 16).all(|c| {
        wide(
            #[inline(always)]
            || c.iter().fold(true, |ok, &x| fine(ok, x as f64)),
        )
    });
    if !v_fine || !w0.iter().chain(h0.iter()).fold(true, |ok, &x| fine(ok, x)) {
        return Err(Error::Param(
            "NMF needs finite non-negative V, W₀ and H₀".into(),
        ));
    }
    if p.tile == 0 {
        return Err(Error::Param(
            "the NMF tile must be at least one frame".into(),
        ));
    }
    Ok(())
}

fn run(
    v: Aligned<f32>,
    k: usize,
    w0: &DMatrix<f64>,
    h0: &DMatrix<f64>,
    p: &NmfParams,
    trace: bool,
    progress: impl FnMut(usize),
) -> (Factorization, Aligned<f32>) {
    match p.precision {
        Precision::Single => Engine::<f32>::new(v, k, w0, h0, p).run(p, trace, progress),
        Precision::Double => Engine::<f64>::new(v, k, w0, h0, p).run(p, trace, progress),
    }
}

/// The arithmetic the engine is generic over: `f32` or `f64`.
pub trait Float:
    faer::traits::RealField
    + faer::traits::Conjugate<Canonical = Self>
    + crate::model::kernel::Element
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
    /// The smallest positive normal number.
    const MIN_NORMAL: Self;
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    /// `src` in this type: itself for `f32`, else converted into `buf`.
    fn from_f32_slice<'s>(src: &'s [f32], buf: &'s mut Vec<Self>) -> &'s [Self];
    /// [`kernel::at_b`](crate::model::kernel::at_b) with B stored as `f32`.
    fn at_b_f32(
        path: Path,
        a: &[&[Self]],
        b: &[f32],
        need: &[Range<usize>],
        ahead: &[f32],
        c: &mut [Self],
    );
    /// [`kernel::at_b`](crate::model::kernel::at_b) with B stored in this type.
    fn at_b_own(
        path: Path,
        a: &[&[Self]],
        b: &[Self],
        need: &[Range<usize>],
        ahead: &[Self],
        c: &mut [Self],
    );
    /// [`kernel::acc_b_ht`](crate::model::kernel::acc_b_ht) with B stored as `f32`.
    #[allow(clippy::too_many_arguments)]
    fn acc_b_ht_f32(
        path: Path,
        b: &[f32],
        k: usize,
        h: &[Self],
        need: &[Range<usize>],
        cols: &[usize],
        ahead: &[f32],
        c: &mut [Self],
    );
    /// [`kernel::acc_b_ht`](crate::model::kernel::acc_b_ht) with B stored in this type.
    fn acc_b_ht_own(
        path: Path,
        b: &[Self],
        k: usize,
        h: &[Self],
        need: &[Range<usize>],
        cols: &[usize],
        c: &mut [Self],
    );
}

macro_rules! float {
    ($t:ty, $src:ident, $buf:ident, $convert:expr) => {
        impl Float for $t {
            const ZERO: $t = 0.0;
            const ONE: $t = 1.0;
            const MIN_NORMAL: $t = <$t>::MIN_POSITIVE;
            fn from_f64(x: f64) -> $t {
                x as $t
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn from_f32_slice<'s>($src: &'s [f32], $buf: &'s mut Vec<$t>) -> &'s [$t] {
                $convert
            }
            fn at_b_f32(
                path: Path,
                a: &[&[$t]],
                b: &[f32],
                need: &[Range<usize>],
                ahead: &[f32],
                c: &mut [$t],
            ) {
                crate::model::kernel::at_b_on(path, a, b, need, ahead, c)
            }
            fn at_b_own(
                path: Path,
                a: &[&[$t]],
                b: &[$t],
                need: &[Range<usize>],
                ahead: &[$t],
                c: &mut [$t],
            ) {
                crate::model::kernel::at_b_on(path, a, b, need, ahead, c)
            }
            fn acc_b_ht_f32(
                path: Path,
                b: &[f32],
                k: usize,
                h: &[$t],
                need: &[Range<usize>],
                cols: &[usize],
                ahead: &[f32],
                c: &mut [$t],
            ) {
                crate::model::kernel::acc_b_ht_on(path, b, k, h, need, cols, ahead, c)
            }
            fn acc_b_ht_own(
                path: Path,
                b: &[$t],
                k: usize,
                h: &[$t],
                need: &[Range<usize>],
                cols: &[usize],
                c: &mut [$t],
            ) {
                crate::model::kernel::acc_b_ht_on(path, b, k, h, need, cols, &[], c)
            }
        }
    };
}
float!(f32, src, _buf, src);
float!(f64, src, buf, {
    buf.clear();
    buf.extend(src.iter().map(|&x| x as f64));
    buf
});

/// Frames `start..start + len` of H, restricted to the rows H₀ allows somewhere in them.
struct Tile<T> {
    start: usize,
    len: usize,
    rows: Vec<usize>,
    /// For each of `rows`, the frames of the tile (from 0) between its first and last nonzero
    /// in H₀: outside them the row is zero and stays zero.
    need: Vec<Range<usize>>,
    /// |rows| × len, column-major.
    h: Vec<T>,
}

/// What one group of tiles adds to the sums of the W update and the stop test.
struct Sums<T> {
    /// V·Hᵀ (Euclidean) or (V ⊘ WH)·Hᵀ (KL), k × R column-major.
    vh: Aligned<T>,
    /// H·Hᵀ, R × R (Euclidean).
    hh: Vec<T>,
    /// Row sums of H (KL).
    rowsum: Vec<T>,
    /// ΔH·ΔHᵀ, R × R, for ‖ΔH‖₂.
    dh: Vec<f64>,
}

impl<T: Float> Sums<T> {
    fn clear(&mut self) {
        self.vh.fill(T::ZERO);
        self.hh.fill(T::ZERO);
        self.rowsum.fill(T::ZERO);
        self.dh.fill(0.0);
    }

    fn zeros(k: usize, r: usize) -> Self {
        Sums {
            vh: Aligned::zeros(k * r),
            hh: vec![T::ZERO; r * r],
            rowsum: vec![T::ZERO; r],
            dh: vec![0.0; r * r],
        }
    }

    /// Adds `o`'s R × R and R sums (not V·Hᵀ: see [`reduce`]).
    fn add_small(&mut self, o: &Sums<T>) {
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

/// Fixed cost of a tile, in entries of H (row × frame) of kernel work: the calls, the small
/// products of the H update and its share of H·Hᵀ. [`tile_bounds`] cuts a new tile where that
/// saves more than this. Chosen on the benchmark's 10-minute input (`examples/nmf_tiles`, f32 and
/// f64, 100 iterations; this cost swept over 0, 8, 16, 24, 32, 48, 64, 128 with tiles of at most
/// 16, 24, 32 frames): 16 with tiles of at most 16 frames was at or within noise of the best.
const TILE_COST: usize = 16;

/// The time tiles, (start, len), each of at most `most` frames, that minimize
/// Σ_tiles (|A|·len + [`TILE_COST`]), where A is the set of rows H₀ allows somewhere in the tile:
/// the kernels' work plus a fixed cost per tile. Cutting where the score's active rows change
/// (a chord ends, an onset window closes) keeps fewer rows than tiles cut every `most` frames
/// (10-minute input: 40 % of R·N instead of 48 %). Found exactly by dynamic programming over the
/// end of the last tile: cost(e) = min over s ∈ [e − most, e) of cost(s) + |A(s..e)|·(e − s) +
/// TILE_COST, with A(s..e) the union of the frames' active rows as bit sets; on ties the
/// last tile is the shortest (with no zeros in H₀: tiles of `most` frames, then the rest).
fn tile_bounds(h0: &DMatrix<f64>, most: usize) -> Vec<(usize, usize)> {
    let (r, n) = h0.shape();
    let words = r.div_ceil(64).max(1);
    let mut bits = vec![0u64; n * words];
    for (c, col) in h0.column_iter().enumerate() {
        for (ri, &x) in col.iter().enumerate() {
            if x != 0.0 {
                bits[c * words + ri / 64] |= 1 << (ri % 64);
            }
        }
    }
    let mut cost = vec![usize::MAX; n + 1];
    let mut from = vec![0; n + 1];
    cost[0] = 0;
    let mut set = vec![0u64; words];
    for e in 1..=n {
        set.fill(0);
        for s in (e.saturating_sub(most)..e).rev() {
            for (x, b) in set.iter_mut().zip(&bits[s * words..(s + 1) * words]) {
                *x |= b;
            }
            let a: usize = set.iter().map(|x| x.count_ones() as usize).sum();
            let c = cost[s] + a * (e - s) + TILE_COST;
            if c < cost[e] {
                cost[e] = c;
                from[e] = s;
            }
        }
    }
    let mut out = Vec::new();
    let mut e = n;
    while e > 0 {
        out.push((from[e], e - from[e]));
        e = from[e];
    }
    out.reverse();
    out
}

/// Tiles per group whose W sums are reduced together: a fixed partition, so the reduction order
/// (and the result) does not depend on the number of threads.
const GROUPS: usize = 32;

struct Engine<T: Float> {
    /// V, K × N column-major, as it is stored (f32), each column padded with zeros to `k` rows
    /// and starting on a cache line ([`Aligned`]); an `f64` factorization converts it as it
    /// loads it, so it streams half the bytes and holds no `f64` copy.
    v: Aligned<f32>,
    /// Rows of V, W and the sums as stored: K rounded up to whole cache lines. The padding
    /// rows are zero in V and W₀, so they stay zero and change no product.
    k: usize,
    /// K, the rows of V as given.
    k_given: usize,
    r: usize,
    n: usize,
    /// k × R column-major.
    w: Aligned<T>,
    tiles: Vec<Tile<T>>,
    /// Each group's sums and scratch space, kept from iteration to iteration (allocating them
    /// anew each time cost fresh pages, zeroed by the system, on every iteration).
    groups: Vec<(Sums<T>, Bufs<T>)>,
    eps: T,
    /// The CPU runs [`crate::model::kernel`].
    /// The kernels' path, or [`Path::Gemm`] for faer's GEMM.
    kernels: Path,
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

impl<T: Float> Engine<T> {
    fn new(
        v: Aligned<f32>,
        k_given: usize,
        w0: &DMatrix<f64>,
        h0: &DMatrix<f64>,
        p: &NmfParams,
    ) -> Self {
        let (r, n) = h0.shape();
        let k = padded::<f32>(k_given);
        debug_assert_eq!(v.len(), k * n);
        let w0: Vec<T> = w0.iter().map(|&x| T::from_f64(x)).collect();
        let w = Aligned::columns(&w0, k_given, k, r);
        debug_assert_eq!(w.len(), k * r);
        let tiles = tile_bounds(h0, p.tile)
            .into_iter()
            .map(|(start, len)| {
                let rows: Vec<usize> = (0..r)
                    .filter(|&ri| (start..start + len).any(|c| h0[(ri, c)] != 0.0))
                    .collect();
                let need = rows
                    .iter()
                    .map(|&ri| {
                        let on = |&c: &usize| h0[(ri, start + c)] != 0.0;
                        let first = (0..len).find(on).unwrap_or(0);
                        let last = (0..len).rev().find(on).unwrap_or(0);
                        first..last + 1
                    })
                    .collect();
                let mut h = Vec::with_capacity(rows.len() * len);
                for c in start..start + len {
                    h.extend(rows.iter().map(|&ri| T::from_f64(h0[(ri, c)])));
                }
                Tile {
                    start,
                    len,
                    rows,
                    need,
                    h,
                }
            })
            .collect();
        Engine {
            v,
            k,
            k_given,
            r,
            n,
            w,
            tiles,
            groups: Vec::new(),
            eps: T::from_f64(p.eps),
            kernels: p
                .kernels
                .filter(|k| k.supported())
                .unwrap_or_else(crate::model::kernel::path),
        }
    }

    /// The frames of V in tile `t`, k × len column-major.
    fn v_slice(&self, t: &Tile<T>) -> &[f32] {
        &self.v[t.start * self.k..(t.start + t.len) * self.k]
    }

    /// The next tile's frames of V, which come next in memory, in two parts: the first to be
    /// fetched into cache while the kernels compute WᵀV of tile `t`, the second while they
    /// compute V·Hᵀ. Fetching all of it during WᵀV left that product waiting on memory and the
    /// other waiting on nothing (`examples/nmf_tiles`, 60 iterations, per iteration: 3.80 →
    /// 3.66 ms with the score's H₀, 5.98 → 5.44 ms with an all-ones H₀).
    fn ahead(&self, t: &Tile<T>) -> (&[f32], &[f32]) {
        let k = self.k;
        let start = (t.start + t.len) * k;
        let end = self.v.len().min(start + t.len * k);
        let start = start.min(end);
        let mid = start + (end - start) / 2;
        (&self.v[start..mid], &self.v[mid..end])
    }

    /// out (|rows| × len) = W[:, rows]ᵀ·B for the tile's rows, where B (K × len) is the tile of
    /// V (`b` = None) or `b`: by the kernel where the CPU runs it, else by faer's GEMM on
    /// gathered copies (in `bufs`).
    fn wt_times(&self, t: &Tile<T>, b: Option<&[T]>, bufs: &mut Bufs<T>, out: &mut [T]) {
        let (k, a) = (self.k, t.rows.len());
        if self.kernels != Path::Gemm {
            let w: Vec<&[T]> = t
                .rows
                .iter()
                .map(|&r| &self.w[r * k..(r + 1) * k])
                .collect();
            match b {
                None => T::at_b_f32(
                    self.kernels,
                    &w,
                    self.v_slice(t),
                    &t.need,
                    self.ahead(t).0,
                    out,
                ),
                Some(b) => T::at_b_own(self.kernels, &w, b, &t.need, &[], out),
            }
        } else {
            self.gather_w(&t.rows, &mut bufs.wa);
            let b = match b {
                None => T::from_f32_slice(self.v_slice(t), &mut bufs.v),
                Some(b) => b,
            };
            gemm(
                mat_mut(out, a, t.len),
                false,
                mat(&bufs.wa, k, a).transpose(),
                mat(b, k, t.len),
            );
        }
    }

    /// vh[:, rows] += B·H_tileᵀ for the tile's rows, where B (K × len) is the tile of V
    /// (`b` = None) or `b`.
    fn add_b_ht(&self, t: &Tile<T>, b: Option<&[T]>, bufs: &mut Bufs<T>, vh: &mut [T]) {
        let (k, a) = (self.k, t.rows.len());
        if self.kernels != Path::Gemm {
            match b {
                None => {
                    let ahead = self.ahead(t).1;
                    T::acc_b_ht_f32(
                        self.kernels,
                        self.v_slice(t),
                        k,
                        &t.h,
                        &t.need,
                        &t.rows,
                        ahead,
                        vh,
                    )
                }
                Some(b) => T::acc_b_ht_own(self.kernels, b, k, &t.h, &t.need, &t.rows, vh),
            }
        } else {
            let b = match b {
                None => T::from_f32_slice(self.v_slice(t), &mut bufs.v),
                Some(b) => b,
            };
            bufs.scratch.resize(k * a, T::ZERO);
            gemm(
                mat_mut(&mut bufs.scratch, k, a),
                false,
                mat(b, k, t.len),
                mat(&t.h, a, t.len).transpose(),
            );
            for (j, &ri) in t.rows.iter().enumerate() {
                for (s, &x) in vh[ri * k..(ri + 1) * k]
                    .iter_mut()
                    .zip(&bufs.scratch[j * k..(j + 1) * k])
                {
                    *s += x;
                }
            }
        }
    }

    /// `out` (K × len, zero) += W[:, rows]·H of tile `t`, where `wa` holds W[:, rows]: by the
    /// V·Hᵀ kernel with Hᵀ in the role of H where the CPU runs it, else by faer's GEMM.
    fn w_times_h(&self, t: &Tile<T>, wa: &[T], wh: &mut WhBufs<T>, out: &mut [T]) {
        let (k, a, len) = (self.k, t.rows.len(), t.len);
        if self.kernels != Path::Gemm {
            // Hᵀ, len × a, column-major.
            let ht = &mut wh.ht;
            ht.clear();
            ht.resize(len * a, T::ZERO);
            for (c, hc) in t.h.chunks_exact(a).enumerate() {
                for (j, &x) in hc.iter().enumerate() {
                    ht[c + j * len] = x;
                }
            }
            wh.all.clear();
            wh.all.resize(len, 0..a);
            wh.cols.clear();
            wh.cols.extend(0..len);
            T::acc_b_ht_own(self.kernels, wa, k, ht, &wh.all, &wh.cols, out);
        } else {
            gemm(mat_mut(out, k, len), true, mat(wa, k, a), mat(&t.h, a, len));
        }
    }

    /// W[:, rows], K × |rows|.
    fn gather_w(&self, rows: &[usize], out: &mut Vec<T>) {
        out.clear();
        for &ri in rows {
            out.extend_from_slice(&self.w[ri * self.k..(ri + 1) * self.k]);
        }
    }

    /// Runs the iterations; returns the factorization and V as the engine holds it. It cannot
    /// fail: the inputs were checked before, so V can always be handed back. Each iteration: the
    /// pass over the tiles (H's update and the W update's sums), then W's update, then the stop
    /// test on ‖ΔH‖₂ and ‖ΔW‖₂.
    fn run(
        mut self,
        p: &NmfParams,
        trace: bool,
        mut progress: impl FnMut(usize),
    ) -> (Factorization, Aligned<f32>) {
        let r = self.r;
        let stop = p.stop_threshold;
        let mut done = 0;
        let mut errors = Vec::new();
        let mut changes = Vec::new();
        for it in 1..=p.iterations {
            let sums = match p.divergence {
                Divergence::Euclidean => self.euclidean_pass(p.fixed_w, stop.is_some()),
                Divergence::Kl => self.kl_pass(p.fixed_w, stop.is_some()),
            };
            let mut dw = vec![0.0f64; r * r];
            if !p.fixed_w {
                let new_w = match p.divergence {
                    Divergence::Euclidean => self.euclidean_w(&sums),
                    Divergence::Kl => self.kl_w(&sums),
                };
                if stop.is_some() {
                    dw = self.change_gram(&new_w);
                }
                self.w = new_w;
            }
            done = it;
            let every = p.iterations.div_ceil(TRACE_POINTS).max(1);
            let last = it == p.iterations;
            if trace && (it == 1 || it % every == 0 || last) {
                errors.push((it, self.relative_error()));
            }
            progress(it);
            if let Some(t) = stop {
                let change = (gram_norm(&sums.dh, r), gram_norm(&dw, r));
                changes.push(change);
                if change.0 < t && change.1 < t {
                    break;
                }
            }
        }
        // A stop before the last iteration: its error too.
        if trace && errors.last().is_some_and(|&(i, _)| i != done) {
            errors.push((done, self.relative_error()));
        }
        self.finish(p.normalize, done, errors, changes)
    }

    /// The Euclidean W update from the pass's sums: W ← W ⊙ (V·Hᵀ) ⊘ (W·(H·Hᵀ) + ε).
    fn euclidean_w(&self, sums: &Sums<T>) -> Aligned<T> {
        let (k, r) = (self.k, self.r);
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
            .for_each(|(x, (&a, &b))| *x = flush(*x * (a / (b + eps))));
        w
    }

    /// The KL W update from the pass's sums: W ← W ⊙ ((V ⊘ WH)·Hᵀ) ⊘ (1·Hᵀ + ε).
    fn kl_w(&self, sums: &Sums<T>) -> Aligned<T> {
        let k = self.k;
        let mut w = self.w.clone();
        for (ci, col) in w.chunks_mut(k).enumerate() {
            let den = sums.rowsum[ci] + self.eps;
            for (x, &a) in col.iter_mut().zip(&sums.vh[ci * k..(ci + 1) * k]) {
                *x = flush(*x * (a / den));
            }
        }
        w
    }

    /// ΔWᵀΔW (R × R) for ΔW = `new_w` − W, whose largest eigenvalue is ‖ΔW‖₂² ([`gram_norm`]).
    fn change_gram(&self, new_w: &[T]) -> Vec<f64> {
        let (k, r) = (self.k, self.r);
        let d: Vec<T> = new_w
            .iter()
            .zip(self.w.iter())
            .map(|(&a, &b)| a - b)
            .collect();
        let mut g = vec![T::ZERO; r * r];
        matmul(
            mat_mut(&mut g, r, r),
            Accum::Replace,
            mat(&d, k, r).transpose(),
            mat(&d, k, r),
            T::ONE,
            Par::Seq,
        );
        g.iter().map(|x| x.to_f64()).collect()
    }

    /// Runs `work` on the fixed partition of the tiles into groups, in parallel, each group with
    /// its own sums (set to zero) and scratch space, both kept in `self.groups` for the next
    /// iteration, and adds up the groups' sums in group order. `work` runs under [`wide`]: where
    /// it is inlined (its closure and what that calls marked `#[inline(always)]`), its loops use
    /// AVX-512.
    fn by_groups(
        &mut self,
        fixed_w: bool,
        work: impl Fn(&Self, &mut [Tile<T>], &mut Sums<T>, &mut Bufs<T>) + Sync,
    ) -> Sums<T> {
        let mut tiles = std::mem::take(&mut self.tiles);
        let per_group = tiles.len().div_ceil(GROUPS).max(1);
        // The W sums are K × R unless W is fixed.
        let k_sums = if fixed_w { 0 } else { self.k };
        let mut state = std::mem::take(&mut self.groups);
        let n_groups = tiles.len().div_ceil(per_group);
        if state.len() != n_groups
            || state
                .first()
                .is_some_and(|(s, _)| s.vh.len() != k_sums * self.r)
        {
            state = (0..n_groups)
                .map(|_| (Sums::zeros(k_sums, self.r), Bufs::default()))
                .collect();
        }
        let this = &*self;
        tiles
            .par_chunks_mut(per_group)
            .zip(state.par_iter_mut())
            .for_each(|(group, (sums, bufs))| {
                sums.clear();
                wide(
                    #[inline(always)]
                    || work(this, group, sums, bufs),
                );
            });
        self.tiles = tiles;
        let total = reduce(&state, k_sums, self.r);
        self.groups = state;
        total
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
        self.by_groups(
            fixed_w,
            #[inline(always)]
            |this, group, sums, bufs| {
                this.euclidean_group(group, &g, fixed_w, track_change, sums, bufs)
            },
        )
    }

    /// [`Engine::euclidean_pass`] over one group of tiles, with G = WᵀW (inlined: see
    /// [`Engine::by_groups`]).
    #[inline(always)]
    fn euclidean_group(
        &self,
        group: &mut [Tile<T>],
        g: &[T],
        fixed_w: bool,
        track_change: bool,
        sums: &mut Sums<T>,
        bufs: &mut Bufs<T>,
    ) {
        let r = self.r;
        for t in group.iter_mut() {
            let (a, len) = (t.rows.len(), t.len);
            if a == 0 {
                continue;
            }
            // H ← H ⊙ (WᵀV) ⊘ ((WᵀW)·H + ε) on the tile.
            let mut num = std::mem::take(&mut bufs.num);
            num.resize(a * len, T::ZERO);
            self.wt_times(t, None, bufs, &mut num);
            bufs.ga.clear();
            for &j in &t.rows {
                bufs.ga.extend(t.rows.iter().map(|&i| g[i + j * r]));
            }
            bufs.den.resize(a * len, T::ZERO);
            small_product(&bufs.ga, a, &t.h, len, &mut bufs.den);
            if track_change {
                bufs.old.clear();
                bufs.old.extend_from_slice(&t.h);
            }
            for ((x, &nu), &de) in t.h.iter_mut().zip(&num).zip(&bufs.den) {
                *x = flush(*x * (nu / (de + self.eps)));
            }
            bufs.num = num;
            if track_change {
                add_change(self.kernels, &mut sums.dh, r, t, bufs);
            }
            if !fixed_w {
                // V·Hᵀ into the columns `rows`, H·Hᵀ into rows × rows.
                self.add_b_ht(t, None, bufs, &mut sums.vh);
                add_gram(
                    self.kernels,
                    &mut sums.hh,
                    r,
                    t,
                    &t.h,
                    &mut bufs.scratch,
                    |x| x,
                );
            }
        }
    }

    /// The KL H update of every tile, and the sums of the W update (with the new H).
    fn kl_pass(&mut self, fixed_w: bool, track_change: bool) -> Sums<T> {
        let k = self.k;
        // Wᵀ·1: the column sums of W.
        let colsum: Vec<T> = self
            .w
            .chunks(k)
            .map(|c| c.iter().fold(T::ZERO, |s, &x| s + x))
            .collect();
        self.by_groups(
            fixed_w,
            #[inline(always)]
            |this, group, sums, bufs| {
                this.kl_group(group, &colsum, fixed_w, track_change, sums, bufs)
            },
        )
    }

    /// [`Engine::kl_pass`] over one group of tiles, with the column sums of W (inlined: see
    /// [`Engine::by_groups`]).
    #[inline(always)]
    fn kl_group(
        &self,
        group: &mut [Tile<T>],
        colsum: &[T],
        fixed_w: bool,
        track_change: bool,
        sums: &mut Sums<T>,
        bufs: &mut Bufs<T>,
    ) {
        let (k, r) = (self.k, self.r);
        let mut wa = Vec::new();
        let longest = group.iter().map(|t| t.len).max().unwrap_or(0);
        let mut q = Aligned::<T>::zeros(k * longest);
        for t in group.iter_mut() {
            let (a, len) = (t.rows.len(), t.len);
            if a == 0 {
                continue;
            }
            self.gather_w(&t.rows, &mut wa);
            let v_slice = self.v_slice(t);
            // Q = V ⊘ (W·H + ε) on the tile.
            let ratio = |q: &mut [T], t: &Tile<T>, wh: &mut WhBufs<T>| {
                let q = &mut q[..k * len];
                q.fill(T::ZERO);
                self.w_times_h(t, &wa, wh, q);
                for (x, &vv) in q.iter_mut().zip(v_slice) {
                    *x = T::from_f64(vv as f64) / (*x + self.eps);
                }
            };
            ratio(&mut q, t, &mut bufs.wh);
            let mut num = std::mem::take(&mut bufs.num);
            num.resize(a * len, T::ZERO);
            self.wt_times(t, Some(&q[..k * len]), bufs, &mut num);
            if track_change {
                bufs.old.clear();
                bufs.old.extend_from_slice(&t.h);
            }
            for (hc, nc) in t.h.chunks_mut(a).zip(num.chunks(a)) {
                for ((x, &nu), &ri) in hc.iter_mut().zip(nc).zip(&t.rows) {
                    *x = flush(*x * (nu / (colsum[ri] + self.eps)));
                }
            }
            bufs.num = num;
            if track_change {
                add_change(self.kernels, &mut sums.dh, r, t, bufs);
            }
            if !fixed_w {
                ratio(&mut q, t, &mut bufs.wh);
                self.add_b_ht(t, Some(&q[..k * len]), bufs, &mut sums.vh);
                for (j, &ri) in t.rows.iter().enumerate() {
                    let mut s = T::ZERO;
                    for c in 0..len {
                        s += t.h[j + c * a];
                    }
                    sums.rowsum[ri] += s;
                }
            }
        }
    }

    /// Normalizes, measures the error and gathers the tiles into a dense H.
    fn finish(
        mut self,
        normalize: bool,
        iterations: usize,
        errors: Vec<(usize, f64)>,
        changes: Vec<(f64, f64)>,
    ) -> (Factorization, Aligned<f32>) {
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
        let rel_error = self.relative_error();
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
        let f = Factorization {
            w: DMatrix::from_fn(self.k_given, r, |i, j| self.w[i + j * k].to_f64()),
            h,
            iterations,
            rel_error,
            errors,
            active_entries,
            changes,
        };
        (f, self.v)
    }

    /// ‖V − WH‖_F / ‖V‖_F, tile by tile (in f64, summed in tile order, so the same whatever the
    /// thread count).
    fn relative_error(&self) -> f64 {
        let k = self.k;
        let this = self;
        let errs: Vec<(f64, f64)> = self
            .tiles
            .par_iter()
            .map_init(Bufs::default, |bufs, t| {
                let v_slice = this.v_slice(t);
                bufs.scratch.clear();
                bufs.scratch.resize(k * t.len, T::ZERO);
                if !t.rows.is_empty() {
                    this.gather_w(&t.rows, &mut bufs.wa);
                    this.w_times_h(t, &bufs.wa, &mut bufs.wh, &mut bufs.scratch);
                }
                wide(
                    #[inline(always)]
                    || squared_error(v_slice, &bufs.scratch),
                )
            })
            .collect();
        let (e, vv) = errs.iter().fold((0.0, 0.0), |s, x| (s.0 + x.0, s.1 + x.1));
        (e / vv.max(f64::MIN_POSITIVE)).sqrt()
    }
}

/// (Σᵢ (vᵢ − whᵢ)², Σᵢ vᵢ²) in f64, each in eight interleaved partial sums (a single running
/// sum is one long chain of dependent additions, several times slower).
#[inline(always)]
fn squared_error<T: Float>(v: &[f32], wh: &[T]) -> (f64, f64) {
    let (mut e, mut s) = ([0.0f64; 8], [0.0f64; 8]);
    let (vs, whs) = (v.chunks_exact(8), wh.chunks_exact(8));
    let (vr, whr) = (vs.remainder(), whs.remainder());
    for (x, y) in vs.zip(whs) {
        let x: [f64; 8] = std::array::from_fn(|l| x[l] as f64);
        let y: [f64; 8] = std::array::from_fn(|l| y[l].to_f64());
        for l in 0..8 {
            e[l] += (x[l] - y[l]) * (x[l] - y[l]);
            s[l] += x[l] * x[l];
        }
    }
    for (lane, (&x, &y)) in vr.iter().zip(whr).enumerate() {
        let (x, y) = (x as f64, y.to_f64());
        e[lane] += (x - y) * (x - y);
        s[lane] += x * x;
    }
    (e.iter().sum(), s.iter().sum())
}

/// `x`, or zero if it is below the smallest normal number of `T` (about 1.2e-38 in `f32`,
/// 2.2e-308 in `f64`). Multiplicative updates drive the entries of W and H that the data does
/// not support towards zero geometrically; once subnormal they add nothing measurable to any
/// product, but every multiply-add that touches them takes a slow microcode path (on the
/// benchmark machine, `examples/nmf_tiles` on the 10-minute input: 5.9 ms per `f32` iteration
/// without this, 4.4 ms with it). A flushed entry stays zero, as a zero of W₀ or H₀ does.
#[inline(always)]
fn flush<T: Float>(x: T) -> T {
    if x < T::MIN_NORMAL {
        T::ZERO
    } else {
        x
    }
}

/// Adds D·Dᵀ of tile `t`'s |rows| × len block `d` (column-major; zero outside each row's
/// `need`, as the tile's H) into the R × R `gram`, via `local` (|rows| × |rows|): by the V·Hᵀ
/// kernel on `kernels` unless that is [`Path::Gemm`], else as a sum of the outer products of D's columns.
fn add_gram<T: Float, G: std::ops::AddAssign>(
    kernels: Path,
    gram: &mut [G],
    r: usize,
    t: &Tile<T>,
    d: &[T],
    local: &mut Vec<T>,
    to: impl Fn(T) -> G,
) {
    let (rows, len) = (&t.rows, t.len);
    let a = rows.len();
    local.clear();
    local.resize(a * a, T::ZERO);
    if kernels != Path::Gemm {
        // Column i of D·Dᵀ is Σ_c D[:, c]·D[i, c]: the V·Hᵀ kernel with D in both roles (D is
        // zero outside each row's `need`, as H is).
        let iota: Vec<usize> = (0..a).collect();
        T::acc_b_ht_own(
            kernels,
            &d[..a * len],
            a,
            &d[..a * len],
            &t.need,
            &iota,
            local,
        );
    } else {
        for col in d[..a * len].chunks(a) {
            for (&x, out) in col.iter().zip(local.chunks_mut(a)) {
                for (o, &y) in out.iter_mut().zip(col) {
                    *o += x * y;
                }
            }
        }
    }
    for (j, &rj) in rows.iter().enumerate() {
        for (i, &ri) in rows.iter().enumerate() {
            gram[ri + rj * r] += to(local[i + j * a]);
        }
    }
}

/// Adds ΔH·ΔHᵀ of a tile's update into the R × R `dh`; `bufs.old` holds the tile's H before it.
fn add_change<T: Float>(kernels: Path, dh: &mut [f64], r: usize, t: &Tile<T>, bufs: &mut Bufs<T>) {
    for (o, &x) in bufs.old.iter_mut().zip(&t.h) {
        *o = x - *o;
    }
    add_gram(kernels, dh, r, t, &bufs.old, &mut bufs.scratch, T::to_f64);
}

/// out (a × len) = g (a × a)·h (a × len), all column-major: the small products of the H update.
#[inline(always)]
fn small_product<T: Float>(g: &[T], a: usize, h: &[T], len: usize, out: &mut [T]) {
    for c in 0..len {
        let o = &mut out[c * a..(c + 1) * a];
        o.fill(T::ZERO);
        for (l, &x) in h[c * a..(c + 1) * a].iter().enumerate() {
            for (y, &gv) in o.iter_mut().zip(&g[l * a..(l + 1) * a]) {
                *y += gv * x;
            }
        }
    }
}

/// Scratch space of one group of tiles, reused from tile to tile.
struct Bufs<T> {
    num: Vec<T>,
    den: Vec<T>,
    ga: Vec<T>,
    old: Vec<T>,
    /// A product before it is scattered into the sums.
    scratch: Vec<T>,
    /// Fallback path: W[:, rows] and the tile of V in `T`.
    wa: Vec<T>,
    v: Vec<T>,
    /// For W·H of a tile ([`Engine::w_times_h`]).
    wh: WhBufs<T>,
}

/// Scratch space of [`Engine::w_times_h`], reused from tile to tile (the KL pass calls it twice
/// per tile and iteration).
struct WhBufs<T> {
    /// The tile's Hᵀ.
    ht: Vec<T>,
    /// Every row of Hᵀ needs all of its columns…
    all: Vec<Range<usize>>,
    /// … and adds into the tile's frames in order.
    cols: Vec<usize>,
}

impl<T> Default for Bufs<T> {
    fn default() -> Self {
        Bufs {
            num: Vec::new(),
            den: Vec::new(),
            ga: Vec::new(),
            old: Vec::new(),
            wa: Vec::new(),
            v: Vec::new(),
            wh: WhBufs {
                ht: Vec::new(),
                all: Vec::new(),
                cols: Vec::new(),
            },
            scratch: Vec::new(),
        }
    }
}

/// The sums of all groups, added in group order (every entry: 0 + group 0 + group 1 + …, so the
/// result does not depend on the threads); the K × R sums in parallel over blocks of entries.
fn reduce<T: Float>(groups: &[(Sums<T>, Bufs<T>)], k: usize, r: usize) -> Sums<T> {
    const BLOCK: usize = 4096;
    let mut total = Sums::zeros(k, r);
    total
        .vh
        .par_chunks_mut(BLOCK)
        .enumerate()
        .for_each(|(i, out)| {
            for (s, _) in groups {
                for (a, &b) in out.iter_mut().zip(&s.vh[i * BLOCK..]) {
                    *a += b;
                }
            }
        });
    for (s, _) in groups {
        total.add_small(s);
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

    /// The cost [`tile_bounds`] minimizes, of the tiles `t`.
    fn tiling_cost(h0: &DMatrix<f64>, t: &[(usize, usize)]) -> usize {
        t.iter()
            .map(|&(s, len)| {
                let a = (0..h0.nrows())
                    .filter(|&ri| (s..s + len).any(|c| h0[(ri, c)] != 0.0))
                    .count();
                a * len + TILE_COST
            })
            .sum()
    }

    /// The least cost over every cut of frames `s..n` into tiles of at most `most` frames.
    fn cheapest(h0: &DMatrix<f64>, s: usize, most: usize) -> usize {
        let n = h0.ncols();
        if s == n {
            return 0;
        }
        (s + 1..=n.min(s + most))
            .map(|e| tiling_cost(h0, &[(s, e - s)]) + cheapest(h0, e, most))
            .min()
            .unwrap()
    }

    #[test]
    fn tiles_cover_every_frame_once_at_the_least_cost() {
        // Against every possible cut, on random patterns of 70 rows (two words of bits).
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for case in 0..40 {
            let (n, most) = if case == 0 {
                (1, 3)
            } else {
                (rng.random_range(2..14), rng.random_range(1..8))
            };
            // Each row active in one run of 1 to 8 frames, as a note is.
            let runs: Vec<(i64, i64)> = (0..70)
                .map(|_| {
                    let s = rng.random_range(-4..n as i64);
                    (s, s + rng.random_range(1..9))
                })
                .collect();
            let h0 = DMatrix::from_fn(70, n, |ri, c| {
                let (s, e) = runs[ri];
                (s <= c as i64 && (c as i64) < e) as u8 as f64
            });
            let t = tile_bounds(&h0, most);
            let mut next = 0;
            for &(s, len) in &t {
                assert_eq!(s, next);
                assert!((1..=most).contains(&len));
                next = s + len;
            }
            assert_eq!(next, n);
            assert_eq!(
                tiling_cost(&h0, &t),
                cheapest(&h0, 0, most),
                "n {n}, most {most}"
            );
        }
        // Cuts where the active rows change: one row in frames 0..20, another in 20..40.
        let h0 = DMatrix::from_fn(2, 40, |ri, c| ((c < 20) == (ri == 0)) as u8 as f64);
        assert_eq!(tile_bounds(&h0, 32), [(0, 20), (20, 20)]);
        // All rows everywhere: tiles of the most frames.
        let h0 = DMatrix::from_element(3, 40, 1.0);
        assert_eq!(tile_bounds(&h0, 16), [(0, 16), (16, 16), (32, 8)]);
    }

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
    fn subnormal_entries_are_flushed_to_zero() {
        assert_eq!(flush(f32::MIN_POSITIVE / 2.0), 0.0);
        assert_eq!(flush(f32::MIN_POSITIVE), f32::MIN_POSITIVE);
        assert_eq!(flush(1e-300f64), 1e-300);
        // An entry of H₀ that the first update leaves subnormal in f32 ends exactly zero.
        let (v, w0, mut h0) = problem();
        h0[(0, 0)] = 1e-45;
        let p = NmfParams {
            iterations: 5,
            stop_threshold: None,
            normalize: false,
            ..Default::default()
        };
        let f = factorize(&v, w0, h0, &p, |_| {}).unwrap();
        assert_eq!(f.h[(0, 0)], 0.0);
        assert!(f
            .w
            .iter()
            .chain(f.h.iter())
            .all(|&x| x == 0.0 || x >= f32::MIN_POSITIVE as f64));
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

    /// The updates of the module's documentation on dense matrices, in f64, with libfmp's
    /// max-normalization at the end: what the tiled engine computes, up to rounding.
    fn dense_updates(
        v: &DMatrix<f32>,
        w0: &DMatrix<f64>,
        h0: &DMatrix<f64>,
        divergence: Divergence,
        iterations: usize,
    ) -> (DMatrix<f64>, DMatrix<f64>) {
        let v = v.map(|x| x as f64);
        let eps = f32::EPSILON as f64;
        let (mut w, mut h) = (w0.clone(), h0.clone());
        for _ in 0..iterations {
            match divergence {
                Divergence::Euclidean => {
                    let num = w.transpose() * &v;
                    let den = (w.transpose() * &w) * &h;
                    h.zip_zip_apply(&num, &den, |x, a, b| *x *= a / (b + eps));
                    let num = &v * h.transpose();
                    let den = &w * (&h * h.transpose());
                    w.zip_zip_apply(&num, &den, |x, a, b| *x *= a / (b + eps));
                }
                Divergence::Kl => {
                    let q = v.zip_map(&(&w * &h), |a, b| a / (b + eps));
                    let num = w.transpose() * &q;
                    for (ri, mut row) in h.row_iter_mut().enumerate() {
                        let den = w.column(ri).sum() + eps;
                        row.iter_mut()
                            .zip(num.row(ri).iter())
                            .for_each(|(x, a)| *x *= a / den);
                    }
                    let q = v.zip_map(&(&w * &h), |a, b| a / (b + eps));
                    let num = &q * h.transpose();
                    for (ci, mut col) in w.column_iter_mut().enumerate() {
                        let den = h.row(ci).sum() + eps;
                        col.iter_mut()
                            .zip(num.column(ci).iter())
                            .for_each(|(x, a)| *x *= a / den);
                    }
                }
            }
        }
        for ci in 0..w.ncols() {
            let s = w.column(ci).max();
            if s > 0.0 {
                w.column_mut(ci).scale_mut(1.0 / s);
                h.row_mut(ci).scale_mut(s);
            }
        }
        (w, h)
    }

    #[test]
    fn tiles_do_not_change_the_result_and_threads_do_not_change_a_bit() {
        let paths = Path::ALL.into_iter().filter(|p| p.supported());
        for (divergence, kernels) in
            paths.flat_map(|k| [(Divergence::Euclidean, k), (Divergence::Kl, k)])
        {
            let (v, w0, h0) = banded(60, 12, 150);
            let run = |tile: usize, threads: usize| {
                let p = NmfParams {
                    divergence,
                    precision: Precision::Double,
                    tile,
                    iterations: 30,
                    stop_threshold: None,
                    kernels: Some(kernels),
                    ..Default::default()
                };
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                pool.install(|| factorize(&v, w0.clone(), h0.clone(), &p, |_| {}).unwrap())
            };
            let (w, h) = dense_updates(&v, &w0, &h0, divergence, 30);
            for tile in [1, 8, 32, 150] {
                let f = run(tile, 2);
                assert!(
                    f.active_entries < 12 * 150,
                    "tile {tile}: {}",
                    f.active_entries
                );
                let d = (&f.h - &h).amax() / h.amax() + (&f.w - &w).amax();
                assert!(d < 1e-9, "{divergence:?} {kernels:?}, tile {tile}: {d:e}");
                let again = run(tile, 1);
                assert_eq!(
                    again.h, f.h,
                    "{divergence:?} {kernels:?}: 1 and 2 threads differ"
                );
                assert_eq!(again.w, f.w);
            }
        }
    }

    #[test]
    fn in_place_gives_the_copying_result_and_v_back() {
        let (v, w0, h0) = banded(61, 12, 150);
        let p = NmfParams::default();
        let copied = factorize(&v, w0.clone(), h0.clone(), &p, |_| {}).unwrap();
        let mut v2 = v.clone();
        let f = factorize_in_place(&mut v2, w0, h0, &p, |_| {}).unwrap();
        assert_eq!(v2, v);
        assert_eq!(
            (&f.w, &f.h, f.iterations),
            (&copied.w, &copied.h, copied.iterations)
        );
    }

    #[test]
    fn the_traced_error_falls_and_leaves_the_factors_alone() {
        let (v, w0, h0) = banded(61, 12, 150);
        let p = NmfParams {
            stop_threshold: None,
            precision: Precision::Double,
            iterations: 40,
            ..NmfParams::default()
        };
        let plain = factorize(&v, w0.clone(), h0.clone(), &p, |_| {}).unwrap();
        let mut v2 = v.clone();
        let traced = factorize_traced(&mut v2, w0, h0, &p, |_| {}).unwrap();
        assert_eq!(v2, v);
        assert_eq!((&traced.w, &traced.h), (&plain.w, &plain.h));
        assert!(plain.errors.is_empty());
        // After the first iteration, every second (⌈40 / 20⌉) and the last.
        let at: Vec<usize> = traced.errors.iter().map(|e| e.0).collect();
        let mut expected = vec![1];
        expected.extend((2..=40).step_by(2));
        assert_eq!(at, expected);
        // The Euclidean multiplicative updates never increase ‖V − WH‖ (Lee & Seung 2001).
        for pair in traced.errors.windows(2) {
            assert!(pair[1].1 <= pair[0].1 * (1.0 + 1e-9), "{pair:?}");
        }
        let (first, last) = (traced.errors[0].1, traced.errors.last().unwrap().1);
        assert!(last < first);
        // The last one is the final error (before W's max-normalization, which keeps WH).
        assert!((last - traced.rel_error).abs() < 1e-9 * traced.rel_error.max(1.0));
    }

    #[test]
    fn every_kernel_path_agrees_with_the_gemm_fallback() {
        fn check<T: Float>(precision: Precision, tol: f64) {
            let (v, w0, h0) = banded(60, 12, 150);
            let p = NmfParams {
                iterations: 20,
                precision,
                ..Default::default()
            };
            let run = |kernels: Path| {
                let mut e = Engine::<T>::new(
                    Aligned::columns(v.as_slice(), 60, 64, 150),
                    60,
                    &w0,
                    &h0,
                    &p,
                );
                e.kernels = kernels;
                e.run(&p, false, |_| {}).0
            };
            let slow = run(Path::Gemm);
            for path in Path::ALL
                .into_iter()
                .filter(|&p| p != Path::Gemm && p.supported())
            {
                let fast = run(path);
                assert!((&fast.h - &slow.h).amax() < tol * slow.h.amax(), "{path:?}");
                assert!((&fast.w - &slow.w).amax() < tol, "{path:?}");
            }
        }
        check::<f64>(Precision::Double, 1e-9);
        check::<f32>(Precision::Single, 1e-4);
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
