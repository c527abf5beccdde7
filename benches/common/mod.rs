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
