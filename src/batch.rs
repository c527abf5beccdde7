//! Corpus runs: a manifest of recordings, each row one [`Job`] run by [`job::run`], resumable
//! and fault-tolerant, on one machine (`--jobs N`) or as shards of a Slurm job array.
//!
//! Each row writes into a folder of its own under the output root, atomically: the job runs
//! into `OUTROOT/.partial-NAME-PID`, which gets the done-marker `batch.json` (the row, the
//! job's parameters, the inputs' SHA-256 and the key made of them) and is then renamed to
//! `OUTROOT/NAME`. A rerun skips every row whose marker holds the same key (changed inputs or
//! options run again); a row that failed leaves `OUTROOT/.failed/NAME.json` with its key and
//! error, and is skipped too unless `retry_failed` (or the key changed). A killed batch leaves at
//! most some `.partial-…` folders, removed when their row runs again. Every row's warnings and
//! error go to `OUTROOT/logs/NAME.log`; `OUTROOT/failures.csv` lists the rows whose last run
//! failed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::io::atomic;
use crate::io::outputs::InputFile;
use crate::job::{self, Job, Observer};

/// One row of the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// 1-based line in the manifest.
    pub line: u64,
    /// The row's folder under the output root.
    pub name: String,
    pub audio: PathBuf,
    pub score: PathBuf,
    pub reference_notes: Option<PathBuf>,
    pub reference_stems: Option<PathBuf>,
    /// Options of `run` for this row only, after the batch's own.
    pub options: Vec<String>,
}

fn manifest_error(path: &Path, line: Option<u64>, column: Option<&str>, msg: String) -> Error {
    Error::Csv {
        path: path.to_path_buf(),
        line,
        column: column.map(str::to_string),
        msg,
    }
}

/// Reads a manifest: CSV, or TSV (a `.tsv` name or a tab in the header), with a header naming
/// the columns `audio` and `score` and optionally `name`, `reference_notes`,
/// `reference_stems`, `options` (space-separated options of `run`). Relative paths are taken
/// from the manifest's folder. Names default to the audio file's stem and must be distinct.
pub fn read_manifest(path: &Path) -> Result<Vec<Row>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::read(path, e))?;
    let first = text.lines().next().unwrap_or("");
    let tsv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("tsv"))
        || first.contains('\t');
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(if tsv { b'\t' } else { b',' })
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| manifest_error(path, Some(1), None, e.to_string()))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let known = [
        "audio",
        "score",
        "name",
        "reference_notes",
        "reference_stems",
        "options",
    ];
    if let Some(h) = headers
        .iter()
        .find(|h| !known.iter().any(|k| h.eq_ignore_ascii_case(k)))
    {
        return Err(manifest_error(
            path,
            Some(1),
            Some(h),
            format!("unknown column (the columns are {})", known.join(", ")),
        ));
    }
    let (Some(ia), Some(is)) = (col("audio"), col("score")) else {
        return Err(manifest_error(
            path,
            Some(1),
            None,
            "the header must name the columns `audio` and `score`".into(),
        ));
    };
    let base = path.parent().unwrap_or(Path::new(""));
    let at = |p: &str| -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };
    let mut rows: Vec<Row> = Vec::new();
    for rec in reader.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map(|p| p.line());
            manifest_error(path, line, None, e.to_string())
        })?;
        let line = rec.position().map_or(0, |p| p.line());
        let get = |i: Option<usize>| i.and_then(|i| rec.get(i)).filter(|s| !s.is_empty());
        let audio = get(Some(ia))
            .ok_or_else(|| manifest_error(path, Some(line), Some("audio"), "empty".into()))?;
        let score = get(Some(is))
            .ok_or_else(|| manifest_error(path, Some(line), Some("score"), "empty".into()))?;
        let name = match get(col("name")) {
            Some(n) => n.to_string(),
            None => Path::new(audio)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        let name = crate::tasks::separate::sanitize(&name);
        if let Some(other) = rows.iter().find(|r| r.name == name) {
            return Err(manifest_error(
                path,
                Some(line),
                Some("name"),
                format!(
                    "{name:?} is the name of line {} too; give each row its own",
                    other.line
                ),
            ));
        }
        rows.push(Row {
            line,
            name,
            audio: at(audio),
            score: at(score),
            reference_notes: get(col("reference_notes")).map(at),
            reference_stems: get(col("reference_stems")).map(at),
            options: get(col("options"))
                .map(|o| o.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
        });
    }
    if rows.is_empty() {
        return Err(manifest_error(path, None, None, "holds no rows".into()));
    }
    Ok(rows)
}

