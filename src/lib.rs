//! # scorenmf
//!
//! Score-informed music transcription and source separation with constrained non-negative matrix
//! factorization (NMF), after Müller's *Fundamentals of Music Processing* (FMP), notebooks C8S3,
//! and Ewert & Müller (ICASSP 2012) / Ewert, Pardo, Müller & Plumbley (IEEE SPM 2014).
//!
//! The data flows through one module per stage, each with plain data types at its boundary:
//!
//! | stage | module | in → out |
//! |---|---|---|
//! | decode, mix down, resample, write | [`audio`] | file → [`audio::Audio`] → mono `Vec<f32>` |
//! | read the score | [`score`] | CSV / MIDI file → [`score::Score`] |
//! | short-time Fourier transform | [`stft`] | samples → [`stft::Spectrogram`] |
//! | initial templates W₀ (harmonic + onset per pitch) | [`templates`] | score → K × R matrix |
//! | score-constrained activations H₀ | [`activations`] | score → R × N matrix |
//! | constrained NMF (Euclidean, KL) | [`nmf`] | V, W₀, H₀ → W, H |
//! | what the command line reports about inputs | [`inspect`] | audio + score → report |

pub mod activations;
pub mod atomic;
pub mod audio;
pub mod error;
pub mod inspect;
pub mod nmf;
pub mod score;
pub mod stft;
pub mod templates;

pub use error::{Error, Result};
