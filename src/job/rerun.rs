//! `scorenmf report OUTDIR`: the report of a finished run, made again from its `run.json`.
//!
//! run.json holds every parameter and each input's path and SHA-256, and a run's outputs do not
//! depend on anything else (nor on the thread count), so the analysis is repeated from them and
//! gives the run's own figures: the inputs are checked against their SHA-256 first, and the
//! repeated analysis' counts against the ones run.json recorded. Only `report.html` and
//! `report/` are written; the stems and notes the page shows are the run's, read where they are.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{
    align_score, check_note_rate, check_outputs_spare_inputs, check_report_request, read_inputs,
    read_reference, render_alignment_figure, render_figures, write_report_page, AlignRequest,
    Aligned, Job, Observer, ReportRequest, Shown, StemOutputs, Summary, Task,
};
use crate::align::AlignParams;
use crate::error::{Error, Result};
use crate::io::atomic::Staging;
use crate::io::outputs::sha256_hex;
use crate::io::score::{self, Repeats};
use crate::pipeline::{self, Config, Preset};
use crate::report;
use crate::tasks::separate::{By, StemFile};

/// What `scorenmf report` reads of run.json.
#[derive(Debug, Deserialize)]
struct Recorded {
    scorenmf_version: String,
    command: String,
    inputs: Vec<RecordedInput>,
    config: Option<Config>,
    align: Option<RecordedAlign>,
    repeats: Option<Repeats>,
    results: serde_json::Value,
}

#[derive(Debug, Deserialize)]
struct RecordedInput {
    path: PathBuf,
    /// Absent in run.json files of earlier versions.
    absolute: Option<PathBuf>,
    sha256: String,
}

#[derive(Debug, Deserialize)]
struct RecordedAlign {
    params: AlignParams,
    force: bool,
}

/// The stems a run recorded.
#[derive(Debug, Deserialize)]
struct RecordedStems {
    by: Vec<By>,
    full_length: bool,
}

/// Writes `outdir/report.html` and `outdir/report/` for the finished run in `outdir`, with
/// `request`'s references.
pub fn rewrite_report(
    outdir: &Path,
    request: ReportRequest,
    observer: &dyn Observer,
) -> Result<Summary> {
    let record_path = outdir.join("run.json");
    let recorded = read_record(&record_path)?;
    if recorded.scorenmf_version != env!("CARGO_PKG_VERSION") {
        observer.warning(&format!(
            "{}: made by scorenmf {}, reported by {}; the figures are this version's analysis",
            record_path.display(),
            recorded.scorenmf_version,
            env!("CARGO_PKG_VERSION")
        ));
    }
    let job = recorded_job(outdir, &record_path, &recorded, request)?;
    check_outputs_spare_inputs(&job)?;
    check_report_request(&job)?;
    job.config.validate()?;
    let (audio, notation) = read_inputs(&job)?;
    check_note_rate(&job, &audio, &notation)?;
    let reference = read_reference(&job)?;
    observer.finished("inputs read");
    let aligned = match job.align_request() {
        Some(r) => Some(align_score(&job, &r, &audio, &notation, observer)?),
        None => None,
    };
    let staging = Staging::new(outdir)?;
    let root = staging.root();
    let alignment_figure = match &aligned {
        Some(a) => render_alignment_figure(root, a)?,
        None => None,
    };
    let summary = if job.task == Task::Align {
        let figure = alignment_figure.expect("an align job aligns, with its features kept");
        write_report_page(root, outdir, &job, &audio, &Shown::alignment(&figure))?;
        alignment_summary(&job, &notation, aligned.as_ref())
    } else {
        let score = aligned.as_ref().map_or(&notation, |a| &a.score);
        let iterations = job.config.nmf.iterations;
        let out = pipeline::run_transcription_traced(&audio, score, &job.config, true, |i| {
            observer.nmf_progress(i, iterations)
        })?;
        observer.finished("factorized and transcribed");
        check_reproduced(&record_path, &recorded.results, &out)?;
        let figures = render_figures(root, &job, &out, score)?;
        let stems = finished_stems(outdir, job.stem_request());
        let shown = Shown {
            figures: Some(&figures),
            alignment: alignment_figure.as_ref(),
            reference: reference.as_ref(),
            out: Some(&out),
            stems: &stems,
        };
        write_report_page(root, outdir, &job, &audio, &shown)?;
        Summary {
            score_notes: score.notes.len(),
            played: out.transcription.events.len(),
            not_played: out.transcription.not_played.len(),
            stems: stems.len(),
            alignment: aligned
                .as_ref()
                .map(|a| (a.alignment.confidence, a.outside)),
            outdir: outdir.to_path_buf(),
        }
    };
    // The page last: an interrupted commit leaves no page over images of another run.
    staging.commit(&[report::IMAGE_DIR, report::PAGE])?;
    observer.finished("report written");
    Ok(summary)
}

/// run.json, parsed.
fn read_record(path: &Path) -> Result<Recorded> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::read(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::Score {
        path: path.to_path_buf(),
        msg: format!(
            "not a run.json this version reads (line {}: {e}); rerun the command instead",
            e.line()
        ),
    })
}

