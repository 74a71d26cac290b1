//! Training from raw parallel text: tokenizer, streaming token-budget batches, updates with
//! gradient accumulation, validation (loss, BLEU, chrF), atomic checkpoints that hold the
//! optimizer and data position, exact resume, and clean stops on a signal or a limit.

use std::cell::Cell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use super::{AdamWConfig, InverseSqrt, StepStats, TrainStep};
use crate::data::batching::{BatchPlan, Example};
use crate::data::corpus::{CorpusSource, FilterCounts, PairFilter, PairReader};
use crate::data::Batch;
use crate::error::{Error, Result};
use crate::eval::{Bleu, Chrf};
use crate::model::config::{
    Activation, Dropout, FinalNorm, ModelConfig, NormPlacement, PadEmbedding, Positions, Preset, Tying, Vocab,
};
use crate::model::{Ctx, TrainableModel};
use crate::search::greedy;
use crate::text::{
    SubwordModel, SubwordTokenizer, SubwordTraining, Tokenizers, JOINT_TOKENIZER, SOURCE_TOKENIZER, TARGET_TOKENIZER,
};

/// Which validation figure decides the best checkpoint and early stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum StopMetric {
    Bleu,
    Chrf,
    Loss,
}

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
    /// Overrides the preset's dropout.
    pub dropout: Option<f32>,
    pub filter: PairFilter,
    pub max_tokens: usize,
    /// Examples sorted into batches at a time (bounds memory).
    pub window: usize,
    pub update_freq: usize,
    pub lr: f64,
    pub warmup: usize,
    pub label_smoothing: f64,
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
            dropout: None,
            filter: PairFilter { max_len: 128, max_ratio: 3.0 },
            max_tokens: 4096,
            window: 100_000,
            update_freq: 1,
            lr: 7e-4,
            warmup: 4000,
            label_smoothing: 0.1,
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
        }
    }
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

/// A family of architectures, applied before the other overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    /// The preset as it is (pre-norm, interleaved sinusoids, ReLU, decoding from `<s>`).
    Transduce,
    /// Hugging Face Marian / OPUS-MT: post-norm without final norms, `[sin | cos]` sinusoids,
    /// swish, decoding from `<pad>` whose embedding is zero; exports to Marian and CTranslate2.
    Marian,
}

impl ModelOverrides {
    fn apply(&self, c: &mut ModelConfig) {
        if self.arch == Some(Architecture::Marian) {
            c.norm_placement = NormPlacement::Post;
            c.final_norm = FinalNorm::None;
            c.positions = Positions::SinusoidalHalves;
            c.activation = Activation::Swish;
            c.special.decoder_start = c.special.pad;
            c.pad_embedding = PadEmbedding::Zero;
        }
        macro_rules! take {
            ($($field:ident),*) => { $(if let Some(v) = self.$field { c.$field = v; })* };
        }
        take!(d_model, heads, ffn_dim, encoder_layers, decoder_layers, norm_placement, activation);
        // post-norm layers already end in a norm (fairseq and Marian add none after the stack)
        if self.norm_placement == Some(NormPlacement::Post) {
            c.final_norm = FinalNorm::None;
        }
    }
}

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

/// Validation figures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Validation {
    pub loss: f64,
    pub perplexity: f64,
    pub bleu: f64,
    pub chrf: f64,
}

/// How a run ended.
#[derive(Debug, Clone, Serialize)]
pub struct TrainSummary {
    pub state: TrainState,
    pub stop: StopReason,
    /// (update, loss) of every update this run made.
    pub losses: Vec<(usize, f64)>,
    pub last_validation: Option<Validation>,
}

/// Whether to start fresh or continue from the newest checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Fresh,
    Resume,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

/// Writes `bytes` to `path` through a temporary file and a rename, so readers never see a
/// partial file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    replace_atomically(path, |tmp| std::fs::write(tmp, bytes).map_err(io(tmp)))
}

