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
//! | per-pitch onset novelty on a fine grid | [`onsets`] | samples → Δ(n, k) |
//! | note events: onsets, offsets, gains, not-played notes | [`transcribe`] | novelty + H → events |
//! | the stages in order, one `Config` | [`pipeline`] | audio + score → results |
//! | output files | [`outputs`] | results → CSV, MIDI, JSON |
//! | what the command line reports about inputs | [`inspect`] | audio + score → report |

pub mod activations;
pub mod atomic;
pub mod audio;
pub mod error;
pub mod eval;
pub mod inspect;
pub mod kernel;
pub mod nmf;
pub mod onsets;
pub mod outputs;
pub mod pipeline;
pub mod profile;
pub mod score;
pub mod separate;
pub mod stats;
pub mod stft;
pub mod synth;
pub mod templates;
pub mod transcribe;

pub use error::{Error, Result};
