//! Fused layer norm over the last dimension, with its backward (input, weight and bias).

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu::{f32_slice, par_filled, rows_per_task, with_f32};

struct LayerNorm {
    eps: f32,
}

/// (mean, 1 / sqrt(variance + eps)) of a row, each sum in [`LANES`] partial sums (vector
/// registers; one serial chain of additions would cost a few cycles per element).
fn row_stats(x: &[f32], eps: f32) -> (f32, f32) {
    let d = x.len() as f32;
    let mean = lane_sum(x, |v| v) / d;
    let var = lane_sum(x, |v| (v - mean) * (v - mean)) / d;
    (mean, 1.0 / (var + eps).sqrt())
}

const LANES: usize = 16;

#[inline(always)]
fn lane_sum(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    for c in chunks {
        for i in 0..LANES {
            acc[i] += f(c[i]);
        }
    }
    acc.iter().sum::<f32>() + rest
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "transduce-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w, b) = (f32_slice(s1, l1)?, f32_slice(s2, l2)?, f32_slice(s3, l3)?);
        let d = w.len();
        let chunk = rows_per_task(x.len() / d, d) * d;
        let y = par_filled(x.len(), chunk, |c, y| {
            let x = &x[c * chunk..][..y.len()];
            for (y, x) in y.chunks_exact_mut(d).zip(x.chunks_exact(d)) {
                let (mean, rstd) = row_stats(x, self.eps);
                for i in 0..d {
                    y[i] = (x[i] - mean) * rstd * w[i] + b[i];
                }
            }
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        with_f32(x, |xv| {
            with_f32(w, |wv| with_f32(grad, |gv| layer_norm_grad(xv, wv, gv, self.eps, x.device(), x.shape())))?
        })??
    }
}

/// (dx, dw, db) of layer norm for rows of `x` with upstream gradient `g`.
fn layer_norm_grad(
    xv: &[f32],
    wv: &[f32],
    gv: &[f32],
    eps: f32,
    device: &candle_core::Device,
    shape: &Shape,
) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
    let d = wv.len();
    let mut dx = vec![0f32; xv.len()];
    let chunk = rows_per_task(xv.len() / d, d) * d;
    // Each task returns its partial sums of dw and db.
    let partials: Vec<(Vec<f32>, Vec<f32>)> = dx
        .par_chunks_mut(chunk)
        .zip(xv.par_chunks(chunk).zip(gv.par_chunks(chunk)))
        .map(|(dx, (x, g))| {
            let (mut dw, mut db) = (vec![0f32; d], vec![0f32; d]);
            let mut xhat = vec![0f32; d];
            for (dx, (x, g)) in dx.chunks_exact_mut(d).zip(x.chunks_exact(d).zip(g.chunks_exact(d))) {
                let (mean, rstd) = row_stats(x, eps);
                let (mut sum_dxhat, mut sum_dxhat_xhat) = (0f32, 0f32);
                for i in 0..d {
                    xhat[i] = (x[i] - mean) * rstd;
                    dw[i] += g[i] * xhat[i];
                    db[i] += g[i];
                    let dxhat = g[i] * wv[i];
                    sum_dxhat += dxhat;
                    sum_dxhat_xhat += dxhat * xhat[i];
                }
                let (m1, m2) = (sum_dxhat / d as f32, sum_dxhat_xhat / d as f32);
                for i in 0..d {
                    dx[i] = rstd * (g[i] * wv[i] - m1 - xhat[i] * m2);
                }
            }
            (dw, db)
        })
        .collect();
    let (mut dw, mut db) = (vec![0f32; d], vec![0f32; d]);
    for (pw, pb) in partials {
        dw.iter_mut().zip(pw).for_each(|(a, b)| *a += b);
        db.iter_mut().zip(pb).for_each(|(a, b)| *a += b);
    }
    Ok((
        Some(Tensor::from_vec(dx, shape, device)?),
        Some(Tensor::from_vec(dw, d, device)?),
        Some(Tensor::from_vec(db, d, device)?),
    ))
}

/// Layer norm of a CPU f32 tensor x: \[.., d\] with weight, bias: \[d\].
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    x.contiguous()?.apply_op3(&weight.contiguous()?, &bias.contiguous()?, LayerNorm { eps: eps as f32 })
}