/// The job run.json describes, its report asked for.
fn recorded_job(
    outdir: &Path,
    record_path: &Path,
    r: &Recorded,
    request: ReportRequest,
) -> Result<Job> {
    let bad = |msg: String| Error::Score {
        path: record_path.to_path_buf(),
        msg,
    };
    let task = match r.command.as_str() {
        "transcribe" => Task::Transcribe,
        "separate" => Task::Separate,
        "run" => Task::Run,
        "align" => Task::Align,
        other => {
            return Err(bad(format!(
                "a run of `{other}`; `report` reports transcribe, separate, run and align"
            )))
        }
    };
    let [audio, score] = &r.inputs[..] else {
        return Err(bad(format!(
            "{} inputs recorded, not a recording and a score",
            r.inputs.len()
        )));
    };
    let config = match (&r.config, task) {
        (Some(c), _) => c.clone(),
        (None, Task::Align) => Config::preset(Preset::Default),
        (None, _) => return Err(bad("no \"config\" recorded".into())),
    };
    let stems = match task {
        Task::Separate | Task::Run => {
            let st: RecordedStems = serde_json::from_value(r.results["stems"].clone())
                .map_err(|e| bad(format!("its \"results\".\"stems\": {e}")))?;
            Some(StemOutputs {
                by: st.by,
                full_length: st.full_length,
                encoding: None,
            })
        }
        _ => None,
    };
    Ok(Job {
        task,
        audio: located(audio, record_path)?,
        score: located(score, record_path)?,
        repeats: r.repeats.unwrap_or_default(),
        align: r.align.as_ref().map(|a| AlignRequest {
            params: a.params.clone(),
            force: a.force,
        }),
        outdir: outdir.to_path_buf(),
        config,
        stems,
        profile: None,
        report: Some(request),
    })
}

/// Where a recorded input is now: its path as given (from this folder), else its absolute
/// path; refused when neither is there or when its SHA-256 is not the recorded one.
fn located(input: &RecordedInput, record_path: &Path) -> Result<PathBuf> {
    let candidates = std::iter::once(&input.path).chain(input.absolute.as_ref());
    let Some(found) = candidates.into_iter().find(|p| p.is_file()) else {
        let e = std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "an input of the run in {} is not there (run `report` from the folder the run was made in)",
                record_path.display()
            ),
        );
        return Err(Error::read(&input.path, e));
    };
    let data = std::fs::read(found).map_err(|e| Error::read(found, e))?;
    if sha256_hex(&data) != input.sha256 {
        return Err(Error::Score {
            path: found.clone(),
            msg: format!(
                "changed since the run in {} (its SHA-256 is not the recorded one); rerun the command",
                record_path.display()
            ),
        });
    }
    Ok(found.clone())
}

/// Refuses a repeated analysis whose counts are not the ones run.json recorded (another
/// version's analysis, or an edited run.json): its figures would not show the run's outputs.
fn check_reproduced(
    record_path: &Path,
    results: &serde_json::Value,
    out: &pipeline::TranscribeOutput,
) -> Result<()> {
    let t = &out.transcription;
    let now = (t.events.len() as u64, t.not_played.len() as u64);
    let then = (
        results["played"].as_u64().unwrap_or(u64::MAX),
        results["not_played"].as_u64().unwrap_or(u64::MAX),
    );
    if now != then {
        return Err(Error::Score {
            path: record_path.to_path_buf(),
            msg: format!(
                "the analysis repeated from it gives {} played and {} not played notes, the run {} and {}; rerun the command with --report",
                now.0, now.1, then.0, then.1
            ),
        });
    }
    Ok(())
}

/// The stems a finished run wrote, as its page lists them: each grouping's files, then the
/// residual.
fn finished_stems(outdir: &Path, request: Option<&StemOutputs>) -> Vec<StemFile> {
    let Some(request) = request else {
        return Vec::new();
    };
    let mut stems = Vec::new();
    for by in &request.by {
        let kind = by.dir();
        let mut files: Vec<String> = std::fs::read_dir(outdir.join("stems").join(kind))
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".wav") && !n.starts_with('.'))
            .collect();
        files.sort();
        stems.extend(files.into_iter().map(|n| StemFile {
            kind,
            file: format!("stems/{kind}/{n}"),
            start: 0.0,
            score_note: None,
        }));
    }
    if outdir.join("stems/residual.wav").is_file() {
        stems.push(StemFile {
            kind: "residual",
            file: "stems/residual.wav".into(),
            start: 0.0,
            score_note: None,
        });
    }
    stems
}

/// An align job's summary.
fn alignment_summary(job: &Job, notation: &score::Score, aligned: Option<&Aligned>) -> Summary {
    Summary {
        score_notes: notation.notes.len(),
        played: 0,
        not_played: 0,
        stems: 0,
        alignment: aligned.map(|a| (a.alignment.confidence, a.outside)),
        outdir: job.outdir.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_read_back_from_their_json() {
        for preset in [Preset::Default, Preset::Fmp] {
            let c = Config::preset(preset);
            let text = serde_json::to_string(&c).unwrap();
            let back: Config = serde_json::from_str(&text).unwrap();
            assert_eq!(back, c);
        }
        let p = AlignParams::default();
        let back: AlignParams = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
    }
}
