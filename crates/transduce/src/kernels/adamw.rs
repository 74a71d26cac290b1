//! In-place AdamW update for CPU f32 parameters: one parallel pass reads the gradient and
//! updates the parameter and both moments, with no temporary tensors.

use std::sync::Mutex;

use candle_core::{CpuStorage, InplaceOp2, Layout, Result, Tensor};
use rayon::prelude::*;

use super::cpu::{f32_slice, with_f32};

/// Hyper-parameters of one update.
#[derive(Debug, Clone, Copy)]
pub struct AdamWStep {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    /// `1 - beta1^t`, `1 - beta2^t`
    pub bias1: f32,
    pub bias2: f32,
    /// Multiplies the gradient first (clipping).
    pub grad_scale: f32,
}

/// First and second moments of one parameter, held on the host.
pub struct HostMoments {
    m: Vec<f32>,
    v: Vec<f32>,
}

impl HostMoments {
    pub fn zeros(n: usize) -> Self {
        HostMoments { m: vec![0.0; n], v: vec![0.0; n] }
    }

    /// (first, second) moments.
    pub fn values(&self) -> (&[f32], &[f32]) {
        (&self.m, &self.v)
    }

    pub fn from_values(m: Vec<f32>, v: Vec<f32>) -> Self {
        HostMoments { m, v }
    }
}

struct Update<'a> {
    step: AdamWStep,
    moments: Mutex<&'a mut HostMoments>,
}

impl InplaceOp2 for Update<'_> {
    fn name(&self) -> &'static str {
        "transduce-adamw"
    }

    fn cpu_fwd(&self, s1: &mut CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<()> {
        let g = f32_slice(s2, l2)?;
        let Some((start, end)) = l1.contiguous_offsets() else {
            candle_core::bail!("adamw: parameter must be contiguous");
        };
        let CpuStorage::F32(theta) = s1 else { candle_core::bail!("adamw: parameter must be f32") };
        let theta = &mut theta[start..end];
        let mut moments = self.moments.lock().expect("moments lock");
        let HostMoments { m, v } = &mut **moments;
        if theta.len() != g.len() || m.len() != g.len() {
            candle_core::bail!("adamw: {} parameters, {} gradients, {} moments", theta.len(), g.len(), m.len());
        }
        let s = self.step;
        let decay = 1.0 - s.lr * s.weight_decay;
        let step_size = s.lr / s.bias1;
        let inv_sqrt_bias2 = 1.0 / s.bias2.sqrt();
        const CHUNK: usize = 1 << 14;
        theta
            .par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .zip(m.par_chunks_mut(CHUNK).zip(v.par_chunks_mut(CHUNK)))
            .for_each(|((theta, g), (m, v))| {
                for i in 0..theta.len() {
                    let g = g[i] * s.grad_scale;
                    m[i] = s.beta1 * m[i] + (1.0 - s.beta1) * g;
                    v[i] = s.beta2 * v[i] + (1.0 - s.beta2) * g * g;
                    let denom = v[i].sqrt() * inv_sqrt_bias2 + s.eps;
                    theta[i] = theta[i] * decay - step_size * m[i] / denom;
                }
            });
        Ok(())
    }
}

/// Updates CPU f32 `theta` in place from `grad`.
pub fn adamw_update(theta: &Tensor, grad: &Tensor, moments: &mut HostMoments, step: AdamWStep) -> Result<()> {
    let grad = grad.contiguous()?;
    theta.inplace_op2(&grad, &Update { step, moments: Mutex::new(moments) })
}

/// Sum of squares of a CPU f32 tensor, accumulated in f64 (8 partial sums per chunk, so the
/// loop runs in vector registers instead of one dependent addition per element).
pub fn sum_of_squares(t: &Tensor) -> Result<f64> {
    with_f32(t, |x| x.par_chunks(1 << 14).map(chunk_sum_of_squares).sum())
}

fn chunk_sum_of_squares(c: &[f32]) -> f64 {
    let mut acc = [0f64; 8];
    let lanes = c.chunks_exact(8);
    let rest: f64 = lanes.remainder().iter().map(|&v| (v as f64) * (v as f64)).sum();
    for lane in lanes {
        for i in 0..8 {
            acc[i] += (lane[i] as f64) * (lane[i] as f64);
        }
    }
    acc.iter().sum::<f64>() + rest
}

#[cfg(test)]
mod tests {
    #[test]
    fn sum_of_squares_matches_a_plain_loop() {
        for n in [0, 1, 7, 8, 9, 100, 20_000] {
            let x: Vec<f32> = (0..n).map(|i| ((i * 7919 % 1000) as f32 - 500.0) * 0.013).collect();
            let plain: f64 = x.iter().map(|&v| (v as f64) * (v as f64)).sum();
            let t = candle_core::Tensor::from_vec(x, n, &candle_core::Device::Cpu).unwrap();
            let got = super::sum_of_squares(&t).unwrap();
            assert!((got - plain).abs() <= 1e-12 * plain.max(1.0), "n {n}: {got} vs {plain}");
        }
    }
}
