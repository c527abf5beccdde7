//! One whole run of an analysing command: read the inputs, factorize and transcribe, write the
//! transcription and/or the stems, then `run.json` (and the profile, if asked), each file
//! atomically. The `scorenmf` binary only turns its arguments into a [`Job`]; any other runner
//! (a batch over a corpus, a report) calls [`run`] the same way.
//!
//! The stages, in order:
//!
//! 1. decode the recording and read the score ([`crate::io`]);
//! 2. the analysis ([`pipeline::run_transcription`]): STFT, W₀, H₀, constrained NMF, note events;
//! 3. with stems requested, the masks' factorization and the stems ([`pipeline::separate`]);
//! 4. with notes requested, `notes.csv`, `notes.mid`, `notes.json` ([`outputs::write_transcription`]);
//! 5. `run.json`: every parameter, the inputs' SHA-256, headline results ([`RunRecord`]);
//! 6. with a profile requested, each stage's wall time, CPU time and peak memory.
//!
//! Stages 3–5 write into a [`Staging`] folder inside the output folder, which replaces the
//! job's old outputs only once all of them are written (`run.json` last); a job that fails or
//! is killed leaves the old outputs as they were.

mod rerun;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::align::{self, AlignParams, Alignment};
use crate::error::{Error, Result};
use crate::io::atomic::Staging;
use crate::io::audio::{self, Audio, WavEncoding};
use crate::io::outputs::{self, InputFile, RunRecord};
use crate::io::score::{self, Note, Repeats, Score};
use crate::pipeline::{self, Config, TranscribeOutput};
use crate::profile;
use crate::report;
use crate::tasks::separate::{By, StemFile};

pub use rerun::rewrite_report;

/// Which analysing command a job is; named in `run.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Note events only.
    Transcribe,
    /// Stems only.
    Separate,
    /// Note events and stems.
    Run,
    /// The score aligned to the recording only.
    Align,
}

impl Task {
    /// The command's name, as `run.json` records it.
    pub fn name(self) -> &'static str {
        match self {
            Task::Transcribe => "transcribe",
            Task::Separate => "separate",
            Task::Run => "run",
            Task::Align => "align",
        }
    }

    /// Whether the task writes notes.csv, notes.mid and notes.json.
    pub fn writes_notes(self) -> bool {
        matches!(self, Task::Transcribe | Task::Run)
    }
}

/// What stems to write.
#[derive(Debug, Clone, PartialEq)]
pub struct StemOutputs {
    /// Groupings, each written under `stems/<grouping>/`.
    pub by: Vec<By>,
    /// Per-note stems at the recording's full length instead of cropped to the note.
    pub full_length: bool,
    /// Sample encoding; `None`: like the input ([`WavEncoding::like`]).
    pub encoding: Option<WavEncoding>,
}

/// Aligning the score to the recording first ([`crate::align`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlignRequest {
    pub params: AlignParams,
    /// Go on when the alignment says the score is not of this recording.
    pub force: bool,
}

/// Everything one run needs: the inputs, the parameters and what to write where.
#[derive(Debug, Clone)]
pub struct Job {
    pub task: Task,
    /// The recording.
    pub audio: PathBuf,
    /// The score: aligned to the recording, or any notation score with [`Job::align`].
    pub score: PathBuf,
    /// How a MusicXML score's repeats are read.
    pub repeats: Repeats,
    /// Align the score to the recording first (required by [`Task::Align`]).
    pub align: Option<AlignRequest>,
    /// Output folder (created if missing).
    pub outdir: PathBuf,
    pub config: Config,
    /// Stems to write; required by [`Task::Separate`] and [`Task::Run`], ignored otherwise.
    pub stems: Option<StemOutputs>,
    /// Where to write the profile (each stage's times and memory), if anywhere.
    pub profile: Option<PathBuf>,
    /// Write `report.html` and its images in `report/` ([`crate::report`]).
    pub report: Option<ReportRequest>,
}

