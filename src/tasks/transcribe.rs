//! Note events from the audio, the score and the factorization: for every score note, was it
//! played, when did it start and end, and how loud was it.
//!
//! 1. **Onset.** On the per-pitch onset novelty Δ_p ([`crate::signal::onsets`]), the strongest peak
//!    within ±`search` of the expected onset, weighted by a Gaussian prior
//!    exp(−d²/2σ²) around it, placed between frames by parabolic interpolation. The expected
//!    onset is the score onset plus the score's median offset against the audio (measured in a
//!    first pass over all notes). The notes of a chord (score onsets within `chord_tol`) first
//!    agree on a common onset (the peak of the sum of their novelties); each then takes its own
//!    peak if one stands within ±35 ms of the common onset, else the common onset. Notes of one
//!    pitch are placed in order, each at least `min_gap` after the previous one, so re-struck
//!    notes are each found.
//! 2. **Evidence.** Two measures from the factorization, each relative to its median over all
//!    score notes: the note's harmonic activation in its first `gain_window` seconds (its peak),
//!    and the share of the spectrum there that only its partial peaks explain (the harmonic
//!    components active then and a smooth spectral floor are refitted to V, templates fixed, with
//!    and without the note's first `evidence_partials` partial peaks; the increase of the error is
//!    that share). The evidence is their geometric mean; a note whose evidence is under
//!    `threshold` is *not played*. Confidence = e / (e + threshold), 0.5 at the threshold. A
//!    wrong note a semitone or two from a played one keeps some activation (its template soaks
//!    up its neighbour's partials) but explains nothing the neighbour's template and the floor
//!    cannot; an octave doubling explains little alone but keeps its activation. Also reported,
//!    not used in the decision: the onset novelty of the note's free partials (those colliding
//!    with no partial of a note sounding then, [`crate::signal::onsets::exclusive`]); fake notes placed
//!    at other notes' onsets catch their broadband attack, so it tells little.
//! 3. **Offset.** Where the note's harmonic activation, after its peak, decays below
//!    `offset_fraction` of that peak (interpolated between frames), or the next onset of the same
//!    component, whichever comes first.
//! 4. **Gain.** The magnitude the note's harmonic component takes, under the factorization's
//!    soft mask, of the linear spectrum |X| in its first `gain_window` seconds, divided by the
//!    largest such magnitude of the piece, in [0, 1]. (It ranks true amplitudes better than the
//!    activation's peak, which lives in the compressed V and in each template's own scale.) MIDI velocity =
//!    round(127 · √gain), at least 1 (amplitude ∝ velocity², the usual MIDI loudness curve).

use std::ops::Range;

use nalgebra::{DMatrix, DVector};
use rayon::prelude::*;
use serde::Serialize;

use crate::io::score::{pitch_name, Score};
use crate::model::kernel;
use crate::model::templates::{pitch_frequency, Component, Kind};
use crate::signal::onsets::{exclusive, peaks, Grid, NoveltyBank, OnsetParams};
use crate::signal::stft::StftParams;
use crate::stats::median;

/// Parameters of the transcription from the novelty and the factorization.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct TranscribeParams {
    pub onset: OnsetParams,
    /// Minimum time in seconds between two detected onsets of one pitch.
    pub min_gap: f64,
    /// A note is played when its evidence reaches this.
    pub threshold: f64,
    /// The offset is where the harmonic activation falls under this fraction of its peak.
    pub offset_fraction: f64,
    /// Seconds after the onset in which the activation's peak gives the gain and the evidence.
    pub gain_window: f64,
    /// Relative distance within which two partials collide.
    pub collision_tol: f64,
    /// The unique share counts the note's first this many partials …
    pub evidence_partials: usize,
    /// … each within ±this·m·f₀ (plus one bin) of m·f₀.
    pub evidence_tol: f64,
    /// Raised-cosine bands on a log-frequency axis that model the spectral floor in the unique
    /// share's refits.
    pub floor_bands: usize,
}

impl Default for TranscribeParams {
    fn default() -> Self {
        TranscribeParams {
            onset: OnsetParams::default(),
            min_gap: 0.06,
            threshold: 0.2,
            offset_fraction: 0.1,
            gain_window: 0.25,
            collision_tol: 0.03,
            evidence_partials: 8,
            evidence_tol: 0.01,
            floor_bands: 8,
        }
    }
}

/// A played note.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoteEvent {
    /// Id of the score note (its index in the sorted score).
    pub score_note: usize,
    pub onset: f64,
    pub offset: f64,
    pub pitch: u8,
    pub pitch_name: String,
    pub instrument: String,
    /// In [0, 1].
    pub gain: f64,
    /// MIDI velocity 1..=127 from the gain.
    pub velocity: u8,
    /// In [0, 1]; 0.5 at the decision threshold.
    pub confidence: f64,
    /// Detected onset minus score onset, seconds.
    pub onset_shift: f64,
}

/// What was measured for one score note, played or not.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    /// Onset novelty of the note's free partials, relative to the median note.
    pub novelty: f64,
    /// Harmonic activation after the onset, relative to the median note.
    pub activation: f64,
    /// Share of the spectrum after the onset that only this note's template explains, relative
    /// to the median note.
    pub unique: f64,
    /// Number of the note's partials that collide with no concurrent note.
    pub free_partials: usize,
    /// The decision's input: √(activation · unique).
    pub evidence: f64,
}

