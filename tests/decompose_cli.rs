//! `scorenmf decompose` and `scorenmf hpss` end to end: the bundled example against librosa
//! (fixture from `scripts/make_decompose_fixtures.py`), a learnt dictionary reused as fixed
//! templates, stems that add up to the mixture, determinism, and bad input.

use std::path::{Path, PathBuf};
use std::process::Command;

use nalgebra::DMatrix;
use scorenmf::io::audio::read_audio;
use scorenmf::io::matrix::read_matrix;

const WAV: &str = "data/FMP_C8_Audio_Chopin_Op028-04_SMD_beginning.wav";

fn scorenmf(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_scorenmf"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

struct TempDir(PathBuf);
impl TempDir {
    fn new(name: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("scorenmf-dec-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
    fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fixture(name: &str) -> DMatrix<f64> {
    read_matrix(&Path::new("tests/data/decompose").join(format!("{name}.npy"))).unwrap()
}

fn relative(a: &DMatrix<f64>, b: &DMatrix<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    (a - b).norm() / b.norm()
}

/// The sum of every stem and the residual, per channel.
fn sum_of(paths: &[PathBuf]) -> Vec<Vec<f32>> {
    let mut total: Option<Vec<Vec<f32>>> = None;
    for p in paths {
        let a = read_audio(p).unwrap();
        match total.as_mut() {
            None => total = Some(a.channels),
            Some(t) => {
                for (x, y) in t.iter_mut().zip(&a.channels) {
                    for (u, v) in x.iter_mut().zip(y) {
                        *u += v;
                    }
                }
            }
        }
    }
    total.unwrap()
}

fn wavs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .collect();
    v.sort();
    v
}

/// The blind decomposition of the example gives librosa's components (KL, sorted), and its
/// stems and residual add up to the recording.
#[test]
fn decompose_matches_librosa_on_the_example_and_stems_add_up() {
    let t = TempDir::new("example");
    let out = t.path("kl");
    let (code, err) = scorenmf(&[
        "decompose",
        WAV,
        "-o",
        &out,
        "-n",
        "8",
        "--beta",
        "1",
        "--sort",
    ]);
    assert_eq!(code, 0, "{err}");
    let o = Path::new(&out);
    let (w, h) = (
        read_matrix(&o.join("W.npy")).unwrap(),
        read_matrix(&o.join("H.npy")).unwrap(),
    );
    let (dw, dh) = (
        relative(&w, &fixture("example_kl_sorted_W")),
        relative(&h, &fixture("example_kl_sorted_H")),
    );
    assert!(dw < 1e-6 && dh < 1e-6, "W {dw:.2e}, H {dh:.2e}");
    assert_eq!(
        read_matrix(&o.join("W.csv")).unwrap(),
        w,
        "the CSV holds the same numbers"
    );
    let mut stems = wavs(&o.join("stems/component"));
    assert_eq!(stems.len(), 8);
    stems.push(o.join("stems/residual.wav"));
    let total = sum_of(&stems);
    let mix = read_audio(Path::new(WAV)).unwrap();
    let worst = total[0]
        .iter()
        .zip(&mix.channels[0])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    // 16-bit stems: each rounds by half a step.
    assert!(
        worst <= 9.5 / 32768.0,
        "stems + residual differ from the mix by {worst}"
    );
    // Each component carries some of the recording, and the residual is small.
    let energy = |p: &Path| {
        read_audio(p).unwrap().channels[0]
            .iter()
            .map(|x| (*x as f64).powi(2))
            .sum::<f64>()
    };
    let mix_energy: f64 = mix.channels[0].iter().map(|x| (*x as f64).powi(2)).sum();
    for s in &stems[..8] {
        assert!(energy(s) > 1e-4 * mix_energy, "{} is silent", s.display());
    }
    assert!(energy(&o.join("stems/residual.wav")) < 0.2 * mix_energy);
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(o.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["command"], "decompose");
    assert_eq!(run["params"]["nmf"]["beta"], 1.0);
    assert_eq!(run["results"]["components"], 8);
    let csv = std::fs::read_to_string(o.join("components.csv")).unwrap();
    let peaks: Vec<f64> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    assert!(
        peaks.windows(2).all(|p| p[0] <= p[1]),
        "sorted by peak: {peaks:?}"
    );
}

/// A dictionary learnt on the example, kept fixed: W stays, H fits, and the same command with
/// another thread count writes the same bytes.
#[test]
fn a_learnt_dictionary_is_reused_as_fixed_templates_deterministically() {
    let t = TempDir::new("dict");
    let learn = t.path("learn");
    assert_eq!(
        scorenmf(&["decompose", WAV, "-o", &learn, "-n", "6", "--no-stems"]).0,
        0
    );
    let dict = format!("{learn}/W.npy");
    let mut outs = Vec::new();
    for threads in ["1", "2"] {
        let out = t.path(&format!("fit{threads}"));
        let (code, err) = scorenmf(&[
            "decompose",
            WAV,
            "-o",
            &out,
            "--init-w",
            &dict,
            "--fixed-w",
            "--beta",
            "1",
            "--threads",
            threads,
        ]);
        assert_eq!(code, 0, "{err}");
        outs.push(out);
    }
    let w = read_matrix(Path::new(&format!("{}/W.npy", outs[0]))).unwrap();
    assert_eq!(
        w,
        read_matrix(Path::new(&dict)).unwrap(),
        "fixed templates unchanged"
    );
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{}/run.json", outs[0])).unwrap())
            .unwrap();
    let e0 = run["results"]["error_at_init"].as_f64().unwrap();
    let e = run["results"]["reconstruction_error"].as_f64().unwrap();
    assert!(e < 0.5 * e0, "the activations fit: {e0} → {e}");
    for f in [
        "H.npy",
        "W.npy",
        "stems/component/00.wav",
        "stems/residual.wav",
    ] {
        let a = std::fs::read(format!("{}/{f}", outs[0])).unwrap();
        let b = std::fs::read(format!("{}/{f}", outs[1])).unwrap();
        assert!(a == b, "{f} differs between 1 and 2 threads");
    }
}

/// A steady tone and clicks: the tone goes to the harmonic stem, the clicks to the percussive
/// one; harmonic + percussive + residual = the mix; a margin leaves a residual.
#[test]
fn hpss_splits_a_tone_from_clicks() {
    let t = TempDir::new("hpss");
    let rate = 22050u32;
    let n = rate as usize * 3;
    let tone: Vec<f32> = (0..n)
        .map(|i| 0.3 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / rate as f32).sin())
        .collect();
    let mut clicks = vec![0.0f32; n];
    for k in (rate as usize / 4..n).step_by(rate as usize / 2) {
        for j in 0..20 {
            clicks[k + j] = if j % 2 == 0 { 0.6 } else { -0.6 };
        }
    }
    // And a little noise, which is neither: a margin leaves it in the residual.
    let mut seed = 12345u32;
    let mut noise = || {
        seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
        (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
    };
    let mix: Vec<f32> = tone
        .iter()
        .zip(&clicks)
        .map(|(a, b)| a + b + 0.05 * noise())
        .collect();
    let wav = t.path("mix.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut wr = hound::WavWriter::create(&wav, spec).unwrap();
    for x in &mix {
        wr.write_sample(*x).unwrap();
    }
    wr.finalize().unwrap();
    let out = t.path("out");
    let (code, err) = scorenmf(&["hpss", &wav, "-o", &out, "--masks"]);
    assert_eq!(code, 0, "{err}");
    let o = Path::new(&out);
    let h = read_audio(&o.join("stems/harmonic.wav"))
        .unwrap()
        .channels
        .remove(0);
    let p = read_audio(&o.join("stems/percussive.wav"))
        .unwrap()
        .channels
        .remove(0);
    let corr = |a: &[f32], b: &[f32]| {
        let dot: f64 = a
            .iter()
            .zip(b)
            .map(|(x, y)| (*x as f64) * (*y as f64))
            .sum();
        let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        dot / (na * nb)
    };
    assert!(
        corr(&h, &tone) > 0.9,
        "harmonic ~ tone: {}",
        corr(&h, &tone)
    );
    assert!(
        corr(&p, &clicks) > 0.8,
        "percussive ~ clicks: {}",
        corr(&p, &clicks)
    );
    let total = sum_of(&[
        o.join("stems/harmonic.wav"),
        o.join("stems/percussive.wav"),
        o.join("stems/residual.wav"),
    ]);
    let worst = total[0]
        .iter()
        .zip(&mix)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst < 1e-5,
        "parts + residual differ from the mix by {worst}"
    );
    let mh = read_matrix(&o.join("mask_harmonic.npy")).unwrap();
    assert_eq!(mh.shape(), (1025, 1 + n / 512));
    let (code, err) = scorenmf(&["hpss", &wav, "-o", &t.path("margin"), "--margin", "3"]);
    assert_eq!(code, 0, "{err}");
    let res = read_audio(Path::new(&t.path("margin/stems/residual.wav")))
        .unwrap()
        .channels
        .remove(0);
    let e = |x: &[f32]| x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>();
    let res1 = read_audio(&o.join("stems/residual.wav"))
        .unwrap()
        .channels
        .remove(0);
    assert!(
        e(&res) > 2e-4 * e(&mix),
        "a margin of 3 leaves a residual: {}",
        e(&res) / e(&mix)
    );
    assert!(
        e(&res1) < 1e-6 * e(&mix),
        "margins of 1 leave none: {}",
        e(&res1) / e(&mix)
    );
    // HPSS as the decomposition's pre-step.
    let (code, err) = scorenmf(&[
        "decompose",
        &wav,
        "-o",
        &t.path("dh"),
        "-n",
        "2",
        "--hpss",
        "harmonic",
    ]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn bad_input_is_one_line_with_exit_code_2() {
    let t = TempDir::new("bad");
    let out = t.path("o");
    let silent = t.path("silent.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 22050,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut wr = hound::WavWriter::create(&silent, spec).unwrap();
    for _ in 0..22050 {
        wr.write_sample(0i16).unwrap();
    }
    wr.finalize().unwrap();
    let short_dict = t.path("dict.csv");
    std::fs::write(&short_dict, "1,2\n3,4\n").unwrap();
    let neg_dict = t.path("neg.csv");
    std::fs::write(&neg_dict, "-1\n".repeat(1025)).unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["decompose", WAV, "-o", &out, "--fixed-w"],
            "--fixed-w needs a dictionary",
        ),
        (
            vec!["decompose", WAV, "-o", &out, "--init-w", &short_dict],
            "dict.csv: 2 rows, but the spectrogram has 1025 bins",
        ),
        (
            vec!["decompose", WAV, "-o", &out, "--init-w", &neg_dict],
            "neg.csv: holds negative entries",
        ),
        (
            vec!["decompose", &silent, "-o", &out, "--beta", "0"],
            "silent.wav: its spectrogram has zeros",
        ),
        (
            vec!["decompose", WAV, "-o", &out, "-n", "0"],
            "--components 0",
        ),
        (
            vec!["decompose", WAV, "-o", &out, "-n", "5000"],
            "--components 5000",
        ),
        (
            vec!["decompose", WAV, "-o", &out, "--beta", "nan"],
            "--beta NaN",
        ),
        (
            vec!["decompose", WAV, "-o", &out, "--l1-ratio", "2"],
            "L1 ratio",
        ),
        (vec!["decompose", WAV, "-o", &out, "--alpha-h=-1"], "alphas"),
        (vec!["decompose", WAV, "-o", &out, "--tol=-1"], "--tol"),
        (
            vec!["decompose", WAV, "-o", &out, "--floor", "inf"],
            "--floor",
        ),
        (
            vec!["decompose", WAV, "-o", &out, "--mask-power", "0"],
            "--mask-power",
        ),
        (
            vec!["decompose", WAV, "-o", &out, "--power", "3"],
            "--power 3",
        ),
        (vec!["decompose", WAV, "-o", &out, "--hop", "0"], "hop 0"),
        (
            vec!["decompose", WAV, "-o", &out, "--sr", "500"],
            "--sr 500",
        ),
        (
            vec![
                "decompose",
                WAV,
                "-o",
                &out,
                "--init",
                "nndsvd",
                "-n",
                "1000",
            ],
            "min(bins, frames)",
        ),
        (
            vec!["hpss", WAV, "-o", &out, "--margin", "0.5"],
            "margins must be at least 1",
        ),
        (
            vec!["hpss", WAV, "-o", &out, "--kernel-size", "0"],
            "kernels must be at least 1",
        ),
        (
            vec!["hpss", WAV, "-o", &out, "--kernel-size", "5000"],
            "at most 1001",
        ),
        (
            vec!["hpss", WAV, "-o", &out, "--mask-exponent=-1"],
            "power -1",
        ),
        (vec!["hpss", "missing.wav", "-o", &out], "missing.wav"),
    ];
    for (args, expect) in cases {
        let (code, err) = scorenmf(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(expect), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
    assert!(!Path::new(&out).exists(), "nothing written for bad input");
    // A dictionary inside the output folder it would be replaced in.
    let learn = t.path("learn");
    assert_eq!(
        scorenmf(&["decompose", WAV, "-o", &learn, "-n", "2", "--no-stems"]).0,
        0
    );
    let before = std::fs::read(format!("{learn}/W.npy")).unwrap();
    let (code, err) = scorenmf(&[
        "decompose",
        WAV,
        "-o",
        &learn,
        "--init-w",
        &format!("{learn}/W.npy"),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("would overwrite the input"), "{err}");
    assert_eq!(std::fs::read(format!("{learn}/W.npy")).unwrap(), before);
}
