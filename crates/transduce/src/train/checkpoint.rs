//! Checkpoints: the weights, the optimizer's moments and where training stands, written to a
//! `.partial` directory and renamed (a crash never leaves a broken one); reading one back for an
//! exact resume; averaging the last few.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use super::ema::WeightAverage;
use super::step::TrainStep;
use crate::data::corpus::FilterCounts;
use crate::error::{Error, Result};
use crate::model::weights::read_safetensors;
use crate::model::{ModelConfig, TrainableModel};
use crate::model_dir::{self, replace_atomically, sync_file, Checkpoint, ModelDir};

/// Where training stands: saved with every checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    pub updates: usize,
    pub epoch: usize,
    /// Batches of `epoch` already used.
    pub batches_in_epoch: usize,
    pub elapsed_s: f64,
    pub best: Option<f64>,
    pub validations_without_improvement: usize,
    /// What the filters did over the first epoch.
    pub filter_counts: FilterCounts,
}

/// Writes update `state.updates`'s checkpoint of `dir` (with the weights' moving average when
/// there is one), then removes all but the newest `keep_last`.
///
/// The files are written into `update-N.partial`, flushed, and the directory renamed to
/// `update-N`: a process killed at any moment leaves every finished checkpoint whole, and
/// [`ModelDir::checkpoints`] never lists a partial one. Where writing fails (a full disk) the
/// partial directory is removed and the older checkpoints are kept.
pub fn save_checkpoint(
    dir: &ModelDir,
    keep_last: usize,
    model: &TrainableModel,
    step: &TrainStep,
    average: Option<&WeightAverage>,
    state: &TrainState,
) -> Result<()> {
    let done = dir.checkpoint(state.updates);
    let tmp = Checkpoint { path: done.path.with_extension("partial") };
    if tmp.path.exists() {
        std::fs::remove_dir_all(&tmp.path).map_err(io(&tmp.path))?;
    }
    if let Err(e) = write_checkpoint(&tmp, model, step, average, state) {
        let _ = std::fs::remove_dir_all(&tmp.path);
        return Err(e);
    }
    if done.path.exists() {
        // the same update saved again (a run resumed at its last update): the old one is moved
        // aside first, so a finished checkpoint of this update exists at every moment but one
        // rename
        let replaced = done.path.with_extension("replaced");
        if replaced.exists() {
            std::fs::remove_dir_all(&replaced).map_err(io(&replaced))?;
        }
        std::fs::rename(&done.path, &replaced).map_err(io(&done.path))?;
        std::fs::rename(&tmp.path, &done.path).map_err(io(&done.path))?;
        std::fs::remove_dir_all(&replaced).map_err(io(&replaced))?;
    } else {
        std::fs::rename(&tmp.path, &done.path).map_err(io(&done.path))?;
    }
    let all = dir.checkpoints()?;
    for old in all.iter().take(all.len().saturating_sub(keep_last)) {
        std::fs::remove_dir_all(&old.path).map_err(io(&old.path))?;
    }
    remove_leftovers(dir)
}

/// Removes the `.partial` and `.replaced` directories a killed process left behind.
fn remove_leftovers(dir: &ModelDir) -> Result<()> {
    let checkpoints = dir.file(model_dir::CHECKPOINTS);
    for entry in std::fs::read_dir(&checkpoints).map_err(io(&checkpoints))? {
        let path = entry.map_err(io(&checkpoints))?.path();
        if path.extension().is_some_and(|e| e == "partial" || e == "replaced") {
            std::fs::remove_dir_all(&path).map_err(io(&path))?;
        }
    }
    Ok(())
}

fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |e| Error::io(&path, e)
}

