//! `scorenmf eval notes|stems|score-diff`: transcription metrics as mir_eval computes them,
//! separation metrics as BSS Eval v3 does, and a transcription against its score.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use scorenmf::eval::notes::{evaluate, evaluate_velocity, EvalNote, NoteScores, NoteTolerances};
use scorenmf::eval::stem_files;
use scorenmf::eval::stems::{
    bss_eval_sources, bss_eval_sources_framewise, median_over_windows, SourceScores, WindowScores,
};
use scorenmf::io::score;
use scorenmf::Error;

use super::{out, outln, set_threads, warn, Global};

#[derive(Subcommand)]
pub enum EvalCommand {
    /// Transcription metrics as mir_eval.transcription computes them: precision, recall,
    /// F-measure and average overlap ratio, onset-only and onset+offset (and with velocities
    /// when both sides carry them), with an optimal one-to-one matching.
    Notes {
        /// Reference notes: FMP-style CSV or MIDI file.
        reference: PathBuf,
        /// Estimated notes: FMP-style CSV or MIDI file.
        estimate: PathBuf,
        /// Onset tolerance in seconds.
        #[arg(long, default_value_t = 0.05)]
        onset_tolerance: f64,
        /// Pitch tolerance in cents.
        #[arg(long, default_value_t = 50.0)]
        pitch_tolerance: f64,
        /// Offset tolerance as a fraction of the reference duration, or `none` to report the
        /// onset-only scores alone.
        #[arg(long, default_value = "0.2", value_parser = ratio)]
        offset_ratio: OffsetRatio,
        /// Minimum offset tolerance in seconds.
        #[arg(long, default_value_t = 0.05)]
        offset_min_tolerance: f64,
        /// Velocity tolerance (of rescaled velocities, in [0, 1]).
        #[arg(long, default_value_t = 0.1)]
        velocity_tolerance: f64,
        /// Compare with `<` instead of `≤`.
        #[arg(long)]
        strict: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// For a transcription: the score notes not played, and how far the played onsets were from
    /// the score's (median and 90th percentile of |onset shift|, overall and per instrument).
    ScoreDiff {
        /// The score the transcription was made from.
        score: PathBuf,
        /// The transcription's notes.json.
        notes_json: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Separation metrics as BSS Eval v3 computes them (mir_eval.separation.bss_eval_sources,
    /// 512-tap distortion filters, sources matched by file name, no permutation search): SDR,
    /// SIR, SAR per source and their mean, plus SI-SDR. Multichannel files are evaluated on
    /// their mono mix-down.
    Stems {
        /// Reference stems: a folder (its files matched to the estimates' by name; folders
        /// inside it are not read) or a comma-separated list of files.
        reference: PathBuf,
        /// Estimated stems: a folder or a comma-separated list in the references' order.
        estimate: PathBuf,
        /// Also score windows of this many seconds (window = hop; 1 when given without a value,
        /// as museval's) and report each source's median over the windows where no source is
        /// silent.
        #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "1")]
        framewise: Option<f64>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Worker threads (0: one per core); the scores do not depend on it.
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
}

/// An offset ratio, or none.
#[derive(Clone, Copy)]
pub struct OffsetRatio(Option<f64>);

fn ratio(s: &str) -> Result<OffsetRatio, String> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(OffsetRatio(None));
    }
    s.parse::<f64>()
        .ok()
        .filter(|r| *r >= 0.0 && r.is_finite())
        .map(|r| OffsetRatio(Some(r)))
        .ok_or_else(|| format!("expected a non-negative number or 'none', got '{s}'"))
}

pub fn run(global: &Global, cmd: &EvalCommand) -> Result<(), Error> {
    match cmd {
        EvalCommand::Notes {
            reference,
            estimate,
            onset_tolerance,
            pitch_tolerance,
            offset_ratio,
            offset_min_tolerance,
            velocity_tolerance,
            strict,
            json,
        } => {
            let t = NoteTolerances {
                onset_tolerance: *onset_tolerance,
                pitch_tolerance: *pitch_tolerance,
                offset_ratio: offset_ratio.0,
                offset_min_tolerance: *offset_min_tolerance,
                strict: *strict,
                velocity_tolerance: *velocity_tolerance,
            };
            notes(global, reference, estimate, &t, *json)
        }
        EvalCommand::ScoreDiff {
            score,
            notes_json,
            json,
        } => score_diff(score, notes_json, *json),
        EvalCommand::Stems {
            reference,
            estimate,
            framewise,
            json,
            threads,
        } => {
            set_threads(*threads)?;
            stems(global, reference, estimate, *framewise, *json)
        }
    }
}

/// `eval notes`: onset-only scores, then with offsets and with velocities where they apply.
fn notes(
    global: &Global,
    reference: &Path,
    estimate: &Path,
    t: &NoteTolerances,
    json: bool,
) -> Result<(), Error> {
    let r = score::read_score(reference)?;
    let e = score::read_score(estimate)?;
    warn(global, &r.warnings);
    warn(global, &e.warnings);
    let to_eval = |s: &score::Score| s.notes.iter().map(EvalNote::from_note).collect::<Vec<_>>();
    let (rn, en) = (to_eval(&r), to_eval(&e));
    let onset_only = NoteTolerances {
        offset_ratio: None,
        ..*t
    };
    let mut rows = vec![("onset".to_string(), evaluate(&rn, &en, &onset_only))];
    if let Some(ratio) = t.offset_ratio {
        rows.push((format!("onset+offset ({ratio})"), evaluate(&rn, &en, t)));
        if r.has_velocities && e.has_velocities {
            rows.push((
                format!("onset+offset+velocity ({})", t.velocity_tolerance),
                evaluate_velocity(&rn, &en, t),
            ));
        }
    }
    if json {
        let scores: serde_json::Map<String, serde_json::Value> = rows
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::to_value(v).expect("serializable")))
            .collect();
        print_json(&serde_json::json!({ "tolerances": t, "scores": scores }));
    } else {
        print_note_table(r.notes.len(), e.notes.len(), t, &rows);
    }
    Ok(())
}

