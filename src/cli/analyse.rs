//! The analysing commands, `transcribe`, `separate` and `run`: their options, turned into a
//! [`Job`] for [`scorenmf::job::run`], and the progress and summary they print.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use scorenmf::align::AlignParams;
use scorenmf::io::audio::WavEncoding;
use scorenmf::io::score::Repeats;
use scorenmf::job::{self, AlignRequest, Job, Observer, StemOutputs, Task};
use scorenmf::model::nmf::{Divergence, Precision};
use scorenmf::pipeline::{Config, Magnitude, Preset};
use scorenmf::tasks::separate::{By, MaskModel};
use scorenmf::Error;

use super::{set_threads, Global};

/// `transcribe`'s arguments.
#[derive(Args)]
pub struct TranscribeArgs {
    #[command(flatten)]
    pub analysis: Analysis,
}

/// `separate`'s and `run`'s arguments.
#[derive(Args)]
pub struct SeparateArgs {
    #[command(flatten)]
    pub analysis: Analysis,
    #[command(flatten)]
    pub stems: StemArgs,
}

/// What every analysing command takes: inputs, output folder, how to run, the parameters.
#[derive(Args)]
pub struct Analysis {
    #[command(flatten)]
    io: Io,
    /// Align the score to the recording first (a notation score: MIDI or MusicXML exported at
    /// its nominal tempo), then transcribe and separate from the aligned score; writes
    /// aligned_score.csv/.mid, alignment.csv and alignment.json too.
    #[arg(long)]
    align: bool,
    #[command(flatten)]
    score_opts: ScoreOpts,
    #[command(flatten)]
    exec: Exec,
    #[command(flatten)]
    params: Params,
}

/// `align`'s arguments.
#[derive(Args)]
pub struct AlignArgs {
    #[command(flatten)]
    io: Io,
    #[command(flatten)]
    score_opts: ScoreOpts,
    /// Print more detail: the time each stage took.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Worker threads (0: one per core); the outputs do not depend on it.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Write OUTDIR/report.html, a page to open in a browser (images in OUTDIR/report/): the
    /// warping path over the cost matrix, the local tempo, a player for the recording.
    #[arg(long)]
    report: bool,
}

/// How the score is read and aligned.
#[derive(Args)]
struct ScoreOpts {
    /// Repeats of a MusicXML score: `written` (unfolded, with first and second endings) or
    /// `none` (every measure once).
    #[arg(long, value_enum, default_value_t = Repeats::Written)]
    repeats: Repeats,
    /// With an alignment: go on when it says the score is not of this recording (a warning
    /// instead of an error).
    #[arg(long)]
    force: bool,
    /// With an alignment: never try a transposed score.
    #[arg(long)]
    no_transposition: bool,
}

impl ScoreOpts {
    fn request(&self) -> AlignRequest {
        AlignRequest {
            params: AlignParams {
                transposition: !self.no_transposition,
                ..AlignParams::default()
            },
            force: self.force,
        }
    }
}

/// How to run: detail printed, threads, profile.
#[derive(Args)]
struct Exec {
    /// Print more detail: the time each stage took.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Worker threads (0: one per core); the outputs do not depend on it.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Write each stage's wall time, CPU time and peak memory (RSS), and the NMF's size, to this
    /// JSON file.
    #[arg(long, value_name = "FILE")]
    profile: Option<PathBuf>,
    /// Write OUTDIR/report.html, a page to open in a browser (images in OUTDIR/report/): the
    /// spectrogram with the score and the transcription over it, W₀, W, H₀, H, the notes as a
    /// table, a player per stem.
    #[arg(long)]
    report: bool,
    /// With --report: a reference transcription (CSV or MIDI) to show `eval notes`' metrics
    /// against and to mark the missed and the wrong notes on the page.
    #[arg(long, value_name = "NOTES", requires = "report")]
    reference: Option<PathBuf>,
    /// With --report (`separate`, `run`): reference stems to show `eval stems`' metrics
    /// against: a folder of WAV files named as one grouping's stems (rh.wav, lh.wav), or of
    /// grouping folders (instrument/, pitch/).
    #[arg(long, value_name = "DIR", requires = "report")]
    reference_stems: Option<PathBuf>,
}

