//! Choosing among the next tokens: the log-softmax of a row of logits and the top-n selection,
//! fused so that beam search reads the logits twice and copies nothing in the common case
//! (only padding and an early EOS banned); every other case goes through the constraints of
//! [`super::constraints::next_token_logp`] first. Both paths give the same bits.

use rayon::prelude::*;

use super::constraints::{next_token_logp, SearchTokens};
use super::options::{DecodeOptions, Target};
use crate::kernels::cpu::{max_of, max_of_except, sum_exp, sum_exp_except};

/// `row - log(sum(exp(row)))` in place (max and sums in 16 lanes, as the fused path).
pub(crate) fn log_softmax_in_place(row: &mut [f32]) {
    let lse = log_sum_exp(row);
    row.iter_mut().for_each(|x| *x -= lse);
}

fn log_sum_exp(row: &[f32]) -> f32 {
    let max = max_of(row);
    max + sum_exp(row, max).ln()
}

/// The `n` most probable next tokens of a hypothesis holding `history`, as (log-probability,
/// token), best first, ties to the lower id: exactly [`next_token_logp`] followed by [`top`],
/// but in two passes over the logits and no copy when only padding and an early EOS can be
/// banned (the common case in beam search).
pub fn top_next_tokens(
    logits: &[f32],
    history: &[u32],
    target: &Target,
    opts: &DecodeOptions,
    tokens: SearchTokens,
    n: usize,
) -> Vec<(f32, u32)> {
    let step = history.len();
    let simple = opts.repetition_penalty == 1.0
        && opts.no_repeat_ngram == 0
        && step >= target.prefix.len()
        && step < target.max_len;
    let pad = tokens.pad.filter(|&p| p != tokens.eos).map(|p| p as usize);
    let early_eos = (step < opts.min_len + target.tags).then_some(tokens.eos as usize);
    let banned = |t: usize| Some(t) == pad || Some(t) == early_eos;
    let full_then_top = || {
        let mut row = vec![0f32; logits.len()];
        next_token_logp(logits, history, target, opts, tokens, &mut row);
        top(&row, n)
    };
    if !simple || logits.len() <= 2 {
        return full_then_top();
    }
    // exactly what log_softmax_in_place computes: CTranslate2 normalises over the allowed
    // tokens only (banned ones read as -inf), the others over all
    let before: Vec<usize> = match opts.bans_before_softmax() {
        true => [pad, early_eos].into_iter().flatten().collect(),
        false => Vec::new(),
    };
    let max = max_of_except(logits, &before);
    let lse = max + sum_exp_except(logits, max, &before).ln();
    if !lse.is_finite() {
        return full_then_top();
    }
    // a banned token's -inf never passes the selection's floor
    let mut best = Best::new(n);
    const CHUNK: usize = 16;
    for (c, chunk) in logits.chunks(CHUNK).enumerate() {
        // the selection's own test, on a whole chunk at once (vectorised): most add nothing
        let floor = best.floor;
        if !chunk.iter().fold(false, |any, &x| any | (x - lse > floor)) {
            continue;
        }
        for (j, &x) in chunk.iter().enumerate() {
            let t = c * CHUNK + j;
            best.offer(t, if banned(t) { f32::NEG_INFINITY } else { x - lse });
        }
    }
    best.into_vec()
}

/// [`top_next_tokens`] for every row: `rows[i] = (history, target)` of row `i`, or `None`
/// for a row no hypothesis reads (the first step of a beam), which gets nothing.
pub fn rows_top(
    logits: &[f32],
    rows: &[Option<(&[u32], &Target)>],
    opts: &DecodeOptions,
    tokens: SearchTokens,
    n: usize,
) -> Vec<Vec<(f32, u32)>> {
    let v = logits.len() / rows.len().max(1);
    let work = |(i, row): (usize, &[f32])| match rows[i] {
        Some((history, target)) => top_next_tokens(row, history, target, opts, tokens, n),
        None => Vec::new(),
    };
    if logits.len() >= 1 << 16 {
        logits.par_chunks(v.max(1)).enumerate().map(work).collect()
    } else {
        logits.chunks(v.max(1)).enumerate().map(work).collect()
    }
}

/// The `n` largest finite entries of `row` as (value, index), largest first, ties to the
/// lower index.
pub fn top(row: &[f32], n: usize) -> Vec<(f32, u32)> {
    let mut best = Best::new(n);
    row.iter().enumerate().for_each(|(t, &v)| best.offer(t, v));
    best.into_vec()
}

/// The `n` highest values offered, best first, ties to the earlier offer.
struct Best {
    held: Vec<(f32, u32)>,
    n: usize,
    /// Nothing at or below this enters: -inf never, and once n are held, nothing above the
    /// n-th.
    floor: f32,
}

impl Best {
    fn new(n: usize) -> Self {
        Best { held: Vec::with_capacity(n + 1), n, floor: f32::NEG_INFINITY }
    }

    #[inline]
    fn offer(&mut self, t: usize, v: f32) {
        if v <= self.floor || self.n == 0 {
            return;
        }
        let at = self.held.partition_point(|b| b.0 >= v);
        self.held.insert(at, (v, t as u32));
        self.held.truncate(self.n);
        if self.held.len() == self.n {
            self.floor = self.held[self.n - 1].0;
        }
    }

    fn into_vec(self) -> Vec<(f32, u32)> {
        self.held
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::{BeamOptions, BeamRule, Strategy};

    #[test]
    fn top_next_tokens_equals_full_log_probabilities_then_top() {
        let logits: Vec<f32> = (0..40).map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.37).collect();
        let tokens = SearchTokens { eos: 2, pad: Some(39) };
        let beam = |rule| Strategy::Beam(BeamOptions { rule, ..BeamOptions::default() });
        let strategies = [beam(BeamRule::Exact), beam(BeamRule::HuggingFace), beam(BeamRule::CTranslate2)];
        let histories: [&[u32]; 4] = [&[], &[5], &[5, 7, 5], &[5, 7, 5, 7]];
        for strategy in strategies {
            for (min_len, ngram, penalty) in [(0, 0, 1.0), (2, 0, 1.0), (0, 2, 1.0), (0, 0, 1.5)] {
                let opts = DecodeOptions {
                    strategy,
                    min_len,
                    no_repeat_ngram: ngram,
                    repetition_penalty: penalty,
                    ..DecodeOptions::default()
                };
                for history in histories {
                    for (prefix, max_len) in [(&[][..], 10), (&[5, 7, 9][..], 10), (&[][..], 3)] {
                        let target = Target::new(max_len, prefix);
                        let mut row = vec![0f32; logits.len()];
                        next_token_logp(&logits, history, &target, &opts, tokens, &mut row);
                        for n in [1, 4, 8] {
                            let fast = top_next_tokens(&logits, history, &target, &opts, tokens, n);
                            assert_eq!(fast, top(&row, n), "{strategy:?} {history:?} {prefix:?} {max_len} n {n}");
                        }
                    }
                }
            }
        }
    }
}
