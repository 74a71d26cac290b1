//! Finished outputs, and the bookkeeping every strategy shares: the rows still decoding.

use candle_core::Result;

use super::constraints::rows_logp;
use super::options::{DecodeOptions, Target};
use super::step::{StepModel, StepOutput};

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

/// The sentences of a batch still decoding: position in the model state -> sentence index.
pub(crate) struct LiveSentences {
    pub sentences: Vec<usize>,
}

impl LiveSentences {
    pub fn new(count: usize) -> Self {
        LiveSentences { sentences: (0..count).collect() }
    }

    /// Drops finished sentences from the state so that they cost nothing; `keep(i)` says
    /// whether sentence `i` still decodes. Returns the kept positions (old numbering).
    pub fn retain<M: StepModel>(
        &mut self,
        model: &M,
        state: &mut M::State,
        keep: impl Fn(usize) -> bool,
    ) -> Result<Vec<usize>> {
        let kept: Vec<usize> = (0..self.sentences.len()).filter(|&p| keep(self.sentences[p])).collect();
        if kept.len() < self.sentences.len() && !kept.is_empty() {
            let positions: Vec<u32> = kept.iter().map(|&p| p as u32).collect();
            model.retain(state, &positions)?;
        }
        self.sentences = kept.iter().map(|&p| self.sentences[p]).collect();
        Ok(kept)
    }

    pub fn is_empty(&self) -> bool {
        self.sentences.is_empty()
    }
}

/// Checks that there is one target per encoded sentence.
pub(crate) fn check<M: StepModel>(model: &M, targets: &[Target]) -> Result<()> {
    if targets.len() != model.sources() {
        candle_core::bail!("{} targets for {} encoded sentences", targets.len(), model.sources());
    }
    Ok(())
}

/// Each sentence's effective limits: at least its prefix, at most what the model can write.
pub(crate) fn limits<'a, M: StepModel>(model: &M, targets: &[Target<'a>]) -> Vec<Target<'a>> {
    targets
        .iter()
        .map(|t| {
            let max_len = t.max_len.max(t.prefix.len()).min(model.max_len());
            Target { max_len, prefix: &t.prefix[..t.prefix.len().min(max_len)] }
        })
        .collect()
}

/// One hypothesis per sentence, extended by `choose(sentence, log-probabilities of its row)`
/// until EOS: the loop greedy search and sampling share. Finished sentences leave the batch.
pub(crate) fn one_row_per_sentence<M: StepModel>(
    model: &M,
    targets: &[Target],
    opts: &DecodeOptions,
    mut choose: impl FnMut(usize, &[f32]) -> u32,
) -> Result<Vec<Hypothesis>> {
    check(model, targets)?;
    let targets = limits(model, targets);
    let (eos, v) = (model.eos(), model.vocab());
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
        let logp = rows_logp(&step.logits, &rows, opts, model.search_tokens());
        for (pos, &s) in live.sentences.iter().enumerate() {
            let row = &logp[pos * v..(pos + 1) * v];
            let token = choose(s, row);
            partial[s] = partial[s].extend(token, row[token as usize], &step, pos, eos);
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
