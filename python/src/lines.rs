//! `transduce._native._lines`: a file's bytes split into lines exactly as the library reads
//! files (`transduce.ray` reads its inputs through it).

use pyo3::prelude::*;
use transduce::data::lines::{read_all, LineReader};

use crate::errors::to_py;

/// The lines of a whole file's `data` (plain or gzip), as `transduce translate` reads them:
/// split on `\n` only, `\r` stripped; invalid UTF-8 is an `InputError` naming `name` and the line.
#[pyfunction]
pub fn _lines(py: Python<'_>, data: &[u8], name: &str) -> PyResult<Vec<String>> {
    let bytes = data.to_vec();
    py.detach(|| read_all(LineReader::from_bytes(bytes, name))).map_err(|e| to_py(py, e))
}