/// The inputs and output folder of the analysing commands.
#[derive(Args)]
pub struct Io {
    /// Recording: WAV, FLAC, MP3 or Ogg Vorbis.
    audio: PathBuf,
    /// Score: FMP-style CSV note list, MIDI or MusicXML (.musicxml, .xml, .mxl) file; aligned
    /// to the recording, or a notation score with --align (`align` always aligns it).
    score: PathBuf,
    /// Output folder (created if missing).
    #[arg(short, long)]
    outdir: PathBuf,
}

/// What stems to write.
#[derive(Args)]
pub struct StemArgs {
    /// Groupings to write stems for, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "instrument")]
    by: Vec<By>,
    /// Exponent p of the soft mask M_g = S_g^p / Σ S^p [default: 2; fmp: 1].
    #[arg(long)]
    mask_power: Option<f64>,
    /// Factorization the masks come from: `linear-kl`, a second one of the linear magnitude
    /// (generalized KL, activations from the played notes at their detected onsets), or `shared`,
    /// the transcription's own [default: linear-kl; fmp: shared].
    #[arg(long, value_enum)]
    mask_model: Option<MaskModel>,
    /// Iterations of the `linear-kl` mask factorization [default: 20].
    #[arg(long)]
    mask_iterations: Option<usize>,
    /// Write per-note stems at the recording's full length (sample-aligned) instead of cropped.
    #[arg(long)]
    full_length: bool,
    /// Sample encoding of the stems [default: like the input: 24-bit and float inputs keep their
    /// resolution, others 16-bit].
    #[arg(long, value_enum)]
    wav_encoding: Option<WavEncoding>,
}

/// Parameters shared by the analysing commands. Unset options take the preset's value; the
/// defaults shown are the `default` preset's, with `fmp`'s where it differs.
#[derive(Args)]
pub struct Params {
    /// Parameter set: `default` (chosen by measurement) or `fmp` (the FMP notebook C8S3 exactly).
    #[arg(long, value_enum, default_value_t = Preset::Default)]
    preset: Preset,
    /// Analysis sample rate in Hz [default: 22050].
    #[arg(long)]
    sample_rate: Option<u32>,
    /// FFT length of the factorization's STFT [default: 2048].
    #[arg(long)]
    n_fft: Option<usize>,
    /// Hop of the factorization's STFT [default: 512; fmp: 1024].
    #[arg(long)]
    hop: Option<usize>,
    /// NMF input: log(1 + γ|X|) or |X| [default: log].
    #[arg(long, value_enum)]
    magnitude: Option<Magnitude>,
    /// γ of the log magnitude [default: 1].
    #[arg(long)]
    gamma: Option<f64>,
    /// NMF cost [default: euclidean].
    #[arg(long, value_enum)]
    divergence: Option<Divergence>,
    /// NMF iterations [default: 100].
    #[arg(long)]
    iterations: Option<usize>,
    /// NMF arithmetic: `single` (f32) or `double` (f64, parity with libfmp) [default: single;
    /// fmp: double].
    #[arg(long, value_enum)]
    precision: Option<Precision>,
    /// Most frames per time tile of the sparse NMF: changes the speed, and the results only by
    /// rounding [default: 16].
    #[arg(long)]
    nmf_tile: Option<usize>,
    /// Stop when ‖ΔH‖₂ and ‖ΔW‖₂ fall under this; 0 runs every iteration [default: 0.001].
    #[arg(long)]
    stop_threshold: Option<f64>,
    /// ε added to the update denominators [default: 1.1920929e-7, float32 epsilon].
    #[arg(long)]
    eps: Option<f64>,
    /// Keep the templates fixed; update only the activations.
    #[arg(long)]
    fixed_w: bool,
    /// Do not max-normalize W's columns at the end.
    #[arg(long)]
    no_normalize: bool,
    /// One template pair per (pitch, instrument) instead of per pitch.
    #[arg(long)]
    per_instrument: bool,
    /// Relative half-width of a partial's band in the harmonic templates [default: 0.05].
    #[arg(long)]
    tol_pitch: Option<f64>,
    /// Tuning: frequency of A4 in Hz [default: 440].
    #[arg(long)]
    a4: Option<f64>,
    /// Initial value of the onset templates [default: 0.1].
    #[arg(long)]
    onset_init: Option<f64>,
    /// Harmonic activation window around each note, seconds before its start and after its end
    /// [default: 0.1,0.5].
    #[arg(long, value_parser = pair, value_name = "BEFORE,AFTER")]
    tol_note: Option<(f64, f64)>,
    /// Onset activation window around each note's start, seconds before and after
    /// [default: 0.2,0.1].
    #[arg(long, value_parser = pair, value_name = "BEFORE,AFTER")]
    tol_onset: Option<(f64, f64)>,
    /// Hop of the onset novelty's STFT in samples [default: 256].
    #[arg(long)]
    onset_hop: Option<usize>,
    /// Half-width in seconds of the onset search around the expected onset [default: 0.2].
    #[arg(long)]
    search: Option<f64>,
    /// σ in seconds of the prior favouring peaks near the expected onset [default: 0.1].
    #[arg(long)]
    prior_sigma: Option<f64>,
    /// Do not remove the score's median offset against the audio before the search.
    #[arg(long)]
    no_align: bool,
    /// Notes within this many seconds form a chord sharing a common onset; 0 disables
    /// [default: 0.03].
    #[arg(long)]
    chord_tol: Option<f64>,
    /// Skip the onsets' refinement on a short-window novelty (n_fft 1024, hop 64 at 22050 Hz,
    /// within ±15 ms of the first estimate).
    #[arg(long)]
    no_refine_onsets: bool,
    /// Minimum seconds between two onsets of one pitch [default: 0.06].
    #[arg(long)]
    min_gap: Option<f64>,
    /// Evidence (√(activation · unique share), relative to the median note) under which a score
    /// note is reported not played [default: 0.2].
    #[arg(long)]
    threshold: Option<f64>,
    /// Offset where the activation falls under this fraction of its peak [default: 0.1].
    #[arg(long)]
    offset_fraction: Option<f64>,
}

