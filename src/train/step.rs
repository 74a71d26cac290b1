//! One optimisation step on a batch.

use candle_core::{Result, Var};

use super::loss::label_smoothed_cross_entropy;
use super::optim::{clip_factor, grad_norm, AdamW, AdamWConfig};
use super::schedule::InverseSqrt;
use crate::data::Batch;
use crate::kernels::Kernels;
use crate::model::{Ctx, TrainableModel};

/// What one step did.
#[derive(Debug, Clone, Copy)]
pub struct StepStats {
    /// Smoothed loss per target token.
    pub loss: f64,
    /// Negative log-likelihood per target token.
    pub nll: f64,
    pub ntokens: usize,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    pub lr: f64,
}

/// Owns the optimizer and schedule for a model's parameters.
pub struct TrainStep {
    pub optimizer: AdamW,
    pub schedule: InverseSqrt,
    pub label_smoothing: f64,
    /// Clip the global gradient norm to this (0 = no clipping).
    pub clip_norm: f64,
    vars: Vec<Var>,
}

impl TrainStep {
    pub fn new(
        model: &TrainableModel,
        adam: AdamWConfig,
        schedule: InverseSqrt,
        label_smoothing: f64,
        clip_norm: f64,
    ) -> Result<Self> {
        let vars: Vec<Var> = model.named_vars().into_iter().map(|(_, v)| v).collect();
        Ok(TrainStep {
            optimizer: AdamW::new(vars.clone(), adam, Kernels::default())?,
            schedule,
            label_smoothing,
            clip_norm,
            vars,
        })
    }

    /// Forward, loss, backward, clip and update on one batch. `ctx` should be a training context.
    pub fn step(&mut self, model: &TrainableModel, batch: &Batch, ctx: &Ctx) -> Result<StepStats> {
        let m = &model.model;
        let logits = m.forward(&batch.src, &batch.src_mask, &batch.tgt_in, ctx)?;
        let out = label_smoothed_cross_entropy(
            &logits,
            &batch.tgt_out,
            m.config.special.pad,
            self.label_smoothing,
            ctx.kernels,
        )?;
        let grads = out.loss.backward()?;
        let norm = grad_norm(&self.vars, &grads)?;
        let lr = self.schedule.lr(self.optimizer.steps_taken() + 1);
        self.optimizer.step(&grads, lr, clip_factor(norm, self.clip_norm))?;
        Ok(StepStats {
            loss: out.loss.to_dtype(candle_core::DType::F64)?.to_scalar()?,
            nll: out.nll.to_dtype(candle_core::DType::F64)?.to_scalar()?,
            ntokens: out.ntokens,
            grad_norm: norm,
            lr,
        })
    }
}
