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
    /// The factor on every dropout probability a layer asks for (1; a rising dropout's
    /// share of the model's, [`crate::train::DropoutRamp`]).
    pub dropout_scale: f32,
}

impl Ctx {
    pub fn eval() -> Self {
        Ctx { mode: Mode::Eval, kernels: Kernels::default(), dropout_scale: 1.0 }
    }

    pub fn train(seed: u64) -> Self {
        let rng = RefCell::new(Xoshiro256PlusPlus::seed_from_u64(seed));
        Ctx { mode: Mode::Train(rng), kernels: Kernels::default(), dropout_scale: 1.0 }
    }

    pub fn with_kernels(mut self, kernels: Kernels) -> Self {
        self.kernels = kernels;
        self
    }

    /// The context with every dropout probability multiplied by `scale` (in [0, 1]: a dropout
    /// on its way to the model's).
    pub fn with_dropout_scale(mut self, scale: f32) -> Self {
        self.dropout_scale = scale;
        self
    }

    /// Inverted dropout: zeroes each element with probability `p` (times the context's
    /// [`Ctx::dropout_scale`]) and scales the rest by `1 / (1 - p)`; the identity in eval mode.
    /// Masks come from the context's seeded stream.
    pub fn dropout(&self, x: &Tensor, p: f32) -> candle_core::Result<Tensor> {
        if self.kernels.fused_for(x) {
            return match self.dropout_seed(p) {
                Some((p, seed)) => crate::kernels::dropout::dropout(x, p, seed),
                None => Ok(x.clone()),
            };
        }
        let p = p * self.dropout_scale;
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

    /// A fresh seed for a fused dropout of probability `p` (times the context's
    /// [`Ctx::dropout_scale`]) and that probability; `None` in eval mode or when it is 0.
    pub fn dropout_seed(&self, p: f32) -> Option<(f32, u64)> {
        let p = p * self.dropout_scale;
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
        Fork { seed, kernels: self.kernels, dropout_scale: self.dropout_scale }
    }
}

/// A context to be made on another thread ([`Ctx::fork`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fork {
    /// The training stream's seed; `None` in inference.
    seed: Option<u64>,
    kernels: Kernels,
    dropout_scale: f32,
}

impl Fork {
    pub fn ctx(self) -> Ctx {
        let ctx = match self.seed {
            Some(seed) => Ctx::train(seed),
            None => Ctx::eval(),
        };
        ctx.with_kernels(self.kernels).with_dropout_scale(self.dropout_scale)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    /// The share of `x`'s elements a context's dropout of `p` zeroes.
    fn dropped(ctx: &Ctx, p: f32) -> f64 {
        let x = Tensor::ones((200, 500), candle_core::DType::F32, &Device::Cpu).unwrap();
        let y: Vec<f32> = ctx.dropout(&x, p).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        y.iter().filter(|&&v| v == 0.0).count() as f64 / y.len() as f64
    }

    #[test]
    fn the_dropout_scale_multiplies_every_probability_in_both_kernels_and_forks() {
        for kernels in [Kernels::Reference, Kernels::Fused] {
            let ctx = |scale| Ctx::train(7).with_kernels(kernels).with_dropout_scale(scale);
            assert!((dropped(&ctx(1.0), 0.4) - 0.4).abs() < 0.01, "{kernels:?}");
            assert!((dropped(&ctx(0.5), 0.4) - 0.2).abs() < 0.01, "{kernels:?}");
            assert_eq!(dropped(&ctx(0.0), 0.4), 0.0, "{kernels:?}");
            assert!((dropped(&ctx(0.25).fork().ctx(), 0.4) - 0.1).abs() < 0.01, "{kernels:?}: a fork keeps it");
            assert_eq!(ctx(0.5).dropout_seed(0.4).map(|(p, _)| p), Some(0.2));
            assert_eq!(dropped(&Ctx::eval().with_dropout_scale(0.5), 0.4), 0.0, "{kernels:?}");
        }
    }
}
