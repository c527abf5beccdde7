//! What a teacher reads: which score notes were not played, and how far the played onsets were
//! from the score's, from a transcription's `notes.json`.

use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::io::score::{pitch_name, Score};
use crate::stats::quantile;

/// A score note the transcription judged not played.
#[derive(Debug, Clone, Serialize)]
pub struct Missed {
    pub score_note: usize,
    pub pitch: String,
    pub instrument: String,
    pub onset: f64,
    pub confidence: f64,
}

/// Timing summary of the played notes, seconds.
#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    pub played: usize,
    /// Median and 90th percentile of |onset shift|.
    pub median_abs_shift: f64,
    pub p90_abs_shift: f64,
    /// Mean signed shift (positive: later than the score).
    pub mean_shift: f64,
}

/// The comparison of a score with a transcription of it.
#[derive(Debug, Clone, Serialize)]
pub struct ScoreDiff {
    pub score_notes: usize,
    pub not_played: Vec<Missed>,
    pub timing: Timing,
    /// Per instrument label: timing of its played notes.
    pub by_instrument: Vec<(String, Timing)>,
}

fn timing(shifts: &[f64]) -> Timing {
    let abs: Vec<f64> = shifts.iter().map(|s| s.abs()).collect();
    Timing {
        played: shifts.len(),
        median_abs_shift: quantile(abs.clone(), 0.5),
        p90_abs_shift: quantile(abs, 0.9),
        mean_shift: if shifts.is_empty() {
            0.0
        } else {
            shifts.iter().sum::<f64>() / shifts.len() as f64
        },
    }
}

/// Compares `score` with the transcription in `notes_json` (the file's text; `path` names it
/// in errors).
pub fn score_diff(score: &Score, path: &Path, notes_json: &str) -> Result<ScoreDiff> {
    let bad = |msg: String| Error::Score {
        path: path.to_path_buf(),
        msg,
    };
    let v: serde_json::Value =
        serde_json::from_str(notes_json).map_err(|e| bad(format!("not a notes.json file: {e}")))?;
    let n = v["summary"]["score_notes"]
        .as_u64()
        .ok_or_else(|| bad("not a notes.json file: no summary.score_notes".into()))?;
    if n as usize != score.notes.len() {
        return Err(bad(format!(
            "made from a score of {n} notes, this score has {}",
            score.notes.len()
        )));
    }
    let list = |key: &str| v[key].as_array().cloned().unwrap_or_default();
    let note_of = |x: &serde_json::Value| -> Result<usize> {
        x["score_note"]
            .as_u64()
            .map(|i| i as usize)
            .filter(|&i| i < score.notes.len())
            .ok_or_else(|| bad("an entry without a valid score_note".into()))
    };
    let mut not_played = Vec::new();
    for u in list("not_played") {
        let id = note_of(&u)?;
        let note = &score.notes[id];
        not_played.push(Missed {
            score_note: id,
            pitch: pitch_name(note.pitch),
            instrument: note.instrument.clone(),
            onset: note.onset,
            confidence: u["confidence"].as_f64().unwrap_or(f64::NAN),
        });
    }
    let mut shifts = Vec::new();
    let mut per: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    for e in list("events") {
        let id = note_of(&e)?;
        let onset = e["onset"]
            .as_f64()
            .ok_or_else(|| bad("an event without an onset".into()))?;
        let shift = onset - score.notes[id].onset;
        shifts.push(shift);
        per.entry(score.notes[id].instrument.clone())
            .or_default()
            .push(shift);
    }
    Ok(ScoreDiff {
        score_notes: score.notes.len(),
        not_played,
        timing: timing(&shifts),
        by_instrument: per.into_iter().map(|(k, s)| (k, timing(&s))).collect(),
    })
}

impl fmt::Display for ScoreDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.timing;
        writeln!(
            f,
            "{} of {} score notes played; {} not played",
            t.played,
            self.score_notes,
            self.not_played.len()
        )?;
        for m in &self.not_played {
            writeln!(
                f,
                "  not played: note {} {} {} at {:.3} s (confidence {:.2})",
                m.score_note, m.pitch, m.instrument, m.onset, m.confidence
            )?;
        }
        let ms = |x: f64| x * 1e3;
        writeln!(
            f,
            "onset vs score: median |shift| {:.0} ms, 90th percentile {:.0} ms, mean shift {:+.0} ms",
            ms(t.median_abs_shift),
            ms(t.p90_abs_shift),
            ms(t.mean_shift)
        )?;
        for (inst, t) in &self.by_instrument {
            writeln!(
                f,
                "  {:<12} {:>4} notes: median |shift| {:.0} ms, 90th percentile {:.0} ms, mean {:+.0} ms",
                if inst.is_empty() { "(no label)" } else { inst },
                t.played,
                ms(t.median_abs_shift),
                ms(t.p90_abs_shift),
                ms(t.mean_shift)
            )?;
        }
        Ok(())
    }
}
