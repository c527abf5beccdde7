//! Speed and memory of the score-free commands against the Python tools they stand in for, on
//! the bench's inputs (the Chopin excerpt repeated to about 1 and 10 minutes):
//!
//! - `decompose` (R = 16, 200 iterations, no early stop, nndsvda) against scikit-learn's
//!   `NMF(solver="mu")` on librosa's spectrogram: β = 2 and β = 1 in float64 (the parity
//!   setting) and in float32 (librosa's default dtype; `--precision single`);
//! - `hpss` against `librosa.decompose.hpss` (kernel 31, soft masks).
//!
//! Whole processes (wall time and peak RSS of the child; ours writes W and H, or the two stems;
//! the Python script loads, transforms, factorizes or separates and writes the same) and the
//! factorization (or the masks) alone, timed inside each process.
//! Python runs with `SCORENMF_BENCH_PYTHON` naming an interpreter that has librosa and
//! scikit-learn (`scripts/alignment_quality.sh` makes one: target/alignment-venv/bin/python).
//!
//! Run: `cargo bench --bench decompose` (`-- --quick`: 1 minute only).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use scorenmf::io::audio::read_audio;
use scorenmf::model::beta_nmf::{self, BetaParams};
use scorenmf::model::nmf::Precision;
use scorenmf::model::nmf_init::{initialize, InitMethod};
use scorenmf::signal::hpss::{self, HpssParams};
use scorenmf::tasks::decompose::{spectrogram, SpectrogramParams};

#[allow(dead_code)]
mod common;

const R: usize = 16;
const ITERATIONS: usize = 200;

struct Case {
    name: &'static str,
    beta: f64,
    precision: Precision,
}

const CASES: [Case; 4] = [
    Case {
        name: "β=2 f64",
        beta: 2.0,
        precision: Precision::Double,
    },
    Case {
        name: "β=2 f32",
        beta: 2.0,
        precision: Precision::Single,
    },
    Case {
        name: "β=1 f64",
        beta: 1.0,
        precision: Precision::Double,
    },
    Case {
        name: "β=1 f32",
        beta: 1.0,
        precision: Precision::Single,
    },
];

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let dir = Path::new("target/bench-decompose");
    std::fs::create_dir_all(dir).unwrap();
    let minutes: &[f64] = if quick { &[1.0] } else { &[1.0, 10.0] };
    let python = std::env::var("SCORENMF_BENCH_PYTHON").ok();
    println!(
        "scorenmf score-free bench ({} threads; R {R}, {ITERATIONS} iterations)",
        rayon::current_num_threads()
    );
    println!("| input | task | scorenmf process s | peak MB | alone s | Python process s | peak MB | alone s | process × | alone × | memory ratio |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for &m in minutes {
        let r = common::Repeated::new(dir, m * 60.0);
        for case in &CASES {
            let ours = decompose_process(dir, &r.wav, case);
            let alone = decompose_alone(&r.wav, case);
            let py = python
                .as_deref()
                .and_then(|p| python_decompose(p, &r.wav, case));
            row(&r.name, case.name, ours, alone, py);
        }
        let ours = hpss_process(dir, &r.wav);
        let alone = hpss_alone(&r.wav);
        let py = python.as_deref().and_then(|p| python_hpss(p, &r.wav, dir));
        row(&r.name, "hpss", ours, alone, py);
    }
}

fn row(input: &str, task: &str, ours: (f64, f64), alone: f64, py: Option<(f64, f64, f64)>) {
    let (ps, pm, pa, ratio) = match py {
        Some((s, mb, a)) => (
            format!("{s:.2}"),
            format!("{mb:.0}"),
            format!("{a:.2}"),
            format!("{:.1} | {:.1} | {:.2}", s / ours.0, a / alone, ours.1 / mb),
        ),
        None => ("-".into(), "-".into(), "-".into(), "- | - | -".into()),
    };
    println!(
        "| {input} | {task} | {:.2} | {:.0} | {alone:.2} | {ps} | {pm} | {pa} | {ratio} |",
        ours.0, ours.1
    );
}

fn precision_arg(p: Precision) -> &'static str {
    match p {
        Precision::Double => "double",
        Precision::Single => "single",
    }
}

/// `scorenmf decompose --no-stems` as a process: (wall s, peak RSS MB).
fn decompose_process(dir: &Path, wav: &Path, case: &Case) -> (f64, f64) {
    let out = dir.join("out_decompose");
    let t = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_scorenmf"))
        .args(["-q", "decompose"])
        .arg(wav)
        .arg("-o")
        .arg(&out)
        .args([
            "-n",
            &R.to_string(),
            "--beta",
            &case.beta.to_string(),
            "--tol",
            "0",
        ])
        .args([
            "--max-iter",
            &ITERATIONS.to_string(),
            "--no-stems",
            "--precision",
            precision_arg(case.precision),
        ])
        .spawn()
        .unwrap();
    let (ok, rss) = common::wait_rss(child);
    assert!(ok, "decompose failed on {}", wav.display());
    (t.elapsed().as_secs_f64(), rss / 1e6)
}

