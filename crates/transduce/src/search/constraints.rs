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

/// Disallows padding, repeated n-grams and an early EOS (`-inf`; `step` counts the tokens
/// after the tags); if nothing is left, EOS.
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
