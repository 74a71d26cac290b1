//! Greedy decoding: the most probable allowed token at each step, per sentence until EOS.

use candle_core::Result;

use super::decoding::decode_all;
use super::hypothesis::Hypothesis;
use super::options::{DecodeOptions, Strategy, Target};
use super::step::{EncodedBatch, StepModel};
use crate::model::{Memory, Seq2Seq};

/// Decodes every sentence of `model` greedily under `opts`' constraints (its strategy is not
/// consulted). Finished sentences leave the batch. Returns one hypothesis per sentence.
pub fn greedy_search<M: StepModel>(model: &M, targets: &[Target], opts: &DecodeOptions) -> Result<Vec<Hypothesis>> {
    let opts = DecodeOptions { strategy: Strategy::Greedy, ..*opts };
    let out = decode_all(model, targets, &vec![0; targets.len()], &opts)?;
    Ok(out.into_iter().map(|mut h| h.remove(0)).collect())
}

/// Greedy token ids for every sentence of `memory`, at most `max_len` each: the plain case.
pub fn greedy(model: &Seq2Seq, memory: &Memory, max_len: usize) -> Result<Vec<Vec<u32>>> {
    let step = EncodedBatch::new(model, memory);
    let targets = Target::unconstrained(step.sources(), max_len);
    Ok(greedy_search(&step, &targets, &DecodeOptions::greedy(max_len))?.into_iter().map(|h| h.tokens).collect())
}
