//! Working without a score: the blind decomposition of a recording into R components
//! (`decompose`, as `librosa.decompose.decompose` with scikit-learn's NMF) and its
//! harmonic–percussive separation (`hpss`, as `librosa.decompose.hpss`), each one whole job:
//! read the recording, its magnitude spectrogram, the factorization or the masks, the stems,
//! `run.json`, every output staged and moved into place together.
//!
//! The data: audio → mono at the analysis rate → |STFT|^power = V (K × N) → (optionally V ⊙ M
//! of one HPSS part) → W (K × R), H (R × N) → per-component masks → stems at the recording's
//! own rate and channels.
//!
//! A component's stem is the mixture's STFT times the soft mask
//!
//! ```text
//! M_c = (W_c H_c)^p / ( Σ_c' (W_c' H_c')^p + max(V − WH, 0)^p )      (p = 1: S·(W_c H_c)/(WH) where WH ≥ V)
//! ```
//!
//! (times the part's HPSS mask with `--hpss`), laid over every channel at its own rate as the
//! score-informed stems are ([`crate::tasks::separate`]); what the model does not explain,
//! max(V − WH, 0), stays in `stems/residual.wav`, the mixture minus the stems.

use std::path::{Path, PathBuf};

use nalgebra::DMatrix;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::io::atomic::Staging;
use crate::io::audio::{self, Audio, WavEncoding};
use crate::io::matrix;
use crate::io::outputs::{self, InputFile};
use crate::job::Observer;
use crate::model::beta_nmf::{self, BetaParams, BlindFactorization, Stored};
use crate::model::nmf::Float;
use crate::model::nmf_init::{self, InitMethod};
use crate::pipeline::{magnitude_of, Magnitude, MAX_ANALYSIS_RATE, MAX_COMPONENTS, MAX_ITERATIONS};
use crate::signal::hpss::{self, HpssParams};
use crate::signal::stft::StftParams;
use crate::tasks::separate::{self, Grid, MaskStems, StemFile};

/// The spectrogram a score-free job works on (librosa's defaults: 22050 Hz, 2048 / 512,
/// magnitude).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SpectrogramParams {
    pub sample_rate: u32,
    pub stft: StftParams,
    /// 1: magnitude |X|; 2: power |X|².
    pub power: u8,
}

impl Default for SpectrogramParams {
    fn default() -> Self {
        SpectrogramParams {
            sample_rate: 22050,
            stft: StftParams {
                n_fft: 2048,
                hop: 512,
            },
            power: 1,
        }
    }
}

/// Which HPSS part a decomposition works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    Harmonic,
    Percussive,
}

/// How W starts.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Start {
    /// One of scikit-learn's initializations, with its seed.
    Method { method: InitMethod, seed: u32 },
    /// A dictionary of templates from a file (K × R, `.npy` or CSV); H starts at √(mean(V)/R).
    Dictionary { path: PathBuf },
}

/// One `decompose` run.
#[derive(Debug, Clone, Serialize)]
pub struct DecomposeJob {
    pub audio: PathBuf,
    #[serde(skip)]
    pub outdir: PathBuf,
    pub spectrogram: SpectrogramParams,
    /// R (with a dictionary: its columns).
    pub components: usize,
    pub start: Start,
    pub nmf: BetaParams,
    /// Added to every entry of V (Itakura–Saito cannot take zeros).
    pub floor: f64,
    /// Components ordered by their template's peak bin (librosa's `sort=True`).
    pub sort: bool,
    /// Decompose one HPSS part instead of the whole spectrogram.
    pub hpss: Option<(Part, HpssParams)>,
    /// Write the component stems and the residual.
    pub stems: bool,
    /// p of the stems' masks.
    pub mask_power: f64,
    /// Stem encoding (`None`: as the recording).
    pub encoding: Option<WavEncoding>,
}

/// One `hpss` run.
#[derive(Debug, Clone, Serialize)]
pub struct HpssJob {
    pub audio: PathBuf,
    #[serde(skip)]
    pub outdir: PathBuf,
    pub spectrogram: SpectrogramParams,
    pub params: HpssParams,
    /// Write the masks as `mask_harmonic.npy` / `mask_percussive.npy`.
    pub masks: bool,
    pub encoding: Option<WavEncoding>,
}

