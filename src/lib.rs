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
//! | decode, mix down, resample, write | [`io::audio`] | file → [`io::audio::Audio`] → mono `Vec<f32>` |
//! | read the score | [`io::score`] | CSV / MIDI / MusicXML file → [`io::score::Score`] |
//! | align a notation score to the recording | [`align`] | mono samples + score → [`align::Alignment`] → aligned `Score` |
//! | short-time Fourier transform | [`signal::stft`] | samples → [`signal::stft::Spectrogram`] |
//! | per-pitch onset novelty on a fine grid | [`signal::onsets`] | samples → Δ(n, k) |
//! | initial templates W₀ (harmonic + onset per pitch) | [`model::templates`] | score → K × R matrix |
//! | score-constrained activations H₀ | [`model::activations`] | score → R × N matrix |
//! | constrained NMF (Euclidean, KL) | [`model::nmf`] | V, W₀, H₀ → W, H |
//! | note events: onsets, offsets, gains, not-played notes | [`tasks::transcribe`] | novelty + H → events |
//! | stems per instrument, pitch, note; residual | [`tasks::separate`] | W, H + audio → WAV files |
//! | the analysis stages in order, one `Config` | [`pipeline`] | audio + score → results |
//! | output files | [`io::outputs`] | results → CSV, MIDI, JSON |
//! | the visual report | [`report`] | V, W₀, W, H₀, H, notes, stems → `report.html` + PNG |
//! | one whole run: inputs → every output file | [`job`] | paths + `Config` → files + summary |
//! | a corpus: a manifest of runs, resumable, sharded | [`batch`] | manifest → a folder per row + summary |
//! | transcription and separation metrics | [`eval`] | reference + estimate → scores |
//!
//! The folders follow the stages: [`io`] (files in and out), [`align`] (chroma and onset
//! features, multiresolution DTW), [`signal`] (STFT, onset novelty),
//! [`model`] (templates, activations, NMF), [`tasks`] (transcription, separation, inspection),
//! [`eval`]; [`pipeline`] runs the analysis and [`job`] a whole command, which the `scorenmf`
//! binary only parses arguments for.

pub mod align;
pub mod batch;
pub mod error;
pub mod eval;
pub mod io;
pub mod job;
pub mod model;
pub mod pipeline;
pub mod profile;
pub mod report;
pub mod signal;
pub mod stats;
pub mod tasks;

pub use error::{Error, Result};
