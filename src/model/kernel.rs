//! The two big products of the NMF's tiles, as SIMD kernels. Both have a long dimension
//! K ≈ 1000 (frequency bins) and short other dimensions (the few rows of H a time tile keeps,
//! and its frames), a shape general GEMM kernels, which vectorize along the short dimensions
//! and pack their operands first, do poorly. Both vectorize along K instead:
//!
//! - [`at_b`]: C = Aᵀ·B (the tile's WᵀV), every entry a dot product of two contiguous columns.
//!   A block of BI × BJ entries at a time in registers of partial sums, each loaded chunk of A
//!   feeding BJ fused multiply-adds and each chunk of B BI, then summed across lanes. Blocks
//!   of C where the caller says the result is not needed (H is zero there, and multiplicative
//!   updates keep it zero) are skipped.
//! - [`acc_b_ht`]: C[:, cᵢ] += Σⱼ B[:, j]·H[i, j], the tile's share of V·Hᵀ, added straight into
//!   the W update's sums. Up to G rows of H at a time: two vectors of a column of B are loaded
//!   once per frame and multiplied by the G broadcast entries of H into 2·G registers.
//!
//! The kernels are written once (the macro `kernels!`) and compiled for each instruction set
//! ([`Path`]), with block sizes that fit its register file:
//!
//! | path | lanes f32/f64 | registers | BI × BJ | G |
//! |---|---|---|---|---|
//! | AVX-512F | 16 / 8 | 32 | 4 × 6 | 8 |
//! | AVX2 + FMA | 8 / 4 | 16 | 2 × 6 | 6 |
//! | NEON (AArch64) | 4 / 2 | 32 | 4 × 6 | 8 |
//!
//! [`path`] picks the best this CPU runs, once per process (`SCORENMF_KERNELS` forces one, for
//! benchmarks); where none runs, the NMF uses faer's GEMM. A path gives the same bits whatever
//! the thread count; two paths differ in the last bits (their sums run over other lane counts).
//!
//! Both fetch a part of the next tile of V into cache as they go (`Ahead`), so that the memory
//! traffic of the whole V, which the NMF streams once per iteration, overlaps both products.
//!
//! Rows are split into blocks of near-equal size (`balanced`). B is the tile of V, stored as
//! `f32`; an `f64` factorization converts it in registers as it loads it, so it is never copied.
//! Columns are best padded to whole cache lines and aligned ([`Aligned`]): then no load
//! straddles two lines. The rows of K past the last full vector are handled by masked loads and
//! stores. `cargo bench --bench pipeline`, `examples/nmf_tiles.rs` and `examples/kernel_bench.rs`
//! measure them.

use std::ops::Range;
use std::sync::OnceLock;

/// The instruction set the tile kernels run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// x86-64 with AVX-512F.
    Avx512,
    /// x86-64 with AVX2 and FMA.
    Avx2,
    /// AArch64 (NEON is part of its baseline).
    Neon,
    /// No kernels: the NMF's products go through faer's GEMM.
    Gemm,
}

impl Path {
    /// Every path, best first.
    pub const ALL: [Path; 4] = [Path::Avx512, Path::Avx2, Path::Neon, Path::Gemm];

    /// The name `SCORENMF_KERNELS` takes: `avx512`, `avx2`, `neon` or `gemm`.
    pub fn name(self) -> &'static str {
        match self {
            Path::Avx512 => "avx512",
            Path::Avx2 => "avx2",
            Path::Neon => "neon",
            Path::Gemm => "gemm",
        }
    }

    /// What a reader of a benchmark is told.
    pub fn describe(self) -> &'static str {
        match self {
            Path::Avx512 => "the AVX-512F tile kernels",
            Path::Avx2 => "the AVX2+FMA tile kernels",
            Path::Neon => "the NEON tile kernels",
            Path::Gemm => "faer's GEMM",
        }
    }

    /// Whether this CPU runs it.
    pub fn supported(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Path::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Path::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "aarch64")]
            Path::Neon => true,
            Path::Gemm => true,
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The path named `request` where this CPU runs it, else the best it runs.
    fn choose(request: Option<&str>) -> Path {
        let best = || Path::ALL.into_iter().find(|p| p.supported());
        Path::ALL
            .into_iter()
            .find(|p| Some(p.name()) == request && p.supported())
            .or_else(best)
            .unwrap_or(Path::Gemm)
    }
}

/// The path this process runs: the one the environment variable `SCORENMF_KERNELS` names
/// (`avx512`, `avx2`, `neon`, `gemm`) where this CPU runs it, otherwise the best this CPU runs.
/// Read once. Benchmarks force a path to measure a machine without the better ones.
pub fn path() -> Path {
    static PATH: OnceLock<Path> = OnceLock::new();
    *PATH.get_or_init(|| Path::choose(std::env::var("SCORENMF_KERNELS").ok().as_deref()))
}

/// Whether the NMF runs the kernels (on [`path`]) rather than faer's GEMM.
pub fn available() -> bool {
    path() != Path::Gemm
}

/// `f()`, compiled for [`path`]'s instruction set (the crate's x86-64 baseline is SSE2, so the
/// compiler's own vectorization of plain loops — checks, error sums, element-wise updates — uses
/// 2 to 4 lanes; here it may use 8 to 16). The same arithmetic in the same order: the results are
/// the same bits either way. For loops the compiler vectorizes; the products have their own
/// kernels.
#[inline(always)]
pub fn wide<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    match path() {
        Path::Avx512 => {
            #[target_feature(enable = "avx512f")]
            unsafe fn go<R>(f: impl FnOnce() -> R) -> R {
                f()
            }
            // SAFETY: AVX-512F is present (the path is chosen only where it is).
            return unsafe { go(f) };
        }
        Path::Avx2 => {
            #[target_feature(enable = "avx2,fma")]
            unsafe fn go<R>(f: impl FnOnce() -> R) -> R {
                f()
            }
            // SAFETY: AVX2 and FMA are present (the path is chosen only where they are).
            return unsafe { go(f) };
        }
        _ => {}
    }
    f()
}

