//! The stages in order, with one [`Config`]:
//!
//! audio → mono at the analysis rate → STFT → V (log or linear magnitude) → W₀, H₀ from the
//! score → constrained NMF → note events (with a fine-grid onset novelty of the same signal).

use nalgebra::DMatrix;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::io::audio::Audio;
use crate::io::score::{Note, Score};
use crate::model::activations::{init_activations, ActivationParams};
use crate::model::kernel::{advise_huge_pages, line, padded};
use crate::model::nmf::{
    factorize_in_place, factorize_traced, Divergence, Factorization, NmfParams, Precision,
};
use crate::model::templates::{components, init_templates, Component, TemplateParams};
use crate::profile;
use crate::signal::onsets::{Grid, NoveltyBank};
use crate::signal::stft::{magnitude, Stft, StftParams};
use crate::tasks::separate::{
    write_stems, MaskModel, Model, SeparateParams, StemFile, StemRequest,
};
use crate::tasks::transcribe::{
    novelty_requests, transcribe, Activations, Fine, TranscribeParams, Transcription,
};

/// How the NMF's input V is made from the STFT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Magnitude {
    /// V = log(1 + γ·|X|) (FMP notebooks, γ = 1).
    Log,
    /// V = |X|.
    Linear,
}

/// Named parameter sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// The project's defaults, chosen by measurement (see the README).
    Default,
    /// The FMP notebook C8S3 (onset model) exactly: n_fft 2048, hop 1024 at 22050 Hz,
    /// V = log(1 + |X|), Euclidean updates, 100 iterations, max-normalized W.
    Fmp,
}

/// Every parameter of a run; written to `run.json` next to the outputs.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Config {
    pub preset: Preset,
    /// Analysis sample rate in Hz; the recording's mono mix-down is resampled to it.
    pub sample_rate: u32,
    /// STFT of the factorization.
    pub stft: StftParams,
    pub magnitude: Magnitude,
    /// γ of the log magnitude.
    pub gamma: f64,
    /// One template pair per (pitch, instrument) instead of per pitch.
    pub per_instrument: bool,
    pub templates: TemplateParams,
    pub activations: ActivationParams,
    pub nmf: NmfParams,
    pub transcribe: TranscribeParams,
    pub separate: SeparateParams,
}

impl Config {
    pub fn preset(preset: Preset) -> Config {
        let fmp = Config {
            preset,
            sample_rate: 22050,
            stft: StftParams {
                n_fft: 2048,
                hop: 1024,
            },
            magnitude: Magnitude::Log,
            gamma: 1.0,
            per_instrument: false,
            templates: TemplateParams::default(),
            activations: ActivationParams::default(),
            // libfmp's `nmf` as the notebook calls it, in f64 like numpy (single precision
            // differs from the reference by ~4e-5, double by ~3e-14: tests/nmf_parity.rs).
            nmf: NmfParams {
                precision: Precision::Double,
                ..NmfParams::default()
            },
            transcribe: TranscribeParams::default(),
            separate: SeparateParams::default(),
        };
        match preset {
            Preset::Fmp => fmp,
            Preset::Default => Config {
                stft: StftParams {
                    n_fft: 2048,
                    hop: 512,
                },
                nmf: NmfParams::default(),
                // Measured on rendered two-hand and four-voice mixtures (README, separation
                // table): masks from a linear-magnitude KL factorization of the score's notes at
                // their detected onsets beat the log-magnitude transcription's own (2.1–2.4 dB
                // from the oracle against 3.1–4.1 dB), and p = 2 beats p = 1.
                separate: SeparateParams {
                    mask_power: 2.0,
                    model: MaskModel::LinearKl,
                    ..SeparateParams::default()
                },
                ..fmp
            },
        }
    }

    /// Seconds between the frames of the factorization.
    pub fn frame_time(&self) -> f64 {
        self.stft.hop as f64 / self.sample_rate as f64
    }