fn print_note_table(n_ref: usize, n_est: usize, t: &NoteTolerances, rows: &[(String, NoteScores)]) {
    outln!(
        "{n_ref} reference notes, {n_est} estimated; onset tolerance {} s, pitch {} cents",
        t.onset_tolerance,
        t.pitch_tolerance
    );
    outln!(
        "{:<32} {:>9} {:>9} {:>9} {:>9} {:>8}",
        "",
        "precision",
        "recall",
        "F",
        "overlap",
        "matched"
    );
    for (name, s) in rows {
        outln!(
            "{:<32} {:>9.4} {:>9.4} {:>9.4} {:>9.4} {:>8}",
            name,
            s.precision,
            s.recall,
            s.f_measure,
            s.average_overlap_ratio,
            s.matched
        );
    }
}

/// `eval score-diff`: the score notes not played and the timing deviations.
fn score_diff(score_path: &Path, notes_json: &Path, json: bool) -> Result<(), Error> {
    let s = score::read_score(score_path)?;
    let text = std::fs::read_to_string(notes_json).map_err(|e| Error::read(notes_json, e))?;
    let diff = scorenmf::eval::score_diff::score_diff(&s, notes_json, &text)?;
    if json {
        print_json(&diff);
    } else {
        out!("{diff}");
    }
    Ok(())
}