/// What a finished score-free job reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlindSummary {
    pub components: usize,
    pub iterations: usize,
    pub stems: usize,
    pub outdir: PathBuf,
}

/// run.json of a score-free job.
#[derive(Serialize)]
struct Record<'a, P: Serialize, R: Serialize> {
    scorenmf_version: &'static str,
    command: &'a str,
    inputs: Vec<InputFile>,
    params: &'a P,
    results: R,
}

/// The outputs `decompose` replaces as a whole (`run.json` last).
const DECOMPOSE_OUTPUTS: [&str; 7] = [
    "W.npy",
    "W.csv",
    "H.npy",
    "H.csv",
    "components.csv",
    "stems",
    "run.json",
];
/// The outputs `hpss` replaces as a whole (`run.json` last).
const HPSS_OUTPUTS: [&str; 4] = [
    "mask_harmonic.npy",
    "mask_percussive.npy",
    "stems",
    "run.json",
];

/// Runs a `decompose` job and writes its outputs.
pub fn run_decompose(job: &DecomposeJob, observer: &dyn Observer) -> Result<BlindSummary> {
    let mut inputs = vec![job.audio.clone()];
    if let Start::Dictionary { path } = &job.start {
        inputs.push(path.clone());
    }
    check_spares_inputs(&job.outdir, &inputs, &DECOMPOSE_OUTPUTS)?;
    check_decompose(job)?;
    let audio = audio::read_audio(&job.audio)?;
    observer.finished("inputs read");
    let (v, part_mask) = analysis_input(&audio, job)?;
    // Without stems the recording is not needed any more.
    let audio = if job.stems { Some(audio) } else { None };
    observer.finished("spectrogram");
    let part_mask = part_mask.as_ref();
    match v {
        Input::Single(v) => decompose_input(job, &inputs, audio.as_ref(), &v, part_mask, observer),
        Input::Double(v) => decompose_input(job, &inputs, audio.as_ref(), &v, part_mask, observer),
    }
}

/// V as the factorization reads it: the f32 spectrogram's own values, or in f64 with a floor
/// added (which f32 would round away).
enum Input {
    Single(DMatrix<f32>),
    Double(DMatrix<f64>),
}

/// The factorization of V and every output.
fn decompose_input<S: Float + Stored<f32> + Stored<f64>>(
    job: &DecomposeJob,
    inputs: &[PathBuf],
    audio: Option<&Audio>,
    v: &DMatrix<S>,
    part_mask: Option<&DMatrix<f32>>,
    observer: &dyn Observer,
) -> Result<BlindSummary> {
    if job.nmf.beta <= 0.0 && v.iter().any(|&x| x == S::ZERO) {
        return Err(Error::Audio {
            path: job.audio.clone(),
            msg: format!(
                "its spectrogram has zeros (silence), where --beta {} diverges; add a floor \
                 (e.g. --floor 1e-10) or use β > 0",
                job.nmf.beta
            ),
        });
    }
    let f = factorize(job, v, observer)?;
    observer.finished("factorized");
    let (w, h) = if job.sort {
        beta_nmf::reorder(&f.w, &f.h, &beta_nmf::sort_order(&f.w))
    } else {
        (f.w.clone(), f.h.clone())
    };
    let staging = Staging::new(&job.outdir)?;
    let root = staging.root();
    matrix::write_npy(&root.join("W.npy"), &w)?;
    matrix::write_csv(&root.join("W.csv"), &w)?;
    matrix::write_npy(&root.join("H.npy"), &h)?;
    matrix::write_csv(&root.join("H.csv"), &h)?;
    write_components(&root.join("components.csv"), &w, &h, &job.spectrogram)?;
    let stems = if job.stems {
        let audio = audio.expect("kept for the stems");
        let written = component_stems(root, job, audio, v, &w, &h, part_mask, observer)?;
        observer.finished("stems written");
        written
    } else {
        Vec::new()
    };
    let results = serde_json::json!({
        "bins": v.nrows(),
        "frames": v.ncols(),
        "components": w.ncols(),
        "iterations": f.iterations,
        "converged": f.converged,
        "error_at_init": f.error_at_init,
        "reconstruction_error": f.error,
        "errors": f.errors,
        "stems": stems.len(),
    });
    write_record(root, "decompose", inputs, job, results)?;
    staging.commit(&DECOMPOSE_OUTPUTS)?;
    Ok(BlindSummary {
        components: w.ncols(),
        iterations: f.iterations,
        stems: stems.len(),
        outdir: job.outdir.clone(),
    })
}

