//! The command line: one module per command, each parsing its arguments and printing what the
//! library returns. No stage of the analysis runs here; the analysing commands hand a
//! [`scorenmf::job::Job`] to [`scorenmf::job::run`].

mod analyse;
mod batch;
mod decompose;
mod eval;
mod inspect;
mod report;

use clap::{Args, Parser, Subcommand};

use scorenmf::job::Task;
use scorenmf::Error;

/// Prints to stdout; a closed pipe (`| head`) ends the program quietly instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write;
        if let Err(e) = write!(std::io::stdout().lock(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}
macro_rules! outln {
    ($($arg:tt)*) => {{
        out!($($arg)*);
        out!("\n");
    }};
}
pub(crate) use {out, outln};

#[derive(Parser)]
#[command(name = "scorenmf", version, about = "Score-informed music transcription and source separation (constrained NMF)", long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The options every command takes.
#[derive(Args)]
pub struct Global {
    /// Print nothing but errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Show what a recording, a score, or both hold, and whether they fit together.
    Inspect(inspect::InspectArgs),
    /// Align a notation score (MIDI, MusicXML or CSV at its nominal tempo) to a recording:
    /// chroma and onset features, multiresolution DTW with free ends.
    ///
    /// Writes OUTDIR/aligned_score.csv and aligned_score.mid (the score's notes moved onto the
    /// recording), alignment.csv (the warping path: score time, audio time), alignment.json
    /// (cost, confidence, every parameter) and run.json. A score that does not fit the recording
    /// is an error (exit 2) unless --force.
    Align(analyse::AlignArgs),
    /// Write a score (CSV, MIDI, MusicXML) as a CSV note list or a MIDI file, as every command
    /// reads it: MusicXML repeats unfolded, ties merged, staves as instruments.
    Convert(inspect::ConvertArgs),
    /// Transcribe: which score notes were played, with onsets from the audio, offsets and gains.
    ///
    /// Writes OUTDIR/notes.csv (FMP format), notes.mid, notes.json (events, notes not played,
    /// evidence, onset shifts) and run.json (every parameter, inputs with SHA-256).
    Transcribe(analyse::TranscribeArgs),
    /// Separate the recording into stems by instrument, pitch and note, from the score-informed
    /// factorization (soft masks on every original channel, at the recording's own rate).
    ///
    /// Writes OUTDIR/stems/instrument/<label>.wav, stems/pitch/<midi>_<name>.wav,
    /// stems/note/<id>_<midi>_<name>_<onset>s.wav (cropped to the note unless --full-length),
    /// stems/residual.wav, and run.json.
    Separate(analyse::SeparateArgs),
    /// Transcription and separation in one pass (the masks from their own factorization unless
    /// --mask-model shared): notes.csv, notes.mid, notes.json, stems (per instrument unless --by
    /// says otherwise) and run.json.
    Run(analyse::SeparateArgs),
    /// A corpus: every row of a manifest (recording, score, options) through `run`, each into
    /// OUTROOT/<name>/ atomically with a done-marker; rerun to resume (done rows are skipped),
    /// one failing row never stops the others. `batch summarize OUTROOT` merges the results.
    Batch(batch::BatchArgs),
    /// Without a score: factorize the spectrogram into R components (β-divergence NMF as
    /// scikit-learn's, with librosa's defaults), or fit a fixed dictionary of templates.
    ///
    /// Writes OUTDIR/W.npy and W.csv (templates, bins × R), H.npy and H.csv (activations,
    /// R × frames), components.csv (each component's peak frequency), stems/component/<c>.wav
    /// (soft masks with the mixture's phase), stems/residual.wav and run.json.
    Decompose(decompose::DecomposeArgs),
    /// Harmonic–percussive separation by median filtering, as librosa.decompose.hpss.
    ///
    /// Writes OUTDIR/stems/harmonic.wav, stems/percussive.wav, stems/residual.wav (the mixture
    /// minus both: what a margin above 1 leaves), optionally the masks, and run.json.
    Hpss(decompose::HpssArgs),
    /// The visual report of a finished run: OUTDIR/report.html and its images in OUTDIR/report/,
    /// from the run's run.json (its inputs checked against their SHA-256, its analysis
    /// repeated); nothing else in OUTDIR changes.
    Report(report::ReportArgs),
    /// Evaluate transcriptions (notes, as mir_eval does) and separations (stems, as BSS Eval
    /// does) against references, and a transcription against its score.
    #[command(subcommand)]
    Eval(eval::EvalCommand),
}

/// Runs the parsed command.
pub fn run(cli: &Cli) -> Result<(), Error> {
    let g = &cli.global;
    match &cli.command {
        Command::Inspect(args) => inspect::run(g, args),
        Command::Align(args) => analyse::align(g, args),
        Command::Convert(args) => inspect::convert(g, args),
        Command::Transcribe(args) => analyse::run(g, Task::Transcribe, &args.analysis, None),
        Command::Separate(args) => {
            analyse::run(g, Task::Separate, &args.analysis, Some(&args.stems))
        }
        Command::Run(args) => analyse::run(g, Task::Run, &args.analysis, Some(&args.stems)),
        Command::Batch(args) => batch::run(g, args),
        Command::Decompose(args) => decompose::decompose(g, args),
        Command::Hpss(args) => decompose::hpss(g, args),
        Command::Report(args) => report::run(g, args),
        Command::Eval(cmd) => eval::run(g, cmd),
    }
}

/// Prints the readers' warnings on stderr, unless quiet.
fn warn(global: &Global, warnings: &[String]) {
    if !global.quiet {
        for w in warnings {
            eprintln!("warning: {w}");
        }
    }
}

/// The most worker threads `--threads` may ask for.
const MAX_THREADS: usize = 256;

/// Caps rayon's global pool at `threads` workers (0: one per core; at most [`MAX_THREADS`]).
/// Called before any parallel work, so the pool cannot exist yet and building it cannot fail.
fn set_threads(threads: usize) -> Result<(), Error> {
    if threads > MAX_THREADS {
        return Err(Error::Param(format!(
            "--threads {threads}: must be at most {MAX_THREADS}"
        )));
    }
    if threads > 0 {
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global();
    }
    Ok(())
}