/// What the report shows beyond the run's own results.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportRequest {
    /// A reference transcription (CSV or MIDI): the page shows `eval notes`' metrics against
    /// it and marks the missed and the wrong notes on the spectrogram.
    pub reference: Option<PathBuf>,
    /// Reference stems (a folder of WAV files named as one grouping's stems, or of grouping
    /// folders): the page shows `eval stems`' metrics against them (needs stems).
    pub reference_stems: Option<PathBuf>,
}

impl Job {
    /// The stems this job writes: its request, unless the task writes notes only.
    pub fn stem_request(&self) -> Option<&StemOutputs> {
        self.stems
            .as_ref()
            .filter(|_| matches!(self.task, Task::Separate | Task::Run))
    }

    /// The alignment this job makes, if any ([`Task::Align`] always makes one).
    pub fn align_request(&self) -> Option<AlignRequest> {
        match (&self.align, self.task) {
            (Some(a), _) => Some(a.clone()),
            (None, Task::Align) => Some(AlignRequest {
                params: AlignParams::default(),
                force: false,
            }),
            (None, _) => None,
        }
    }
}

/// What a finished job reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub score_notes: usize,
    pub played: usize,
    pub not_played: usize,
    /// Stem files written (0 without stems).
    pub stems: usize,
    /// With an alignment: its confidence and the score notes outside the aligned part.
    pub alignment: Option<(f64, usize)>,
    pub outdir: PathBuf,
}

/// What a job tells its caller while it runs; every method does nothing by default.
pub trait Observer {
    /// A reader's warning about an input.
    fn warning(&self, _message: &str) {}
    /// A stage has finished (for `-v`).
    fn finished(&self, _stage: &str) {}
    /// The NMF has done `_done` of `_total` iterations.
    fn nmf_progress(&self, _done: usize, _total: usize) {}
    /// The stems have done `_done` of `_total` steps.
    fn stems_progress(&self, _done: usize, _total: usize) {}
}

/// An observer that ignores everything.
pub struct Silent;

impl Observer for Silent {}

/// Runs `job` and writes its outputs.
pub fn run(job: &Job, observer: &dyn Observer) -> Result<Summary> {
    check_outputs_spare_inputs(job)?;
    check_report_request(job)?;
    job.config.validate()?;
    if job.profile.is_some() {
        profile::enable();
    }
    let (audio, notation) = read_inputs(job)?;
    let reference = read_reference(job)?;
    check_note_rate(job, &audio, &notation)?;
    for w in &notation.warnings {
        observer.warning(w);
    }
    observer.finished("inputs read");
    let aligned = match job.align_request() {
        Some(request) => Some(align_score(job, &request, &audio, &notation, observer)?),
        None => None,
    };
    let score = aligned.as_ref().map_or(&notation, |a| &a.score);
    if job.task == Task::Align {
        let aligned = aligned.as_ref().expect("an align job aligns");
        return write_alignment_only(job, &audio, &notation, aligned);
    }
    let iterations = job.config.nmf.iterations;
    let mut out = pipeline::run_transcription_traced(
        &audio,
        score,
        &job.config,
        job.report.is_some(),
        |i| observer.nmf_progress(i, iterations),
    )?;
    observer.finished("factorized and transcribed");
    if aligned.is_none() {
        if let Some(w) = misalignment_warning(&out, score, &audio, &job.config) {
            observer.warning(&w);
        }
    }
    let staging = Staging::new(&job.outdir)?;
    let root = staging.root();
    if let Some(a) = &aligned {
        write_alignment(root, a)?;
    }
    // The report's figures before the stems: the masks' factorization may consume V.
    let figures = match &job.report {
        Some(_) => Some(render_figures(root, job, &out, score)?),
        None => None,
    };
    let alignment_figure = match (&job.report, &aligned) {
        (Some(_), Some(a)) => render_alignment_figure(root, a)?,
        _ => None,
    };
    let stems = match job.stem_request() {
        Some(request) => write_stems(root, job, request, &audio, score, &mut out, observer)?,
        None => Vec::new(),
    };
    if job.task.writes_notes() {
        write_notes(root, &out, score, &stems)?;
        observer.finished("notes written");
    }
    if figures.is_some() {
        let shown = Shown {
            figures: figures.as_ref(),
            alignment: alignment_figure.as_ref(),
            reference: reference.as_ref(),
            out: Some(&out),
            stems: &stems,
        };
        write_report_page(root, root, job, &audio, &shown)?;
        observer.finished("report written");
    }
    write_run_record(root, job, &out, &stems, aligned.as_ref())?;
    staging.commit(&owned_outputs(job))?;
    if let Some(path) = &job.profile {
        write_profile(path, job, &out)?;
    }
    let t = &out.transcription;
    Ok(Summary {
        score_notes: score.notes.len(),
        played: t.events.len(),
        not_played: t.not_played.len(),
        stems: stems.len(),
        alignment: aligned
            .as_ref()
            .map(|a| (a.alignment.confidence, a.outside)),
        outdir: job.outdir.clone(),
    })
}