/// The element types of the kernels' results: `f32` and `f64`.
pub trait Element: Copy + Default + private::Sealed + simd::Lanes + 'static {}
impl Element for f32 {}
impl Element for f64 {}

/// What a kernel's operand may be stored as, loaded as registers of `T`: `T` itself, or `f32`
/// widened to `f64`.
pub trait Source<T: Element>: Copy + private::Sealed + simd::Loads<T> + 'static {}
impl Source<f32> for f32 {}
impl Source<f64> for f64 {}
impl Source<f64> for f32 {}

mod private {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// C (`a.len()` × nb, column-major) = Aᵀ·B, where A's columns are `a` and B (K × nb) is `b`,
/// column-major, K = the length of each column of `a`. `need[i]` is the range of columns j for
/// which row i of C is used: BI × BJ blocks of C outside every row's range are set to zero, not
/// computed. `ahead` is fetched into cache as the product goes (the caller's next B: the
/// kernel's reads of B jump between columns, which hardware prefetchers follow poorly). Runs on
/// [`path`]; panics where that is [`Path::Gemm`] or the shapes do not fit.
pub fn at_b<T: Element, B: Source<T>>(
    a: &[&[T]],
    b: &[B],
    need: &[Range<usize>],
    ahead: &[B],
    c: &mut [T],
) {
    at_b_on(path(), a, b, need, ahead, c)
}

/// [`at_b`] on the given path; panics where this CPU does not run it.
pub fn at_b_on<T: Element, B: Source<T>>(
    path: Path,
    a: &[&[T]],
    b: &[B],
    need: &[Range<usize>],
    ahead: &[B],
    c: &mut [T],
) {
    assert!(
        path != Path::Gemm && path.supported(),
        "this CPU does not run the {} path",
        path.name()
    );
    let k = a.first().map_or(0, |x| x.len());
    assert!(a.iter().all(|x| x.len() == k) && need.len() == a.len());
    let nb = b.len().checked_div(k).unwrap_or(0);
    assert!(b.len() == nb * k && c.len() >= a.len() * nb);
    if k == 0 {
        c.iter_mut().for_each(|x| *x = T::default());
        return;
    }
    // SAFETY: the path's instruction set is present (checked above); every load reads inside a
    // column of `a` or `b` (full vectors while p + L ≤ k, then a masked load of the k − p left),
    // every store writes inside `c` (checked above).
    unsafe {
        match path {
            #[cfg(target_arch = "x86_64")]
            Path::Avx512 => simd::avx512::at_b(a, b, k, nb, need, ahead, c),
            #[cfg(target_arch = "x86_64")]
            Path::Avx2 => simd::avx2::at_b(a, b, k, nb, need, ahead, c),
            #[cfg(target_arch = "aarch64")]
            Path::Neon => simd::neon::at_b(a, b, k, nb, need, ahead, c),
            _ => unreachable!(),
        }
    }
}

/// For every row i of H (`rows` × nb, column-major): C[:, cols[i]] += Σ_{j ∈ need[i]} B[:, j]·H[i, j],
/// where B (K × nb, column-major) is `b` and C is K × (max(cols) + 1), column-major. Outside
/// `need[i]` row i of H must be zero (it is skipped where a group of G rows allows). `ahead` is
/// fetched into cache as the product goes, as in [`at_b`]. Runs on [`path`]; panics where that
/// is [`Path::Gemm`] or the shapes do not fit.
pub fn acc_b_ht<T: Element, B: Source<T>>(
    b: &[B],
    k: usize,
    h: &[T],
    need: &[Range<usize>],
    cols: &[usize],
    ahead: &[B],
    c: &mut [T],
) {
    acc_b_ht_on(path(), b, k, h, need, cols, ahead, c)
}

/// [`acc_b_ht`] on the given path; panics where this CPU does not run it.
#[allow(clippy::too_many_arguments)]
pub fn acc_b_ht_on<T: Element, B: Source<T>>(
    path: Path,
    b: &[B],
    k: usize,
    h: &[T],
    need: &[Range<usize>],
    cols: &[usize],
    ahead: &[B],
    c: &mut [T],
) {
    assert!(
        path != Path::Gemm && path.supported(),
        "this CPU does not run the {} path",
        path.name()
    );
    let rows = need.len();
    assert!(k > 0 && cols.len() == rows);
    let nb = b.len() / k;
    assert!(b.len() == nb * k && h.len() == rows * nb);
    assert!(need.iter().all(|r| r.start <= r.end && r.end <= nb));
    assert!(cols.iter().all(|&ci| (ci + 1) * k <= c.len()));
    // SAFETY: the path's instruction set is present (checked above); loads read columns of `b`
    // inside it (full vectors while p + L ≤ k, then masked), entries of `h` inside it (j < nb,
    // i < rows), and stores write columns `cols` of `c`, inside it (checked above). The columns
    // are written one after the other through the one pointer, so repeated columns only add
    // twice.
    unsafe {
        match path {
            #[cfg(target_arch = "x86_64")]
            Path::Avx512 => simd::avx512::acc_b_ht(b, k, h, need, cols, ahead, c),
            #[cfg(target_arch = "x86_64")]
            Path::Avx2 => simd::avx2::acc_b_ht(b, k, h, need, cols, ahead, c),
            #[cfg(target_arch = "aarch64")]
            Path::Neon => simd::neon::acc_b_ht(b, k, h, need, cols, ahead, c),
            _ => unreachable!(),
        }
    }
}

/// Cache lines to fetch ahead of use, in order, spread evenly over the steps along K of the
/// kernels.
struct Ahead {
    next: *const u8,
    end: *const u8,
    /// Lines per step: enough to cover `ahead` over the product's steps.
    per_step: usize,
}

impl Ahead {
    /// `lines` fetched over `steps` calls of [`Ahead::step`].
    fn new<B>(lines: &[B], steps: usize) -> Self {
        let n = std::mem::size_of_val(lines).div_ceil(64);
        Ahead {
            next: lines.as_ptr() as *const u8,
            end: lines.as_ptr_range().end as *const u8,
            per_step: n.div_ceil(steps.max(1)).max(1),
        }
    }

