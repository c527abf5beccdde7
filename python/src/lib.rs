//! `scorenmf._native`: the Python module's compiled part. Each function takes plain Python and
//! numpy values, converts them to the library's types, releases the GIL for the work, and hands
//! back numpy arrays, lists and dicts; `scorenmf/__init__.py` gives them their Python shape
//! (DataFrames, dataclasses, libfmp's and librosa's signatures). The library's errors become
//! `scorenmf.ScorenmfError` with the message the command line prints.

mod analysis;
mod convert;
mod matrices;
mod metrics;
mod params;

use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

create_exception!(
    _native,
    ScorenmfError,
    PyValueError,
    "A bad input or parameter, or a failed write: the message the scorenmf command prints."
);

/// The library's error as a Python exception.
pub(crate) fn to_py(e: scorenmf::Error) -> PyErr {
    ScorenmfError::new_err(e.to_string())
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("ScorenmfError", m.py().get_type::<ScorenmfError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(analysis::transcribe, m)?)?;
    m.add_function(wrap_pyfunction!(analysis::separate, m)?)?;
    m.add_function(wrap_pyfunction!(analysis::align, m)?)?;
    m.add_function(wrap_pyfunction!(analysis::parameter_names, m)?)?;
    m.add_function(wrap_pyfunction!(analysis::config, m)?)?;
    m.add_function(wrap_pyfunction!(matrices::nmf, m)?)?;
    m.add_function(wrap_pyfunction!(matrices::decompose, m)?)?;
    m.add_function(wrap_pyfunction!(metrics::eval_notes, m)?)?;
    m.add_function(wrap_pyfunction!(metrics::eval_stems, m)?)?;
    Ok(())
}