/// Runs `write` on a temporary path beside `path`, then renames the result onto `path`.
fn replace_atomically(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    write(&tmp)?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

fn checkpoint_dir(out: &Path, updates: usize) -> PathBuf {
    out.join("checkpoints").join(format!("update-{updates:09}"))
}

/// Finished checkpoints, oldest first.
pub fn checkpoints(out: &Path) -> Result<Vec<PathBuf>> {
    let dir = out.join("checkpoints");
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(io(&dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("update-")))
        .collect();
    found.sort();
    Ok(found)
}

/// One vocabulary for both languages, or one per side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum VocabSharing {
    /// `tokenizer.json`, shared embeddings (all three tied).
    Joint,
    /// `source_tokenizer.json` and `target_tokenizer.json`, separate embeddings (decoder input
    /// and output tied).
    PerSide,
}

/// Which texts of the corpus a tokenizer learns from.
#[derive(Clone, Copy)]
enum Side {
    Both,
    Source,
    Target,
}

/// Trains a tokenizer on one or both sides of the corpus, streamed pair by pair; the first read
/// error stops it and is returned.
fn train_tokenizer(cfg: &TrainConfig, side: Side, path: &Path) -> Result<SubwordTokenizer> {
    if path.exists() {
        return SubwordTokenizer::load(path);
    }
    let error: std::sync::Mutex<Option<Error>> = std::sync::Mutex::new(None);
    let texts = PairReader::open(&cfg.train)?
        .map_while(|pair| match pair {
            Ok(p) => Some(match side {
                Side::Both => vec![p.source, p.target],
                Side::Source => vec![p.source],
                Side::Target => vec![p.target],
            }),
            Err(e) => {
                *error.lock().expect("error slot") = Some(e);
                None
            }
        })
        .flatten();
    let tok = SubwordTokenizer::train(texts, SubwordTraining { model: cfg.subword, vocab_size: cfg.vocab_size })?;
    if let Some(e) = error.into_inner().expect("error slot") {
        return Err(e);
    }
    tok.save(path)?;
    Ok(tok)
}

/// The model directory's tokenizers, trained on the corpus where absent.
pub fn tokenizers(cfg: &TrainConfig) -> Result<Tokenizers> {
    Ok(match cfg.vocab_sharing {
        VocabSharing::Joint => {
            let t = std::sync::Arc::new(train_tokenizer(cfg, Side::Both, &cfg.out.join(JOINT_TOKENIZER))?);
            Tokenizers { source: t.clone(), target: t }
        }
        VocabSharing::PerSide => Tokenizers {
            source: std::sync::Arc::new(train_tokenizer(cfg, Side::Source, &cfg.out.join(SOURCE_TOKENIZER))?),
            target: std::sync::Arc::new(train_tokenizer(cfg, Side::Target, &cfg.out.join(TARGET_TOKENIZER))?),
        },
    })
}

fn model_config(cfg: &TrainConfig, tok: &Tokenizers) -> Result<ModelConfig> {
    let mut c = ModelConfig::preset(cfg.preset, tok.source.vocab_size());
    cfg.model.apply(&mut c);
    if cfg.vocab_sharing == VocabSharing::PerSide {
        c.vocab = Vocab::Separate { source: tok.source.vocab_size(), target: tok.target.vocab_size() };
        c.tying = Tying::DecoderInputOutput;
    }
    if let Some(p) = cfg.dropout {
        c.dropout = Dropout::uniform(p);
    }
    c.max_positions = c.max_positions.max(cfg.filter.max_len + 2);
    c.validate()?;
    Ok(c)
}

/// Streams the training examples of one epoch, tokenized and filtered.
struct ExampleStream<'a> {
    pairs: PairReader,
    tok: &'a Tokenizers,
    filter: PairFilter,
    counts: &'a Cell<FilterCounts>,
    error: Option<Error>,
}

impl Iterator for ExampleStream<'_> {
    type Item = Example;

    fn next(&mut self) -> Option<Example> {
        loop {
            let pair = match self.pairs.next()? {
                Ok(p) => p,
                Err(e) => {
                    self.error = Some(e);
                    return None;
                }
            };
            let encoded =
                self.tok.source.encode(&pair.source).and_then(|s| Ok((s, self.tok.target.encode(&pair.target)?)));
            let (source, target) = match encoded {
                Ok(st) => st,
                Err(e) => {
                    self.error = Some(e);
                    return None;
                }
            };
            let mut counts = self.counts.get();
            let kept = self.filter.count(source.len(), target.len(), &mut counts);
            self.counts.set(counts);
            if kept {
                return Some(Example { index: pair.line - 1, source, target });
            }
        }
    }
}

