//! What a run's budget allows, projected before its first update: how many passes over the
//! corpus (`--max-time` measured by a short speed probe, `--max-updates`, `--max-epochs`), and
//! the dropout that many passes call for when none is asked for.

use std::cell::Cell;
use std::time::Instant;

use candle_core::{DType, Device};
use serde::Serialize;

use super::config::TrainConfig;
use super::corpus::{batch_tensors, ExampleStream, Segmentation, SubwordSamplers};
use super::schedule::LrSchedule;
use crate::data::batching::{BatchPlan, Example};
use crate::data::corpus::FilterCounts;
use crate::error::Result;
use crate::model::config::ModelConfig;
use crate::model::{Ctx, TrainableModel};
use crate::text::languages::Tags;
use crate::text::Tokenizers;

/// Updates the speed probe makes before it starts timing (the first ones allocate).
const PROBE_WARMUP: usize = 2;
/// Updates the speed probe times; the median decides.
const PROBE_TIMED: usize = 8;

/// Passes over the corpus from which [`dropout_for_epochs`] raises the dropout: 0.2 from the
/// first, 0.3 from the second, 0.4 from the third.
const MORE_DROPOUT_FROM_EPOCHS: [f64; 3] = [10.0, 20.0, 40.0];

/// The dropout of a run that makes `epochs` passes over its corpus, chosen on Multi30k's `val`
/// (issue 19; 29,000 pairs, preset `small`): 0.1 for short runs (fr→en in 23 minutes, ~6
/// passes), 0.2 from 10 passes (en→de in 55 minutes, ~15 passes: `val` 39.39 against 39.02
/// with 0.1), 0.3 from 20 (en→de in 55 minutes, ~22 passes, and the earlier 4096-token recipe),
/// 0.4 from 40 (en→de in 120 minutes, ~50 passes: `val` 41.41 against 41.27 with 0.3).
/// The more often a small corpus is seen, the more the model needs keeping from memorising it.
pub fn dropout_for_epochs(epochs: f64) -> f32 {
    let [more, most, all] = MORE_DROPOUT_FROM_EPOCHS;
    if epochs >= all {
        0.4
    } else if epochs >= most {
        0.3
    } else if epochs >= more {
        0.2
    } else {
        0.1
    }
}

/// How the default dropout was chosen: recorded in `metrics.jsonl` (`"kind": "budget"`) and
/// the run's summary.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Projection {
    /// Batches in one pass over the corpus (not counted for a budget of epochs alone).
    pub batches_per_epoch: Option<Counted>,
    /// Seconds per update measured by the speed probe (a time budget only).
    pub seconds_per_update: Option<f64>,
    /// Updates the budget allows (not projected for a budget of epochs alone).
    pub updates: Option<f64>,
    /// Passes over the corpus the budget allows.
    pub epochs: f64,
    /// The dropout chosen for them.
    pub dropout: f32,
    /// Seconds the projection took (the corpus counted, the probe run); they count towards the
    /// time budget.
    pub seconds: f64,
}

impl std::fmt::Display for Projection {
    /// `dropout 0.2 for ~15.2 passes over the corpus (7600 updates, 0.470 s each by a speed
    /// probe, 500 batches a pass)`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bound = match self.batches_per_epoch {
            Some(Counted { whole_corpus: false, .. }) => "at most ",
            _ => "~",
        };
        write!(f, "dropout {} for {bound}{:.1} passes over the corpus", self.dropout, self.epochs)?;
        let mut how = Vec::new();
        if let Some(u) = self.updates {
            how.push(format!("{u:.0} updates"));
        }
        if let Some(s) = self.seconds_per_update {
            how.push(format!("{s:.3} s each by a speed probe"));
        }
        if let Some(c) = self.batches_per_epoch {
            let more = if c.whole_corpus { "" } else { " or more" };
            how.push(format!("{}{more} batches a pass", c.batches));
        }
        if !how.is_empty() {
            write!(f, " ({})", how.join(", "))?;
        }
        Ok(())
    }
}

/// The batches of one pass over the corpus, as far as they were counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counted {
    pub batches: usize,
    /// `false`: counting stopped where the budget could not use ten times the batches counted
    /// (fewer than ten passes, whatever the rest of the corpus holds); the projected epochs are
    /// then an upper bound.
    pub whole_corpus: bool,
}

/// What a projection needs of the run: the corpus, its tokenizers and the model to train.
pub struct Planned<'a> {
    pub cfg: &'a TrainConfig,
    pub tok: &'a Tokenizers,
    pub tags: &'a Tags,
    pub config: &'a ModelConfig,
}

