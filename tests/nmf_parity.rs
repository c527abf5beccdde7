//! Parity with the FMP reference (libfmp 1.3.0, librosa 0.11.0) on the Chopin excerpt; the
//! reference and the script that made it are in `tests/data/fmp_reference/` (see its README).

#[allow(dead_code)]
mod common;

use std::path::Path;

use nalgebra::DMatrix;
use scorenmf::model::activations::{init_activations, ActivationParams};
use scorenmf::model::nmf::{factorize, Divergence, NmfParams, Precision};
use scorenmf::model::templates::{components, init_templates, TemplateParams};
use scorenmf::pipeline::{Config, Preset};
use scorenmf::signal::stft::{Stft, StftParams};

const DIR: &str = "tests/data/fmp_reference";

/// Reads a reference matrix; `f32` parses each value as float32 first (how V was stored).
fn read_matrix(name: &str, f32_values: bool) -> DMatrix<f64> {
    let text = std::fs::read_to_string(Path::new(DIR).join(name)).unwrap();
    let rows: Vec<Vec<f64>> = text
        .lines()
        .map(|l| {
            l.split(',')
                .map(|x| {
                    if f32_values {
                        x.parse::<f32>().unwrap() as f64
                    } else {
                        x.parse::<f64>().unwrap()
                    }
                })
                .collect()
        })
        .collect();
    DMatrix::from_fn(rows.len(), rows[0].len(), |i, j| rows[i][j])
}

fn rel_max_diff(a: &DMatrix<f64>, b: &DMatrix<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    diff / b.amax()
}

/// The `fmp` preset's NMF parameters, which must be libfmp's as the notebook calls it.
fn fmp_params() -> NmfParams {
    let p = Config::preset(Preset::Fmp).nmf;
    assert_eq!(p.divergence, Divergence::Euclidean);
    assert_eq!((p.iterations, p.stop_threshold), (100, Some(0.001)));
    assert_eq!(p.eps, f32::EPSILON as f64);
    assert!(!p.fixed_w && p.normalize);
    p
}

#[test]
fn nmf_matches_libfmp_on_the_reference_inputs() {
    let v = read_matrix("V.csv", true);
    let w0 = read_matrix("W0.csv", false);
    let h0 = read_matrix("H0.csv", false);
    let f = factorize(&v.map(|x| x as f32), w0, h0, &fmp_params(), |_| {}).unwrap();
    assert_eq!(f.iterations, 100);
    let (w_ref, h_ref) = (read_matrix("W.csv", false), read_matrix("H.csv", false));
    let dw = rel_max_diff(&f.w, &w_ref);
    let dh = rel_max_diff(&f.h, &h_ref);
    println!("W: {dw:.2e}, H: {dh:.2e}, rel. error {:.17}", f.rel_error);
    assert!(dw < 1e-6, "W differs by {dw:.2e}");
    assert!(dh < 1e-6, "H differs by {dh:.2e}");
    // ‖V − WH‖_F / ‖V‖_F of the reference factors, in float64 (0.2524105; params.json's 0.2524122
    // took ‖V‖ of the float32 V in float32).
    let ref_error = (&v - &w_ref * &h_ref).norm() / v.norm();
    assert!(
        (f.rel_error - ref_error).abs() < 1e-9,
        "{} vs {ref_error}",
        f.rel_error
    );
}

#[test]
fn our_v_w0_h0_match_the_reference() {
    let (audio, score) = common::chopin();
    let x = audio.analysis_signal(22050).unwrap();
    let stft = Stft::new(StftParams {
        n_fft: 2048,
        hop: 1024,
    })
    .unwrap();
    let spec = stft.forward(&x);
    let v = DMatrix::from_fn(spec.n_bins, spec.n_frames, |k, n| {
        (1.0f32 + spec.frame(n)[k].norm()).ln() as f64
    });
    let dv = rel_max_diff(&v, &read_matrix("V.csv", true));
    println!("V: {dv:.2e}");
    assert!(dv < 1e-6, "V differs by {dv:.2e}");

    let comps = components(&score, false);
    let w0 = init_templates(
        &comps,
        spec.n_bins,
        22050.0 / 2048.0,
        &TemplateParams::default(),
    );
    assert_eq!(w0, read_matrix("W0.csv", false));
    let h0 = init_activations(
        &comps,
        &score,
        spec.n_frames,
        1024.0 / 22050.0,
        &ActivationParams::default(),
    );
    assert_eq!(h0, read_matrix("H0.csv", false));
}

/// Single precision (the default preset's) against the same reference: the error it costs.
#[test]
fn single_precision_stays_close_to_libfmp() {
    let v = read_matrix("V.csv", true).map(|x| x as f32);
    let p = NmfParams {
        precision: Precision::Single,
        ..fmp_params()
    };
    let f = factorize(
        &v,
        read_matrix("W0.csv", false),
        read_matrix("H0.csv", false),
        &p,
        |_| {},
    )
    .unwrap();
    let dw = rel_max_diff(&f.w, &read_matrix("W.csv", false));
    let dh = rel_max_diff(&f.h, &read_matrix("H.csv", false));
    println!(
        "single precision: W {dw:.2e}, H {dh:.2e}, {} iterations",
        f.iterations
    );
    // Measured: W 3.7e-5, H 1.9e-5.
    assert!(dw < 1e-4 && dh < 1e-4, "W {dw:.2e}, H {dh:.2e}");
}
