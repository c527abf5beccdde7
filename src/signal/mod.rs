//! Signal processing on the analysis signal: the short-time Fourier transform and its inverse,
//! the per-pitch onset novelty, and a synthesizer for test material with known ground truth.

pub mod onsets;
pub mod stft;
pub mod synth;
