//! `transduce.explain` (one sentence's recorded attention, context map and step choices, as a
//! dict) and `transduce.explain_page` (the explainer's self-contained HTML page).

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use transduce::explain::{explain as record, html};
use transduce::search::Alignment;

use crate::errors::to_py;
use crate::settings::{decode_options, explain_defaults};
use crate::translator::Translator;

/// What `transduce explain` records for `sentence`, as a dict: `source`, `translation`,
/// `source_tokens`, `target_tokens`, `decoder_inputs`, `encoder_attention`
/// `[layer][head][source][source]`, `decoder_self_attention` `[layer][head][step][step]`,
/// `cross_attention` `[layer][head][step][source]`, `context_map` (PCA, one point per source
/// token), `context_variance`, `alignment` `[step][source]` and `steps` (the `top_k`
/// candidates of each decoder step and the token chosen). Greedy unless search keywords say
/// otherwise.
#[pyfunction]
#[pyo3(signature = (translator, sentence, *, top_k=5, **options))]
pub fn explain<'py>(
    py: Python<'py>,
    translator: &Translator,
    sentence: &str,
    top_k: usize,
    options: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let opts = decode_options(py, "explain", explain_defaults(), options, Alignment::Off, 4096)?;
    let explanation = py.detach(|| record(&translator.inner, sentence, &opts, top_k)).map_err(|e| to_py(py, e))?;
    let text = serde_json::to_string(&explanation).expect("an explanation serialises");
    py.import("json")?.call_method1("loads", (text,))
}

/// The explainer's page for `sentences` (one self-contained HTML document, as `transduce
/// explain` writes it). With `path`, also writes it there and, beside it, each sentence's
/// context map and alignment as SVG files.
#[pyfunction]
#[pyo3(signature = (translator, sentences, *, path=None, top_k=5, **options))]
pub fn explain_page<'py>(
    py: Python<'py>,
    translator: &Translator,
    sentences: Vec<String>,
    path: Option<PathBuf>,
    top_k: usize,
    options: Option<&Bound<'py, PyDict>>,
) -> PyResult<String> {
    let opts = decode_options(py, "explain_page", explain_defaults(), options, Alignment::Off, 4096)?;
    let name = translator.path.display().to_string();
    py.detach(|| {
        let explanations = sentences
            .iter()
            .map(|s| record(&translator.inner, s, &opts, top_k))
            .collect::<transduce::Result<Vec<_>>>()?;
        if let Some(path) = &path {
            html::write(path, &explanations, &name)?;
        }
        Ok(html::page(&explanations, &name))
    })
    .map_err(|e| to_py(py, e))
}
