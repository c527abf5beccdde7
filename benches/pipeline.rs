//! The performance benchmark: `cargo bench --bench pipeline [-- --quick] [-- --no-python]`.
//!
//! Inputs: the bundled Chopin excerpt, and the excerpt repeated to about 10 and 60 minutes with
//! its score shifted accordingly (made under `target/bench/` on first use). It prints:
//!
//! 1. the machine, and the f32/f64 GEMM peak of faer (the NMF's GEMM) on 1 thread and all threads;
//! 2. whole-process runs of `scorenmf run` (per-instrument stems; `--preset fmp` and the default
//!    preset): wall time and peak RSS per stage (`--profile`), NMF iterations per second and
//!    dense-equivalent GFLOP/s;
//! 3. the NMF alone, in this process, on the 10-minute input: 1 vs all threads, the score's H₀ vs
//!    an all-ones (dense) H₀, and scores with 2× and 4× the pitches (same audio, the same number
//!    of nonzeros in H₀) — its time follows H₀'s nonzeros, not R·N;
//! 4. the FMP reference pipeline in Python (`bench/reference.py`, librosa + libfmp in their own
//!    venv) on the same inputs and the ratio Python / scorenmf, whole process and NMF alone.
//!
//! Dense-equivalent work counts 2·K·R·N flops per big product: two per Euclidean iteration
//! (WᵀV and V·Hᵀ; the rest is O(R²·N + K·R²)), four per KL iteration. Everything is printed as
//! Markdown and also written to `target/bench/report.md`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use nalgebra::DMatrix;
use scorenmf::io::audio::read_audio;
use scorenmf::io::score::{self, read_score, Note};
use scorenmf::model::kernel;
use scorenmf::model::nmf::{factorize, NmfParams, Precision};
use scorenmf::pipeline::{self, Config, Preset};

mod common;
use common::{AUDIO, SCORE};

#[derive(Clone)]
struct Input {
    name: String,
    audio: PathBuf,
    score: PathBuf,
    seconds: f64,
}

/// Everything printed, kept for `target/bench/report.md`.
#[derive(Default)]
struct Report(String);

