//! The `scorenmf` command line: parses arguments and hands over to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use scorenmf::nmf::{Divergence, Precision};
use scorenmf::outputs::{self, InputFile, RunRecord};
use scorenmf::pipeline::{self, Config, Magnitude, Preset};
use scorenmf::{audio, inspect, profile, score, Error};

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
    /// Print more detail: the time each stage took.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    verbose: u8,
    /// Worker threads (0: one per core).
    #[arg(long, global = true, default_value_t = 0)]
    threads: usize,
    /// Write each stage's wall time, CPU time and peak memory (RSS), and the NMF's size and
    /// speed, to this JSON file (`transcribe`, `separate`, `run`).
    #[arg(long, global = true, value_name = "FILE")]
    profile: Option<PathBuf>,
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
    /// Transcribe: which score notes were played, with onsets from the audio, offsets and gains.
    ///
    /// Writes OUTDIR/notes.csv (FMP format), notes.mid, notes.json (events, notes not played,
    /// evidence, onset shifts) and run.json (every parameter, inputs with SHA-256).
    Transcribe {
        #[command(flatten)]
        io: Io,
        #[command(flatten)]
        params: Params,
    },
    /// Separate the recording into stems by instrument, pitch and note, from the score-informed
    /// factorization (soft masks on every original channel, at the recording's own rate).
    ///
    /// Writes OUTDIR/stems/instrument/<label>.wav, stems/pitch/<midi>_<name>.wav,
    /// stems/note/<id>_<midi>_<name>_<onset>s.wav (cropped to the note unless --full-length),
    /// stems/residual.wav, and run.json.
    Separate {
        #[command(flatten)]
        io: Io,
        #[command(flatten)]
        stems: StemArgs,
        #[command(flatten)]
        params: Params,
    },
    /// Transcription and separation in one pass (the masks from their own factorization unless
    /// --mask-model shared): notes.csv, notes.mid, notes.json, stems (per instrument unless --by
    /// says otherwise) and run.json.
    Run {
        #[command(flatten)]
        io: Io,
        #[command(flatten)]
        stems: StemArgs,
        #[command(flatten)]
        params: Params,
    },
    /// Evaluate a transcription against a reference.
    #[command(subcommand)]
    Eval(EvalCommand),
}

#[derive(Subcommand)]
enum EvalCommand {
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
        /// Reference stems: a folder (matched to the estimates by file name) or a
        /// comma-separated list of files.
        reference: PathBuf,
        /// Estimated stems: a folder or a comma-separated list in the references' order.
        estimate: PathBuf,
        /// Also score windows of this many seconds (window = hop, as museval's 1 s) and report
        /// each source's median over the windows where no source is silent.
        #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "1")]
        framewise: Option<f64>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// An offset ratio, or none.
#[derive(Clone, Copy)]
struct OffsetRatio(Option<f64>);

/// Either a folder of WAV/FLAC/… files or a comma-separated list of files.
fn stem_files(arg: &std::path::Path) -> Result<Vec<PathBuf>, Error> {
    if arg.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(arg)
            .map_err(|e| Error::Read {
                path: arg.to_path_buf(),
                source: e,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        Ok(files)
    } else {
        Ok(arg
            .to_string_lossy()
            .split(',')
            .map(|s| PathBuf::from(s.trim()))
            .collect())
    }
}

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

/// The inputs and output folder of the analysing commands.
#[derive(Args)]
struct Io {
    /// Recording: WAV, FLAC, MP3 or Ogg Vorbis.
    audio: PathBuf,
    /// Score aligned to the recording: FMP-style CSV note list or MIDI file.
    score: PathBuf,
    /// Output folder (created if missing).
    #[arg(short, long)]
    outdir: PathBuf,
}

/// What stems to write.
#[derive(Args)]
struct StemArgs {
    /// Groupings to write stems for, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "instrument")]
    by: Vec<scorenmf::separate::By>,
    /// Exponent p of the soft mask M_g = S_g^p / Σ S^p [default: 2; fmp: 1].
    #[arg(long)]
    mask_power: Option<f64>,
    /// Factorization the masks come from: `linear-kl`, a second one of the linear magnitude
    /// (generalized KL, activations from the played notes at their detected onsets), or `shared`,
    /// the transcription's own [default: linear-kl; fmp: shared].
    #[arg(long, value_enum)]
    mask_model: Option<scorenmf::separate::MaskModel>,
    /// Iterations of the `linear-kl` mask factorization [default: 20].
    #[arg(long)]
    mask_iterations: Option<usize>,
    /// Write per-note stems at the recording's full length (sample-aligned) instead of cropped.
    #[arg(long)]
    full_length: bool,
    /// Sample encoding of the stems [default: like the input: 24-bit and float inputs keep their
    /// resolution, others 16-bit].
    #[arg(long, value_enum)]
    wav_encoding: Option<audio::WavEncoding>,
}

/// Parameters shared by the analysing commands. Unset options take the preset's value; the
/// defaults shown are the `default` preset's, with `fmp`'s where it differs.
#[derive(Args)]
struct Params {
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
            c.nmf.stop_threshold = (t > 0.0).then_some(t);
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.global.threads > 0 {
        // Fails only if the pool already exists, which it cannot this early.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(cli.global.threads)
            .build_global();
    }
    if cli.global.profile.is_some() {
        scorenmf::profile::enable();
    }
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
            out!("{report}");
            Ok(())
        }
        Command::Transcribe { io, params } => {
            analyse_and_write(cli, "transcribe", io, params, None, true)
        }
        Command::Separate { io, stems, params } => {
            analyse_and_write(cli, "separate", io, params, Some(stems), false)
        }
        Command::Run { io, stems, params } => {
            analyse_and_write(cli, "run", io, params, Some(stems), true)
        }
        Command::Eval(cmd) => eval(cli, cmd),
    }
}

