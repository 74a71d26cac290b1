//! Fused scaled dot-product attention for CPU f32, forward and backward:
//! `softmax(q k^T * scale + bias)`, dropout on the probabilities, times `v`, per (batch, head),
//! in parallel over (batch, head) pairs. No [b, h, tq, tk] tensor outlives the call: the
//! backward recomputes probabilities and the dropout mask (a hash of seed and index).

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu::{f32_slice, fast_exp, with_f32};
use super::dropout::{keep_element, DropoutMask};

/// Additive biases below this mask their key: the model's masks add -1e9
/// ([`crate::model::attention::MASKED`]), far below any score, so such a key's probability is
/// exactly 0 ([`fast_exp`] returns 0 below -87.33) and its score need not be computed.
const MASKED_BELOW: f32 = -1e8;

#[derive(Clone)]
struct Attention {
    /// Additive bias materialised as [b, bias_heads, tq, tk], or empty.
    bias: Option<std::sync::Arc<Vec<f32>>>,
    /// 1 (one bias shared by all heads) or the number of heads (T5's position bias).
    bias_heads: usize,
    scale: f32,
    dropout: Option<DropoutMask>,
}

/// Dimensions of one call.
#[derive(Clone, Copy)]
struct Dims {
    b: usize,
    h: usize,
    tq: usize,
    tk: usize,
    dh: usize,
}

#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac.remainder().iter().zip(bc.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ac.zip(bc) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[inline]
fn axpy(out: &mut [f32], s: f32, x: &[f32]) {
    for (o, &x) in out.iter_mut().zip(x) {
        *o += s * x;
    }
}

impl Attention {
    /// Softmax probabilities of (batch, head) pair `pair` into `p` [tq, tk].
    fn probs(&self, d: Dims, pair: usize, q: &[f32], k: &[f32], p: &mut [f32]) {
        let bi = match self.bias_heads {
            1 => pair / d.h,
            _ => pair,
        };
        for i in 0..d.tq {
            let row = &mut p[i * d.tk..(i + 1) * d.tk];
            let qi = &q[i * d.dh..(i + 1) * d.dh];
            let mut max = f32::NEG_INFINITY;
            for (j, s) in row.iter_mut().enumerate() {
                let bias = self.bias.as_ref().map_or(0.0, |bias| bias[(bi * d.tq + i) * d.tk + j]);
                // a masked key (a later position, padding) gets probability 0 whatever its
                // score: its product with q is not computed
                let v = match bias < MASKED_BELOW {
                    true => bias,
                    false => dot(qi, &k[j * d.dh..(j + 1) * d.dh]) * self.scale + bias,
                };
                *s = v;
                max = max.max(v);
            }
            row.iter_mut().for_each(|s| *s = fast_exp(*s - max));
            // in key order: padded keys add exact zeros at the end, so a row's probabilities
            // do not depend on how much padding its batch has
            let inv = 1.0 / row.iter().sum::<f32>();
            row.iter_mut().for_each(|s| *s *= inv);
        }
    }

    /// Dropout multiplier of probability (pair, i, j): 0 or 1 / keep.
    #[inline]
    fn keep_scale(&self, d: Dims, pair: usize, i: usize, j: usize) -> f32 {
        match &self.dropout {
            None => 1.0,
            Some(m) => {
                if keep_element(m, ((pair * d.tq + i) * d.tk + j) as u64) {
                    m.scale
                } else {
                    0.0
                }
            }
        }
    }

    fn dims(lq: &Layout, lk: &Layout) -> Result<Dims> {
        let (b, h, tq, dh) = lq.shape().dims4()?;
        let (bk, hk, tk, dhk) = lk.shape().dims4()?;
        if (b, h, dh) != (bk, hk, dhk) {
            candle_core::bail!("attention: q {:?} and k {:?} do not match", lq.dims(), lk.dims());
        }
        Ok(Dims { b, h, tq, tk, dh })
    }
}

