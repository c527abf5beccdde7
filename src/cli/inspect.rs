//! `scorenmf inspect FILE [SCORE]`: what a recording, a score, or both hold.

use std::path::{Path, PathBuf};

use clap::Args;

use scorenmf::io::audio::{self, Container};
use scorenmf::io::score;
use scorenmf::tasks::inspect::Report;
use scorenmf::Error;

use super::{out, warn, Global};

#[derive(Args)]
pub struct InspectArgs {
    /// A recording (WAV, FLAC, MP3, Ogg Vorbis), or, when it is the only file, a score alone: a
    /// MIDI file, a MusicXML file named `.musicxml`, `.xml` or `.mxl`, or a CSV note list named
    /// `.csv`, `.tsv` or `.txt`.
    file: PathBuf,
    /// Score of the recording: FMP-style CSV note list, MIDI or MusicXML file.
    score: Option<PathBuf>,
}

pub fn run(global: &Global, args: &InspectArgs) -> Result<(), Error> {
    let (audio_path, score_path) = match &args.score {
        Some(s) => (Some(args.file.as_path()), Some(s.as_path())),
        None if is_score(&args.file)? => (None, Some(args.file.as_path())),
        None => (Some(args.file.as_path()), None),
    };
    let a = audio_path.map(audio::read_audio).transpose()?;
    let s = score_path.map(score::read_score).transpose()?;
    if let Some(s) = &s {
        warn(global, &s.warnings);
    }
    let name = |p: Option<&Path>| p.map(|p| p.display().to_string());
    let report = Report {
        audio: name(audio_path).zip(a.as_ref()),
        score: name(score_path).zip(s.as_ref()),
    };
    out!("{report}");
    Ok(())
}

/// Whether a lone file is a score: it does not start like an audio container the reader
/// knows, and it starts like a MIDI file or is named like a note list. Anything else is read
/// as audio, so that a damaged recording gets the audio reader's error.
fn is_score(path: &Path) -> Result<bool, Error> {
    use std::io::Read;
    let mut head = Vec::with_capacity(16);
    std::fs::File::open(path)
        .and_then(|f| f.take(16).read_to_end(&mut head))
        .map_err(|e| Error::read(path, e))?;
    if Container::sniff(&head).is_some() {
        return Ok(false);
    }
    let midi = score::is_midi(&head);
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let listed = matches!(
        extension.as_deref(),
        Some("csv" | "tsv" | "txt" | "mid" | "midi" | "xml" | "musicxml" | "mxl")
    );
    Ok(midi || listed)
}

/// `convert`'s arguments.
#[derive(Args)]
pub struct ConvertArgs {
    /// Score: FMP-style CSV note list, MIDI or MusicXML (.musicxml, .xml, .mxl).
    score: PathBuf,
    /// Output: a CSV note list (`.csv`) or a MIDI file (`.mid`, `.midi`).
    #[arg(short, long)]
    output: PathBuf,
    /// Repeats of a MusicXML score: `written` (unfolded) or `none` (every measure once).
    #[arg(long, value_enum, default_value_t = score::Repeats::Written)]
    repeats: score::Repeats,
}

/// Writes a score as a CSV note list or a MIDI file: what every command reads from it.
pub fn convert(global: &Global, args: &ConvertArgs) -> Result<(), Error> {
    let s = score::read_score_with(&args.score, args.repeats)?;
    warn(global, &s.warnings);
    let ext = args
        .output
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    match ext.as_deref() {
        Some("csv") => score::csv::write(&args.output, &s.notes),
        Some("mid" | "midi") => score::midi::write(&args.output, &s.notes),
        _ => Err(Error::Output {
            path: args.output.clone(),
            msg: "name the output .csv (note list) or .mid (MIDI)".into(),
        }),
    }
}