/// A score note judged not played.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unplayed {
    pub score_note: usize,
    pub pitch: u8,
    pub pitch_name: String,
    pub instrument: String,
    pub score_onset: f64,
    /// Where the onset search ended up (the strongest candidate).
    pub candidate_onset: f64,
    pub confidence: f64,
    pub evidence: Evidence,
}

/// The transcription of a score against a recording.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transcription {
    pub events: Vec<NoteEvent>,
    pub not_played: Vec<Unplayed>,
    /// Median offset of the score against the audio, seconds (0 when not aligned).
    pub score_offset: f64,
    /// Evidence of every score note, by id.
    pub evidence: Vec<Evidence>,
}

/// The factorization as the transcription reads it.
pub struct Activations<'a> {
    pub components: &'a [Component],
    /// V, K × N.
    pub v: &'a DMatrix<f32>,
    /// `Some(γ)` when V = log(1 + γ|X|), `None` when V = |X|: how to get back the linear
    /// magnitude |X| = (e^V − 1)/γ the separated energy of a note is measured on.
    pub log_gamma: Option<f64>,
    /// W, K × R.
    pub w: &'a DMatrix<f64>,
    /// H, R × N.
    pub h: &'a DMatrix<f64>,
    /// Seconds between the frames of H.
    pub frame_time: f64,
    /// Hz between the bins of V.
    pub bin_hz: f64,
    /// Tuning of the templates (Hz of A4).
    pub a4: f64,
}

impl Activations<'_> {
    /// Row of the harmonic component that covers a note.
    fn harmonic_row(&self, pitch: u8, instrument: &str) -> Option<usize> {
        self.components
            .iter()
            .position(|c| c.kind == Kind::Harmonic && c.covers(pitch, instrument))
    }

    /// H's frame index of time `t` (frame n centred at n·Δt), clipped.
    fn frame(&self, t: f64) -> usize {
        ((t / self.frame_time).round().max(0.0) as usize).min(self.h.ncols().saturating_sub(1))
    }

    /// The share of the spectrum in [t, t + dur] that only the partials of harmonic component
    /// `row` explain. The harmonic components active there (their learned templates) and a
    /// smooth spectral floor (`floor`, from [`floor_basis`]) are refitted to V, templates
    /// fixed, with and without the note; the increase of the squared error, divided by ‖V‖² of
    /// those frames, is the share. In the fit with the note, its template keeps only its
    /// partial peaks ([`Activations::peak_template`]).
    ///
    /// A note that was not played leaves nothing that its neighbours or the floor cannot take
    /// over. Without the floor, a wrong note's template explains the noise floor under its wide
    /// bands; without the narrowing, it explains the neighbour's partials at the edges of its
    /// bands (the ±`tol_pitch` bands of two notes a semitone apart overlap at every partial) and
    /// its many high partials, which together cover the upper spectrum.
    fn unique_share(
        &self,
        row: usize,
        t: f64,
        dur: f64,
        p: &TranscribeParams,
        floor: &DMatrix<f64>,
    ) -> f64 {
        let a = self.frame(t);
        let b = (self.frame(t + dur) + 1).max(a + 1).min(self.h.ncols());
        let frames = b - a;
        let active: Vec<usize> = (0..self.components.len())
            .filter(|&r| {
                self.components[r].kind == Kind::Harmonic && (a..b).any(|n| self.h[(r, n)] > 0.0)
            })
            .collect();
        if !active.contains(&row) {
            return 0.0;
        }
        let k = self.w.nrows();
        let v: Vec<f64> = self.v.as_slice()[a * k..b * k]
            .iter()
            .map(|&x| x as f64)
            .collect();
        let own = self.peak_template(row, p);
        // The columns of W: the active templates (the note's own narrowed), then the floor.
        let mut cols: Vec<&[f64]> = active
            .iter()
            .map(|&r| {
                if r == row {
                    own.as_slice()
                } else {
                    &self.w.as_slice()[r * k..(r + 1) * k]
                }
            })
            .collect();
        cols.extend(floor.as_slice().chunks_exact(k));
        let start = |c: usize, n: usize| match active.get(c) {
            Some(&r) => self.h[(r, a + n)],
            None => FLOOR_INIT,
        };
        let fit = LocalFit::new(&v, frames, &cols);
        // ‖V‖² of the frames, from the per-frame norms the fit keeps.
        let energy = fit.vv.iter().sum::<f64>().max(1e-300);
        let with: Vec<usize> = (0..fit.n_cols).collect();
        let own_at = active.iter().position(|&r| r == row);
        let without: Vec<usize> = with
            .iter()
            .copied()
            .filter(|&c| Some(c) != own_at)
            .collect();
        let eps = f32::EPSILON as f64;
        let error = |subset: &[usize]| fit.error(subset, start, REFIT_ITERATIONS, eps);
        ((error(&without) - error(&with)) / energy).max(0.0)
    }

    /// The learned template of harmonic component `row` restricted to its partial peaks: bins
    /// within ±`evidence_tol`·m·f₀ + one bin of m·f₀ for m = 1..=`evidence_partials`.
    fn peak_template(&self, row: usize, p: &TranscribeParams) -> DVector<f64> {
        let f0 = pitch_frequency(self.components[row].pitch as f64, self.a4);
        DVector::from_fn(self.w.nrows(), |k, _| {
            if self.w[(k, row)] == 0.0 {
                return 0.0;
            }
            let f = k as f64 * self.bin_hz;
            let m = (f / f0).round().max(1.0);
            let near = (f - m * f0).abs() <= p.evidence_tol * m * f0 + self.bin_hz;
            if near && m as usize <= p.evidence_partials {
                self.w[(k, row)]
            } else {
                0.0
            }
        })
    }

    /// The magnitude of the part of the spectrum in [t, t + dur] that component `row` takes
    /// under the soft mask of the factorization: √(Σ_k,n (M_row(k, n) · |X(k, n)|)²) with
    /// M_row = W_row·H_row / (W·H).
    fn separated_amplitude(&self, row: usize, t: f64, dur: f64) -> f64 {
        let a = self.frame(t);
        let b = (self.frame(t + dur) + 1).max(a + 1).min(self.h.ncols());
        let k = self.w.nrows();
        let wr = &self.w.as_slice()[row * k..(row + 1) * k];
        let mut total = vec![0.0; k];
        let mut sum = 0.0;
        for n in a..b {
            let hn = self.h[(row, n)];
            if hn == 0.0 {
                continue;
            }
            // (W·H)[:, n] from the components active in frame n (H is mostly zero).
            total.fill(0.0);
            for (r, &h) in self.h.column(n).iter().enumerate() {
                if h != 0.0 {
                    let w = &self.w.as_slice()[r * k..(r + 1) * k];
                    total.iter_mut().zip(w).for_each(|(x, w)| *x += w * h);
                }
            }
            for (kk, (&w, &all)) in wr.iter().zip(&total).enumerate() {
                let part = w * hn;
                if part > 0.0 {
                    let m = part / all.max(1e-300) * self.linear(kk, n);
                    sum += m * m;
                }
            }
        }
        sum.sqrt()
    }

    /// |X(k, n)|, from V.
    fn linear(&self, k: usize, n: usize) -> f64 {
        let v = self.v[(k, n)] as f64;
        match self.log_gamma {
            None => v,
            Some(g) => v.exp_m1() / g,
        }
    }

    /// Peak activation of `row` over [t, t + dur], and the frame where it is.
    fn peak(&self, row: usize, t: f64, dur: f64) -> (f64, usize) {
        let a = self.frame(t);
        let b = self.frame(t + dur).max(a);
        (a..=b)
            .map(|n| (self.h[(row, n)], n))
            .fold((0.0, a), |m, x| if x.0 > m.0 { x } else { m })
    }
}

