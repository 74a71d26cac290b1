//! What a training run is told ([`TrainConfig`], saved as `training.json`): defaults, the
//! TOML file merge, checks that name the option at fault, and the model configuration it
//! implies.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::dropout_ramp::DropoutRamp;
use super::optim::AdamWConfig;
use super::schedule::{Budget, Cosine, InverseSqrt, LrSchedule, ScheduleKind};
use super::step::TrainStep;
use crate::data::corpus::{CorpusSource, PairFilter};
use crate::error::{Error, Result};
use crate::model::config::{Activation, Architecture, Dropout, ModelConfig, NormPlacement, Preset, Tying, Vocab};
use crate::model::TrainableModel;
use crate::model_dir::Languages;
use crate::text::{SubwordModel, Tokenizers, SPECIAL_TOKENS};

/// Which validation figure decides the best checkpoint and early stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopMetric {
    Bleu,
    Chrf,
    Loss,
}

crate::choices!(StopMetric, "stop metric", { Bleu => "bleu", Chrf => "chrf", Loss => "loss" });

/// Everything a training run is told; saved as `training.json` in the model directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub train: CorpusSource,
    pub valid: Option<CorpusSource>,
    pub out: PathBuf,
    pub preset: Preset,
    /// Changes to the preset's shape.
    #[serde(default)]
    pub model: ModelOverrides,
    pub subword: SubwordModel,
    /// Per tokenizer.
    pub vocab_size: usize,
    pub vocab_sharing: VocabSharing,
    /// Subword regularisation's α (Kudo, 2018; 0: off): every epoch, each training sentence is
    /// segmented afresh, a segmentation `x` drawn from the unigram tokenizer with probability
    /// ∝ P(x)^α (SentencePiece's sampling with `nbest_size = -1`; see
    /// [`crate::text::SubwordSampler`]). Validation and translation keep the most likely one.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub subword_sampling: f64,
    /// Overrides the preset's dropout. `None` on a run from scratch with a budget: the preset's,
    /// raised with the passes over the corpus the budget allows ([`super::budget`]).
    pub dropout: Option<f32>,
    /// Dropout on attention probabilities, where it differs from `dropout` (fairseq's
    /// `--attention-dropout`, Hugging Face's `attention_dropout`); `None`: the same as `dropout`.
    /// 0 by default, as in fairseq and Marian.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention_dropout: Option<f32>,
    /// Dropout after the feed-forward activation, where it differs from `dropout` (fairseq's
    /// `--activation-dropout`); `None`: the same as `dropout`. 0 by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_dropout: Option<f32>,
    /// Probability of zeroing a whole source token's embedding (Marian's `--dropout-src`; see
    /// [`Dropout::source_words`]). 0 by default.
    #[serde(default, skip_serializing_if = "crate::model::config::is_zero")]
    pub source_word_dropout: f32,
    /// A dropout that rises from `start` at the first update to the model's by `until` of the
    /// budget, every dropout probability scaled alike ([`DropoutRamp`]); `None`: the model's
    /// dropout throughout. Needs a budget (`max_updates` or `max_time_s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropout_ramp: Option<DropoutRamp>,
    pub filter: PairFilter,
    pub max_tokens: usize,
    /// Examples sorted into batches at a time (bounds memory).
    pub window: usize,
    pub update_freq: usize,
    /// Workers computing an update's batches at once, each batch cut into as many shards, each
    /// worker on its share of the threads ([`super::TrainStep::with_workers`]; Marian's
    /// `--cpu-threads`); 1: the batches one after another on all threads. `None`: 2 where
    /// there are at least 2 threads ([`TrainConfig::workers()`]).
    #[serde(default)]
    pub workers: Option<usize>,
    /// The peak learning rate.
    pub lr: f64,
    /// Updates of linear warm-up to `lr`.
    pub warmup: usize,
    /// `None`: cosine over the budget when `max_updates` or `max_time_s` sets one, else the
    /// inverse square root.
    #[serde(default)]
    pub lr_schedule: Option<ScheduleKind>,
    /// The cosine's last rate as a fraction of `lr`.
    #[serde(default = "default_lr_floor")]
    pub lr_floor: f64,
    pub label_smoothing: f64,
    /// R-Drop's weight α (0: off): each batch runs twice under two dropout masks and the loss
    /// adds α times the copies' symmetric KL divergence per token ([`super::TrainStep::r_drop`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub r_drop: f64,
    /// Decay of an exponential moving average of the weights (e.g. 0.999), which validation,
    /// the best model and the final model then use; `None`: no average.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ema: Option<f64>,
    pub clip_norm: f64,
    pub adam: AdamWConfig,
    pub seed: u64,
    pub max_updates: Option<usize>,
    pub max_epochs: Option<usize>,
    pub max_time_s: Option<f64>,
    pub valid_every: usize,
    pub log_every: usize,
    pub keep_last: usize,
    pub stop_metric: StopMetric,
    /// Validations without improvement before stopping; `None` never stops early.
    pub patience: Option<usize>,
    /// The languages translated between, recorded in the model's `tokenizer_config.json`
    /// (`transduce serve` reads them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub languages: Option<Languages>,
    /// A model directory to continue training (`transduce train --init`): any model transduce
    /// loads, with its own tokenizer and language codes (the vocabulary stays as it is); the
    /// preset, model and vocabulary options do not apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<PathBuf>,
}

