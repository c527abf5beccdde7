//! The factorizations alone, on numpy matrices: the constrained NMF (`nmf`, libfmp's
//! `libfmp.c8.nmf` updates) and the blind β-divergence NMF (`decompose`, scikit-learn's
//! multiplicative updates as librosa calls them).

use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray2};
use pyo3::prelude::*;

use scorenmf::model::beta_nmf::{self, BetaParams};
use scorenmf::model::nmf::{factorize, Divergence, NmfParams, Precision};
use scorenmf::model::nmf_init::{self, InitMethod};

use crate::convert::{array, matrix};
use crate::to_py;

/// A string keyword as one of the library's enums (named as run.json names them).
fn choice<T: serde::de::DeserializeOwned>(what: &str, value: &str, allowed: &str) -> PyResult<T> {
    serde_json::from_value(serde_json::Value::String(value.to_string())).map_err(|_| {
        to_py(scorenmf::Error::Param(format!(
            "{what} '{value}': use {allowed}"
        )))
    })
}

/// (‖ΔH‖₂, ‖ΔW‖₂) per iteration as a 2 × iterations array (libfmp's `H_W_error`).
fn changes_array<'py>(py: Python<'py>, changes: &[(f64, f64)]) -> Bound<'py, PyArray2<f64>> {
    Array2::from_shape_fn((2, changes.len()), |(i, j)| {
        if i == 0 {
            changes[j].0
        } else {
            changes[j].1
        }
    })
    .into_pyarray(py)
}

/// The constrained NMF: W ← W ⊙ (V Hᵀ) ⊘ (W H Hᵀ + ε), H ← H ⊙ (Wᵀ V) ⊘ (Wᵀ W H + ε) (or the
/// KL updates), zeros of W₀ and H₀ staying zero. V is held as float32 (as an STFT's magnitude
/// is); W and H in `precision`. Returns (W, H, iterations run, H_W_error, ‖V − WH‖_F / ‖V‖_F).
#[pyfunction]
#[pyo3(signature = (v, w0, h0, iterations=1000, stop_threshold=Some(0.001), normalize=false, precision="double", divergence="euclidean", eps=f32::EPSILON as f64, fixed_w=false, tile=16))]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
pub fn nmf<'py>(
    py: Python<'py>,
    v: PyReadonlyArray2<'py, f64>,
    w0: PyReadonlyArray2<'py, f64>,
    h0: PyReadonlyArray2<'py, f64>,
    iterations: usize,
    stop_threshold: Option<f64>,
    normalize: bool,
    precision: &str,
    divergence: &str,
    eps: f64,
    fixed_w: bool,
    tile: usize,
) -> PyResult<(
    Bound<'py, PyArray2<f64>>,
    Bound<'py, PyArray2<f64>>,
    usize,
    Bound<'py, PyArray2<f64>>,
    f64,
)> {
    let p = NmfParams {
        divergence: choice::<Divergence>("divergence", divergence, "'euclidean' or 'kl'")?,
        iterations,
        stop_threshold: stop_threshold.filter(|&t| t > 0.0),
        eps,
        fixed_w,
        normalize,
        precision: choice::<Precision>("precision", precision, "'single' or 'double'")?,
        tile,
        kernels: None,
    };
    let v = matrix(&v).map(|x| x as f32);
    let (w0, h0) = (matrix(&w0), matrix(&h0));
    let f = py
        .detach(|| factorize(&v, w0, h0, &p, |_| {}))
        .map_err(to_py)?;
    Ok((
        array(py, &f.w),
        array(py, &f.h),
        f.iterations,
        changes_array(py, &f.changes),
        f.rel_error,
    ))
}

/// The blind β-divergence NMF of `s` (K × N) into `n_components` (scikit-learn's `NMF(solver=
/// "mu")` updates and stopping rule), started by `init` with `seed`, or from the templates `w`
/// (K × R; H from √(mean(S)/R)), which `fixed_w` keeps. `sort` orders the components by their
/// template's peak bin (librosa's `sort=True`). Returns (W, H, iterations, converged, error).
#[pyfunction]
#[pyo3(signature = (s, n_components=None, beta=2.0, init="nndsvda", seed=0, max_iter=200, tol=1e-4, alpha_w=0.0, alpha_h=0.0, l1_ratio=0.0, sort=false, w=None, fixed_w=false, precision="double"))]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
pub fn decompose<'py>(
    py: Python<'py>,
    s: PyReadonlyArray2<'py, f64>,
    n_components: Option<usize>,
    beta: f64,
    init: &str,
    seed: u32,
    max_iter: usize,
    tol: f64,
    alpha_w: f64,
    alpha_h: f64,
    l1_ratio: f64,
    sort: bool,
    w: Option<PyReadonlyArray2<'py, f64>>,
    fixed_w: bool,
    precision: &str,
) -> PyResult<(
    Bound<'py, PyArray2<f64>>,
    Bound<'py, PyArray2<f64>>,
    usize,
    bool,
    f64,
)> {
    let method: InitMethod = choice("init", init, "'random', 'nndsvd', 'nndsvda' or 'nndsvdar'")?;
    let p = BetaParams {
        beta,
        max_iter,
        tol,
        alpha_w,
        alpha_h,
        l1_ratio,
        fixed_w,
        precision: choice("precision", precision, "'single' or 'double'")?,
    };
    let v = matrix(&s);
    let w = w.as_ref().map(matrix);
    let f = py
        .detach(|| -> scorenmf::Result<_> {
            let (w0, h0) = match w {
                Some(w0) => {
                    let v_rows = format!("S has {} rows", v.nrows());
                    nmf_init::from_dictionary(&v, w0, usize::MAX, &v_rows)
                        .map_err(|msg| scorenmf::Error::Param(format!("w: {msg}")))?
                }
                None => {
                    let r = n_components.unwrap_or(v.nrows().min(v.ncols()));
                    nmf_init::initialize(&v, r, method, seed)?
                }
            };
            let f = beta_nmf::factorize(&v, w0, h0, &p, |_| {})?;
            let (w, h) = if sort {
                beta_nmf::reorder(&f.w, &f.h, &beta_nmf::sort_order(&f.w))
            } else {
                (f.w.clone(), f.h.clone())
            };
            Ok((w, h, f.iterations, f.converged, f.error))
        })
        .map_err(to_py)?;
    Ok((array(py, &f.0), array(py, &f.1), f.2, f.3, f.4))
}
