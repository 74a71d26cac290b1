//! One optimisation step on a batch.

use candle_core::backprop::GradStore;
use std::time::Instant;

use candle_core::{DType, Result, Tensor, Var};

use super::loss::{label_smoothed_cross_entropy, paired_kl_divergence};
use super::optim::{clip_factor, grad_norm, AdamW, AdamWConfig};
use super::schedule::LrSchedule;
use crate::data::Batch;
use crate::kernels::Kernels;
use crate::model::{Ctx, TrainableModel};

/// What one step did.
#[derive(Debug, Clone, Copy)]
pub struct StepStats {
    /// Smoothed loss per target token (with R-Drop: both copies' cross-entropy and the
    /// weighted divergence).
    pub loss: f64,
    /// Negative log-likelihood per target token.
    pub nll: f64,
    pub ntokens: usize,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    /// With R-Drop: the two copies' symmetric KL divergence per target token, unweighted.
    pub divergence: Option<f64>,
    pub lr: f64,
    /// Where the step's time went.
    pub seconds: StepSeconds,
}

/// Wall time of a step's phases, in seconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct StepSeconds {
    /// Forward passes and losses.
    pub forward: f64,
    /// Backward passes (and gradient accumulation).
    pub backward: f64,
    /// Gradient norm, clipping and the optimizer's update.
    pub update: f64,
}

/// Owns the optimizer and schedule for a model's parameters.
pub struct TrainStep {
    pub optimizer: AdamW,
    pub schedule: LrSchedule,
    pub label_smoothing: f64,
    /// Clip the global gradient norm to this (0 = no clipping).
    pub clip_norm: f64,
    /// R-Drop's weight α (Liang et al., 2021; 0 = off): each batch runs twice in one forward
    /// pass, under two dropout masks, and the loss is both copies' cross-entropy plus α times
    /// their symmetric KL divergence per token ([`paired_kl_divergence`]).
    pub r_drop: f64,
    /// Seconds into the run when the next update is made: a time-budgeted schedule reads it
    /// (the training loop sets it before each update).
    pub elapsed_s: f64,
    vars: Vec<Var>,
    /// The optimizer's and the gradient norm's kernels.
    kernels: Kernels,
}

impl TrainStep {
    /// A step with the fused CPU kernels where they apply.
    pub fn new(
        model: &TrainableModel,
        adam: AdamWConfig,
        schedule: LrSchedule,
        label_smoothing: f64,
        clip_norm: f64,
    ) -> Result<Self> {
        Self::with_kernels(model, adam, schedule, label_smoothing, clip_norm, Kernels::default())
    }

    /// [`TrainStep::new`] whose optimizer and gradient norm use `kernels`; forward, loss and
    /// backward use the kernels of the context each step is given.
    pub fn with_kernels(
        model: &TrainableModel,
        adam: AdamWConfig,
        schedule: LrSchedule,
        label_smoothing: f64,
        clip_norm: f64,
        kernels: Kernels,
    ) -> Result<Self> {
        let (vars, optimizer) = Self::optimize(model, adam, kernels)?;
        Ok(TrainStep { optimizer, schedule, label_smoothing, clip_norm, r_drop: 0.0, elapsed_s: 0.0, vars, kernels })
    }

    /// Points the step at `model`'s parameters (loaded from a checkpoint) with a fresh
    /// optimizer over them; every setting is kept.
    pub fn bind(&mut self, model: &TrainableModel) -> Result<()> {
        (self.vars, self.optimizer) = Self::optimize(model, self.optimizer.config, self.kernels)?;
        Ok(())
    }

    /// `model`'s parameters and a fresh optimizer over them.
    fn optimize(model: &TrainableModel, adam: AdamWConfig, kernels: Kernels) -> Result<(Vec<Var>, AdamW)> {
        let vars: Vec<Var> = model.named_vars().into_iter().map(|(_, v)| v).collect();
        let optimizer = AdamW::new(vars.clone(), adam, kernels)?;
        Ok((vars, optimizer))
    }

