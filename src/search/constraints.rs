//! Turning one row of logits into the log-probabilities a search may choose from: repetition
//! penalty, log-softmax, then the bans (n-gram repeats, early EOS) and the forcing (target
//! prefix, EOS at the length limit).

use rayon::prelude::*;

use super::options::{DecodeOptions, Target};
use crate::kernels::cpu::{max_of, max_of_except, sum_exp, sum_exp_except};

/// Tokens with a fixed role in the search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchTokens {
    pub eos: u32,
    /// Never generated (OPUS-MT's `bad_words_ids = [[pad]]`).
    pub pad: Option<u32>,
}

/// Log-probabilities for the next token of a hypothesis holding `history`, written to `out`
/// (same length as `logits`). Disallowed tokens get `-inf`.
pub fn next_token_logp(
    logits: &[f32],
    history: &[u32],
    target: &Target,
    opts: &DecodeOptions,
    tokens: SearchTokens,
    out: &mut [f32],
) {
    let eos = tokens.eos;
    out.copy_from_slice(logits);
    if opts.repetition_penalty != 1.0 {
        // once per distinct token, however often it occurs
        let mut seen = history.to_vec();
        seen.sort_unstable();
        seen.dedup();
        for t in seen {
            let x = &mut out[t as usize];
            *x = if *x > 0.0 { *x / opts.repetition_penalty } else { *x * opts.repetition_penalty };
        }
    }
    let step = history.len();
    let unforced = step >= target.prefix.len() && step < target.max_len;
    // CTranslate2 takes disabled tokens out of the distribution; the others (Hugging Face,
    // Marian) give them -inf after normalising
    let renormalize = unforced && opts.bans_before_softmax();
    if renormalize {
        ban(out, history, opts, tokens, step);
    }
    log_softmax_in_place(out);
    if let Some(&forced) = target.prefix.get(step) {
        force(out, forced);
        return;
    }
    if step >= target.max_len {
        force(out, eos);
        if opts.forced_eos_is_free() {
            out[eos as usize] = 0.0;
        }
        return;
    }
    if !renormalize {
        ban(out, history, opts, tokens, step);
    }
}

/// Disallows padding, repeated n-grams and an early EOS (`-inf`); if nothing is left, EOS.
fn ban(out: &mut [f32], history: &[u32], opts: &DecodeOptions, tokens: SearchTokens, step: usize) {
    let eos = tokens.eos;
    if let Some(pad) = tokens.pad.filter(|&p| p != eos) {
        out[pad as usize] = f32::NEG_INFINITY;
    }
    let n = opts.no_repeat_ngram;
    if n > 0 && history.len() >= n {
        let suffix = &history[history.len() + 1 - n..];
        for start in 0..=history.len() - n {
            if history[start..start + n - 1] == *suffix {
                out[history[start + n - 1] as usize] = f32::NEG_INFINITY;
            }
        }
    }
    if step < opts.min_len {
        out[eos as usize] = f32::NEG_INFINITY;
    }
    if out.iter().all(|x| *x == f32::NEG_INFINITY) {
        out[eos as usize] = 0.0;
    }
}

/// Leaves `token` as the only choice, keeping its log-probability (finite even if the model
/// gives it none, so a forced hypothesis keeps a usable score).
fn force(out: &mut [f32], token: u32) {
    let keep = out[token as usize].max(-1e9);
    out.fill(f32::NEG_INFINITY);
    out[token as usize] = keep;
}

fn log_softmax_in_place(row: &mut [f32]) {
    let lse = log_sum_exp(row);
    row.iter_mut().for_each(|x| *x -= lse);
}

fn log_sum_exp(row: &[f32]) -> f32 {
    let max = max_of(row);
    max + sum_exp(row, max).ln()
}