/// Every `count`-th row from `index` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// `I/N`.
    pub fn parse(s: &str) -> std::result::Result<Shard, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("expected I/N, got '{s}'"))?;
        let num = |x: &str| {
            x.trim()
                .parse::<usize>()
                .map_err(|_| format!("'{x}' is not a count"))
        };
        let (index, count) = (num(i)?, num(n)?);
        if count == 0 || index >= count {
            return Err(format!("shard {index}/{count}: need 0 ≤ I < N"));
        }
        Ok(Shard { index, count })
    }

    /// The shard of this task of a Slurm job array: `SLURM_ARRAY_TASK_ID` and
    /// `SLURM_ARRAY_TASK_COUNT`, or `SLURM_ARRAY_TASK_MIN`/`MAX` (the id counted from MIN).
    pub fn from_slurm(env: impl Fn(&str) -> Option<String>) -> Option<Shard> {
        let num = |k: &str| env(k).and_then(|v| v.trim().parse::<usize>().ok());
        let id = num("SLURM_ARRAY_TASK_ID")?;
        let (index, count) = match (num("SLURM_ARRAY_TASK_MIN"), num("SLURM_ARRAY_TASK_MAX")) {
            (Some(lo), Some(hi)) if hi >= lo && id >= lo => (id - lo, hi - lo + 1),
            _ => (id, num("SLURM_ARRAY_TASK_COUNT")?),
        };
        (index < count).then_some(Shard { index, count })
    }

    pub fn takes(&self, i: usize) -> bool {
        i % self.count == self.index
    }
}

/// How a batch runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchOptions {
    /// Rows run at once.
    pub jobs: usize,
    /// Run rows whose last run failed again.
    pub retry_failed: bool,
    /// Run every row, done or not.
    pub force: bool,
    pub shard: Option<Shard>,
}

/// What happened to one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Done,
    Failed,
    /// Done before with the same inputs and options.
    Skipped,
    /// Failed before with the same inputs and options (not retried).
    FailedBefore,
}

/// The batch's counts so far, for progress.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: usize,
    pub done: usize,
    pub failed: usize,
    pub skipped: usize,
}

/// The done-marker `batch.json` of a finished row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Marker {
    pub scorenmf_version: String,
    pub key: String,
    pub row: Row,
    /// The job's parameters as the key saw them.
    pub params: String,
    pub inputs: Vec<MarkerInput>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MarkerInput {
    pub path: PathBuf,
    pub sha256: String,
}

/// The failure marker `.failed/NAME.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Failure {
    key: String,
    line: u64,
    error: String,
}

/// The done-marker's file name inside a row's folder.
pub const MARKER: &str = "batch.json";

/// The key of a row: the version, the job's parameters (everything but where it writes; the
/// row's options when they make no job) and the inputs' SHA-256 (or that they are unreadable).
fn key_of(job: Option<&Job>, row: &Row) -> (String, String, Vec<MarkerInput>) {
    let params = match job {
        Some(job) => {
            let mut bare = job.clone();
            bare.outdir = PathBuf::new();
            bare.profile = None;
            format!(
                "{:?} {:?}",
                bare.task,
                (&bare.config, &bare.stems, &bare.align, bare.repeats)
            )
        }
        None => format!("options {:?}", row.options),
    };
    let inputs: Vec<MarkerInput> = [&row.audio, &row.score]
        .iter()
        .map(|p| MarkerInput {
            path: p.to_path_buf(),
            sha256: InputFile::describe(p).map_or_else(|_| "unreadable".into(), |d| d.sha256),
        })
        .collect();
    let mut h = Sha256::new();
    h.update(env!("CARGO_PKG_VERSION"));
    h.update(params.as_bytes());
    for i in &inputs {
        h.update(i.sha256.as_bytes());
    }
    let key = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    (key, params, inputs)
}