/// The local refits of [`Activations::unique_share`], which share their columns: WᵀV and WᵀW
/// are computed once over all of them, each only over the bins where its columns are non-zero
/// (templates and floor bands are zero over most of the spectrum), and a fit on a subset of the
/// columns reads the matching entries. The same updates as [`crate::model::nmf::refit_h`].
struct LocalFit {
    frames: usize,
    /// Number of columns of W.
    n_cols: usize,
    /// WᵀV, columns × frames, column-major.
    wtv: Vec<f64>,
    /// WᵀW, columns × columns.
    wtw: Vec<f64>,
    /// ‖v‖² of each frame.
    vv: Vec<f64>,
}

impl LocalFit {
    /// The products of V (K × `frames`, column-major) with the columns of W (K each).
    fn new(v: &[f64], frames: usize, cols: &[&[f64]]) -> Self {
        let k = v.len() / frames.max(1);
        let c = cols.len();
        let support: Vec<Range<usize>> = cols
            .iter()
            .map(|w| match w.iter().position(|&x| x != 0.0) {
                Some(lo) => lo..k - w.iter().rev().position(|&x| x != 0.0).unwrap_or(0),
                None => 0..0,
            })
            .collect();
        let (mut wtv, mut wtw) = (vec![0.0; c * frames], vec![0.0; c * c]);
        let mut vv = vec![0.0; frames];
        kernel::wide(
            #[inline(always)]
            || {
                for n in 0..frames {
                    let vn = &v[n * k..(n + 1) * k];
                    vv[n] = dot(vn, vn);
                    for (i, s) in support.iter().enumerate() {
                        wtv[i + c * n] = dot(&cols[i][s.clone()], &vn[s.clone()]);
                    }
                }
                for i in 0..c {
                    for j in i..c {
                        let s = support[i].start.max(support[j].start)
                            ..support[i].end.min(support[j].end);
                        let g = if s.is_empty() {
                            0.0
                        } else {
                            dot(&cols[i][s.clone()], &cols[j][s])
                        };
                        wtw[i + c * j] = g;
                        wtw[j + c * i] = g;
                    }
                }
            },
        );
        LocalFit {
            frames,
            n_cols: c,
            wtv,
            wtw,
            vv,
        }
    }

