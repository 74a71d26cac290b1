//! Validation during training: teacher-forced loss and perplexity, and greedy BLEU and chrF.

use candle_core::{DType, Device};
use serde::Serialize;

use super::loss::label_smoothed_cross_entropy;
use crate::data::Batch;
use crate::error::Result;
use crate::eval::{Bleu, Chrf};
use crate::model::{Ctx, TrainableModel};
use crate::search::{greedy_search, DecodeOptions, EncodedBatch, Target};
use crate::text::languages::Tags;
use crate::text::Tokenizers;

/// Validation figures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Validation {
    pub loss: f64,
    pub perplexity: f64,
    pub bleu: f64,
    pub chrf: f64,
}

/// Validation pairs (sources, targets) and the language tokens leading each side.
pub type ValidationSet = (Vec<String>, Vec<String>, Tags);

/// Teacher-forced loss and greedy BLEU/chrF on the validation set (a multilingual model's
/// target language token forced first, and left out of the scored text).
pub fn validate(model: &TrainableModel, tok: &Tokenizers, valid: &ValidationSet) -> Result<Validation> {
    let tags = &valid.2;
    let device = Device::Cpu;
    let special = model.model.config.special;
    let mut decoder = model.model.clone();
    decoder.prepare_inference()?;
    let tagged = |tags: &[u32], ids: Vec<u32>| tags.iter().copied().chain(ids).collect::<Vec<u32>>();
    let sources: Vec<Vec<u32>> =
        valid.0.iter().map(|s| Ok(tagged(&tags.source, tok.source.encode(s)?))).collect::<Result<_>>()?;
    let targets: Vec<Vec<u32>> =
        valid.1.iter().map(|s| Ok(tagged(&tags.target, tok.target.encode(s)?))).collect::<Result<_>>()?;
    let max = model.model.config.max_positions - 2;
    let clip = |v: &Vec<u32>| v[..v.len().min(max)].to_vec();
    let (sources, targets): (Vec<_>, Vec<_>) = (sources.iter().map(clip).collect(), targets.iter().map(clip).collect());
    let mut order: Vec<usize> = (0..sources.len()).collect();
    order.sort_by_key(|&i| sources[i].len());
    let mut hyps = vec![String::new(); sources.len()];
    let (mut nll_sum, mut tokens) = (0.0, 0usize);
    let ctx = Ctx::eval();
    for chunk in order.chunks(64) {
        let pairs: Vec<(&[u32], &[u32])> = chunk.iter().map(|&i| (&sources[i][..], &targets[i][..])).collect();
        let batch = Batch::new(&pairs, chunk.to_vec(), special, &device)?;
        let (logits, targets) = model.model.forward_targets(
            &batch.src,
            &batch.src_mask,
            &batch.tgt_in,
            &batch.tgt_out,
            special.pad,
            &ctx,
        )?;
        let out = label_smoothed_cross_entropy(&logits, &targets, special.pad, 0.0, ctx.kernels)?;
        nll_sum += out.nll.to_dtype(DType::F64)?.to_scalar::<f64>()? * out.ntokens as f64;
        tokens += out.ntokens;
        let memory = decoder.encode(&batch.src, &batch.src_mask)?;
        let longest = chunk.iter().map(|&i| sources[i].len()).max().unwrap_or(0);
        let max_len = 2 * longest + 10 + tags.target.len();
        let step = EncodedBatch::new(&decoder, &memory);
        let wanted: Vec<Target> =
            (0..chunk.len()).map(|_| Target { max_len, prefix: &tags.target, tags: tags.target.len() }).collect();
        for (&i, hyp) in chunk.iter().zip(greedy_search(&step, &wanted, &DecodeOptions::greedy(max_len))?) {
            hyps[i] = tok.target.decode(&hyp.tokens[tags.target.len().min(hyp.tokens.len())..])?;
        }
    }
    let loss = nll_sum / tokens.max(1) as f64;
    let hyps: Vec<&str> = hyps.iter().map(String::as_str).collect();
    let refs = vec![valid.1.iter().map(String::as_str).collect::<Vec<_>>()];
    Ok(Validation {
        loss,
        perplexity: loss.exp(),
        bleu: Bleu::default().corpus_score(&hyps, &refs).score,
        chrf: Chrf::default().corpus_score(&hyps, &refs).score,
    })
}