/// What a row's job reports, into its log.
struct RowLog {
    lines: Mutex<Vec<String>>,
}

impl Observer for RowLog {
    fn warning(&self, message: &str) {
        self.lines
            .lock()
            .expect("no panics while held")
            .push(format!("warning: {message}"));
    }
    fn finished(&self, stage: &str) {
        self.lines
            .lock()
            .expect("no panics while held")
            .push(format!("finished: {stage}"));
    }
}

/// Runs the rows (each with its job, or the error that building it gave) under `outroot`.
/// `progress` is called after each row. Returns every row's outcome, in manifest order.
pub fn run_batch(
    outroot: &Path,
    rows: Vec<(Row, Result<Job>)>,
    opts: &BatchOptions,
    progress: &(dyn Fn(&Row, &Outcome, Counts) + Sync),
) -> Result<Vec<(Row, Outcome)>> {
    std::fs::create_dir_all(outroot).map_err(|e| Error::write(outroot, e))?;
    let picked: Vec<(Row, Result<Job>)> = rows
        .into_iter()
        .enumerate()
        .filter(|(i, _)| opts.shard.is_none_or(|s| s.takes(*i)))
        .map(|(_, r)| r)
        .collect();
    let counts = Mutex::new(Counts {
        total: picked.len(),
        ..Counts::default()
    });
    let next = AtomicUsize::new(0);
    let outcomes: Mutex<Vec<Option<Outcome>>> = Mutex::new(vec![None; picked.len()]);
    let work = || loop {
        let i = next.fetch_add(1, Ordering::SeqCst);
        let Some((row, job)) = picked.get(i) else {
            break;
        };
        let outcome = run_row(outroot, row, job, opts);
        let c = {
            let mut c = counts.lock().expect("no panics while held");
            match outcome {
                Outcome::Done => c.done += 1,
                Outcome::Failed | Outcome::FailedBefore => c.failed += 1,
                Outcome::Skipped => c.skipped += 1,
            }
            *c
        };
        progress(row, &outcome, c);
        outcomes.lock().expect("no panics while held")[i] = Some(outcome);
    };
    std::thread::scope(|s| {
        for _ in 0..opts.jobs.max(1) {
            s.spawn(work);
        }
    });
    let outcomes = outcomes.into_inner().expect("no panics while held");
    let result: Vec<(Row, Outcome)> = picked
        .into_iter()
        .zip(outcomes)
        .map(|((row, _), o)| (row, o.expect("every row ran")))
        .collect();
    write_failures(outroot)?;
    Ok(result)
}

