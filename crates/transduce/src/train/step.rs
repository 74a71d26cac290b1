//! One optimisation step on a batch.

use candle_core::backprop::GradStore;
use std::time::Instant;

use candle_core::{DType, Result, Tensor, Var};

use rayon::prelude::*;

use super::loss::{label_smoothed_cross_entropy, paired_kl_divergence};
use super::optim::{clip_factor, grad_norm, AdamW, AdamWConfig};
use super::schedule::LrSchedule;
use crate::data::Batch;
use crate::kernels::Kernels;
use crate::model::{Ctx, Fork, Seq2Seq, TrainableModel};
use crate::workers::Workers;

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

/// Time of a step's phases, in seconds (with workers, their forward and backward times summed).
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
    /// Pools that compute a step's batches at once ([`TrainStep::with_workers`]).
    workers: Workers,
}

/// What a batch's loss needs beyond the batch (copied to the workers).
#[derive(Debug, Clone, Copy)]
struct LossSettings {
    label_smoothing: f64,
    r_drop: f64,
}

/// One batch's gradients of its share of the step's loss, and its share of the step's figures.
struct BatchGradients {
    grads: GradStore,
    loss: f64,
    nll: f64,
    divergence: f64,
    seconds: StepSeconds,
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
        let workers = Workers::default();
        Ok(TrainStep {
            optimizer,
            schedule,
            label_smoothing,
            clip_norm,
            r_drop: 0.0,
            elapsed_s: 0.0,
            vars,
            kernels,
            workers,
        })
    }

    /// The step computing the batches of an update `n` at a time, each on its own pool with an
    /// equal share of the threads (data parallelism in one process, as Marian's CPU training
    /// with `--cpu-threads`): on two cores, two single-threaded workers keep both busy where one
    /// two-threaded pass waits at every small product. The trainer cuts each batch into `n`
    /// ([`super::corpus::batch_tensors`]). The update is the one the batches make one after another,
    /// in another order of float sums, with each batch's dropout drawn from its own stream.
    pub fn with_workers(self, n: usize) -> Result<Self> {
        let workers = Workers::new(n).map_err(|e| candle_core::Error::Msg(format!("cannot start {n} workers: {e}")))?;
        Ok(TrainStep { workers, ..self })
    }

    /// Batches computed at once.
    pub fn workers(&self) -> usize {
        self.workers.count()
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
    /// normalised by the target tokens of all of them together. With workers
    /// ([`TrainStep::with_workers`]) the batches are computed that many at a time, each on a
    /// context forked from `ctx`.
    pub fn step_accumulated(&mut self, model: &TrainableModel, batches: &[Batch], ctx: &Ctx) -> Result<StepStats> {
        let m = &model.model;
        let total: usize = batches.iter().map(|b| b.ntokens).sum();
        let settings = LossSettings { label_smoothing: self.label_smoothing, r_drop: self.r_drop };
        let parts: Vec<BatchGradients> = if self.workers.count() > 1 && batches.len() > 1 {
            let jobs: Vec<(&Batch, Fork)> = batches.iter().map(|b| (b, ctx.fork())).collect();
            self.workers.map(&jobs, |(batch, fork)| batch_gradients(m, batch, total, settings, &fork.ctx()))?
        } else {
            batches.iter().map(|batch| batch_gradients(m, batch, total, settings, ctx)).collect::<Result<_>>()?
        };
        let (mut loss, mut nll, mut divergence) = (0.0, 0.0, 0.0);
        let mut seconds = StepSeconds::default();
        let mut stores = Vec::with_capacity(parts.len());
        for part in parts {
            (loss, nll, divergence) = (loss + part.loss, nll + part.nll, divergence + part.divergence);
            seconds.forward += part.seconds.forward;
            seconds.backward += part.seconds.backward;
            stores.push(part.grads);
        }
        let started = Instant::now();
        let grads = sum_gradients(&self.vars, stores)?;
        seconds.backward += started.elapsed().as_secs_f64();
        let started = Instant::now();
        let norm = grad_norm(&self.vars, &grads, self.kernels)?;
        let lr = self.schedule.lr(self.optimizer.steps_taken() + 1, self.elapsed_s);
        self.optimizer.step(&grads, lr, clip_factor(norm, self.clip_norm))?;
        seconds.update = started.elapsed().as_secs_f64();
        let divergence = (self.r_drop > 0.0).then_some(divergence);
        Ok(StepStats { loss, nll, ntokens: total, grad_norm: norm, divergence, lr, seconds })
    }
}