    /// Checks every parameter no type rules out, before anything is allocated: the analysis
    /// geometry within [`MAX_N_FFT`] and [`MAX_ANALYSIS_RATE`] (so memory follows the audio's
    /// length alone), every number finite and in its range. One message per parameter, naming
    /// its option.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Param(m));
        if !(1000..=MAX_ANALYSIS_RATE).contains(&self.sample_rate) {
            return bad(format!(
                "--sample-rate {} Hz: must be in 1000..={MAX_ANALYSIS_RATE}",
                self.sample_rate
            ));
        }
        check_geometry("--n-fft/--hop", self.stft)?;
        let op = &self.transcribe.onset;
        check_geometry("the onset novelty's", op.stft)?;
        if let Some(g) = op.refine {
            check_geometry("the refinement's", g)?;
        }
        let t = &self.templates;
        in_range("--tol-pitch", t.tol_pitch, 0.0, 0.5, false)?;
        in_range("--a4", t.a4, 1.0, 20000.0, true)?;
        in_range("--onset-init", t.onset_init, 0.0, 1e6, false)?;
        let a = &self.activations;
        for (name, v) in [("--tol-note", a.tol_note), ("--tol-onset", a.tol_onset)] {
            in_range(name, v.0, -60.0, 60.0, true)?;
            in_range(name, v.1, -60.0, 60.0, true)?;
        }
        in_range("--gamma", self.gamma, f64::MIN_POSITIVE, 1e12, true)?;
        let n = &self.nmf;
        in_range("--eps", n.eps, 0.0, 1.0, true)?;
        if let Some(s) = n.stop_threshold {
            in_range("--stop-threshold", s, 0.0, 1e12, true)?;
        }
        count("--iterations", n.iterations, 0, MAX_ITERATIONS)?;
        count("--nmf-tile", n.tile, 1, 1 << 16)?;
        let tr = &self.transcribe;
        in_range("--search", op.search, 0.001, 10.0, true)?;
        in_range("--prior-sigma", op.prior_sigma, 1e-4, 100.0, true)?;
        in_range("--chord-tol", op.chord_tol, 0.0, 10.0, true)?;
        in_range("--min-gap", tr.min_gap, 0.0, 10.0, true)?;
        in_range("--threshold", tr.threshold, 0.0, 1e6, true)?;
        in_range("--offset-fraction", tr.offset_fraction, 0.0, 1.0, true)?;
        let sp = &self.separate;
        in_range("--mask-power", sp.mask_power, 1e-3, 64.0, true)?;
        count("--mask-iterations", sp.iterations, 0, MAX_ITERATIONS)?;
        Ok(())
    }
}

/// The largest FFT length of any analysis (2¹⁶: 3 s at 22050 Hz).
pub const MAX_N_FFT: usize = 1 << 16;
/// The highest analysis sample rate, Hz.
pub const MAX_ANALYSIS_RATE: u32 = 192_000;
/// The most NMF components (two per pitch, or per pitch and instrument with
/// `--per-instrument`): H and its copies grow with R × frames.
pub const MAX_COMPONENTS: usize = 1024;
/// The most NMF iterations a run may ask for.
pub const MAX_ITERATIONS: usize = 100_000;

/// An STFT geometry within [`MAX_N_FFT`], with a hop in 1..=n_fft.
pub fn check_geometry(what: &str, g: StftParams) -> Result<()> {
    if !(16..=MAX_N_FFT).contains(&g.n_fft) || g.hop == 0 || g.hop > g.n_fft {
        return Err(Error::Param(format!(
            "{what} n_fft {} and hop {}: need 16 ≤ n_fft ≤ {MAX_N_FFT} and 1 ≤ hop ≤ n_fft",
            g.n_fft, g.hop
        )));
    }
    Ok(())
}

/// `v` finite and in [lo, hi] (or [lo, hi) when `!closed`).
fn in_range(name: &str, v: f64, lo: f64, hi: f64, closed: bool) -> Result<()> {
    let ok = v.is_finite() && v >= lo && (v < hi || (closed && v == hi));
    if ok {
        return Ok(());
    }
    let close = if closed { "]" } else { ")" };
    Err(Error::Param(format!(
        "{name} {v}: must be a number in [{lo}, {hi}{close}"
    )))
}

/// A count in lo..=hi.
fn count(name: &str, v: usize, lo: usize, hi: usize) -> Result<()> {
    if (lo..=hi).contains(&v) {
        return Ok(());
    }
    Err(Error::Param(format!("{name} {v}: must be in {lo}..={hi}")))
}

/// The factorization of a recording against its score.
pub struct Decomposition {
    pub components: Vec<Component>,
    /// V, K × N.
    pub v: DMatrix<f32>,
    pub w0: DMatrix<f64>,
    pub h0: DMatrix<f64>,
    pub factorization: Factorization,
}

