//! Separation metrics as BSS Eval v3 computes them — `mir_eval.separation.bss_eval_sources`
//! (Vincent, Gribonval & Févotte, IEEE TASLP 14(4), 2006), with 512-tap distortion filters and
//! no permutation search — plus the scale-invariant SDR (Le Roux et al., ICASSP 2019).
//!
//! For estimate ŝ_j and references s_1 … s_n (mono, equal length T), with P_S the orthogonal
//! projection onto the span of the references delayed by 0 … 511 samples:
//!
//! ```text
//! s_target = s_j (zero-padded by 511)       e_spat   = P_{s_j} ŝ_j − s_target
//! e_interf = P_{s_1..s_n} ŝ_j − P_{s_j} ŝ_j  e_artif  = ŝ_j − P_{s_1..s_n} ŝ_j
//! SDR = 10 log₁₀ ‖s_target + e_spat‖² / ‖e_interf + e_artif‖²
//! SIR = 10 log₁₀ ‖s_target + e_spat‖² / ‖e_interf‖²
//! SAR = 10 log₁₀ ‖s_target + e_spat + e_interf‖² / ‖e_artif‖²
//! ```
//!
//! The Gram matrix G of the delayed references and their correlations D with the estimate are
//! correlations at lags within ±511, computed by FFT block by block (mir_eval takes one FFT of
//! the whole signal; the numbers are the same); G is factorized once for all estimates, and the
//! energies come from the filter coefficients c = G⁻¹D (‖Pŝ‖² = cᵀD) instead of from the
//! filtered signals, which saves every convolution.

use nalgebra::{DMatrix, DVector};
use rayon::prelude::*;
use realfft::num_complex::Complex;
use realfft::RealFftPlanner;
use serde::Serialize;

use crate::error::{Error, Result};

/// Length of the distortion filters (mir_eval's and BSS Eval's 512 taps).
pub const FILTER_LEN: usize = 512;

/// Scores of one estimated source, in dB.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SourceScores {
    pub sdr: f64,
    pub sir: f64,
    pub sar: f64,
    pub si_sdr: f64,
}

fn db(num: f64, den: f64) -> f64 {
    if den == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (num / den).log10()
    }
}

/// Scale-invariant SDR: α = ⟨ŝ, s⟩ / ‖s‖², SI-SDR = 10 log₁₀ ‖αs‖² / ‖αs − ŝ‖².
pub fn si_sdr(reference: &[f64], estimate: &[f64]) -> f64 {
    let dot: f64 = reference.iter().zip(estimate).map(|(a, b)| a * b).sum();
    let energy: f64 = reference.iter().map(|a| a * a).sum();
    let alpha = dot / energy;
    let target: f64 = energy * alpha * alpha;
    let noise: f64 = reference
        .iter()
        .zip(estimate)
        .map(|(s, e)| (alpha * s - e).powi(2))
        .sum();
    db(target, noise)
}

