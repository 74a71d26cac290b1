//! Search keyword arguments (`beam=4, search="greedy", n_best=2, ...`) into the library's
//! [`SearchSettings`], which checks them: the names are the command line's flags with
//! underscores.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use transduce::choice::Choice;
use transduce::search::{Alignment, DecodeOptions, PenaltyKind, SearchKind, SearchSettings};

use crate::errors::{option_error, to_py};

/// What a keyword left out means: the command line's defaults, but a beam of 4.
pub fn translate_defaults() -> SearchSettings {
    SearchSettings { beam: 4, ..SearchSettings::default() }
}

/// As `transduce explain`: greedy unless told otherwise.
pub fn explain_defaults() -> SearchSettings {
    SearchSettings { search: SearchKind::Greedy, ..translate_defaults() }
}

/// Every search keyword, for the stubs' and errors' sake.
pub const SEARCH_KEYWORDS: &[&str] = &[
    "search",
    "beam",
    "length_penalty",
    "alpha",
    "beam_rule",
    "n_best",
    "temperature",
    "top_k",
    "top_p",
    "seed",
    "max_len",
    "max_len_ratio",
    "min_len",
    "no_repeat_ngram",
    "repetition_penalty",
];

fn value<'py, T: for<'a> FromPyObject<'a, 'py>>(key: &str, v: &Bound<'py, PyAny>, what: &str) -> PyResult<T> {
    v.extract::<T>().map_err(|_| {
        let given = v.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into());
        PyTypeError::new_err(format!("option `{key}`: expected {what}, got {given}"))
    })
}

fn choice<T: Choice>(py: Python<'_>, key: &str, v: &Bound<'_, PyAny>) -> PyResult<T> {
    let name: String = value(key, v, "a str")?;
    name.parse::<T>().map_err(|e| option_error(py, key, e))
}

/// The settings `kwargs` give over `defaults`; `function` names the caller in errors.
pub fn search_settings(
    py: Python<'_>,
    function: &str,
    defaults: SearchSettings,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<SearchSettings> {
    let mut s = defaults;
    let Some(kwargs) = kwargs else { return Ok(s) };
    let (mut exponent_from, mut alpha_given) = (None, false);
    for (k, v) in kwargs.iter() {
        let key: String = k.extract()?;
        match key.as_str() {
            "search" => s.search = choice(py, &key, &v)?,
            "beam" => s.beam = value(&key, &v, "an int >= 0")?,
            // a number is the exponent of `len^alpha`, as transformers' and CTranslate2's
            // `length_penalty`; a name picks the penalty (`alpha` gives its exponent)
            "length_penalty" if !v.is_instance_of::<PyString>() => {
                s.length_penalty = PenaltyKind::Power;
                s.alpha = value(&key, &v, "a penalty's name or a float")?;
                exponent_from = Some("length_penalty");
            }
            "length_penalty" => s.length_penalty = choice(py, &key, &v)?,
            "alpha" => {
                s.alpha = value(&key, &v, "a float")?;
                alpha_given = true;
            }
            "beam_rule" => s.beam_rule = choice(py, &key, &v)?,
            "n_best" => s.n_best = value(&key, &v, "an int >= 0")?,
            "temperature" => s.temperature = value(&key, &v, "a float")?,
            "top_k" => s.top_k = value(&key, &v, "an int >= 0")?,
            "top_p" => s.top_p = value(&key, &v, "a float")?,
            "seed" => s.seed = value(&key, &v, "an int >= 0")?,
            "max_len" => s.max_len = value(&key, &v, "an int >= 0")?,
            "max_len_ratio" => {
                s.max_len_ratio = value::<Option<f32>>(&key, &v, "a float or None")?.unwrap_or(0.0);
            }
            "min_len" => s.min_len = value(&key, &v, "an int >= 0")?,
            "no_repeat_ngram" => s.no_repeat_ngram = value(&key, &v, "an int >= 0")?,
            "repetition_penalty" => s.repetition_penalty = value(&key, &v, "a float")?,
            _ => {
                return Err(PyTypeError::new_err(format!(
                    "{function}() got an unexpected keyword argument '{key}' (search options: {})",
                    SEARCH_KEYWORDS.join(", ")
                )))
            }
        }
    }
    if let (Some(option), true) = (exponent_from, alpha_given) {
        return Err(option_error(py, option, "a number is the exponent itself: give `alpha` with a penalty's name"));
    }
    Ok(s)
}

/// The library's decoding options for `kwargs` over `defaults`, checked.
pub fn decode_options(
    py: Python<'_>,
    function: &str,
    defaults: SearchSettings,
    kwargs: Option<&Bound<'_, PyDict>>,
    alignment: Alignment,
    max_tokens: usize,
) -> PyResult<DecodeOptions> {
    search_settings(py, function, defaults, kwargs)?.decode_options(alignment, max_tokens).map_err(|e| to_py(py, e))
}