/// Runs an `hpss` job and writes its outputs.
pub fn run_hpss(job: &HpssJob, observer: &dyn Observer) -> Result<BlindSummary> {
    let inputs = vec![job.audio.clone()];
    check_spares_inputs(&job.outdir, &inputs, &HPSS_OUTPUTS)?;
    check_spectrogram(&job.spectrogram)?;
    check_hpss(&job.params)?;
    let audio = audio::read_audio(&job.audio)?;
    observer.finished("inputs read");
    let v = spectrogram(&audio, &job.spectrogram)?;
    let (mh, mp) = hpss::masks(&v, &job.params)?;
    let (bins, frames) = v.shape();
    drop(v);
    observer.finished("masks");
    let staging = Staging::new(&job.outdir)?;
    let root = staging.root();
    if job.masks {
        matrix::write_npy(&root.join("mask_harmonic.npy"), &mh.map(f64::from))?;
        matrix::write_npy(&root.join("mask_percussive.npy"), &mp.map(f64::from))?;
    }
    let names = ["harmonic".to_string(), "percussive".to_string()];
    let req = MaskStems {
        audio: &audio,
        grid: grid(&job.spectrogram),
        n_frames: frames,
        dir: "",
        kind: "part",
        names: &names,
        encoding: job
            .encoding
            .unwrap_or_else(|| WavEncoding::like(&audio.format)),
    };
    let masks = |from: usize, to: usize| {
        [&mh, &mp]
            .iter()
            .map(|m| m.columns(from, to - from).map(f64::from))
            .collect()
    };
    let progress = |d: usize, t: usize| observer.stems_progress(d, t);
    let stems = separate::write_mask_stems(root, &req, &masks, &progress)?;
    observer.finished("stems written");
    let results = serde_json::json!({
        "bins": bins,
        "frames": frames,
        "stems": stems.len(),
        "masks_written": job.masks,
    });
    write_record(root, "hpss", &inputs, job, results)?;
    staging.commit(&HPSS_OUTPUTS)?;
    Ok(BlindSummary {
        components: 2,
        iterations: 0,
        stems: stems.len(),
        outdir: job.outdir.clone(),
    })
}

fn check_spectrogram(s: &SpectrogramParams) -> Result<()> {
    if !(1..=2).contains(&s.power) {
        return Err(Error::Param(format!("--power {}: must be 1 or 2", s.power)));
    }
    crate::pipeline::check_geometry("--n-fft/--hop", s.stft)?;
    if !(1000..=MAX_ANALYSIS_RATE).contains(&s.sample_rate) {
        return Err(Error::Param(format!(
            "--sr {} Hz: must be in 1000..={MAX_ANALYSIS_RATE}",
            s.sample_rate
        )));
    }
    Ok(())
}

/// The longest median filter, in frames or bins (each output sorts its way through it).
pub const MAX_KERNEL: usize = 1001;

fn check_hpss(p: &HpssParams) -> Result<()> {
    if p.kernel_harmonic > MAX_KERNEL || p.kernel_percussive > MAX_KERNEL {
        return Err(Error::Param(format!(
            "--kernel-size {},{}: at most {MAX_KERNEL}",
            p.kernel_harmonic, p.kernel_percussive
        )));
    }
    Ok(())
}

fn check_decompose(job: &DecomposeJob) -> Result<()> {
    check_spectrogram(&job.spectrogram)?;
    if job.nmf.fixed_w && !matches!(job.start, Start::Dictionary { .. }) {
        return Err(Error::Param(
            "--fixed-w needs a dictionary (--init-w FILE)".into(),
        ));
    }
    if matches!(job.start, Start::Method { .. }) && !(1..=MAX_COMPONENTS).contains(&job.components)
    {
        return Err(Error::Param(format!(
            "--components {}: must be in 1..={MAX_COMPONENTS}",
            job.components
        )));
    }
    if job.nmf.max_iter > MAX_ITERATIONS {
        return Err(Error::Param(format!(
            "--max-iter {}: at most {MAX_ITERATIONS}",
            job.nmf.max_iter
        )));
    }
    if let Some((_, p)) = &job.hpss {
        check_hpss(p)?;
    }
    if !(job.floor.is_finite() && job.floor >= 0.0) {
        return Err(Error::Param(format!("--floor {}: must be ≥ 0", job.floor)));
    }
    if !(job.mask_power.is_finite() && job.mask_power > 0.0) {
        return Err(Error::Param(format!(
            "--mask-power {}: must be positive",
            job.mask_power
        )));
    }
    Ok(())
}

