//! AdamW (decoupled weight decay) and global gradient-norm clipping.

use candle_core::backprop::GradStore;
use candle_core::{DType, Result, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::kernels::adamw::{adamw_update, sum_of_squares, AdamWStep, HostMoments};
use crate::kernels::Kernels;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Which parameters `weight_decay` shrinks (absent in older configurations: all, what they
    /// did; a new configuration's default is [`DecayScope::Matrices`]).
    #[serde(default)]
    pub weight_decay_scope: DecayScope,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        // decay 0.1 over the weight matrices: chosen on Multi30k's `val` (README, "What else was
        // measured"), nanoGPT's and Hugging Face's `Trainer`'s scope
        AdamWConfig { beta1: 0.9, beta2: 0.98, eps: 1e-9, weight_decay: 0.1, weight_decay_scope: DecayScope::Matrices }
    }
}

/// Which parameters AdamW's weight decay shrinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecayScope {
    /// Every parameter (PyTorch's `AdamW` over `model.parameters()`, fairseq's Adam); what a
    /// configuration written before the scope existed meant.
    #[default]
    All,
    /// Tensors of rank 2 or more only (weight matrices and embeddings): biases and
    /// layer-norm gains and shifts keep their scale (nanoGPT, Hugging Face's `Trainer`).
    Matrices,
}

crate::choices!(DecayScope, "weight-decay scope", { All => "all", Matrices => "matrices" });

impl DecayScope {
    /// The weight decay of one parameter of rank `rank` under this scope.
    pub fn decay_for(self, weight_decay: f64, rank: usize) -> f64 {
        match self {
            DecayScope::All => weight_decay,
            DecayScope::Matrices if rank >= 2 => weight_decay,
            DecayScope::Matrices => 0.0,
        }
    }
}

/// Moment estimates of one parameter: on the host for the fused CPU update, as tensors
/// for the reference path.
enum Moments {
    Host(HostMoments),
    Tensors { m: Tensor, v: Tensor },
}

struct Param {
    var: Var,
    moments: Moments,
}

/// AdamW over a fixed, ordered list of variables.
pub struct AdamW {
    pub config: AdamWConfig,
    params: Vec<Param>,
    step: usize,
}

impl AdamW {
    /// `kernels` picks the fused in-place update for CPU f32 parameters.
    pub fn new(vars: Vec<Var>, config: AdamWConfig, kernels: Kernels) -> Result<Self> {
        let params = vars
            .into_iter()
            .map(|var| {
                let moments = if kernels.fused_for(var.as_tensor()) {
                    Moments::Host(HostMoments::zeros(var.elem_count()))
                } else {
                    Moments::Tensors { m: var.zeros_like()?, v: var.zeros_like()? }
                };
                Ok(Param { var, moments })
            })
            .collect::<Result<_>>()?;
        Ok(AdamW { config, params, step: 0 })
    }

    /// Moment estimates of each parameter, in parameter order, as tensors shaped like it.
    pub fn moments(&self) -> Result<Vec<(Tensor, Tensor)>> {
        self.params
            .iter()
            .map(|p| match &p.moments {
                Moments::Host(h) => {
                    let (m, v) = h.values();
                    let (shape, dev) = (p.var.shape(), p.var.device());
                    Ok((Tensor::from_slice(m, shape, dev)?, Tensor::from_slice(v, shape, dev)?))
                }
                Moments::Tensors { m, v } => Ok((m.clone(), v.clone())),
            })
            .collect()
    }

