//! Built-in evaluation with the definitions researchers already use: note-level transcription
//! metrics as `mir_eval` computes them ([`notes`]).

pub mod notes;
pub mod perturb;
pub mod score_diff;
pub mod stems;