    /// ‖V − W_S·H_S‖²_F after `iterations` updates H_S ← H_S ⊙ (W_SᵀV) ⊘ ((W_SᵀW_S)·H_S + ε)
    /// from H_S(j, n) = `start(subset[j], n)`, for the columns `subset`. The frames are
    /// independent (the update of frame n reads only its own column of H), so each runs its
    /// updates to the end and adds its squared residual, from the products the updates use:
    ///
    /// ```text
    /// ‖v − W_S·h‖² = ‖v‖² − 2·hᵀ(W_Sᵀv) + hᵀ(W_SᵀW_S)h
    /// ```
    ///
    /// (m² + m operations per frame instead of one pass over the K bins; in f64 its rounding,
    /// ~1e-16·‖v‖², is far below the differences [`Activations::unique_share`] takes).
    fn error(
        &self,
        subset: &[usize],
        start: impl Fn(usize, usize) -> f64,
        iterations: usize,
        eps: f64,
    ) -> f64 {
        let (c, m) = (self.n_cols, subset.len());
        // The subset's Gram matrix, m × m column-major, and its rows of WᵀV.
        let g: Vec<f64> = subset
            .iter()
            .flat_map(|&j| subset.iter().map(move |&i| self.wtw[i + c * j]))
            .collect();
        let (mut h, mut den, mut num) = (vec![0.0; m], vec![0.0; m], vec![0.0; m]);
        // den = G·h, column by column of G (each den_i still sums over j in order), so that it
        // vectorizes over i.
        let gram_times = |den: &mut [f64], h: &[f64]| {
            den.fill(0.0);
            for (gj, &hj) in g.chunks_exact(m).zip(h) {
                den.iter_mut().zip(gj).for_each(|(d, &x)| *d += x * hj);
            }
        };
        let mut total = 0.0;
        kernel::wide(
            #[inline(always)]
            || {
                for n in 0..self.frames {
                    for ((hj, b), &j) in h.iter_mut().zip(&mut num).zip(subset) {
                        *hj = start(j, n);
                        *b = self.wtv[j + c * n];
                    }
                    for _ in 0..iterations {
                        gram_times(&mut den, &h);
                        for ((hj, b), d) in h.iter_mut().zip(&num).zip(&den) {
                            *hj *= b / (d + eps);
                        }
                    }
                    gram_times(&mut den, &h);
                    let cross = dot(&h, &num);
                    let quad = dot(&h, &den);
                    total += (self.vv[n] - 2.0 * cross + quad).max(0.0);
                }
            },
        );
        total
    }
}

/// Σ a_i·b_i, in eight partial sums (so that it vectorizes).
#[inline(always)]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    let mut acc = [0.0f64; 8];
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// One note's measures before they are made relative to the median note.
struct RawEvidence {
    novelty: f64,
    activation: f64,
    unique: f64,
    amplitude: f64,
    free: usize,
}

/// A candidate onset of a note: a novelty peak, its height, and its prior-weighted score.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Candidate {
    time: f64,
    height: f32,
    score: f64,
}

/// Multiplicative updates of the local refits in [`Activations::unique_share`].
const REFIT_ITERATIONS: usize = 30;
/// Starting activation of the floor bands in those refits.
const FLOOR_INIT: f64 = 0.1;

/// `bands` raised-cosine bumps over the `n_bins` bins of a spectrum, evenly spaced on a
/// logarithmic frequency axis u = ln(k + 1) / ln(n_bins) (from bin 0 to the last), each
/// reaching the centres of its neighbours, so together they are flat: a spectral envelope too
/// smooth to follow partials, K × `bands`.
pub fn floor_basis(n_bins: usize, bands: usize) -> DMatrix<f64> {
    if bands == 0 || n_bins < 2 {
        return DMatrix::zeros(n_bins, 0);
    }
    let span = (bands.max(2) - 1) as f64;
    DMatrix::from_fn(n_bins, bands, |k, j| {
        let u = ((k + 1) as f64).ln() / (n_bins as f64).ln() * span;
        let d = (u - j as f64).abs();
        if d < 1.0 {
            0.5 + 0.5 * (std::f64::consts::PI * d).cos()
        } else {
            0.0
        }
    })
}

/// Candidates within this many seconds of a chord's common onset are the chord's.
const CHORD_SPREAD: f64 = 0.035;
/// How much more a candidate counts when the chord agrees on it.
const CHORD_BONUS: f64 = 2.0;

/// Picks one candidate per note of `chain` (notes of one pitch, in score order) maximizing the
/// total score subject to each chosen onset being at least `gap` after the previous one
/// (Viterbi over the chain; an order violation costs more than any score, so it happens only
/// when no ordered choice exists). `None` for a note without candidates.
fn choose_in_order(chain: &[usize], cands: &[Vec<Candidate>], gap: f64) -> Vec<Option<Candidate>> {
    const VIOLATION: f64 = 1e9;
    // best[i][j]: best total for the chain up to note i choosing its candidate j; from[i][j]: the
    // choice at the previous note with candidates.
    let mut best: Vec<Vec<f64>> = Vec::with_capacity(chain.len());
    let mut from: Vec<Vec<usize>> = Vec::with_capacity(chain.len());
    let mut prev: Option<usize> = None; // index in `chain` of the last note with candidates
    for (i, &m) in chain.iter().enumerate() {
        let (mut b, mut f) = (Vec::new(), Vec::new());
        for c in &cands[m] {
            let (total, arg) = match prev {
                None => (0.0, 0),
                Some(pi) => cands[chain[pi]]
                    .iter()
                    .enumerate()
                    .map(|(k, pc)| {
                        let penalty = if c.time >= pc.time + gap {
                            0.0
                        } else {
                            VIOLATION
                        };
                        (best[pi][k] - penalty, k)
                    })
                    .fold((f64::NEG_INFINITY, 0), |x, y| if y.0 > x.0 { y } else { x }),
            };
            b.push(total + c.score);
            f.push(arg);
        }
        if !cands[m].is_empty() {
            prev = Some(i);
        }
        best.push(b);
        from.push(f);
    }
    let mut out = vec![None; chain.len()];
    let Some(mut i) = prev else {
        return out;
    };
    let mut j = (0..best[i].len())
        .max_by(|&x, &y| best[i][x].total_cmp(&best[i][y]))
        .expect("non-empty");
    loop {
        out[i] = Some(cands[chain[i]][j]);
        let k = from[i][j];
        match (0..i).rev().find(|&q| !cands[chain[q]].is_empty()) {
            Some(q) => {
                i = q;
                j = k;
            }
            None => break,
        }
    }
    out
}