    /// Restores moments (as returned by [`AdamW::moments`]) and the number of steps taken.
    pub fn restore(&mut self, moments: Vec<(Tensor, Tensor)>, steps: usize) -> Result<()> {
        if moments.len() != self.params.len() {
            candle_core::bail!("optimizer state has {} parameters, the model {}", moments.len(), self.params.len());
        }
        for (p, (m, v)) in self.params.iter_mut().zip(moments) {
            if m.shape() != p.var.shape() || v.shape() != p.var.shape() {
                candle_core::bail!("optimizer state shape {:?} for a parameter of shape {:?}", m.dims(), p.var.dims());
            }
            p.moments = match &p.moments {
                Moments::Host(_) => Moments::Host(HostMoments::from_values(
                    m.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?,
                    v.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?,
                )),
                Moments::Tensors { .. } => Moments::Tensors { m, v },
            };
        }
        self.step = steps;
        Ok(())
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
        for p in &mut self.params {
            let Some(g) = grads.get(p.var.as_tensor()) else { continue };
            let weight_decay = c.weight_decay_scope.decay_for(c.weight_decay, p.var.rank());
            match &mut p.moments {
                Moments::Host(moments) => {
                    let step = AdamWStep {
                        lr: lr as f32,
                        beta1: c.beta1 as f32,
                        beta2: c.beta2 as f32,
                        eps: c.eps as f32,
                        weight_decay: weight_decay as f32,
                        bias1: bias1 as f32,
                        bias2: bias2 as f32,
                        grad_scale: grad_scale as f32,
                    };
                    adamw_update(p.var.as_tensor(), g, moments, step)?;
                }
                Moments::Tensors { m, v } => {
                    let g = if grad_scale != 1.0 { (g * grad_scale)? } else { g.clone() };
                    *m = ((&*m * c.beta1)? + (&g * (1.0 - c.beta1))?)?;
                    *v = ((&*v * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
                    let m_hat = (&*m / bias1)?;
                    let v_hat = (&*v / bias2)?;
                    let update = (m_hat / (v_hat.sqrt()? + c.eps)?)?;
                    let theta = p.var.as_tensor();
                    let decayed = if weight_decay > 0.0 { (theta * (1.0 - lr * weight_decay))? } else { theta.clone() };
                    p.var.set(&(decayed - (update * lr)?)?)?;
                }
            }
        }
        Ok(())
    }
}

/// Global L2 norm of the gradients of `vars` (sums of squares by the fused CPU kernel, or the
/// candle composition, as `kernels` says).
pub fn grad_norm(vars: &[Var], grads: &GradStore, kernels: Kernels) -> Result<f64> {
    let mut sum = 0.0;
    for var in vars {
        if let Some(g) = grads.get(var.as_tensor()) {
            sum += if kernels.fused_for(g) {
                sum_of_squares(g)?
            } else {
                g.to_dtype(DType::F64)?.sqr()?.sum_all()?.to_scalar::<f64>()?
            };
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
        for dtype in [DType::F64, DType::F32] {
            for kernels in [Kernels::Reference, Kernels::Fused] {
                let init = Tensor::new(&[1.0f64, -2.0, 3.0], &Device::Cpu).unwrap().to_dtype(dtype).unwrap();
                let var = Var::from_tensor(&init).unwrap();
                let coef = Tensor::new(&[2.0f64, -0.5, 0.0], &Device::Cpu).unwrap().to_dtype(dtype).unwrap();
                let grads = (var.as_tensor() * &coef).unwrap().sum_all().unwrap().backward().unwrap();
                let config =
                    AdamWConfig { weight_decay: 0.1, weight_decay_scope: DecayScope::All, ..Default::default() };
                let mut opt = AdamW::new(vec![var.clone()], config, kernels).unwrap();
                opt.step(&grads, 0.01, 1.0).unwrap();
                let got = var.as_tensor().to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap();
                let decay = 1.0 - 0.01 * 0.1;
                let want = [1.0 * decay - 0.01, -2.0 * decay + 0.01, 3.0 * decay];
                for (g, w) in got.iter().zip(want) {
                    assert!((g - w).abs() < 1e-6, "{dtype:?} {kernels:?}: {got:?} vs {want:?}");
                }
            }
        }
    }

    #[test]
    fn matrices_scope_decays_matrices_and_leaves_biases_and_gains() {
        // Adam's first step moves each weight by lr against its gradient's sign, after the decay
        // w * (1 - lr * wd) where the scope applies it.
        let (lr, wd) = (0.5, 0.2);
        for kernels in [Kernels::Reference, Kernels::Fused] {
            for (scope, vector_decays) in [(DecayScope::All, true), (DecayScope::Matrices, false)] {
                let matrix = Var::new(&[[1.0f32, -2.0], [3.0, 4.0]], &Device::Cpu).unwrap();
                let vector = Var::new(&[5.0f32, -6.0], &Device::Cpu).unwrap();
                let loss = (matrix.as_tensor().sum_all().unwrap() - vector.as_tensor().sum_all().unwrap()).unwrap();
                let grads = loss.backward().unwrap();
                let config = AdamWConfig { weight_decay: wd, weight_decay_scope: scope, ..Default::default() };
                let mut opt = AdamW::new(vec![matrix.clone(), vector.clone()], config, kernels).unwrap();
                opt.step(&grads, lr, 1.0).unwrap();
                let decayed = (1.0 - lr * wd) as f32;
                let m = matrix.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
                for (got, init) in m.iter().zip([1.0f32, -2.0, 3.0, 4.0]) {
                    let want = init * decayed - lr as f32;
                    assert!((got - want).abs() < 1e-5, "{scope} {kernels:?}: matrix {m:?}");
                }
                let v = vector.as_tensor().to_vec1::<f32>().unwrap();
                for (got, init) in v.iter().zip([5.0f32, -6.0]) {
                    let want = if vector_decays { init * decayed } else { init } + lr as f32;
                    assert!((got - want).abs() < 1e-5, "{scope} {kernels:?}: vector {v:?}");
                }
            }
        }
    }

    #[test]
    fn fused_update_tracks_the_reference_over_several_steps() {
        let run = |kernels: Kernels| {
            let var = Var::new(&[[0.5f32, -1.0, 2.0], [0.1, 0.0, -0.3]], &Device::Cpu).unwrap();
            let config = AdamWConfig { weight_decay: 0.01, ..Default::default() };
            let mut opt = AdamW::new(vec![var.clone()], config, kernels).unwrap();
            for step in 0..5 {
                let loss = (var.as_tensor().sqr().unwrap() * (step as f64 + 1.0)).unwrap().sum_all().unwrap();
                let grads = loss.backward().unwrap();
                let norm = grad_norm(std::slice::from_ref(&var), &grads, kernels).unwrap();
                opt.step(&grads, 0.05, clip_factor(norm, 1.0)).unwrap();
            }
            var.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()
        };
        let (fused, reference) = (run(Kernels::Fused), run(Kernels::Reference));
        for (f, r) in fused.iter().zip(&reference) {
            assert!((f - r).abs() < 1e-5, "{fused:?} vs {reference:?}");
        }
    }

    #[test]
    fn clipping_scales_to_the_max_norm() {
        assert_eq!(clip_factor(0.5, 1.0), 1.0);
        assert!((clip_factor(4.0, 1.0) - 0.25).abs() < 1e-6);
        assert_eq!(clip_factor(4.0, 0.0), 1.0);
    }
}
