//! The score: a list of notes aligned to the recording, read from an FMP-style CSV note list
//! ([`csv`]) or a Standard MIDI File ([`midi`]).
//!
//! Both readers produce the same [`Score`]. Notes are sorted by onset, then pitch, then
//! instrument; a note's *id* is its index in that order, and every later stage refers to score
//! notes by that id.

pub mod csv;
pub mod midi;
pub mod musicxml;

pub use musicxml::Repeats;

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};

/// One note of the score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Note {
    /// Onset in seconds from the start of the recording.
    pub onset: f64,
    /// Duration in seconds.
    pub duration: f64,
    /// MIDI pitch, 0..=127 (60 = C4).
    pub pitch: u8,
    /// Velocity in [0, 1].
    pub velocity: f64,
    /// Instrument (or part, voice, hand) label; empty when the score gives none.
    pub instrument: String,
    /// The measure (bar) number the score gives the note (MusicXML), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measure: Option<String>,
}

impl Note {
    /// End of the note in seconds.
    pub fn end(&self) -> f64 {
        self.onset + self.duration
    }
}

/// A score: notes sorted by (onset, pitch, instrument), plus what the reader warned about.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Score {
    pub notes: Vec<Note>,
    /// Things the reader fixed or skipped, one sentence each (e.g. drum notes on channel 10).
    #[serde(skip)]
    pub warnings: Vec<String>,
    /// Whether the file gave velocities (MIDI always does; a CSV when it has the column).
    #[serde(skip)]
    pub has_velocities: bool,
}

impl Score {
    /// Builds a score, sorting the notes into id order.
    pub fn new(mut notes: Vec<Note>, warnings: Vec<String>) -> Score {
        Self::with_velocities(std::mem::take(&mut notes), warnings, true)
    }

    /// Builds a score, telling whether its velocities were given or defaulted.
    pub fn with_velocities(
        mut notes: Vec<Note>,
        warnings: Vec<String>,
        has_velocities: bool,
    ) -> Score {
        notes.sort_by(|a, b| {
            a.onset
                .total_cmp(&b.onset)
                .then(a.pitch.cmp(&b.pitch))
                .then_with(|| a.instrument.cmp(&b.instrument))
        });
        Score {
            notes,
            warnings,
            has_velocities,
        }
    }

