//! NMF time against the tile size, score H₀ vs all-ones H₀, on the benchmark's 10-minute input
//! (`cargo bench --bench pipeline -- --quick --no-python` makes it). Environment: `HOP` (1024),
//! `AUDIO` (the input's recording), `SCORE` (the input's score), `TILES` (comma-separated; 8,16,32,64,128,256), `ITERS` (30),
//! `ONLY` (`score` or `ones`: that H₀ only), `DOUBLE` (set: f64), `ONEROW` (set: the `ones` H₀
//! has only its first row non-zero: what an iteration costs with next to no work beyond
//! streaming V).
use nalgebra::DMatrix;
use scorenmf::io::audio::read_audio;
use scorenmf::io::score::read_score;
use scorenmf::model::nmf::{factorize, NmfParams, Precision};
use scorenmf::pipeline::{nmf_inputs, Config, Preset};
use scorenmf::signal::stft::StftParams;
use std::path::Path;
use std::time::Instant;

fn main() {
    let env = |k: &str| std::env::var(k).ok();
    let hop: usize = env("HOP").and_then(|s| s.parse().ok()).unwrap_or(1024);
    let score = env("SCORE").unwrap_or("target/bench/chopin_10min.csv".into());
    let tiles: Vec<usize> = env("TILES")
        .map(|s| s.split(',').map(|x| x.parse().expect("a number")).collect())
        .unwrap_or(vec![8, 16, 32, 64, 128, 256]);
    let audio_path = env("AUDIO").unwrap_or("target/bench/chopin_10min.wav".into());
    let audio = read_audio(Path::new(&audio_path)).unwrap();
    let mut c = Config::preset(Preset::Fmp);
    c.stft = StftParams { n_fft: 2048, hop };
    let x = audio.analysis_signal(c.sample_rate).unwrap();
    let s = read_score(Path::new(&score)).unwrap();
    let (_, v, w0, h0) = nmf_inputs(&x, &s, &c).unwrap();
    let ones = if std::env::var_os("ONEROW").is_some() {
        DMatrix::from_fn(
            h0.nrows(),
            h0.ncols(),
            |r, _| if r == 0 { 1.0 } else { 0.0 },
        )
    } else {
        DMatrix::from_element(h0.nrows(), h0.ncols(), 1.0)
    };
    let iters: usize = env("ITERS").and_then(|s| s.parse().ok()).unwrap_or(30);
    let only = env("ONLY");
    for tile in tiles {
        for (label, h) in [("score", &h0), ("ones", &ones)] {
            if only.as_deref().is_some_and(|o| o != label) {
                continue;
            }
            let p = NmfParams {
                precision: if env("DOUBLE").is_some() {
                    Precision::Double
                } else {
                    Precision::Single
                },
                stop_threshold: None,
                iterations: iters,
                tile,
                ..Default::default()
            };
            let t = Instant::now();
            let f = factorize(&v, w0.clone(), h.clone(), &p, |_| {}).unwrap();
            let s = t.elapsed().as_secs_f64();
            println!(
                "tile {tile:4} {label:6} {:.2} ms/it  active {:.0}%",
                s / iters as f64 * 1e3,
                100.0 * f.active_entries as f64 / (h.nrows() * h.ncols()) as f64
            );
        }
    }
}
