//! The training loss, step by step, from an initial state a peer can load: the initial weights
//! and the batch are written next to the losses, so `bench/compare_loss_curve.py` can train
//! PyTorch (shared/bench/torch_ref.py's model) from the same weights on the same data and
//! compare the curves. Each step is the library's [`transduce::train::TrainStep`] with
//! [`super::torch_ref_step`]'s settings (torch_ref's AdamW: lr 1e-4, betas 0.9 / 0.999, eps 1e-8,
//! weight decay 0.01, no clipping; plain cross-entropy).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

use super::{bench_config, random_rows, torch_ref_step, Workload};
use transduce::data::Batch;
use transduce::error::{Error, Result};
use transduce::model::config::{Dropout, Preset};
use transduce::model::{Ctx, TrainableModel};

/// What to train.
#[derive(Debug, Clone, Copy)]
pub struct LossCurve {
    pub preset: Preset,
    pub workload: Workload,
    pub steps: usize,
    /// Dropout everywhere (0: the run is deterministic, and a peer can match it step for step).
    pub dropout: f32,
}

impl LossCurve {
    /// Writes `init.safetensors` (the initial parameters, by name) and `batch.safetensors`
    /// (`src`, `tgt_in`, `tgt_out`: [batch, len] i64, no padding) into `out`, then trains
    /// `steps` steps on that batch and returns each step's loss (before its update).
    pub fn run(&self, out: &Path) -> Result<Vec<f64>> {
        let w = self.workload;
        let device = Device::Cpu;
        let mut config = bench_config(self.preset, w.vocab);
        config.dropout = Dropout::uniform(self.dropout);
        let model = TrainableModel::init(&config, 0, DType::F32, &device).map_err(candle_core::Error::wrap)?;
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
        let named = model.named_vars();
        let init: HashMap<String, Tensor> = named.iter().map(|(n, v)| (n.clone(), v.as_tensor().clone())).collect();
        save(&init, &out.join("init.safetensors"))?;

        let mut rng = Xoshiro256PlusPlus::seed_from_u64(42);
        let src = random_rows(&mut rng, w.batch, w.src_len - 1, w.vocab);
        let tgt = random_rows(&mut rng, w.batch, w.tgt_len, w.vocab);
        let pairs: Vec<(&[u32], &[u32])> = src.iter().zip(&tgt).map(|(s, t)| (&s[..], &t[..])).collect();
        let batch = Batch::new(&pairs, (0..w.batch).collect(), config.special, &device)?;
        let long = |t: &Tensor| t.to_dtype(DType::I64);
        let data = HashMap::from([
            ("src".to_string(), long(&batch.src)?),
            ("tgt_in".to_string(), long(&batch.tgt_in)?),
            ("tgt_out".to_string(), long(&batch.tgt_out)?),
        ]);
        save(&data, &out.join("batch.safetensors"))?;

        let mut step = torch_ref_step(&model)?;
        let ctx = Ctx::train(0);
        let mut losses = Vec::with_capacity(self.steps);
        for _ in 0..self.steps {
            losses.push(step.step(&model, &batch, &ctx)?.loss);
        }
        Ok(losses)
    }
}

fn save(tensors: &HashMap<String, Tensor>, path: &Path) -> Result<()> {
    candle_core::safetensors::save(tensors, path)
        .map_err(|e| Error::Weights { path: path.to_path_buf(), why: e.to_string() })
}