    /// Fetches the next `per_step` lines into L2 (a hint: it reads nothing and cannot fault).
    #[inline(always)]
    fn step(&mut self) {
        if self.next < self.end {
            for l in 0..self.per_step {
                let p = self.next.wrapping_add(64 * l);
                #[cfg(target_arch = "x86_64")]
                // SAFETY: a prefetch is a hint; any address is allowed.
                unsafe {
                    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
                    _mm_prefetch::<_MM_HINT_T1>(p as *const i8);
                }
                #[cfg(target_arch = "aarch64")]
                // SAFETY: PRFM is a hint; any address is allowed.
                unsafe {
                    std::arch::asm!("prfm pldl2keep, [{0}]", in(reg) p, options(nostack, readonly, preserves_flags));
                }
                #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
                let _ = p;
            }
            self.next = self.next.wrapping_add(64 * self.per_step);
        }
    }
}

/// `match $n { v => $f::<T, B, v>$args, … }` over the literals given: a group of that many rows
/// gets its own instantiation (`T` and `B` are the caller's type parameters).
macro_rules! by_count {
    ($n:expr, [$($v:literal),*], $f:ident $args:tt) => {
        match $n {
            $($v => $f::<T, B, $v> $args,)*
            _ => unreachable!(),
        }
    };
}

/// The same over two counts, `$f::<T, B, i, j>`: an i × j block of [`at_b`].
macro_rules! by_counts {
    ($i:expr, $j:expr, [$($iv:literal),*], $js:tt, $f:ident $args:tt) => {
        match $i {
            $($iv => by_counts!(@j $iv, $j, $js, $f $args),)*
            _ => unreachable!(),
        }
    };
    (@j $iv:literal, $j:expr, [$($jv:literal),*], $f:ident $args:tt) => {
        match $j {
            $($jv => $f::<T, B, $iv, $jv> $args,)*
            _ => unreachable!(),
        }
    };
}

/// The kernels' bodies for one instruction set: `$feature` is its `target_feature`; `BI` × `BJ`
/// is [`at_b`]'s block (with the literals `1..=BI` and `1..=BJ` listed for the edge blocks), `G`
/// [`acc_b_ht`]'s group of rows (with `1..=G`). Expanded inside a module that defines the
/// register type and its operations for `f32` and `f64` (`Lanes`) and the loads of each
/// [`Source`] (`Load`).
macro_rules! kernels {
    (
        feature = $feature:literal,
        bi = [$($bi:literal),*],
        bj = $bj:tt,
        g = [$($g:literal),*]
    ) => {
        use super::super::{balanced, Ahead};
        use std::ops::Range;

        const BI: usize = [$($bi),*][0];
        const BJ: usize = $bj[0];
        const G: usize = [$($g),*][0];

        #[target_feature(enable = $feature)]
        pub unsafe fn at_b<T: Lanes, B: Load<T>>(
            a: &[&[T]],
            b: &[B],
            k: usize,
            nb: usize,
            need: &[Range<usize>],
            ahead: &[B],
            c: &mut [T],
        ) {
            let na = a.len();
            let mut ahead = Ahead::new(
                ahead,
                balanced(na, BI).count() * nb.div_ceil(BJ) * k.div_ceil(T::L),
            );
            for j0 in (0..nb).step_by(BJ) {
                let jn = (nb - j0).min(BJ);
                for (i0, in_) in balanced(na, BI) {
                    let used = need[i0..i0 + in_]
                        .iter()
                        .any(|r| r.start < j0 + jn && r.end > j0);
                    if !used {
                        for j in j0..j0 + jn {
                            c[j * na + i0..j * na + i0 + in_].fill(T::default());
                        }
                        continue;
                    }
                    by_counts!(
                        in_,
                        jn,
                        [$($bi),*],
                        $bj,
                        at_b_block(a, b, k, i0, j0, &mut ahead, c)
                    );
                }
            }
        }

        /// The I × J block of C = Aᵀ·B at (i0, j0). A function of its own, so that every block
        /// shape gets its own register allocation: inlined, all shapes in one body, some partial
        /// sums were kept on the stack (AVX-512, the kernel alone, 8 rows, B in cache: 118 → 127
        /// GFLOP/s).
        #[inline(never)]
        #[target_feature(enable = $feature)]
        unsafe fn at_b_block<T: Lanes, B: Load<T>, const I: usize, const J: usize>(
            a: &[&[T]],
            b: &[B],
            k: usize,
            i0: usize,
            j0: usize,
            ahead: &mut Ahead,
            c: &mut [T],
        ) {
            let na = a.len();
            let ap: [*const T; I] = std::array::from_fn(|i| a[i0 + i].as_ptr());
            let bp: [*const B; J] = std::array::from_fn(|j| b.as_ptr().add((j0 + j) * k));
            let mut acc: [[T::V; J]; I] = [[T::zero(); J]; I];
            #[inline(always)]
            unsafe fn step<T: Lanes, B: Load<T>, const I: usize, const J: usize>(
                ap: &[*const T; I],
                bp: &[*const B; J],
                p: usize,
                n: usize,
                acc: &mut [[T::V; J]; I],
            ) {
                // A loop, not `array::from_fn`: its closure does not inherit the target
                // features, and was left a call (AVX2: 10 instead of 60 GFLOP/s).
                let mut av: [T::V; I] = [T::zero(); I];
                for i in 0..I {
                    av[i] = T::load(ap[i].add(p), n);
                }
                for j in 0..J {
                    let bv = B::load(bp[j].add(p), n);
                    for i in 0..I {
                        acc[i][j] = T::fmadd(av[i], bv, acc[i][j]);
                    }
                }
            }
            // Full vectors (n = L: the loads' mask test folds away), then the rest, masked.
            let kk = k / T::L * T::L;
            let mut p = 0;
            while p < kk {
                ahead.step();
                step::<T, B, I, J>(&ap, &bp, p, T::L, &mut acc);
                p += T::L;
            }
            if kk < k {
                step::<T, B, I, J>(&ap, &bp, kk, k - kk, &mut acc);
            }
            for i in 0..I {
                for j in 0..J {
                    c[(i0 + i) + (j0 + j) * na] = T::sum(acc[i][j]);
                }
            }
        }

        #[target_feature(enable = $feature)]
        pub unsafe fn acc_b_ht<T: Lanes, B: Load<T>>(
            b: &[B],
            k: usize,
            h: &[T],
            need: &[Range<usize>],
            cols: &[usize],
            ahead: &[B],
            c: &mut [T],
        ) {
            let rows = need.len();
            let mut ahead = Ahead::new(ahead, balanced(rows, G).count() * k.div_ceil(2 * T::L));
            for (g0, g) in balanced(rows, G) {
                by_count!(
                    g,
                    [$($g),*],
                    acc_b_ht_group(b, k, h, rows, need, cols, g0, &mut ahead, c)
                );
            }
        }

        /// Rows g0..g0 + N of [`acc_b_ht`].
        #[target_feature(enable = $feature)]
        #[allow(clippy::too_many_arguments)]
        unsafe fn acc_b_ht_group<T: Lanes, B: Load<T>, const N: usize>(
            b: &[B],
            k: usize,
            h: &[T],
            rows: usize,
            need: &[Range<usize>],
            cols: &[usize],
            g0: usize,
            ahead: &mut Ahead,
            c: &mut [T],
        ) {
            let js = need[g0..g0 + N].iter().map(|r| r.start).min().unwrap_or(0);
            let je = need[g0..g0 + N].iter().map(|r| r.end).max().unwrap_or(0);
            if js >= je {
                return;
            }
            let cp: [*mut T; N] = std::array::from_fn(|i| c.as_mut_ptr().add(cols[g0 + i] * k));
            let hp = h.as_ptr().add(g0);
            let bp = b.as_ptr();
            let l = T::L;
            let mut p = 0;
            // Two vectors of K per pass, then what is left one (masked) vector at a time.
            while p + 2 * l <= k {
                ahead.step();
                let mut acc: [[T::V; 2]; N] = [[T::zero(); 2]; N];
                for j in js..je {
                    let col = bp.add(j * k + p);
                    let v0 = B::load(col, l);
                    let v1 = B::load(col.add(l), l);
                    for i in 0..N {
                        let s = T::splat(*hp.add(j * rows + i));
                        acc[i][0] = T::fmadd(v0, s, acc[i][0]);
                        acc[i][1] = T::fmadd(v1, s, acc[i][1]);
                    }
                }
                for i in 0..N {
                    let q = cp[i].add(p);
                    T::store(q, T::add(T::load(q, l), acc[i][0]), l);
                    T::store(q.add(l), T::add(T::load(q.add(l), l), acc[i][1]), l);
                }
                p += 2 * l;
            }
            while p < k {
                let n = (k - p).min(l);
                let mut acc: [T::V; N] = [T::zero(); N];
                for j in js..je {
                    let v0 = B::load(bp.add(j * k + p), n);
                    for i in 0..N {
                        acc[i] = T::fmadd(v0, T::splat(*hp.add(j * rows + i)), acc[i]);
                    }
                }
                for i in 0..N {
                    let q = cp[i].add(p);
                    T::store(q, T::add(T::load(q, n), acc[i]), n);
                }
                p += l;
            }
        }
    };
}

/// The register types and their operations, per instruction set, and the kernels compiled for
/// each. Not for use outside the crate's kernels (public only because [`Element`] and
/// [`Source`] name them).
#[doc(hidden)]
pub mod simd {
    /// The register operations of every path compiled for this target.
    #[cfg(target_arch = "x86_64")]
    pub trait Lanes: avx512::Lanes + avx2::Lanes {}
    #[cfg(target_arch = "x86_64")]
    impl<T: avx512::Lanes + avx2::Lanes> Lanes for T {}
    /// The loads of every path compiled for this target.
    #[cfg(target_arch = "x86_64")]
    pub trait Loads<T: Lanes>: avx512::Load<T> + avx2::Load<T> {}
    #[cfg(target_arch = "x86_64")]
    impl<T: Lanes, B: avx512::Load<T> + avx2::Load<T>> Loads<T> for B {}