/// The analysing commands: factorize and transcribe, then write the transcription and/or the
/// stems, and run.json.
fn analyse_and_write(
    cli: &Cli,
    command: &str,
    io: &Io,
    params: &Params,
    stems: Option<&StemArgs>,
    write_notes: bool,
) -> Result<(), Error> {
    let Io {
        audio: audio_path,
        score: score_path,
        outdir,
    } = io;
    let mut config = params.config();
    if let Some(st) = stems {
        if let Some(p) = st.mask_power {
            config.separate.mask_power = p;
        }
        if let Some(m) = st.mask_model {
            config.separate.model = m;
        }
        if let Some(n) = st.mask_iterations {
            config.separate.iterations = n;
        }
    }
    let clock = std::time::Instant::now();
    let lap = |what: &str| {
        if cli.global.verbose > 0 {
            eprintln!("{:>8.3} s  {what}", clock.elapsed().as_secs_f64());
        }
    };
    let stage = profile::stage("decode");
    let a = audio::read_audio(audio_path)?;
    let s = score::read_score(score_path)?;
    drop(stage);
    warn(&cli.global, &s.warnings);
    lap("inputs read");
    let bar = progress_bar(
        &cli.global,
        config.nmf.iterations as u64,
        "NMF",
        "iterations",
    );
    let mut out = pipeline::run_transcription(&a, &s, &config, |i| bar.set_position(i as u64))?;
    bar.finish_and_clear();
    lap("factorized and transcribed");
    let mut written = Vec::new();
    if let Some(st) = stems {
        let encoding = st
            .wav_encoding
            .unwrap_or_else(|| audio::WavEncoding::like(&a.format));
        let bar = progress_bar(&cli.global, 1, "stems", "steps");
        let report = |done: usize, total: usize| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        };
        written = pipeline::separate(
            outdir,
            &a,
            &s,
            &config,
            &mut out,
            &st.by,
            st.full_length,
            encoding,
            &report,
        )?;
        bar.finish_and_clear();
        lap("stems written");
    }
    let t = &out.transcription;
    if write_notes {
        let note_stems: Vec<_> = written
            .iter()
            .filter(|w| w.kind == "note")
            .cloned()
            .collect();
        let _stage = profile::stage("write notes");
        outputs::write_transcription(outdir, t, &s, &note_stems)?;
        lap("notes written");
    }
    let f = &out.decomposition.factorization;
    let record = RunRecord {
        scorenmf_version: env!("CARGO_PKG_VERSION"),
        command,
        inputs: vec![
            InputFile::describe(audio_path)?,
            InputFile::describe(score_path)?,
        ],
        config: &config,
        results: serde_json::json!({
            "components": out.decomposition.components.len(),
            "frames": f.h.ncols(),
            "nmf_iterations": f.iterations,
            "nmf_relative_error": f.rel_error,
            "score_offset": t.score_offset,
            "played": t.events.len(),
            "not_played": t.not_played.len(),
            "stems": stems.map(|st| serde_json::json!({
                "by": st.by,
                "full_length": st.full_length,
                "files": written.len(),
            })),
        }),
    };
    outputs::write_json(&outdir.join("run.json"), &record)?;
    if let Some(path) = &cli.global.profile {
        let profile = serde_json::json!({
            "command": command,
            "threads": rayon::current_num_threads(),
            "stages": profile::stages(),
            "process_peak_rss": profile::process_peak_rss(),
            "nmf": {
                "k": f.w.nrows(),
                "r": f.w.ncols(),
                "n": f.h.ncols(),
                "iterations": f.iterations,
                "active_entries": f.active_entries,
                "precision": config.nmf.precision,
                "divergence": config.nmf.divergence,
                "tile": config.nmf.tile,
            },
        });
        outputs::write_json(path, &profile)?;
    }
    if !cli.global.quiet {
        let stem_note = if written.is_empty() {
            String::new()
        } else {
            format!(", {} stems", written.len())
        };
        eprintln!(
            "{} of {} score notes played, {} not played{stem_note}; wrote {}",
            t.events.len(),
            s.notes.len(),
            t.not_played.len(),
            outdir.display()
        );
    }
    Ok(())
}

