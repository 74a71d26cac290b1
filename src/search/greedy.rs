//! Greedy decoding: the most probable allowed token at each step, per sentence until EOS.

use candle_core::Result;

use super::constraints::rows_logp;
use super::hypothesis::{check, limits, Hypothesis, LiveSentences, Partial};
use super::options::{DecodeOptions, Target};
use super::step::{EncodedBatch, StepModel};
use crate::model::{Memory, Seq2Seq};

/// Decodes every sentence of `model` greedily under `opts`' constraints (its strategy is not
/// consulted). Finished sentences leave the batch. Returns one hypothesis per sentence.
pub fn greedy_search<M: StepModel>(model: &M, targets: &[Target], opts: &DecodeOptions) -> Result<Vec<Hypothesis>> {
    check(model, targets)?;
    let targets = limits(model, targets);
    let eos = model.eos();
    let mut state = model.start(1)?;
    let mut live = LiveSentences::new(targets.len());
    let mut partial = vec![Partial::default(); targets.len()];
    let mut out = vec![Hypothesis::default(); targets.len()];
    let mut finished = vec![false; targets.len()];
    let mut last = vec![model.start_token(); targets.len()];
    while !live.is_empty() {
        let step = model.step(&last, &mut state, opts.alignment)?;
        let rows: Vec<(&[u32], &Target)> =
            live.sentences.iter().map(|&s| (&partial[s].tokens[..], &targets[s])).collect();
        let logp = rows_logp(&step.logits, &rows, opts, eos);
        let v = model.vocab();
        for (pos, &s) in live.sentences.iter().enumerate() {
            let row = &logp[pos * v..(pos + 1) * v];
            let (token, lp) =
                row.iter()
                    .enumerate()
                    .fold((eos, f32::NEG_INFINITY), |best, (t, &lp)| if lp > best.1 { (t as u32, lp) } else { best });
            partial[s] = partial[s].extend(token, lp, &step, pos, eos);
            if token == eos {
                finished[s] = true;
                let p = std::mem::take(&mut partial[s]);
                let score = p.logp;
                out[s] = p.finish(score);
            } else {
                last[pos] = token;
            }
        }
        let kept = live.retain(model, &mut state, |s| !finished[s])?;
        last = kept.iter().map(|&p| last[p]).collect();
    }
    Ok(out)
}

/// Greedy token ids for every sentence of `memory`, at most `max_len` each: the plain case.
pub fn greedy(model: &Seq2Seq, memory: &Memory, max_len: usize) -> Result<Vec<Vec<u32>>> {
    let step = EncodedBatch { model, memory };
    let targets = Target::unconstrained(step.sources(), max_len);
    Ok(greedy_search(&step, &targets, &DecodeOptions::greedy(max_len))?.into_iter().map(|h| h.tokens).collect())
}