/// The time of the best peak of `curve` (which starts at frame `from`), each peak weighted by
/// the Gaussian prior exp(−d²/2σ²) around `expected`; `None` when the window holds no peak.
fn best_peak(curve: &[f32], from: usize, flux: &Grid, expected: f64, sigma: f64) -> Option<f64> {
    peaks(curve)
        .into_iter()
        .map(|p| {
            let time = flux.onset_time(from as f64 + p.pos);
            let d = time - expected;
            (
                time,
                p.height as f64 * (-d * d / (2.0 * sigma * sigma)).exp(),
            )
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(time, _)| time)
}

/// The windows of frames in which [`transcribe`] reads each note's comb novelty: its score onset
/// ± (2·search + 0.1 s), which holds the first pass's window, the second pass's after any median
/// offset (at most `search` plus a frame), and the few frames the evidence reads around the
/// chosen onset. One request per score note, in score order, for [`NoveltyBank::new`].
pub fn novelty_requests(
    score: &Score,
    grid: &Grid,
    op: &OnsetParams,
    a4: f64,
) -> Vec<(Vec<crate::signal::onsets::Band>, usize, usize)> {
    let reach = 2.0 * op.search + 0.1;
    score
        .notes
        .iter()
        .map(|n| {
            (
                grid.comb(n.pitch, a4, op),
                grid.frame_at(n.onset - reach),
                grid.frame_at(n.onset + reach) + 1,
            )
        })
        .collect()
}

/// The signal and the short-window STFT on which the onsets are refined
/// ([`OnsetParams::refine`]); its comb novelty is computed only around each note's first
/// estimate.
pub struct Fine<'a> {
    pub x: &'a [f32],
    /// `Grid::new(x.len(), sample_rate, geometry)`.
    pub grid: Grid,
    pub geometry: StftParams,
}

/// Transcribes `score` against the comb novelty `flux` of each note (from
/// [`novelty_requests`]), the short-window novelty of `fine` that refines the onsets, if given,
/// and the activations; `a4` is the tuning reference in Hz. The steps, each a function below:
/// the score's median offset, candidate onsets per note, chord agreement, the per-pitch choice
/// in order, the refinement, the evidence, and the decision with offsets and gains.
pub fn transcribe(
    score: &Score,
    flux: &NoveltyBank,
    fine: Option<&Fine>,
    act: &Activations,
    p: &TranscribeParams,
    a4: f64,
) -> crate::Result<Transcription> {
    let op = &p.onset;
    let notes = &score.notes;
    let score_offset = if op.align_median {
        median_score_offset(score, flux, op)
    } else {
        0.0
    };
    let expected: Vec<f64> = notes.iter().map(|n| n.onset + score_offset).collect();
    let (curves, mut cands) = candidate_onsets(flux, &expected, op);
    agree_on_chords(score, flux, &expected, &curves, &mut cands, op);
    let mut onset = onsets_in_order(score, &cands, &expected, p.min_gap);
    if let Some(fine) = fine {
        refine_onsets(score, fine, &mut onset, op, a4)?;
    }
    drop_onsets_beyond_the_audio(&mut onset, &expected, &flux.grid, op.search);
    let raw = raw_evidence(score, flux, act, &onset, p, a4);
    let evidence = relative_evidence(&raw);
    let (events, not_played) = decide(score, act, &onset, &raw, &evidence, p);
    Ok(Transcription {
        events,
        not_played,
        score_offset,
        evidence,
    })
}

/// A note expected after the recording's end (its whole search window beyond the last frame)
/// has no onset: the search would otherwise settle on the last frames, where it ran out of
/// signal. Such notes are reported not played.
fn drop_onsets_beyond_the_audio(onset: &mut [f64], expected: &[f64], grid: &Grid, search: f64) {
    let end = grid.onset_time(grid.n_frames.saturating_sub(1) as f64);
    for (o, &e) in onset.iter_mut().zip(expected) {
        if e - search > end {
            *o = f64::NAN;
        }
    }
}

/// The frames of `flux` within ±`search` of `expected`, as a range [a, b).
fn search_window(flux: &NoveltyBank, expected: f64, search: f64) -> (usize, usize) {
    (
        flux.frame_at(expected - search),
        flux.frame_at(expected + search) + 1,
    )
}

/// Pass 1: the score's median offset against the audio, the median over the notes of
/// (best prior-weighted novelty peak within ±`search` of the score onset) − score onset.
fn median_score_offset(score: &Score, flux: &NoveltyBank, op: &OnsetParams) -> f64 {
    median(
        score
            .notes
            .iter()
            .enumerate()
            .filter_map(|(m, n)| {
                let (a, b) = search_window(flux, n.onset, op.search);
                best_peak(
                    &flux.novelty(m, None, a, b),
                    a,
                    flux,
                    n.onset,
                    op.prior_sigma,
                )
                .map(|t| t - n.onset)
            })
            .collect(),
    )
}

