//! The score-informed model: initial templates W₀ and activations H₀ from the score, and the
//! constrained NMF that fits them to the spectrogram (with its SIMD kernels).

pub mod activations;
pub mod kernel;
pub mod nmf;
pub mod templates;