/// A score aligned to the recording: the alignment, the warped score and how many notes fell
/// outside the aligned part.
pub struct Aligned {
    pub alignment: Alignment,
    pub score: Score,
    pub outside: usize,
    pub request: AlignRequest,
    /// The features aligned, kept for the report's figure (with a report only).
    pub features: Option<align::AlignedFeatures>,
}

/// Stage 1b: aligns the notation score to the recording ([`align_notation`]), keeping the
/// features for the report's figure when there is one.
fn align_score(
    job: &Job,
    request: &AlignRequest,
    audio: &Audio,
    notation: &Score,
    observer: &dyn Observer,
) -> Result<Aligned> {
    let names = (job.audio.as_path(), job.score.as_path());
    align_notation(
        audio,
        notation,
        request,
        names,
        job.report.is_some(),
        observer,
    )
}

/// Aligns the notation score to the recording and warps it, refusing a score that does not
/// fit (unless forced) or that has no note inside the recording; `names` are the recording's
/// and the score's, for the messages. Warns (through `observer`) of notes outside the aligned
/// part and of a transposition.
pub fn align_notation(
    audio: &Audio,
    notation: &Score,
    request: &AlignRequest,
    (audio_name, score_name): (&Path, &Path),
    keep_features: bool,
    observer: &dyn Observer,
) -> Result<Aligned> {
    let _stage = profile::stage("align");
    // Borrowed when the recording is mono at the features' rate: no copy of a long recording.
    let mono = audio.analysis_signal(align::features::SAMPLE_RATE)?;
    let (alignment, features) = align::align_keeping_features(&mono, notation, &request.params)?;
    drop(mono);
    let features = keep_features.then_some(features);
    let p = &request.params;
    if !alignment.fits(p) {
        let msg = format!(
            "does not fit the recording {}: alignment confidence {:.2} (under {:.2}), path cost {:.3} (over {:.3}; {:.3} for unrelated harmony); not a score of this recording? --force aligns anyway",
            audio_name.display(),
            alignment.confidence,
            p.min_confidence,
            alignment.path_cost,
            p.max_fitting_cost,
            alignment.baseline_cost
        );
        if !request.force {
            return Err(Error::Score {
                path: score_name.to_path_buf(),
                msg,
            });
        }
        observer.warning(&format!("{}: {msg}", score_name.display()));
    }
    let (score, outside) = alignment.warp(notation);
    if outside > 0 {
        observer.warning(&format!(
            "{outside} of {} score notes lie outside the part of the score the recording holds; left out",
            notation.notes.len()
        ));
    }
    if score.notes.is_empty() {
        return Err(Error::Score {
            path: score_name.to_path_buf(),
            msg: format!(
                "no note of the score falls inside the recording {}",
                audio_name.display()
            ),
        });
    }
    if alignment.shift != 0 {
        observer.warning(&format!(
            "the recording sounds {:+} semitones from the score; the aligned score is transposed to it",
            alignment.shift
        ));
    }
    observer.finished("aligned");
    Ok(Aligned {
        alignment,
        score,
        outside,
        request: request.clone(),
        features,
    })
}

