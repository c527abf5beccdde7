//! NMF time against the tile size, score H₀ vs all-ones H₀ (the bench's 10-minute input must
//! exist: run `cargo bench --bench pipeline -- --quick --no-python` once).
use nalgebra::DMatrix;
use scorenmf::activations::{init_activations, ActivationParams};
use scorenmf::audio::read_audio;
use scorenmf::nmf::{factorize, NmfParams, Precision};
use scorenmf::pipeline::{magnitude, Magnitude};
use scorenmf::score::read_score;
use scorenmf::stft::{Stft, StftParams};
use scorenmf::templates::{components, init_templates, TemplateParams};
use std::path::Path;
use std::time::Instant;

fn main() {
    let hop: usize = std::env::var("HOP")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1024);
    let score = std::env::var("SCORE").unwrap_or("target/bench/chopin_10min.csv".into());
    let audio = read_audio(Path::new("target/bench/chopin_10min.wav")).unwrap();
    let x = audio.analysis_signal(22050).unwrap();
    let spec = Stft::new(StftParams { n_fft: 2048, hop })
        .unwrap()
        .forward(&x);
    let v = magnitude(&spec, Magnitude::Log, 1.0);
    let s = read_score(Path::new(&score)).unwrap();
    let comps = components(&s, false);
    let w0 = init_templates(
        &comps,
        spec.n_bins,
        22050.0 / 2048.0,
        &TemplateParams::default(),
    );
    let h0 = init_activations(
        &comps,
        &s,
        spec.n_frames,
        hop as f64 / 22050.0,
        &ActivationParams::default(),
    );
    let ones = DMatrix::from_element(h0.nrows(), h0.ncols(), 1.0);
    let iters = 30;
    let tiles: Vec<usize> = std::env::var("TILES")
        .ok()
        .map(|s| s.split(",").map(|x| x.parse().unwrap()).collect())
        .unwrap_or(vec![8, 16, 32, 64, 128, 256]);
    for tile in tiles {
        for (label, h) in [("score", &h0), ("ones", &ones)] {
            let p = NmfParams {
                precision: Precision::Single,
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
