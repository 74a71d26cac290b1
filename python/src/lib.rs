//! `transduce._native`: the Python package's native module. Each function calls the library
//! crate `transduce` with the GIL released; errors come back as the exception classes of
//! [`errors`], carrying the library's message.

mod convert;
mod errors;
mod explain;
mod lines;
mod results;
mod score;
mod settings;
mod training;
mod translator;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    m.add_class::<translator::Translator>()?;
    m.add_class::<results::Translation>()?;
    m.add_class::<results::Output>()?;
    m.add_function(wrap_pyfunction!(explain::explain, m)?)?;
    m.add_function(wrap_pyfunction!(explain::explain_page, m)?)?;
    m.add_function(wrap_pyfunction!(lines::_lines, m)?)?;
    m.add_class::<score::BleuScore>()?;
    m.add_class::<score::ChrfScore>()?;
    m.add_function(wrap_pyfunction!(score::bleu, m)?)?;
    m.add_function(wrap_pyfunction!(score::chrf, m)?)?;
    m.add_class::<training::TrainConfig>()?;
    m.add_function(wrap_pyfunction!(training::train, m)?)?;
    m.add_function(wrap_pyfunction!(convert::import_hf, m)?)?;
    m.add_function(wrap_pyfunction!(convert::export_hf, m)?)?;
    m.add_function(wrap_pyfunction!(convert::quantize, m)?)?;
    Ok(())
}
