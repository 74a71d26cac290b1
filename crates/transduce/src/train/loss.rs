//! Label-smoothed cross-entropy over target tokens, ignoring padding.

use candle_core::{DType, Result, Tensor, D};

use crate::kernels::cross_entropy::smoothed_cross_entropy_rows;
use crate::kernels::paired_kl::paired_kl_rows;
use crate::kernels::{log_softmax_last_dim, Kernels};

/// Loss of one batch.
#[derive(Debug, Clone)]
pub struct LossOutput {
    /// Scalar: smoothed loss summed over non-padding tokens, divided by their number.
    pub loss: Tensor,
    /// Scalar: plain negative log-likelihood per non-padding token (for perplexity).
    pub nll: Tensor,
    pub ntokens: usize,
}

/// logits: [b, t, V], targets: [b, t] u32 (or [n, V] and \[n\]: the positions
/// [`crate::model::Seq2Seq::forward_targets`] kept); positions whose target is `pad` are ignored.
///
/// Per token: `(1 - eps) * -log p(y) + eps * mean_v(-log p(v))` (the uniform prior over the
/// whole vocabulary, as fairseq's `label_smoothed_cross_entropy` with `eps / V` per class).
pub fn label_smoothed_cross_entropy(
    logits: &Tensor,
    targets: &Tensor,
    pad: u32,
    eps: f64,
    kernels: Kernels,
) -> Result<LossOutput> {
    let v = logits.dim(D::Minus1)?;
    let n = targets.elem_count();
    if kernels.fused_for(logits) {
        let targets = targets.flatten_all()?;
        let ntokens = targets.to_vec1::<u32>()?.iter().filter(|&&t| t != pad).count();
        let denom = ntokens.max(1) as f64;
        let rows = smoothed_cross_entropy_rows(&logits.reshape((n, v))?, &targets, pad, eps)?;
        let loss = (rows.narrow(1, 0, 1)?.sum_all()? / denom)?;
        let nll = (rows.narrow(1, 1, 1)?.sum_all()? / denom)?.detach();
        return Ok(LossOutput { loss, nll, ntokens });
    }
    let logp = log_softmax_last_dim(&logits.reshape((n, v))?)?;
    let targets = targets.flatten_all()?;
    let mask = targets.ne(pad)?.to_dtype(logp.dtype())?;
    let ntokens = mask.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()? as usize;
    let denom = ntokens.max(1) as f64;
    let nll = logp.gather(&targets.unsqueeze(1)?, 1)?.squeeze(1)?.neg()?;
    let nll_sum = (&nll * &mask)?.sum_all()?;
    let loss = if eps > 0.0 {
        let smooth = (logp.mean(1)?.neg()? * &mask)?.sum_all()?;
        ((&nll_sum * (1.0 - eps))? + (smooth * eps)?)?
    } else {
        nll_sum.clone()
    };
    Ok(LossOutput { loss: (loss / denom)?, nll: (nll_sum / denom)?.detach(), ntokens })
}

/// R-Drop's consistency term (Liang et al., 2021): logits [2b, t, V] of a batch run twice
/// (rows `i` and `b + i` are one sentence under two dropout masks; or [2n, V], positions `i`
/// and `n + i`), targets [b, t] (or \[n\]) u32 of one copy -> scalar: `½ (KL(p‖q) + KL(q‖p))` per non-padding target token, averaged over them.
pub fn paired_kl_divergence(logits: &Tensor, targets: &Tensor, pad: u32, kernels: Kernels) -> Result<Tensor> {
    let v = logits.dim(D::Minus1)?;
    let n = targets.elem_count();
    let targets = targets.flatten_all()?;
    let logits = logits.reshape((2 * n, v))?;
    let ntokens = targets.to_vec1::<u32>()?.iter().filter(|&&t| t != pad).count();
    let rows = if kernels.fused_for(&logits) {
        paired_kl_rows(&logits, &targets, pad)?
    } else {
        let logp = log_softmax_last_dim(&logits)?;
        let (lp, lq) = (logp.narrow(0, 0, n)?, logp.narrow(0, n, n)?);
        let mask = targets.ne(pad)?.to_dtype(logp.dtype())?;
        let symmetric = ((lp.exp()? - lq.exp()?)? * (&lp - &lq)?)?.sum(1)?;
        ((symmetric * 0.5)? * mask)?
    };
    rows.sum_all()? / ntokens.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn matches_hand_computed_values_and_ignores_padding() {
        let dev = Device::Cpu;
        let logits = Tensor::new(&[[[2.0f64, 0.0, 1.0], [0.5, 0.5, 3.0]]], &dev).unwrap();
        let targets = Tensor::new(&[[0u32, 0]], &dev).unwrap(); // second position is padding (pad = 0)
                                                                // With pad = 0 the first position is ignored too; use pad = 1 instead.
        let out = label_smoothed_cross_entropy(&logits, &targets, 1, 0.1, Kernels::Reference).unwrap();
        let lse = |r: [f64; 3]| r.iter().map(|x| x.exp()).sum::<f64>().ln();
        let r0 = [2.0, 0.0, 1.0];
        let r1 = [0.5, 0.5, 3.0];
        let tok = |r: [f64; 3], y: usize| {
            let l = lse(r);
            let nll = l - r[y];
            let smooth = r.iter().map(|x| l - x).sum::<f64>() / 3.0;
            (0.9 * nll + 0.1 * smooth, nll)
        };
        let (a, an) = tok(r0, 0);
        let (b, bn) = tok(r1, 0);
        assert_eq!(out.ntokens, 2);
        assert!((out.loss.to_scalar::<f64>().unwrap() - (a + b) / 2.0).abs() < 1e-12);
        assert!((out.nll.to_scalar::<f64>().unwrap() - (an + bn) / 2.0).abs() < 1e-12);

        let padded = Tensor::new(&[[0u32, 1]], &dev).unwrap();
        let out = label_smoothed_cross_entropy(&logits, &padded, 1, 0.1, Kernels::Reference).unwrap();
        assert_eq!(out.ntokens, 1);
        assert!((out.loss.to_scalar::<f64>().unwrap() - a).abs() < 1e-12);
    }
}
