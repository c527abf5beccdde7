//! Speed and memory of the score alignment, on the Chopin excerpt repeated to about 1, 10 and 60
//! minutes against its score at another tempo (×1.15, as a notation score would be): the wall
//! time and peak memory of the alignment stage of `transcribe --align` (from its profile: the
//! stage's time and its peak RSS above the RSS it starts from, the decoded recording), and of
//! `align` as a whole process.
//! With `SCORENMF_BENCH_PYTHON` naming a Python that has synctoolbox (scripts/alignment_quality.sh
//! makes one: target/alignment-venv/bin/python), synctoolbox's notebook pipeline runs on the
//! same inputs up to 10 minutes, side by side.
//!
//! Run: `cargo bench --bench align` (`-- --quick`: 1 and 10 minutes only).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use scorenmf::io::score::{self, Note};

#[allow(dead_code)]
mod common;

struct Input {
    name: String,
    audio: PathBuf,
    score: PathBuf,
    seconds: f64,
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let dir = Path::new("target/bench-align");
    std::fs::create_dir_all(dir).unwrap();
    let minutes: &[f64] = if quick {
        &[1.0, 10.0]
    } else {
        &[1.0, 10.0, 60.0]
    };
    println!(
        "scorenmf alignment bench ({} threads)",
        rayon::current_num_threads()
    );
    println!(
        "| input | audio s | align stage s | align stage MB above its start | `align` process s | `align` peak MB | s per audio minute | synctoolbox s | synctoolbox peak MB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for &m in minutes {
        let input = repeated(dir, m * 60.0);
        let (stage_s, stage_mb) = align_stage(dir, &input);
        let (proc_s, proc_mb) = align_process(dir, &input);
        let sync = (m <= 10.0).then(|| synctoolbox(&input)).flatten();
        let (ss, sm) = sync.map_or(("-".into(), "-".into()), |(s, mb)| {
            (format!("{s:.2}"), format!("{mb:.0}"))
        });
        println!(
            "| {} | {:.0} | {stage_s:.2} | {stage_mb:.0} | {proc_s:.2} | {proc_mb:.0} | {:.3} | {ss} | {sm} |",
            input.name,
            input.seconds,
            proc_s / (input.seconds / 60.0),
        );
    }
}

/// The excerpt repeated to `seconds`, and its score repeated and stretched ×1.15.
fn repeated(dir: &Path, seconds: f64) -> Input {
    let r = common::Repeated::new(dir, seconds);
    let notes = r.notes(|n, _| Note {
        onset: n.onset * 1.15,
        duration: n.duration * 1.15,
        ..n
    });
    let csv = dir.join(format!("{}_notation.csv", r.name));
    score::csv::write(&csv, &notes).unwrap();
    Input {
        seconds: r.seconds(),
        name: r.name,
        audio: r.wav,
        score: csv,
    }
}

/// The `align` stage of `transcribe --align`: its wall time and its peak RSS above the RSS it
/// starts from, MB.
fn align_stage(dir: &Path, input: &Input) -> (f64, f64) {
    let out = dir.join(format!("out_{}_transcribe", input.name));
    let profile = out.join("profile.json");
    std::fs::create_dir_all(&out).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_scorenmf"))
        .args(["-q", "transcribe", "--align", "--force", "--profile"])
        .arg(&profile)
        .arg(&input.audio)
        .arg(&input.score)
        .arg("-o")
        .arg(&out)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "transcribe --align failed on {}",
        input.name
    );
    let p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&profile).unwrap()).unwrap();
    let stage = |name: &str| {
        p["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap()
    };
    // Each stage's peak is counted from its start; the tuning stage allocates next to nothing,
    // so its peak is the RSS the alignment starts from (the decoded recording and the score).
    let peak = |name: &str| stage(name)["peak_rss"].as_u64().unwrap() as f64;
    let base = peak("align: tuning");
    let above = peak("align: features").max(peak("align: dtw")) - base;
    (stage("align")["seconds"].as_f64().unwrap(), above / 1e6)
}