/// Runs one row unless its markers say it need not.
fn run_row(outroot: &Path, row: &Row, job: &Result<Job>, opts: &BatchOptions) -> Outcome {
    let log_path = outroot.join("logs").join(format!("{}.log", row.name));
    let failed_path = outroot.join(".failed").join(format!("{}.json", row.name));
    let fail = |key: &str, msg: String, log: Vec<String>| {
        let mut text = log.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&format!("error: {msg}\n"));
        let _ = atomic::write_bytes(&log_path, text.as_bytes());
        let f = Failure {
            key: key.to_string(),
            line: row.line,
            error: msg,
        };
        let _ = crate::io::outputs::write_json(&failed_path, &f);
        Outcome::Failed
    };
    let (key, params, inputs) = key_of(job.as_ref().ok(), row);
    let dest = outroot.join(&row.name);
    if !opts.force {
        if read_marker(&dest).is_some_and(|m| m.key == key) {
            return Outcome::Skipped;
        }
        let failed: Option<Failure> = std::fs::read_to_string(&failed_path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        if !opts.retry_failed && failed.is_some_and(|f| f.key == key) {
            return Outcome::FailedBefore;
        }
    }
    let job = match job {
        Ok(j) => j,
        Err(e) => return fail(&key, e.to_string(), Vec::new()),
    };
    if dest.exists() && !dest.is_dir() {
        let msg = format!(
            "{}: exists and is not a row's folder; give the row another name",
            dest.display()
        );
        return fail(&key, msg, Vec::new());
    }
    remove_leftovers(outroot, &row.name);
    let partial = outroot.join(format!(".partial-{}-{}", row.name, std::process::id()));
    let mut job = job.clone();
    job.outdir = partial.clone();
    let log = RowLog {
        lines: Mutex::new(Vec::new()),
    };
    let result = job::run(&job, &log).and_then(|_| {
        let marker = Marker {
            scorenmf_version: env!("CARGO_PKG_VERSION").into(),
            key: key.clone(),
            row: row.clone(),
            params,
            inputs,
        };
        crate::io::outputs::write_json(&partial.join(MARKER), &marker)?;
        move_into_place(&partial, &dest, outroot, &row.name)
    });
    let lines = log.lines.into_inner().expect("no panics while held");
    match result {
        Ok(()) => {
            let _ = std::fs::remove_file(&failed_path);
            let mut text = lines.join("\n");
            text.push('\n');
            let _ = atomic::write_bytes(&log_path, text.as_bytes());
            Outcome::Done
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&partial);
            fail(&key, e.to_string(), lines)
        }
    }
}

