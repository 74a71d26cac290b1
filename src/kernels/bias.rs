//! Fused bias add (optionally followed by ReLU) with its backward: one parallel pass each way,
//! and the bias gradient as a parallel column sum instead of candle's strided reduction.

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu::{f32_slice, rows_per_task, with_f32};

/// What follows the bias add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BiasActivation {
    Identity,
    Relu,
}

struct BiasAdd {
    activation: BiasActivation,
}

impl CustomOp2 for BiasAdd {
    fn name(&self) -> &'static str {
        "transduce-bias-add"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, b) = (f32_slice(s1, l1)?, f32_slice(s2, l2)?);
        let n = b.len();
        let mut y = vec![0f32; x.len()];
        let chunk = rows_per_task(x.len() / n, n) * n;
        let relu = self.activation == BiasActivation::Relu;
        y.par_chunks_mut(chunk).zip(x.par_chunks(chunk)).for_each(|(y, x)| {
            for (y, x) in y.chunks_exact_mut(n).zip(x.chunks_exact(n)) {
                for ((y, &x), &b) in y.iter_mut().zip(x).zip(b) {
                    let v = x + b;
                    *y = if relu { v.max(0.0) } else { v };
                }
            }
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, b: &Tensor, res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let n = b.dim(0)?;
        let dx = match self.activation {
            BiasActivation::Identity => grad.contiguous()?,
            BiasActivation::Relu => with_f32(res, |y| {
                with_f32(grad, |g| {
                    let mut dx = vec![0f32; g.len()];
                    let chunk = rows_per_task(g.len() / n, n) * n;
                    dx.par_chunks_mut(chunk).zip(y.par_chunks(chunk).zip(g.par_chunks(chunk))).for_each(
                        |(dx, (y, g))| {
                            for ((d, &y), &g) in dx.iter_mut().zip(y).zip(g) {
                                *d = if y > 0.0 { g } else { 0.0 };
                            }
                        },
                    );
                    Tensor::from_vec(dx, res.shape(), res.device())
                })
            })???,
        };
        let db = with_f32(&dx, |g| column_sum(g, n))?;
        Ok((Some(dx), Some(Tensor::from_vec(db, n, b.device())?)))
    }
}

/// Sum of the rows of `g` (row length `n`), in parallel over row blocks.
pub fn column_sum(g: &[f32], n: usize) -> Vec<f32> {
    let chunk = rows_per_task(g.len() / n, n) * n;
    g.par_chunks(chunk)
        .map(|g| {
            let mut acc = vec![0f32; n];
            for row in g.chunks_exact(n) {
                acc.iter_mut().zip(row).for_each(|(a, v)| *a += v);
            }
            acc
        })
        .reduce(
            || vec![0f32; n],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
                a
            },
        )
}

/// `activation(x + b)` for CPU f32 x: [.., n], b: [n].
pub fn bias_add(x: &Tensor, b: &Tensor, activation: BiasActivation) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&b.contiguous()?, BiasAdd { activation })
}
