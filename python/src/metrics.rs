//! mir_eval's metrics as `eval notes` and `eval stems` compute them, on numpy arrays in
//! mir_eval's argument order.

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;

use scorenmf::eval::notes::{evaluate, EvalNote, NoteTolerances};
use scorenmf::eval::stems::bss_eval_sources;

use crate::to_py;

/// Intervals (N × 2, seconds) and pitches (N, Hz) as notes.
fn eval_notes_of(
    intervals: &PyReadonlyArray2<f64>,
    pitches: &PyReadonlyArray1<f64>,
) -> PyResult<Vec<EvalNote>> {
    let (iv, p) = (intervals.as_array(), pitches.as_array());
    if iv.ncols() != 2 || iv.nrows() != p.len() {
        return Err(to_py(scorenmf::Error::Param(format!(
            "intervals of shape {:?} and {} pitches: need N × 2 intervals and N pitches",
            iv.shape(),
            p.len()
        ))));
    }
    Ok((0..p.len())
        .map(|i| EvalNote {
            onset: iv[(i, 0)],
            offset: iv[(i, 1)],
            hz: p[i],
            velocity: 0.0,
        })
        .collect())
}

/// `mir_eval.transcription.precision_recall_f1_overlap`: (precision, recall, F-measure,
/// average overlap ratio); `offset_ratio=None` ignores offsets.
#[pyfunction]
#[pyo3(signature = (ref_intervals, ref_pitches, est_intervals, est_pitches, onset_tolerance=0.05, pitch_tolerance=50.0, offset_ratio=Some(0.2), offset_min_tolerance=0.05, strict=false))]
#[allow(clippy::too_many_arguments)]
pub fn eval_notes(
    ref_intervals: PyReadonlyArray2<f64>,
    ref_pitches: PyReadonlyArray1<f64>,
    est_intervals: PyReadonlyArray2<f64>,
    est_pitches: PyReadonlyArray1<f64>,
    onset_tolerance: f64,
    pitch_tolerance: f64,
    offset_ratio: Option<f64>,
    offset_min_tolerance: f64,
    strict: bool,
) -> PyResult<(f64, f64, f64, f64)> {
    let r = eval_notes_of(&ref_intervals, &ref_pitches)?;
    let e = eval_notes_of(&est_intervals, &est_pitches)?;
    let t = NoteTolerances {
        onset_tolerance,
        pitch_tolerance,
        offset_ratio,
        offset_min_tolerance,
        strict,
        ..NoteTolerances::default()
    };
    let s = evaluate(&r, &e, &t);
    Ok((s.precision, s.recall, s.f_measure, s.average_overlap_ratio))
}

/// `mir_eval.separation.bss_eval_sources(reference_sources, estimated_sources,
/// compute_permutation=False)` (BSS Eval v3, 512-tap filters): (SDR, SIR, SAR), estimate j
/// against reference j; sources × samples each.
#[pyfunction]
#[allow(clippy::type_complexity)]
pub fn eval_stems<'py>(
    py: Python<'py>,
    reference_sources: PyReadonlyArray2<'py, f64>,
    estimated_sources: PyReadonlyArray2<'py, f64>,
) -> PyResult<(
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
)> {
    let rows = |a: &PyReadonlyArray2<f64>| -> Vec<Vec<f64>> {
        a.as_array().outer_iter().map(|r| r.to_vec()).collect()
    };
    let (refs, ests) = (rows(&reference_sources), rows(&estimated_sources));
    let scores = py
        .detach(|| bss_eval_sources(&refs, &ests))
        .map_err(to_py)?;
    let pick = |f: fn(&scorenmf::eval::stems::SourceScores) -> f64| -> Vec<f64> {
        scores.iter().map(f).collect()
    };
    Ok((
        pick(|s| s.sdr).into_pyarray(py),
        pick(|s| s.sir).into_pyarray(py),
        pick(|s| s.sar).into_pyarray(py),
    ))
}
