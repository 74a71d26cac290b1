//! AdamW (decoupled weight decay) and global gradient-norm clipping.

use candle_core::backprop::GradStore;
use candle_core::{DType, Result, Tensor, Var};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig { beta1: 0.9, beta2: 0.98, eps: 1e-9, weight_decay: 0.0 }
    }
}

struct Moments {
    var: Var,
    m: Tensor,
    v: Tensor,
}

/// AdamW over a fixed, ordered list of variables.
pub struct AdamW {
    pub config: AdamWConfig,
    moments: Vec<Moments>,
    step: usize,
}

impl AdamW {
    pub fn new(vars: Vec<Var>, config: AdamWConfig) -> Result<Self> {
        let moments = vars
            .into_iter()
            .map(|var| {
                let m = var.zeros_like()?;
                let v = var.zeros_like()?;
                Ok(Moments { var, m, v })
            })
            .collect::<Result<_>>()?;
        Ok(AdamW { config, moments, step: 0 })
    }

    pub fn steps_taken(&self) -> usize {
        self.step
    }

    /// One update with learning rate `lr`; gradients are multiplied by `grad_scale` first
    /// (gradient clipping folds in here instead of rewriting the gradients).
    pub fn step(&mut self, grads: &GradStore, lr: f64, grad_scale: f64) -> Result<()> {
        self.step += 1;
        let c = self.config;
        let t = self.step as i32;
        let bias1 = 1.0 - c.beta1.powi(t);
        let bias2 = 1.0 - c.beta2.powi(t);
        for mo in &mut self.moments {
            let Some(g) = grads.get(mo.var.as_tensor()) else { continue };
            let g = if grad_scale != 1.0 { (g * grad_scale)? } else { g.clone() };
            mo.m = ((&mo.m * c.beta1)? + (&g * (1.0 - c.beta1))?)?;
            mo.v = ((&mo.v * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let m_hat = (&mo.m / bias1)?;
            let v_hat = (&mo.v / bias2)?;
            let update = (m_hat / (v_hat.sqrt()? + c.eps)?)?;
            let theta = mo.var.as_tensor();
            let decayed = if c.weight_decay > 0.0 { (theta * (1.0 - lr * c.weight_decay))? } else { theta.clone() };
            mo.var.set(&(decayed - (update * lr)?)?)?;
        }
        Ok(())
    }
}

/// Global L2 norm of the gradients of `vars`.
pub fn grad_norm(vars: &[Var], grads: &GradStore) -> Result<f64> {
    let mut sum = 0.0;
    for var in vars {
        if let Some(g) = grads.get(var.as_tensor()) {
            sum += g.to_dtype(DType::F64)?.sqr()?.sum_all()?.to_scalar::<f64>()?;
        }
    }
    Ok(sum.sqrt())
}

/// The factor that scales a gradient of norm `norm` down to at most `max_norm` (1 if it fits,
/// or if clipping is off with `max_norm` <= 0).
pub fn clip_factor(norm: f64, max_norm: f64) -> f64 {
    if max_norm > 0.0 && norm > max_norm {
        max_norm / (norm + 1e-6)
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn first_step_moves_each_weight_by_lr_against_the_gradient_sign() {
        // With bias correction, Adam's first update is lr * g / (|g| + eps) = lr * sign(g).
        let var = Var::new(&[1.0f64, -2.0, 3.0], &Device::Cpu).unwrap();
        let loss =
            (var.as_tensor() * &Tensor::new(&[2.0f64, -0.5, 0.0], &Device::Cpu).unwrap()).unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        let mut opt = AdamW::new(vec![var.clone()], AdamWConfig { weight_decay: 0.1, ..Default::default() }).unwrap();
        opt.step(&grads, 0.01, 1.0).unwrap();
        let got = var.as_tensor().to_vec1::<f64>().unwrap();
        let decay = 1.0 - 0.01 * 0.1;
        let want = [1.0 * decay - 0.01, -2.0 * decay + 0.01, 3.0 * decay];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-9, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn clipping_scales_to_the_max_norm() {
        assert_eq!(clip_factor(0.5, 1.0), 1.0);
        assert!((clip_factor(4.0, 1.0) - 0.25).abs() < 1e-6);
        assert_eq!(clip_factor(4.0, 0.0), 1.0);
    }
}