/// Teacher-forced loss and greedy BLEU/chrF on the validation set.
fn validate(model: &TrainableModel, tok: &Tokenizers, valid: &(Vec<String>, Vec<String>)) -> Result<Validation> {
    let device = Device::Cpu;
    let special = model.model.config.special;
    let mut decoder = model.model.clone();
    decoder.prepare_inference()?;
    let sources: Vec<Vec<u32>> = valid.0.iter().map(|s| tok.source.encode(s)).collect::<Result<_>>()?;
    let targets: Vec<Vec<u32>> = valid.1.iter().map(|s| tok.target.encode(s)).collect::<Result<_>>()?;
    let max = model.model.config.max_positions - 2;
    let clip = |v: &Vec<u32>| v[..v.len().min(max)].to_vec();
    let (sources, targets): (Vec<_>, Vec<_>) = (sources.iter().map(clip).collect(), targets.iter().map(clip).collect());
    let mut order: Vec<usize> = (0..sources.len()).collect();
    order.sort_by_key(|&i| sources[i].len());
    let mut hyps = vec![String::new(); sources.len()];
    let (mut nll_sum, mut tokens) = (0.0, 0usize);
    let ctx = Ctx::eval();
    for chunk in order.chunks(64) {
        let pairs: Vec<(&[u32], &[u32])> = chunk.iter().map(|&i| (&sources[i][..], &targets[i][..])).collect();
        let batch = Batch::new(&pairs, chunk.to_vec(), special, &device)?;
        let logits = model.model.forward(&batch.src, &batch.src_mask, &batch.tgt_in, &ctx)?;
        let out = super::label_smoothed_cross_entropy(&logits, &batch.tgt_out, special.pad, 0.0, ctx.kernels)?;
        nll_sum += out.nll.to_dtype(DType::F64)?.to_scalar::<f64>()? * out.ntokens as f64;
        tokens += out.ntokens;
        let memory = decoder.encode(&batch.src, &batch.src_mask)?;
        let longest = chunk.iter().map(|&i| sources[i].len()).max().unwrap_or(0);
        for (&i, ids) in chunk.iter().zip(greedy(&decoder, &memory, 2 * longest + 10)?) {
            hyps[i] = tok.target.decode(&ids)?;
        }
    }
    let loss = nll_sum / tokens.max(1) as f64;
    let hyps: Vec<&str> = hyps.iter().map(String::as_str).collect();
    let refs = vec![valid.1.iter().map(String::as_str).collect::<Vec<_>>()];
    Ok(Validation {
        loss,
        perplexity: loss.exp(),
        bleu: Bleu::default().corpus_score(&hyps, &refs).score,
        chrf: Chrf::default().corpus_score(&hyps, &refs).score,
    })
}

fn save_checkpoint(cfg: &TrainConfig, model: &TrainableModel, step: &TrainStep, state: &TrainState) -> Result<()> {
    let final_dir = checkpoint_dir(&cfg.out, state.updates);
    let tmp = final_dir.with_extension("partial");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    model.save(&tmp.join("model.safetensors"))?;
    let names: Vec<String> = model.named_vars().into_iter().map(|(n, _)| n).collect();
    let mut moments = std::collections::HashMap::new();
    for (name, (m, v)) in names.iter().zip(step.optimizer.moments()?) {
        moments.insert(format!("m.{name}"), m);
        moments.insert(format!("v.{name}"), v);
    }
    let opt = tmp.join("optimizer.safetensors");
    candle_core::safetensors::save(&moments, &opt)
        .map_err(|e| Error::Weights { path: opt.clone(), why: e.to_string() })?;
    let state_path = tmp.join("state.json");
    std::fs::write(&state_path, serde_json::to_string_pretty(state).expect("state serialises"))
        .map_err(io(&state_path))?;
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir).map_err(io(&final_dir))?;
    }
    std::fs::rename(&tmp, &final_dir).map_err(io(&final_dir))?;
    let all = checkpoints(&cfg.out)?;
    for old in all.iter().take(all.len().saturating_sub(cfg.keep_last.max(1))) {
        std::fs::remove_dir_all(old).map_err(io(old))?;
    }
    Ok(())
}

