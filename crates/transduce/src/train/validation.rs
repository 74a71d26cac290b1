//! Validation during training: teacher-forced loss and perplexity, and greedy BLEU and chrF.

use candle_core::{DType, Device};
use serde::Serialize;

use super::loss::label_smoothed_cross_entropy;
use crate::data::Batch;
use crate::error::Result;
use crate::eval::{Bleu, Chrf};
use crate::model::{Ctx, TrainableModel};
use crate::search::greedy;
use crate::text::Tokenizers;

/// Validation figures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Validation {
    pub loss: f64,
    pub perplexity: f64,
    pub bleu: f64,
    pub chrf: f64,
}

/// Teacher-forced loss and greedy BLEU/chrF on the validation set.
pub fn validate(model: &TrainableModel, tok: &Tokenizers, valid: &(Vec<String>, Vec<String>)) -> Result<Validation> {
    let device = Device::Cpu;
    let special = model.model.config.special;
    let mut decoder = model.model.clone();
    decoder.prepare_inference()?;
    let sources: Vec<Vec<u32>> = valid.0.iter().map(|s| tok.source.encode(s)).collect::<Result<_>>()?;
    let targets: Vec<Vec<u32>> = valid.1.iter().map(|s| tok.target.encode(s)).collect::<Result<_>>()?;
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
        let logits = model.model.forward(&batch.src, &batch.src_mask, &batch.tgt_in, &ctx)?;
        let out = label_smoothed_cross_entropy(&logits, &batch.tgt_out, special.pad, 0.0, ctx.kernels)?;
        nll_sum += out.nll.to_dtype(DType::F64)?.to_scalar::<f64>()? * out.ntokens as f64;
        tokens += out.ntokens;
        let memory = decoder.encode(&batch.src, &batch.src_mask)?;
        let longest = chunk.iter().map(|&i| sources[i].len()).max().unwrap_or(0);
        for (&i, ids) in chunk.iter().zip(greedy(&decoder, &memory, 2 * longest + 10)?) {
            hyps[i] = tok.target.decode(&ids)?;
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
