//! Fused symmetric KL divergence between paired rows of logits (R-Drop's consistency term),
//! with its backward: each [tokens, vocab] half is read twice forward and twice backward, and
//! no probability table is kept.

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu::{f32_slice, fast_exp, log_sum_exp as lse, par_filled, rows_per_task, u32_slice, with_f32};

/// Per-pair divergences of logits [2n, V] against targets [n] u32 -> [n]: row `i` and row
/// `n + i` are one token under two dropout masks, with distributions p and q;
/// `½ (KL(p‖q) + KL(q‖p)) = ½ Σ_v (p_v − q_v)(log p_v − log q_v)`; 0 where the target is `pad`.
#[derive(Clone, Copy)]
struct PairedKl {
    pad: u32,
}

/// `Σ_v p_v (log p_v − log q_v)` and `Σ_v (p_v − q_v)(log p_v − log q_v)` for the rows `x`
/// (p) and `y` (q) with log-sum-exps `lx` and `ly`.
fn divergences(x: &[f32], y: &[f32], lx: f32, ly: f32) -> (f32, f32) {
    let shift = lx - ly;
    let (mut kl, mut symmetric) = (0f32, 0f32);
    for (&xv, &yv) in x.iter().zip(y) {
        let (p, q) = (fast_exp(xv - lx), fast_exp(yv - ly));
        let d = xv - yv - shift;
        kl += p * d;
        symmetric += (p - q) * d;
    }
    (kl, symmetric)
}

impl CustomOp2 for PairedKl {
    fn name(&self) -> &'static str {
        "transduce-paired-kl"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s1, l1)?;
        let y = u32_slice(s2, l2)?;
        let v = l1.dims()[1];
        let n = y.len();
        let (first, second) = x.split_at(n * v);
        let mut out = vec![0f32; n];
        let rows = rows_per_task(n, 2 * v);
        out.par_chunks_mut(rows)
            .zip(first.par_chunks(rows * v).zip(second.par_chunks(rows * v)))
            .zip(y.par_chunks(rows))
            .for_each(|((out, (a, b)), y)| {
                for (((out, a), b), &y) in out.iter_mut().zip(a.chunks_exact(v)).zip(b.chunks_exact(v)).zip(y) {
                    if y != self.pad {
                        *out = 0.5 * divergences(a, b, lse(a), lse(b)).1;
                    }
                }
            });
        Ok((CpuStorage::F32(out), Shape::from(n)))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (rows2, v) = logits.dims2()?;
        let n = rows2 / 2;
        let y = targets.to_vec1::<u32>()?;
        let g = grad.to_vec1::<f32>()?;
        let dx = with_f32(logits, |x| {
            let rows = rows_per_task(rows2, 2 * v);
            par_filled(rows2 * v, rows * v, |task, dx| {
                for (r, dx) in dx.chunks_exact_mut(v).enumerate() {
                    let row = task * rows + r;
                    let (token, partner) = if row < n { (row, row + n) } else { (row - n, row - n) };
                    if y[token] == self.pad {
                        continue;
                    }
                    // with p this row's distribution, q its partner's, d = log p − log q:
                    // ∂/∂x of Σ (p − q) d is p ⊙ (d − Σ p d) + p − q
                    let (a, b) = (&x[row * v..][..v], &x[partner * v..][..v]);
                    let (la, lb) = (lse(a), lse(b));
                    let kl = divergences(a, b, la, lb).0;
                    let shift = la - lb;
                    let scale = 0.5 * g[token];
                    for ((d, &av), &bv) in dx.iter_mut().zip(a).zip(b) {
                        let (p, q) = (fast_exp(av - la), fast_exp(bv - lb));
                        *d = scale * (p * (av - bv - shift - kl) + p - q);
                    }
                }
            })
        })?;
        Ok((Some(Tensor::from_vec(dx, (rows2, v), logits.device())?), None))
    }
}

/// Per-pair \[n\] symmetric KL divergences of CPU f32 logits \[2n, V\] (rows `i` and `n + i`
/// paired), 0 where `targets` \[n\] u32 is `pad`.
pub fn paired_kl_rows(logits: &Tensor, targets: &Tensor, pad: u32) -> Result<Tensor> {
    let (rows, _) = logits.dims2()?;
    if rows != 2 * targets.elem_count() {
        candle_core::bail!("paired rows: {rows} logit rows for {} targets", targets.elem_count());
    }
    logits.contiguous()?.apply_op2(&targets.contiguous()?, PairedKl { pad })
}