/// Where the transcription's own evidence says the score is not aligned to the recording: the
/// sentence to warn with (suggesting `--align`), if so.
fn misalignment_warning(
    out: &TranscribeOutput,
    score: &Score,
    audio: &Audio,
    c: &Config,
) -> Option<String> {
    let t = &out.transcription;
    let n = score.notes.len().max(1) as f64;
    let duration = audio.duration();
    let beyond = score.notes.iter().filter(|x| x.onset > duration).count();
    let search = c.transcribe.onset.search;
    let at_edge = t
        .events
        .iter()
        .filter(|e| (e.onset_shift - t.score_offset).abs() > 0.8 * search)
        .count();
    let edge_share = at_edge as f64 / t.events.len().max(1) as f64;
    let unplayed_share = t.not_played.len() as f64 / n;
    let reasons: Vec<String> = [
        (beyond as f64 / n > 0.02)
            .then(|| format!("{beyond} notes start after the recording ends")),
        (edge_share > 0.25).then(|| {
            format!(
                "{:.0} % of the onsets found at the edge of the ±{search} s search",
                100.0 * edge_share
            )
        }),
        (unplayed_share > 0.4)
            .then(|| format!("{:.0} % of the notes not played", 100.0 * unplayed_share)),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!reasons.is_empty()).then(|| {
        format!(
            "the score does not look aligned to the recording ({}); if it is a notation score, use --align",
            reasons.join(", ")
        )
    })
}

/// An align job's outputs: the aligned score and the path (and the report), then run.json.
fn write_alignment_only(
    job: &Job,
    audio: &Audio,
    notation: &Score,
    aligned: &Aligned,
) -> Result<Summary> {
    let staging = Staging::new(&job.outdir)?;
    let root = staging.root();
    write_alignment(root, aligned)?;
    if let Some(figure) = render_alignment_figure(root, aligned)? {
        write_report_page(root, root, job, audio, &Shown::alignment(&figure))?;
    }
    let record = run_record(job, None, Some(aligned), alignment_results(aligned))?;
    outputs::write_json(&root.join("run.json"), &record)?;
    staging.commit(&owned_outputs(job))?;
    Ok(Summary {
        score_notes: notation.notes.len(),
        played: 0,
        not_played: 0,
        stems: 0,
        alignment: Some((aligned.alignment.confidence, aligned.outside)),
        outdir: job.outdir.clone(),
    })
}

/// run.json's record: the version, the command, the inputs with their SHA-256, the analysis
/// parameters (`None` for `align`), the alignment's parameters and the reading of repeats.
fn run_record<'a, R: Serialize>(
    job: &'a Job,
    config: Option<&'a Config>,
    aligned: Option<&Aligned>,
    results: R,
) -> Result<RunRecord<'a, R>> {
    Ok(RunRecord {
        scorenmf_version: env!("CARGO_PKG_VERSION"),
        command: job.task.name(),
        inputs: vec![
            InputFile::describe(&job.audio)?,
            InputFile::describe(&job.score)?,
        ],
        config,
        align: aligned.map(align_record),
        repeats: musicxml_repeats(job),
        results,
    })
}

/// The alignment's parameters, for run.json.
fn align_record(a: &Aligned) -> serde_json::Value {
    serde_json::json!({
        "params": a.request.params,
        "force": a.request.force,
    })
}

/// The job's reading of repeats, when its score is MusicXML (the only kind that has them).
fn musicxml_repeats(job: &Job) -> Option<Repeats> {
    use std::io::Read;
    let mut head = Vec::with_capacity(4096);
    std::fs::File::open(&job.score)
        .and_then(|f| f.take(4096).read_to_end(&mut head))
        .ok()?;
    score::musicxml::is_musicxml(&head).then_some(job.repeats)
}

/// The alignment's headline figures, for run.json.
fn alignment_results(a: &Aligned) -> serde_json::Value {
    serde_json::json!({
        "confidence": a.alignment.confidence,
        "path_cost": a.alignment.path_cost,
        "baseline_cost": a.alignment.baseline_cost,
        "ends": a.alignment.ends,
        "shift": a.alignment.shift,
        "a4": a.alignment.a4,
        "aligned_notes": a.score.notes.len(),
        "outside": a.outside,
    })
}