/// `eval stems`: BSS Eval v3 per matched pair of files and the mean, and with `framewise`
/// seconds the median over the windows.
fn stems(
    global: &Global,
    reference: &Path,
    estimate: &Path,
    framewise: Option<f64>,
    json: bool,
) -> Result<(), Error> {
    let pairs = stem_files::stem_pairs(reference, estimate)?;
    if !global.quiet {
        for (r, e) in &pairs {
            eprintln!("matched {} with {}", r.display(), e.display());
        }
    }
    let (rate, refs, ests) = stem_files::load_pairs(&pairs)?;
    let scores = bss_eval_sources(&refs, &ests)?;
    let windows = match framewise {
        Some(sec) if sec > 0.0 && sec.is_finite() => {
            let w = (sec * rate as f64).round() as usize;
            Some(bss_eval_sources_framewise(&refs, &ests, w, w)?)
        }
        Some(sec) => {
            return Err(Error::Param(format!(
                "--framewise {sec}: need a positive duration"
            )))
        }
        None => None,
    };
    let medians = windows
        .as_ref()
        .map(|w| median_over_windows(w, scores.len()));
    let names: Vec<String> = pairs
        .iter()
        .map(|(p, _)| {
            p.file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    if json {
        print_stems_json(
            &names,
            &scores,
            framewise.zip(windows.as_deref()),
            medians.as_deref(),
        );
    } else {
        print_stems_table(&names, &scores, framewise.zip(medians.as_deref()));
    }
    Ok(())
}

/// The mean of one metric over the sources.
fn mean(scores: &[SourceScores], f: fn(&SourceScores) -> f64) -> f64 {
    scores.iter().map(f).sum::<f64>() / scores.len() as f64
}

fn print_stems_json(
    names: &[String],
    scores: &[SourceScores],
    framewise: Option<(f64, &[WindowScores])>,
    medians: Option<&[Option<SourceScores>]>,
) {
    let by_name = |values: Vec<serde_json::Value>| -> serde_json::Map<String, serde_json::Value> {
        names.iter().cloned().zip(values).collect()
    };
    let per = by_name(scores.iter().map(to_value).collect());
    let out = serde_json::json!({
        "method": "bss_eval_sources v3 (mir_eval), 512-tap filters, no permutation",
        "framewise": framewise.map(|(seconds, w)| serde_json::json!({
            "seconds": seconds,
            "windows": w,
            "median": medians.map(|m| by_name(m.iter().map(to_value).collect())),
        })),
        "sources": per,
        "mean": {
            "sdr": mean(scores, |s| s.sdr),
            "sir": mean(scores, |s| s.sir),
            "sar": mean(scores, |s| s.sar),
            "si_sdr": mean(scores, |s| s.si_sdr),
        },
    });
    print_json(&out);
}

fn print_stems_table(
    names: &[String],
    scores: &[SourceScores],
    medians: Option<(f64, &[Option<SourceScores>])>,
) {
    outln!("BSS Eval v3 (mir_eval bss_eval_sources, 512-tap filters), dB");
    outln!(
        "{:<24} {:>8} {:>8} {:>8} {:>8}",
        "source",
        "SDR",
        "SIR",
        "SAR",
        "SI-SDR"
    );
    let row = |name: &str, s: &SourceScores| {
        outln!(
            "{:<24} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            name,
            s.sdr,
            s.sir,
            s.sar,
            s.si_sdr
        )
    };
    for (name, s) in names.iter().zip(scores) {
        row(name, s);
    }
    let means = SourceScores {
        sdr: mean(scores, |s| s.sdr),
        sir: mean(scores, |s| s.sir),
        sar: mean(scores, |s| s.sar),
        si_sdr: mean(scores, |s| s.si_sdr),
    };
    row("mean", &means);
    if let Some((sec, m)) = medians {
        outln!("\nmedian over {sec} s windows without a silent source");
        for (name, s) in names.iter().zip(m) {
            match s {
                Some(s) => row(name, s),
                None => outln!("{name:<24} no window without a silent source"),
            }
        }
    }
}

fn to_value<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).expect("serializable")
}

/// Prints any serializable value as pretty JSON.
fn print_json<T: serde::Serialize>(value: &T) {
    outln!(
        "{}",
        serde_json::to_string_pretty(value).expect("serializable")
    );
}