/// The three files of a checkpoint, each flushed to the disk; the moving averages go beside the
/// moments (`ema.<name>`).
fn write_checkpoint(
    to: &Checkpoint,
    model: &TrainableModel,
    step: &TrainStep,
    average: Option<&WeightAverage>,
    state: &TrainState,
) -> Result<()> {
    std::fs::create_dir_all(&to.path).map_err(io(&to.path))?;
    let weights = to.weights();
    model.save(&weights)?;
    sync_file(&weights)?;
    let names: Vec<String> = model.named_vars().into_iter().map(|(n, _)| n).collect();
    let mut moments = HashMap::new();
    for (name, (m, v)) in names.iter().zip(step.optimizer.moments()?) {
        moments.insert(format!("m.{name}"), m);
        moments.insert(format!("v.{name}"), v);
    }
    if let Some(average) = average {
        for (name, a) in names.iter().zip(average.averages()?) {
            moments.insert(format!("ema.{name}"), a);
        }
    }
    let opt = to.optimizer();
    candle_core::safetensors::save(&moments, &opt)
        .map_err(|e| Error::Weights { path: opt.clone(), why: e.to_string() })?;
    sync_file(&opt)?;
    let state_path = to.state();
    std::fs::write(&state_path, serde_json::to_string_pretty(state).expect("state serialises"))
        .map_err(io(&state_path))?;
    sync_file(&state_path)
}

/// The model, optimizer moments and state of `checkpoint`; `step` is rebuilt over the loaded
/// parameters with its settings kept.
pub fn load_checkpoint(
    checkpoint: &Checkpoint,
    config: &ModelConfig,
    step: &mut TrainStep,
) -> Result<(TrainableModel, TrainState)> {
    let model = TrainableModel::load(config, &checkpoint.weights(), DType::F32, &Device::Cpu)?;
    let opt_path = checkpoint.optimizer();
    let tensors = read_safetensors(&opt_path, &Device::Cpu)?;
    let mut moments = Vec::new();
    for (name, _) in model.named_vars() {
        let get = |k: String| {
            tensors
                .get(&k)
                .cloned()
                .ok_or_else(|| Error::Weights { path: opt_path.clone(), why: format!("missing `{k}`") })
        };
        moments.push((get(format!("m.{name}"))?, get(format!("v.{name}"))?));
    }
    let state_path = checkpoint.state();
    let state: TrainState = crate::error::read_json(&state_path)?;
    step.bind(&model)?;
    step.optimizer.restore(moments, state.updates)?;
    Ok((model, state))
}

/// Puts `checkpoint`'s moving averages of `model`'s parameters into `average`; a checkpoint
/// written without them (the run had no `ema`) leaves the average at the loaded weights.
pub fn load_average(checkpoint: &Checkpoint, model: &TrainableModel, average: &mut WeightAverage) -> Result<()> {
    let path = checkpoint.optimizer();
    let tensors = read_safetensors(&path, &Device::Cpu)?;
    let names: Vec<String> = model.named_vars().into_iter().map(|(n, _)| format!("ema.{n}")).collect();
    if names.iter().all(|n| !tensors.contains_key(n)) {
        return Ok(());
    }
    let averages = names
        .iter()
        .map(|n| {
            tensors.get(n).cloned().ok_or_else(|| Error::Weights { path: path.clone(), why: format!("missing `{n}`") })
        })
        .collect::<Result<Vec<_>>>()?;
    average.restore(averages).map_err(|e| Error::Weights { path, why: e.to_string() })
}

/// Averages the parameters of the last `k` checkpoints of the model directory `out` into its
/// weights file; returns how many were averaged.
pub fn average_checkpoints(out: &std::path::Path, k: usize) -> Result<usize> {
    if k == 0 {
        return Err(Error::option("last", "average at least 1 checkpoint"));
    }
    let dir = ModelDir::open(out)?;
    let all = dir.checkpoints()?;
    let chosen = &all[all.len().saturating_sub(k)..];
    if chosen.is_empty() {
        return Err(Error::Input(format!("{}: no checkpoints to average", out.display())));
    }
    let mut sum: HashMap<String, Tensor> = HashMap::new();
    for checkpoint in chosen {
        for (name, t) in read_safetensors(&checkpoint.weights(), &Device::Cpu)? {
            let t = t.to_dtype(DType::F32)?;
            let acc = match sum.remove(&name) {
                Some(a) => (a + t)?,
                None => t,
            };
            sum.insert(name, acc);
        }
    }
    let n = chosen.len() as f64;
    let averaged = sum.into_iter().map(|(k, v)| Ok((k, (v / n)?))).collect::<candle_core::Result<HashMap<_, _>>>()?;
    replace_atomically(&dir.weights_path(), |tmp| {
        candle_core::safetensors::save(&averaged, tmp)
            .map_err(|e| Error::Weights { path: tmp.to_path_buf(), why: e.to_string() })
    })?;
    Ok(chosen.len())
}