fn pair(s: &str) -> Result<(f64, f64), String> {
    let (a, b) = s
        .split_once(',')
        .ok_or_else(|| format!("expected BEFORE,AFTER, got '{s}'"))?;
    let num = |x: &str| {
        x.trim()
            .parse::<f64>()
            .map_err(|_| format!("'{x}' is not a number"))
    };
    Ok((num(a)?, num(b)?))
}

impl Params {
    fn config(&self) -> Config {
        let mut c = Config::preset(self.preset);
        macro_rules! set {
            ($opt:expr => $field:expr) => {
                if let Some(v) = $opt {
                    $field = v;
                }
            };
        }
        set!(self.sample_rate => c.sample_rate);
        set!(self.n_fft => c.stft.n_fft);
        set!(self.hop => c.stft.hop);
        set!(self.magnitude => c.magnitude);
        set!(self.gamma => c.gamma);
        set!(self.divergence => c.nmf.divergence);
        set!(self.precision => c.nmf.precision);
        set!(self.nmf_tile => c.nmf.tile);
        set!(self.iterations => c.nmf.iterations);
        if let Some(t) = self.stop_threshold {
            c.nmf.stop_threshold = (t != 0.0).then_some(t);
        }
        set!(self.eps => c.nmf.eps);
        c.nmf.fixed_w |= self.fixed_w;
        c.nmf.normalize &= !self.no_normalize;
        c.per_instrument |= self.per_instrument;
        set!(self.tol_pitch => c.templates.tol_pitch);
        set!(self.a4 => c.templates.a4);
        set!(self.onset_init => c.templates.onset_init);
        set!(self.tol_note => c.activations.tol_note);
        set!(self.tol_onset => c.activations.tol_onset);
        set!(self.onset_hop => c.transcribe.onset.stft.hop);
        set!(self.search => c.transcribe.onset.search);
        set!(self.prior_sigma => c.transcribe.onset.prior_sigma);
        c.transcribe.onset.align_median &= !self.no_align;
        set!(self.chord_tol => c.transcribe.onset.chord_tol);
        if self.no_refine_onsets {
            c.transcribe.onset.refine = None;
        }
        set!(self.min_gap => c.transcribe.min_gap);
        set!(self.threshold => c.transcribe.threshold);
        set!(self.offset_fraction => c.transcribe.offset_fraction);
        c
    }
}

impl StemArgs {
    /// The stems to write, and the mask options set into `c`.
    fn outputs(&self, c: &mut Config) -> StemOutputs {
        if let Some(p) = self.mask_power {
            c.separate.mask_power = p;
        }
        if let Some(m) = self.mask_model {
            c.separate.model = m;
        }
        if let Some(n) = self.mask_iterations {
            c.separate.iterations = n;
        }
        StemOutputs {
            by: self.by.clone(),
            full_length: self.full_length,
            encoding: self.wav_encoding,
        }
    }
}

