//! `batch`: a manifest of recordings through `run`, each row's job built from the same options
//! `run` takes (the batch's, after `--`, then the row's own), run by [`scorenmf::batch`];
//! `batch summarize` merges the finished rows.

use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};

use scorenmf::batch::{self, BatchOptions, Counts, Outcome, Row, Shard};
use scorenmf::job::{Job, Task};
use scorenmf::Error;

use super::{set_threads, Cli, Command, Global};

/// `batch`'s arguments.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BatchArgs {
    #[command(subcommand)]
    command: Option<BatchCommand>,
    /// Manifest: CSV or TSV with a header naming `audio`, `score` and optionally `name`,
    /// `reference_notes`, `reference_stems`, `options` (options of `run` for that row);
    /// relative paths from the manifest's folder.
    #[arg(required = true)]
    manifest: Option<PathBuf>,
    /// Output root: a folder per row, logs/, failures.csv.
    #[arg(short, long, required = true)]
    outdir: Option<PathBuf>,
    /// Rows run at once [default: the cores, fewer if the memory would not hold them].
    #[arg(long)]
    jobs: Option<usize>,
    /// Run the rows whose last run failed again.
    #[arg(long)]
    retry_failed: bool,
    /// Run every row, done or not.
    #[arg(long)]
    force: bool,
    /// Run every N-th row from I (0-based), e.g. 0/4; inside a Slurm job array the shard is
    /// the array task's (SLURM_ARRAY_TASK_ID of SLURM_ARRAY_TASK_COUNT, or of MIN..MAX).
    #[arg(long, value_parser = Shard::parse, value_name = "I/N")]
    shard: Option<Shard>,
    /// Worker threads shared by the rows (0: one per core); the outputs do not depend on it.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Options of `run` for every row, after `--` (e.g. `-- --align --by instrument,pitch`).
    #[arg(last = true, allow_hyphen_values = true)]
    run_options: Vec<String>,
}

#[derive(Subcommand)]
enum BatchCommand {
    /// Merge every finished row under OUTROOT into summary.csv and summary.json: notes played
    /// and not played, timing, and the metrics of `eval notes` / `eval stems` where the
    /// manifest gave references; the mean and median over the rows.
    Summarize {
        /// The batch's output root.
        outroot: PathBuf,
    },
}

/// Runs `batch`.
pub fn run(global: &Global, args: &BatchArgs) -> Result<(), Error> {
    if let Some(BatchCommand::Summarize { outroot }) = &args.command {
        let s = batch::summarize(outroot)?;
        if !global.quiet {
            eprintln!(
                "{} rows summarized ({} failed); wrote {} and {}",
                s.rows.len(),
                s.failed,
                outroot.join("summary.csv").display(),
                outroot.join("summary.json").display()
            );
        }
        return Ok(());
    }
    let (Some(manifest), Some(outroot)) = (&args.manifest, &args.outdir) else {
        return Err(Error::Param("batch needs a MANIFEST and -o OUTROOT".into()));
    };
    set_threads(args.threads)?;
    let rows = batch::read_manifest(manifest)?;
    let shard = args
        .shard
        .or_else(|| Shard::from_slurm(|k| std::env::var(k).ok()));
    let opts = BatchOptions {
        jobs: args.jobs.unwrap_or_else(|| batch::default_jobs(&rows)),
        retry_failed: args.retry_failed,
        force: args.force,
        shard,
    };
    if opts.jobs == 0 || opts.jobs > 1024 {
        return Err(Error::Param(format!(
            "--jobs {}: must be 1 to 1024",
            opts.jobs
        )));
    }
    let prepared: Vec<(Row, Result<Job, Error>)> = rows
        .into_iter()
        .map(|row| {
            let job = row_job(manifest, &row, &args.run_options);
            (row, job)
        })
        .collect();
    let start = Instant::now();
    let quiet = global.quiet;
    let progress = move |row: &Row, outcome: &Outcome, c: Counts| {
        if quiet {
            return;
        }
        let finished = c.done + c.failed + c.skipped;
        let what = match outcome {
            Outcome::Done => "done",
            Outcome::Failed => "FAILED",
            Outcome::Skipped => "skipped (done before)",
            Outcome::FailedBefore => "skipped (failed before; --retry-failed runs it)",
        };
        let eta = if c.done > 0 && finished < c.total {
            let per = start.elapsed().as_secs_f64() / c.done as f64;
            format!(", ETA {:.0} s", per * (c.total - finished) as f64)
        } else {
            String::new()
        };
        eprintln!(
            "[{finished}/{}] {} {what} — {} done, {} failed, {} skipped{eta}",
            c.total, row.name, c.done, c.failed, c.skipped
        );
    };
    let outcomes = batch::run_batch(outroot, prepared, &opts, &progress)?;
    let failed = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Failed | Outcome::FailedBefore))
        .count();
    if failed > 0 {
        return Err(Error::Output {
            path: outroot.join("failures.csv"),
            msg: format!(
                "{failed} of {} rows failed (each row's error is in logs/)",
                outcomes.len()
            ),
        });
    }
    if !global.quiet {
        eprintln!("{} rows; wrote {}", outcomes.len(), outroot.display());
    }
    Ok(())
}

/// The row's job, from `run`'s options: the batch's, then the row's own.
fn row_job(manifest: &std::path::Path, row: &Row, common: &[String]) -> Result<Job, Error> {
    let mut argv: Vec<String> = vec![
        "scorenmf".into(),
        "run".into(),
        row.audio.display().to_string(),
        row.score.display().to_string(),
        "-o".into(),
        "row".into(),
    ];
    argv.extend(common.iter().cloned());
    argv.extend(row.options.iter().cloned());
    let cli = Cli::try_parse_from(&argv).map_err(|e| {
        let text = e.to_string();
        let first = text
            .lines()
            .next()
            .unwrap_or("bad options")
            .trim_start_matches("error: ");
        Error::Csv {
            path: manifest.to_path_buf(),
            line: Some(row.line),
            column: Some("options".into()),
            msg: first.to_string(),
        }
    })?;
    match &cli.command {
        Command::Run(args) => {
            let mut job = super::analyse::job_of(Task::Run, &args.analysis, Some(&args.stems));
            // One profile path would be shared by every row.
            job.profile = None;
            Ok(job)
        }
        _ => unreachable!("parsed as `run`"),
    }
}