    /// The step with R-Drop's weight `alpha` (0: off).
    pub fn with_r_drop(self, alpha: f64) -> Self {
        TrainStep { r_drop: alpha, ..self }
    }

    /// The optimizer's and the gradient norm's kernels.
    pub fn kernels(&self) -> Kernels {
        self.kernels
    }

    /// Forward, loss, backward, clip and update on one batch. `ctx` should be a training context.
    pub fn step(&mut self, model: &TrainableModel, batch: &Batch, ctx: &Ctx) -> Result<StepStats> {
        self.step_accumulated(model, std::slice::from_ref(batch), ctx)
    }

    /// One update from the gradients of several batches (gradient accumulation): the loss is
    /// normalised by the target tokens of all of them together.
    pub fn step_accumulated(&mut self, model: &TrainableModel, batches: &[Batch], ctx: &Ctx) -> Result<StepStats> {
        let m = &model.model;
        let total: usize = batches.iter().map(|b| b.ntokens).sum();
        let (mut loss, mut nll, mut divergence) = (0.0, 0.0, 0.0);
        let mut grads: Option<GradStore> = None;
        let mut seconds = StepSeconds::default();
        for batch in batches {
            let started = Instant::now();
            let pad = m.config.special.pad;
            let share = batch.ntokens as f64 / total.max(1) as f64;
            // R-Drop: the batch twice over in one pass, each copy under its own dropout masks
            let copies = |t: &Tensor| if self.r_drop > 0.0 { Tensor::cat(&[t, t], 0) } else { Ok(t.clone()) };
            // logits [n, V] of the non-padding positions, both copies' in turn with R-Drop
            let (logits, targets) = m.forward_targets(
                &copies(&batch.src)?,
                &copies(&batch.src_mask)?,
                &copies(&batch.tgt_in)?,
                &copies(&batch.tgt_out)?,
                pad,
                ctx,
            )?;
            let out = label_smoothed_cross_entropy(&logits, &targets, pad, self.label_smoothing, ctx.kernels)?;
            nll += share * scalar(&out.nll)?;
            let mut batch_loss = out.loss;
            if self.r_drop > 0.0 {
                // the first copy's targets: the second's are the same positions
                let one_copy = targets.narrow(0, 0, targets.dim(0)? / 2)?;
                let kl = paired_kl_divergence(&logits, &one_copy, pad, ctx.kernels)?;
                divergence += share * scalar(&kl)?;
                batch_loss = (batch_loss + (kl * self.r_drop)?)?;
            }
            loss += share * scalar(&batch_loss)?;
            let loss_scaled = (batch_loss * share)?;
            let forward_done = Instant::now();
            seconds.forward += (forward_done - started).as_secs_f64();
            let new = loss_scaled.backward()?;
            grads = Some(match grads {
                None => new,
                Some(mut acc) => {
                    for var in &self.vars {
                        if let Some(g) = new.get(var.as_tensor()) {
                            let sum = match acc.get(var.as_tensor()) {
                                Some(a) => (a + g)?,
                                None => g.clone(),
                            };
                            acc.insert(var.as_tensor(), sum);
                        }
                    }
                    acc
                }
            });
            seconds.backward += forward_done.elapsed().as_secs_f64();
        }
        let started = Instant::now();
        let Some(grads) = grads else { candle_core::bail!("a training step needs at least one batch") };
        let norm = grad_norm(&self.vars, &grads, self.kernels)?;
        let lr = self.schedule.lr(self.optimizer.steps_taken() + 1, self.elapsed_s);
        self.optimizer.step(&grads, lr, clip_factor(norm, self.clip_norm))?;
        seconds.update = started.elapsed().as_secs_f64();
        let divergence = (self.r_drop > 0.0).then_some(divergence);
        Ok(StepStats { loss, nll, ntokens: total, grad_norm: norm, divergence, lr, seconds })
    }
}

/// A scalar tensor's value.
fn scalar(t: &Tensor) -> Result<f64> {
    t.to_dtype(DType::F64)?.to_scalar::<f64>()
}
