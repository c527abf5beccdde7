//! `scorenmf inspect`: what a recording and a score hold, and whether they fit together.

use std::fmt;

use crate::io::audio::Audio;
use crate::io::score::{pitch_name, Score};

/// How many notes that do not fit the audio are listed one by one.
const LIST_AT_MOST: usize = 10;

/// The facts `inspect` prints about an audio file, a score, or both (then also whether the
/// score's notes lie within the audio). Each is given with the name it is printed under.
pub struct Report<'a> {
    pub audio: Option<(String, &'a Audio)>,
    pub score: Option<(String, &'a Score)>,
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((name, audio)) = &self.audio {
            write_audio(f, name, audio)?;
        }
        if let Some((name, score)) = &self.score {
            write_score(f, name, score)?;
            if let Some((_, audio)) = &self.audio {
                write_outside(f, score, audio.duration())?;
            }
        }
        Ok(())
    }
}

/// The recording's format, duration, rate and channels.
fn write_audio(f: &mut fmt::Formatter<'_>, name: &str, a: &Audio) -> fmt::Result {
    writeln!(f, "audio       {name}")?;
    writeln!(f, "  format      {}", a.format)?;
    writeln!(
        f,
        "  duration    {:.2} s ({} samples)",
        a.duration(),
        a.len()
    )?;
    writeln!(f, "  sample rate {} Hz", a.sample_rate)?;
    writeln!(f, "  channels    {}", a.channels.len())
}

/// The score's notes, pitches, instruments and span.
fn write_score(f: &mut fmt::Formatter<'_>, name: &str, score: &Score) -> fmt::Result {
    let pitches = score.pitches();
    writeln!(f, "score       {name}")?;
    writeln!(f, "  notes       {}", score.notes.len())?;
    writeln!(
        f,
        "  pitches     {} distinct ({}..{}): {}",
        pitches.len(),
        pitches[0],
        pitches[pitches.len() - 1],
        pitches
            .iter()
            .map(|&p| pitch_name(p))
            .collect::<Vec<_>>()
            .join(" ")
    )?;
    let instruments: Vec<String> = score
        .instruments()
        .into_iter()
        .map(|i| {
            let count = score.notes.iter().filter(|n| n.instrument == i).count();
            let label = if i.is_empty() { "(no label)".into() } else { i };
            format!("{label} ({count} notes)")
        })
        .collect();
    writeln!(
        f,
        "  instruments {}: {}",
        instruments.len(),
        instruments.join(", ")
    )?;
    let first = score.notes[0].onset;
    writeln!(f, "  span        {:.3} s to {:.3} s", first, score.end())
}

/// The score's notes that end after the audio's `dur` seconds, the first few one by one.
fn write_outside(f: &mut fmt::Formatter<'_>, score: &Score, dur: f64) -> fmt::Result {
    let outside: Vec<(usize, &crate::io::score::Note)> = score
        .notes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.end() > dur)
        .collect();
    if outside.is_empty() {
        writeln!(f, "  outside     none: every note lies within the audio")?;
    } else {
        let after = outside.iter().filter(|(_, n)| n.onset >= dur).count();
        writeln!(
            f,
            "  outside     {} notes end after the audio ({:.2} s); {} of them start after it",
            outside.len(),
            dur,
            after
        )?;
        for (id, n) in outside.iter().take(LIST_AT_MOST) {
            writeln!(
                f,
                "    note {id}: {} {} at {:.3} s to {:.3} s",
                pitch_name(n.pitch),
                n.instrument,
                n.onset,
                n.end()
            )?;
        }
        if outside.len() > LIST_AT_MOST {
            writeln!(f, "    … and {} more", outside.len() - LIST_AT_MOST)?;
        }
    }
    Ok(())
}
