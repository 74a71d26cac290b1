//! `transduce.TrainConfig` and `transduce.train`: the command line's training options as
//! keyword arguments, and a run with progress through Python logging or a callback; Ctrl-C
//! saves a checkpoint and returns.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use pyo3::exceptions::{PyKeyboardInterrupt, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use serde_json::{json, Map, Value};
use transduce::data::corpus::CorpusSource;
use transduce::train::{parse_duration, train as run, Start};

use crate::errors::to_py;

/// A training run's options: `TrainConfig(out, train, valid=None, *, config=None, **options)`.
/// `train` / `valid` are a TSV file (`source<TAB>target`) or a `(source_file, target_file)`
/// pair; `config` a TOML file as `transduce train --config`; options take the command line's
/// flag names with underscores (`preset`, `max_updates`, `max_time="2h"`, `d_model`, `layers`,
/// `norm`, `max_len`, `src_lang`, ...) or `training.json`'s keys (`adam={"beta2": 0.98}`).
#[pyclass(module = "transduce")]
pub struct TrainConfig {
    pub(crate) inner: transduce::train::TrainConfig,
}

fn corpus(what: &str, v: &Bound<'_, PyAny>) -> PyResult<CorpusSource> {
    if let Ok((source, target)) = v.extract::<(PathBuf, PathBuf)>() {
        return Ok(CorpusSource::Aligned { source, target });
    }
    v.extract::<PathBuf>().map(CorpusSource::Tsv).map_err(|_| {
        PyTypeError::new_err(format!("{what}: expected a TSV file's path or a (source, target) pair of paths"))
    })
}

/// A keyword argument as JSON (through Python's `json`, which names what it cannot encode).
fn to_json(py: Python<'_>, key: &str, v: &Bound<'_, PyAny>) -> PyResult<Value> {
    let text: String = py
        .import("json")?
        .call_method1("dumps", (v,))
        .map_err(|e| PyTypeError::new_err(format!("option `{key}`: {e}")))?
        .extract()?;
    Ok(serde_json::from_str(&text).expect("json.dumps writes JSON"))
}

/// Where a command-line name goes in `training.json`.
fn place(options: &mut Map<String, Value>, key: &str, value: Value) -> Result<(), String> {
    let value = match value {
        // the command line's spelling of a choice (`per-side`) is the file's (`per_side`)
        Value::String(s) if CHOICES.contains(&key) => Value::String(s.replace('-', "_")),
        v => v,
    };
    let mut model = |field: &str, v: Value| {
        let entry = options.entry("model").or_insert_with(|| json!({}));
        entry.as_object_mut().expect("`model` is an object").insert(field.into(), v);
    };
    match key {
        "d_model" | "heads" | "ffn_dim" | "encoder_layers" | "decoder_layers" | "activation" | "arch" => {
            model(key, value)
        }
        "layers" => {
            model("encoder_layers", value.clone());
            model("decoder_layers", value);
        }
        "norm" => model("norm_placement", value),
        "max_len" => {
            let entry = options.entry("filter").or_insert_with(|| json!({}));
            entry.as_object_mut().ok_or("`filter` must be an object")?.insert("max_len".into(), value);
        }
        "max_time" => {
            let seconds = match &value {
                Value::String(s) => parse_duration(s).map_err(|e| e.to_string())?,
                Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
                Value::Null => {
                    options.insert("max_time_s".into(), Value::Null);
                    return Ok(());
                }
                _ => return Err("option `max_time`: expected a duration such as \"2h\" or seconds".into()),
            };
            options.insert("max_time_s".into(), json!(seconds));
        }
        "src_lang" | "tgt_lang" => {
            let entry = options.entry("languages").or_insert_with(|| json!({}));
            let field = if key == "src_lang" { "source" } else { "target" };
            entry.as_object_mut().ok_or("`languages` must be an object")?.insert(field.into(), value);
        }
        _ => {
            options.insert(key.into(), value);
        }
    }
    Ok(())
}

/// Options whose values are names.
const CHOICES: &[&str] = &["preset", "subword", "vocab_sharing", "stop_metric", "norm", "activation", "arch"];

