//! `scorenmf report OUTDIR`: the visual report of a finished run, from its run.json.

use std::path::PathBuf;

use clap::Args;

use scorenmf::job::{self, ReportRequest};
use scorenmf::Error;

use super::analyse::Progress;
use super::{set_threads, Global};

/// `report`'s arguments.
#[derive(Args)]
pub struct ReportArgs {
    /// The output folder of a finished `transcribe`, `separate`, `run` or `align` (holding its
    /// run.json).
    outdir: PathBuf,
    /// A reference transcription (CSV or MIDI): `eval notes`' metrics, and the missed and the
    /// wrong notes marked on the spectrogram.
    #[arg(long, value_name = "NOTES")]
    reference: Option<PathBuf>,
    /// Reference stems (`separate`, `run`): `eval stems`' metrics against a folder of WAV files
    /// named as one grouping's stems, or of grouping folders.
    #[arg(long, value_name = "DIR")]
    reference_stems: Option<PathBuf>,
    /// Print more detail: the time each stage took.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Worker threads (0: one per core); the page does not depend on it.
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

/// Runs `report` and prints where the page is.
pub fn run(global: &Global, args: &ReportArgs) -> Result<(), Error> {
    set_threads(args.threads)?;
    let request = ReportRequest {
        reference: args.reference.clone(),
        reference_stems: args.reference_stems.clone(),
    };
    let progress = Progress::new(global.quiet, args.verbose > 0);
    let summary = job::rewrite_report(&args.outdir, request, &progress)?;
    if !global.quiet {
        eprintln!(
            "wrote {}",
            summary.outdir.join(scorenmf::report::PAGE).display()
        );
    }
    Ok(())
}