    #[cfg(target_arch = "aarch64")]
    pub trait Lanes: neon::Lanes {}
    #[cfg(target_arch = "aarch64")]
    impl<T: neon::Lanes> Lanes for T {}
    #[cfg(target_arch = "aarch64")]
    pub trait Loads<T: Lanes>: neon::Load<T> {}
    #[cfg(target_arch = "aarch64")]
    impl<T: Lanes, B: neon::Load<T>> Loads<T> for B {}

    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    pub trait Lanes {}
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    impl<T> Lanes for T {}
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    pub trait Loads<T> {}
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    impl<T, B> Loads<T> for B {}

    /// One instruction set's registers of `f32` or `f64`.
    macro_rules! lanes_trait {
        () => {
            /// A register of this type and its operations.
            pub trait Lanes: Copy + Default + 'static {
                type V: Copy;
                /// Lanes per register.
                const L: usize;
                unsafe fn zero() -> Self::V;
                unsafe fn splat(x: Self) -> Self::V;
                /// a·b + c, rounded once.
                unsafe fn fmadd(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
                unsafe fn add(a: Self::V, b: Self::V) -> Self::V;
                /// The sum of the lanes.
                unsafe fn sum(v: Self::V) -> Self;
                /// Loads the first `n` lanes (all if `n` ≥ L), the rest zero.
                unsafe fn load(p: *const Self, n: usize) -> Self::V;
                /// Stores the first `n` lanes (all if `n` ≥ L).
                unsafe fn store(p: *mut Self, v: Self::V, n: usize);
            }

            /// Operands stored as `Self`, loaded as registers of `T`.
            pub trait Load<T: Lanes> {
                /// Loads the first `n` lanes (all if `n` ≥ L), the rest zero.
                unsafe fn load(p: *const Self, n: usize) -> T::V;
            }

            impl Load<f32> for f32 {
                #[inline(always)]
                unsafe fn load(p: *const f32, n: usize) -> <f32 as Lanes>::V {
                    <f32 as Lanes>::load(p, n)
                }
            }

            impl Load<f64> for f64 {
                #[inline(always)]
                unsafe fn load(p: *const f64, n: usize) -> <f64 as Lanes>::V {
                    <f64 as Lanes>::load(p, n)
                }
            }
        };
    }