/// `align` as a process: wall time and peak RSS (of the child, by wait4), MB.
fn align_process(dir: &Path, input: &Input) -> (f64, f64) {
    let out = dir.join(format!("out_{}_align", input.name));
    let t = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_scorenmf"))
        .args(["-q", "align", "--force"])
        .arg(&input.audio)
        .arg(&input.score)
        .arg("-o")
        .arg(&out)
        .spawn()
        .unwrap();
    let (ok, rss) = common::wait_rss(child);
    let wall = t.elapsed().as_secs_f64();
    assert!(ok, "align failed on {}", input.name);
    (wall, rss / 1e6)
}

/// synctoolbox's notebook pipeline (sync_audio_score_full) on the input, timed inside Python:
/// (seconds, peak RSS MB), or `None` without `SCORENMF_BENCH_PYTHON`.
fn synctoolbox(input: &Input) -> Option<(f64, f64)> {
    let python = std::env::var("SCORENMF_BENCH_PYTHON").ok()?;
    let code = r#"
import sys, time, resource, numpy as np, pandas as pd, librosa, warnings
warnings.filterwarnings("ignore")
from synctoolbox.dtw.mrmsdtw import sync_via_mrmsdtw
from synctoolbox.dtw.utils import compute_optimal_chroma_shift, shift_chroma_vectors, make_path_strictly_monotonic
from synctoolbox.feature.chroma import pitch_to_chroma, quantize_chroma, quantized_chroma_to_CENS
from synctoolbox.feature.csv_tools import df_to_pitch_features, df_to_pitch_onset_features
from synctoolbox.feature.dlnco import pitch_onset_features_to_DLNCO
from synctoolbox.feature.pitch import audio_to_pitch_features
from synctoolbox.feature.pitch_onset import audio_to_pitch_onset_features
from synctoolbox.feature.utils import estimate_tuning
Fs, fr = 22050, 50
t0 = time.perf_counter()
y, _ = librosa.load(sys.argv[1], sr=Fs)
tun = estimate_tuning(y, Fs)
fc = quantize_chroma(pitch_to_chroma(f_pitch=audio_to_pitch_features(f_audio=y, Fs=Fs, tuning_offset=tun, feature_rate=fr, verbose=False)))
fd = pitch_onset_features_to_DLNCO(f_peaks=audio_to_pitch_onset_features(f_audio=y, Fs=Fs, tuning_offset=tun, verbose=False), feature_rate=fr, feature_sequence_length=fc.shape[1], visualize=False)
df = pd.read_csv(sys.argv[2], sep=";").rename(columns=str.lower)
df["instrument"] = df["instrument"].fillna("piano")
ac = quantize_chroma(pitch_to_chroma(f_pitch=df_to_pitch_features(df, feature_rate=fr)))
ad = pitch_onset_features_to_DLNCO(f_peaks=df_to_pitch_onset_features(df), feature_rate=fr, feature_sequence_length=ac.shape[1], visualize=False)
s = compute_optimal_chroma_shift(quantized_chroma_to_CENS(ac, 201, 50, fr)[0], quantized_chroma_to_CENS(fc, 201, 50, fr)[0])
wp = sync_via_mrmsdtw(f_chroma1=ac, f_onset1=ad, f_chroma2=shift_chroma_vectors(fc, s), f_onset2=shift_chroma_vectors(fd, s), input_feature_rate=fr, step_weights=np.array([1.5, 1.5, 2.0]), threshold_rec=10**6, verbose=False)
wp = make_path_strictly_monotonic(wp)
print("\nRESULT", time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6)
"#;
    let out = Command::new(python)
        .args(["-c", code])
        .arg(&input.audio)
        .arg(&input.score)
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "synctoolbox failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    // synctoolbox prints progress dots on stdout; the figures follow the word RESULT.
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("RESULT"))?;
    let mut it = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse::<f64>().ok());
    Some((it.next()?, it.next()?))
}
