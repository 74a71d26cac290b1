//! What a translation returns: [`Translation`] (the best output's fields, the n-best and
//! whether the input was cut) and [`Output`] (one hypothesis).

use pyo3::prelude::*;
use pyo3::types::PyDict;
use transduce::search::Scores;
use transduce::translate::stream::TokenScores;

/// One output of a sentence: its text, token ids, search score, per-token log-probabilities
/// (when asked for) and word alignment (when asked for).
#[pyclass(frozen, get_all, module = "transduce")]
#[derive(Debug, Clone)]
pub struct Output {
    /// The detokenized translation.
    pub text: String,
    /// Target token ids, EOS excluded.
    pub tokens: Vec<u32>,
    /// The search's score (length-penalised for beam search); None with `scores="omit"`.
    pub score: Option<f32>,
    /// Log-probability of each token, EOS last (`return_scores=True`), else None.
    pub token_scores: Option<Vec<f32>>,
    /// `(source word, target word)` links from cross-attention (`return_alignments=True`), else None.
    pub alignment: Option<Vec<(usize, usize)>>,
}

impl Output {
    pub fn new(o: transduce::translate::Output, scores: Scores, token_scores: TokenScores) -> Self {
        Output {
            text: o.text,
            tokens: o.tokens,
            score: (scores == Scores::Include).then_some(o.score),
            token_scores: (token_scores == TokenScores::Include).then_some(o.token_scores),
            alignment: o.alignment,
        }
    }

    fn dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("text", &self.text)?;
        d.set_item("tokens", &self.tokens)?;
        if let Some(s) = self.score {
            d.set_item("score", s)?;
        }
        if let Some(s) = &self.token_scores {
            d.set_item("token_scores", s)?;
        }
        if let Some(a) = &self.alignment {
            d.set_item("alignment", a)?;
        }
        Ok(d)
    }
}

#[pymethods]
impl Output {
    /// The output's fields as a dict (`score`, `token_scores` and `alignment` when present).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.dict(py)
    }

    fn __repr__(&self) -> String {
        format!("Output(text={:?}, score={})", self.text, shown(self.score))
    }

    fn __str__(&self) -> String {
        self.text.clone()
    }
}

/// The translation of one input: the best output's fields, and `n_best`, every output best first.
#[pyclass(frozen, module = "transduce")]
#[derive(Debug, Clone)]
pub struct Translation {
    outputs: Vec<Output>,
    truncated: bool,
}

impl Translation {
    pub fn new(t: transduce::translate::Translation, scores: Scores, token_scores: TokenScores) -> Self {
        let truncated = t.truncated;
        let outputs = t.outputs.into_iter().map(|o| Output::new(o, scores, token_scores)).collect();
        Translation { outputs, truncated }
    }

    fn best(&self) -> &Output {
        &self.outputs[0]
    }
}

#[pymethods]
impl Translation {
    /// The best translation's text.
    #[getter]
    fn text(&self) -> String {
        self.best().text.clone()
    }

    #[getter]
    fn tokens(&self) -> Vec<u32> {
        self.best().tokens.clone()
    }

    #[getter]
    fn score(&self) -> Option<f32> {
        self.best().score
    }

    #[getter]
    fn token_scores(&self) -> Option<Vec<f32>> {
        self.best().token_scores.clone()
    }

    #[getter]
    fn alignment(&self) -> Option<Vec<(usize, usize)>> {
        self.best().alignment.clone()
    }

    /// Every output, best first (`n_best` of them with beam search).
    #[getter]
    fn n_best(&self) -> Vec<Output> {
        self.outputs.clone()
    }

    /// Whether the input was cut to the model's longest sequence.
    #[getter]
    fn truncated(&self) -> bool {
        self.truncated
    }

    /// The best output's fields, `n_best` (a list of dicts) and `truncated`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = self.best().dict(py)?;
        let n_best = self.outputs.iter().map(|o| o.dict(py)).collect::<PyResult<Vec<_>>>()?;
        d.set_item("n_best", n_best)?;
        d.set_item("truncated", self.truncated)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "Translation(text={:?}, score={}, n_best={})",
            self.best().text,
            shown(self.best().score),
            self.outputs.len()
        )
    }

    fn __str__(&self) -> String {
        self.best().text.clone()
    }
}

/// A score as `repr` shows it: four decimals, or None when omitted.
fn shown(score: Option<f32>) -> String {
    score.map_or_else(|| "None".to_string(), |s| format!("{s:.4}"))
}
