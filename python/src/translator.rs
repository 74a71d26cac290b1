//! `transduce.Translator`: a loaded model directory that translates lists of strings and files,
//! with the GIL released while it works (threads share one translator and run at once).

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use transduce::data::lines::LineReader;
use transduce::model_dir::Languages;
use transduce::search::{Alignment, Combination, Scores};
use transduce::text::languages::Direction;
use transduce::translate::stream::{translate_lines, Format, Prefixes, StreamOptions, TokenScores};
use transduce::translate::{Input, LoadOptions, Quantization};
use transduce::ModelDir;

use crate::errors::{option_error, to_py};
use crate::results::Translation;
use crate::settings::{decode_options, translate_defaults};

/// A model directory (transduce, int8 or Hugging Face Marian) loaded for translation:
/// `Translator(path, quantization=None, threads=None, workers=1, ensemble=None,
/// ensemble_mode="linear")`. `quantization="int8"` runs the linear layers in int8; `threads`
/// gives it its own pool of that many threads (default: all cores); `workers` translates that
/// many batches at once on shares of the threads; `ensemble`, a list of further model
/// directories of the same vocabulary, decodes with all of them as one (`transduce translate
/// -m PATH -m OTHER ...`), combined by `ensemble_mode` ("linear" or "log-linear").
#[pyclass(frozen, module = "transduce")]
pub struct Translator {
    pub(crate) inner: transduce::Translator,
    pub(crate) path: PathBuf,
}

/// What `prefix=` gave: none, one for every input, or one per input.
enum PrefixArg {
    None,
    Same(String),
    PerInput(Vec<Option<String>>),
}

fn prefix_arg(py: Python<'_>, prefix: Option<&Bound<'_, PyAny>>, inputs: usize) -> PyResult<PrefixArg> {
    let Some(prefix) = prefix.filter(|p| !p.is_none()) else { return Ok(PrefixArg::None) };
    if let Ok(s) = prefix.cast::<PyString>() {
        return Ok(PrefixArg::Same(s.to_string()));
    }
    let list: Vec<Option<String>> = prefix
        .extract()
        .map_err(|_| PyTypeError::new_err("option `prefix`: expected a str, a list of str or None, or None"))?;
    if list.len() != inputs {
        return Err(option_error(py, "prefix", format!("{} prefixes for {inputs} inputs", list.len())));
    }
    Ok(PrefixArg::PerInput(list))
}