impl CustomOp3 for Attention {
    fn name(&self) -> &'static str {
        "transduce-attention"
    }

    fn cpu_fwd(
        &self,
        sq: &CpuStorage,
        lq: &Layout,
        sk: &CpuStorage,
        lk: &Layout,
        sv: &CpuStorage,
        lv: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = Self::dims(lq, lk)?;
        let (q, k, v) = (f32_slice(sq, lq)?, f32_slice(sk, lk)?, f32_slice(sv, lv)?);
        let mut out = vec![0f32; d.b * d.h * d.tq * d.dh];
        let (qs, ks) = (d.tq * d.dh, d.tk * d.dh);
        out.par_chunks_mut(qs).enumerate().for_each_init(
            || vec![0f32; d.tq * d.tk],
            |p, (pair, o)| {
                let (qp, kp, vp) = (&q[pair * qs..][..qs], &k[pair * ks..][..ks], &v[pair * ks..][..ks]);
                self.probs(d, pair, qp, kp, p);
                for i in 0..d.tq {
                    let oi = &mut o[i * d.dh..(i + 1) * d.dh];
                    for j in 0..d.tk {
                        let w = p[i * d.tk + j] * self.keep_scale(d, pair, i, j);
                        if w != 0.0 {
                            axpy(oi, w, &vp[j * d.dh..(j + 1) * d.dh]);
                        }
                    }
                }
            },
        );
        Ok((CpuStorage::F32(out), lq.shape().clone()))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (b, h, tq, dh) = q.dims4()?;
        let tk = k.dim(2)?;
        let d = Dims { b, h, tq, tk, dh };
        let (qs, ks) = (tq * dh, tk * dh);
        let mut dq = vec![0f32; b * h * qs];
        let mut dk = vec![0f32; b * h * ks];
        let mut dv = vec![0f32; b * h * ks];
        with_f32(q, |q| {
            with_f32(k, |k| {
                with_f32(v, |v| {
                    with_f32(grad, |g| {
                        dq.par_chunks_mut(qs)
                            .zip(dk.par_chunks_mut(ks).zip(dv.par_chunks_mut(ks)))
                            .enumerate()
                            .for_each_init(
                                || (vec![0f32; tq * tk], vec![0f32; tk]),
                                |(p, ds), (pair, (dq, (dk, dv)))| {
                                    let (qp, kp, vp) =
                                        (&q[pair * qs..][..qs], &k[pair * ks..][..ks], &v[pair * ks..][..ks]);
                                    let gp = &g[pair * qs..][..qs];
                                    self.probs(d, pair, qp, kp, p);
                                    for i in 0..tq {
                                        let gi = &gp[i * dh..(i + 1) * dh];
                                        // dP'_ij = g_i . v_j; dV_j += P'_ij g_i
                                        let mut row_dot = 0f32;
                                        for j in 0..tk {
                                            let pij = p[i * tk + j];
                                            if pij == 0.0 {
                                                // a masked key: no gradient to or through it
                                                ds[j] = 0.0;
                                                continue;
                                            }
                                            let m = self.keep_scale(d, pair, i, j);
                                            if m != 0.0 {
                                                axpy(&mut dv[j * dh..(j + 1) * dh], pij * m, gi);
                                            }
                                            let dp = dot(gi, &vp[j * dh..(j + 1) * dh]) * m;
                                            ds[j] = dp;
                                            row_dot += dp * pij;
                                        }
                                        // dS_ij = P_ij (dP_ij - sum_j dP_ij P_ij) * scale
                                        let qi = &qp[i * dh..(i + 1) * dh];
                                        let dqi = &mut dq[i * dh..(i + 1) * dh];
                                        for j in 0..tk {
                                            let dsij = p[i * tk + j] * (ds[j] - row_dot) * self.scale;
                                            if dsij != 0.0 {
                                                axpy(dqi, dsij, &kp[j * dh..(j + 1) * dh]);
                                                axpy(&mut dk[j * dh..(j + 1) * dh], dsij, qi);
                                            }
                                        }
                                    }
                                },
                            );
                    })
                })
            })
        })????;
        let dev = q.device();
        Ok((
            Some(Tensor::from_vec(dq, q.shape(), dev)?),
            Some(Tensor::from_vec(dk, k.shape(), dev)?),
            Some(Tensor::from_vec(dv, v.shape(), dev)?),
        ))
    }
}

/// Attention for CPU f32 q: [b, h, tq, dh], k, v: [b, h, tk, dh] -> [b, h, tq, dh].
///
/// `bias` broadcasts to [b, 1, tq, tk], or to [b, h, tq, tk] when it has a head axis (T5's
/// position bias; no gradient flows into the bias). `dropout`: (p, seed) on the probabilities,
/// in training.
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    bias: Option<&Tensor>,
    scale: f64,
    dropout: Option<(f32, u64)>,
) -> Result<Tensor> {
    let (b, h, tq, _) = q.dims4()?;
    let tk = k.dim(2)?;
    let bias_heads = match bias {
        Some(bias) if bias.rank() == 4 && bias.dim(1)? > 1 => h,
        _ => 1,
    };
    let bias = match bias {
        None => None,
        Some(bias) => {
            let full = bias.broadcast_as((b, bias_heads, tq, tk))?.contiguous()?;
            Some(std::sync::Arc::new(full.flatten_all()?.to_vec1::<f32>()?))
        }
    };
    let dropout = dropout.map(|(p, seed)| DropoutMask::new(p, seed));
    let op = Attention { bias, bias_heads, scale: scale as f32, dropout };
    q.contiguous()?.apply_op3(&k.contiguous()?, &v.contiguous()?, op)
}
