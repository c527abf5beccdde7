//! What a user asks of the factorization: the transcription (note events), the separation
//! (stems), and the report on what the inputs hold.

pub mod inspect;
pub mod separate;
pub mod transcribe;