    /// AVX-512F: 32 registers of 16 `f32` or 8 `f64`; masked loads and stores for the rest of K.
    #[cfg(target_arch = "x86_64")]
    pub mod avx512 {
        use std::arch::x86_64::*;
        lanes_trait!();
        kernels!(
            feature = "avx512f",
            bi = [4, 3, 2, 1],
            bj = [6, 5, 4, 3, 2, 1],
            g = [8, 7, 6, 5, 4, 3, 2, 1]
        );

        fn mask16(n: usize) -> __mmask16 {
            if n >= 16 {
                0xffff
            } else {
                (1u16 << n) - 1
            }
        }

        fn mask8(n: usize) -> __mmask8 {
            if n >= 8 {
                0xff
            } else {
                (1u8 << n) - 1
            }
        }

        impl Lanes for f32 {
            type V = __m512;
            const L: usize = 16;
            #[inline(always)]
            unsafe fn zero() -> __m512 {
                _mm512_setzero_ps()
            }
            #[inline(always)]
            unsafe fn splat(x: f32) -> __m512 {
                _mm512_set1_ps(x)
            }
            #[inline(always)]
            unsafe fn fmadd(a: __m512, b: __m512, c: __m512) -> __m512 {
                _mm512_fmadd_ps(a, b, c)
            }
            #[inline(always)]
            unsafe fn add(a: __m512, b: __m512) -> __m512 {
                _mm512_add_ps(a, b)
            }
            #[inline(always)]
            unsafe fn sum(v: __m512) -> f32 {
                _mm512_reduce_add_ps(v)
            }
            #[inline(always)]
            unsafe fn load(p: *const f32, n: usize) -> __m512 {
                if n >= 16 {
                    _mm512_loadu_ps(p)
                } else {
                    _mm512_maskz_loadu_ps(mask16(n), p)
                }
            }
            #[inline(always)]
            unsafe fn store(p: *mut f32, v: __m512, n: usize) {
                if n >= 16 {
                    _mm512_storeu_ps(p, v)
                } else {
                    _mm512_mask_storeu_ps(p, mask16(n), v)
                }
            }
        }

        impl Lanes for f64 {
            type V = __m512d;
            const L: usize = 8;
            #[inline(always)]
            unsafe fn zero() -> __m512d {
                _mm512_setzero_pd()
            }
            #[inline(always)]
            unsafe fn splat(x: f64) -> __m512d {
                _mm512_set1_pd(x)
            }
            #[inline(always)]
            unsafe fn fmadd(a: __m512d, b: __m512d, c: __m512d) -> __m512d {
                _mm512_fmadd_pd(a, b, c)
            }
            #[inline(always)]
            unsafe fn add(a: __m512d, b: __m512d) -> __m512d {
                _mm512_add_pd(a, b)
            }
            #[inline(always)]
            unsafe fn sum(v: __m512d) -> f64 {
                _mm512_reduce_add_pd(v)
            }
            #[inline(always)]
            unsafe fn load(p: *const f64, n: usize) -> __m512d {
                if n >= 8 {
                    _mm512_loadu_pd(p)
                } else {
                    _mm512_maskz_loadu_pd(mask8(n), p)
                }
            }
            #[inline(always)]
            unsafe fn store(p: *mut f64, v: __m512d, n: usize) {
                if n >= 8 {
                    _mm512_storeu_pd(p, v)
                } else {
                    _mm512_mask_storeu_pd(p, mask8(n), v)
                }
            }
        }

        impl Load<f64> for f32 {
            /// Eight `f32` widened to `f64` (exactly).
            #[inline(always)]
            unsafe fn load(p: *const f32, n: usize) -> __m512d {
                let x = if n >= 8 {
                    _mm256_loadu_ps(p)
                } else {
                    _mm512_castps512_ps256(_mm512_maskz_loadu_ps(mask16(n), p))
                };
                _mm512_cvtps_pd(x)
            }
        }
    }

    /// AVX2 with FMA: 16 registers of 8 `f32` or 4 `f64`, so smaller blocks: 2 × 6 partial sums
    /// and 2 + 1 operands (3 × 4, 16 registers with its 3 + 1 operands, spilled: the NMF on the
    /// bench's `dense_10min`, f32, 16.4–18.2 → 14.7 ms per iteration; groups of 4 rows instead of
    /// 6 in V·Hᵀ: 17.7); `vmaskmov` loads and stores for the rest of K (masked-off lanes are
    /// neither read nor written, so they cannot fault).
    #[cfg(target_arch = "x86_64")]
    pub mod avx2 {
        use std::arch::x86_64::*;
        lanes_trait!();
        kernels!(
            feature = "avx2,fma",
            bi = [2, 1],
            bj = [6, 5, 4, 3, 2, 1],
            g = [6, 5, 4, 3, 2, 1]
        );

        /// Lanes 0..n all ones, the rest zero, of 8 32-bit lanes. Built in plain integers (an
        /// intrinsic here, in a function without the target features, was left a call).
        #[inline(always)]
        fn mask32(n: usize) -> __m256i {
            let mut m = [0i32; 8];
            for (i, x) in m.iter_mut().enumerate() {
                *x = -((i < n) as i32);
            }
            // SAFETY: eight i32 are the 32 bytes of a __m256i.
            unsafe { std::mem::transmute::<[i32; 8], __m256i>(m) }
        }

        /// Lanes 0..n all ones, the rest zero, of 4 64-bit lanes.
        #[inline(always)]
        fn mask64(n: usize) -> __m256i {
            let mut m = [0i64; 4];
            for (i, x) in m.iter_mut().enumerate() {
                *x = -((i < n) as i64);
            }
            // SAFETY: four i64 are the 32 bytes of a __m256i.
            unsafe { std::mem::transmute::<[i64; 4], __m256i>(m) }
        }