/// The Gaussian prior exp(−(t − e)²/2σ²) on an onset at `t` expected at `e`.
fn prior(t: f64, e: f64, sigma: f64) -> f64 {
    (-(t - e).powi(2) / (2.0 * sigma * sigma)).exp()
}

/// The novelty curves a note's onset is read from: (first frame, values).
type Curves = Vec<(usize, Vec<f32>)>;

/// Pass 2: each note's novelty curve in ±`search` of its expected onset, and its peaks as
/// candidates, scored height × prior.
fn candidate_onsets(
    flux: &NoveltyBank,
    expected: &[f64],
    op: &OnsetParams,
) -> (Curves, Vec<Vec<Candidate>>) {
    let mut curves = Vec::with_capacity(expected.len());
    let mut cands = Vec::with_capacity(expected.len());
    for (m, &e) in expected.iter().enumerate() {
        let (a, b) = search_window(flux, e, op.search);
        let curve = flux.novelty(m, None, a, b);
        cands.push(
            peaks(&curve)
                .into_iter()
                .map(|pk| {
                    let time = flux.onset_time(a as f64 + pk.pos);
                    Candidate {
                        time,
                        height: pk.height,
                        score: pk.height as f64 * prior(time, e, op.prior_sigma),
                    }
                })
                .collect(),
        );
        curves.push((a, curve));
    }
    (curves, cands)
}

/// Chords (score onsets within `chord_tol` of the first) agree on a common onset, the best
/// prior-weighted peak of the sum of their curves: each note's candidates within
/// [`CHORD_SPREAD`] of it count [`CHORD_BONUS`] times, and a note with none there gets the
/// common onset as a candidate of its own.
fn agree_on_chords(
    score: &Score,
    flux: &NoveltyBank,
    expected: &[f64],
    curves: &Curves,
    cands: &mut [Vec<Candidate>],
    op: &OnsetParams,
) {
    let notes = &score.notes;
    let mut i = 0;
    while i < notes.len() {
        let mut j = i + 1;
        while j < notes.len()
            && op.chord_tol > 0.0
            && notes[j].onset - notes[i].onset <= op.chord_tol
        {
            j += 1;
        }
        if j - i > 1 {
            let a = curves[i].0;
            let len = (i..j).map(|m| curves[m].1.len()).max().unwrap_or(0);
            let sum: Vec<f32> = (0..len)
                .map(|n| {
                    (i..j)
                        .map(|m| curves[m].1.get(n).copied().unwrap_or(0.0))
                        .sum()
                })
                .collect();
            if let Some(common) = best_peak(&sum, a, flux, expected[i], op.prior_sigma) {
                for m in i..j {
                    favour_common_onset(flux, common, expected[m], &curves[m], &mut cands[m], op);
                }
            }
        }
        i = j;
    }
}

/// One chord note's part of [`agree_on_chords`].
fn favour_common_onset(
    flux: &NoveltyBank,
    common: f64,
    expected: f64,
    (a, curve): &(usize, Vec<f32>),
    cands: &mut Vec<Candidate>,
    op: &OnsetParams,
) {
    let near: Vec<&mut Candidate> = cands
        .iter_mut()
        .filter(|c| (c.time - common).abs() <= CHORD_SPREAD)
        .collect();
    if near.is_empty() {
        let height = curve
            .get(flux.frame_at(common).saturating_sub(*a))
            .copied()
            .unwrap_or(0.0);
        cands.push(Candidate {
            time: common,
            height,
            score: CHORD_BONUS * height as f64 * prior(common, expected, op.prior_sigma),
        });
    } else {
        for c in near {
            c.score *= CHORD_BONUS;
        }
    }
}

/// The notes of each pitch take, jointly, the candidates of largest total score that keep them
/// in order at least `min_gap` apart ([`choose_in_order`]); a note without candidates keeps its
/// expected onset.
fn onsets_in_order(
    score: &Score,
    cands: &[Vec<Candidate>],
    expected: &[f64],
    min_gap: f64,
) -> Vec<f64> {
    let notes = &score.notes;
    let mut onset = expected.to_vec();
    for pitch in 0..=127u8 {
        let chain: Vec<usize> = (0..notes.len())
            .filter(|&m| notes[m].pitch == pitch)
            .collect();
        for (m, c) in chain.iter().zip(choose_in_order(&chain, cands, min_gap)) {
            if let Some(c) = c {
                onset[*m] = c.time;
            }
        }
    }
    onset
}

/// Refinement: each onset moves to the strongest rise of its note's partials on the
/// short-window novelty of `fine` within ±`refine_search` (Gaussian prior of that width).
fn refine_onsets(
    score: &Score,
    fine: &Fine,
    onset: &mut [f64],
    op: &OnsetParams,
    a4: f64,
) -> crate::Result<()> {
    let g = &fine.grid;
    let window = |t: f64| {
        (
            g.frame_at(t - op.refine_search),
            g.frame_at(t + op.refine_search) + 1,
        )
    };
    let requests = score
        .notes
        .iter()
        .zip(onset.iter())
        .map(|(n, &t)| {
            let (a, b) = window(t);
            (g.comb(n.pitch, a4, op), a, b)
        })
        .collect();
    let bank = NoveltyBank::new(fine.x, *g, fine.geometry, op, requests)?;
    for (m, t) in onset.iter_mut().enumerate() {
        let (a, b) = window(*t);
        let curve = bank.novelty(m, None, a, b);
        if let Some(c) = best_peak(&curve, a, g, *t, op.refine_search) {
            *t = c;
        }
    }
    Ok(())
}