/// aligned_score.csv, aligned_score.mid, alignment.csv and alignment.json under `root`.
fn write_alignment(root: &Path, a: &Aligned) -> Result<()> {
    let _stage = profile::stage("write alignment");
    outputs::write_alignment(root, &a.alignment, &a.score, &a.request.params, a.outside)
}

/// The files a job writes ([`owned_outputs`] and the profile), and the folder whose every file
/// it may write (`stems/`, with stems).
fn outputs_of(job: &Job) -> (Vec<PathBuf>, Option<PathBuf>) {
    let owned = owned_outputs(job);
    let mut files: Vec<PathBuf> = owned
        .iter()
        .filter(|&&name| name != "stems" && name != report::IMAGE_DIR)
        .map(|name| job.outdir.join(name))
        .collect();
    files.extend(job.profile.clone());
    let stems = owned.contains(&"stems").then(|| job.outdir.join("stems"));
    (files, stems)
}

/// Refuses a job that would write over one of its inputs: an output file that is the audio or
/// the score, or an input inside the stems folder (see [`check_spares_inputs`]).
fn check_outputs_spare_inputs(job: &Job) -> Result<()> {
    let (files, stems) = outputs_of(job);
    let mut inputs = vec![
        (job.audio.as_path(), "recording"),
        (job.score.as_path(), "score"),
    ];
    if let Some(r) = job.report.as_ref().and_then(|r| r.reference.as_deref()) {
        inputs.push((r, "reference"));
    }
    check_spares_inputs(&inputs, &files, stems.as_deref())?;
    if let Some(d) = job
        .report
        .as_ref()
        .and_then(|r| r.reference_stems.as_deref())
    {
        inputs.push((d, "reference stems"));
    }
    // The report's image folder is replaced whole by every run that owns it.
    let images = owned_outputs(job)
        .contains(&report::IMAGE_DIR)
        .then(|| job.outdir.join(report::IMAGE_DIR));
    check_spares_inputs(&inputs, &[], images.as_deref())
}

/// Refuses outputs that would replace an input: an output file in `files` that is one of
/// `inputs` (each with what it is), or an input inside the output `folder`. Paths are compared
/// after resolving links and `..` (for a path that does not exist yet, its nearest existing
/// ancestor).
pub(crate) fn check_spares_inputs(
    inputs: &[(&Path, &str)],
    files: &[PathBuf],
    folder: Option<&Path>,
) -> Result<()> {
    for &(input, what) in inputs {
        let Ok(input_real) = std::fs::canonicalize(input) else {
            continue; // the reader names a missing input
        };
        let clash = files
            .iter()
            .map(PathBuf::as_path)
            .find(|f| resolved(f) == input_real)
            .or_else(|| folder.filter(|d| input_real.starts_with(resolved(d))));
        if let Some(out) = clash {
            return Err(Error::Output {
                path: out.to_path_buf(),
                msg: format!(
                    "would overwrite the input {what} {}; choose another output path",
                    input.display()
                ),
            });
        }
    }
    Ok(())
}

/// `path` with links and `..` resolved as far as it exists: its nearest existing ancestor
/// canonicalized, then the rest of it.
fn resolved(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut rest = Vec::new();
    let mut at = absolute.as_path();
    loop {
        if let Ok(real) = std::fs::canonicalize(at) {
            return rest.iter().rev().fold(real, |p, part| p.join(part));
        }
        match (at.parent(), at.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                at = parent;
            }
            _ => return absolute,
        }
    }
}

/// The most score notes per second of audio, averaged over the recording (dense orchestral
/// tutti stay far below it); a score beyond it is not of this recording, and would take the
/// transcription minutes.
pub const MAX_NOTE_RATE: f64 = 200.0;

