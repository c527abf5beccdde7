//! Built-in evaluation with the definitions researchers already use: note-level transcription
//! metrics as `mir_eval` computes them ([`notes`]), BSS Eval on stems ([`stems`]) and the stem
//! files it compares ([`stem_files`]).

pub mod notes;
pub mod perturb;
pub mod score_diff;
pub mod stem_files;
pub mod stems;