/// Evidence, note by note (in parallel: the notes are independent): the novelty of its free
/// partials at the onset, its harmonic activation after it, its unique share of the spectrum,
/// and its separated amplitude.
fn raw_evidence(
    score: &Score,
    flux: &NoveltyBank,
    act: &Activations,
    onset: &[f64],
    p: &TranscribeParams,
    a4: f64,
) -> Vec<RawEvidence> {
    let notes = &score.notes;
    let floor = floor_basis(act.w.nrows(), p.floor_bands);
    // Notes are sorted by score onset: those sounding at onset[m] (± search) start no earlier
    // than onset[m] − search − the longest duration, and no later than onset[m] + search.
    let longest = notes.iter().map(|n| n.duration).fold(0.0f64, f64::max);
    let starts: Vec<f64> = notes.iter().map(|n| n.onset).collect();
    (0..notes.len())
        .into_par_iter()
        .map(|m| {
            let n = &notes[m];
            let search = p.onset.search;
            let lo = starts.partition_point(|&t| t < onset[m] - search - longest - 1e-9);
            let hi = starts.partition_point(|&t| t <= onset[m] + search + 1e-9);
            let (novelty, free) =
                free_partial_novelty(score, flux, m, lo..hi.max(lo), onset[m], p, a4);
            let row = act.harmonic_row(n.pitch, &n.instrument);
            RawEvidence {
                novelty,
                activation: row.map_or(0.0, |r| act.peak(r, onset[m], p.gain_window).0),
                unique: row.map_or(0.0, |r| {
                    act.unique_share(r, onset[m], p.gain_window, p, &floor)
                }),
                amplitude: row.map_or(0.0, |r| act.separated_amplitude(r, onset[m], p.gain_window)),
                free,
            }
        })
        .collect()
}

/// The onset novelty of note `m`'s free partials (those colliding with no partial of another
/// pitch among `nearby` sounding at `onset`; all partials when the free ones weigh under a
/// quarter) at its onset, per unit weight, and how many partials are free.
fn free_partial_novelty(
    score: &Score,
    flux: &NoveltyBank,
    m: usize,
    nearby: Range<usize>,
    onset: f64,
    p: &TranscribeParams,
    a4: f64,
) -> (f64, usize) {
    let op = &p.onset;
    let notes = &score.notes;
    let n = &notes[m];
    let comb = flux.comb(m);
    let lo = nearby.start;
    let others: Vec<f64> = notes[nearby]
        .iter()
        .enumerate()
        .map(|(o, x)| (o + lo, x))
        .filter(|&(o, x)| {
            o != m
                && x.pitch != n.pitch
                && x.onset - op.search <= onset
                && onset <= x.end() + op.search
        })
        .flat_map(|(_, x)| {
            let f0 = pitch_frequency(x.pitch as f64, a4);
            (1..=op.partials).map(move |k| k as f64 * f0)
        })
        .collect();
    let own = exclusive(comb, &others, p.collision_tol);
    let all: Vec<usize> = (0..comb.len()).collect();
    let weight = |idx: &[usize]| idx.iter().map(|&j| comb[j].weight).sum::<f32>();
    // Too little of the note is free (an octave above a sounding note): use all partials.
    let bands = if weight(&own) < 0.25 * weight(&all) {
        &all
    } else {
        &own
    };
    let total = weight(bands);
    let c = flux.frame_at(onset);
    let nov = flux.novelty(m, Some(bands), c.saturating_sub(2), c + 3);
    (
        nov.iter().cloned().fold(0.0f32, f32::max) as f64 / total.max(1e-9) as f64,
        own.len(),
    )
}

/// Each measure relative to its median over the notes; evidence = √(activation · unique).
fn relative_evidence(raw: &[RawEvidence]) -> Vec<Evidence> {
    let median_of = |f: fn(&RawEvidence) -> f64| median(raw.iter().map(f).collect()).max(1e-12);
    let med_nov = median_of(|x| x.novelty);
    let med_act = median_of(|x| x.activation);
    let med_unique = median_of(|x| x.unique);
    raw.iter()
        .map(|x| {
            let activation = x.activation / med_act;
            let unique = x.unique / med_unique;
            Evidence {
                novelty: x.novelty / med_nov,
                activation,
                unique,
                free_partials: x.free,
                evidence: (activation * unique).sqrt(),
            }
        })
        .collect()
}

