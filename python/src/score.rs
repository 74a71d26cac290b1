//! `transduce.bleu` / `transduce.chrf` (also as `transduce.score.bleu` / `.chrf`): corpus
//! BLEU and chrF2 identical to sacrebleu 2.x's `corpus_bleu` / `corpus_chrf`.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use transduce::eval::{Bleu, Case, Chrf};

use crate::errors::InputError;

/// Corpus BLEU: `score`, `precisions` (percent, orders 1-4), `bp`, `sys_len`, `ref_len`,
/// `counts` and `totals` (matching and total n-grams per order); `str()` is sacrebleu's line.
#[pyclass(frozen, get_all, module = "transduce")]
pub struct BleuScore {
    pub score: f64,
    pub precisions: Vec<f64>,
    pub bp: f64,
    pub sys_len: usize,
    pub ref_len: usize,
    pub counts: Vec<usize>,
    pub totals: Vec<usize>,
    line: String,
}

#[pymethods]
impl BleuScore {
    fn __str__(&self) -> String {
        self.line.clone()
    }

    fn __repr__(&self) -> String {
        format!("BleuScore({})", self.line)
    }

    fn __float__(&self) -> f64 {
        self.score
    }
}

/// Corpus chrF2 (character 6-grams, beta 2): `score`; `str()` is sacrebleu's line.
#[pyclass(frozen, get_all, module = "transduce")]
pub struct ChrfScore {
    pub score: f64,
    line: String,
}

#[pymethods]
impl ChrfScore {
    fn __str__(&self) -> String {
        self.line.clone()
    }

    fn __repr__(&self) -> String {
        format!("ChrfScore({})", self.line)
    }

    fn __float__(&self) -> f64 {
        self.score
    }
}

/// The reference streams (`[[ref of line 1, ref of line 2, ...], ...]`, as sacrebleu takes
/// them; one list of str is one stream), each as long as the hypotheses.
fn streams(references: &Bound<'_, PyAny>, hypotheses: usize) -> PyResult<Vec<Vec<String>>> {
    let streams: Vec<Vec<String>> = match references.extract::<Vec<String>>() {
        Ok(one) if !references.is_instance_of::<pyo3::types::PyString>() => vec![one],
        _ => references.extract().map_err(|_| {
            PyTypeError::new_err("references: expected a list of reference streams (lists of str) or one list of str")
        })?,
    };
    if streams.is_empty() {
        return Err(InputError::new_err("references: no reference stream"));
    }
    for (i, s) in streams.iter().enumerate() {
        if s.len() != hypotheses {
            return Err(InputError::new_err(format!(
                "reference stream {i} has {} lines but there are {hypotheses} hypotheses: they must be aligned",
                s.len()
            )));
        }
    }
    Ok(streams)
}

fn case(lowercase: bool) -> Case {
    if lowercase {
        Case::Lower
    } else {
        Case::Sensitive
    }
}

/// Corpus BLEU of `hypotheses` against `references` (sacrebleu's `corpus_bleu` with its
/// defaults: 13a tokenization, exponential smoothing; `lowercase` as its `-lc`).
#[pyfunction]
#[pyo3(signature = (hypotheses, references, *, lowercase=false))]
pub fn bleu(
    py: Python<'_>,
    hypotheses: Vec<String>,
    references: &Bound<'_, PyAny>,
    lowercase: bool,
) -> PyResult<BleuScore> {
    let streams = streams(references, hypotheses.len())?;
    let s = py.detach(|| {
        let hyps: Vec<&str> = hypotheses.iter().map(String::as_str).collect();
        let refs: Vec<Vec<&str>> = streams.iter().map(|s| s.iter().map(String::as_str).collect()).collect();
        Bleu { case: case(lowercase) }.corpus_score(&hyps, &refs)
    });
    Ok(BleuScore {
        score: s.score,
        precisions: s.precisions.to_vec(),
        bp: s.brevity_penalty,
        sys_len: s.stats.hyp_len,
        ref_len: s.stats.ref_len,
        counts: s.stats.correct.to_vec(),
        totals: s.stats.total.to_vec(),
        line: s.to_string(),
    })
}

/// Corpus chrF2 of `hypotheses` against `references` (sacrebleu's `corpus_chrf` defaults).
#[pyfunction]
#[pyo3(signature = (hypotheses, references, *, lowercase=false))]
pub fn chrf(
    py: Python<'_>,
    hypotheses: Vec<String>,
    references: &Bound<'_, PyAny>,
    lowercase: bool,
) -> PyResult<ChrfScore> {
    let streams = streams(references, hypotheses.len())?;
    let s = py.detach(|| {
        let hyps: Vec<&str> = hypotheses.iter().map(String::as_str).collect();
        let refs: Vec<Vec<&str>> = streams.iter().map(|s| s.iter().map(String::as_str).collect()).collect();
        Chrf { case: case(lowercase) }.corpus_score(&hyps, &refs)
    });
    Ok(ChrfScore { score: s.score, line: s.to_string() })
}
