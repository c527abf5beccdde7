//! Score-to-audio alignment: moves a notation score's notes (nominal tempo, starting at 0) onto
//! the recording, so that transcription and separation get a score aligned within a few tens
//! of milliseconds.
//!
//! The method is synctoolbox's (Müller et al., JOSS 2021; Ewert, Müller, Grosche, ICASSP 2009),
//! FMP chapter 3:
//! 1. features at 50 frames a second ([`features`]): chroma and DLNCO of the recording, tuned
//!    to its estimated A4, and of the score, made from its notes;
//! 2. the local cost C(i, j) = (1 − ⟨c_s(i), c_a(j)⟩) + [`AlignParams::onset_weight`] ·
//!    ‖o_s(i) − o_a(j)‖₂ (cosine distance of chroma, Euclidean distance of DLNCO);
//! 3. multiresolution DTW ([`dtw`]): a coarse level of at most [`AlignParams::coarse_cells`]
//!    cells, then levels 4× finer, each inside a band around the previous path;
//! 4. the path made strictly monotonic, and every note's onset and end warped through it by
//!    linear interpolation ([`Alignment::warp_time`]).
//!
//! Beyond synctoolbox: the ends are free ([`dtw::Ends`]), so silence, applause or other music
//! around the piece, a score of part of the recording, or a recording of part of the score
//! align; the score may be transposed against the recording (every chroma shift is aligned on
//! the coarsest level, and one taken when clearly cheaper); and the fit is measured ([`Alignment::confidence`]), so a score that is
//! not of the recording is told.

pub mod dtw;
pub mod features;

use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::io::score::{Note, Score};
use crate::profile;
use dtw::{Band, Ends, Warp};
use features::{Features, FEATURE_RATE};

/// The alignment's parameters.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct AlignParams {
    /// Most cells of the coarsest DTW level (sets its resolution for long recordings).
    pub coarse_cells: usize,
    /// Half-width of the band around the coarser path, in cells of the finer level.
    pub radius: usize,
    /// Weight of the DLNCO distance in the local cost (finest level only: the coarser ones
    /// align chroma).
    pub onset_weight: f32,
    /// Take a transposed score (a chroma shift) when it aligns clearly cheaper than the score.
    pub transposition: bool,
    /// A score is taken for not of this recording when its confidence is under this and its
    /// path cost over [`AlignParams::max_fitting_cost`].
    pub min_confidence: f64,
    /// Mean chroma cost along the path under which a score fits whatever its confidence (a
    /// chromatic piece, whose shifted versions cost little more, has a low confidence).
    pub max_fitting_cost: f64,
}

impl Default for AlignParams {
    fn default() -> Self {
        AlignParams {
            coarse_cells: 8_000_000,
            radius: 25,
            onset_weight: 2.0,
            transposition: true,
            min_confidence: 0.5,
            max_fitting_cost: 0.235,
        }
    }
}

/// What a frame left out before the start or after the end of the path costs: a horizontal
/// step (weight 1.5) over a cell of cost 0.3, about the chroma cost of two related chords.
/// Silence or other music around the piece (cost near 0.5 or more against any score frame) is
/// cheaper skipped; a matching note (cost near 0.1) is not.
const SKIP_COST: f32 = 0.45;

/// Finer levels are this many times finer than the previous one.
const LEVEL_RATIO: usize = 4;
/// A transposed score is taken only when its path costs at most this share of the untransposed
/// one's.
const SHIFT_GAIN: f64 = 0.85;

/// An alignment of a score to a recording.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alignment {
    /// Strictly increasing (score time, recording time) pairs, seconds.
    pub anchors: Vec<(f64, f64)>,
    /// Which ends were free.
    pub ends: Ends,
    /// Semitones the recording sounds above the score (0 unless transposed).
    pub shift: i32,
    /// The recording's A4, Hz.
    pub a4: f64,
    /// Mean chroma cost along the coarsest level's path.
    pub path_cost: f64,
    /// The median of the same cost for the score's other chroma shifts: what a score of the
    /// same texture but unrelated harmony costs.
    pub baseline_cost: f64,
    /// 1 − path_cost / baseline_cost: near 0 for no relation, towards 1 for a close fit.
    pub confidence: f64,
    /// Frames per cell of each DTW level, coarsest first.
    pub levels: Vec<usize>,
    /// Cells of each level.
    pub cells: Vec<usize>,
    /// Frames of the score and of the recording.
    pub score_frames: usize,
    pub audio_frames: usize,
}