        impl Lanes for f32 {
            type V = __m256;
            const L: usize = 8;
            #[inline(always)]
            unsafe fn zero() -> __m256 {
                _mm256_setzero_ps()
            }
            #[inline(always)]
            unsafe fn splat(x: f32) -> __m256 {
                _mm256_set1_ps(x)
            }
            #[inline(always)]
            unsafe fn fmadd(a: __m256, b: __m256, c: __m256) -> __m256 {
                _mm256_fmadd_ps(a, b, c)
            }
            #[inline(always)]
            unsafe fn add(a: __m256, b: __m256) -> __m256 {
                _mm256_add_ps(a, b)
            }
            #[inline(always)]
            unsafe fn sum(v: __m256) -> f32 {
                let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
                let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
                _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps::<1>(s, s)))
            }
            #[inline(always)]
            unsafe fn load(p: *const f32, n: usize) -> __m256 {
                if n >= 8 {
                    _mm256_loadu_ps(p)
                } else {
                    _mm256_maskload_ps(p, mask32(n))
                }
            }
            #[inline(always)]
            unsafe fn store(p: *mut f32, v: __m256, n: usize) {
                if n >= 8 {
                    _mm256_storeu_ps(p, v)
                } else {
                    _mm256_maskstore_ps(p, mask32(n), v)
                }
            }
        }

        impl Lanes for f64 {
            type V = __m256d;
            const L: usize = 4;
            #[inline(always)]
            unsafe fn zero() -> __m256d {
                _mm256_setzero_pd()
            }
            #[inline(always)]
            unsafe fn splat(x: f64) -> __m256d {
                _mm256_set1_pd(x)
            }
            #[inline(always)]
            unsafe fn fmadd(a: __m256d, b: __m256d, c: __m256d) -> __m256d {
                _mm256_fmadd_pd(a, b, c)
            }
            #[inline(always)]
            unsafe fn add(a: __m256d, b: __m256d) -> __m256d {
                _mm256_add_pd(a, b)
            }
            #[inline(always)]
            unsafe fn sum(v: __m256d) -> f64 {
                let s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd::<1>(v));
                _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)))
            }
            #[inline(always)]
            unsafe fn load(p: *const f64, n: usize) -> __m256d {
                if n >= 4 {
                    _mm256_loadu_pd(p)
                } else {
                    _mm256_maskload_pd(p, mask64(n))
                }
            }
            #[inline(always)]
            unsafe fn store(p: *mut f64, v: __m256d, n: usize) {
                if n >= 4 {
                    _mm256_storeu_pd(p, v)
                } else {
                    _mm256_maskstore_pd(p, mask64(n), v)
                }
            }
        }

        impl Load<f64> for f32 {
            /// Four `f32` widened to `f64` (exactly).
            #[inline(always)]
            unsafe fn load(p: *const f32, n: usize) -> __m256d {
                let x = if n >= 4 {
                    _mm_loadu_ps(p)
                } else {
                    _mm_maskload_ps(p, _mm256_castsi256_si128(mask32(n)))
                };
                _mm256_cvtps_pd(x)
            }
        }
    }

    /// NEON (AArch64): 32 registers of 4 `f32` or 2 `f64`. NEON has no masked loads: the rest of
    /// K goes through a zeroed register-sized buffer on the stack.
    #[cfg(target_arch = "aarch64")]
    pub mod neon {
        use std::arch::aarch64::*;
        lanes_trait!();
        kernels!(
            feature = "neon",
            bi = [4, 3, 2, 1],
            bj = [6, 5, 4, 3, 2, 1],
            g = [8, 7, 6, 5, 4, 3, 2, 1]
        );

        /// `Lanes` for one element type, from its register type and intrinsics (the two types'
        /// impls differ only in those).
        macro_rules! neon_lanes {
            ($t:ty, $v:ty, $l:literal, $dup:ident, $fma:ident, $add:ident, $addv:ident, $ld:ident, $st:ident) => {
                impl Lanes for $t {
                    type V = $v;
                    const L: usize = $l;
                    #[inline(always)]
                    unsafe fn zero() -> $v {
                        $dup(0.0)
                    }
                    #[inline(always)]
                    unsafe fn splat(x: $t) -> $v {
                        $dup(x)
                    }
                    #[inline(always)]
                    unsafe fn fmadd(a: $v, b: $v, c: $v) -> $v {
                        $fma(c, a, b)
                    }
                    #[inline(always)]
                    unsafe fn add(a: $v, b: $v) -> $v {
                        $add(a, b)
                    }
                    #[inline(always)]
                    unsafe fn sum(v: $v) -> $t {
                        $addv(v)
                    }
                    #[inline(always)]
                    unsafe fn load(p: *const $t, n: usize) -> $v {
                        if n >= $l {
                            $ld(p)
                        } else {
                            let mut buf = [0.0 as $t; $l];
                            std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), n);
                            $ld(buf.as_ptr())
                        }
                    }
                    #[inline(always)]
                    unsafe fn store(p: *mut $t, v: $v, n: usize) {
                        if n >= $l {
                            $st(p, v)
                        } else {
                            let mut buf = [0.0 as $t; $l];
                            $st(buf.as_mut_ptr(), v);
                            std::ptr::copy_nonoverlapping(buf.as_ptr(), p, n);
                        }
                    }
                }
            };
        }
        neon_lanes!(
            f32,
            float32x4_t,
            4,
            vdupq_n_f32,
            vfmaq_f32,
            vaddq_f32,
            vaddvq_f32,
            vld1q_f32,
            vst1q_f32
        );
        neon_lanes!(
            f64,
            float64x2_t,
            2,
            vdupq_n_f64,
            vfmaq_f64,
            vaddq_f64,
            vaddvq_f64,
            vld1q_f64,
            vst1q_f64
        );

        impl Load<f64> for f32 {
            /// Two `f32` widened to `f64` (exactly).
            #[inline(always)]
            unsafe fn load(p: *const f32, n: usize) -> float64x2_t {
                if n >= 2 {
                    vcvt_f64_f32(vld1_f32(p))
                } else {
                    let mut buf = [0f32; 2];
                    std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), n);
                    vcvt_f64_f32(vld1_f32(buf.as_ptr()))
                }
            }
        }
    }
}

/// `n` split into the fewest blocks of at most `most`, of sizes differing by at most one
/// (9 rows in blocks of 4: 3 + 3 + 3, not 4 + 4 + 1, whose last block would be slow): (start,
/// size) of each.
fn balanced(n: usize, most: usize) -> impl Iterator<Item = (usize, usize)> {
    let blocks = n.div_ceil(most);
    (0..blocks).map(move |b| {
        let (start, end) = (b * n / blocks, (b + 1) * n / blocks);
        (start, end - start)
    })
}