/// `bss_eval_sources(references, estimates, compute_permutation=False)` plus SI-SDR: one score
/// per estimate, estimate j against reference j. All signals must have the same length and
/// none may be silent (as mir_eval requires).
pub fn bss_eval_sources(
    references: &[Vec<f64>],
    estimates: &[Vec<f64>],
) -> Result<Vec<SourceScores>> {
    let n = references.len();
    if n == 0 || estimates.len() != n {
        return Err(Error::Param(format!(
            "{} references and {} estimates: need the same number, at least one",
            n,
            estimates.len()
        )));
    }
    let t = references[0].len();
    if references.iter().chain(estimates).any(|s| s.len() != t) {
        return Err(Error::Param(
            "references and estimates must all have the same length".into(),
        ));
    }
    if t == 0 {
        return Err(Error::Param("the signals are empty".into()));
    }
    for (kind, set) in [("reference", references), ("estimated", estimates)] {
        if let Some(i) = set.iter().position(|s| s.iter().all(|v| *v == 0.0)) {
            return Err(Error::Param(format!(
                "{kind} source {} is silent (all zeros); BSS Eval is undefined for it",
                i + 1
            )));
        }
    }
    let flen = FILTER_LEN;
    // Every quantity is a correlation at lags within ±(flen − 1): ref × ref for G, ref × estimate
    // for D.
    let pairs: Vec<(usize, usize)> = (0..n).flat_map(|i| (i..n).map(move |j| (i, j))).collect();
    let mut signals: Vec<&[f64]> = references.iter().map(Vec::as_slice).collect();
    signals.extend(estimates.iter().map(Vec::as_slice));
    let mut wanted: Vec<(usize, usize)> = pairs.clone();
    wanted.extend((0..n).flat_map(|i| (0..n).map(move |j| (i, n + j))));
    let corr = short_lag_correlations(&signals, &wanted, flen - 1);
    let lag0 = flen - 1;
    // G[(i, a), (j, b)] = ⟨s_i delayed by a, s_j delayed by b⟩ = r_ij[b − a].
    let mut g = DMatrix::<f64>::zeros(n * flen, n * flen);
    for (r, &(i, j)) in corr.iter().zip(&pairs) {
        for a in 0..flen {
            for b in 0..flen {
                let v = r[lag0 + b - a];
                g[(i * flen + a, j * flen + b)] = v;
                g[(j * flen + b, i * flen + a)] = v;
            }
        }
    }
    let solver_all = Solver::new(g.clone());
    let score = |j: usize, est: &Vec<f64>| -> SourceScores {
        // D[(i, a)] = ⟨s_i delayed by a, ŝ⟩ = r_{i,ŝ}[−a].
        let d = DVector::from_fn(n * flen, |row, _| {
            let (i, a) = (row / flen, row % flen);
            corr[pairs.len() + i * n + j][lag0 - a]
        });
        // The energies follow from the filter coefficients without building the projected
        // signals: for c = G⁻¹D, ‖P ŝ‖² = cᵀD, and since P_j ŝ lies in the span of all the
        // references, ⟨P_all ŝ, P_j ŝ⟩ = ‖P_j ŝ‖².
        let energy: f64 = est.iter().map(|v| v * v).sum();
        let p_all = solver_all.solve(&d).dot(&d);
        let gj = g.view((j * flen, j * flen), (flen, flen)).into_owned();
        let dj = d.rows(j * flen, flen).into_owned();
        let p_j = Solver::new(gj).solve(&dj).dot(&dj);
        // s_target + e_spat = P_j ŝ; e_interf = P_all ŝ − P_j ŝ; e_artif = ŝ − P_all ŝ.
        let s_filt = p_j;
        let interf = (p_all - p_j).max(0.0);
        let artif = (energy - p_all).max(0.0);
        let noise = (energy - p_j).max(0.0);
        let filt_interf = p_all;
        SourceScores {
            sdr: db(s_filt, noise),
            sir: db(s_filt, interf),
            sar: db(filt_interf, artif),
            si_sdr: si_sdr(&references[j], est),
        }
    };
    Ok(estimates
        .par_iter()
        .enumerate()
        .map(|(j, est)| score(j, est))
        .collect())
}

/// c_xy[k] = Σ_t x[t + k]·y[t] for k = −L … L (returned at index k + L), for each wanted pair
/// (x, y) of `signals` (equal lengths, zero outside). Computed block by block with FFTs of 8192
/// samples (each block of y against the matching stretch of x widened by L on both sides), in
/// parallel over the blocks: the same numbers as one FFT over the whole signal, in cache.
fn short_lag_correlations(
    signals: &[&[f64]],
    wanted: &[(usize, usize)],
    lags: usize,
) -> Vec<Vec<f64>> {
    let t = signals.first().map_or(0, |s| s.len());
    let m = (4 * lags + 2).next_power_of_two().max(8192);
    let block = m - 2 * lags;
    let mut planner = RealFftPlanner::<f64>::new();
    let fwd = planner.plan_fft_forward(m);
    let inv = planner.plan_fft_inverse(m);
    let n_blocks = t.div_ceil(block);
    let width = 2 * lags + 1;
    let zero = || vec![vec![0.0f64; width]; wanted.len()];
    (0..n_blocks)
        .into_par_iter()
        .fold(zero, |mut acc, b| {
            let start = b * block;
            let spectrum = |z: &[f64], from: isize, len: usize| {
                let mut buf = vec![0.0; m];
                for (k, v) in buf.iter_mut().take(len).enumerate() {
                    let idx = from + k as isize;
                    if idx >= 0 && (idx as usize) < z.len() {
                        *v = z[idx as usize];
                    }
                }
                let mut out = fwd.make_output_vec();
                fwd.process(&mut buf, &mut out)
                    .expect("sizes from the plan");
                out
            };
            // Each signal's spectrum as x (widened) and as y (the block), where a pair needs it.
            let wide: Vec<Option<Vec<Complex<f64>>>> = (0..signals.len())
                .map(|z| {
                    wanted.iter().any(|p| p.0 == z).then(|| {
                        spectrum(signals[z], start as isize - lags as isize, block + 2 * lags)
                    })
                })
                .collect();
            let narrow: Vec<Option<Vec<Complex<f64>>>> = (0..signals.len())
                .map(|z| {
                    wanted
                        .iter()
                        .any(|p| p.1 == z)
                        .then(|| spectrum(signals[z], start as isize, block))
                })
                .collect();
            let mut out = inv.make_output_vec();
            for (slot, &(x, y)) in wanted.iter().enumerate() {
                let (xs, ys) = (
                    wide[x].as_ref().expect("computed above"),
                    narrow[y].as_ref().expect("computed above"),
                );
                let mut prod: Vec<Complex<f64>> =
                    xs.iter().zip(ys).map(|(a, c)| a * c.conj()).collect();
                prod[0].im = 0.0;
                let last = prod.len() - 1;
                prod[last].im = 0.0;
                inv.process(&mut prod, &mut out)
                    .expect("sizes from the plan");
                for (a, v) in acc[slot].iter_mut().zip(&out[..width]) {
                    *a += v / m as f64;
                }
            }
            acc
        })
        .reduce(zero, |mut a, b| {
            for (x, y) in a.iter_mut().zip(&b) {
                for (u, v) in x.iter_mut().zip(y) {
                    *u += v;
                }
            }
            a
        })
}

