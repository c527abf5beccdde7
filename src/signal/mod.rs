//! Signal processing on the analysis signal: the short-time Fourier transform and its inverse,
//! the per-pitch onset novelty, harmonic–percussive separation by median filtering, and a
//! synthesizer for test material with known ground truth.

pub mod hpss;
pub mod onsets;
pub mod stft;
pub mod synth;