impl TrainConfig {
    /// Defaults for a corpus, writing to `out`.
    pub fn new(train: CorpusSource, valid: Option<CorpusSource>, out: PathBuf) -> Self {
        TrainConfig {
            train,
            valid,
            out,
            preset: Preset::Small,
            model: ModelOverrides::default(),
            subword: SubwordModel::Unigram,
            vocab_size: 8000,
            vocab_sharing: VocabSharing::Joint,
            subword_sampling: 0.0,
            dropout: None,
            // measured on Multi30k en→de in 55 minutes (issue 19): dropping only sub-layer outputs
            // and embeddings made 1.17× the updates (attention's mask is the costly one), tied with
            // dropping attention and activations too on `val` (39.39) and scored 0.89 higher on test
            attention_dropout: Some(0.0),
            activation_dropout: Some(0.0),
            source_word_dropout: 0.0,
            dropout_ramp: None,
            filter: PairFilter { max_len: 128, max_ratio: 3.0 },
            // measured on Multi30k fr→en in 23 minutes (issue 19): 1024-token batches, peak 1e-3
            // and 400 warm-up updates scored 48.94 BLEU where 4096, 800 and dropout 0.3 scored 32.41;
            // a peak of 1.5e-3 then scored higher on `val` than 1e-3 (49.33 against 48.70, beam 5, one run each)
            max_tokens: 1024,
            window: 100_000,
            update_freq: 1,
            workers: None,
            lr: 1.5e-3,
            warmup: 400,
            lr_schedule: None,
            lr_floor: default_lr_floor(),
            label_smoothing: 0.1,
            r_drop: 0.0,
            ema: None,
            clip_norm: 1.0,
            adam: AdamWConfig::default(),
            seed: 1,
            max_updates: None,
            max_epochs: None,
            max_time_s: None,
            valid_every: 1000,
            log_every: 100,
            keep_last: 3,
            stop_metric: StopMetric::Bleu,
            patience: None,
            languages: None,
            init: None,
        }
    }
    /// Checks every option; the error names the first one out of range. [`super::train`] calls
    /// it, so nothing is clamped silently.
    pub fn validate(&self) -> Result<()> {
        let positive = |option: &'static str, x: f64| {
            if x.is_finite() && x > 0.0 {
                Ok(())
            } else {
                Err(Error::option(option, format!("{x} is not a positive number")))
            }
        };
        let at_least_one = |option: &'static str, n: usize| {
            if n >= 1 {
                Ok(())
            } else {
                Err(Error::option(option, "must be at least 1"))
            }
        };
        if let Some(languages) = &self.languages {
            for (option, code) in [("src_lang", &languages.source), ("tgt_lang", &languages.target)] {
                if code.is_empty() || code.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(Error::option(option, format!("{code:?} is not a language code")));
                }
            }
        }
        let fraction = |option: &'static str, x: f64| {
            if (0.0..1.0).contains(&x) {
                Ok(())
            } else {
                Err(Error::option(option, format!("{x} is not in [0, 1)")))
            }
        };
        if self.vocab_size <= SPECIAL_TOKENS.len() {
            return Err(Error::option(
                "vocab_size",
                format!("{} leaves no room beside the {} special tokens", self.vocab_size, SPECIAL_TOKENS.len()),
            ));
        }
        for (option, p) in [
            ("dropout", self.dropout),
            ("attention_dropout", self.attention_dropout),
            ("activation_dropout", self.activation_dropout),
            ("source_word_dropout", Some(self.source_word_dropout)),
        ] {
            if let Some(p) = p {
                fraction(option, p as f64)?;
            }
        }
        if let Some(ramp) = self.dropout_ramp {
            fraction("dropout_ramp.start", ramp.start as f64)?;
            if !(ramp.until > 0.0 && ramp.until <= 1.0) {
                return Err(Error::option("dropout_ramp.until", format!("{} is not in (0, 1]", ramp.until)));
            }
            if !self.budget().is_set() {
                return Err(Error::option(
                    "dropout_ramp",
                    "the dropout rises over the run's budget, and there is none: set max_updates or max_time_s \
                     (--max-updates, --max-time)",
                ));
            }
            self.ramp_reaches(self.dropout)?;
        }
        at_least_one("max_len", self.filter.max_len)?;
        positive("max_ratio", self.filter.max_ratio)?;
        at_least_one("max_tokens", self.max_tokens)?;
        at_least_one("window", self.window)?;
        at_least_one("update_freq", self.update_freq)?;
        at_least_one("workers", self.workers.unwrap_or(1))?;
        if !(self.lr.is_finite() && self.lr >= 0.0) {
            return Err(Error::option("lr", format!("{} is not a number >= 0", self.lr)));
        }
        fraction("label_smoothing", self.label_smoothing)?;
        if !(self.subword_sampling.is_finite() && self.subword_sampling >= 0.0) {
            return Err(Error::option(
                "subword_sampling",
                format!("{} is not a number >= 0 (0: the most likely segmentation)", self.subword_sampling),
            ));
        }
        if !(self.r_drop.is_finite() && self.r_drop >= 0.0) {
            return Err(Error::option("r_drop", format!("{} is not a number >= 0 (0: off)", self.r_drop)));
        }
        if let Some(decay) = self.ema {
            if !(decay > 0.0 && decay < 1.0) {
                return Err(Error::option("ema", format!("{decay} is not in (0, 1)")));
            }
        }
        if !(0.0..=1.0).contains(&self.lr_floor) {
            return Err(Error::option("lr_floor", format!("{} is not in [0, 1]", self.lr_floor)));
        }
        if self.lr_schedule == Some(ScheduleKind::Cosine) && !self.budget().is_set() {
            return Err(Error::option(
                "lr_schedule",
                "cosine decays over the run's budget, and there is none: set max_updates or max_time_s \
                 (--max-updates, --max-time), or choose inverse-sqrt",
            ));
        }
        if !(self.clip_norm.is_finite() && self.clip_norm >= 0.0) {
            return Err(Error::option(
                "clip_norm",
                format!("{} is not a number >= 0 (0: no clipping)", self.clip_norm),
            ));
        }
        fraction("adam.beta1", self.adam.beta1)?;
        fraction("adam.beta2", self.adam.beta2)?;
        positive("adam.eps", self.adam.eps)?;
        if !(self.adam.weight_decay.is_finite() && self.adam.weight_decay >= 0.0) {
            return Err(Error::option("adam.weight_decay", format!("{} is not a number >= 0", self.adam.weight_decay)));
        }
        if let Some(n) = self.max_updates {
            at_least_one("max_updates", n)?;
        }
        if let Some(n) = self.max_epochs {
            at_least_one("max_epochs", n)?;
        }
        if let Some(s) = self.max_time_s {
            positive("max_time_s", s)?;
        }
        at_least_one("log_every", self.log_every)?;
        at_least_one("keep_last", self.keep_last)?;
        if let Some(p) = self.patience {
            at_least_one("patience", p)?;
        }
        if self.patience.is_some() && (self.valid.is_none() || self.valid_every == 0) {
            return Err(Error::option("patience", "early stopping needs a validation set and valid_every > 0"));
        }
        self.model.validate()
    }

    /// Puts the options of the TOML file at `path` over these (keys as in `training.json`,
    /// nested tables merged key by key); an unknown key or a wrong type is an error naming it.
    pub fn merge_toml(&mut self, path: &Path) -> Result<()> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let file: toml::Table =
            toml::from_str(&text).map_err(|e| Error::Input(format!("{}: invalid TOML: {e}", path.display())))?;
        let mut merged = toml::Table::try_from(&*self).map_err(|e| {
            Error::Input(format!("{}: the options so far do not form a TOML table: {e}", path.display()))
        })?;
        merge(&mut merged, file);
        *self = merged.try_into().map_err(|e| Error::Input(format!("{}: {e}", path.display())))?;
        Ok(())
    }

    /// Puts `options` (keys as in `training.json`, nested objects merged key by key) over these;
    /// an unknown key or a wrong type is an error naming it, from `origin` ("keyword arguments").
    pub fn merge_json(&mut self, options: serde_json::Map<String, serde_json::Value>, origin: &str) -> Result<()> {
        let mut merged = serde_json::to_value(&*self).expect("the options serialise");
        if let serde_json::Value::Object(base) = &mut merged {
            merge_objects(base, options);
        }
        *self = serde_json::from_value(merged).map_err(|e| Error::Input(format!("{origin}: {e}")))?;
        Ok(())
    }

    /// What the run may spend: `max_updates` and `max_time_s`.
    pub fn budget(&self) -> Budget {
        Budget { updates: self.max_updates, seconds: self.max_time_s }
    }

    /// Checks that `dropout_ramp` starts no higher than `residual`, the sub-layer dropout it
    /// rises to (the model's, once chosen; nothing to check while it is not).
    pub fn ramp_reaches(&self, residual: Option<f32>) -> Result<()> {
        match (self.dropout_ramp, residual) {
            (Some(ramp), Some(residual)) if ramp.start > residual => Err(Error::option(
                "dropout_ramp.start",
                format!("{} is above the dropout it rises to ({residual}); a ramp only rises", ramp.start),
            )),
            _ => Ok(()),
        }
    }

    /// The learning rate of each update, as `lr_schedule` says.
    pub fn schedule(&self) -> LrSchedule {
        let budget = self.budget();
        let kind =
            self.lr_schedule.unwrap_or(if budget.is_set() { ScheduleKind::Cosine } else { ScheduleKind::InverseSqrt });
        match kind {
            ScheduleKind::Cosine => {
                LrSchedule::Cosine(Cosine { peak_lr: self.lr, warmup: self.warmup, floor: self.lr_floor, budget })
            }
            ScheduleKind::InverseSqrt => LrSchedule::InverseSqrt(InverseSqrt { peak_lr: self.lr, warmup: self.warmup }),
            ScheduleKind::Constant => LrSchedule::Constant { lr: self.lr },
        }
    }

    /// The optimisation step of this run on `model`'s parameters: its optimizer, `schedule`,
    /// losses and workers.
    pub fn train_step(&self, model: &TrainableModel, schedule: LrSchedule) -> Result<TrainStep> {
        let step = TrainStep::new(model, self.adam, schedule, self.label_smoothing, self.clip_norm)?;
        Ok(step.with_r_drop(self.r_drop).with_workers(self.workers())?)
    }

    /// Workers computing each update: `workers`, or [`default_workers`].
    pub fn workers(&self) -> usize {
        self.workers.unwrap_or_else(default_workers)
    }

    /// The dropout of a run whose sub-layers and embeddings drop `residual`: attention and the
    /// feed-forward activation drop the same unless `attention_dropout` or `activation_dropout`
    /// say otherwise; whole source tokens drop `source_word_dropout`.
    pub fn dropout_around(&self, residual: f32) -> Dropout {
        Dropout {
            residual,
            attention: self.attention_dropout.unwrap_or(residual),
            ffn: self.activation_dropout.unwrap_or(residual),
            source_words: self.source_word_dropout,
        }
    }

    /// The model configuration this run trains, for the vocabularies of `tok`.
    pub fn model_config(&self, tok: &Tokenizers) -> Result<ModelConfig> {
        let mut c = ModelConfig::preset(self.preset, tok.source.vocab_size());
        self.model.apply(&mut c);
        if self.vocab_sharing == VocabSharing::PerSide {
            c.vocab = Vocab::Separate { source: tok.source.vocab_size(), target: tok.target.vocab_size() };
            c.tying = Tying::DecoderInputOutput;
        }
        c.dropout = self.dropout_around(self.dropout.unwrap_or(c.dropout.residual));
        c.max_positions = c.max_positions.max(self.filter.max_len + 2);
        c.validate()?;
        Ok(c)
    }
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

