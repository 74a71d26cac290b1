//! Numerical building blocks of the hot paths.
//!
//! Each op has a plain-candle reference composition (differentiable through candle's autograd,
//! runs on every device). Fused CPU kernels, when present, sit beside their reference and are
//! tested against it.
//!
//! [`Kernels`] chooses between them, in one place per op, from the [`crate::model::Ctx`] of the
//! call (or the translator's and the training step's setting):
//!
//! | op | where the choice is made |
//! | --- | --- |
//! | softmax, layer norm | [`Kernels::softmax_last_dim`], [`Kernels::layer_norm`] |
//! | dropout | `Ctx::dropout` |
//! | attention (full sequences), heads apart and together | `MultiHeadAttention::attend` |
//! | linear (+ bias + activation) | `Linear::forward_act` (panels at inference, [`linear`] in training) |
//! | cached decoding steps | `Seq2Seq::start_with`: [`step_attention`] caches, or the tensor cache |
//! | cross-entropy | [`crate::train::label_smoothed_cross_entropy`] |
//! | R-Drop's paired KL divergence | [`crate::train::paired_kl_divergence`] |
//! | AdamW, gradient norm | [`crate::train::TrainStep::with_kernels`] |
//!
//! Int8 layers keep int8 arithmetic under either choice: that is a quantization of the model,
//! not a kernel.

pub mod adamw;
pub mod attention;
pub mod cpu;
pub mod cross_entropy;
pub mod dropout;
pub mod ema;
pub mod heads;
pub mod int8;
pub mod largest;
pub mod layer_norm;
pub mod linear;
pub mod pair;
pub mod paired_kl;
pub mod panel;
pub mod softmax;
pub mod step_attention;

use candle_core::{Tensor, D};

pub use linear::BiasActivation;

/// Which implementation of the hot-path ops a forward pass uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kernels {
    /// Compositions of candle primitives: every device, every dtype.
    Reference,
    /// Fused CPU kernels for f32 tensors on the CPU; the reference elsewhere.
    #[default]
    Fused,
}

crate::choices!(Kernels, "kernels", { Reference => "reference", Fused => "fused" });

impl Kernels {
    /// Whether the fused kernel runs for `t`.
    pub fn fused_for(self, t: &Tensor) -> bool {
        self == Kernels::Fused && cpu::applies(t)
    }

    pub fn softmax_last_dim(self, x: &Tensor) -> candle_core::Result<Tensor> {
        if self.fused_for(x) {
            softmax::softmax_last_dim(x)
        } else {
            softmax_last_dim(x)
        }
    }

    pub fn layer_norm(self, x: &Tensor, w: &Tensor, b: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
        if self.fused_for(x) {
            layer_norm::layer_norm(x, w, b, eps)
        } else {
            layer_norm(x, w, b, eps)
        }
    }
}

/// Softmax over the last dimension, `exp(x - max) / sum`, as a composition of primitives.
///
/// Not `candle_nn::ops::softmax_last_dim`, which records no gradient in candle 0.11.
pub fn softmax_last_dim(x: &Tensor) -> candle_core::Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    let sum = e.sum_keepdim(D::Minus1)?;
    e.broadcast_div(&sum)
}

/// `activation(x + b)`, x: \[.., n\], b: \[n\], as candle primitives.
pub fn reference_bias_add(x: &Tensor, b: &Tensor, activation: BiasActivation) -> candle_core::Result<Tensor> {
    let y = x.broadcast_add(b)?;
    match activation {
        BiasActivation::Identity => Ok(y),
        BiasActivation::Relu => y.relu(),
        BiasActivation::Silu => y.silu(),
    }
}

/// `log(softmax(x))` over the last dimension.
pub fn log_softmax_last_dim(x: &Tensor) -> candle_core::Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let shifted = x.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    shifted.broadcast_sub(&lse)
}

/// Layer norm over the last dimension: `(x - mean) / sqrt(var + eps) * weight + bias`.
///
/// x: \[.., d\]; weight, bias: \[d\]. Not `candle_nn::LayerNorm`, which records no gradient for
/// contiguous inputs in candle 0.11.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    let d = x.dim(D::Minus1)? as f64;
    let mean = (x.sum_keepdim(D::Minus1)? / d)?;
    let centered = x.broadcast_sub(&mean)?;
    let var = (centered.sqr()?.sum_keepdim(D::Minus1)? / d)?;
    let normed = centered.broadcast_div(&(var + eps)?.sqrt()?)?;
    normed.broadcast_mul(weight)?.broadcast_add(bias)
}

/// RMS normalisation `x / sqrt(mean(x^2) + eps) * weight` (T5's `T5LayerNorm`), as candle
/// primitives. x: \[.., d\]; weight: \[d\].
pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    let d = x.dim(D::Minus1)? as f64;
    let mean_square = (x.sqr()?.sum_keepdim(D::Minus1)? / d)?;
    x.broadcast_div(&(mean_square + eps)?.sqrt()?)?.broadcast_mul(weight)
}

/// [`rms_norm`] in one pass per row (candle-nn's kernel; inference only: it records no
/// gradient).
pub fn rms_norm_fused(x: &Tensor, weight: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    candle_nn::ops::rms_norm(&x.contiguous()?, weight, eps as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn softmax_rows_sum_to_one_and_match_candle() {
        let x = Tensor::new(&[[1f32, 2., 3.], [-1e4, 0., 5.]], &Device::Cpu).unwrap();
        let ours = softmax_last_dim(&x).unwrap();
        let theirs = candle_nn::ops::softmax_last_dim(&x).unwrap();
        let diff = (ours.clone() - theirs).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-6);
        let sums = ours.sum(1).unwrap().to_vec1::<f32>().unwrap();
        assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-6));
    }

    #[test]
    fn reference_ops_record_gradients() {
        // The trap this module exists for: candle's fused versions return no gradient.
        let x = Var::new(&[[0.3f64, -1.2, 2.0]], &Device::Cpu).unwrap();
        let w = Tensor::new(&[1.0f64, 2.0, 3.0], &Device::Cpu).unwrap();
        let b = Tensor::zeros(3, candle_core::DType::F64, &Device::Cpu).unwrap();
        let y = layer_norm(x.as_tensor(), &w, &b, 1e-5).unwrap();
        let y = (softmax_last_dim(&y).unwrap() * &Tensor::new(&[[1.0f64, 0.0, 0.0]], &Device::Cpu).unwrap()).unwrap();
        let grads = y.sum_all().unwrap().backward().unwrap();
        let g = grads.get(x.as_tensor()).expect("gradient recorded");
        assert!(g.abs().unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap() > 1e-3);
    }
}
