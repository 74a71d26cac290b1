//! A training/decoding batch: the batch owns padding, target shifting and masks.

use candle_core::{Device, Result, Tensor};

use crate::model::config::SpecialIds;

/// Padded token tensors for a list of (source, target) examples.
#[derive(Debug, Clone)]
pub struct Batch {
    /// [b, s] u32: source tokens followed by `eos`, right-padded with `pad`.
    pub src: Tensor,
    /// [b, s] u8: 1 for tokens, 0 for padding.
    pub src_mask: Tensor,
    /// [b, t] u32: `decoder_start` followed by the target (teacher forcing input).
    pub tgt_in: Tensor,
    /// [b, t] u32: the target followed by `eos`; padding is `pad` (ignored by the loss).
    pub tgt_out: Tensor,
    /// Number of non-padding target tokens.
    pub ntokens: usize,
    /// Position of each row's example in its corpus, to restore input order.
    pub index: Vec<usize>,
}

/// Pads `seqs` to one length with `pad` -> ([b, len] u32, [b, len] u8 mask).
pub fn pad_sequences(seqs: &[Vec<u32>], pad: u32, device: &Device) -> Result<(Tensor, Tensor)> {
    let b = seqs.len();
    let len = seqs.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let mut ids = vec![pad; b * len];
    let mut mask = vec![0u8; b * len];
    for (row, seq) in seqs.iter().enumerate() {
        ids[row * len..row * len + seq.len()].copy_from_slice(seq);
        mask[row * len..row * len + seq.len()].fill(1);
    }
    Ok((Tensor::from_vec(ids, (b, len), device)?, Tensor::from_vec(mask, (b, len), device)?))
}

impl Batch {
    /// Source ids (without `eos`) for a decoding-only batch -> (src, src_mask).
    pub fn sources(sources: &[&[u32]], special: SpecialIds, device: &Device) -> Result<(Tensor, Tensor)> {
        let src: Vec<Vec<u32>> =
            sources.iter().map(|s| s.iter().copied().chain(std::iter::once(special.eos)).collect()).collect();
        pad_sequences(&src, special.pad, device)
    }

    /// Builds a batch from (source, target) id sequences without special tokens.
    pub fn new(pairs: &[(&[u32], &[u32])], index: Vec<usize>, special: SpecialIds, device: &Device) -> Result<Self> {
        let sources: Vec<&[u32]> = pairs.iter().map(|p| p.0).collect();
        let (src, src_mask) = Self::sources(&sources, special, device)?;
        let tgt_in: Vec<Vec<u32>> =
            pairs.iter().map(|p| std::iter::once(special.decoder_start).chain(p.1.iter().copied()).collect()).collect();
        let tgt_out: Vec<Vec<u32>> =
            pairs.iter().map(|p| p.1.iter().copied().chain(std::iter::once(special.eos)).collect()).collect();
        let ntokens = tgt_out.iter().map(Vec::len).sum();
        let (tgt_in, _) = pad_sequences(&tgt_in, special.pad, device)?;
        let (tgt_out, _) = pad_sequences(&tgt_out, special.pad, device)?;
        Ok(Batch { src, src_mask, tgt_in, tgt_out, ntokens, index })
    }

    pub fn size(&self) -> usize {
        self.index.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_shifts_targets_and_pads() {
        let special = SpecialIds { pad: 0, bos: 1, eos: 2, unk: 3, decoder_start: 1 };
        let pairs: Vec<(&[u32], &[u32])> = vec![(&[5, 6, 7], &[8, 9]), (&[5], &[8, 9, 10])];
        let b = Batch::new(&pairs, vec![0, 1], special, &Device::Cpu).unwrap();
        assert_eq!(b.src.to_vec2::<u32>().unwrap(), vec![vec![5, 6, 7, 2], vec![5, 2, 0, 0]]);
        assert_eq!(b.src_mask.to_vec2::<u8>().unwrap(), vec![vec![1, 1, 1, 1], vec![1, 1, 0, 0]]);
        assert_eq!(b.tgt_in.to_vec2::<u32>().unwrap(), vec![vec![1, 8, 9, 0], vec![1, 8, 9, 10]]);
        assert_eq!(b.tgt_out.to_vec2::<u32>().unwrap(), vec![vec![8, 9, 2, 0], vec![8, 9, 10, 2]]);
        assert_eq!(b.ntokens, 7);
    }
}
