//! Training speed on real corpus batches: the trainer's token-budget batches of a parallel
//! corpus (sentences of similar length together, padded to the longest), not one fixed random
//! batch. The batches can be written out so that `bench/torch_corpus.py` runs PyTorch's step on
//! exactly the same ones.

use std::cell::Cell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};
use serde::Serialize;

use transduce::data::batching::{BatchPlan, Example};
use transduce::data::corpus::{CorpusSource, FilterCounts};
use transduce::model::{Ctx, Preset, TrainableModel};
use transduce::text::languages::Tags;
use transduce::text::{SubwordTokenizer, Tokenizers};
use transduce::train::corpus::{batch_tensors, ExampleStream, Segmentation};
use transduce::train::TrainConfig;

use super::{bench_config, median, round, system, torch_ref_step};

/// Where the batches come from and how they are cut.
#[derive(Debug, Clone)]
pub struct CorpusWorkload<'a> {
    pub src: &'a Path,
    pub tgt: &'a Path,
    /// A `tokenizer.json` written by `transduce train` (shared vocabulary).
    pub tokenizer: &'a Path,
    /// The trainer's budget: rows × (longest side + 1) per batch.
    pub max_tokens: usize,
    /// Batches timed (after 3 warm-up steps on the first ones).
    pub batches: usize,
    pub seed: u64,
}

/// The sampled batches: tokenized examples without special tokens.
pub struct CorpusBatches {
    pub vocab: usize,
    pub batches: Vec<Vec<Example>>,
    /// The pairs read, kept and dropped by the trainer's filter.
    pub filtered: FilterCounts,
}

#[derive(Debug, Serialize)]
pub struct CorpusTrainFigure {
    pub system: String,
    pub figure: &'static str,
    pub params: usize,
    pub vocab: usize,
    pub max_tokens: usize,
    /// Workers computing each step, each batch cut into as many shards (`transduce train
    /// --workers`).
    pub workers: usize,
    pub steps: usize,
    /// Mean sentences per batch.
    pub rows: f64,
    /// Target tokens (each sentence's pieces and its end-of-sentence), all timed steps.
    pub tgt_tokens: usize,
    /// Target tokens with padding, all timed steps.
    pub padded_tgt_tokens: usize,
    pub median_step_ms: f64,
    /// Target tokens over the summed step time.
    pub tgt_tokens_per_s: f64,
    /// Pairs the trainer's filter dropped (empty side, too long, extreme length ratio).
    pub pairs_dropped: usize,
}

/// Reads the corpus as `transduce train` does (its tokenization, length filter and counts),
/// cuts one epoch into the trainer's batches (shuffled with `seed`) and keeps the first
/// `batches` of them plus 3 for warm-up.
pub fn corpus_batches(w: &CorpusWorkload) -> Result<CorpusBatches> {
    let tokenizer = Arc::new(SubwordTokenizer::load(w.tokenizer)?);
    let tok = Tokenizers { source: tokenizer.clone(), target: tokenizer.clone() };
    let corpus = CorpusSource::Aligned { source: w.src.to_path_buf(), target: w.tgt.to_path_buf() };
    // the trainer's defaults for everything but the batch budget
    let trainer = TrainConfig::new(corpus, None, PathBuf::new());
    let (tags, counts) = (Tags::default(), Cell::new(FilterCounts::default()));
    let mut stream = ExampleStream::open(&trainer.train, &tok, Segmentation::Best, &tags, trainer.filter, &counts)?;
    let examples: Vec<Example> = stream.by_ref().collect();
    if let Some(e) = stream.take_error() {
        return Err(e.into());
    }
    let plan = BatchPlan { max_tokens: w.max_tokens, window: examples.len(), seed: w.seed };
    let mut batches = plan.batches(examples, 0);
    let wanted = w.batches + WARMUP;
    if batches.len() < wanted {
        bail!("the corpus makes {} batches of {} tokens; {} wanted", batches.len(), w.max_tokens, wanted);
    }
    batches.truncate(wanted);
    Ok(CorpusBatches { vocab: tokenizer.vocab_size(), batches, filtered: counts.get() })
}

const WARMUP: usize = 3;

impl CorpusBatches {
    /// One JSON line per batch, `{"src": [[ids..]], "tgt": [[ids..]]}`, without special tokens:
    /// what `bench/torch_corpus.py` reads.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        );
        for batch in &self.batches {
            let src: Vec<&[u32]> = batch.iter().map(|e| &e.source[..]).collect();
            let tgt: Vec<&[u32]> = batch.iter().map(|e| &e.target[..]).collect();
            serde_json::to_writer(&mut out, &serde_json::json!({ "src": src, "tgt": tgt }))?;
            out.write_all(b"\n")?;
        }
        out.flush().with_context(|| format!("writing {}", path.display()))
    }

    /// Forward + loss + backward + AdamW of the benchmark model (torch_ref's optimiser) on each
    /// batch in turn, computed by `workers` at once (`transduce train --workers`): the first 3
    /// warm up, the rest are timed.
    pub fn train(&self, preset: Preset, max_tokens: usize, workers: usize) -> Result<CorpusTrainFigure> {
        let device = Device::Cpu;
        let config = bench_config(preset, self.vocab);
        let model = TrainableModel::init(&config, 0, DType::F32, &device)?;
        let mut step = torch_ref_step(&model)?.with_workers(workers)?;
        let ctx = Ctx::train(0);
        let (mut times, mut tokens, mut padded, mut rows) = (Vec::new(), 0, 0, 0);
        for (i, examples) in self.batches.iter().enumerate() {
            let shards = batch_tensors(std::slice::from_ref(examples), config.special, workers)?;
            let t0 = Instant::now();
            step.step_accumulated(&model, &shards, &ctx)?;
            if i >= WARMUP {
                times.push(t0.elapsed().as_secs_f64());
                tokens += shards.iter().map(|b| b.ntokens).sum::<usize>();
                padded += shards.iter().map(|b| b.tgt_out.elem_count()).sum::<usize>();
                rows += examples.len();
            }
        }
        let steps = times.len();
        let total: f64 = times.iter().sum();
        Ok(CorpusTrainFigure {
            system: system(),
            figure: "train_corpus",
            params: model.parameter_count(),
            vocab: self.vocab,
            max_tokens,
            workers,
            steps,
            rows: round(rows as f64 / steps as f64, 1),
            tgt_tokens: tokens,
            padded_tgt_tokens: padded,
            median_step_ms: round(median(times) * 1e3, 2),
            tgt_tokens_per_s: round(tokens as f64 / total, 1),
            pairs_dropped: self.filtered.read - self.filtered.kept,
        })
    }
}