#[pymethods]
impl Translator {
    /// Loads the model directory at `path` (a float model is quantized at load with
    /// `quantization="int8"`; `workers` is CTranslate2's `inter_threads`), and those of
    /// `ensemble` beside it.
    #[new]
    #[pyo3(signature = (path, quantization=None, threads=None, workers=1, ensemble=None, ensemble_mode="linear"))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        quantization: Option<&str>,
        threads: Option<usize>,
        workers: usize,
        ensemble: Option<Vec<PathBuf>>,
        ensemble_mode: &str,
    ) -> PyResult<Self> {
        let quantization = match quantization {
            None => Quantization::AsStored,
            Some(name) => name.parse::<Quantization>().map_err(|e| option_error(py, "quantization", e))?,
        };
        if threads == Some(0) {
            return Err(option_error(py, "threads", "must be at least 1"));
        }
        let combination = ensemble_mode.parse::<Combination>().map_err(|e| option_error(py, "ensemble_mode", e))?;
        let load = LoadOptions { quantization, threads, ..LoadOptions::default() };
        let dirs: Vec<PathBuf> = std::iter::once(path.clone()).chain(ensemble.unwrap_or_default()).collect();
        let inner = py
            .detach(|| {
                let mut t = transduce::Translator::load_ensemble(&dirs, load, combination)?;
                t.set_workers(workers)?;
                Ok(t)
            })
            .map_err(|e| to_py(py, e))?;
        Ok(Translator { inner, path })
    }

    /// The model directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// The model's configuration (`config.json` of a transduce model) as a dict.
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let text = serde_json::to_string(&self.inner.model.config).expect("the configuration serialises");
        py.import("json")?.call_method1("loads", (text,))
    }

    /// The languages the model translates between, `(source, target)`, when its directory
    /// records them.
    #[getter]
    fn languages(&self, py: Python<'_>) -> PyResult<Option<(String, String)>> {
        let dir = ModelDir::open(&self.path).map_err(|e| to_py(py, e))?;
        Ok(dir.languages().map_err(|e| to_py(py, e))?.map(|l| (l.source, l.target)))
    }

    /// The language codes of a multilingual model (M2M-100: "fr"; NLLB-200: "fra_Latn"), which
    /// `source_lang` and `target_lang` take; None for other models.
    #[getter]
    fn language_codes(&self) -> Option<Vec<String>> {
        self.inner.languages().map(|l| l.codes().map(str::to_string).collect())
    }

    /// Translates `texts` (a list of str) in order. Search keywords: `search` ("beam",
    /// "greedy", "sample"), `beam`, `n_best`, `length_penalty` ("gnmt", "average", "power",
    /// "none"), `alpha`, `beam_rule`, `temperature`, `top_k`, `top_p`, `seed`, `max_len`,
    /// `max_len_ratio`, `min_len`, `no_repeat_ngram`, `repetition_penalty`. `prefix`: the
    /// target text every output starts with, or one (or None) per input. `source_lang` and
    /// `target_lang`: the languages of a multilingual model (see `language_codes`; MADLAD-400
    /// takes `target_lang` alone). `scores="omit"` leaves each output's `score` None, so greedy
    /// search picks each token without normalising over the vocabulary (the same tokens,
    /// faster for large vocabularies; CTranslate2's `return_scores=False`).
    #[pyo3(signature = (texts, *, source_lang=None, target_lang=None, prefix=None, scores="include", return_scores=false, return_alignments=false, alignment_layer=None, max_tokens=4096, **options))]
    #[allow(clippy::too_many_arguments)]
    fn translate(
        &self,
        py: Python<'_>,
        texts: Vec<String>,
        source_lang: Option<String>,
        target_lang: Option<String>,
        prefix: Option<&Bound<'_, PyAny>>,
        scores: &str,
        return_scores: bool,
        return_alignments: bool,
        alignment_layer: Option<usize>,
        max_tokens: usize,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Vec<Translation>> {
        let token_scores = TokenScores::when(return_scores);
        // the outputs come as JSON lines' objects would
        let scores = scores_arg(py, Format::Jsonl, scores, token_scores)?;
        let mut opts = decode_options(
            py,
            "translate",
            translate_defaults(),
            options,
            Alignment::when(return_alignments, alignment_layer),
            max_tokens,
        )?;
        opts.scores = scores;
        let languages = languages_arg(py, source_lang, target_lang)?;
        let direction = languages.as_ref().map(|l| Direction { source: &l.source, target: &l.target });
        let prefixes = prefix_arg(py, prefix, texts.len())?;
        let prefix_of = |i: usize| match &prefixes {
            PrefixArg::None => None,
            PrefixArg::Same(p) => Some(p.as_str()),
            PrefixArg::PerInput(v) => v[i].as_deref(),
        };
        let inputs: Vec<Input> = texts
            .iter()
            .enumerate()
            .map(|(i, text)| Input {
                prefix: prefix_of(i).filter(|p| !p.is_empty()),
                direction,
                ..Input::new(text, i as u64)
            })
            .collect();
        let translations = py.detach(|| self.inner.translate_inputs(&inputs, &opts)).map_err(|e| to_py(py, e))?;
        Ok(translations.into_iter().map(|t| Translation::new(t, scores, token_scores)).collect())
    }

    /// Translates the file `source` (plain or gzip, one sentence per line) into `target`,
    /// streaming a `window` of lines at a time, in `format` "text", "jsonl", "nbest" or
    /// "pharaoh" (as `transduce translate --format`). `prefix_file` has one target prefix per
    /// line; `progress(lines_done)` is called after each window (an exception it raises stops
    /// the translation). Returns `{"lines", "target_tokens", "truncated"}` (the 0-based lines
    /// cut to the model's longest sequence). `scores` as for `translate`: "omit" drops the
    /// JSON lines' `score`; text and pharaoh output show none and always omit them.
    #[pyo3(signature = (source, target, *, source_lang=None, target_lang=None, format="text", prefix=None, prefix_file=None, scores="include", return_scores=false, return_alignments=false, alignment_layer=None, window=2000, max_tokens=4096, progress=None, **options))]
    #[allow(clippy::too_many_arguments)]
    fn translate_file<'py>(
        &self,
        py: Python<'py>,
        source: PathBuf,
        target: PathBuf,
        source_lang: Option<String>,
        target_lang: Option<String>,
        format: &str,
        prefix: Option<String>,
        prefix_file: Option<PathBuf>,
        scores: &str,
        return_scores: bool,
        return_alignments: bool,
        alignment_layer: Option<usize>,
        window: usize,
        max_tokens: usize,
        progress: Option<Py<PyAny>>,
        options: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let format: Format = format.parse().map_err(|e| option_error(py, "format", e))?;
        let alignment = Alignment::when(return_alignments || format == Format::Pharaoh, alignment_layer);
        let token_scores = TokenScores::when(return_scores);
        let scores = scores_arg(py, format, scores, token_scores)?;
        let mut opts = decode_options(py, "translate_file", translate_defaults(), options, alignment, max_tokens)?;
        opts.scores = scores;
        let languages = languages_arg(py, source_lang, target_lang)?;
        let stream = StreamOptions { format, token_scores, window, languages };
        let callback_error: Mutex<Option<PyErr>> = Mutex::new(None);
        let report = py.detach(|| {
            let mut input = LineReader::open(&source)?;
            let prefixes = Prefixes::open(prefix_file.as_deref(), prefix)?;
            let file = std::fs::File::create(&target).map_err(|e| transduce::Error::io(&target, e))?;
            let mut out = BufWriter::new(file);
            let mut done = 0u64;
            let report = translate_lines(&self.inner, &mut input, prefixes, &mut out, &opts, &stream, |w| {
                done += w.lines;
                Python::attach(|py| {
                    // Ctrl-C, or the callback's own exception, stops after this window
                    let result = py.check_signals().and_then(|()| match &progress {
                        Some(f) => f.call1(py, (done,)).map(drop),
                        None => Ok(()),
                    });
                    match result {
                        Ok(()) => Ok(()),
                        Err(e) => {
                            *callback_error.lock().expect("not poisoned") = Some(e);
                            Err(transduce::Error::Input("stopped".into()))
                        }
                    }
                })
            })?;
            out.flush().map_err(|e| transduce::Error::io(&target, e))?;
            Ok(report)
        });
        if let Some(e) = callback_error.lock().expect("not poisoned").take() {
            return Err(e);
        }
        let report = report.map_err(|e| to_py(py, e))?;
        let d = PyDict::new(py);
        d.set_item("lines", report.lines)?;
        d.set_item("target_tokens", report.target_tokens)?;
        d.set_item("truncated", PyList::new(py, &report.truncated)?)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!("Translator({:?})", self.path.display().to_string())
    }
}

/// What the search computes for output in `format` when asked for `scores` ("include" or
/// "omit") and `token_scores`; errors name the option `scores`.
fn scores_arg(py: Python<'_>, format: Format, scores: &str, token_scores: TokenScores) -> PyResult<Scores> {
    let asked: Scores = scores.parse().map_err(|e| option_error(py, "scores", e))?;
    format.scores(asked, token_scores).map_err(|e| to_py(py, e))
}

/// `source_lang` and `target_lang`, given together or not at all.
fn languages_arg(py: Python<'_>, source: Option<String>, target: Option<String>) -> PyResult<Option<Languages>> {
    match (source, target) {
        (Some(source), Some(target)) => Ok(Some(Languages { source, target })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(option_error(py, "target_lang", "give it with source_lang")),
        // MADLAD-400 takes the target alone
        (None, Some(target)) => Ok(Some(Languages { source: String::new(), target })),
    }
}
