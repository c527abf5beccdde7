//! Input and output: decoding and writing audio, reading and writing scores, and writing every
//! output file atomically.

pub mod atomic;
pub mod audio;
pub mod outputs;
pub mod score;