/// Refuses a score with more than [`MAX_NOTE_RATE`] notes per second of the recording (and
/// 1000 notes to spare for very short recordings).
fn check_note_rate(job: &Job, audio: &Audio, score: &Score) -> Result<()> {
    let limit = MAX_NOTE_RATE * audio.duration() + 1000.0;
    if score.notes.len() as f64 > limit {
        return Err(Error::Score {
            path: job.score.clone(),
            msg: format!(
                "{} notes for {:.1} s of audio ({}): more than {MAX_NOTE_RATE} a second, not a score of this recording",
                score.notes.len(),
                audio.duration(),
                job.audio.display()
            ),
        });
    }
    Ok(())
}

/// Stage 1a (with a report): `--reference`'s notes, read before the analysis so a bad file
/// fails early.
fn read_reference(job: &Job) -> Result<Option<(PathBuf, Score)>> {
    match job.report.as_ref().and_then(|r| r.reference.as_ref()) {
        Some(path) => Ok(Some((path.clone(), score::read_score(path)?))),
        None => Ok(None),
    }
}

/// Stage 1: the recording and the score.
fn read_inputs(job: &Job) -> Result<(Audio, Score)> {
    let _stage = profile::stage("decode");
    let audio = audio::read_audio(&job.audio)?;
    let score = score::read_score_with(&job.score, job.repeats)?;
    Ok((audio, score))
}

/// The outputs a job replaces as a whole (`run.json` last): its notes files, its stems folder
/// (every grouping: old ones are removed), the report, and `run.json`. Outputs of other tasks
/// in the same folder stay (a `separate` after a `transcribe` keeps the notes).
fn owned_outputs(job: &Job) -> Vec<&'static str> {
    let mut owned = Vec::new();
    if job.align_request().is_some() {
        owned.extend([
            "aligned_score.csv",
            "aligned_score.mid",
            "alignment.csv",
            "alignment.json",
        ]);
    }
    if job.task.writes_notes() {
        owned.extend(["notes.csv", "notes.mid", "notes.json"]);
    }
    if job.stem_request().is_some() {
        owned.push("stems");
    }
    // Every analysing run owns the report: one written by an earlier run would describe
    // another factorization than this run.json's. An alignment owns it when it writes one.
    if job.task != Task::Align || job.report.is_some() {
        owned.extend([report::PAGE, report::IMAGE_DIR]);
    }
    owned.push("run.json");
    owned
}

/// Stage 3: the stems of every requested grouping, and the residual, under `root`.
fn write_stems(
    root: &Path,
    job: &Job,
    request: &StemOutputs,
    audio: &Audio,
    score: &Score,
    out: &mut TranscribeOutput,
    observer: &dyn Observer,
) -> Result<Vec<StemFile>> {
    let encoding = request
        .encoding
        .unwrap_or_else(|| WavEncoding::like(&audio.format));
    let report = |done: usize, total: usize| observer.stems_progress(done, total);
    let written = pipeline::separate(
        root,
        audio,
        score,
        &job.config,
        out,
        &request.by,
        request.full_length,
        encoding,
        &report,
    )?;
    observer.finished("stems written");
    Ok(written)
}

/// Stage 4: notes.csv, notes.mid and notes.json under `root`, listing the per-note stems among
/// `stems`.
fn write_notes(
    root: &Path,
    out: &TranscribeOutput,
    score: &Score,
    stems: &[StemFile],
) -> Result<()> {
    let note_stems: Vec<StemFile> = stems.iter().filter(|w| w.kind == "note").cloned().collect();
    let _stage = profile::stage("write notes");
    outputs::write_transcription(root, &out.transcription, score, &note_stems)
}

/// Stage 3a (with a report): the report's heatmaps under `root/report/`.
fn render_figures(
    root: &Path,
    job: &Job,
    out: &TranscribeOutput,
    score: &Score,
) -> Result<report::Figures> {
    let _stage = profile::stage("report figures");
    let c = &job.config;
    let d = &out.decomposition;
    let f = &d.factorization;
    let title = page_title(job);
    report::Figures::render(
        root,
        &report::ReportInput {
            title,
            v: &d.v,
            log_gamma_for_display: match c.magnitude {
                pipeline::Magnitude::Linear => Some(c.gamma),
                pipeline::Magnitude::Log => None,
            },
            frame_time: c.frame_time(),
            bin_hz: c.sample_rate as f64 / c.stft.n_fft as f64,
            a4: c.templates.a4,
            components: &d.components,
            w0: &d.w0,
            w: &f.w,
            h0: &d.h0,
            h: &f.h,
            iterations: f.iterations,
            errors: &f.errors,
            rel_error: f.rel_error,
            score,
            transcription: &out.transcription,
        },
    )
}