fn eval_stems(
    reference: &std::path::Path,
    estimate: &std::path::Path,
    framewise: Option<f64>,
    json: bool,
) -> Result<(), Error> {
    use scorenmf::eval::stems::{bss_eval_sources_framewise, median_over_windows};
    let refs = stem_files(reference)?;
    let ests = if estimate.is_dir() && reference.is_dir() {
        refs.iter()
            .map(|r| estimate.join(r.file_name().unwrap_or_default()))
            .collect()
    } else {
        stem_files(estimate)?
    };
    if refs.is_empty() || refs.len() != ests.len() {
        return Err(Error::Param(format!(
            "{} reference and {} estimated stems: need the same number, at least one",
            refs.len(),
            ests.len()
        )));
    }
    let load = |p: &PathBuf| -> Result<(u32, Vec<f64>), Error> {
        let a = audio::read_audio(p)?;
        Ok((a.sample_rate, a.mono().into_iter().map(f64::from).collect()))
    };
    let mut r = Vec::new();
    let mut e = Vec::new();
    let mut rate = None;
    for (rp, ep) in refs.iter().zip(&ests) {
        let (rr, rs) = load(rp)?;
        let (er, mut es) = load(ep)?;
        if rate.is_some_and(|x| x != rr) || er != rr {
            return Err(Error::Param(format!(
                "{}: sample rate {er} Hz differs from the references' {rr} Hz",
                ep.display()
            )));
        }
        rate = Some(rr);
        es.resize(rs.len(), 0.0);
        r.push(rs);
        e.push(es);
    }
    let n = r.iter().map(Vec::len).max().unwrap_or(0);
    for s in r.iter_mut().chain(e.iter_mut()) {
        s.resize(n, 0.0);
    }
    let scores = scorenmf::eval::stems::bss_eval_sources(&r, &e)?;
    let windows = match framewise {
        Some(sec) if sec > 0.0 && sec.is_finite() => {
            let w = (sec * rate.unwrap_or(1) as f64).round() as usize;
            Some(bss_eval_sources_framewise(&r, &e, w, w)?)
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
    let names: Vec<String> = refs
        .iter()
        .map(|p| {
            p.file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let mean = |f: fn(&scorenmf::eval::stems::SourceScores) -> f64| {
        scores.iter().map(f).sum::<f64>() / scores.len() as f64
    };
    if json {
        let per: serde_json::Map<String, serde_json::Value> = names
            .iter()
            .zip(&scores)
            .map(|(n, s)| (n.clone(), serde_json::to_value(s).expect("serializable")))
            .collect();
        let out = serde_json::json!({
            "method": "bss_eval_sources v3 (mir_eval), 512-tap filters, no permutation",
            "framewise": windows.as_ref().map(|w| serde_json::json!({
                "seconds": framewise,
                "windows": w,
                "median": medians.as_ref().map(|m| names.iter().zip(m).map(|(n, s)| (n.clone(), serde_json::to_value(s).expect("serializable"))).collect::<serde_json::Map<_, _>>()),
            })),
            "sources": per,
            "mean": { "sdr": mean(|s| s.sdr), "sir": mean(|s| s.sir), "sar": mean(|s| s.sar), "si_sdr": mean(|s| s.si_sdr) },
        });
        outln!(
            "{}",
            serde_json::to_string_pretty(&out).expect("serializable")
        );
    } else {
        outln!("BSS Eval v3 (mir_eval bss_eval_sources, 512-tap filters), dB");
        outln!(
            "{:<24} {:>8} {:>8} {:>8} {:>8}",
            "source",
            "SDR",
            "SIR",
            "SAR",
            "SI-SDR"
        );
        for (name, s) in names.iter().zip(&scores) {
            outln!(
                "{:<24} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
                name,
                s.sdr,
                s.sir,
                s.sar,
                s.si_sdr
            );
        }
        outln!(
            "{:<24} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            "mean",
            mean(|s| s.sdr),
            mean(|s| s.sir),
            mean(|s| s.sar),
            mean(|s| s.si_sdr)
        );
        if let (Some(m), Some(sec)) = (&medians, framewise) {
            outln!("\nmedian over {sec} s windows without a silent source");
            for (name, s) in names.iter().zip(m) {
                match s {
                    Some(s) => outln!(
                        "{:<24} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
                        name,
                        s.sdr,
                        s.sir,
                        s.sar,
                        s.si_sdr
                    ),
                    None => outln!("{name:<24} no window without a silent source"),
                }
            }
        }
    }
    Ok(())
}

fn eval(cli: &Cli, cmd: &EvalCommand) -> Result<(), Error> {
    use scorenmf::eval::notes::{evaluate, evaluate_velocity, EvalNote, NoteTolerances};
    match cmd {
        EvalCommand::Stems {
            reference,
            estimate,
            framewise,
            json,
        } => return eval_stems(reference, estimate, *framewise, *json),
        EvalCommand::ScoreDiff {
            score,
            notes_json,
            json,
        } => {
            let s = score::read_score(score)?;
            let text = std::fs::read_to_string(notes_json).map_err(|e| Error::Read {
                path: notes_json.clone(),
                source: e,
            })?;
            let diff = scorenmf::eval::score_diff::score_diff(&s, notes_json, &text)?;
            if *json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&diff).expect("serializable")
                );
            } else {
                out!("{diff}");
            }
            return Ok(());
        }
        EvalCommand::Notes { .. } => {}
    }
    let EvalCommand::Notes {
        reference,
        estimate,
        onset_tolerance,
        pitch_tolerance,
        offset_ratio,
        offset_min_tolerance,
        velocity_tolerance,
        strict,
        json,
    } = cmd
    else {
        unreachable!("the other evaluations returned above");
    };
    let r = score::read_score(reference)?;
    let e = score::read_score(estimate)?;
    warn(&cli.global, &r.warnings);
    warn(&cli.global, &e.warnings);
    let to_eval = |s: &score::Score| s.notes.iter().map(EvalNote::from_note).collect::<Vec<_>>();
    let (rn, en) = (to_eval(&r), to_eval(&e));
    let t = NoteTolerances {
        onset_tolerance: *onset_tolerance,
        pitch_tolerance: *pitch_tolerance,
        offset_ratio: offset_ratio.0,
        offset_min_tolerance: *offset_min_tolerance,
        strict: *strict,
        velocity_tolerance: *velocity_tolerance,
    };
    let mut rows = vec![(
        "onset".to_string(),
        evaluate(
            &rn,
            &en,
            &NoteTolerances {
                offset_ratio: None,
                ..t
            },
        ),
    )];
    if let Some(ratio) = offset_ratio.0 {
        rows.push((format!("onset+offset ({ratio})"), evaluate(&rn, &en, &t)));
        if r.has_velocities && e.has_velocities {
            rows.push((
                format!("onset+offset+velocity ({velocity_tolerance})"),
                evaluate_velocity(&rn, &en, &t),
            ));
        }
    }
    if *json {
        let obj: serde_json::Map<String, serde_json::Value> = rows
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::to_value(v).expect("serializable")))
            .collect();
        let out = serde_json::json!({ "tolerances": t, "scores": obj });
        outln!(
            "{}",
            serde_json::to_string_pretty(&out).expect("serializable")
        );
    } else {
        outln!(
            "{} reference notes, {} estimated; onset tolerance {} s, pitch {} cents",
            r.notes.len(),
            e.notes.len(),
            onset_tolerance,
            pitch_tolerance
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
        for (name, s) in &rows {
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
    Ok(())
}

/// A progress bar on stderr (hidden when quiet or when stderr is not a terminal).
fn progress_bar(global: &Global, len: u64, what: &str, unit: &str) -> indicatif::ProgressBar {
    if global.quiet {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{msg}} {{bar:30}} {{pos}}/{{len}} {unit}"
        ))
        .expect("valid template"),
    );
    bar.set_message(what.to_string());
    bar
}
