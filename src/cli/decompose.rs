//! The score-free commands, `decompose` and `hpss`: their options, turned into a
//! [`DecomposeJob`] / [`HpssJob`] for [`scorenmf::tasks::decompose`], and the summary they print.

use std::path::PathBuf;

use clap::Args;

use scorenmf::io::audio::WavEncoding;
use scorenmf::model::beta_nmf::BetaParams;
use scorenmf::model::nmf::Precision;
use scorenmf::model::nmf_init::InitMethod;
use scorenmf::signal::hpss::HpssParams;
use scorenmf::signal::stft::StftParams;
use scorenmf::tasks::decompose::{self, DecomposeJob, HpssJob, Part, SpectrogramParams, Start};
use scorenmf::Error;

use super::analyse::Progress;
use super::{set_threads, Global};

/// The spectrogram both commands work on (librosa's defaults).
#[derive(Args)]
struct Spectrogram {
    /// Analysis sample rate in Hz (the mono mix-down is resampled to it).
    #[arg(long = "sr", default_value_t = 22050)]
    sample_rate: u32,
    /// FFT length.
    #[arg(long, default_value_t = 2048)]
    n_fft: usize,
    /// Hop length.
    #[arg(long, default_value_t = 512)]
    hop: usize,
    /// 1: magnitude |X| (librosa's `np.abs(stft)`); 2: power |X|².
    #[arg(long, default_value_t = 1)]
    power: u8,
}

impl Spectrogram {
    fn params(&self) -> SpectrogramParams {
        SpectrogramParams {
            sample_rate: self.sample_rate,
            stft: StftParams {
                n_fft: self.n_fft,
                hop: self.hop,
            },
            power: self.power,
        }
    }
}

/// How to run.
#[derive(Args)]
struct Exec {
    /// Print the time each stage took.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Worker threads (0: one per core); the outputs do not depend on it.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Sample encoding of the stems [default: like the input].
    #[arg(long, value_enum)]
    wav_encoding: Option<WavEncoding>,
}

/// HPSS's parameters (librosa.decompose.hpss's defaults).
#[derive(Args)]
struct HpssOpts {
    /// Median filter lengths: harmonic (frames), percussive (bins); one value for both.
    #[arg(long, value_delimiter = ',', num_args = 1..=2, default_value = "31")]
    kernel_size: Vec<usize>,
    /// Mask power p (soft masks); see --binary.
    #[arg(long = "mask-exponent", default_value_t = 2.0)]
    exponent: f64,
    /// Binary masks (librosa's power=np.inf).
    #[arg(long)]
    binary: bool,
    /// Margins ≥ 1: harmonic, percussive; one value for both. Above 1, what neither part
    /// takes goes to the residual.
    #[arg(long, value_delimiter = ',', num_args = 1..=2, default_value = "1")]
    margin: Vec<f64>,
}

impl HpssOpts {
    fn params(&self) -> HpssParams {
        let two = |v: &[usize]| (v[0], *v.get(1).unwrap_or(&v[0]));
        let (kh, kp) = two(&self.kernel_size);
        let (mh, mp) = (
            self.margin[0],
            *self.margin.get(1).unwrap_or(&self.margin[0]),
        );
        HpssParams {
            kernel_harmonic: kh,
            kernel_percussive: kp,
            power: if self.binary {
                f64::INFINITY
            } else {
                self.exponent
            },
            margin_harmonic: mh,
            margin_percussive: mp,
        }
    }
}

