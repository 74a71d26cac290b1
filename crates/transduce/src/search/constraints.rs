//! Turning one row of logits into the log-probabilities a search may choose from: repetition
//! penalty, log-softmax, then the bans (n-gram repeats, early EOS) and the forcing (target
//! prefix, EOS at the length limit).

use rayon::prelude::*;

use super::options::{DecodeOptions, Target};
use super::select::log_softmax_in_place;

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
        ban(out, history, opts, tokens, step - target.tags.min(step));
    }
    log_softmax_in_place(out);
    if let Some(&forced) = target.prefix.get(step) {
        force(out, forced);
        if step < target.tags {
            out[forced as usize] = 0.0;
        }
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
        ban(out, history, opts, tokens, step - target.tags.min(step));
    }
}

/// What decides the most probable next token of a hypothesis besides the logits, as
/// [`next_token_logp`] followed by [`most_probable`] decide it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextToken {
    /// The target prefix or the length limit: this token, whatever the logits.
    Forced(u32),
    /// The token of the largest logit among all but these (padding, repeated n-grams, an
    /// early EOS; EOS if all are banned) — when no other allowed logit is so close that the
    /// log-softmax rounds the two alike (see [`crate::kernels::largest::Largest::At`]).
    AllBut(Vec<u32>),
    /// A repetition penalty changes the logits first: only the full log-probabilities tell.
    FromLogProbabilities,
}

/// [`NextToken`] for a hypothesis holding `history` (the same cases as [`next_token_logp`]).
pub fn next_token(history: &[u32], target: &Target, opts: &DecodeOptions, tokens: SearchTokens) -> NextToken {
    let step = history.len();
    if let Some(&forced) = target.prefix.get(step) {
        return NextToken::Forced(forced);
    }
    if step >= target.max_len {
        return NextToken::Forced(tokens.eos);
    }
    if opts.repetition_penalty != 1.0 {
        return NextToken::FromLogProbabilities;
    }
    let mut banned = Vec::new();
    banned_tokens(history, opts, tokens, step - target.tags.min(step), |t| banned.push(t));
    NextToken::AllBut(banned)
}

/// The most probable allowed token of a row of log-probabilities (`-inf` for banned ones; the
/// lowest id among equals; EOS if none is finite): greedy search's choice.
pub fn most_probable(row: &[f32], eos: u32) -> u32 {
    row.iter()
        .enumerate()
        .fold((eos, f32::NEG_INFINITY), |best, (t, &lp)| if lp > best.1 { (t as u32, lp) } else { best })
        .0
}

/// Disallows padding, repeated n-grams and an early EOS (`-inf`; `step` counts the tokens
/// after the tags); if nothing is left, EOS.
fn ban(out: &mut [f32], history: &[u32], opts: &DecodeOptions, tokens: SearchTokens, step: usize) {
    let eos = tokens.eos;
    banned_tokens(history, opts, tokens, step, |t| out[t as usize] = f32::NEG_INFINITY);
    if out.iter().all(|x| *x == f32::NEG_INFINITY) {
        out[eos as usize] = 0.0;
    }
}

/// Calls `ban` with each token [`ban`] disallows (some perhaps twice).
fn banned_tokens(history: &[u32], opts: &DecodeOptions, tokens: SearchTokens, step: usize, mut ban: impl FnMut(u32)) {
    let eos = tokens.eos;
    if let Some(pad) = tokens.pad.filter(|&p| p != eos) {
        ban(pad);
    }
    let n = opts.no_repeat_ngram;
    if n > 0 && history.len() >= n {
        let suffix = &history[history.len() + 1 - n..];
        for start in 0..=history.len() - n {
            if history[start..start + n - 1] == *suffix {
                ban(history[start + n - 1]);
            }
        }
    }
    if step < opts.min_len {
        ban(eos);
    }
}

/// Leaves `token` as the only choice, keeping its log-probability (finite even if the model
/// gives it none, so a forced hypothesis keeps a usable score).
fn force(out: &mut [f32], token: u32) {
    let keep = out[token as usize].max(-1e9);
    out.fill(f32::NEG_INFINITY);
    out[token as usize] = keep;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn run(history: &[u32], prefix: &[u32], max_len: usize, opts: DecodeOptions) -> Vec<f32> {
        let logits = [0.0f32, 1.0, 2.0, -1.0, 0.5];
        let mut out = vec![0.0; 5];
        next_token_logp(
            &logits,
            history,
            &Target::new(max_len, prefix),
            &opts,
            SearchTokens { eos: 2, pad: None },
            &mut out,
        );
        out
    }

    #[test]
    fn next_token_names_what_greedy_search_picks_from_the_log_probabilities() {
        // distinct logits, so that the largest allowed one is unambiguous
        let logits: Vec<f32> = (0..12).map(|i| ((i * 7 % 12) as f32 - 5.0) * 0.9).collect();
        let tokens = SearchTokens { eos: 2, pad: Some(9) };
        let histories: [&[u32]; 4] = [&[], &[5], &[5, 1, 5], &[1, 1, 1, 1]];
        for (min_len, ngram, penalty) in [(0, 0, 1.0), (3, 0, 1.0), (0, 2, 1.0), (0, 1, 1.0), (0, 0, 1.5)] {
            let opts = DecodeOptions {
                min_len,
                no_repeat_ngram: ngram,
                repetition_penalty: penalty,
                ..DecodeOptions::default()
            };
            for history in histories {
                for (prefix, max_len, tags) in [(&[][..], 10, 0), (&[7, 3, 8][..], 10, 1), (&[][..], 2, 0)] {
                    let target = Target { max_len, prefix, tags };
                    let mut row = vec![0f32; logits.len()];
                    next_token_logp(&logits, history, &target, &opts, tokens, &mut row);
                    let picked = most_probable(&row, tokens.eos);
                    let case = format!("{opts:?} {history:?} {prefix:?} {max_len}");
                    match next_token(history, &target, &opts, tokens) {
                        NextToken::Forced(t) => assert_eq!(t, picked, "{case}"),
                        NextToken::AllBut(banned) => {
                            let allowed = (0..logits.len() as u32).filter(|t| !banned.contains(t));
                            let best = allowed.fold(None, |b: Option<u32>, t| match b {
                                Some(b) if logits[b as usize] >= logits[t as usize] => Some(b),
                                _ => Some(t),
                            });
                            assert_eq!(best.unwrap_or(tokens.eos), picked, "{case}");
                        }
                        NextToken::FromLogProbabilities => assert_ne!(penalty, 1.0, "{case}"),
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