/// The decision: a note whose evidence is under `threshold` (or without an onset) is not
/// played; every other note becomes an event with its offset ([`decay_time`], bounded by the
/// next onset of its component), gain (amplitude / the piece's largest) and velocity
/// round(127·√gain).
fn decide(
    score: &Score,
    act: &Activations,
    onset: &[f64],
    raw: &[RawEvidence],
    evidence: &[Evidence],
    p: &TranscribeParams,
) -> (Vec<NoteEvent>, Vec<Unplayed>) {
    let notes = &score.notes;
    let chains = onsets_by_component(score, onset);
    let max_amp = raw
        .iter()
        .map(|x| x.amplitude)
        .fold(0.0f64, f64::max)
        .max(1e-12);
    let mut events = Vec::new();
    let mut not_played = Vec::new();
    for (m, n) in notes.iter().enumerate() {
        let e = &evidence[m];
        let confidence = e.evidence / (e.evidence + p.threshold);
        if e.evidence < p.threshold || !onset[m].is_finite() {
            not_played.push(Unplayed {
                score_note: m,
                pitch: n.pitch,
                pitch_name: pitch_name(n.pitch),
                instrument: n.instrument.clone(),
                score_onset: n.onset,
                candidate_onset: onset[m],
                confidence,
                evidence: e.clone(),
            });
            continue;
        }
        // The next onset of the same component bounds the note.
        let chain = &chains[&(n.pitch, n.instrument.as_str())];
        let next = chain
            .get(chain.partition_point(|&t| t <= onset[m] + 1e-9))
            .copied()
            .unwrap_or(f64::INFINITY);
        let offset = match act.harmonic_row(n.pitch, &n.instrument) {
            Some(r) => decay_time(act, r, onset[m], p, next),
            None => n.end().min(next),
        };
        let gain = raw[m].amplitude / max_amp;
        events.push(NoteEvent {
            score_note: m,
            onset: onset[m],
            offset: offset.max(onset[m] + 0.03),
            pitch: n.pitch,
            pitch_name: pitch_name(n.pitch),
            instrument: n.instrument.clone(),
            gain,
            velocity: (127.0 * gain.sqrt()).round().clamp(1.0, 127.0) as u8,
            confidence,
            onset_shift: onset[m] - n.onset,
        });
    }
    (events, not_played)
}

/// The detected onsets of each (pitch, instrument), sorted.
fn onsets_by_component<'s>(
    score: &'s Score,
    onset: &[f64],
) -> std::collections::HashMap<(u8, &'s str), Vec<f64>> {
    let mut chains: std::collections::HashMap<(u8, &str), Vec<f64>> = Default::default();
    for (m, n) in score.notes.iter().enumerate() {
        chains
            .entry((n.pitch, n.instrument.as_str()))
            .or_default()
            .push(onset[m]);
    }
    for c in chains.values_mut() {
        c.sort_by(f64::total_cmp);
    }
    chains
}

/// Where row `r` of H, after its peak in [onset, onset + gain_window], first falls under
/// `offset_fraction` of that peak (linear interpolation between frames); at most `next`.
fn decay_time(act: &Activations, r: usize, onset: f64, p: &TranscribeParams, next: f64) -> f64 {
    let (peak, at) = act.peak(r, onset, p.gain_window);
    let floor = peak * p.offset_fraction;
    let n_frames = act.h.ncols();
    let mut t = (n_frames - 1) as f64 * act.frame_time;
    for n in at + 1..n_frames {
        let (prev, cur) = (act.h[(r, n - 1)], act.h[(r, n)]);
        if cur < floor {
            let frac = if prev > cur {
                (prev - floor) / (prev - cur)
            } else {
                0.0
            };
            t = (n as f64 - 1.0 + frac) * act.frame_time;
            break;
        }
    }
    t.min(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shared local fit gives the error of the plain dense refit, for the whole set of
    /// columns and for a subset, with columns zero outside scattered supports (and one all
    /// zero).
    #[test]
    fn local_fit_matches_the_dense_refit() {
        let (k, frames) = (37, 5);
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        let supports = [3..20, 0..37, 30..37, 0..0, 10..11];
        let w = DMatrix::from_fn(k, supports.len(), |i, j| {
            if supports[j].contains(&i) {
                0.1 + next()
            } else {
                0.0
            }
        });
        let v: Vec<f64> = (0..k * frames).map(|_| next()).collect();
        let start = |j: usize, n: usize| 0.5 + 0.1 * j as f64 + 0.01 * n as f64;
        let cols: Vec<&[f64]> = w.as_slice().chunks_exact(k).collect();
        let fit = LocalFit::new(&v, frames, &cols);
        // ‖V‖² of the frames, from the per-frame norms the fit keeps.
        let energy = fit.vv.iter().sum::<f64>();
        let vm = DMatrix::from_column_slice(k, frames, &v);
        let direct = vm.norm_squared();
        assert!(
            (energy - direct).abs() <= 1e-12 * direct,
            "{energy} vs {direct}"
        );
        for subset in [vec![0, 1, 2, 3, 4], vec![0, 2, 4], vec![1]] {
            let ws = DMatrix::from_fn(k, subset.len(), |i, j| w[(i, subset[j])]);
            let h = DMatrix::from_fn(subset.len(), frames, |j, n| start(subset[j], n));
            let want = crate::model::nmf::refit_h(&vm, &ws, h, 30, 1e-9).1;
            let got = fit.error(&subset, start, 30, 1e-9);
            assert!(
                (got - want).abs() <= 1e-10 * want,
                "{subset:?}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn floor_bands_sum_to_one_and_span_more_than_an_octave() {
        let f = floor_basis(1025, 8);
        assert_eq!(f.shape(), (1025, 8));
        for k in 0..1025 {
            let s: f64 = f.row(k).iter().sum();
            assert!((s - 1.0).abs() < 1e-12, "bin {k}: {s}");
        }
        // Too smooth to follow a harmonic series: every inner band reaches past twice the
        // frequency where it starts.
        let first = |j: usize| (0..1025).find(|&k| f[(k, j)] > 0.0).unwrap();
        let last = |j: usize| (0..1025).rev().find(|&k| f[(k, j)] > 0.0).unwrap();
        for j in 1..7 {
            assert!(last(j) + 1 > 2 * (first(j) + 1), "band {j}");
        }
        assert_eq!(super::floor_basis(1025, 0).ncols(), 0);
    }
}
