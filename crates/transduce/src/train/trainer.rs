//! The training loop: streaming token-budget batches, updates with gradient accumulation,
//! validation, checkpoints, exact resume, and clean stops on a signal or a limit.

use std::cell::Cell;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::{DType, Device};
use serde::Serialize;

use super::budget::{Planned, Projection};
use super::checkpoint::{load_average, load_checkpoint, save_checkpoint, TrainState};
use super::config::{StopMetric, TrainConfig};
use super::corpus::{batch_tensors, tokenizers, validation_pairs, ExampleStream, Segmentation, SubwordSamplers};
use super::ema::WeightAverage;
use super::step::StepStats;
use super::validation::{validate, Validation, ValidationSet};
use crate::data::batching::{BatchPlan, Example};
use crate::data::corpus::FilterCounts;
use crate::error::{Error, Result};
use crate::model::{Ctx, ModelConfig, TrainableModel};
use crate::model_dir::{self, replace_atomically, write_atomic, ModelDir};
use crate::text::Tokenizers;

/// Why training stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    MaxUpdates,
    MaxEpochs,
    MaxTime,
    EarlyStopping,
    Signal,
}

/// How a run ended.
#[derive(Debug, Clone, Serialize)]
pub struct TrainSummary {
    pub state: TrainState,
    pub stop: StopReason,
    /// (update, loss) of every update this run made.
    pub losses: Vec<(usize, f64)>,
    pub last_validation: Option<Validation>,
    /// What the budget allowed and the dropout chosen for it (a run from scratch without a
    /// dropout of its own, started by this call).
    pub projection: Option<Projection>,
}

/// Whether to start fresh or continue from the newest checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Fresh,
    Resume,
}

fn append_metrics(dir: &ModelDir, record: serde_json::Value) -> Result<()> {
    let path = dir.file(model_dir::METRICS);
    let io = |e| Error::io(&path, e);
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(io)?;
    writeln!(f, "{record}").map_err(io)
}

/// Cuts `metrics.jsonl` back to the records of updates up to `updates`, where training starts
/// again: the records a killed run wrote after its last checkpoint are written again as the
/// resumed run makes those updates, and a line the kill cut short is dropped.
fn keep_metrics_until(dir: &ModelDir, updates: usize) -> Result<()> {
    let path = dir.file(model_dir::METRICS);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let text = String::from_utf8_lossy(&bytes);
    let up_to = |line: &str| {
        let record = serde_json::from_str::<serde_json::Value>(line).ok();
        record.and_then(|r| r["update"].as_u64()).is_some_and(|u| u as usize <= updates)
    };
    let kept: String = text.split_inclusive('\n').filter(|l| l.ends_with('\n') && up_to(l)).collect();
    if kept.len() != bytes.len() {
        write_atomic(&path, kept.as_bytes())?;
    }
    Ok(())
}

