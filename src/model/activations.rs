//! Score-constrained initial activations H₀ (FMP notebook C8S3, libfmp
//! `init_nmf_activation_score_onset`).
//!
//! A component may be active only near where the score plays its pitch. For each score note
//! (onset t, duration d) of the component's pitch (and instrument):
//!
//! ```text
//! harmonic row:  H₀(r, n) = 1  for  ⌊(t − a₀)/Δt⌋ ≤ n < ⌊(t + d + a₁)/Δt⌋      (a = tol_note)
//! onset row:     H₀(r, n) = 1  for  ⌊(t − b₀)/Δt⌋ ≤ n < ⌊(t + b₁)/Δt⌋          (b = tol_onset)
//! ```
//!
//! clipped to the frames [0, N), with Δt = hop / sample rate; all other entries are 0 and stay 0
//! through the multiplicative updates. The frame index of a time is ⌊t/Δt⌋, as in libfmp. The
//! FMP notebooks' onset-model cells use a = (0.1, 0.5) s and b = (0.2, 0.1) s.

use nalgebra::DMatrix;
use serde::Serialize;

use crate::io::score::Score;
use crate::model::templates::{Component, Kind};

/// Tolerances of the activation constraints, in seconds (before, after).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct ActivationParams {
    /// Harmonic rows: active from `tol_note.0` before a note's start to `tol_note.1` after its end.
    pub tol_note: (f64, f64),
    /// Onset rows: active from `tol_onset.0` before a note's start to `tol_onset.1` after it.
    pub tol_onset: (f64, f64),
}

impl Default for ActivationParams {
    /// The values of the FMP notebooks' onset-model cells.
    fn default() -> Self {
        ActivationParams {
            tol_note: (0.1, 0.5),
            tol_onset: (0.2, 0.1),
        }
    }
}

/// Frame index of time `t` (libfmp: `int(t / frame_res)`, truncation toward zero), clipped to
/// [0, n_frames].
pub fn frame_index(t: f64, frame_res: f64, n_frames: usize) -> usize {
    let i = (t / frame_res).trunc();
    if i <= 0.0 {
        0
    } else {
        (i as usize).min(n_frames)
    }
}

/// The frames [start, end) in which the row `kind` may be active for a note.
pub fn note_window(
    kind: Kind,
    onset: f64,
    duration: f64,
    frame_res: f64,
    n_frames: usize,
    p: &ActivationParams,
) -> (usize, usize) {
    let (from, to) = match kind {
        Kind::Harmonic => (onset - p.tol_note.0, onset + duration + p.tol_note.1),
        Kind::Onset => (onset - p.tol_onset.0, onset + p.tol_onset.1),
    };
    (
        frame_index(from, frame_res, n_frames),
        frame_index(to, frame_res, n_frames),
    )
}

/// H₀, `components.len() × n_frames`, with frames `frame_res` seconds apart.
pub fn init_activations(
    components: &[Component],
    score: &Score,
    n_frames: usize,
    frame_res: f64,
    p: &ActivationParams,
) -> DMatrix<f64> {
    let mut h = DMatrix::zeros(components.len(), n_frames);
    for (r, c) in components.iter().enumerate() {
        for note in score
            .notes
            .iter()
            .filter(|n| c.covers(n.pitch, &n.instrument))
        {
            let (a, b) = note_window(c.kind, note.onset, note.duration, frame_res, n_frames, p);
            for n in a..b {
                h[(r, n)] = 1.0;
            }
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::score::Note;
    use crate::model::templates::components;

    #[test]
    fn windows_follow_the_score() {
        let s = Score::new(
            vec![Note {
                onset: 1.0,
                duration: 0.5,
                pitch: 60,
                velocity: 1.0,
                instrument: String::new(),
                measure: None,
            }],
            vec![],
        );
        let c = components(&s, false);
        let h = init_activations(&c, &s, 40, 0.1, &ActivationParams::default());
        let active = |r: usize| (0..40).filter(|&n| h[(r, n)] == 1.0).collect::<Vec<_>>();
        // onset: ⌊0.8/0.1⌋ = 8 … ⌊1.1/0.1⌋ = 11 exclusive (Python's int() gives the same)
        assert_eq!(active(0), (8..11).collect::<Vec<_>>());
        // harmonic: ⌊0.9/0.1⌋ = 9 … ⌊2.0/0.1⌋ = 20 exclusive
        assert_eq!(active(1), (9..20).collect::<Vec<_>>());
        assert_eq!(frame_index(-0.3, 0.1, 40), 0);
        assert_eq!(frame_index(100.0, 0.1, 40), 40);
    }
}
