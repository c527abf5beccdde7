//! Output files of a run: `notes.csv`, `notes.mid`, `notes.json` and `run.json`, each written
//! atomically.

use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::io::atomic;
use crate::io::score::{csv, midi, Note, Score};
use crate::pipeline::Config;
use crate::stats::{median, quantile};
use crate::tasks::separate::StemFile;
use crate::tasks::transcribe::{NoteEvent, Transcription, Unplayed};

/// The played notes as score notes (velocity = gain), for notes.csv and notes.mid.
pub fn played_notes(t: &Transcription) -> Vec<Note> {
    t.events
        .iter()
        .map(|e| Note {
            onset: e.onset,
            duration: e.offset - e.onset,
            pitch: e.pitch,
            velocity: e.velocity as f64 / 127.0,
            instrument: e.instrument.clone(),
            measure: None,
        })
        .collect()
}

/// What `notes.json` holds.
#[derive(Serialize)]
struct NotesJson<'a> {
    /// Played notes in time order.
    events: &'a [NoteEvent],
    /// Score notes judged not played, with their evidence.
    not_played: &'a [Unplayed],
    /// Median offset of the score against the audio, seconds.
    score_offset: f64,
    summary: Summary,
    /// Per-note stems written with the transcription: file and where it starts.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    note_stems: &'a [StemFile],
}

#[derive(Serialize)]
struct Summary {
    score_notes: usize,
    played: usize,
    not_played: usize,
    /// Median and 90th percentile of |onset shift| of the played notes, seconds.
    median_abs_onset_shift: f64,
    p90_abs_onset_shift: f64,
}

/// Writes notes.csv, notes.mid and notes.json into `dir`; `note_stems` lists the per-note stems
/// written beside them, if any.
pub fn write_transcription(
    dir: &Path,
    t: &Transcription,
    score: &Score,
    note_stems: &[StemFile],
) -> Result<()> {
    let mut events = t.events.clone();
    events.sort_by(|a, b| a.onset.total_cmp(&b.onset).then(a.pitch.cmp(&b.pitch)));
    let notes = played_notes(&Transcription {
        events: events.clone(),
        ..t.clone()
    });
    csv::write(&dir.join("notes.csv"), &notes)?;
    midi::write(&dir.join("notes.mid"), &notes)?;
    let shifts: Vec<f64> = events.iter().map(|e| e.onset_shift.abs()).collect();
    let json = NotesJson {
        events: &events,
        not_played: &t.not_played,
        score_offset: t.score_offset,
        summary: Summary {
            score_notes: score.notes.len(),
            played: events.len(),
            not_played: t.not_played.len(),
            median_abs_onset_shift: median(shifts.clone()),
            p90_abs_onset_shift: quantile(shifts, 0.9),
        },
        note_stems,
    };
    write_json(&dir.join("notes.json"), &json)
}

/// An input file as run.json records it.
#[derive(Debug, Clone, Serialize)]
pub struct InputFile {
    pub path: PathBuf,
    pub bytes: u64,
    pub sha256: String,
}

impl InputFile {
    pub fn describe(path: &Path) -> Result<InputFile> {
        let data = std::fs::read(path).map_err(|e| Error::read(path, e))?;
        Ok(InputFile {
            path: path.to_path_buf(),
            bytes: data.len() as u64,
            sha256: Sha256::digest(&data)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        })
    }
}

/// What `run.json` holds: enough to reproduce the run.
#[derive(Serialize)]
pub struct RunRecord<'a, R: Serialize> {
    pub scorenmf_version: &'static str,
    pub command: &'a str,
    pub inputs: Vec<InputFile>,
    pub config: &'a Config,
    pub results: R,
}

/// Writes any serializable value as pretty JSON, atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::write(path, std::io::Error::other(e)))?;
    text.push('\n');
    atomic::write_bytes(path, text.as_bytes())
}