/// Replaces `dest` by `partial`: the old folder moved aside first, then removed.
fn move_into_place(partial: &Path, dest: &Path, outroot: &Path, name: &str) -> Result<()> {
    let old = outroot.join(format!(".old-{name}-{}", std::process::id()));
    if dest.exists() && !dest.is_dir() {
        return Err(Error::Output {
            path: dest.to_path_buf(),
            msg: "exists and is not a row's folder; give the row another name".into(),
        });
    }
    if dest.exists() {
        std::fs::rename(dest, &old).map_err(|e| Error::write(dest, e))?;
    }
    std::fs::rename(partial, dest).map_err(|e| Error::write(dest, e))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// Removes what killed runs of row `name` left: `.partial-NAME-*` and `.old-NAME-*`.
fn remove_leftovers(outroot: &Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(outroot) else {
        return;
    };
    for e in entries.flatten() {
        let f = e.file_name().to_string_lossy().into_owned();
        for prefix in [".partial-", ".old-"] {
            if let Some(rest) = f.strip_prefix(prefix).and_then(|r| r.strip_prefix(name)) {
                if rest
                    .strip_prefix('-')
                    .is_some_and(|pid| pid.chars().all(|c| c.is_ascii_digit()))
                {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
}

/// A row folder's done-marker, if it has a readable one.
pub fn read_marker(dir: &Path) -> Option<Marker> {
    let text = std::fs::read_to_string(dir.join(MARKER)).ok()?;
    serde_json::from_str(&text).ok()
}

/// `failures.csv`: every row with a failure marker (from any shard), by line.
fn write_failures(outroot: &Path) -> Result<()> {
    let mut failures: Vec<(String, Failure)> = std::fs::read_dir(outroot.join(".failed"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.path().file_stem()?.to_string_lossy().into_owned();
            let f: Failure = serde_json::from_str(&std::fs::read_to_string(e.path()).ok()?).ok()?;
            Some((name, f))
        })
        .collect();
    failures.sort_by_key(|(n, f)| (f.line, n.clone()));
    let mut w = csv::Writer::from_writer(Vec::new());
    let io = |e: csv::Error| Error::write(&outroot.join("failures.csv"), std::io::Error::other(e));
    w.write_record(["line", "name", "error"]).map_err(io)?;
    for (name, f) in &failures {
        w.write_record([f.line.to_string(), name.clone(), f.error.clone()])
            .map_err(io)?;
    }
    let bytes = w.into_inner().map_err(|e| io(e.into_error().into()))?;
    atomic::write_bytes(&outroot.join("failures.csv"), &bytes)
}

/// The default number of rows at once: the cores, fewer if the memory would not hold them
/// (about 20 MB per minute of audio and 150 MB besides, per row, for the longest recording).
pub fn default_jobs(rows: &[Row]) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let longest_minutes = rows
        .iter()
        .filter_map(|r| std::fs::metadata(&r.audio).ok())
        .map(|m| m.len() as f64 / (44_100.0 * 4.0 * 60.0))
        .fold(1.0, f64::max);
    let per_row = 150e6 + 20e6 * longest_minutes;
    let available = available_memory().unwrap_or(f64::INFINITY);
    let by_memory = ((0.8 * available) / per_row).floor().max(1.0) as usize;
    cores.min(by_memory).max(1)
}

/// MemAvailable from /proc/meminfo, bytes.
fn available_memory() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0)
}

/// One row's figures in the corpus summary (NaN where they do not apply).
#[derive(Debug, Clone, Serialize)]
pub struct RowSummary {
    pub name: String,
    pub line: u64,
    pub score_notes: f64,
    pub played: f64,
    pub not_played: f64,
    /// Median and 90th percentile of |detected − score onset|, seconds (against the aligned
    /// score with `--align`).
    pub median_abs_shift: f64,
    pub p90_abs_shift: f64,
    /// With reference notes: `eval notes`' onset-only precision, recall, F, and the F with
    /// offsets (mir_eval's defaults).
    pub onset_precision: f64,
    pub onset_recall: f64,
    pub onset_f: f64,
    pub onset_offset_f: f64,
    /// With reference stems: `eval stems`' means over the stems of `stems/instrument/`, dB.
    pub sdr: f64,
    pub sir: f64,
    pub sar: f64,
    /// What could not be evaluated, if anything.
    pub note: String,
}

/// The columns of [`RowSummary`] that are figures, in order.
const FIGURES: [&str; 12] = [
    "score_notes",
    "played",
    "not_played",
    "median_abs_shift",
    "p90_abs_shift",
    "onset_precision",
    "onset_recall",
    "onset_f",
    "onset_offset_f",
    "sdr",
    "sir",
    "sar",
];

impl RowSummary {
    fn figures(&self) -> [f64; 12] {
        [
            self.score_notes,
            self.played,
            self.not_played,
            self.median_abs_shift,
            self.p90_abs_shift,
            self.onset_precision,
            self.onset_recall,
            self.onset_f,
            self.onset_offset_f,
            self.sdr,
            self.sir,
            self.sar,
        ]
    }
}

/// The corpus summary: every finished row, and the mean and median of each figure over the
/// rows that have it.
#[derive(Debug, Clone, Serialize)]
pub struct CorpusSummary {
    pub rows: Vec<RowSummary>,
    pub mean: std::collections::BTreeMap<String, f64>,
    pub median: std::collections::BTreeMap<String, f64>,
    /// Rows whose last run failed.
    pub failed: usize,
}

/// Merges every finished row under `outroot` into `summary.csv` and `summary.json`.
pub fn summarize(outroot: &Path) -> Result<CorpusSummary> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(outroot)
        .map_err(|e| Error::read(outroot, e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join(MARKER).is_file())
        .collect();
    dirs.sort();
    let mut rows: Vec<RowSummary> = dirs
        .iter()
        .filter_map(|d| read_marker(d).map(|m| row_summary(d, &m)))
        .collect();
    rows.sort_by_key(|r| (r.line, r.name.clone()));
    let mut mean = std::collections::BTreeMap::new();
    let mut median = std::collections::BTreeMap::new();
    for (i, name) in FIGURES.iter().enumerate() {
        let v: Vec<f64> = rows
            .iter()
            .map(|r| r.figures()[i])
            .filter(|x| x.is_finite())
            .collect();
        if v.is_empty() {
            continue;
        }
        mean.insert(name.to_string(), v.iter().sum::<f64>() / v.len() as f64);
        median.insert(name.to_string(), crate::stats::quantile(v, 0.5));
    }
    let failed = std::fs::read_dir(outroot.join(".failed")).map_or(0, |d| d.count());
    let summary = CorpusSummary {
        rows,
        mean,
        median,
        failed,
    };
    write_summary_csv(&outroot.join("summary.csv"), &summary)?;
    crate::io::outputs::write_json(&outroot.join("summary.json"), &summary)?;
    Ok(summary)
}

fn write_summary_csv(path: &Path, s: &CorpusSummary) -> Result<()> {
    let io = |e: csv::Error| Error::write(path, std::io::Error::other(e));
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["name".to_string(), "line".to_string()];
    header.extend(FIGURES.iter().map(|f| f.to_string()));
    header.push("note".into());
    w.write_record(&header).map_err(io)?;
    let fmt = |x: f64| {
        if x.is_finite() {
            format!("{x}")
        } else {
            String::new()
        }
    };
    for r in &s.rows {
        let mut rec = vec![r.name.clone(), r.line.to_string()];
        rec.extend(r.figures().iter().map(|&x| fmt(x)));
        rec.push(r.note.clone());
        w.write_record(&rec).map_err(io)?;
    }
    for (label, m) in [("mean", &s.mean), ("median", &s.median)] {
        let mut rec = vec![format!("({label})"), String::new()];
        rec.extend(
            FIGURES
                .iter()
                .map(|f| m.get(*f).map_or(String::new(), |&x| fmt(x))),
        );
        rec.push(String::new());
        w.write_record(&rec).map_err(io)?;
    }
    let bytes = w.into_inner().map_err(|e| io(e.into_error().into()))?;
    atomic::write_bytes(path, &bytes)
}

/// One finished row's figures from its folder.
fn row_summary(dir: &Path, m: &Marker) -> RowSummary {
    let nan = f64::NAN;
    let mut r = RowSummary {
        name: m.row.name.clone(),
        line: m.row.line,
        score_notes: nan,
        played: nan,
        not_played: nan,
        median_abs_shift: nan,
        p90_abs_shift: nan,
        onset_precision: nan,
        onset_recall: nan,
        onset_f: nan,
        onset_offset_f: nan,
        sdr: nan,
        sir: nan,
        sar: nan,
        note: String::new(),
    };
    let mut notes = Vec::new();
    let json = |p: &Path| -> Option<serde_json::Value> {
        serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()
    };
    if let Some(run) = json(&dir.join("run.json")) {
        r.played = run["results"]["played"].as_f64().unwrap_or(nan);
        r.not_played = run["results"]["not_played"].as_f64().unwrap_or(nan);
        r.score_notes = r.played + r.not_played;
    }
    let notes_json = dir.join("notes.json");
    if let Ok(text) = std::fs::read_to_string(&notes_json) {
        let aligned = dir.join("aligned_score.csv");
        let score_path = if aligned.is_file() {
            aligned
        } else {
            m.row.score.clone()
        };
        match crate::io::score::read_score(&score_path)
            .and_then(|s| crate::eval::score_diff::score_diff(&s, &notes_json, &text))
        {
            Ok(d) => {
                r.median_abs_shift = d.timing.median_abs_shift;
                r.p90_abs_shift = d.timing.p90_abs_shift;
            }
            Err(e) => notes.push(format!("timing: {e}")),
        }
    }
    if let Some(reference) = &m.row.reference_notes {
        match note_scores(reference, &dir.join("notes.csv")) {
            Ok((onset, offset)) => {
                r.onset_precision = onset.precision;
                r.onset_recall = onset.recall;
                r.onset_f = onset.f_measure;
                r.onset_offset_f = offset.f_measure;
            }
            Err(e) => notes.push(format!("notes: {e}")),
        }
    }
    if let Some(reference) = &m.row.reference_stems {
        match stem_scores(reference, &dir.join("stems/instrument")) {
            Ok((sdr, sir, sar)) => (r.sdr, r.sir, r.sar) = (sdr, sir, sar),
            Err(e) => notes.push(format!("stems: {e}")),
        }
    }
    r.note = notes.join("; ");
    r
}

/// Onset-only and onset+offset scores of `estimate` against `reference` (mir_eval's defaults).
fn note_scores(
    reference: &Path,
    estimate: &Path,
) -> Result<(
    crate::eval::notes::NoteScores,
    crate::eval::notes::NoteScores,
)> {
    use crate::eval::notes::{evaluate, EvalNote, NoteTolerances};
    let to_eval = |p: &Path| -> Result<Vec<EvalNote>> {
        Ok(crate::io::score::read_score(p)?
            .notes
            .iter()
            .map(EvalNote::from_note)
            .collect())
    };
    let (r, e) = (to_eval(reference)?, to_eval(estimate)?);
    let t = NoteTolerances::default();
    let onset = NoteTolerances {
        offset_ratio: None,
        ..t
    };
    Ok((evaluate(&r, &e, &onset), evaluate(&r, &e, &t)))
}

/// Mean SDR, SIR, SAR of the stems of `estimate` against `reference` (matched by name).
fn stem_scores(reference: &Path, estimate: &Path) -> Result<(f64, f64, f64)> {
    use crate::eval::stem_files;
    let pairs = stem_files::stem_pairs(reference, estimate)?;
    let (_, refs, ests) = stem_files::load_pairs(&pairs)?;
    let s = crate::eval::stems::bss_eval_sources(&refs, &ests)?;
    let mean = |f: fn(&crate::eval::stems::SourceScores) -> f64| {
        s.iter().map(f).sum::<f64>() / s.len() as f64
    };
    Ok((mean(|x| x.sdr), mean(|x| x.sir), mean(|x| x.sar)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_from_arguments_and_slurm() {
        assert_eq!(Shard::parse("1/3"), Ok(Shard { index: 1, count: 3 }));
        assert!(Shard::parse("3/3").is_err() && Shard::parse("x").is_err());
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(a, _)| *a == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let s = Shard::from_slurm(env(&[
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]));
        assert_eq!(s, Some(Shard { index: 2, count: 4 }));
        let s = Shard::from_slurm(env(&[
            ("SLURM_ARRAY_TASK_ID", "11"),
            ("SLURM_ARRAY_TASK_MIN", "10"),
            ("SLURM_ARRAY_TASK_MAX", "12"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ]));
        assert_eq!(s, Some(Shard { index: 1, count: 3 }));
        assert_eq!(Shard::from_slurm(env(&[])), None);
        let taken: Vec<usize> = (0..7)
            .filter(|&i| Shard { index: 1, count: 3 }.takes(i))
            .collect();
        assert_eq!(taken, vec![1, 4]);
    }

    #[test]
    fn manifests_with_relative_paths_names_and_errors() {
        let dir = std::env::temp_dir().join(format!("scorenmf-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let m = dir.join("m.tsv");
        std::fs::write(&m, "audio\tscore\toptions\n# a comment\na/x.wav\ts.csv\t--align --by pitch\n/abs/y.wav\ts.mid\t\n").unwrap();
        let rows = read_manifest(&m).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].audio, dir.join("a/x.wav"));
        assert_eq!(rows[0].name, "x");
        assert_eq!(rows[0].options, vec!["--align", "--by", "pitch"]);
        assert_eq!(rows[1].audio, PathBuf::from("/abs/y.wav"));
        std::fs::write(&m, "audio\tscore\nx.wav\ts.csv\nsub/x.wav\tt.csv\n").unwrap();
        let e = read_manifest(&m).unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("\"x\""), "{e}");
        std::fs::write(&m, "audio\tscores\nx.wav\ts.csv\n").unwrap();
        let e = read_manifest(&m).unwrap_err().to_string();
        assert!(e.contains("unknown column"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