/// Asks the kernel (Linux, `madvise(MADV_HUGEPAGE)`) to back the 2 MB-aligned part of `buf`
/// with 2 MB pages where it has not been touched yet; elsewhere, or where the system says no, it
/// does nothing. The NMF streams all of V through the cache every iteration: with 4 KB pages
/// that is a page-table walk every 4 KB, which the fetches ahead wait on too (the WᵀV kernel
/// alone, one tile of V after the other, on the benchmark machine: 87 → 93 GFLOP/s with 8 rows,
/// 107 → 110 with 16; `examples/kernel_bench` with `AHEAD` set, `SMALL_PAGES` set or not).
pub fn advise_huge_pages<T>(buf: &[T]) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 1 << 21;
        let start = (buf.as_ptr() as usize).next_multiple_of(HUGE);
        let end = buf.as_ptr_range().end as usize / HUGE * HUGE;
        if end > start {
            // SAFETY: the range lies inside `buf`'s allocation; the advice changes how its pages
            // are backed, never their contents.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = buf;
}

/// A buffer of `len` elements whose first element sits on a 64-byte (cache-line) boundary: with
/// columns whose length is a multiple of [`line`] elements, every column does. The kernels' loads
/// then never straddle two cache lines (a third faster on this project's benchmark machine).
#[derive(Debug)]
pub struct Aligned<T> {
    buf: Vec<T>,
    off: usize,
    len: usize,
}

/// Elements of `T` per 64-byte cache line.
pub const fn line<T>() -> usize {
    64 / std::mem::size_of::<T>()
}

/// `k` rounded up to a whole number of cache lines of `T`.
pub const fn padded<T>(k: usize) -> usize {
    k.div_ceil(line::<T>()) * line::<T>()
}

impl<T: Copy + Default + Send + Sync> Aligned<T> {
    /// `len` zeros.
    pub fn zeros(len: usize) -> Self {
        let buf = vec![T::default(); len + line::<T>()];
        advise_huge_pages(&buf);
        Self::within(buf, len)
    }

    /// Takes `buf` (at least `len` + one line long) and places the start on a line boundary.
    fn within(buf: Vec<T>, len: usize) -> Self {
        let size = std::mem::size_of::<T>();
        let off = (64 - buf.as_ptr() as usize % 64) % 64 / size;
        assert!(off + len <= buf.len());
        Aligned { buf, off, len }
    }

    /// The `n` columns of length `k` in `src` (column-major), each padded with zeros to `kp`
    /// elements (at least `k`; a multiple of [`line`] keeps every column aligned).
    pub fn columns(src: &[T], k: usize, kp: usize, n: usize) -> Self {
        assert!(kp >= k);
        let mut a = Self::zeros(kp * n);
        // In parallel: on a large V the copy's cost is mostly first-touch page faults.
        use rayon::prelude::*;
        a.par_chunks_mut(kp)
            .zip(src.par_chunks(k))
            .for_each(|(dst, col)| dst[..k].copy_from_slice(col));
        a
    }

    /// [`Aligned::columns`] with `kp` = [`padded`]`(k)`, in place: `src` (K × n, column-major) is
    /// grown and its columns moved apart, last first, so no second copy is ever held.
    pub fn columns_in_place(mut src: Vec<T>, k: usize, n: usize) -> Self {
        assert_eq!(src.len(), k * n);
        let kp = padded::<T>(k);
        src.resize(kp * n + line::<T>(), T::default());
        let mut a = Self::within(src, kp * n);
        let off = a.off;
        for j in (0..n).rev() {
            // Column j moves from [j·k, (j + 1)·k) to [off + j·kp, …): never backwards, and the
            // columns before it are still below j·k, where neither the move nor the zeroing of
            // its padding reaches.
            a.buf.copy_within(j * k..(j + 1) * k, off + j * kp);
            a.buf[off + j * kp + k..off + (j + 1) * kp].fill(T::default());
        }
        a.buf[..off].fill(T::default());
        a
    }
}

impl<T: Copy + Default + Send + Sync> Aligned<T> {
    /// The inverse of [`Aligned::columns_in_place`]: the `n` columns of length `k`, unpadded,
    /// moved together in place (first first) into a plain column-major vector. The vector keeps
    /// the capacity of the padded layout, so laying it out again (the mask NMF does) never
    /// reallocates: a reallocation holds the old and the new buffer at once.
    pub fn into_columns(self, k: usize, n: usize) -> Vec<T> {
        let kp = padded::<T>(k);
        assert!(kp * n <= self.len);
        let Aligned { mut buf, off, .. } = self;
        for j in 0..n {
            // From [off + j·kp, …) down to [j·k, …): never forwards, and the columns after it
            // are still above, where the move does not reach.
            buf.copy_within(off + j * kp..off + j * kp + k, j * k);
        }
        buf.truncate(k * n);
        buf
    }
}

impl<T: Copy + Default + Send + Sync> Clone for Aligned<T> {
    fn clone(&self) -> Self {
        let mut a = Self::zeros(self.len);
        a.copy_from_slice(self);
        a
    }
}

impl<T> std::ops::Deref for Aligned<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.buf[self.off..self.off + self.len]
    }
}

