//! Beam search over grouped decoder rows: `beam` rows per source sentence, reordered in place
//! after each step; finished hypotheses are scored with a length penalty.

use candle_core::Result;

use super::step::StepModel;

/// How hypotheses of different lengths are compared.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LengthPenalty {
    /// Sum of log-probabilities divided by `((5 + len) / 6)^alpha` (Wu et al., 2016).
    Gnmt { alpha: f32 },
    /// Mean log-probability per token.
    Average,
    /// Plain sum of log-probabilities.
    None,
}

impl LengthPenalty {
    /// Score of a hypothesis with total log-probability `logp` over `len` tokens (EOS included).
    pub fn score(self, logp: f32, len: usize) -> f32 {
        match self {
            LengthPenalty::Gnmt { alpha } => logp / ((5.0 + len as f32) / 6.0).powf(alpha),
            LengthPenalty::Average => logp / len.max(1) as f32,
            LengthPenalty::None => logp,
        }
    }
}

/// Beam search options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BeamOptions {
    pub beam: usize,
    pub length_penalty: LengthPenalty,
    /// Most output tokens (EOS excluded).
    pub max_len: usize,
    /// EOS is not allowed before this many tokens.
    pub min_len: usize,
    /// Hypotheses returned per sentence (at most `beam`).
    pub n_best: usize,
}

impl Default for BeamOptions {
    fn default() -> Self {
        BeamOptions { beam: 5, length_penalty: LengthPenalty::Gnmt { alpha: 0.6 }, max_len: 200, min_len: 0, n_best: 1 }
    }
}

/// A finished output.
#[derive(Debug, Clone, PartialEq)]
pub struct Hypothesis {
    /// Tokens without EOS.
    pub tokens: Vec<u32>,
    /// Total log-probability (EOS included).
    pub logp: f32,
    /// Length-penalised score used for ranking.
    pub score: f32,
}

#[derive(Clone)]
struct Active {
    tokens: Vec<u32>,
    logp: f32,
}

/// Decodes `sources` sentences; returns, per sentence, up to `n_best` hypotheses, best first.
pub fn beam_search<M: StepModel>(model: &M, sources: usize, opts: &BeamOptions) -> Result<Vec<Vec<Hypothesis>>> {
    let k = opts.beam.max(1);
    let eos = model.eos();
    let v = model.vocab();
    let max_len = opts.max_len.min(model.max_len());
    let mut state = model.start(k)?;
    // only the first row of each group is live at the start, so the beam does not fill with copies
    let mut active: Vec<Vec<Active>> = vec![vec![Active { tokens: Vec::new(), logp: 0.0 }]; sources];
    let mut finished: Vec<Vec<Hypothesis>> = vec![Vec::new(); sources];
    let mut done = vec![false; sources];
    let mut last = vec![model.start_token(); sources * k];
    for step in 0..=max_len {
        if done.iter().all(|&d| d) {
            break;
        }
        let logp = model.step(&last, &mut state)?;
        let mut reorder: Vec<u32> = (0..(sources * k) as u32).collect();
        for s in 0..sources {
            if done[s] {
                continue;
            }
            // candidates (score, row within group, token)
            let mut cands: Vec<(f32, usize, u32)> = Vec::new();
            for (b, hyp) in active[s].iter().enumerate() {
                let row = &logp[(s * k + b) * v..(s * k + b + 1) * v];
                let mut best: Vec<(f32, u32)> = Vec::with_capacity(2 * k + 1);
                for (t, &lp) in row.iter().enumerate() {
                    let t = t as u32;
                    if t == eos && step < opts.min_len {
                        continue;
                    }
                    if step == max_len && t != eos {
                        continue;
                    }
                    let total = hyp.logp + lp;
                    if best.len() < 2 * k {
                        best.push((total, t));
                        if best.len() == 2 * k {
                            best.sort_by(|a, b| b.0.total_cmp(&a.0));
                        }
                    } else if total > best[2 * k - 1].0 {
                        best[2 * k - 1] = (total, t);
                        best.sort_by(|a, b| b.0.total_cmp(&a.0));
                    }
                }
                cands.extend(best.into_iter().map(|(sc, t)| (sc, b, t)));
            }
            cands.sort_by(|a, b| b.0.total_cmp(&a.0));
            let mut next = Vec::with_capacity(k);
            for (total, b, t) in cands {
                if t == eos {
                    let tokens = active[s][b].tokens.clone();
                    let score = opts.length_penalty.score(total, tokens.len() + 1);
                    finished[s].push(Hypothesis { tokens, logp: total, score });
                } else if next.len() < k {
                    let mut tokens = active[s][b].tokens.clone();
                    tokens.push(t);
                    next.push((b, Active { tokens, logp: total }));
                }
                if next.len() == k && finished[s].len() >= k {
                    break;
                }
            }
            // a sentence is done once it has `beam` finished hypotheses and none of the live
            // ones outscores them (or nothing is live)
            finished[s].sort_by(|a, b| b.score.total_cmp(&a.score));
            let worst_kept = finished[s].get(k - 1).map(|h| h.score);
            let best_live = next
                .iter()
                .map(|(_, a)| opts.length_penalty.score(a.logp, max_len + 1).max(a.logp))
                .fold(f32::NEG_INFINITY, f32::max);
            if next.is_empty() || worst_kept.is_some_and(|w| w >= best_live) {
                done[s] = true;
                continue;
            }
            active[s] = next.iter().map(|(_, a)| a.clone()).collect();
            for (i, (b, a)) in next.iter().enumerate() {
                reorder[s * k + i] = (s * k + b) as u32;
                last[s * k + i] = *a.tokens.last().expect("live hypotheses have a token");
            }
        }
        if reorder.iter().enumerate().any(|(i, &j)| i as u32 != j) {
            model.reorder(&mut state, &reorder)?;
        }
    }
    Ok(finished
        .into_iter()
        .map(|mut f| {
            f.sort_by(|a, b| b.score.total_cmp(&a.score));
            f.truncate(opts.n_best.max(1));
            f
        })
        .collect())
}