/// The initialization and the factorization alone, in this process.
fn decompose_alone(wav: &Path, case: &Case) -> f64 {
    let audio = read_audio(wav).unwrap();
    let v = spectrogram(&audio, &SpectrogramParams::default()).unwrap();
    let t = Instant::now();
    let (w0, h0) = initialize(&v, R, InitMethod::Nndsvda, 0).unwrap();
    let p = BetaParams {
        beta: case.beta,
        max_iter: ITERATIONS,
        tol: 0.0,
        precision: case.precision,
        ..Default::default()
    };
    let f = beta_nmf::factorize(&v, w0, h0, &p, |_| {}).unwrap();
    assert_eq!(f.iterations, ITERATIONS);
    t.elapsed().as_secs_f64()
}

/// `scorenmf hpss` as a process (writes the harmonic, percussive and residual stems).
fn hpss_process(dir: &Path, wav: &Path) -> (f64, f64) {
    let out = dir.join("out_hpss");
    let t = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_scorenmf"))
        .args(["-q", "hpss"])
        .arg(wav)
        .arg("-o")
        .arg(&out)
        .spawn()
        .unwrap();
    let (ok, rss) = common::wait_rss(child);
    assert!(ok, "hpss failed on {}", wav.display());
    (t.elapsed().as_secs_f64(), rss / 1e6)
}

/// The masks alone, in this process.
fn hpss_alone(wav: &Path) -> f64 {
    let audio = read_audio(wav).unwrap();
    let v = spectrogram(&audio, &SpectrogramParams::default()).unwrap();
    let t = Instant::now();
    let _ = hpss::masks(&v, &HpssParams::default()).unwrap();
    t.elapsed().as_secs_f64()
}

/// Runs a Python script on `args`: (wall s of the whole process, its peak RSS MB, the seconds
/// it prints after `ALONE`).
fn python_run(python: &str, code: &str, args: &[&str]) -> Option<(f64, f64, f64)> {
    let t = Instant::now();
    let child = Command::new(python)
        .args(["-c", code])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let output = child.wait_with_output().ok()?;
    let wall = t.elapsed().as_secs_f64();
    if !output.status.success() {
        eprintln!("Python failed on {args:?}");
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().find(|l| l.starts_with("ALONE"))?;
    let mut it = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse::<f64>().ok());
    let (alone, rss) = (it.next()?, it.next()?);
    Some((wall, rss, alone))
}

/// scikit-learn's NMF on librosa's spectrogram, as `librosa.decompose.decompose` calls it.
fn python_decompose(python: &str, wav: &Path, case: &Case) -> Option<(f64, f64, f64)> {
    let code = r#"
import sys, time, resource, warnings, numpy as np, librosa
warnings.filterwarnings("ignore")
from sklearn.decomposition import NMF
y, sr = librosa.load(sys.argv[1], sr=22050)
S = np.abs(librosa.stft(y))
if sys.argv[3] == "double":
    S = S.astype(np.float64)
t = time.perf_counter()
model = NMF(n_components=int(sys.argv[4]), solver="mu", beta_loss=float(sys.argv[2]), init="nndsvda",
            random_state=0, max_iter=int(sys.argv[5]), tol=0)
H = model.fit_transform(S.T).T
W = model.components_.T
alone = time.perf_counter() - t
np.save(sys.argv[6] + "/W.npy", W); np.save(sys.argv[6] + "/H.npy", H)
print("ALONE", alone, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"#;
    let out = std::env::temp_dir();
    python_run(
        python,
        code,
        &[
            &wav.display().to_string(),
            &case.beta.to_string(),
            precision_arg(case.precision),
            &R.to_string(),
            &ITERATIONS.to_string(),
            &out.display().to_string(),
        ],
    )
}

/// librosa's HPSS with the stems written, as its documentation shows it.
fn python_hpss(python: &str, wav: &Path, dir: &Path) -> Option<(f64, f64, f64)> {
    let code = r#"
import sys, time, resource, warnings, numpy as np, librosa, soundfile as sf
warnings.filterwarnings("ignore")
y, sr = librosa.load(sys.argv[1], sr=22050)
D = librosa.stft(y)
t = time.perf_counter()
mh, mp = librosa.decompose.hpss(np.abs(D), mask=True)
alone = time.perf_counter() - t
sf.write(sys.argv[2] + "/harmonic.wav", librosa.istft(D * mh, length=len(y)), sr)
sf.write(sys.argv[2] + "/percussive.wav", librosa.istft(D * mp, length=len(y)), sr)
print("ALONE", alone, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"#;
    let out: PathBuf = dir.join("out_librosa_hpss");
    std::fs::create_dir_all(&out).ok()?;
    python_run(
        python,
        code,
        &[&wav.display().to_string(), &out.display().to_string()],
    )
}
