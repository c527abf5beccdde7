//! Parity of the blind factorization with scikit-learn's `NMF(solver="mu")` and
//! `librosa.decompose.decompose`, and of HPSS with `librosa.decompose.hpss`, on fixtures made by
//! `scripts/make_decompose_fixtures.py` (3 s of the Chopin example; see `tests/data/decompose`).

use std::path::{Path, PathBuf};

use nalgebra::DMatrix;
use scorenmf::io::matrix::read_matrix;
use scorenmf::model::beta_nmf::{self, BetaParams};
use scorenmf::model::nmf::Precision;
use scorenmf::model::nmf_init::{initialize, InitMethod};
use scorenmf::signal::hpss::{self, HpssParams};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/decompose")
}

fn load(name: &str) -> DMatrix<f64> {
    read_matrix(&dir().join(format!("{name}.npy"))).unwrap()
}

fn cases() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join("cases.json")).unwrap()).unwrap()
}

fn case(name: &str) -> serde_json::Value {
    cases()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
        .clone()
}

/// ‖a − b‖_F / ‖b‖_F.
fn relative(a: &DMatrix<f64>, b: &DMatrix<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    (a - b).norm() / b.norm()
}

/// Runs one fixture case as scikit-learn ran it; returns (relative difference of W, of H).
fn run_case(name: &str) -> (f64, f64, usize, usize) {
    let c = case(name);
    let v0 = load("V");
    let bins = c["bins"].as_u64().map_or(v0.nrows(), |b| b as usize);
    let floor = c["floor"].as_f64().unwrap_or(0.0);
    let v = v0.rows(0, bins).map(|x| x + floor);
    let init = match c["init"].as_str().unwrap() {
        "random" => InitMethod::Random,
        "nndsvd" => InitMethod::Nndsvd,
        "nndsvda" => InitMethod::Nndsvda,
        "nndsvdar" => InitMethod::Nndsvdar,
        other => panic!("{other}"),
    };
    let alpha_h = c["alpha_W"].as_f64().unwrap_or(0.0);
    let p = BetaParams {
        beta: c["beta"].as_f64().unwrap(),
        alpha_h,
        alpha_w: c["alpha_H"].as_f64().unwrap_or(alpha_h),
        l1_ratio: c["l1_ratio"].as_f64().unwrap_or(0.0),
        precision: Precision::Double,
        ..Default::default()
    };
    let (w0, h0) = initialize(&v, 8, init, 0).unwrap();
    let f = beta_nmf::factorize(&v, w0, h0, &p, |_| {}).unwrap();
    let (w_ref, h_ref) = (load(&format!("{name}_W")), load(&format!("{name}_H")));
    let expected_iter = c["n_iter"].as_u64().unwrap() as usize;
    let e_ref = c["error"].as_f64().unwrap();
    assert!(
        (f.error - e_ref).abs() <= 1e-6 * e_ref,
        "{name}: error {} vs scikit-learn's {e_ref}",
        f.error
    );
    (
        relative(&f.w, &w_ref),
        relative(&f.h, &h_ref),
        f.iterations,
        expected_iter,
    )
}

fn assert_parity(name: &str, tol: f64) {
    let (dw, dh, it, it_ref) = run_case(name);
    eprintln!("{name}: W {dw:.2e}, H {dh:.2e}, {it} iterations");
    assert_eq!(it, it_ref, "{name}: iterations");
    assert!(
        dw < tol && dh < tol,
        "{name}: W {dw:.2e}, H {dh:.2e} (tolerance {tol:.0e})"
    );
}

#[test]
fn euclidean_nndsvda_matches_scikit_learn() {
    assert_parity("fro_nndsvda", 1e-6);
}

#[test]
fn kullback_leibler_nndsvda_matches_scikit_learn() {
    assert_parity("kl_nndsvda", 1e-6);
}

/// Itakura–Saito (on V + 1e-10, as it cannot take zeros).
#[test]
fn itakura_saito_nndsvda_matches_scikit_learn() {
    assert_parity("is_nndsvda", 1e-6);
}

#[test]
fn other_beta_matches_scikit_learn() {
    assert_parity("b15_nndsvda", 1e-6);
}

