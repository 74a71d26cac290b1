//! End-to-end training on a synthetic task (copy or reverse random token sequences): the
//! smoke test of the whole stack and the current built-in demo.

use candle_core::{DType, Device, Result};

use super::{AdamWConfig, InverseSqrt, LrSchedule, StepStats, TrainStep};
use crate::data::synthetic::{SyntheticData, SyntheticTask};
use crate::data::Batch;
use crate::model::config::{Dropout, ModelConfig, Preset};
use crate::model::{Ctx, TrainableModel};
use crate::search::greedy;

/// Options of a synthetic training run.
#[derive(Debug, Clone)]
pub struct SyntheticRun {
    pub task: SyntheticTask,
    /// Vocabulary size including the 4 special ids.
    pub vocab: usize,
    pub lengths: (usize, usize),
    pub batch_size: usize,
    pub updates: usize,
    pub peak_lr: f64,
    pub warmup: usize,
    pub seed: u64,
    pub config: ModelConfig,
}

impl SyntheticRun {
    /// A small model and schedule that learn the task in seconds on two cores.
    pub fn quick(task: SyntheticTask) -> Self {
        let vocab = 16;
        let mut config = ModelConfig::preset(Preset::Tiny, vocab);
        config.d_model = 64;
        config.heads = 4;
        config.ffn_dim = 128;
        config.dropout = Dropout::uniform(0.0);
        config.max_positions = 64;
        SyntheticRun {
            task,
            vocab,
            lengths: (3, 8),
            batch_size: 128,
            updates: 800,
            peak_lr: 7e-4,
            warmup: 100,
            seed: 1,
            config,
        }
    }
}

/// Trains a fresh model; `on_step` sees every update's statistics.
pub fn train_synthetic(run: &SyntheticRun, mut on_step: impl FnMut(usize, &StepStats)) -> Result<TrainableModel> {
    let device = Device::Cpu;
    let model = TrainableModel::init(&run.config, run.seed, DType::F32, &device).map_err(candle_core::Error::wrap)?;
    let schedule = LrSchedule::InverseSqrt(InverseSqrt { peak_lr: run.peak_lr, warmup: run.warmup });
    let mut trainer = TrainStep::new(&model, AdamWConfig::default(), schedule, 0.0, 1.0)?;
    let mut data = SyntheticData::new(run.task, run.vocab, 4, run.lengths, run.seed);
    let ctx = Ctx::train(run.seed);
    for update in 1..=run.updates {
        let pairs = data.pairs(run.batch_size);
        let refs: Vec<(&[u32], &[u32])> = pairs.iter().map(|(s, t)| (s.as_slice(), t.as_slice())).collect();
        let batch = Batch::new(&refs, (0..refs.len()).collect(), run.config.special, &device)?;
        let stats = trainer.step(&model, &batch, &ctx)?;
        on_step(update, &stats);
    }
    Ok(model)
}

/// Greedy-decodes `n` fresh examples (a seed not used in training) and returns the fraction
/// decoded exactly, with a few (source, expected, got) samples.
#[allow(clippy::type_complexity)]
pub fn exact_match(
    model: &TrainableModel,
    run: &SyntheticRun,
    n: usize,
    seed: u64,
) -> Result<(f64, Vec<(Vec<u32>, Vec<u32>, Vec<u32>)>)> {
    let device = Device::Cpu;
    let mut data = SyntheticData::new(run.task, run.vocab, 4, run.lengths, seed);
    let pairs = data.pairs(n);
    let mut decoder = model.model.clone();
    decoder.prepare_inference()?;
    let mut correct = 0;
    let mut samples = Vec::new();
    for chunk in pairs.chunks(100) {
        let sources: Vec<&[u32]> = chunk.iter().map(|p| p.0.as_slice()).collect();
        let (src, mask) = Batch::sources(&sources, run.config.special, &device)?;
        let memory = decoder.encode(&src, &mask)?;
        let out = greedy(&decoder, &memory, run.lengths.1 * 2 + 2)?;
        for ((s, t), o) in chunk.iter().zip(out) {
            correct += usize::from(*t == o);
            if samples.len() < 5 {
                samples.push((s.clone(), t.clone(), o));
            }
        }
    }
    Ok((correct as f64 / n as f64, samples))
}