/// Trains as `cfg` says until a limit, early stopping or `stop` becomes true.
pub fn train(
    cfg: &TrainConfig,
    start: Start,
    stop: &AtomicBool,
    mut on_update: impl FnMut(&TrainState, &StepStats),
) -> Result<TrainSummary> {
    cfg.validate()?;
    let dir = ModelDir::create(&cfg.out)?;
    let newest = dir.checkpoints()?.last().cloned();
    // refused before anything is written: the other run's `training.json` stays as it was
    if let (Start::Fresh, Some(last)) = (start, &newest) {
        return Err(Error::Input(format!(
            "{}: holds the checkpoints of a training run (the newest {}); continue it with --resume \
             (Python: resume=True), or train into another directory",
            dir.path().display(),
            last.path.display()
        )));
    }
    let training_json = serde_json::to_string_pretty(cfg).expect("config serialises");
    write_atomic(&dir.file(model_dir::TRAINING), training_json.as_bytes())?;
    let mut projection = None;
    let (tok, config, mut model) = match &cfg.init {
        Some(init) => super::init::from_model_dir(init, cfg, &dir)?,
        None => {
            let tok = tokenizers(cfg, &dir)?;
            let mut config = cfg.model_config(&tok)?;
            if cfg.dropout.is_none() {
                config.dropout = match &newest {
                    // the dropout the run chose when it started
                    Some(_) => ModelConfig::load(&dir.config_path())?.dropout,
                    None => {
                        let tags = super::init::tags(&tok, cfg)?;
                        projection = Planned { cfg, tok: &tok, tags: &tags, config: &config }.project()?;
                        projection.map_or(config.dropout, |p| cfg.dropout_around(p.dropout))
                    }
                };
            }
            let model = TrainableModel::init(&config, cfg.seed, DType::F32, &Device::Cpu)?;
            (tok, config, model)
        }
    };
    // the ramp rises to the dropout chosen above (a budget's, or an --init model's)
    cfg.ramp_reaches(Some(config.dropout.residual))?;
    config.save(&dir.config_path())?;
    // a multilingual model learns its language tokens as it translates with them
    let tags = super::init::tags(&tok, cfg)?;
    let samplers = SubwordSamplers::new(cfg, &tok)?;
    if let Some(languages) = cfg.languages.as_ref().filter(|_| tok.source.languages().is_none()) {
        dir.set_languages(languages)?;
    }
    let schedule = cfg.schedule();
    let mut step = cfg.train_step(&model, schedule)?;
    // the projection's seconds (a speed probe) count towards a time budget
    let mut state = TrainState { elapsed_s: projection.map_or(0.0, |p| p.seconds), ..TrainState::default() };
    let resumed_from = match newest {
        Some(last) => {
            (model, state) = load_checkpoint(&last, &config, &mut step)?;
            Some(last)
        }
        None => None,
    };
    let vars = || model.named_vars().into_iter().map(|(_, v)| v).collect::<Vec<_>>();
    let mut average = cfg.ema.map(|decay| WeightAverage::new(vars(), decay, step.kernels())).transpose()?;
    if let (Some(average), Some(checkpoint)) = (average.as_mut(), &resumed_from) {
        load_average(checkpoint, &model, average)?;
    }
    keep_metrics_until(&dir, state.updates)?;
    if let Some(p) = projection {
        append_metrics(&dir, serde_json::json!({ "kind": "budget", "update": 0, "projection": p }))?;
    }
    let valid = cfg.valid.as_ref().map(validation_pairs).transpose()?;
    let valid = valid.map(|(sources, targets)| (sources, targets, tags.clone()));
    let plan = BatchPlan { max_tokens: cfg.max_tokens, window: cfg.window, seed: cfg.seed };
    let budget = cfg.budget();
    let started = Instant::now();
    let elapsed = |state: &TrainState| state.elapsed_s + started.elapsed().as_secs_f64();
    let mut losses = Vec::new();
    let mut last_validation = None;
    // how long the last validation took (the time a budget keeps for the one at the end)
    let mut validation_s = 0.0;
    let counts = Cell::new(FilterCounts::default());
    let reason = 'epochs: loop {
        if cfg.max_epochs.is_some_and(|m| state.epoch >= m) {
            break StopReason::MaxEpochs;
        }
        counts.set(FilterCounts::default());
        let segmentation = Segmentation::of_epoch(samplers.as_ref(), state.epoch);
        let mut stream = ExampleStream::open(&cfg.train, &tok, segmentation, &tags, cfg.filter, &counts)?;
        let mut batches = plan.epoch(&mut stream, state.epoch).skip(state.batches_in_epoch);
        loop {
            if cfg.max_updates.is_some_and(|m| state.updates >= m) {
                break 'epochs StopReason::MaxUpdates;
            }
            // time is kept for the validation at the end
            if cfg.max_time_s.is_some_and(|m| elapsed(&state) + validation_s >= m) {
                break 'epochs StopReason::MaxTime;
            }
            if stop.load(Ordering::SeqCst) {
                break 'epochs StopReason::Signal;
            }
            let group: Vec<Vec<Example>> = batches.by_ref().take(cfg.update_freq).collect();
            if group.is_empty() {
                break;
            }
            let tensors = batch_tensors(&group, config.special, cfg.workers())?;
            // dropout masks depend only on the seed and the update number: resumable
            let ctx = Ctx::train(cfg.seed.wrapping_mul(0x9e37_79b9).wrapping_add(state.updates as u64));
            step.elapsed_s = elapsed(&state);
            // a rising dropout: where the budget is (like the cosine's rate, resumable)
            let ctx = match cfg.dropout_ramp {
                Some(ramp) => {
                    let residual = config.dropout.residual;
                    ctx.with_dropout_scale(ramp.scale(residual, &budget, state.updates, step.elapsed_s))
                }
                None => ctx,
            };
            let stats = step.step_accumulated(&model, &tensors, &ctx)?;
            state.updates += 1;
            if let Some(average) = average.as_mut() {
                average.update(state.updates)?;
            }
            state.batches_in_epoch += group.len();
            losses.push((state.updates, stats.loss));
            on_update(&state, &stats);
            if state.updates.is_multiple_of(cfg.log_every) {
                let mut line = serde_json::json!({
                    "kind": "train", "update": state.updates, "epoch": state.epoch, "loss": stats.loss,
                    "nll": stats.nll, "lr": stats.lr, "grad_norm": stats.grad_norm, "tgt_tokens": stats.ntokens,
                    "elapsed_s": elapsed(&state),
                });
                if let Some(divergence) = stats.divergence {
                    line["r_drop_kl"] = divergence.into();
                }
                if cfg.dropout_ramp.is_some() {
                    let now = f64::from(config.dropout.residual * ctx.dropout_scale);
                    line["dropout"] = ((now * 1e4).round() / 1e4).into();
                }
                append_metrics(&dir, line)?;
            }
            if cfg.valid_every > 0 && state.updates.is_multiple_of(cfg.valid_every) {
                if let Some(v) = &valid {
                    let started = Instant::now();
                    let judged = Judged { cfg, dir: &dir, model: &model, average: &average, tok: &tok, valid: v };
                    let at = elapsed(&state);
                    last_validation = Some(judged.validate(&mut state, at)?);
                    validation_s = started.elapsed().as_secs_f64();
                }
                let mut saved = state.clone();
                saved.elapsed_s = elapsed(&state);
                save_checkpoint(&dir, cfg.keep_last, &model, &step, average.as_ref(), &saved)?;
                super::plot::write_curves(&dir)?;
                if cfg.patience.is_some_and(|p| state.validations_without_improvement >= p) {
                    break 'epochs StopReason::EarlyStopping;
                }
            }
        }
        drop(batches);
        if let Some(e) = stream.take_error() {
            return Err(e);
        }
        // a full pass: these are the corpus's counts
        state.filter_counts = counts.get();
        state.epoch += 1;
        state.batches_in_epoch = 0;
    };
    if state.epoch == 0 {
        // stopped within the first pass: the counts so far
        state.filter_counts = counts.get();
    }
    // the updates since the last validation (a budget's last ones, at the schedule's floor)
    // are judged too, unless a signal asked to stop now
    let unjudged = cfg.valid_every > 0 && state.updates > 0 && !state.updates.is_multiple_of(cfg.valid_every);
    if let (Some(v), true) = (&valid, unjudged && reason != StopReason::Signal) {
        let judged = Judged { cfg, dir: &dir, model: &model, average: &average, tok: &tok, valid: v };
        let at = elapsed(&state);
        last_validation = Some(judged.validate(&mut state, at)?);
    }
    state.elapsed_s = elapsed(&state);
    save_checkpoint(&dir, cfg.keep_last, &model, &step, average.as_ref(), &state)?;
    if valid.is_none() || !dir.has_weights() {
        with_weights(&average, &mut || replace_atomically(&dir.weights_path(), |tmp| model.save(tmp)))?;
    }
    super::plot::write_curves(&dir)?;
    Ok(TrainSummary { state, stop: reason, losses, last_validation, projection })
}