fn load_checkpoint(dir: &Path, config: &ModelConfig, step: &mut TrainStep) -> Result<(TrainableModel, TrainState)> {
    let model = TrainableModel::load(config, &dir.join("model.safetensors"), DType::F32, &Device::Cpu)?;
    let opt_path = dir.join("optimizer.safetensors");
    let tensors = crate::model::weights::read_safetensors(&opt_path, &Device::Cpu)?;
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
    let state_path = dir.join("state.json");
    let text = std::fs::read_to_string(&state_path).map_err(io(&state_path))?;
    let state: TrainState = serde_json::from_str(&text).map_err(|e| Error::Json { path: state_path, source: e })?;
    *step = TrainStep::new(&model, step.optimizer.config, step.schedule, step.label_smoothing, step.clip_norm)?;
    step.optimizer.restore(moments, state.updates)?;
    Ok((model, state))
}

fn append_metrics(out: &Path, record: serde_json::Value) -> Result<()> {
    let path = out.join("metrics.jsonl");
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(io(&path))?;
    writeln!(f, "{record}").map_err(io(&path))
}

/// Trains as `cfg` says until a limit, early stopping or `stop` becomes true.
pub fn train(
    cfg: &TrainConfig,
    start: Start,
    stop: &AtomicBool,
    mut on_update: impl FnMut(&TrainState, &StepStats),
) -> Result<TrainSummary> {
    std::fs::create_dir_all(&cfg.out).map_err(io(&cfg.out))?;
    let training_json = serde_json::to_string_pretty(cfg).expect("config serialises");
    write_atomic(&cfg.out.join("training.json"), training_json.as_bytes())?;
    let tok = tokenizers(cfg)?;
    let config = model_config(cfg, &tok)?;
    config.save(&cfg.out.join("config.json"))?;
    let schedule = InverseSqrt { peak_lr: cfg.lr, warmup: cfg.warmup };
    let mut model = TrainableModel::init(&config, cfg.seed, DType::F32, &Device::Cpu)?;
    let mut step = TrainStep::new(&model, cfg.adam, schedule, cfg.label_smoothing, cfg.clip_norm)?;
    let mut state = TrainState::default();
    if start == Start::Resume {
        if let Some(last) = checkpoints(&cfg.out)?.last() {
            (model, state) = load_checkpoint(last, &config, &mut step)?;
        }
    }
    let valid = match &cfg.valid {
        Some(v) => {
            let pairs = PairReader::open(v)?.collect::<Result<Vec<_>>>()?;
            Some(pairs.into_iter().map(|p| (p.source, p.target)).unzip())
        }
        None => None,
    };
    let plan = BatchPlan { max_tokens: cfg.max_tokens, window: cfg.window, seed: cfg.seed };
    let started = Instant::now();
    let elapsed = |state: &TrainState| state.elapsed_s + started.elapsed().as_secs_f64();
    let mut losses = Vec::new();
    let mut last_validation = None;
    let counts = Cell::new(FilterCounts::default());
    let reason = 'epochs: loop {
        if cfg.max_epochs.is_some_and(|m| state.epoch >= m) {
            break StopReason::MaxEpochs;
        }
        counts.set(FilterCounts::default());
        let mut stream = ExampleStream {
            pairs: PairReader::open(&cfg.train)?,
            tok: &tok,
            filter: cfg.filter,
            counts: &counts,
            error: None,
        };
        let mut batches = plan.epoch(&mut stream, state.epoch).skip(state.batches_in_epoch);
        loop {
            if cfg.max_updates.is_some_and(|m| state.updates >= m) {
                break 'epochs StopReason::MaxUpdates;
            }
            if cfg.max_time_s.is_some_and(|m| elapsed(&state) >= m) {
                break 'epochs StopReason::MaxTime;
            }
            if stop.load(Ordering::SeqCst) {
                break 'epochs StopReason::Signal;
            }
            let group: Vec<Vec<Example>> = batches.by_ref().take(cfg.update_freq.max(1)).collect();
            if group.is_empty() {
                break;
            }
            let tensors = group
                .iter()
                .map(|b| {
                    let pairs: Vec<(&[u32], &[u32])> = b.iter().map(|e| (&e.source[..], &e.target[..])).collect();
                    Batch::new(&pairs, b.iter().map(|e| e.index).collect(), config.special, &Device::Cpu)
                })
                .collect::<candle_core::Result<Vec<_>>>()?;
            // dropout masks depend only on the seed and the update number: resumable
            let ctx = Ctx::train(cfg.seed.wrapping_mul(0x9e37_79b9).wrapping_add(state.updates as u64));
            let stats = step.step_accumulated(&model, &tensors, &ctx)?;
            state.updates += 1;
            state.batches_in_epoch += group.len();
            losses.push((state.updates, stats.loss));
            on_update(&state, &stats);
            if state.updates % cfg.log_every.max(1) == 0 {
                append_metrics(
                    &cfg.out,
                    serde_json::json!({
                        "kind": "train", "update": state.updates, "epoch": state.epoch, "loss": stats.loss,
                        "nll": stats.nll, "lr": stats.lr, "grad_norm": stats.grad_norm, "tgt_tokens": stats.ntokens,
                        "elapsed_s": elapsed(&state),
                    }),
                )?;
            }
            if cfg.valid_every > 0 && state.updates % cfg.valid_every == 0 {
                if let Some(v) = &valid {
                    let val = validate(&model, &tok, v)?;
                    last_validation = Some(val);
                    append_metrics(
                        &cfg.out,
                        serde_json::json!({
                            "kind": "valid", "update": state.updates, "loss": val.loss, "perplexity": val.perplexity,
                            "bleu": val.bleu, "chrf": val.chrf, "elapsed_s": elapsed(&state),
                        }),
                    )?;
                    let score = match cfg.stop_metric {
                        StopMetric::Bleu => val.bleu,
                        StopMetric::Chrf => val.chrf,
                        StopMetric::Loss => -val.loss,
                    };
                    if state.best.is_none_or(|b| score > b) {
                        state.best = Some(score);
                        state.validations_without_improvement = 0;
                        replace_atomically(&cfg.out.join("model.safetensors"), |tmp| model.save(tmp))?;
                    } else {
                        state.validations_without_improvement += 1;
                    }
                }
                let mut saved = state.clone();
                saved.elapsed_s = elapsed(&state);
                save_checkpoint(cfg, &model, &step, &saved)?;
                super::plot::write_curves(&cfg.out)?;
                if cfg.patience.is_some_and(|p| state.validations_without_improvement >= p) {
                    break 'epochs StopReason::EarlyStopping;
                }
            }
        }
        drop(batches);
        if let Some(e) = stream.error.take() {
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
    state.elapsed_s = elapsed(&state);
    save_checkpoint(cfg, &model, &step, &state)?;
    if valid.is_none() || !cfg.out.join("model.safetensors").exists() {
        replace_atomically(&cfg.out.join("model.safetensors"), |tmp| model.save(tmp))?;
    }
    super::plot::write_curves(&cfg.out)?;
    Ok(TrainSummary { state, stop: reason, losses, last_validation })
}

/// Averages the parameters of the last `k` checkpoints into `out/model.safetensors`.
pub fn average_checkpoints(out: &Path, k: usize) -> Result<usize> {
    let all = checkpoints(out)?;
    let chosen = &all[all.len().saturating_sub(k.max(1))..];
    if chosen.is_empty() {
        return Err(Error::Input(format!("{}: no checkpoints to average", out.display())));
    }
    let mut sum: std::collections::HashMap<String, Tensor> = std::collections::HashMap::new();
    for dir in chosen {
        for (name, t) in crate::model::weights::read_safetensors(&dir.join("model.safetensors"), &Device::Cpu)? {
            let t = t.to_dtype(DType::F32)?;
            let acc = match sum.remove(&name) {
                Some(a) => (a + t)?,
                None => t,
            };
            sum.insert(name, acc);
        }
    }
    let n = chosen.len() as f64;
    let averaged = sum
        .into_iter()
        .map(|(k, v)| Ok((k, (v / n)?)))
        .collect::<candle_core::Result<std::collections::HashMap<_, _>>>()?;
    replace_atomically(&out.join("model.safetensors"), |tmp| {
        candle_core::safetensors::save(&averaged, tmp)
            .map_err(|e| Error::Weights { path: tmp.to_path_buf(), why: e.to_string() })
    })?;
    Ok(chosen.len())
}
