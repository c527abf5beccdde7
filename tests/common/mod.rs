//! The bundled example the end-to-end tests run on.

use std::path::{Path, PathBuf};
use std::process::Command;

use scorenmf::io::audio::{read_audio, Audio};
use scorenmf::io::score::{read_score, Score};
use scorenmf::signal::synth::{render, Timbre};

pub const CHOPIN_WAV: &str = "data/FMP_C8_Audio_Chopin_Op028-04_SMD_beginning.wav";
pub const CHOPIN_CSV: &str = "data/FMP_C8_Audio_Chopin_Op028-04_SMD_beginning.csv";

/// The Chopin excerpt and its score.
pub fn chopin() -> (Audio, Score) {
    (
        read_audio(Path::new(CHOPIN_WAV)).unwrap(),
        read_score(Path::new(CHOPIN_CSV)).unwrap(),
    )
}

/// Runs the `scorenmf` binary: its exit code and stderr.
pub fn scorenmf(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_scorenmf"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A fresh folder under the system's temporary folder, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("scorenmf-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The hands of a `random_piece` score rendered apart, `lh` mellow and `rh` bright.
pub fn hands(score: &Score, sample_rate: u32, len: usize, seed: u64) -> [Vec<f32>; 2] {
    ["lh", "rh"].map(|inst| {
        let notes: Vec<_> = score
            .notes
            .iter()
            .filter(|n| n.instrument == inst)
            .cloned()
            .collect();
        let t = if inst == "lh" {
            Timbre::mellow()
        } else {
            Timbre::bright()
        };
        render(&notes, |_| t.clone(), sample_rate, len, seed)
    })
}
