//! Finished outputs, and the hypotheses being extended.

use super::step::StepOutput;

/// A finished output.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Hypothesis {
    /// Tokens without EOS.
    pub tokens: Vec<u32>,
    /// Total log-probability (EOS included).
    pub logp: f32,
    /// The score used for ranking (length-penalised in beam search).
    pub score: f32,
    /// Log-probability of each token, EOS last.
    pub token_logp: Vec<f32>,
    /// Cross-attention of each token over the source positions (EOS last), when asked for.
    pub attention: Vec<Vec<f32>>,
}

/// A hypothesis being extended.
#[derive(Debug, Clone, Default)]
pub(crate) struct Partial {
    pub tokens: Vec<u32>,
    pub logp: f32,
    pub token_logp: Vec<f32>,
    pub attention: Vec<Vec<f32>>,
}

impl Partial {
    /// This hypothesis followed by `token` (log-probability `lp`) read from `row` of `out`.
    pub fn extend(&self, token: u32, lp: f32, out: &StepOutput, row: usize, eos: u32) -> Partial {
        let mut next = self.clone();
        if token != eos {
            next.tokens.push(token);
        }
        next.logp += lp;
        next.token_logp.push(lp);
        if let Some(a) = &out.attention {
            next.attention.push(a[row * out.source_len..(row + 1) * out.source_len].to_vec());
        }
        next
    }

    /// This hypothesis followed by `token`, without its log-probability (NaN from here on:
    /// [`super::Scores::Omit`]).
    pub fn extend_unscored(&self, token: u32, eos: u32) -> Partial {
        let mut next = self.clone();
        if token != eos {
            next.tokens.push(token);
        }
        next.logp = f32::NAN;
        next.token_logp.push(f32::NAN);
        next
    }

    pub fn finish(self, score: f32) -> Hypothesis {
        Hypothesis {
            tokens: self.tokens,
            logp: self.logp,
            score,
            token_logp: self.token_logp,
            attention: self.attention,
        }
    }
}