#[pymethods]
impl TrainConfig {
    #[new]
    #[pyo3(signature = (out, train, valid=None, *, config=None, **options))]
    fn new(
        py: Python<'_>,
        out: PathBuf,
        train: &Bound<'_, PyAny>,
        valid: Option<&Bound<'_, PyAny>>,
        config: Option<PathBuf>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let train = corpus("train", train)?;
        let valid = valid.filter(|v| !v.is_none()).map(|v| corpus("valid", v)).transpose()?;
        let mut inner = transduce::train::TrainConfig::new(train, valid, out);
        if let Some(path) = &config {
            inner.merge_toml(path).map_err(|e| to_py(py, e))?;
        }
        if let Some(options) = options {
            let mut json = Map::new();
            for (k, v) in options.iter() {
                let key: String = k.extract()?;
                let value = to_json(py, &key, &v)?;
                place(&mut json, &key, value).map_err(crate::errors::InputError::new_err)?;
            }
            inner.merge_json(json, "TrainConfig keyword arguments").map_err(|e| to_py(py, e))?;
        }
        inner.validate().map_err(|e| to_py(py, e))?;
        Ok(TrainConfig { inner })
    }

    /// The options as `training.json` writes them.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let text = serde_json::to_string(&self.inner).expect("the options serialise");
        py.import("json")?.call_method1("loads", (text,))
    }

    /// The model directory the run writes.
    #[getter]
    fn out(&self) -> PathBuf {
        self.inner.out.clone()
    }

    fn __repr__(&self) -> String {
        format!("TrainConfig(out={:?}, preset={:?})", self.inner.out.display().to_string(), self.inner.preset)
    }
}

/// Trains as `config` says until a limit, early stopping or Ctrl-C (which saves a checkpoint
/// and returns). `resume=True` continues from the newest checkpoint of `config.out`.
/// Progress goes to the `transduce.train` logger every `log_every` updates and, when given,
/// to `callback(dict)` after every update (`update`, `epoch`, `loss`, `nll`, `tokens`,
/// `grad_norm`, `lr`, `elapsed_s`); an exception the callback raises stops the run (with a
/// checkpoint) and is raised. Returns the run's summary (`stop`, `state`, `losses`,
/// `last_validation`, and `projection`: the passes over the corpus the budget allowed and the
/// dropout chosen for them, where the run chose one).
#[pyfunction]
#[pyo3(signature = (config, *, resume=false, callback=None))]
pub fn train<'py>(
    py: Python<'py>,
    config: &TrainConfig,
    resume: bool,
    callback: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let logger = py.import("logging")?.call_method1("getLogger", ("transduce.train",))?.unbind();
    let cfg = config.inner.clone();
    let start = if resume { Start::Resume } else { Start::Fresh };
    let stop = AtomicBool::new(false);
    let raised: Mutex<Option<PyErr>> = Mutex::new(None);
    let log_every = cfg.log_every.max(1);
    let started = std::time::Instant::now();
    let summary = py.detach(|| {
        run(&cfg, start, &stop, |state, stats| {
            Python::attach(|py| {
                let stop_with = |e: PyErr| {
                    stop.store(true, Ordering::SeqCst);
                    let mut raised = raised.lock().expect("not poisoned");
                    raised.get_or_insert(e);
                };
                if let Err(e) = py.check_signals() {
                    stop_with(e);
                }
                if state.updates % log_every == 0 {
                    let line = format!(
                        "update {} epoch {} loss {:.4} lr {:.3e} tokens {} grad_norm {:.3}",
                        state.updates, state.epoch, stats.loss, stats.lr, stats.ntokens, stats.grad_norm
                    );
                    if let Err(e) = logger.call_method1(py, "info", (PyString::new(py, &line),)) {
                        stop_with(e);
                    }
                }
                if let Some(f) = &callback {
                    let d = PyDict::new(py);
                    for (k, v) in [("update", state.updates), ("epoch", state.epoch), ("tokens", stats.ntokens)] {
                        let _ = d.set_item(k, v);
                    }
                    for (k, v) in [
                        ("loss", stats.loss),
                        ("nll", stats.nll),
                        ("grad_norm", stats.grad_norm),
                        ("lr", stats.lr),
                        ("elapsed_s", started.elapsed().as_secs_f64()),
                    ] {
                        let _ = d.set_item(k, v);
                    }
                    if let Some(divergence) = stats.divergence {
                        let _ = d.set_item("r_drop_kl", divergence);
                    }
                    if let Err(e) = f.call1(py, (d,)) {
                        stop_with(e);
                    }
                    // a signal that arrived during the callback (or that it sent) stops this update
                    if let Err(e) = py.check_signals() {
                        stop_with(e);
                    }
                }
            })
        })
    });
    let summary = summary.map_err(|e| to_py(py, e))?;
    if let Some(e) = raised.lock().expect("not poisoned").take() {
        if e.is_instance_of::<PyKeyboardInterrupt>(py) {
            let note = "interrupted: checkpoint saved; train(config, resume=True) continues";
            logger.call_method1(py, "warning", (note,))?;
        } else {
            return Err(e);
        }
    }
    let text = serde_json::to_string(&summary).expect("the summary serialises");
    py.import("json")?.call_method1("loads", (text,))
}