/// `decompose`'s arguments.
#[derive(Args)]
pub struct DecomposeArgs {
    /// Recording: WAV, FLAC, MP3 or Ogg Vorbis.
    audio: PathBuf,
    /// Output folder (created if missing).
    #[arg(short, long)]
    outdir: PathBuf,
    /// Number of components R (with --init-w: the dictionary's columns).
    #[arg(short = 'n', long, default_value_t = 8)]
    components: usize,
    /// β of the divergence: 2 Euclidean, 1 Kullback–Leibler, 0 Itakura–Saito (any value works).
    #[arg(long, default_value_t = 2.0, allow_negative_numbers = true)]
    beta: f64,
    /// Initialization, as scikit-learn defines it.
    #[arg(long, value_enum, default_value_t = InitMethod::Nndsvda)]
    init: InitMethod,
    /// Seed of the random numbers (scikit-learn's random_state: the same seed gives its numbers).
    #[arg(long, default_value_t = 0)]
    seed: u32,
    /// A dictionary: templates (bins × components, .npy or CSV, e.g. an earlier run's W.npy) to
    /// start W from; H starts at √(mean(V)/R).
    #[arg(long, value_name = "FILE")]
    init_w: Option<PathBuf>,
    /// Keep the dictionary's templates fixed and fit only the activations (scikit-learn's
    /// transform).
    #[arg(long)]
    fixed_w: bool,
    /// Most iterations (scikit-learn's max_iter).
    #[arg(long, default_value_t = 200)]
    max_iter: usize,
    /// Stop when the error's decrease over 10 iterations, relative to the initial error, is
    /// below this (scikit-learn's tol; 0 runs every iteration).
    #[arg(long, default_value_t = 1e-4)]
    tol: f64,
    /// Regularization of the activations H (scikit-learn's alpha_W through librosa, which
    /// factorizes Sᵀ).
    #[arg(long, default_value_t = 0.0)]
    alpha_h: f64,
    /// Regularization of the templates W (scikit-learn's alpha_H through librosa) [default:
    /// --alpha-h].
    #[arg(long)]
    alpha_w: Option<f64>,
    /// Share of L1 in the regularization, 0 (L2) to 1 (L1).
    #[arg(long, default_value_t = 0.0)]
    l1_ratio: f64,
    /// Order the components by their template's peak frequency (librosa's sort=True).
    #[arg(long)]
    sort: bool,
    /// Added to every entry of V (β ≤ 0 cannot take zeros).
    #[arg(long, default_value_t = 0.0)]
    floor: f64,
    /// Arithmetic: `double` (f64, scikit-learn's numbers on float64 input) or `single` (f32).
    #[arg(long, value_enum, default_value_t = Precision::Double)]
    precision: Precision,
    /// Decompose one part of a harmonic–percussive separation instead of the whole spectrogram.
    #[arg(long, value_enum, value_name = "PART")]
    hpss: Option<Part>,
    #[command(flatten)]
    hpss_opts: HpssOpts,
    /// Exponent p of the component masks (W_c H_c)^p / Σ.
    #[arg(long, default_value_t = 1.0)]
    mask_power: f64,
    /// Write W and H only, no stems.
    #[arg(long)]
    no_stems: bool,
    #[command(flatten)]
    spectrogram: Spectrogram,
    #[command(flatten)]
    exec: Exec,
}

/// `hpss`'s arguments.
#[derive(Args)]
pub struct HpssArgs {
    /// Recording: WAV, FLAC, MP3 or Ogg Vorbis.
    audio: PathBuf,
    /// Output folder (created if missing).
    #[arg(short, long)]
    outdir: PathBuf,
    #[command(flatten)]
    opts: HpssOpts,
    /// Write the masks too, as mask_harmonic.npy and mask_percussive.npy (librosa's mask=True).
    #[arg(long)]
    masks: bool,
    #[command(flatten)]
    spectrogram: Spectrogram,
    #[command(flatten)]
    exec: Exec,
}

/// Runs `decompose`.
pub fn decompose(global: &Global, args: &DecomposeArgs) -> Result<(), Error> {
    set_threads(args.exec.threads)?;
    let start = match &args.init_w {
        Some(path) => Start::Dictionary { path: path.clone() },
        None => Start::Method {
            method: args.init,
            seed: args.seed,
        },
    };
    let job = DecomposeJob {
        audio: args.audio.clone(),
        outdir: args.outdir.clone(),
        spectrogram: args.spectrogram.params(),
        components: args.components,
        start,
        nmf: BetaParams {
            beta: args.beta,
            max_iter: args.max_iter,
            tol: args.tol,
            alpha_h: args.alpha_h,
            alpha_w: args.alpha_w.unwrap_or(args.alpha_h),
            l1_ratio: args.l1_ratio,
            fixed_w: args.fixed_w,
            precision: args.precision,
        },
        floor: args.floor,
        sort: args.sort,
        hpss: args.hpss.map(|p| (p, args.hpss_opts.params())),
        stems: !args.no_stems,
        mask_power: args.mask_power,
        encoding: args.exec.wav_encoding,
    };
    let progress = Progress::new(global.quiet, args.exec.verbose > 0);
    let s = decompose::run_decompose(&job, &progress)?;
    if !global.quiet {
        eprintln!(
            "{} components in {} iterations, {} stems; wrote {}",
            s.components,
            s.iterations,
            s.stems,
            s.outdir.display()
        );
    }
    Ok(())
}

/// Runs `hpss`.
pub fn hpss(global: &Global, args: &HpssArgs) -> Result<(), Error> {
    set_threads(args.exec.threads)?;
    let job = HpssJob {
        audio: args.audio.clone(),
        outdir: args.outdir.clone(),
        spectrogram: args.spectrogram.params(),
        params: args.opts.params(),
        masks: args.masks,
        encoding: args.exec.wav_encoding,
    };
    let progress = Progress::new(global.quiet, args.exec.verbose > 0);
    let s = decompose::run_hpss(&job, &progress)?;
    if !global.quiet {
        eprintln!("{} stems; wrote {}", s.stems, s.outdir.display());
    }
    Ok(())
}
