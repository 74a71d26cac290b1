//! Fused log-softmax + label-smoothed cross-entropy per row, with its backward: the largest
//! tensor of a training step ([tokens, vocab] logits) is read twice forward and twice backward,
//! and no [tokens, vocab] intermediate is kept.

use std::mem::MaybeUninit;

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu::{f32_slice, fast_exp, log_sum_exp as lse, par_written, rows_per_task, sum_of, u32_slice, with_f32};

/// Per-row losses of logits [n, V] against targets [n] u32 -> [n, 2]:
/// column 0 the smoothed loss `(1 - eps) * nll + eps * mean_v(-log p_v)`, column 1 the plain
/// nll; both 0 where the target is `pad`.
#[derive(Clone, Copy)]
struct SmoothedCrossEntropy {
    pad: u32,
    eps: f32,
}

impl CustomOp2 for SmoothedCrossEntropy {
    fn name(&self) -> &'static str {
        "transduce-smoothed-cross-entropy"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s1, l1)?;
        let y = u32_slice(s2, l2)?;
        let v = l1.dims()[1];
        let n = y.len();
        let mut out = vec![0f32; 2 * n];
        let rows = rows_per_task(n, v);
        out.par_chunks_mut(2 * rows).zip(x.par_chunks(rows * v).zip(y.par_chunks(rows))).for_each(|(out, (x, y))| {
            for ((out, x), &y) in out.chunks_exact_mut(2).zip(x.chunks_exact(v)).zip(y) {
                if y == self.pad {
                    continue;
                }
                let (lse, mean) = (lse(x), sum_of(x) / v as f32);
                let nll = lse - x[y as usize];
                out[0] = (1.0 - self.eps) * nll + self.eps * (lse - mean);
                out[1] = nll;
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((n, 2))))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (n, v) = logits.dims2()?;
        let y = targets.to_vec1::<u32>()?;
        let g = grad.to_vec2::<f32>()?;
        let dx = with_f32(logits, |x| {
            let rows = rows_per_task(n, v);
            let fill = |task: usize, dx: &mut [MaybeUninit<f32>]| {
                let x = &x[task * rows * v..][..dx.len()];
                for (r, (dx, x)) in dx.chunks_exact_mut(v).zip(x.chunks_exact(v)).enumerate() {
                    let row = task * rows + r;
                    if y[row] == self.pad {
                        dx.fill(MaybeUninit::new(0.0));
                        continue;
                    }
                    let [g_smooth, g_nll] = [g[row][0], g[row][1]];
                    // d/dx of smoothed: p - (1-eps) onehot - eps / V; of nll: p - onehot
                    let lse = lse(x);
                    let total = g_smooth + g_nll;
                    let uniform = g_smooth * self.eps / v as f32;
                    for (d, &xv) in dx.iter_mut().zip(x) {
                        d.write(total * fast_exp(xv - lse) - uniform);
                    }
                    let target = y[row] as usize;
                    let onehot = g_smooth * (1.0 - self.eps) + g_nll;
                    dx[target].write(total * fast_exp(x[target] - lse) - uniform - onehot);
                }
            };
            // SAFETY: `fill` writes every element of its chunk: a padding row's zeros, every
            // other row's gradient (its target element twice)
            unsafe { par_written(n * v, rows * v, fill) }
        })?;
        Ok((Some(Tensor::from_vec(dx, (n, v), logits.device())?), None))
    }
}

/// Per-row \[smoothed loss, nll\] of CPU f32 logits \[n, V\] against targets \[n\] u32 -> \[n, 2\].
pub fn smoothed_cross_entropy_rows(logits: &Tensor, targets: &Tensor, pad: u32, eps: f64) -> Result<Tensor> {
    logits.contiguous()?.apply_op2(&targets.contiguous()?, SmoothedCrossEntropy { pad, eps: eps as f32 })
}