fn default_lr_floor() -> f64 {
    0.05
}

/// Puts `file`'s keys into `base`, merging nested tables key by key.
fn merge(base: &mut toml::Table, file: toml::Table) {
    for (k, v) in file {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(inner)), toml::Value::Table(v)) => merge(inner, v),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Puts `options`' keys into `base`, merging nested objects key by key.
fn merge_objects(
    base: &mut serde_json::Map<String, serde_json::Value>,
    options: serde_json::Map<String, serde_json::Value>,
) {
    for (k, v) in options {
        match (base.get_mut(&k), v) {
            (Some(serde_json::Value::Object(inner)), serde_json::Value::Object(v)) => merge_objects(inner, v),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Training's workers when none are asked for: 2 where the pool has at least 2 threads (on 2
/// cores, Multi30k's 1024-token batches: 1.2× the updates a second of one two-threaded worker,
/// `transduce bench train-corpus --workers`), else 1.
pub fn default_workers() -> usize {
    if rayon::current_num_threads() >= 2 {
        2
    } else {
        1
    }
}

/// Seconds in `90s`, `45m`, `2h`, `1h30m` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<f64> {
    if let Ok(s) = text.parse::<f64>() {
        return Ok(s);
    }
    let bad = |why: String| Error::Input(format!("duration {text:?}: {why}"));
    let (mut total, mut number) = (0.0, String::new());
    for c in text.chars() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600.0,
            'm' => 60.0,
            's' => 1.0,
            _ => return Err(bad(format!("unknown unit {c:?} (use h, m, s)"))),
        };
        let n: f64 = number.parse().map_err(|_| bad(format!("a number must precede {c:?}")))?;
        total += n * unit;
        number.clear();
    }
    if !number.is_empty() {
        return Err(bad("the last number has no unit".into()));
    }
    Ok(total)
}

