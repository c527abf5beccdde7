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

/// The events in notes.csv's order: by onset, then pitch.
fn events_in_order(t: &Transcription) -> Vec<NoteEvent> {
    let mut events = t.events.clone();
    events.sort_by(|a, b| a.onset.total_cmp(&b.onset).then(a.pitch.cmp(&b.pitch)));
    events
}

/// The played notes as notes.csv (and notes.mid) holds them, in its order.
pub fn notes_csv_notes(t: &Transcription) -> Vec<Note> {
    played_notes(&Transcription {
        events: events_in_order(t),
        ..t.clone()
    })
}

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

/// An event or unplayed note with the measure (bar) number of its score note, when the score
/// gives measures (MusicXML).
#[derive(Serialize)]
struct InMeasure<'a, T> {
    #[serde(flatten)]
    item: &'a T,
    #[serde(skip_serializing_if = "Option::is_none")]
    measure: Option<&'a str>,
}

/// `items` with their score notes' measures.
fn in_measures<'a, T>(
    items: &'a [T],
    score: &'a Score,
    id: impl Fn(&T) -> usize,
) -> Vec<InMeasure<'a, T>> {
    items
        .iter()
        .map(|item| InMeasure {
            measure: score.notes.get(id(item)).and_then(|n| n.measure.as_deref()),
            item,
        })
        .collect()
}

/// What `notes.json` holds.
#[derive(Serialize)]
struct NotesJson<'a> {
    /// Played notes in time order.
    events: Vec<InMeasure<'a, NoteEvent>>,
    /// Score notes judged not played, with their evidence.
    not_played: Vec<InMeasure<'a, Unplayed>>,
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
    let (notes, json) = transcription_documents(t, score, note_stems)?;
    csv::write(&dir.join("notes.csv"), &notes)?;
    midi::write(&dir.join("notes.mid"), &notes)?;
    atomic::write_bytes(&dir.join("notes.json"), json.as_bytes())
}

/// What notes.csv (and notes.mid) and notes.json hold: the played notes in time order, and
/// notes.json's text (for callers that keep them in memory, as the Python module does).
pub fn transcription_documents(
    t: &Transcription,
    score: &Score,
    note_stems: &[StemFile],
) -> Result<(Vec<Note>, String)> {
    let events = events_in_order(t);
    let notes = notes_csv_notes(t);
    let shifts: Vec<f64> = events.iter().map(|e| e.onset_shift.abs()).collect();
    let json = NotesJson {
        events: in_measures(&events, score, |e| e.score_note),
        not_played: in_measures(&t.not_played, score, |u| u.score_note),
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
    Ok((notes, json_text(&json)?))
}

/// What `alignment.json` holds.
#[derive(Serialize)]
struct AlignmentJson<'a> {
    /// 1 − path cost / baseline cost; under `params.min_confidence` the score is taken for
    /// not of this recording.
    confidence: f64,
    path_cost: f64,
    baseline_cost: f64,
    /// Which ends were free: the whole score inside the recording, or the reverse.
    ends: crate::align::dtw::Ends,
    /// Semitones the recording sounds above the score.
    shift: i32,
    /// The recording's estimated A4, Hz.
    a4: f64,
    score_notes_aligned: usize,
    score_notes_outside: usize,
    /// Frames per cell and cells of each DTW level, coarsest first.
    levels: &'a [usize],
    cells: &'a [usize],
    score_frames: usize,
    audio_frames: usize,
    feature_rate: f64,
    params: &'a crate::align::AlignParams,
}

/// Writes the alignment into `dir`: `aligned_score.csv` and `.mid` (the score moved onto the
/// recording, readable back as a score), `alignment.csv` (the warping path as score time,
/// recording time) and `alignment.json`.
pub fn write_alignment(
    dir: &Path,
    a: &crate::align::Alignment,
    aligned: &Score,
    params: &crate::align::AlignParams,
    outside: usize,
) -> Result<()> {
    csv::write(&dir.join("aligned_score.csv"), &aligned.notes)?;
    midi::write(&dir.join("aligned_score.mid"), &aligned.notes)?;
    let mut text = String::from("score_time,audio_time\n");
    for (s, t) in &a.anchors {
        text.push_str(&format!("{s:.6},{t:.6}\n"));
    }
    let path = dir.join("alignment.csv");
    atomic::write_bytes(&path, text.as_bytes())?;
    let json = AlignmentJson {
        confidence: a.confidence,
        path_cost: a.path_cost,
        baseline_cost: a.baseline_cost,
        ends: a.ends,
        shift: a.shift,
        a4: a.a4,
        score_notes_aligned: aligned.notes.len(),
        score_notes_outside: outside,
        levels: &a.levels,
        cells: &a.cells,
        score_frames: a.score_frames,
        audio_frames: a.audio_frames,
        feature_rate: crate::align::features::FEATURE_RATE,
        params,
    };
    write_json(&dir.join("alignment.json"), &json)
}

/// An input file as run.json records it.
#[derive(Debug, Clone, Serialize)]
pub struct InputFile {
    /// The path as given (relative to the folder the command ran in, if relative).
    pub path: PathBuf,
    /// The same path made absolute (not resolving links), so `scorenmf report` finds the
    /// input from another folder.
    pub absolute: PathBuf,
    pub bytes: u64,
    pub sha256: String,
}

impl InputFile {
    pub fn describe(path: &Path) -> Result<InputFile> {
        let data = std::fs::read(path).map_err(|e| Error::read(path, e))?;
        Ok(InputFile {
            path: path.to_path_buf(),
            absolute: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
            bytes: data.len() as u64,
            sha256: sha256_hex(&data),
        })
    }
}

/// The SHA-256 of `data` in lowercase hex, as run.json records an input's.
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What `run.json` holds: enough to reproduce the run.
#[derive(Serialize)]
pub struct RunRecord<'a, R: Serialize> {
    pub scorenmf_version: &'static str,
    pub command: &'a str,
    pub inputs: Vec<InputFile>,
    /// The analysis parameters (not for `align`, which uses none of them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<&'a Config>,
    /// The alignment's parameters and the score's reading (with an alignment).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub align: Option<serde_json::Value>,
    /// How a MusicXML score's repeats were read (only for a MusicXML score).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeats: Option<crate::io::score::Repeats>,
    pub results: R,
}

/// Writes any serializable value as pretty JSON, atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = json_text(value).map_err(|e| Error::write(path, std::io::Error::other(e)))?;
    atomic::write_bytes(path, text.as_bytes())
}

/// Pretty JSON with a final newline, as the JSON outputs are written.
fn json_text<T: Serialize>(value: &T) -> Result<String> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::Param(format!("cannot write JSON: {e}")))?;
    text.push('\n');
    Ok(text)
}