/// [`next_token_logp`] for every row: `rows[i] = (history, target)` of row `i`.
pub fn rows_logp(logits: &[f32], rows: &[(&[u32], &Target)], opts: &DecodeOptions, tokens: SearchTokens) -> Vec<f32> {
    let v = logits.len() / rows.len().max(1);
    let mut out = vec![0f32; logits.len()];
    let work = |(i, row): (usize, &mut [f32])| {
        let (history, target) = rows[i];
        next_token_logp(&logits[i * v..(i + 1) * v], history, target, opts, tokens, row);
    };
    if logits.len() >= 1 << 16 {
        out.par_chunks_mut(v.max(1)).enumerate().for_each(work);
    } else {
        out.chunks_mut(v.max(1)).enumerate().for_each(work);
    }
    out
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
    let early_eos = (step < opts.min_len).then_some(tokens.eos as usize);
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

/// [`top_next_tokens`] for every row: `rows[i] = (history, target)` of row `i`.
pub fn rows_top(
    logits: &[f32],
    rows: &[(&[u32], &Target)],
    opts: &DecodeOptions,
    tokens: SearchTokens,
    n: usize,
) -> Vec<Vec<(f32, u32)>> {
    let v = logits.len() / rows.len().max(1);
    let work = |(i, row): (usize, &[f32])| {
        let (history, target) = rows[i];
        top_next_tokens(row, history, target, opts, tokens, n)
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

    fn run(history: &[u32], prefix: &[u32], max_len: usize, opts: DecodeOptions) -> Vec<f32> {
        let logits = [0.0f32, 1.0, 2.0, -1.0, 0.5];
        let mut out = vec![0.0; 5];
        next_token_logp(
            &logits,
            history,
            &Target { max_len, prefix },
            &opts,
            SearchTokens { eos: 2, pad: None },
            &mut out,
        );
        out
    }

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
                        let target = Target { max_len, prefix };
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

    #[test]
    fn log_probabilities_normalise() {
        let out = run(&[], &[], 10, DecodeOptions::default());
        let total: f32 = out.iter().map(|x| x.exp()).sum();
        assert!((total - 1.0).abs() < 1e-6);
        assert!(out[2] > out[1] && out[1] > out[4]);
    }

    #[test]
    fn prefix_and_length_limits_force_tokens() {
        let out = run(&[4], &[4, 3], 10, DecodeOptions::default());
        assert!(out[3].is_finite() && out.iter().enumerate().all(|(i, x)| i == 3 || x.is_infinite()));
        let out = run(&[4, 3], &[], 2, DecodeOptions::default());
        assert!(out[2].is_finite() && out.iter().enumerate().all(|(i, x)| i == 2 || x.is_infinite()));
        let out = run(&[4], &[], 10, DecodeOptions { min_len: 2, ..DecodeOptions::default() });
        assert!(out[2].is_infinite() && out[1].is_finite());
    }

    #[test]
    fn repeated_ngrams_are_banned() {
        // history 1 4 1: a bigram ban forbids 4 after 1 again
        let opts = DecodeOptions { no_repeat_ngram: 2, ..DecodeOptions::default() };
        let out = run(&[1, 4, 1], &[], 10, opts);
        assert!(out[4].is_infinite());
        assert!(out.iter().enumerate().all(|(i, x)| i == 4 || x.is_finite()));
        // trigram: 1 4 then 1 4 -> the next token may not be 1
        let opts = DecodeOptions { no_repeat_ngram: 3, ..DecodeOptions::default() };
        let out = run(&[1, 4, 1, 1, 4], &[], 10, opts);
        assert!(out[1].is_infinite() && out[4].is_finite());
    }

    #[test]
    fn repetition_penalty_lowers_used_tokens_once() {
        let plain = run(&[], &[], 10, DecodeOptions::default());
        let opts = DecodeOptions { repetition_penalty: 2.0, ..DecodeOptions::default() };
        let once = run(&[1], &[], 10, opts);
        let twice = run(&[1, 1], &[], 10, opts);
        assert!(once[1] < plain[1]);
        assert_eq!(once, twice, "a token is penalised once, however often it occurs");
        // logit 1.0 -> 0.5; logit -1.0 -> -2.0
        let both = run(&[1, 3], &[], 10, opts);
        assert!(((both[1] - both[0]) - 0.5).abs() < 1e-6);
        assert!(((both[3] - both[0]) - -2.0).abs() < 1e-6);
    }
}
