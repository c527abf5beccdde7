//! Input and output: decoding and writing audio, reading and writing scores, matrices in `.npy`
//! and CSV, and writing every output file atomically.

pub mod atomic;
pub mod audio;
pub mod matrix;
pub mod outputs;
pub mod score;
