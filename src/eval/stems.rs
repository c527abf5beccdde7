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
//! computed by FFT, as mir_eval does; G is factorized once for all estimates, and the energies
//! come from the filter coefficients c = G⁻¹D (‖Pŝ‖² = cᵀD) instead of from the filtered
//! signals, which saves every convolution.

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
    let len = (t + flen - 1).next_power_of_two();
    let mut planner = RealFftPlanner::<f64>::new();
    let fwd = planner.plan_fft_forward(len);
    let inv = planner.plan_fft_inverse(len);
    let spectrum = |x: &[f64]| -> Vec<Complex<f64>> {
        let mut buf = vec![0.0; len];
        buf[..x.len()].copy_from_slice(x);
        let mut out = fwd.make_output_vec();
        fwd.process(&mut buf, &mut out)
            .expect("sizes from the plan");
        out
    };
    // Real inverse of A · conj(B), unnormalized by realfft: divide by len.
    let correlate = |a: &[Complex<f64>], b: &[Complex<f64>]| -> Vec<f64> {
        let mut prod: Vec<Complex<f64>> = a.iter().zip(b).map(|(x, y)| x * y.conj()).collect();
        prod[0].im = 0.0;
        let last = prod.len() - 1;
        prod[last].im = 0.0;
        let mut out = inv.make_output_vec();
        inv.process(&mut prod, &mut out)
            .expect("sizes from the plan");
        out.iter_mut().for_each(|v| *v /= len as f64);
        out
    };
    let refs: Vec<Vec<Complex<f64>>> = references.par_iter().map(|s| spectrum(s)).collect();
    // G[(i, a), (j, b)] = ⟨s_i delayed by a, s_j delayed by b⟩ = r_ij[b − a].
    let mut g = DMatrix::<f64>::zeros(n * flen, n * flen);
    let pairs: Vec<(usize, usize)> = (0..n).flat_map(|i| (i..n).map(move |j| (i, j))).collect();
    let correlations: Vec<Vec<f64>> = pairs
        .par_iter()
        .map(|&(i, j)| correlate(&refs[i], &refs[j]))
        .collect();
    for (&(i, j), r) in pairs.iter().zip(&correlations) {
        {
            let lag = |k: isize| {
                if k >= 0 {
                    r[k as usize]
                } else {
                    r[(len as isize + k) as usize]
                }
            };
            for a in 0..flen {
                for b in 0..flen {
                    let v = lag(b as isize - a as isize);
                    g[(i * flen + a, j * flen + b)] = v;
                    g[(j * flen + b, i * flen + a)] = v;
                }
            }
        }
    }
    let solver_all = Solver::new(g.clone());
    let score = |j: usize, est: &Vec<f64>| -> SourceScores {
        let e = spectrum(est);
        // D[(i, a)] = ⟨s_i delayed by a, ŝ⟩.
        let corr: Vec<Vec<f64>> = refs.iter().map(|r| correlate(r, &e)).collect();
        let d = DVector::from_fn(n * flen, |row, _| {
            let (i, a) = (row / flen, row % flen);
            corr[i][(len - a) % len]
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

    fn noise(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
            })
            .collect()
    }

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
