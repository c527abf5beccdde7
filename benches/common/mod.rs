//! The benches' shared input, the bundled Chopin excerpt repeated to a given length, and the
//! peak memory of a child process.

use std::path::{Path, PathBuf};

use scorenmf::io::audio::{read_audio, write_wav, WavEncoding};
use scorenmf::io::score::{read_score, Note, Score};

pub const AUDIO: &str = "data/FMP_C8_Audio_Chopin_Op028-04_SMD_beginning.wav";
pub const SCORE: &str = "data/FMP_C8_Audio_Chopin_Op028-04_SMD_beginning.csv";

/// The excerpt repeated to about `seconds`, written once as `dir/<name>.wav`.
pub struct Repeated {
    pub name: String,
    pub wav: PathBuf,
    /// Number of repetitions, and the excerpt's length in seconds.
    pub reps: usize,
    pub excerpt_seconds: f64,
    /// The excerpt's score.
    pub score: Score,
}

impl Repeated {
    pub fn new(dir: &Path, seconds: f64) -> Repeated {
        let audio = read_audio(Path::new(AUDIO)).unwrap();
        let reps = (seconds / audio.duration()).round().max(1.0) as usize;
        let name = format!("chopin_{}min", (seconds / 60.0).round());
        let wav = dir.join(format!("{name}.wav"));
        if !wav.exists() {
            let mut x = Vec::with_capacity(audio.len() * reps);
            for _ in 0..reps {
                x.extend_from_slice(&audio.channels[0]);
            }
            write_wav(&wav, &[x], audio.sample_rate, WavEncoding::Pcm16).unwrap();
        }
        Repeated {
            name,
            wav,
            reps,
            excerpt_seconds: audio.duration(),
            score: read_score(Path::new(SCORE)).unwrap(),
        }
    }

    /// The recording's length, seconds.
    pub fn seconds(&self) -> f64 {
        self.reps as f64 * self.excerpt_seconds
    }

    /// The score repeated with the recording, each repetition's notes mapped by `f(note, i)`
    /// after moving them to the repetition's start.
    pub fn notes(&self, f: impl Fn(Note, usize) -> Note) -> Vec<Note> {
        let mut notes = Vec::with_capacity(self.score.notes.len() * self.reps);
        for i in 0..self.reps {
            let t = i as f64 * self.excerpt_seconds;
            notes.extend(self.score.notes.iter().map(|n| {
                f(
                    Note {
                        onset: n.onset + t,
                        ..n.clone()
                    },
                    i,
                )
            }));
        }
        notes
    }
}

/// Waits for `child`; whether it succeeded and its peak RSS in bytes.
#[cfg(target_os = "linux")]
pub fn wait_rss(child: std::process::Child) -> (bool, f64) {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; `status` and `usage` are valid for writes.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid);
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    (ok, usage.ru_maxrss as f64 * 1024.0)
}

#[cfg(not(target_os = "linux"))]
pub fn wait_rss(mut child: std::process::Child) -> (bool, f64) {
    (child.wait().unwrap().success(), f64::NAN)
}

/// Seconds of each rendered piece of [`Rendered`].
pub const PIECE_SECONDS: f64 = 120.0;
/// How many different pieces [`Rendered`] cycles through.
pub const PIECES: u64 = 5;

/// A realistic long input: [`PIECES`] different `dense_piece`s of [`PIECE_SECONDS`] (some 40
/// distinct pitches, chords of 3 to 6 notes), rendered by the project's synthesizer (`lh`
/// mellow, `rh` bright) at 22050 Hz, played one after the other and again to about `seconds`;
/// written once as `dir/dense_<m>min.wav` and `.csv`.
pub struct Rendered {
    pub name: String,
    pub wav: PathBuf,
    pub csv: PathBuf,
    pub seconds: f64,
    /// Distinct pitches of the score.
    pub pitches: usize,
}

impl Rendered {
    pub fn new(dir: &Path, seconds: f64) -> Rendered {
        use scorenmf::signal::synth::{dense_piece, render, Timbre};
        let sr = 22050u32;
        let name = format!("dense_{}min", (seconds / 60.0).round());
        let (wav, csv) = (
            dir.join(format!("{name}.wav")),
            dir.join(format!("{name}.csv")),
        );
        let count = (seconds / PIECE_SECONDS).round().max(1.0) as usize;
        let piece_len = (PIECE_SECONDS * sr as f64) as usize;
        let pieces: Vec<Score> = (1..=PIECES)
            .map(|s| dense_piece(PIECE_SECONDS, s))
            .collect();
        let mut notes = Vec::new();
        for i in 0..count {
            let t = i as f64 * PIECE_SECONDS;
            notes.extend(pieces[i % pieces.len()].notes.iter().map(|n| Note {
                onset: n.onset + t,
                ..n.clone()
            }));
        }
        let score = Score::new(notes, vec![]);
        if !wav.exists() || !csv.exists() {
            let timbre = |hand: &str| {
                if hand == "lh" {
                    Timbre::mellow()
                } else {
                    Timbre::bright()
                }
            };
            let rendered: Vec<Vec<f32>> = {
                use rayon::prelude::*;
                pieces
                    .par_iter()
                    .enumerate()
                    .map(|(k, p)| render(&p.notes, timbre, sr, piece_len, k as u64))
                    .collect()
            };
            let mut x = Vec::with_capacity(piece_len * count);
            for i in 0..count {
                x.extend_from_slice(&rendered[i % rendered.len()]);
            }
            write_wav(&wav, &[x], sr, WavEncoding::Pcm16).unwrap();
            scorenmf::io::score::csv::write(&csv, &score.notes).unwrap();
        }
        Rendered {
            name,
            wav,
            csv,
            seconds: count as f64 * PIECE_SECONDS,
            pitches: score.pitches().len(),
        }
    }
}
