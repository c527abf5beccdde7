//! What a user asks of the factorization: the transcription (note events), the separation
//! (stems), the report on what the inputs hold, and, without a score, the blind decomposition
//! and harmonic–percussive separation.

pub mod decompose;
pub mod inspect;
pub mod separate;
pub mod transcribe;