/// Refuses outputs (the files of `owned` and the `stems` folder under `outdir`) that would
/// replace an input.
fn check_spares_inputs(outdir: &Path, inputs: &[PathBuf], owned: &[&str]) -> Result<()> {
    let files: Vec<PathBuf> = owned
        .iter()
        .filter(|&&n| n != "stems")
        .map(|n| outdir.join(n))
        .collect();
    // The recording first, then the dictionary (decompose --init-w).
    let inputs: Vec<(&Path, &str)> = inputs
        .iter()
        .zip(["recording", "dictionary"])
        .map(|(p, what)| (p.as_path(), what))
        .collect();
    crate::job::check_spares_inputs(&inputs, &files, Some(&outdir.join("stems")))
}

fn grid(s: &SpectrogramParams) -> Grid {
    Grid {
        sample_rate: s.sample_rate,
        stft: s.stft,
    }
}

/// |STFT|^power of the recording's mono mix-down at the analysis rate, in f32 as librosa
/// computes it.
pub fn spectrogram(audio: &Audio, s: &SpectrogramParams) -> Result<DMatrix<f32>> {
    let x = audio.analysis_signal(s.sample_rate)?;
    let mut v = magnitude_of(&x, s.stft, Magnitude::Linear, 1.0)?;
    if s.power == 2 {
        v.apply(|x| *x *= *x);
    }
    if v.ncols() == 0 {
        return Err(Error::Param(
            "the recording is too short for one frame".into(),
        ));
    }
    Ok(v)
}

/// V (see [`Input`]), or V ⊙ M of the HPSS part and M.
fn analysis_input(audio: &Audio, job: &DecomposeJob) -> Result<(Input, Option<DMatrix<f32>>)> {
    let full = spectrogram(audio, &job.spectrogram)?;
    let (v, mask) = match &job.hpss {
        Some((part, p)) => {
            let (mh, mp) = hpss::masks(&full, p)?;
            let m = if *part == Part::Harmonic { mh } else { mp };
            (full.zip_map(&m, |x, y| x * y), Some(m))
        }
        None => (full, None),
    };
    let floor = job.floor;
    let v = if floor > 0.0 {
        Input::Double(v.map(|x| x as f64 + floor))
    } else {
        Input::Single(v)
    };
    Ok((v, mask))
}

/// The initial W and H and the factorization.
fn factorize<S: Float + Stored<f32> + Stored<f64>>(
    job: &DecomposeJob,
    v: &DMatrix<S>,
    observer: &dyn Observer,
) -> Result<BlindFactorization> {
    let (w0, h0) = match &job.start {
        Start::Method { method, seed } => nmf_init::initialize(v, job.components, *method, *seed)?,
        Start::Dictionary { path } => {
            let w0 = matrix::read_matrix(path)?;
            let v_rows = format!(
                "the spectrogram has {} bins (n_fft {})",
                v.nrows(),
                job.spectrogram.stft.n_fft
            );
            nmf_init::from_dictionary(v, w0, MAX_COMPONENTS, &v_rows).map_err(|msg| {
                Error::Matrix {
                    path: path.clone(),
                    msg,
                }
            })?
        }
    };
    let total = job.nmf.max_iter;
    beta_nmf::factorize(v, w0, h0, &job.nmf, |i| observer.nmf_progress(i, total))
}

/// components.csv: each component's peak bin and its frequency.
fn write_components(
    path: &Path,
    w: &DMatrix<f64>,
    h: &DMatrix<f64>,
    s: &SpectrogramParams,
) -> Result<()> {
    let hz_per_bin = s.sample_rate as f64 / s.stft.n_fft as f64;
    let mut text = String::from("component,peak_bin,peak_hz,activation_sum\n");
    for j in 0..w.ncols() {
        let peak = beta_nmf::peak_bin(w, j);
        let act: f64 = h.row(j).iter().sum();
        text.push_str(&format!(
            "{j},{peak},{:.3},{act:?}\n",
            peak as f64 * hz_per_bin
        ));
    }
    crate::io::atomic::write_bytes(path, text.as_bytes())
}