impl Planned<'_> {
    /// The passes over the corpus `cfg`'s budget allows and the dropout for them, or `None`
    /// where the run has no budget (it trains until stopped), asks for a dropout itself, or
    /// trains a preset without dropout.
    ///
    /// A time budget is turned into updates by timing a few updates of a throwaway model of the
    /// same shape on the corpus's first batches.
    pub fn project(&self) -> Result<Option<Projection>> {
        let cfg = self.cfg;
        let budgeted = cfg.max_updates.is_some() || cfg.max_time_s.is_some() || cfg.max_epochs.is_some();
        // a preset without dropout (`tiny`, for tests and demonstrations) stays without
        if cfg.dropout.is_some() || !budgeted || self.config.dropout.residual == 0.0 {
            return Ok(None);
        }
        let started = Instant::now();
        let by_epochs = cfg.max_epochs.map(|e| e as f64);
        if cfg.max_updates.is_none() && cfg.max_time_s.is_none() {
            let epochs = by_epochs.expect("a budget");
            return Ok(Some(Projection {
                batches_per_epoch: None,
                seconds_per_update: None,
                updates: None,
                epochs,
                dropout: self.dropout(epochs),
                seconds: started.elapsed().as_secs_f64(),
            }));
        }
        let counts = Cell::new(FilterCounts::default());
        // the first epoch's batches, as the run will see them
        let samplers = SubwordSamplers::new(cfg, self.tok)?;
        let segmentation = Segmentation::of_epoch(samplers.as_ref(), 0);
        let mut stream = ExampleStream::open(&cfg.train, self.tok, segmentation, self.tags, cfg.filter, &counts)?;
        let plan = BatchPlan { max_tokens: cfg.max_tokens, window: cfg.window, seed: cfg.seed };
        let mut batches = plan.epoch(&mut stream, 0);
        let probe: Vec<Vec<Example>> = match cfg.max_time_s {
            Some(_) => batches.by_ref().take((PROBE_WARMUP + PROBE_TIMED) * cfg.update_freq).collect(),
            None => Vec::new(),
        };
        let seconds_per_update = match cfg.max_time_s {
            Some(_) => Some(self.probe(&probe)?),
            None => None,
        };
        let by_time = cfg.max_time_s.zip(seconds_per_update).map(|(budget, per)| {
            let left = (budget - started.elapsed().as_secs_f64()).max(0.0);
            left / per
        });
        let updates = [cfg.max_updates.map(|u| u as f64), by_time].into_iter().flatten().fold(f64::INFINITY, f64::min);
        // more batches than a tenth of what the budget feeds the model: fewer than ten passes
        let enough = (updates * cfg.update_freq as f64 / MORE_DROPOUT_FROM_EPOCHS[0]).ceil() as usize + 1;
        let counted = probe.len() + batches.by_ref().take(enough.saturating_sub(probe.len())).count();
        drop(batches);
        if let Some(e) = stream.take_error() {
            return Err(e);
        }
        let batches_per_epoch = Counted { batches: counted, whole_corpus: counted < enough };
        let epochs = updates * cfg.update_freq as f64 / counted.max(1) as f64;
        let epochs = by_epochs.map_or(epochs, |e| e.min(epochs));
        Ok(Some(Projection {
            batches_per_epoch: Some(batches_per_epoch),
            seconds_per_update,
            updates: Some(updates),
            epochs,
            dropout: self.dropout(epochs),
            seconds: started.elapsed().as_secs_f64(),
        }))
    }

    /// The dropout for `epochs` passes, never below the preset's.
    fn dropout(&self, epochs: f64) -> f32 {
        self.config.dropout.residual.max(dropout_for_epochs(epochs))
    }

    /// Median seconds per update of a throwaway model of the run's shape on `batches`
    /// (`update_freq` batches an update).
    fn probe(&self, batches: &[Vec<Example>]) -> Result<f64> {
        let cfg = self.cfg;
        let mut config = self.config.clone();
        config.dropout = cfg.dropout_around(self.dropout(0.0));
        let model = TrainableModel::init(&config, cfg.seed, DType::F32, &Device::Cpu)?;
        // a small constant rate: the probe's weights are thrown away
        let schedule = LrSchedule::Constant { lr: cfg.lr * 0.01 };
        let mut step = cfg.train_step(&model, schedule)?;
        let mut seconds = Vec::new();
        for (i, group) in batches.chunks(cfg.update_freq).enumerate() {
            let tensors = batch_tensors(group, config.special, cfg.workers())?;
            let started = Instant::now();
            step.step_accumulated(&model, &tensors, &Ctx::train(cfg.seed.wrapping_add(i as u64)))?;
            seconds.push(started.elapsed().as_secs_f64());
        }
        // a corpus of fewer batches than the probe wants: the warm-up updates are timed too
        let timed = if seconds.len() > PROBE_WARMUP { seconds.split_off(PROBE_WARMUP) } else { seconds };
        Ok(median(timed))
    }
}

/// The middle of `values` (infinite when there are none: an empty corpus makes no updates).
fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::INFINITY;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_passes_over_the_corpus_get_more_dropout() {
        assert_eq!(dropout_for_epochs(0.5), 0.1);
        assert_eq!(dropout_for_epochs(6.4), 0.1);
        assert_eq!(dropout_for_epochs(9.99), 0.1);
        assert_eq!(dropout_for_epochs(10.0), 0.2);
        assert_eq!(dropout_for_epochs(15.0), 0.2);
        assert_eq!(dropout_for_epochs(20.0), 0.3);
        assert_eq!(dropout_for_epochs(28.0), 0.3);
        assert_eq!(dropout_for_epochs(39.99), 0.3);
        assert_eq!(dropout_for_epochs(40.0), 0.4);
        assert_eq!(dropout_for_epochs(f64::INFINITY), 0.4);
    }

    #[test]
    fn a_projection_says_what_it_chose_and_from_what() {
        let p = Projection {
            batches_per_epoch: Some(Counted { batches: 500, whole_corpus: true }),
            seconds_per_update: Some(0.47),
            updates: Some(7600.4),
            epochs: 15.2,
            dropout: 0.2,
            seconds: 6.0,
        };
        let text = p.to_string();
        assert_eq!(
            text,
            "dropout 0.2 for ~15.2 passes over the corpus (7600 updates, 0.470 s each by a speed probe, 500 \
             batches a pass)"
        );
        let p = Projection { batches_per_epoch: Some(Counted { batches: 3, whole_corpus: false }), ..p };
        assert!(p.to_string().contains("at most 15.2 passes") && p.to_string().contains("3 or more batches"));
        let p = Projection { batches_per_epoch: None, seconds_per_update: None, updates: None, epochs: 4.0, ..p };
        assert_eq!(p.to_string(), "dropout 0.2 for ~4.0 passes over the corpus");
    }
}