#[test]
fn random_nndsvd_and_nndsvdar_inits_match_scikit_learn() {
    assert_parity("fro_random", 1e-6);
    assert_parity("fro_nndsvd", 1e-6);
    assert_parity("kl_nndsvdar", 1e-6);
}

#[test]
fn regularization_matches_scikit_learn() {
    assert_parity("kl_regularized", 1e-6);
}

/// More frames than bins: scikit-learn's randomized SVD samples the other side.
#[test]
fn more_frames_than_bins_matches_scikit_learn() {
    assert_parity("fro_tall", 1e-6);
}

/// A fixed dictionary (scikit-learn's `transform`): templates learnt on 3 s, activations on the
/// next 2 s.
#[test]
fn a_fixed_dictionary_matches_scikit_learn_transform() {
    let w = load("kl_fixed_dictionary_W");
    let v = load("V_next");
    let r = w.ncols();
    let h0 = DMatrix::from_element(
        r,
        v.ncols(),
        (scorenmf::model::nmf_init::mean(&v) / r as f64).sqrt(),
    );
    let p = BetaParams {
        beta: 1.0,
        fixed_w: true,
        ..Default::default()
    };
    let f = beta_nmf::factorize(&v, w.clone(), h0, &p, |_| {}).unwrap();
    assert_eq!(f.w, w);
    let dh = relative(&f.h, &load("kl_fixed_dictionary_H"));
    eprintln!("kl_fixed_dictionary: H {dh:.2e}");
    assert!(dh < 1e-6, "H {dh:.2e}");
}

/// librosa's own call with `sort=True`: components by their peak bin.
#[test]
fn sorted_components_match_librosa_decompose() {
    let v = load("V");
    let p = BetaParams {
        beta: 1.0,
        ..Default::default()
    };
    let (w0, h0) = initialize(&v, 8, InitMethod::Nndsvda, 0).unwrap();
    let f = beta_nmf::factorize(&v, w0, h0, &p, |_| {}).unwrap();
    let (w, h) = beta_nmf::reorder(&f.w, &f.h, &beta_nmf::sort_order(&f.w));
    let (dw, dh) = (
        relative(&w, &load("librosa_kl_sorted_W")),
        relative(&h, &load("librosa_kl_sorted_H")),
    );
    eprintln!("librosa_kl_sorted: W {dw:.2e}, H {dh:.2e}");
    assert!(dw < 1e-6 && dh < 1e-6, "W {dw:.2e}, H {dh:.2e}");
}

/// The HPSS masks of librosa (float32 magnitudes) to 1e-5 in every entry.
#[test]
fn hpss_masks_match_librosa() {
    let s = load("S32");
    let s32 = DMatrix::from_iterator(s.nrows(), s.ncols(), s.iter().map(|&x| x as f32));
    for c in cases()["hpss"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let pair = |key: &str, default: f64| -> (f64, f64) {
            match &c[key] {
                serde_json::Value::Array(a) => (a[0].as_f64().unwrap(), a[1].as_f64().unwrap()),
                serde_json::Value::Null => (default, default),
                x => (x.as_f64().unwrap(), x.as_f64().unwrap()),
            }
        };
        let (kh, kp) = pair("kernel_size", 31.0);
        let (mh, mp) = pair("margin", 1.0);
        let power = match &c["power"] {
            serde_json::Value::String(_) => f64::INFINITY,
            x => x.as_f64().unwrap_or(2.0),
        };
        let p = HpssParams {
            kernel_harmonic: kh as usize,
            kernel_percussive: kp as usize,
            power,
            margin_harmonic: mh,
            margin_percussive: mp,
        };
        let (h, pm) = hpss::masks(&s32, &p).unwrap();
        for (ours, theirs) in [
            (&h, load(&format!("hpss_{name}_mask_h"))),
            (&pm, load(&format!("hpss_{name}_mask_p"))),
        ] {
            let worst = ours
                .iter()
                .zip(theirs.iter())
                .map(|(&a, &b)| (a as f64 - b).abs())
                .fold(0.0, f64::max);
            eprintln!("hpss {name}: max |Δ| {worst:.2e}");
            assert!(worst <= 1e-5, "hpss {name}: max |Δ| {worst:.2e}");
        }
    }
}
