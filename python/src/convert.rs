//! `transduce.import_hf`, `export_hf` and `quantize`: the model conversions, each returning
//! what it wrote as a dict.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::to_py;

/// Imports the Hugging Face Marian directory `source` as a transduce model directory at
/// `out`. Returns `{"dir", "parameters", "files"}`.
#[pyfunction]
pub fn import_hf(py: Python<'_>, source: PathBuf, out: PathBuf) -> PyResult<Bound<'_, PyDict>> {
    let s = py.detach(|| transduce::convert::hf_marian::import(&source, &out)).map_err(|e| to_py(py, e))?;
    let d = PyDict::new(py);
    d.set_item("dir", s.dir.path().to_path_buf())?;
    d.set_item("parameters", s.parameters)?;
    d.set_item("files", s.files)?;
    Ok(d)
}

/// Writes the transduce model directory `model` as a Hugging Face Marian directory at `out`
/// (loadable by transformers' `MarianMTModel` and CTranslate2's converter). Returns
/// `{"moved_pad", "notes"}`.
#[pyfunction]
pub fn export_hf(py: Python<'_>, model: PathBuf, out: PathBuf) -> PyResult<Bound<'_, PyDict>> {
    let s = py.detach(|| transduce::convert::hf_marian::export(&model, &out)).map_err(|e| to_py(py, e))?;
    let d = PyDict::new(py);
    d.set_item("moved_pad", s.moved_pad)?;
    d.set_item("notes", s.notes)?;
    Ok(d)
}

/// Writes `out` from the model directory `source` (transduce or Hugging Face Marian) with the
/// weights in int8. Returns `{"quantized", "kept", "bytes_before", "bytes_after"}`.
#[pyfunction]
pub fn quantize(py: Python<'_>, source: PathBuf, out: PathBuf) -> PyResult<Bound<'_, PyDict>> {
    let s = py.detach(|| transduce::convert::int8::quantize(&source, &out)).map_err(|e| to_py(py, e))?;
    let d = PyDict::new(py);
    d.set_item("quantized", s.quantized)?;
    d.set_item("kept", s.kept)?;
    d.set_item("bytes_before", s.bytes_before)?;
    d.set_item("bytes_after", s.bytes_after)?;
    Ok(d)
}