/// Scores of one window of [`bss_eval_sources_framewise`]: one per source, `None` where a
/// reference or estimate is silent in the window (mir_eval's NaN).
pub type WindowScores = Option<Vec<SourceScores>>;

/// `mir_eval.separation.bss_eval_sources_framewise(window, hop, compute_permutation=False)`:
/// [`bss_eval_sources`] on windows of `window` samples every `hop` samples (museval reports
/// 1 s windows and hops, aggregated by the median). Fewer than two windows: the whole signal.
pub fn bss_eval_sources_framewise(
    references: &[Vec<f64>],
    estimates: &[Vec<f64>],
    window: usize,
    hop: usize,
) -> Result<Vec<WindowScores>> {
    let t = references.first().map_or(0, Vec::len);
    if window == 0 || hop == 0 {
        return Err(Error::Param("window and hop must be positive".into()));
    }
    let n_win = (t + hop).saturating_sub(window) / hop;
    if n_win < 2 {
        return Ok(vec![Some(bss_eval_sources(references, estimates)?)]);
    }
    (0..n_win)
        .map(|k| {
            let cut = |set: &[Vec<f64>]| -> Vec<Vec<f64>> {
                set.iter()
                    .map(|s| s[k * hop..k * hop + window].to_vec())
                    .collect()
            };
            let (r, e) = (cut(references), cut(estimates));
            let silent = r.iter().chain(&e).any(|s| s.iter().all(|v| *v == 0.0));
            if silent {
                Ok(None)
            } else {
                bss_eval_sources(&r, &e).map(Some)
            }
        })
        .collect()
}

/// The median over the windows that have scores, per source and metric (museval's
/// aggregation); `None` when no window has.
pub fn median_over_windows(
    windows: &[WindowScores],
    n_sources: usize,
) -> Vec<Option<SourceScores>> {
    (0..n_sources)
        .map(|j| {
            let scored: Vec<&SourceScores> = windows.iter().flatten().map(|w| &w[j]).collect();
            if scored.is_empty() {
                return None;
            }
            let med = |f: fn(&SourceScores) -> f64| {
                crate::stats::median(scored.iter().map(|s| f(s)).collect())
            };
            Some(SourceScores {
                sdr: med(|s| s.sdr),
                sir: med(|s| s.sir),
                sar: med(|s| s.sar),
                si_sdr: med(|s| s.si_sdr),
            })
        })
        .collect()
}

/// Solves G·c = d: Cholesky when G is positive definite (the usual case), else LU, else the
/// least-squares solution by SVD (as mir_eval falls back to `lstsq`).
enum Solver {
    Cholesky(nalgebra::linalg::Cholesky<f64, nalgebra::Dyn>),
    Svd(DMatrix<f64>),
}

impl Solver {
    fn new(g: DMatrix<f64>) -> Solver {
        match g.clone().cholesky() {
            Some(c) => Solver::Cholesky(c),
            None => Solver::Svd(g),
        }
    }

    fn solve(&self, d: &DVector<f64>) -> DVector<f64> {
        match self {
            Solver::Cholesky(c) => c.solve(d),
            Solver::Svd(g) => g.clone().lu().solve(d).unwrap_or_else(|| {
                g.clone()
                    .svd(true, true)
                    .solve(d, 1e-12)
                    .expect("computed U and V")
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::signal::synth::white_noise as noise;

    #[test]
    fn a_perfect_estimate_scores_high_and_leakage_lowers_sir() {
        let a = noise(4000, 1);
        let b = noise(4000, 2);
        let est_a: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x + 0.1 * y).collect();
        let s = bss_eval_sources(&[a.clone(), b.clone()], &[est_a, b.clone()]).unwrap();
        // 10 % leakage of b into a: SIR ≈ 20 dB.
        assert!((s[0].sir - 20.0).abs() < 1.0, "{:?}", s[0]);
        assert!(s[1].sdr > 100.0, "{:?}", s[1]);
    }

    #[test]
    fn silent_sources_are_refused() {
        let a = noise(1000, 1);
        let e = bss_eval_sources(&[a.clone(), vec![0.0; 1000]], &[a.clone(), a]).unwrap_err();
        assert!(
            e.to_string().contains("reference source 2 is silent"),
            "{e}"
        );
    }
}
