//! The score-informed model: initial templates W₀ and activations H₀ from the score, and the
//! constrained NMF that fits them to the spectrogram (with its SIMD kernels); and the blind
//! β-divergence NMF with scikit-learn's initializations, for decomposing without a score.

pub mod activations;
pub mod beta_nmf;
pub mod kernel;
pub mod nmf;
pub mod nmf_init;
pub mod templates;