/// The component stems and the residual (see the module's documentation).
#[allow(clippy::too_many_arguments)]
fn component_stems<S: Float>(
    root: &Path,
    job: &DecomposeJob,
    audio: &Audio,
    v: &DMatrix<S>,
    w: &DMatrix<f64>,
    h: &DMatrix<f64>,
    part_mask: Option<&DMatrix<f32>>,
    observer: &dyn Observer,
) -> Result<Vec<StemFile>> {
    let r = w.ncols();
    let width = (r.saturating_sub(1)).to_string().len().max(2);
    let names: Vec<String> = (0..r).map(|j| format!("{j:0width$}")).collect();
    let req = MaskStems {
        audio,
        grid: grid(&job.spectrogram),
        n_frames: v.ncols(),
        dir: "component",
        kind: "component",
        names: &names,
        encoding: job
            .encoding
            .unwrap_or_else(|| WavEncoding::like(&audio.format)),
    };
    let p = job.mask_power;
    let masks = |from: usize, to: usize| component_masks(v, w, h, part_mask, p, from, to);
    let progress = |d: usize, t: usize| observer.stems_progress(d, t);
    separate::write_mask_stems(root, &req, &masks, &progress)
}

/// M_c for frames `from..to` (see the module's documentation).
fn component_masks<S: Float>(
    v: &DMatrix<S>,
    w: &DMatrix<f64>,
    h: &DMatrix<f64>,
    part_mask: Option<&DMatrix<f32>>,
    p: f64,
    from: usize,
    to: usize,
) -> Vec<DMatrix<f64>> {
    let (k, r, t) = (w.nrows(), w.ncols(), to - from);
    let pow = |x: f64| if p == 1.0 { x } else { x.powf(p) };
    let mut models: Vec<DMatrix<f64>> = (0..r)
        .map(|c| w.column(c) * h.view((c, from), (1, t)))
        .collect();
    let mut total = DMatrix::<f64>::zeros(k, t);
    let mut sum = DMatrix::<f64>::zeros(k, t);
    for m in &models {
        sum += m;
    }
    for (i, tot) in total.iter_mut().enumerate() {
        let (kk, n) = (i % k, i / k);
        *tot = pow((v[(kk, from + n)].to_f64() - sum[i]).max(0.0));
    }
    for m in models.iter_mut() {
        m.apply(|x| *x = pow(*x));
        total += &*m;
    }
    for m in models.iter_mut() {
        for (i, x) in m.iter_mut().enumerate() {
            let d = total[i];
            *x = if d > 0.0 { *x / d } else { 0.0 };
            if let Some(pm) = part_mask {
                *x *= pm[(i % k, from + i / k)] as f64;
            }
        }
    }
    models
}

fn write_record<P: Serialize, R: Serialize>(
    root: &Path,
    command: &str,
    inputs: &[PathBuf],
    params: &P,
    results: R,
) -> Result<()> {
    let record = Record {
        scorenmf_version: env!("CARGO_PKG_VERSION"),
        command,
        inputs: inputs
            .iter()
            .map(|p| InputFile::describe(p))
            .collect::<Result<Vec<_>>>()?,
        params,
        results,
    };
    outputs::write_json(&root.join("run.json"), &record)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The component masks and the residual's share add up to 1 where there is any energy.
    #[test]
    fn component_masks_and_the_residual_share_add_up() {
        let w = DMatrix::from_fn(6, 2, |i, j| ((i + j) % 3) as f64);
        let h = DMatrix::from_fn(2, 5, |i, j| ((i * 2 + j) % 4) as f64 * 0.5);
        let v = DMatrix::from_fn(6, 5, |i, j| ((i * j) % 5) as f64);
        let m = component_masks(&v, &w, &h, None, 1.0, 0, 5);
        let wh = &w * &h;
        for i in 0..6 {
            for j in 0..5 {
                let s = m[0][(i, j)] + m[1][(i, j)];
                let rest = (v[(i, j)] - wh[(i, j)]).max(0.0);
                let expected = if wh[(i, j)] + rest > 0.0 {
                    wh[(i, j)] / (wh[(i, j)] + rest)
                } else {
                    0.0
                };
                assert!((s - expected).abs() < 1e-12);
            }
        }
    }
}