/// What a report shows: the figures rendered, and what its tables are made from.
struct Shown<'a> {
    figures: Option<&'a report::Figures>,
    alignment: Option<&'a report::AlignmentFigure>,
    /// `--reference`'s path and notes.
    reference: Option<&'a (PathBuf, Score)>,
    /// The transcription (for `--reference` when the task writes no notes.csv).
    out: Option<&'a TranscribeOutput>,
    stems: &'a [StemFile],
}

impl<'a> Shown<'a> {
    /// An alignment's page: its figure and the recording.
    fn alignment(figure: &'a report::AlignmentFigure) -> Shown<'a> {
        Shown {
            figures: None,
            alignment: Some(figure),
            reference: None,
            out: None,
            stems: &[],
        }
    }
}

/// Stage 4a (with a report): `report.html` under `root`, with `eval notes`' and `eval stems`'
/// tables against the job's references, computed from the run's notes and from the stems in
/// `finished` (the staging folder of a run; the output folder for `scorenmf report`).
fn write_report_page(
    root: &Path,
    finished: &Path,
    job: &Job,
    audio: &Audio,
    shown: &Shown,
) -> Result<()> {
    let against = match (shown.reference, shown.out) {
        (Some(r), Some(out)) => Some(report_reference(r, out)),
        _ => None,
    };
    let request = job.report.as_ref();
    let against_stems = match request.and_then(|r| r.reference_stems.as_deref()) {
        Some(dir) => Some(report_stem_reference(dir, finished)?),
        None => None,
    };
    let _stage = profile::stage("report page");
    let page = report::Page {
        title: &page_title(job),
        figures: shown.figures,
        alignment: shown.alignment,
        reference: against.as_ref(),
        stem_reference: against_stems.as_ref(),
        sounds: report::Sounds {
            stems: shown.stems,
            dir: finished,
            mix: Some((relative_path(&job.audio, &job.outdir), audio)),
        },
    };
    report::write_page(root, &page)
}

/// The page's title: the recording's file name.
fn page_title(job: &Job) -> String {
    job.audio.file_name().map_or_else(
        || job.audio.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Stage 1c (with a report and an alignment): the cost matrix' image and the path's figures.
fn render_alignment_figure(root: &Path, a: &Aligned) -> Result<Option<report::AlignmentFigure>> {
    let Some(features) = &a.features else {
        return Ok(None);
    };
    let _stage = profile::stage("report alignment figure");
    report::AlignmentFigure::render(root, features, &a.alignment, a.score.notes.len(), a.outside)
        .map(Some)
}

/// The staged stems against `--reference-stems`, as `eval stems` computes it.
fn report_stem_reference(dir: &Path, root: &Path) -> Result<report::StemReference> {
    let _stage = profile::stage("report stems eval");
    report::StemReference::measure(dir, root)
}

/// Refuses report options the job cannot honour: reference stems without stems.
fn check_report_request(job: &Job) -> Result<()> {
    let stems_ref = job.report.as_ref().and_then(|r| r.reference_stems.as_ref());
    if let Some(dir) = stems_ref {
        if job.stem_request().is_none() {
            return Err(Error::Param(format!(
                "--reference-stems {}: `{}` writes no stems to compare (`separate` and `run` do)",
                dir.display(),
                job.task.name()
            )));
        }
        if !dir.is_dir() {
            let e = std::io::Error::new(std::io::ErrorKind::NotFound, "no such folder of stems");
            return Err(Error::read(dir, e));
        }
    }
    Ok(())
}

/// The transcription against a reference, as `eval notes REF notes.csv` computes it (on the
/// run's own played notes as notes.csv holds them, never a file another task left in the
/// folder), with the notes each side left unmatched (onsets only).
fn report_reference(
    (path, reference): &(PathBuf, Score),
    out: &TranscribeOutput,
) -> report::Reference {
    use crate::eval::notes::{evaluate, match_notes, EvalNote, NoteTolerances};
    let estimate = Score::new(outputs::notes_csv_notes(&out.transcription), vec![]);
    let r: Vec<EvalNote> = reference.notes.iter().map(EvalNote::from_note).collect();
    let e: Vec<EvalNote> = estimate.notes.iter().map(EvalNote::from_note).collect();
    let with_offsets = NoteTolerances::default();
    let onsets = NoteTolerances {
        offset_ratio: None,
        ..with_offsets
    };
    let mut missed = vec![true; r.len()];
    let mut wrong = vec![true; e.len()];
    for (i, j) in match_notes(&r, &e, &onsets) {
        missed[i] = false;
        wrong[j] = false;
    }
    let unmatched = |notes: &[Note], flags: &[bool]| -> Vec<Note> {
        notes
            .iter()
            .zip(flags)
            .filter(|(_, &f)| f)
            .map(|(n, _)| n.clone())
            .collect()
    };
    report::Reference {
        path: path.clone(),
        onsets: evaluate(&r, &e, &onsets),
        with_offsets: evaluate(&r, &e, &with_offsets),
        missed: unmatched(&reference.notes, &missed),
        wrong: unmatched(&estimate.notes, &wrong),
    }
}

/// `path` as seen from the folder `from` (both resolved); `path` made absolute where they
/// share no root.
fn relative_path(path: &Path, from: &Path) -> PathBuf {
    let (p, f) = (resolved(path), resolved(from));
    let common = p
        .components()
        .zip(f.components())
        .take_while(|(a, b)| a == b)
        .count();
    if common == 0 {
        return p;
    }
    let ups = f.components().count() - common;
    let mut rel = PathBuf::new();
    for _ in 0..ups {
        rel.push("..");
    }
    rel.extend(p.components().skip(common));
    rel
}

/// Stage 5: run.json under `root`.
fn write_run_record(
    root: &Path,
    job: &Job,
    out: &TranscribeOutput,
    stems: &[StemFile],
    aligned: Option<&Aligned>,
) -> Result<()> {
    let f = &out.decomposition.factorization;
    let t = &out.transcription;
    let stem_request = job.stem_request();
    let mut results = serde_json::json!({
        "components": out.decomposition.components.len(),
        "frames": f.h.ncols(),
        "nmf_iterations": f.iterations,
        "nmf_relative_error": f.rel_error,
        "score_offset": t.score_offset,
        "played": t.events.len(),
        "not_played": t.not_played.len(),
        "stems": stem_request.map(|st| serde_json::json!({
            "by": st.by,
            "full_length": st.full_length,
            "files": stems.len(),
        })),
    });
    if let Some(a) = aligned {
        results["alignment"] = alignment_results(a);
    }
    let record = run_record(job, Some(&job.config), aligned, results)?;
    outputs::write_json(&root.join("run.json"), &record)
}

/// Stage 6: the profile: each stage's wall and CPU time and peak memory, and the NMF's size.
fn write_profile(path: &Path, job: &Job, out: &TranscribeOutput) -> Result<()> {
    let f = &out.decomposition.factorization;
    let c = &job.config;
    let profile = serde_json::json!({
        "command": job.task.name(),
        "threads": rayon::current_num_threads(),
        "stages": profile::stages(),
        "process_peak_rss": profile::process_peak_rss(),
        "nmf": {
            "k": f.w.nrows(),
            "r": f.w.ncols(),
            "n": f.h.ncols(),
            "iterations": f.iterations,
            "active_entries": f.active_entries,
            "precision": c.nmf.precision,
            "divergence": c.nmf.divergence,
            "tile": c.nmf.tile,
            "kernels": c
                .nmf
                .kernels
                .filter(|k| k.supported())
                .unwrap_or_else(crate::model::kernel::path)
                .name(),
        },
    });
    outputs::write_json(path, &profile)
}