/// Forward, loss and backward of one batch of a step whose batches hold `total` target tokens:
/// the gradients of its share of the step's loss.
fn batch_gradients(
    m: &Seq2Seq,
    batch: &Batch,
    total: usize,
    settings: LossSettings,
    ctx: &Ctx,
) -> Result<BatchGradients> {
    let started = Instant::now();
    let pad = m.config.special.pad;
    let share = batch.ntokens as f64 / total.max(1) as f64;
    let r_drop = settings.r_drop > 0.0;
    // R-Drop: the batch twice over in one pass, each copy under its own dropout masks
    let copies = |t: &Tensor| if r_drop { Tensor::cat(&[t, t], 0) } else { Ok(t.clone()) };
    // logits [n, V] of the non-padding positions, both copies' in turn with R-Drop
    let (logits, targets) = m.forward_targets(
        &copies(&batch.src)?,
        &copies(&batch.src_mask)?,
        &copies(&batch.tgt_in)?,
        &copies(&batch.tgt_out)?,
        pad,
        ctx,
    )?;
    let out = label_smoothed_cross_entropy(&logits, &targets, pad, settings.label_smoothing, ctx.kernels)?;
    let nll = share * scalar(&out.nll)?;
    let mut batch_loss = out.loss;
    let mut divergence = 0.0;
    if r_drop {
        // the first copy's targets: the second's are the same positions
        let one_copy = targets.narrow(0, 0, targets.dim(0)? / 2)?;
        let kl = paired_kl_divergence(&logits, &one_copy, pad, ctx.kernels)?;
        divergence = share * scalar(&kl)?;
        batch_loss = (batch_loss + (kl * settings.r_drop)?)?;
    }
    let loss = share * scalar(&batch_loss)?;
    let loss_scaled = (batch_loss * share)?;
    let forward_done = Instant::now();
    let grads = loss_scaled.backward()?;
    let seconds = StepSeconds {
        forward: (forward_done - started).as_secs_f64(),
        backward: forward_done.elapsed().as_secs_f64(),
        update: 0.0,
    };
    Ok(BatchGradients { grads, loss, nll, divergence, seconds })
}

/// The sum of the batches' gradients of each of `vars` (in batch order), into the first
/// batch's store; the variables' sums run in parallel.
fn sum_gradients(vars: &[Var], stores: Vec<GradStore>) -> Result<GradStore> {
    let mut stores = stores.into_iter();
    let Some(mut acc) = stores.next() else { candle_core::bail!("a training step needs at least one batch") };
    let rest: Vec<GradStore> = stores.collect();
    if rest.is_empty() {
        return Ok(acc);
    }
    let sums: Vec<Option<Tensor>> = vars
        .par_iter()
        .map(|var| {
            let mut sum = acc.get(var.as_tensor()).cloned();
            for store in &rest {
                if let Some(g) = store.get(var.as_tensor()) {
                    sum = Some(match sum {
                        Some(a) => (a + g)?,
                        None => g.clone(),
                    });
                }
            }
            Ok(sum)
        })
        .collect::<Result<_>>()?;
    for (var, sum) in vars.iter().zip(sums) {
        if let Some(sum) = sum {
            acc.insert(var.as_tensor(), sum);
        }
    }
    Ok(acc)
}

/// A scalar tensor's value.
fn scalar(t: &Tensor) -> Result<f64> {
    t.to_dtype(DType::F64)?.to_scalar::<f64>()
}