/// V of the signal `x` on the STFT `geometry`: |X| or log(1 + γ|X|), in f32 as numpy computes
/// it on librosa's float32 STFT; block by block (in parallel), so the complex spectrogram is
/// never held whole.
pub fn magnitude_of(
    x: &[f32],
    geometry: StftParams,
    kind: Magnitude,
    gamma: f64,
) -> Result<DMatrix<f32>> {
    use rayon::prelude::*;
    const BLOCK: usize = 256;
    let stft = Stft::new(geometry)?;
    let (k, n) = (geometry.n_bins(), geometry.n_frames(x.len()));
    // Room for the NMF's padded layout, so laying V out in place never reallocates, and 2 MB
    // pages for the NMF's streaming of it (both in `kernel`).
    let mut data = vec![0f32; padded::<f32>(k) * n + line::<f32>()];
    advise_huge_pages(&data);
    data.truncate(k * n);
    let mut v = DMatrix::from_vec(k, n, data);
    v.as_mut_slice()
        .par_chunks_mut(BLOCK * k)
        .enumerate()
        .for_each(|(b, out)| {
            let from = b * BLOCK;
            let spec = stft.forward_range(x, from, from + out.len() / k);
            // Frame-major spectrogram data and column-major V share one layout.
            let g = gamma as f32;
            for (o, c) in out.iter_mut().zip(&spec.data) {
                *o = match kind {
                    Magnitude::Linear => magnitude(*c),
                    Magnitude::Log => (1.0f32 + g * magnitude(*c)).ln(),
                };
            }
        });
    Ok(v)
}

/// The factorization's inputs from the analysis signal `x`: the components, V, W₀ and H₀.
pub fn nmf_inputs(
    x: &[f32],
    score: &Score,
    c: &Config,
) -> Result<(Vec<Component>, DMatrix<f32>, DMatrix<f64>, DMatrix<f64>)> {
    let stage = profile::stage("stft");
    let v = magnitude_of(x, c.stft, c.magnitude, c.gamma)?;
    drop(stage);
    let _stage = profile::stage("templates and activations");
    let comps = components(score, c.per_instrument);
    if comps.len() > MAX_COMPONENTS {
        return Err(Error::Param(format!(
            "--per-instrument: the score's (pitch, instrument) pairs make {} components, at most {MAX_COMPONENTS}",
            comps.len()
        )));
    }
    let freq_res = c.sample_rate as f64 / c.stft.n_fft as f64;
    let w0 = init_templates(&comps, v.nrows(), freq_res, &c.templates);
    let h0 = init_activations(&comps, score, v.ncols(), c.frame_time(), &c.activations);
    Ok((comps, v, w0, h0))
}

/// STFT, V, W₀, H₀ and the constrained NMF of the analysis signal `x`; with `trace`, the
/// NMF's error after every iteration too ([`crate::model::nmf::factorize_traced`]).
pub fn decompose(
    x: &[f32],
    score: &Score,
    c: &Config,
    trace: bool,
    progress: impl FnMut(usize),
) -> Result<Decomposition> {
    let (comps, mut v, w0, h0) = nmf_inputs(x, score, c)?;
    let stage = profile::stage("nmf");
    let factorization = match trace {
        true => factorize_traced(&mut v, w0.clone(), h0.clone(), &c.nmf, progress)?,
        false => factorize_in_place(&mut v, w0.clone(), h0.clone(), &c.nmf, progress)?,
    };
    drop(stage);
    Ok(Decomposition {
        components: comps,
        v,
        w0,
        h0,
        factorization,
    })
}

/// Everything `transcribe` computes.
pub struct TranscribeOutput {
    pub decomposition: Decomposition,
    pub transcription: Transcription,
}

/// The whole transcription of `audio` against `score`.
pub fn run_transcription(
    audio: &Audio,
    score: &Score,
    c: &Config,
    progress: impl FnMut(usize),
) -> Result<TranscribeOutput> {
    run_transcription_traced(audio, score, c, false, progress)
}

