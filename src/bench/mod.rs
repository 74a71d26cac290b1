//! Speed measurements, made the way `shared/bench/torch_ref.py` measures PyTorch so the two can
//! be compared figure by figure: the cfg S model (pre-norm, shared input embeddings, separate
//! output projection), a fixed random batch, the median over repeated runs after warm-up.

use std::time::Instant;

use candle_core::{DType, Device, Result, Tensor, D};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::Serialize;

use transduce::data::batch::pad_sequences;
use transduce::data::Batch;
use transduce::model::config::{ModelConfig, Preset, Tying};
use transduce::model::{Ctx, TrainableModel};
use transduce::train::{AdamWConfig, DecayScope, LrSchedule, TrainStep};

pub mod corpus;
pub mod gemm;
pub mod loss_curve;
pub mod translation;

/// Shape of the benchmark workload.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    pub vocab: usize,
    pub batch: usize,
    pub src_len: usize,
    pub tgt_len: usize,
}

impl Default for Workload {
    /// cfg S: vocab 8000, batch 64 × (16 source, 16 target) tokens.
    fn default() -> Self {
        Workload { vocab: 8000, batch: 64, src_len: 16, tgt_len: 16 }
    }
}

/// The benchmark model: a preset with torch_ref's parameterisation (input embeddings shared,
/// output projection separate).
pub fn bench_config(preset: Preset, vocab: usize) -> ModelConfig {
    let mut c = ModelConfig::preset(preset, vocab);
    c.tying = Tying::Inputs;
    c
}

#[derive(Debug, Serialize)]
pub struct TrainFigure {
    pub system: String,
    pub figure: &'static str,
    pub params: usize,
    pub median_step_ms: f64,
    pub tgt_tokens_per_s: f64,
    pub fwd_loss_ms: f64,
    pub bwd_ms: f64,
    pub optimizer_ms: f64,
    pub loss_first: f64,
    pub loss_last: f64,
}

#[derive(Debug, Serialize)]
pub struct GreedyFigure {
    pub system: String,
    pub figure: &'static str,
    pub batch: usize,
    pub steps: usize,
    pub encode_ms: f64,
    pub ms_per_step: f64,
    pub total_ms: f64,
}

pub fn system() -> String {
    format!("transduce-{}", env!("CARGO_PKG_VERSION"))
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

fn random_rows(rng: &mut Xoshiro256PlusPlus, rows: usize, len: usize, vocab: usize) -> Vec<Vec<u32>> {
    (0..rows).map(|_| (0..len).map(|_| rng.gen_range(4..vocab as u32)).collect()).collect()
}

/// The library's training step with torch_ref.py's optimiser: AdamW (betas 0.9 / 0.999, eps
/// 1e-8, weight decay 0.01 on every parameter) at a constant 1e-4, plain cross-entropy, no
/// clipping.
pub fn torch_ref_step(model: &TrainableModel) -> Result<TrainStep> {
    let adam =
        AdamWConfig { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01, weight_decay_scope: DecayScope::All };
    TrainStep::new(model, adam, LrSchedule::Constant { lr: 1e-4 }, 0.0, 0.0)
}

/// Forward + loss + backward + AdamW on one fixed batch ([`TrainStep::step`]): 3 warm-up
/// steps, median of 20.
pub fn train_step(preset: Preset, w: Workload) -> Result<TrainFigure> {
    let device = Device::Cpu;
    let config = bench_config(preset, w.vocab);
    let model = TrainableModel::init(&config, 0, DType::F32, &device).map_err(candle_core::Error::wrap)?;
    let mut step = torch_ref_step(&model)?;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(42);
    let src = random_rows(&mut rng, w.batch, w.src_len, w.vocab);
    let tgt = random_rows(&mut rng, w.batch, w.tgt_len, w.vocab);
    let pairs: Vec<(&[u32], &[u32])> = src.iter().zip(&tgt).map(|(s, t)| (&s[..w.src_len - 1], &t[..])).collect();
    // source: src_len tokens including eos; target: tgt_len + 1 with start and eos
    let batch = Batch::new(&pairs, (0..w.batch).collect(), config.special, &device)?;
    let ctx = Ctx::train(0);
    let (mut steps, mut fwd, mut bwd, mut upd, mut losses) = (vec![], vec![], vec![], vec![], vec![]);
    for it in 0..23 {
        let t0 = Instant::now();
        let stats = step.step(&model, &batch, &ctx)?;
        let dt = t0.elapsed().as_secs_f64();
        losses.push(stats.loss);
        if it >= 3 {
            steps.push(dt);
            fwd.push(stats.seconds.forward);
            bwd.push(stats.seconds.backward);
            upd.push(stats.seconds.update);
        }
    }
    let med = median(steps);
    Ok(TrainFigure {
        system: system(),
        figure: "train_step",
        params: model.parameter_count(),
        median_step_ms: round(med * 1e3, 2),
        tgt_tokens_per_s: (w.batch * w.tgt_len) as f64 / med,
        fwd_loss_ms: round(median(fwd) * 1e3, 1),
        bwd_ms: round(median(bwd) * 1e3, 1),
        optimizer_ms: round(median(upd) * 1e3, 1),
        loss_first: round(losses[0], 4),
        loss_last: round(*losses.last().expect("23 steps"), 4),
    })
}

/// Encode once, then `tgt_len` greedy steps with the key/value cache (no early stop), at each
/// batch size: 2 warm-up runs, median of 6.
pub fn greedy_decode(preset: Preset, w: Workload, batch: usize) -> Result<GreedyFigure> {
    let device = Device::Cpu;
    let config = bench_config(preset, w.vocab);
    let mut model = TrainableModel::init(&config, 0, DType::F32, &device).map_err(candle_core::Error::wrap)?.model;
    model.prepare_inference()?;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
    let (src, mask) = pad_sequences(&random_rows(&mut rng, batch, w.src_len, w.vocab), config.special.pad, &device)?;
    let (mut enc, mut step, mut total) = (vec![], vec![], vec![]);
    for rep in 0..8 {
        let t0 = Instant::now();
        let memory = model.encode(&src, &mask)?;
        let mut state = model.start(&memory, 1)?;
        let te = t0.elapsed().as_secs_f64();
        let mut last = Tensor::new(vec![config.special.decoder_start; batch].as_slice(), &device)?;
        let t1 = Instant::now();
        for _ in 0..w.tgt_len {
            let logits = model.decode_step(&last, &mut state)?;
            last = logits.argmax(D::Minus1)?;
        }
        last.to_vec1::<u32>()?;
        let td = t1.elapsed().as_secs_f64();
        if rep >= 2 {
            enc.push(te);
            step.push(td / w.tgt_len as f64);
            total.push(t0.elapsed().as_secs_f64());
        }
    }
    Ok(GreedyFigure {
        system: system(),
        figure: "greedy_decode",
        batch,
        steps: w.tgt_len,
        encode_ms: round(median(enc) * 1e3, 2),
        ms_per_step: round(median(step) * 1e3, 3),
        total_ms: round(median(total) * 1e3, 2),
    })
}