/// What a validation reads: the run, the model (its moving average when kept) and the data.
struct Judged<'a> {
    cfg: &'a TrainConfig,
    dir: &'a ModelDir,
    model: &'a TrainableModel,
    average: &'a Option<WeightAverage>,
    tok: &'a Tokenizers,
    valid: &'a ValidationSet,
}

impl Judged<'_> {
    /// Validates, logs the figures to `metrics.jsonl`, and writes the model when they are the
    /// best so far (counting the validations without improvement otherwise).
    fn validate(&self, state: &mut TrainState, elapsed_s: f64) -> Result<Validation> {
        let mut val = None;
        self.with_weights(&mut || {
            val = Some(validate(self.model, self.tok, self.valid)?);
            Ok(())
        })?;
        let val = val.expect("validation ran");
        append_metrics(
            self.dir,
            serde_json::json!({
                "kind": "valid", "update": state.updates, "loss": val.loss, "perplexity": val.perplexity,
                "bleu": val.bleu, "chrf": val.chrf, "elapsed_s": elapsed_s,
            }),
        )?;
        let score = match self.cfg.stop_metric {
            StopMetric::Bleu => val.bleu,
            StopMetric::Chrf => val.chrf,
            StopMetric::Loss => -val.loss,
        };
        if state.best.is_none_or(|b| score > b) {
            state.best = Some(score);
            state.validations_without_improvement = 0;
            self.with_weights(&mut || replace_atomically(&self.dir.weights_path(), |tmp| self.model.save(tmp)))?;
        } else {
            state.validations_without_improvement += 1;
        }
        Ok(val)
    }

    fn with_weights(&self, f: &mut dyn FnMut() -> Result<()>) -> Result<()> {
        with_weights(self.average, f)
    }
}

/// Runs `f` with the weights validation and the saved models read: the moving average when
/// there is one.
fn with_weights(average: &Option<WeightAverage>, f: &mut dyn FnMut() -> Result<()>) -> Result<()> {
    match average {
        Some(average) => average.with_averaged(f),
        None => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_cut_back_to_the_resumed_update_and_a_torn_line_is_dropped() {
        let path = std::env::temp_dir().join(format!("transduce-metrics-cut-{}", std::process::id()));
        let dir = ModelDir::create(&path).unwrap();
        let lines: String = (1..=5).map(|u| format!("{{\"kind\":\"train\",\"update\":{u}}}\n")).collect();
        std::fs::write(dir.file(model_dir::METRICS), lines + "{\"kind\":\"train\",\"upd").unwrap();
        keep_metrics_until(&dir, 3).unwrap();
        let kept = std::fs::read_to_string(dir.file(model_dir::METRICS)).unwrap();
        assert_eq!(kept.lines().count(), 3, "{kept}");
        assert!(kept.ends_with("\"update\":3}\n"), "{kept}");
        keep_metrics_until(&dir, 0).unwrap();
        assert_eq!(std::fs::read_to_string(dir.file(model_dir::METRICS)).unwrap(), "");
        std::fs::remove_dir_all(&path).unwrap();
    }
}