impl<T> std::ops::DerefMut for Aligned<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.buf[self.off..self.off + self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small integers: every product and sum below is exact in both precisions.
    fn column(seed: usize, k: usize) -> Vec<f64> {
        (0..k)
            .map(|p| ((seed * 31 + p * 7) % 13) as f64 - 6.0)
            .collect()
    }

    /// The paths this CPU runs.
    fn paths() -> impl Iterator<Item = Path> {
        Path::ALL
            .into_iter()
            .filter(|&p| p != Path::Gemm && p.supported())
    }

    fn check_at_b<T: Element + Into<f64> + From<i8>>(
        path: Path,
        na: usize,
        nb: usize,
        k: usize,
        skip: bool,
    ) where
        f32: Source<T>,
    {
        let a: Vec<Vec<T>> = (0..na)
            .map(|i| column(i, k).iter().map(|&x| T::from(x as i8)).collect())
            .collect();
        let b: Vec<f32> = (0..nb)
            .flat_map(|j| column(100 + j, k))
            .map(|x| x as f32)
            .collect();
        // Row i is needed on columns [i, i + 2) when skipping, everywhere otherwise.
        let need: Vec<Range<usize>> = (0..na)
            .map(|i| {
                if skip {
                    i.min(nb)..(i + 2).min(nb)
                } else {
                    0..nb
                }
            })
            .collect();
        let ar: Vec<&[T]> = a.iter().map(Vec::as_slice).collect();
        let mut c = vec![T::from(99); na * nb];
        at_b_on(path, &ar, &b, &need, &b, &mut c);
        for i in 0..na {
            for j in need[i].clone() {
                let want: f64 = (0..k).map(|p| a[i][p].into() * b[j * k + p] as f64).sum();
                assert_eq!(
                    c[i + j * na].into(),
                    want,
                    "{path:?} {na}×{nb}, k {k}: ({i}, {j})"
                );
            }
        }
    }

    #[test]
    fn at_b_matches_the_naive_product_for_every_edge_shape() {
        for path in paths() {
            for (na, nb, k) in [
                (1, 1, 1),
                (4, 4, 16),
                (5, 7, 37),
                (9, 3, 1025),
                (16, 32, 100),
                (7, 13, 3),
            ] {
                for skip in [false, true] {
                    check_at_b::<f32>(path, na, nb, k, skip);
                    check_at_b::<f64>(path, na, nb, k, skip);
                }
            }
        }
    }

    fn check_acc_b_ht<T: Element + Into<f64> + From<i8>>(
        path: Path,
        rows: usize,
        nb: usize,
        k: usize,
    ) where
        f32: Source<T>,
    {
        let b: Vec<f32> = (0..nb)
            .flat_map(|j| column(j, k))
            .map(|x| x as f32)
            .collect();
        // Row i is active on [i, i + 5), zero elsewhere; it adds into column 2i + 1 of C.
        let need: Vec<Range<usize>> = (0..rows).map(|i| i.min(nb)..(i + 5).min(nb)).collect();
        let h: Vec<T> = (0..nb)
            .flat_map(|j| {
                let need = &need;
                (0..rows).map(move |i| {
                    T::from(if need[i].contains(&j) {
                        (i + j) as i8 % 5 - 2
                    } else {
                        0
                    })
                })
            })
            .collect();
        let cols: Vec<usize> = (0..rows).map(|i| 2 * i + 1).collect();
        let width = 2 * rows + 1;
        let mut c: Vec<T> = (0..k * width).map(|x| T::from((x % 7) as i8)).collect();
        let before: Vec<f64> = c.iter().map(|&x| x.into()).collect();
        acc_b_ht_on(path, &b, k, &h, &need, &cols, &b, &mut c);
        for col in 0..width {
            for p in 0..k {
                let mut want = before[col * k + p];
                if col % 2 == 1 {
                    let i = col / 2;
                    for j in 0..nb {
                        want += b[j * k + p] as f64 * h[i + j * rows].into();
                    }
                }
                assert_eq!(
                    c[col * k + p].into(),
                    want,
                    "{path:?} {rows}×{nb}, k {k}: ({p}, {col})"
                );
            }
        }
    }

    #[test]
    fn balanced_blocks_cover_once_and_differ_by_at_most_one() {
        for n in 0..40 {
            let b: Vec<(usize, usize)> = balanced(n, 4).collect();
            assert_eq!(b.len(), n.div_ceil(4));
            let mut next = 0;
            for &(s, len) in &b {
                assert_eq!(s, next);
                assert!((1..=4).contains(&len));
                next += len;
            }
            assert_eq!(next, n);
            let (lo, hi) = (b.iter().map(|x| x.1).min(), b.iter().map(|x| x.1).max());
            assert!(hi.unwrap_or(0) - lo.unwrap_or(0) <= 1);
        }
        assert_eq!(balanced(9, 4).collect::<Vec<_>>(), [(0, 3), (3, 3), (6, 3)]);
    }

    #[test]
    fn aligned_columns_are_padded_on_line_boundaries_in_place_or_not() {
        for (k, n) in [(1, 1), (16, 3), (17, 5), (1025, 4)] {
            let src: Vec<f32> = (0..k * n).map(|x| x as f32 + 1.0).collect();
            let kp = padded::<f32>(k);
            for a in [
                Aligned::columns(&src, k, kp, n),
                Aligned::columns_in_place(src.clone(), k, n),
            ] {
                assert_eq!(a.clone().into_columns(k, n), src);
                assert_eq!(a.as_ptr() as usize % 64, 0);
                assert_eq!(a.len(), kp * n);
                for j in 0..n {
                    assert_eq!(&a[j * kp..j * kp + k], &src[j * k..(j + 1) * k]);
                    assert!(a[j * kp + k..(j + 1) * kp].iter().all(|&x| x == 0.0));
                }
            }
        }
        assert_eq!(padded::<f64>(1025), 1032);
        assert_eq!(padded::<f32>(1025), 1040);
    }

    #[test]
    fn acc_b_ht_matches_the_naive_product_for_every_edge_shape() {
        for path in paths() {
            for (rows, nb, k) in [
                (1, 1, 1),
                (3, 4, 16),
                (8, 9, 33),
                (9, 32, 1025),
                (17, 5, 70),
                (13, 7, 3),
            ] {
                check_acc_b_ht::<f32>(path, rows, nb, k);
                check_acc_b_ht::<f64>(path, rows, nb, k);
            }
        }
    }

    #[test]
    fn a_forced_path_is_taken_only_where_the_cpu_runs_it() {
        assert_eq!(Path::choose(Some("gemm")), Path::Gemm);
        let best = Path::choose(None);
        assert!(best.supported());
        assert_eq!(Path::choose(Some("no such path")), best);
        for p in Path::ALL {
            let chosen = Path::choose(Some(p.name()));
            assert_eq!(chosen, if p.supported() { p } else { best });
        }
    }
}