/// Aligns `score` to the recording `x` (mono at [`features::SAMPLE_RATE`]).
pub fn align(x: &[f32], score: &Score, p: &AlignParams) -> Result<Alignment> {
    align_keeping_features(x, score, p).map(|(a, _)| a)
}

/// The features an alignment was made from: the score's and the recording's, at
/// [`FEATURE_RATE`] (the report draws the cost matrix from them).
#[derive(Debug, Clone)]
pub struct AlignedFeatures {
    pub score: Features,
    pub audio: Features,
}

/// [`align`], keeping the features it aligned.
pub fn align_keeping_features(
    x: &[f32],
    score: &Score,
    p: &AlignParams,
) -> Result<(Alignment, AlignedFeatures)> {
    let stft = features::feature_stft()?;
    let stage = profile::stage("align: tuning");
    let a4 = features::estimate_a4(x, &stft);
    drop(stage);
    let stage = profile::stage("align: features");
    let audio = features::audio_features(&features::audio_pitch_energy(x, &stft, a4));
    let score_f = features::score_features(score, features::score_frames(score));
    drop(stage);
    let _stage = profile::stage("align: dtw");
    if audio.len() < 2 || score_f.len() < 2 {
        return Err(Error::Param(
            "the recording or the score is too short to align (under 40 ms)".into(),
        ));
    }
    let alignment = align_features(&score_f, &audio, a4, p);
    Ok((
        alignment,
        AlignedFeatures {
            score: score_f,
            audio,
        },
    ))
}

/// The alignment of two feature sequences (see the module doc).
pub fn align_features(score: &Features, audio: &Features, a4: f64, p: &AlignParams) -> Alignment {
    let (n, m) = (score.len(), audio.len());
    let levels = level_factors(n, m, p.coarse_cells);
    let coarse = levels[0];
    let (cs, ca) = (score.coarsen(coarse), audio.coarsen(coarse));
    let Coarse {
        shift,
        ends,
        warp,
        chroma_cost,
        baseline,
    } = coarse_choice(&cs, &ca, p);
    let shifted = score.shifted(shift);
    let mut path = warp.path.clone();
    let mut cells = vec![Band::full(cs.len(), ca.len()).cells()];
    for w in levels.windows(2) {
        let (from, to) = (w[0], w[1]);
        let (fs, fa) = (shifted.coarsen(to), audio.coarsen(to));
        let band = Band::around(&path, from / to, p.radius, fs.len(), fa.len());
        cells.push(band.cells());
        let ow = if to == 1 { p.onset_weight } else { 0.0 };
        path = dtw::dtw(&band, ends, SKIP_COST, |i, j| {
            local_cost(&fs, &fa, i, j, ow)
        })
        .path;
    }
    let confidence = if baseline > 0.0 {
        1.0 - chroma_cost / baseline
    } else {
        0.0
    };
    Alignment {
        anchors: strictly_monotonic(&path),
        ends,
        shift: signed_shift(shift),
        a4,
        path_cost: chroma_cost,
        baseline_cost: baseline,
        confidence,
        levels,
        cells,
        score_frames: n,
        audio_frames: m,
    }
}

/// Frames per cell of each level: the coarsest a power of [`LEVEL_RATIO`] (at least
/// [`LEVEL_RATIO`] itself: the coarsest level aligns chroma only) with at most `max_cells`
/// cells, down to 1.
fn level_factors(n: usize, m: usize, max_cells: usize) -> Vec<usize> {
    let mut f = LEVEL_RATIO;
    while n.div_ceil(f) * m.div_ceil(f) > max_cells.max(1) {
        f *= LEVEL_RATIO;
    }
    let mut levels = vec![f];
    while f > 1 {
        f /= LEVEL_RATIO;
        levels.push(f);
    }
    levels
}