impl Report {
    fn say(&mut self, s: impl Into<String>) {
        let s = s.into();
        println!("{s}");
        self.0.push_str(&s);
        self.0.push('\n');
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let python = !args.iter().any(|a| a == "--no-python");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::env::set_current_dir(root).expect("project root");
    let dir = root.join("target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    let mut report = Report::default();

    report.say(format!("# scorenmf benchmark\n\n{}\n", machine()));
    let peak = gemm_peak();
    report.say(format!(
        "faer GEMM peak (2048³): f32 {:.0} GFLOP/s on 1 thread, {:.0} on {}; f64 {:.0} / {:.0}\n",
        peak.f32_1, peak.f32_all, peak.threads, peak.f64_1, peak.f64_all
    ));

    let mut inputs = vec![Input {
        name: "chopin".into(),
        audio: AUDIO.into(),
        score: SCORE.into(),
        seconds: read_audio(Path::new(AUDIO)).unwrap().duration(),
    }];
    let minutes: &[usize] = if quick { &[10] } else { &[10, 60] };
    for &m in minutes {
        inputs.push(repeated(&dir, m as f64 * 60.0, 1));
    }
    // Realistic long inputs: rendered pieces with a real piece's pitch count (R about 80).
    for &m in minutes {
        let d = common::Rendered::new(&dir, m as f64 * 60.0);
        report.say(format!(
            "Input `{}`: {} rendered pieces of {} s in turn, {:.0} s, {} distinct pitches.",
            d.name,
            common::PIECES,
            common::PIECE_SECONDS,
            d.seconds,
            d.pitches
        ));
        inputs.push(Input {
            name: d.name,
            audio: d.wav,
            score: d.csv,
            seconds: d.seconds,
        });
    }
    report.say("");
    let runs = whole_processes(&mut report, &dir, &inputs);
    stage_tables(&mut report, &runs);
    nmf_alone(&mut report, &dir, &inputs[1]);
    let dense_ten = inputs.iter().find(|i| i.name == "dense_10min").unwrap();
    nmf_by_components(&mut report, &dir, dense_ten);
    kernel_paths(&mut report, dense_ten, &peak);
    if python {
        python_reference(&mut report, &dir, &inputs, &runs);
    }
    std::fs::write(dir.join("report.md"), report.0).unwrap();
}

/// `scorenmf run` with per-instrument stems, both presets, as whole processes.
fn whole_processes(
    report: &mut Report,
    dir: &Path,
    inputs: &[Input],
) -> Vec<(String, &'static str, RunResult)> {
    report.say("## `scorenmf run` (transcription + per-instrument stems), whole process\n");
    report.say("| input | preset | wall s | peak RSS MB | NMF s | NMF it/s | NMF GFLOP/s dense-eq. | R | N | H₀ tiles active |");
    report.say("|---|---|---|---|---|---|---|---|---|---|");
    let mut runs = Vec::new();
    let best = kernel::path();
    // The best path on every input, then each other path this CPU runs on the realistic inputs
    // (what a machine without the better ones would measure).
    let mut plan: Vec<(&Input, Option<kernel::Path>)> = inputs.iter().map(|i| (i, None)).collect();
    for p in kernel::Path::ALL {
        if p != best && p.supported() {
            plan.extend(
                inputs
                    .iter()
                    .filter(|i| i.name.starts_with("dense"))
                    .map(|i| (i, Some(p))),
            );
        }
    }
    for (input, kernels) in plan {
        for preset in ["fmp", "default"] {
            let r = run_scorenmf(dir, input, preset, kernels, &[]);
            let name = match kernels {
                None => input.name.clone(),
                Some(p) => format!("{} [{}]", input.name, p.name()),
            };
            report.say(format!(
                "| {name} ({:.0} s) | {preset} | {:.2} | {:.0} | {:.3} | {:.0} | {:.0} | {} | {} | {:.0} % |",
                input.seconds,
                r.wall,
                r.peak_mb(),
                r.nmf_seconds,
                r.iterations as f64 / r.nmf_seconds,
                r.dense_flops() / r.nmf_seconds / 1e9,
                r.r,
                r.n,
                100.0 * r.active as f64 / (r.r * r.n) as f64,
            ));
            runs.push((name, preset, r));
        }
    }
    report.say(format!(
        "\nRows marked [path] force that path with `SCORENMF_KERNELS`; the others take {}.\n",
        best.describe()
    ));
    runs
}

/// Each long input's stages: wall time, CPU time, cores busy, peak memory.
fn stage_tables(report: &mut Report, runs: &[(String, &'static str, RunResult)]) {
    report.say("");
    for (name, preset, r) in runs {
        if name == "chopin" || name.contains('[') {
            continue;
        }
        report.say(format!("Stages of `{name}`, preset {preset}:\n"));
        report.say("| stage | s | CPU s | cores busy | peak RSS MB |\n|---|---|---|---|---|");
        for (stage, s, rss, cpu) in &r.stages {
            report.say(format!(
                "| {stage} | {s:.3} | {cpu:.3} | {:.2} | {:.0} |",
                cpu / s.max(1e-9),
                *rss as f64 / 1e6
            ));
        }
        report.say("");
    }
}

/// The NMF alone on the 10-minute input: threads, score vs all-ones H₀, more pitches.
fn nmf_alone(report: &mut Report, dir: &Path, ten: &Input) {
    // The NMF alone.
    report.say(format!(
        "## NMF alone on `{}` (FMP geometry: n_fft 2048, hop 1024; 100 iterations, no early stop)\n",
        ten.name
    ));
    report.say("| score | precision | H₀ | threads | s | it/s | GFLOP/s dense-eq. | GFLOP/s done | nonzeros of H₀ |");
    report.say("|---|---|---|---|---|---|---|---|---|");
    let (v, one) = nmf_inputs(ten);
    let all_threads = rayon::current_num_threads();
    let mut times = std::collections::HashMap::new();
    for (label, h0_kind) in [("score", false), ("all ones", true)] {
        for precision in [Precision::Single, Precision::Double] {
            for threads in [1, all_threads] {
                let (w0, h0) = if h0_kind {
                    (
                        one.0.clone(),
                        DMatrix::from_element(one.1.nrows(), one.1.ncols(), 1.0),
                    )
                } else {
                    one.clone()
                };
                let t = time_nmf(&v, w0, h0.clone(), precision, threads, None);
                times.insert((label, precision, threads), t.seconds);
                report.say(format!(
                    "| 1× pitches (R {}) | {precision:?} | {label} | {threads} | {:.3} | {:.0} | {:.0} | {:.0} | {} |",
                    h0.nrows(),
                    t.seconds,
                    100.0 / t.seconds,
                    t.dense_flops / t.seconds / 1e9,
                    t.done_flops / t.seconds / 1e9,
                    h0.iter().filter(|x| **x != 0.0).count()
                ));
            }
        }
    }
    for factor in [2, 4] {
        let (_, (w0, h0)) = nmf_inputs(&repeated(dir, ten.seconds, factor));
        let nnz = h0.iter().filter(|x| **x != 0.0).count();
        let r = h0.nrows();
        let t = time_nmf(&v, w0, h0, Precision::Single, all_threads, None);
        report.say(format!(
            "| {factor}× pitches (R {r}) | Single | score | {all_threads} | {:.3} | {:.0} | {:.0} | {:.0} | {nnz} |",
            t.seconds,
            100.0 / t.seconds,
            t.dense_flops / t.seconds / 1e9,
            t.done_flops / t.seconds / 1e9,
        ));
    }
    let s = |l, p, t| times[&(l, p, t)];
    report.say(format!(
        "\nThreads: {all_threads} vs 1 → {:.2}× (f32, score H₀). Score H₀ vs all-ones H₀, {all_threads} threads: {:.2}× less time in f32, {:.2}× in f64 (the `fmp` preset's precision).\n",
        s("score", Precision::Single, 1) / s("score", Precision::Single, all_threads),
        s("all ones", Precision::Single, all_threads) / s("score", Precision::Single, all_threads),
        s("all ones", Precision::Double, all_threads) / s("score", Precision::Double, all_threads),
    ));
}

/// The FMP reference pipeline in Python on the same inputs, against `run --preset fmp`.
fn python_reference(
    report: &mut Report,
    dir: &Path,
    inputs: &[Input],
    runs: &[(String, &'static str, RunResult)],
) {
    // The Python reference.
    report.say(
        "## Python reference (librosa 0.11 + libfmp 1.3, numba) vs `scorenmf run --preset fmp`\n",
    );
    report.say("| input | Python wall s | Python NMF s | Python peak RSS MB | scorenmf wall s | scorenmf NMF s | scorenmf peak RSS MB | whole × | NMF × | memory ratio |");
    report.say("|---|---|---|---|---|---|---|---|---|---|");
    // The excerpt, and the 10-minute inputs (60 minutes would take the reference many minutes).
    for input in inputs.iter().filter(|i| !i.name.ends_with("60min")) {
        let Some(py) = run_python(dir, input) else {
            report.say(format!("| {} | failed (see stderr) |", input.name));
            continue;
        };
        let ours = &runs
            .iter()
            .find(|(n, p, _)| *n == input.name && *p == "fmp")
            .unwrap()
            .2;
        report.say(format!(
            "| {} | {:.2} | {:.3} | {:.0} | {:.2} | {:.3} | {:.0} | {:.1} | {:.1} | {:.2} |",
            input.name,
            py.wall,
            py.nmf_seconds,
            py.peak_rss as f64 / 1e6,
            ours.wall,
            ours.nmf_seconds,
            ours.peak_mb(),
            py.wall / ours.wall,
            py.nmf_seconds / ours.nmf_seconds,
            ours.peak_mb() / (py.peak_rss as f64 / 1e6),
        ));
    }
    report.say("");
}

/// The NMF alone on one realistic input's audio (FMP geometry, f32, all threads) with its score
/// and with scores of two and four times its pitches (later pieces transposed): its time against
/// the nonzeros of H₀, which the tiles' work follows.
fn nmf_by_components(report: &mut Report, dir: &Path, input: &Input) {
    report.say(format!(
        "## NMF time against the nonzeros of H₀ on `{}` (FMP geometry, 100 iterations, f32, all threads)\n",
        input.name
    ));
    report.say("| score | R | nonzeros of H₀ | share of R·N | s | ns per nonzero and iteration | GFLOP/s done |");
    report.say("|---|---|---|---|---|---|---|");
    let (v, _) = nmf_inputs(input);
    let threads = rayon::current_num_threads();
    let notes = read_score(&input.score).unwrap().notes;
    for factor in [1usize, 2, 4] {
        let shifts = [0i32, 19, -19, 38];
        let piece = |n: &Note| (n.onset / common::PIECE_SECONDS) as usize;
        let moved: Vec<Note> = notes
            .iter()
            .map(|n| Note {
                pitch: (n.pitch as i32 + shifts[piece(n) % factor]).clamp(21, 108) as u8,
                ..n.clone()
            })
            .collect();
        let csv = dir.join(format!("{}_{factor}x_pitches.csv", input.name));
        score::csv::write(&csv, &moved).unwrap();
        let (_, (w0, h0)) = nmf_inputs(&Input {
            score: csv,
            ..input.clone()
        });
        let nnz = h0.iter().filter(|x| **x != 0.0).count();
        let (r, n) = h0.shape();
        let t = time_nmf(&v, w0, h0, Precision::Single, threads, None);
        report.say(format!(
            "| {factor}× pitches | {r} | {nnz} | {:.1} % | {:.3} | {:.2} | {:.0} |",
            100.0 * nnz as f64 / (r * n) as f64,
            t.seconds,
            1e9 * t.seconds / (nnz as f64 * 100.0),
            t.done_flops / t.seconds / 1e9,
        ));
    }
    report.say("");
}

/// The NMF alone on each path this CPU runs, against faer's GEMM peak in the same precision on
/// the same threads: the share of the machine's peak its work on H₀'s active entries reaches.
fn kernel_paths(report: &mut Report, input: &Input, peak: &Peak) {
    report.say(format!(
        "## The NMF's kernel paths on `{}` (FMP geometry, 100 iterations, score H₀)\n",
        input.name
    ));
    report
        .say("| path | precision | threads | s | GFLOP/s done | faer GEMM peak | share of peak |");
    report.say("|---|---|---|---|---|---|---|");
    let (v, (w0, h0)) = nmf_inputs(input);
    let all = rayon::current_num_threads();
    for p in kernel::Path::ALL.into_iter().filter(|p| p.supported()) {
        for precision in [Precision::Single, Precision::Double] {
            for threads in [1, all] {
                let t = time_nmf(&v, w0.clone(), h0.clone(), precision, threads, Some(p));
                let gemm = match (precision, threads == 1) {
                    (Precision::Single, true) => peak.f32_1,
                    (Precision::Single, false) => peak.f32_all,
                    (Precision::Double, true) => peak.f64_1,
                    (Precision::Double, false) => peak.f64_all,
                };
                let done = t.done_flops / t.seconds / 1e9;
                report.say(format!(
                    "| {} | {precision:?} | {threads} | {:.3} | {done:.0} | {gemm:.0} | {:.0} % |",
                    p.name(),
                    t.seconds,
                    100.0 * done / gemm,
                ));
            }
        }
    }
    report.say("");
}

/// The CPU's SIMD features the NMF can use, and the path it takes.
fn simd() -> String {
    #[cfg(target_arch = "x86_64")]
    let features = {
        fn f(name: &'static str, on: bool) -> Option<&'static str> {
            on.then_some(name)
        }
        [
            f("AVX-512F", std::arch::is_x86_feature_detected!("avx512f")),
            f("AVX2", std::arch::is_x86_feature_detected!("avx2")),
            f("FMA", std::arch::is_x86_feature_detected!("fma")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ")
    };
    #[cfg(target_arch = "aarch64")]
    let features = String::from("NEON");
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let features = String::from("none known");
    let runs: Vec<&str> = kernel::Path::ALL
        .into_iter()
        .filter(|p| p.supported())
        .map(|p| p.name())
        .collect();
    let path = format!(
        "{} (this CPU runs: {})",
        kernel::path().describe(),
        runs.join(", ")
    );
    format!("SIMD: {features}; the NMF's products use {path}.")
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!(
        "Machine: {cpu}, {} threads available (rayon), scorenmf {}. {}",
        rayon::current_num_threads(),
        env!("CARGO_PKG_VERSION"),
        simd()
    )
}

struct Peak {
    threads: usize,
    f32_1: f64,
    f32_all: f64,
    f64_1: f64,
    f64_all: f64,
}

fn gemm_peak() -> Peak {
    fn run<T: scorenmf::model::nmf::Float>(par: Par) -> f64 {
        let n = 2048;
        let a = Mat::<T>::from_fn(n, n, |i, j| {
            T::from_f64(((i * 7 + j * 3) % 11) as f64 * 0.1)
        });
        let b = Mat::<T>::from_fn(n, n, |i, j| T::from_f64(((i * 5 + j) % 13) as f64 * 0.1));
        let mut c = Mat::<T>::zeros(n, n);
        matmul(&mut c, Accum::Replace, &a, &b, T::ONE, par);
        let reps = 6;
        let t = Instant::now();
        for _ in 0..reps {
            matmul(&mut c, Accum::Replace, &a, &b, T::ONE, par);
        }
        2.0 * (n * n * n * reps) as f64 / t.elapsed().as_secs_f64() / 1e9
    }
    let threads = rayon::current_num_threads();
    Peak {
        threads,
        f32_1: run::<f32>(Par::Seq),
        f32_all: run::<f32>(Par::rayon(threads)),
        f64_1: run::<f64>(Par::Seq),
        f64_all: run::<f64>(Par::rayon(threads)),
    }
}

/// The excerpt repeated to about `seconds` (whole repetitions), the score shifted with it; with
/// `pitch_factor` 2 or 4, repetitions are transposed in turn by 0, +19, −19, +38 semitones so the
/// score has that many times the pitches (the audio stays the excerpt's).
fn repeated(dir: &Path, seconds: f64, pitch_factor: usize) -> Input {
    let r = common::Repeated::new(dir, seconds);
    let shifts = [0i32, 19, -19, 38];
    let notes = r.notes(|n, i| Note {
        pitch: (n.pitch as i32 + shifts[i % pitch_factor]) as u8,
        ..n
    });
    let csv = dir.join(if pitch_factor == 1 {
        format!("{}.csv", r.name)
    } else {
        format!("{}_{pitch_factor}x_pitches.csv", r.name)
    });
    score::csv::write(&csv, &notes).unwrap();
    Input {
        seconds: r.seconds(),
        name: r.name,
        audio: r.wav,
        score: csv,
    }
}

struct RunResult {
    wall: f64,
    peak_rss: u64,
    nmf_seconds: f64,
    iterations: usize,
    k: usize,
    r: usize,
    n: usize,
    active: usize,
    /// (name, wall s, peak RSS bytes, CPU s).
    stages: Vec<(String, f64, u64, f64)>,
}

impl RunResult {
    fn peak_mb(&self) -> f64 {
        self.peak_rss as f64 / 1e6
    }

    fn dense_flops(&self) -> f64 {
        self.iterations as f64 * 2.0 * 2.0 * (self.k * self.r * self.n) as f64
    }
}

/// `kernels`: the path forced by `SCORENMF_KERNELS` (None: the best this CPU runs).
fn run_scorenmf(
    dir: &Path,
    input: &Input,
    preset: &str,
    kernels: Option<kernel::Path>,
    extra: &[&str],
) -> RunResult {
    let tag = kernels.map_or(String::new(), |p| format!("_{}", p.name()));
    let out = dir.join(format!("out_{}_{preset}{tag}", input.name));
    let profile = out.join("profile.json");
    std::fs::create_dir_all(&out).unwrap();
    let t = Instant::now();
    let mut command = Command::new(env!("CARGO_BIN_EXE_scorenmf"));
    if let Some(p) = kernels {
        command.env("SCORENMF_KERNELS", p.name());
    }
    let status = command
        .arg("run")
        .arg(&input.audio)
        .arg(&input.score)
        .arg("-o")
        .arg(&out)
        .args(["--preset", preset, "-q", "--profile"])
        .arg(&profile)
        .args(extra)
        .status()
        .expect("scorenmf runs");
    let wall = t.elapsed().as_secs_f64();
    assert!(status.success(), "scorenmf run failed on {}", input.name);
    let p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&profile).unwrap()).unwrap();
    let stages: Vec<(String, f64, u64, f64)> = p["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["seconds"].as_f64().unwrap(),
                s["peak_rss"].as_u64().unwrap(),
                s["cpu_seconds"].as_f64().unwrap(),
            )
        })
        .collect();
    let nmf = &p["nmf"];
    let u = |k: &str| nmf[k].as_u64().unwrap() as usize;
    RunResult {
        wall,
        peak_rss: p["process_peak_rss"].as_u64().unwrap(),
        nmf_seconds: stages.iter().find(|s| s.0 == "nmf").unwrap().1,
        iterations: u("iterations"),
        k: u("k"),
        r: u("r"),
        n: u("n"),
        active: u("active_entries"),
        stages,
    }
}

/// V, W₀ and H₀ of an input on the FMP geometry.
fn nmf_inputs(input: &Input) -> (DMatrix<f32>, (DMatrix<f64>, DMatrix<f64>)) {
    let audio = read_audio(&input.audio).unwrap();
    let c = Config::preset(Preset::Fmp);
    let x = audio.analysis_signal(c.sample_rate).unwrap();
    let s = read_score(&input.score).unwrap();
    let (_, v, w0, h0) = pipeline::nmf_inputs(&x, &s, &c).unwrap();
    (v, (w0, h0))
}

struct NmfTime {
    seconds: f64,
    dense_flops: f64,
    done_flops: f64,
}

fn time_nmf(
    v: &DMatrix<f32>,
    w0: DMatrix<f64>,
    h0: DMatrix<f64>,
    precision: Precision,
    threads: usize,
    kernels: Option<kernel::Path>,
) -> NmfTime {
    let p = NmfParams {
        precision,
        stop_threshold: None,
        kernels,
        ..NmfParams::default()
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let (k, n) = v.shape();
    let r = w0.ncols();
    // Best of three.
    let mut best = f64::INFINITY;
    let mut active = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let f = pool.install(|| factorize(v, w0.clone(), h0.clone(), &p, |_| {}).unwrap());
        best = best.min(t.elapsed().as_secs_f64());
        active = f.active_entries;
    }
    NmfTime {
        seconds: best,
        dense_flops: 100.0 * 4.0 * (k * r * n) as f64,
        done_flops: 100.0 * 4.0 * (k * active) as f64,
    }
}

fn run_python(dir: &Path, input: &Input) -> Option<PyResult> {
    let out = dir.join(format!("python_{}", input.name));
    let t = Instant::now();
    let o = Command::new("python3")
        .arg("bench/reference.py")
        .arg(&input.audio)
        .arg(&input.score)
        .arg(&out)
        .output()
        .ok()?;
    let wall = t.elapsed().as_secs_f64();
    if !o.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&o.stderr));
        return None;
    }
    let text = String::from_utf8_lossy(&o.stdout);
    let v: serde_json::Value = serde_json::from_str(text.lines().last()?).ok()?;
    Some(PyResult {
        wall,
        nmf_seconds: v["nmf_seconds"].as_f64()?,
        peak_rss: v["peak_rss"].as_u64()?,
    })
}

struct PyResult {
    wall: f64,
    nmf_seconds: f64,
    peak_rss: u64,
}