/// Architecture changes applied on top of the preset; `None` keeps the preset's value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelOverrides {
    pub d_model: Option<usize>,
    pub heads: Option<usize>,
    pub ffn_dim: Option<usize>,
    pub encoder_layers: Option<usize>,
    pub decoder_layers: Option<usize>,
    pub norm_placement: Option<NormPlacement>,
    pub activation: Option<Activation>,
    pub arch: Option<Architecture>,
}

impl ModelOverrides {
    /// Sizes of at least 1, and heads that divide the width.
    pub fn validate(&self) -> Result<()> {
        for (option, value) in [
            ("model.d_model", self.d_model),
            ("model.heads", self.heads),
            ("model.ffn_dim", self.ffn_dim),
            ("model.encoder_layers", self.encoder_layers),
            ("model.decoder_layers", self.decoder_layers),
        ] {
            if value == Some(0) {
                return Err(Error::option(option, "must be at least 1"));
            }
        }
        Ok(())
    }

    fn apply(&self, c: &mut ModelConfig) {
        if let Some(arch) = self.arch {
            c.apply_architecture(arch);
        }
        macro_rules! take {
            ($($field:ident),*) => { $(if let Some(v) = self.$field { c.$field = v; })* };
        }
        take!(d_model, heads, ffn_dim, encoder_layers, decoder_layers, norm_placement, activation);
        // post-norm layers already end in a norm (fairseq and Marian add none after the stack)
        if self.norm_placement == Some(NormPlacement::Post) {
            c.final_norm = crate::model::config::FinalNorm::None;
        }
    }
}

