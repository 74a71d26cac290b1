//! What a forward pass needs besides its inputs: training or inference mode (dropout and its
//! seeded random stream) and the kernel choice.

use std::cell::RefCell;

use candle_core::Tensor;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::kernels::Kernels;

/// Training (dropout on, seeded) or inference (dropout off).
pub enum Mode {
    /// Inference: no dropout, and no gradients (fused CPU kernels that record none may run).
    Eval,
    Train(RefCell<Xoshiro256PlusPlus>),
}

/// Per-call forward context.
pub struct Ctx {
    pub mode: Mode,
    pub kernels: Kernels,
}

impl Ctx {
    pub fn eval() -> Self {
        Ctx { mode: Mode::Eval, kernels: Kernels::default() }
    }

    pub fn train(seed: u64) -> Self {
        Ctx { mode: Mode::Train(RefCell::new(Xoshiro256PlusPlus::seed_from_u64(seed))), kernels: Kernels::default() }
    }

    pub fn with_kernels(mut self, kernels: Kernels) -> Self {
        self.kernels = kernels;
        self
    }

    /// Inverted dropout: zeroes each element with probability `p` and scales the rest by
    /// `1 / (1 - p)`; the identity in eval mode. Masks come from the context's seeded stream.
    pub fn dropout(&self, x: &Tensor, p: f32) -> candle_core::Result<Tensor> {
        if self.kernels.fused_for(x) {
            return match self.dropout_seed(p) {
                Some((p, seed)) => crate::kernels::dropout::dropout(x, p, seed),
                None => Ok(x.clone()),
            };
        }
        let Mode::Train(rng) = &self.mode else { return Ok(x.clone()) };
        if p <= 0.0 {
            return Ok(x.clone());
        }
        let mut rng = rng.borrow_mut();
        let keep = 1.0 - p;
        let scale = 1.0 / keep;
        let mask: Vec<f32> = (0..x.elem_count()).map(|_| if rng.gen::<f32>() < keep { scale } else { 0.0 }).collect();
        let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
        x.mul(&mask)
    }

    /// A fresh seed for a fused dropout of probability `p`; `None` in eval mode or when `p` is 0.
    pub fn dropout_seed(&self, p: f32) -> Option<(f32, u64)> {
        match &self.mode {
            Mode::Train(rng) if p > 0.0 => Some((p, rng.borrow_mut().gen())),
            _ => None,
        }
    }

    pub fn softmax(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.kernels.softmax_last_dim(x)
    }

    pub fn layer_norm(&self, x: &Tensor, w: &Tensor, b: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
        self.kernels.layer_norm(x, w, b, eps)
    }

    /// RMS norm: the fused kernel in inference (it records no gradient), the reference
    /// composition in training.
    pub fn rms_norm(&self, x: &Tensor, w: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
        match !self.is_training() && self.kernels.fused_for(x) {
            true => crate::kernels::rms_norm_fused(x, w, eps),
            false => crate::kernels::rms_norm(x, w, eps),
        }
    }

    pub fn is_training(&self) -> bool {
        matches!(self.mode, Mode::Train(_))
    }

    /// What a context of this mode and kernels, on an independent random stream drawn from this
    /// one's, needs: for work on other threads, which cannot share a context.
    pub fn fork(&self) -> Fork {
        let seed = match &self.mode {
            Mode::Train(rng) => Some(rng.borrow_mut().gen()),
            Mode::Eval => None,
        };
        Fork { seed, kernels: self.kernels }
    }
}

/// A context to be made on another thread ([`Ctx::fork`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fork {
    /// The training stream's seed; `None` in inference.
    seed: Option<u64>,
    kernels: Kernels,
}

impl Fork {
    pub fn ctx(self) -> Ctx {
        let ctx = match self.seed {
            Some(seed) => Ctx::train(seed),
            None => Ctx::eval(),
        };
        ctx.with_kernels(self.kernels)
    }
}
