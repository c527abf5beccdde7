//! The `scorenmf` command line: parses arguments and hands over to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use scorenmf::{audio, inspect, score, Error};

#[derive(Parser)]
#[command(name = "scorenmf", version, about = "Score-informed music transcription and source separation (constrained NMF)", long_about = None)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Global {
    /// Print nothing but errors.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Print more detail (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    verbose: u8,
}

#[derive(Subcommand)]
enum Command {
    /// Show what a recording (and optionally its score) holds and whether they fit together.
    Inspect {
        /// Recording: WAV, FLAC, MP3 or Ogg Vorbis.
        audio: PathBuf,
        /// Score aligned to the recording: FMP-style CSV note list or MIDI file.
        score: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(if e.is_input_error() { 2 } else { 1 })
        }
    }
}

fn warn(global: &Global, warnings: &[String]) {
    if !global.quiet {
        for w in warnings {
            eprintln!("warning: {w}");
        }
    }
}

fn run(cli: &Cli) -> Result<(), Error> {
    match &cli.command {
        Command::Inspect { audio, score } => {
            let a = audio::read_audio(audio)?;
            let s = score.as_deref().map(score::read_score).transpose()?;
            if let Some(s) = &s {
                warn(&cli.global, &s.warnings);
            }
            let report = inspect::Report {
                audio_name: audio.display().to_string(),
                audio: &a,
                score: score
                    .as_ref()
                    .zip(s.as_ref())
                    .map(|(p, s)| (p.display().to_string(), s)),
            };
            print!("{report}");
            Ok(())
        }
    }
}
