//! Fused softmax over the last dimension, with its backward.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};

use super::cpu::{f32_slice, fast_exp, max_of, par_filled, rows_per_task};

struct Softmax;

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "transduce-softmax"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(storage, layout)?;
        let d = layout.dims()[layout.dims().len() - 1];
        let chunk = rows_per_task(x.len() / d.max(1), d) * d;
        let y = par_filled(x.len(), chunk, |c, y| {
            let x = &x[c * chunk..][..y.len()];
            for (y, x) in y.chunks_exact_mut(d).zip(x.chunks_exact(d)) {
                let max = max_of(x);
                for (y, &x) in y.iter_mut().zip(x) {
                    *y = fast_exp(x - max);
                }
                // in order: trailing masked entries add exact zeros (padding invariance)
                let inv = 1.0 / y.iter().sum::<f32>();
                y.iter_mut().for_each(|y| *y *= inv);
            }
        });
        Ok((CpuStorage::F32(y), layout.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(res.apply_op2_no_bwd(&grad_res.contiguous()?, &SoftmaxGrad)?))
    }
}

/// dx = y * (dy - sum(dy * y)) per row.
struct SoftmaxGrad;

impl CustomOp2 for SoftmaxGrad {
    fn name(&self) -> &'static str {
        "transduce-softmax-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let y = f32_slice(s1, l1)?;
        let g = f32_slice(s2, l2)?;
        let d = l1.dims()[l1.dims().len() - 1];
        let chunk = rows_per_task(y.len() / d.max(1), d) * d;
        let dx = par_filled(y.len(), chunk, |c, dx| {
            let (y, g) = (&y[c * chunk..][..dx.len()], &g[c * chunk..][..dx.len()]);
            for (dx, (y, g)) in dx.chunks_exact_mut(d).zip(y.chunks_exact(d).zip(g.chunks_exact(d))) {
                let dot: f32 = y.iter().zip(g).map(|(y, g)| y * g).sum();
                for ((dx, &y), &g) in dx.iter_mut().zip(y).zip(g) {
                    *dx = y * (g - dot);
                }
            }
        });
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

/// Softmax over the last dimension of a CPU f32 tensor, one pass forward and one backward.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Softmax)
}