/// One vocabulary for both languages, or one per side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VocabSharing {
    /// `tokenizer.json`, shared embeddings (all three tied).
    Joint,
    /// `source_tokenizer.json` and `target_tokenizer.json`, separate embeddings (decoder input
    /// and output tied).
    PerSide,
}

crate::choices!(VocabSharing, "vocabulary sharing", { Joint => "joint", PerSide => "per-side" });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attention_and_activation_drop_nothing_unless_set_and_null_makes_them_follow_dropout() {
        let mut cfg = TrainConfig::new(CorpusSource::Tsv("t.tsv".into()), None, "out".into());
        let d = cfg.dropout_around(0.3);
        assert_eq!((d.residual, d.attention, d.ffn), (0.3, 0.0, 0.0));
        let options = serde_json::json!({ "attention_dropout": null, "activation_dropout": 0.1 });
        cfg.merge_json(options.as_object().unwrap().clone(), "test").unwrap();
        let d = cfg.dropout_around(0.3);
        assert_eq!((d.residual, d.attention, d.ffn), (0.3, 0.3, 0.1));
        assert_eq!(d.source_words, 0.0);
    }

    #[test]
    fn a_dropout_ramp_needs_a_budget_and_rises_from_a_probability_to_the_dropout() {
        let mut cfg = TrainConfig::new(CorpusSource::Tsv("t.tsv".into()), None, "out".into());
        let options = serde_json::json!({ "dropout_ramp": { "start": 0.1 } });
        cfg.merge_json(options.as_object().unwrap().clone(), "test").unwrap();
        assert_eq!(cfg.dropout_ramp, Some(DropoutRamp { start: 0.1, until: 0.5 }), "until: half the budget");
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("dropout_ramp") && err.contains("--max-time"), "{err}");
        cfg.max_time_s = Some(600.0);
        cfg.validate().unwrap();
        let refused = |start: f32, until: f64, dropout: Option<f32>| {
            let mut cfg = cfg.clone();
            cfg.dropout_ramp = Some(DropoutRamp { start, until });
            cfg.dropout = dropout;
            cfg.validate().unwrap_err().to_string()
        };
        assert!(refused(1.0, 0.5, None).contains("dropout_ramp.start"));
        assert!(refused(0.1, 0.0, None).contains("dropout_ramp.until"));
        assert!(refused(0.1, 1.5, None).contains("dropout_ramp.until"));
        let err = refused(0.3, 0.5, Some(0.2));
        assert!(err.contains("dropout_ramp.start") && err.contains("only rises"), "{err}");
        assert!(cfg.ramp_reaches(Some(0.05)).is_err() && cfg.ramp_reaches(Some(0.1)).is_ok());
        let options = serde_json::json!({ "dropout_ramp": { "start": 0.1, "util": 0.5 } });
        let err = cfg.merge_json(options.as_object().unwrap().clone(), "test").unwrap_err().to_string();
        assert!(err.contains("util"), "a misspelt key is named: {err}");
    }

    #[test]
    fn source_word_dropout_reaches_the_model_and_must_be_a_probability() {
        let mut cfg = TrainConfig::new(CorpusSource::Tsv("t.tsv".into()), None, "out".into());
        let options = serde_json::json!({ "source_word_dropout": 0.1 });
        cfg.merge_json(options.as_object().unwrap().clone(), "test").unwrap();
        assert_eq!(cfg.dropout_around(0.3).source_words, 0.1);
        cfg.source_word_dropout = 1.0;
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("source_word_dropout"), "{err}");
    }

    #[test]
    fn subword_sampling_is_left_out_of_training_json_at_zero_and_must_not_be_negative() {
        let mut cfg = TrainConfig::new(CorpusSource::Tsv("t.tsv".into()), None, "out".into());
        assert!(!serde_json::to_string(&cfg).unwrap().contains("subword_sampling"));
        let options = serde_json::json!({ "subword_sampling": 0.2 });
        cfg.merge_json(options.as_object().unwrap().clone(), "test").unwrap();
        assert_eq!(cfg.subword_sampling, 0.2);
        cfg.validate().unwrap();
        cfg.subword_sampling = -0.1;
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("subword_sampling"), "{err}");
    }
}