    /// The distinct pitches, ascending.
    pub fn pitches(&self) -> Vec<u8> {
        self.notes
            .iter()
            .map(|n| n.pitch)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// The distinct instrument labels, sorted.
    pub fn instruments(&self) -> Vec<String> {
        self.notes
            .iter()
            .map(|n| n.instrument.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// The latest note end in seconds.
    pub fn end(&self) -> f64 {
        self.notes.iter().map(Note::end).fold(0.0, f64::max)
    }
}

/// Reads a score file: a Standard MIDI File (told by its `MThd` header, or a RIFF `RMID`
/// wrapper), a MusicXML file (`.mxl` zip, or XML rooted at `score-partwise`/`score-timewise`;
/// repeats unfolded as written) or otherwise an FMP-style CSV note list.
pub fn read_score(path: &Path) -> Result<Score> {
    read_score_with(path, Repeats::Written)
}

/// [`read_score`], telling how a MusicXML score's repeats are read.
pub fn read_score_with(path: &Path, repeats: Repeats) -> Result<Score> {
    let bytes = std::fs::read(path).map_err(|e| Error::read(path, e))?;
    parse_with(path, &bytes, repeats)
}

/// Whether a file starting with `head` is a Standard MIDI File: its `MThd` header, or a RIFF
/// `RMID` wrapper; every other score is read as a CSV note list.
pub fn is_midi(head: &[u8]) -> bool {
    head.starts_with(b"MThd") || (head.starts_with(b"RIFF") && head.get(8..12) == Some(b"RMID"))
}

/// Parses a score file held in `bytes` as [`read_score`] does; `path` only names it in errors.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Score> {
    parse_with(path, bytes, Repeats::Written)
}

/// [`parse`], telling how a MusicXML score's repeats are read.
pub fn parse_with(path: &Path, bytes: &[u8], repeats: Repeats) -> Result<Score> {
    let score = if is_midi(bytes) {
        midi::parse(path, bytes)?
    } else if musicxml::is_musicxml(bytes) {
        musicxml::parse(path, bytes, repeats)?
    } else {
        csv::parse(path, bytes)?
    };
    check_size(path, &score)?;
    Ok(score)
}

/// The most notes a score may hold.
pub const MAX_NOTES: usize = 1_000_000;
/// The most distinct instrument labels a score may hold (each costs the stems a stream and its
/// masks; orchestral scores have a few dozen parts).
pub const MAX_INSTRUMENTS: usize = 128;
/// The longest instrument label, in characters.
pub const MAX_LABEL: usize = 256;

/// Refuses scores beyond the sizes the later stages are built for.
fn check_size(path: &Path, score: &Score) -> Result<()> {
    let refuse = |msg: String| {
        Err(Error::Score {
            path: path.to_path_buf(),
            msg,
        })
    };
    if score.notes.len() > MAX_NOTES {
        return refuse(format!(
            "{} notes: at most {MAX_NOTES} are read",
            score.notes.len()
        ));
    }
    if let Some(n) = score
        .notes
        .iter()
        .find(|n| n.instrument.chars().count() > MAX_LABEL)
    {
        return refuse(format!(
            "the instrument label of the note at {:.3} s has {} characters, at most {MAX_LABEL} are allowed",
            n.onset,
            n.instrument.chars().count()
        ));
    }
    let labels = score.instruments().len();
    if labels > MAX_INSTRUMENTS {
        return refuse(format!(
            "{labels} distinct instrument labels (tracks or parts): at most {MAX_INSTRUMENTS}"
        ));
    }
    Ok(())
}

/// Scientific pitch name of a MIDI pitch, with sharps: 60 → `C4`, 71 → `B4`, 54 → `F#3`.
pub fn pitch_name(pitch: u8) -> String {
    const NAMES: [&str; 12] = [
        "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B",
    ];
    format!("{}{}", NAMES[pitch as usize % 12], pitch as i32 / 12 - 1)
}

/// Checks what both readers require of a note's numbers; `Err` holds the reason.
pub fn check_times(onset: f64, duration: f64) -> std::result::Result<(), String> {
    if !onset.is_finite() {
        return Err(format!("onset {onset} is not a finite time"));
    }
    if onset < 0.0 {
        return Err(format!("onset {onset} s is negative"));
    }
    if !duration.is_finite() {
        return Err(format!("duration {duration} is not a finite time"));
    }
    if duration < 0.0 {
        return Err(format!("duration {duration} s is negative"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pitch_names() {
        assert_eq!(pitch_name(60), "C4");
        assert_eq!(pitch_name(71), "B4");
        assert_eq!(pitch_name(54), "F#3");
        assert_eq!(pitch_name(0), "C-1");
        assert_eq!(pitch_name(127), "G9");
    }

    #[test]
    fn score_sorts_and_summarizes() {
        let n = |onset, pitch, inst: &str| Note {
            onset,
            duration: 1.0,
            pitch,
            velocity: 1.0,
            instrument: inst.into(),
            measure: None,
        };
        let s = Score::new(
            vec![n(1.0, 60, "rh"), n(0.5, 64, "lh"), n(1.0, 55, "lh")],
            vec![],
        );
        assert_eq!(
            s.notes.iter().map(|n| n.pitch).collect::<Vec<_>>(),
            [64, 55, 60]
        );
        assert_eq!(s.pitches(), [55, 60, 64]);
        assert_eq!(s.instruments(), ["lh", "rh"]);
        assert_eq!(s.end(), 2.0);
    }
}