/// The job an analysing command's arguments describe (`batch` builds each row's this way).
pub(super) fn job_of(task: Task, args: &Analysis, stems: Option<&StemArgs>) -> Job {
    let mut config = args.params.config();
    let stems = stems.map(|st| st.outputs(&mut config));
    Job {
        task,
        audio: args.io.audio.clone(),
        score: args.io.score.clone(),
        repeats: args.score_opts.repeats,
        align: args.align.then(|| args.score_opts.request()),
        outdir: args.io.outdir.clone(),
        config,
        stems,
        profile: args.exec.profile.clone(),
        report: args.exec.report.then(|| job::ReportRequest {
            reference: args.exec.reference.clone(),
            reference_stems: args.exec.reference_stems.clone(),
        }),
    }
}

/// Runs one analysing command and prints its one-line summary.
pub fn run(
    global: &Global,
    task: Task,
    args: &Analysis,
    stems: Option<&StemArgs>,
) -> Result<(), Error> {
    set_threads(args.exec.threads)?;
    let job = job_of(task, args, stems);
    let progress = Progress::new(global.quiet, args.exec.verbose > 0);
    let summary = job::run(&job, &progress)?;
    if !global.quiet {
        if let Some((confidence, outside)) = summary.alignment {
            eprintln!("aligned with confidence {confidence:.2}, {outside} score notes outside the recording");
        }
        let stem_note = if summary.stems == 0 {
            String::new()
        } else {
            format!(", {} stems", summary.stems)
        };
        eprintln!(
            "{} of {} score notes played, {} not played{stem_note}; wrote {}",
            summary.played,
            summary.score_notes,
            summary.not_played,
            summary.outdir.display()
        );
    }
    Ok(())
}

/// Runs `align` and prints its summary.
pub fn align(global: &Global, args: &AlignArgs) -> Result<(), Error> {
    set_threads(args.threads)?;
    let job = Job {
        task: Task::Align,
        audio: args.io.audio.clone(),
        score: args.io.score.clone(),
        repeats: args.score_opts.repeats,
        align: Some(args.score_opts.request()),
        outdir: args.io.outdir.clone(),
        config: Config::preset(Preset::Default),
        stems: None,
        profile: None,
        report: args.report.then(job::ReportRequest::default),
    };
    let progress = Progress::new(global.quiet, args.verbose > 0);
    let summary = job::run(&job, &progress)?;
    if !global.quiet {
        let (confidence, outside) = summary.alignment.unwrap_or((0.0, 0));
        eprintln!(
            "aligned {} of {} score notes (confidence {confidence:.2}); wrote {}",
            summary.score_notes - outside,
            summary.score_notes,
            summary.outdir.display()
        );
    }
    Ok(())
}

/// The job's progress on stderr: warnings, a bar for the NMF and one for the stems (hidden when
/// quiet or when stderr is not a terminal), and with `-v` each stage's time since the start.
pub(super) struct Progress {
    quiet: bool,
    verbose: bool,
    start: Instant,
    nmf: indicatif::ProgressBar,
    stems: indicatif::ProgressBar,
}

impl Progress {
    pub(super) fn new(quiet: bool, verbose: bool) -> Progress {
        Progress {
            quiet,
            verbose,
            start: Instant::now(),
            nmf: bar(quiet, "NMF", "iterations"),
            stems: bar(quiet, "stems", "steps"),
        }
    }
}

impl Observer for Progress {
    fn warning(&self, message: &str) {
        if !self.quiet {
            eprintln!("warning: {message}");
        }
    }

    fn finished(&self, stage: &str) {
        // A bar is cleared once its stage has moved it (a bar not started yet has length 0).
        for bar in [&self.nmf, &self.stems] {
            if bar.length().unwrap_or(0) > 0 && !bar.is_finished() {
                bar.finish_and_clear();
            }
        }
        if self.verbose {
            eprintln!("{:>8.3} s  {stage}", self.start.elapsed().as_secs_f64());
        }
    }

    fn nmf_progress(&self, done: usize, total: usize) {
        self.nmf.set_length(total as u64);
        self.nmf.set_position(done as u64);
    }

    fn stems_progress(&self, done: usize, total: usize) {
        self.stems.set_length(total as u64);
        self.stems.set_position(done as u64);
    }
}

/// A progress bar on stderr, hidden when quiet (indicatif hides it when stderr is no terminal).
fn bar(quiet: bool, what: &str, unit: &str) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{msg}} {{bar:30}} {{pos}}/{{len}} {unit}"
        ))
        .expect("valid template"),
    );
    bar.set_message(what.to_string());
    bar
}