/// At the coarsest level: the transposition and the free ends.
///
/// Every chroma shift of the score is aligned (chroma cost only, whole score in the
/// recording); the best is taken, a nonzero one only when it costs under [`SHIFT_GAIN`] of no
/// shift. The median cost of the other shifts is the baseline: what a score of the same
/// texture but unrelated harmony costs with the same freedom to warp.
///
/// The ends: the whole score in the recording, unless the reverse (the recording is part of
/// the score) costs under [`REVERSE_GAIN`] of it per cell and leaves out a fifth of the
/// score or more.
fn coarse_choice(score: &Features, audio: &Features, p: &AlignParams) -> Coarse {
    let run = |shift: usize, ends: Ends, ow: f32| {
        let s = score.shifted(shift);
        let band = Band::full(s.len(), audio.len());
        dtw::dtw(&band, ends, SKIP_COST, |i, j| {
            local_cost(&s, audio, i, j, ow)
        })
    };
    let costs: Vec<f64> = (0..12)
        .into_par_iter()
        .map(|s| run(s, Ends::ScoreInRecording, 0.0).mean_cost)
        .collect();
    let best = (1..12)
        .min_by(|&a, &b| costs[a].total_cmp(&costs[b]))
        .unwrap_or(0);
    let shift = if p.transposition && costs[best] < SHIFT_GAIN * costs[0] {
        best
    } else {
        0
    };
    let mut others: Vec<f64> = (0..12).filter(|&s| s != shift).map(|s| costs[s]).collect();
    others.sort_by(f64::total_cmp);
    let baseline = others[others.len() / 2];
    let forward = run(shift, Ends::ScoreInRecording, 0.0);
    let reverse = run(shift, Ends::RecordingInScore, 0.0);
    let rows = |w: &Warp| {
        let (a, b) = (
            w.path.first().map_or(0, |c| c.0),
            w.path.last().map_or(0, |c| c.0),
        );
        (b + 1 - a) as f64 / score.len() as f64
    };
    let (ends, warp) =
        if rows(&reverse) < 0.8 && reverse.mean_cost < REVERSE_GAIN * forward.mean_cost {
            (Ends::RecordingInScore, reverse)
        } else {
            (Ends::ScoreInRecording, forward)
        };
    Coarse {
        shift,
        ends,
        warp,
        chroma_cost: costs[shift],
        baseline,
    }
}

/// What the coarsest level decides.
struct Coarse {
    shift: usize,
    ends: Ends,
    warp: Warp,
    /// Mean chroma cost of the chosen shift's path, and the baseline (see [`coarse_choice`]).
    chroma_cost: f64,
    baseline: f64,
}

/// The reverse ends (the recording is part of the score) are taken when they cost under this
/// share of the forward ends per cell (measured: 0.68 for a recording of half the score; 0.9 to
/// 1.5 for the other pairs, whose reverse paths cover the whole score or are no better).
const REVERSE_GAIN: f64 = 0.8;

/// −5..=6 semitones for a chroma shift 0..12.
fn signed_shift(shift: usize) -> i32 {
    let s = shift as i32 % 12;
    if s > 6 {
        s - 12
    } else {
        s
    }
}

/// C(i, j) of the module doc.
pub fn local_cost(s: &Features, a: &Features, i: usize, j: usize, onset_weight: f32) -> f32 {
    let (cs, ca) = (&s.chroma[i], &a.chroma[j]);
    let mut dot = 0f32;
    for q in 0..12 {
        dot += cs[q] * ca[q];
    }
    let mut c = 1.0 - dot;
    if onset_weight > 0.0 {
        let (os, oa) = (&s.onsets[i], &a.onsets[j]);
        let mut d = 0f32;
        for q in 0..12 {
            d += (os[q] - oa[q]) * (os[q] - oa[q]);
        }
        c += onset_weight * d.sqrt();
    }
    c
}

/// The path's cells where both coordinates increase (its first and last kept), as times: each
/// score frame i at i / 50 s, each recording frame j at j / 50 s.
fn strictly_monotonic(path: &[(usize, usize)]) -> Vec<(f64, f64)> {
    let mut out: Vec<(usize, usize)> = Vec::with_capacity(path.len());
    for &(i, j) in path {
        match out.last() {
            Some(&(pi, pj)) if i <= pi || j <= pj => {}
            _ => out.push((i, j)),
        }
    }
    if let (Some(&last), Some(&kept)) = (path.last(), out.last()) {
        if last != kept && last.0 > kept.0 && last.1 > kept.1 {
            out.push(last);
        }
    }
    out.into_iter()
        .map(|(i, j)| (i as f64 / FEATURE_RATE, j as f64 / FEATURE_RATE))
        .collect()
}