/// [`run_transcription`]; with `trace`, the NMF's error after every iteration too (for the
/// report's figure).
pub fn run_transcription_traced(
    audio: &Audio,
    score: &Score,
    c: &Config,
    trace: bool,
    progress: impl FnMut(usize),
) -> Result<TranscribeOutput> {
    c.validate()?;
    let stage = profile::stage("resample");
    let x = audio.analysis_signal(c.sample_rate)?;
    drop(stage);
    let decomposition = decompose(&x, score, c, trace, progress)?;
    let _stage = profile::stage("transcription");
    let op = &c.transcribe.onset;
    let grid = Grid::new(x.len(), c.sample_rate, op.stft);
    let requests = novelty_requests(score, &grid, op, c.templates.a4);
    let flux = NoveltyBank::new(&x, grid, op.stft, op, requests)?;
    let fine = op.refine.map(|geometry| Fine {
        x: &x,
        grid: Grid::new(x.len(), c.sample_rate, geometry),
        geometry,
    });
    let act = Activations {
        components: &decomposition.components,
        v: &decomposition.v,
        log_gamma: match c.magnitude {
            Magnitude::Linear => None,
            Magnitude::Log => Some(c.gamma),
        },
        w: &decomposition.factorization.w,
        h: &decomposition.factorization.h,
        frame_time: c.frame_time(),
        bin_hz: c.sample_rate as f64 / c.stft.n_fft as f64,
        a4: c.templates.a4,
    };
    let transcription = transcribe(
        score,
        &flux,
        fine.as_ref(),
        &act,
        &c.transcribe,
        c.templates.a4,
    )?;
    Ok(TranscribeOutput {
        decomposition,
        transcription,
    })
}

impl TranscribeOutput {
    /// The onset of every score note for the masks: detected for played notes, NaN otherwise.
    pub fn onsets(&self, score: &Score) -> Vec<f64> {
        let mut onsets = vec![f64::NAN; score.notes.len()];
        for e in &self.transcription.events {
            onsets[e.score_note] = e.onset;
        }
        onsets
    }
}

/// The factorization for the masks with [`MaskModel::LinearKl`]. V = |X| is recovered in place
/// from the transcription's V (|X| = (e^V − 1)/γ for the log magnitude), which it consumes; W
/// starts again from W₀; H₀ is built as for the transcription, but with each played note at its
/// detected onset and every other note moved by the score's median offset (a note judged not
/// played keeps its activation here: the judgement errs on soft notes, and a real note left out
/// of the model would leak into the others' stems); then generalized KL updates
/// (`c.separate.iterations`; otherwise the transcription's NMF parameters).
pub fn mask_factorization(
    out: &mut TranscribeOutput,
    score: &Score,
    c: &Config,
) -> Result<Factorization> {
    use rayon::prelude::*;
    let detected = out.onsets(score);
    let offset = out.transcription.score_offset;
    let d = &mut out.decomposition;
    let mut v = std::mem::replace(&mut d.v, DMatrix::zeros(0, 0));
    if c.magnitude == Magnitude::Log {
        let g = c.gamma as f32;
        v.as_mut_slice()
            .par_iter_mut()
            .for_each(|x| *x = x.exp_m1() / g);
    }
    let moved = Score::new(
        score
            .notes
            .iter()
            .zip(detected)
            .map(|(n, o)| Note {
                onset: if o.is_finite() { o } else { n.onset + offset },
                ..n.clone()
            })
            .collect(),
        vec![],
    );
    let h0 = init_activations(
        &d.components,
        &moved,
        v.ncols(),
        c.frame_time(),
        &c.activations,
    );
    let params = NmfParams {
        divergence: Divergence::Kl,
        iterations: c.separate.iterations,
        ..c.nmf
    };
    factorize_in_place(&mut v, d.w0.clone(), h0, &params, |_| {})
}

/// Separates `audio` by the masks of [`SeparateParams::model`] and writes the stems under
/// `outdir/stems`. With [`MaskModel::LinearKl`] the transcription's V is consumed
/// ([`mask_factorization`]).
pub fn separate(
    outdir: &std::path::Path,
    audio: &Audio,
    score: &Score,
    c: &Config,
    out: &mut TranscribeOutput,
    by: &[crate::tasks::separate::By],
    full_length: bool,
    encoding: crate::io::audio::WavEncoding,
    progress: &dyn Fn(usize, usize),
) -> Result<Vec<StemFile>> {
    let refit = match c.separate.model {
        MaskModel::Shared => None,
        MaskModel::LinearKl => {
            let _stage = profile::stage("mask nmf");
            Some(mask_factorization(out, score, c)?)
        }
    };
    let onsets = out.onsets(score);
    let _stage = profile::stage("stems");
    let d = &out.decomposition;
    let f = refit.as_ref().unwrap_or(&d.factorization);
    let model = Model {
        components: &d.components,
        w: &f.w,
        h: &f.h,
        sample_rate: c.sample_rate,
        stft: c.stft,
    };
    write_stems(
        outdir,
        &model,
        &StemRequest {
            audio,
            score,
            onsets: &onsets,
            by,
            params: c.separate,
            full_length,
            encoding,
        },
        progress,
    )
}
