//! The bundled example the end-to-end tests run on.

use std::path::Path;

use scorenmf::io::audio::{read_audio, Audio};
use scorenmf::io::score::{read_score, Score};

pub const CHOPIN_WAV: &str = "data/FMP_C8_Audio_Chopin_Op028-04_SMD_beginning.wav";
pub const CHOPIN_CSV: &str = "data/FMP_C8_Audio_Chopin_Op028-04_SMD_beginning.csv";

/// The Chopin excerpt and its score.
pub fn chopin() -> (Audio, Score) {
    (
        read_audio(Path::new(CHOPIN_WAV)).unwrap(),
        read_score(Path::new(CHOPIN_CSV)).unwrap(),
    )
}