/// How far before the first or after the last anchor a note may lie and still be warped (by
/// the nearest segment's slope): five frames. Beyond, it is outside the aligned part: a
/// recording of part of the score has no time for it, and extrapolating would put notes after
/// the recording's end.
pub const EXTRAPOLATE_SECONDS: f64 = 0.1;

impl Alignment {
    /// Whether the score fits the recording by `p`'s two figures (see [`AlignParams`]).
    pub fn fits(&self, p: &AlignParams) -> bool {
        self.confidence >= p.min_confidence || self.path_cost <= p.max_fitting_cost
    }

    /// The recording time of score time `t`, by linear interpolation between anchors; `None`
    /// when `t` lies more than [`EXTRAPOLATE_SECONDS`] outside them.
    pub fn warp_time(&self, t: f64) -> Option<f64> {
        let a = &self.anchors;
        let (first, last) = (*a.first()?, *a.last()?);
        if t < first.0 - EXTRAPOLATE_SECONDS || t > last.0 + EXTRAPOLATE_SECONDS {
            return None;
        }
        if a.len() == 1 {
            return Some(first.1 + (t - first.0));
        }
        let k = a.partition_point(|p| p.0 <= t).clamp(1, a.len() - 1);
        let (p, q) = (a[k - 1], a[k]);
        let slope = (q.1 - p.1) / (q.0 - p.0);
        Some((p.1 + (t - p.0) * slope).max(0.0))
    }

    /// The score with every note moved onto the recording (and transposed by [`Self::shift`]);
    /// the second value counts the notes whose onset lies outside the aligned part, left out.
    pub fn warp(&self, score: &Score) -> (Score, usize) {
        let mut notes = Vec::with_capacity(score.notes.len());
        let mut outside = 0;
        let last_audio = self.anchors.last().map_or(0.0, |a| a.1);
        for n in &score.notes {
            // Onsets past the path's last point are past the aligned part of the recording.
            let Some(on) = self.warp_time(n.onset).filter(|&on| on <= last_audio) else {
                outside += 1;
                continue;
            };
            // An end past the aligned part (a final chord held beyond it) ends with the part.
            let end = self.warp_time(n.end()).unwrap_or(last_audio.max(on));
            let pitch = n.pitch as i32 + self.shift;
            let Ok(pitch) = u8::try_from(pitch) else {
                outside += 1;
                continue;
            };
            notes.push(Note {
                onset: on,
                duration: (end - on).max(0.0),
                pitch: pitch.min(127),
                ..n.clone()
            });
        }
        let mut aligned =
            Score::with_velocities(notes, score.warnings.clone(), score.has_velocities);
        aligned.warnings.clear();
        (aligned, outside)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_powers_of_the_ratio_down_to_one() {
        assert_eq!(level_factors(1000, 1000, 4_000_000), [4, 1]);
        assert_eq!(level_factors(180_000, 180_000, 8_000_000), [64, 16, 4, 1]);
    }

    #[test]
    fn strictly_monotonic_keeps_increasing_cells() {
        let p = [(0, 0), (0, 1), (1, 1), (2, 2), (2, 3), (3, 3), (4, 5)];
        let a = strictly_monotonic(&p);
        let f = |i: f64, j: f64| (i / 50.0, j / 50.0);
        assert_eq!(
            a,
            [
                f(0.0, 0.0),
                f(1.0, 1.0),
                f(2.0, 2.0),
                f(3.0, 3.0),
                f(4.0, 5.0)
            ]
        );
    }

    #[test]
    fn warp_interpolates_and_leaves_out_what_lies_outside() {
        let al = Alignment {
            anchors: vec![(0.0, 10.0), (2.0, 14.0)],
            ends: Ends::ScoreInRecording,
            shift: 0,
            a4: 440.0,
            path_cost: 0.0,
            baseline_cost: 1.0,
            confidence: 1.0,
            levels: vec![1],
            cells: vec![1],
            score_frames: 101,
            audio_frames: 800,
        };
        assert_eq!(al.warp_time(1.0), Some(12.0));
        assert!((al.warp_time(2.05).unwrap() - 14.1).abs() < 1e-9);
        assert_eq!(al.warp_time(2.5), None);
    }
}
