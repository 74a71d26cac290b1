//! Sampling: each next token drawn from the (tempered, truncated) model distribution, with a
//! random stream per sentence so a sentence samples the same alone or in any batch.

use candle_core::Result;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use super::beam::Hypothesis;
use super::step::StepModel;

/// Sampling options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingOptions {
    /// Divides the logits; below 1 sharpens, above 1 flattens.
    pub temperature: f32,
    /// Keep only the `k` most probable tokens (0 = all).
    pub top_k: usize,
    /// Keep the smallest set of most probable tokens whose probability reaches `p` (1 = all).
    pub top_p: f32,
    pub max_len: usize,
    pub seed: u64,
}

impl Default for SamplingOptions {
    fn default() -> Self {
        SamplingOptions { temperature: 1.0, top_k: 0, top_p: 1.0, max_len: 200, seed: 0 }
    }
}

/// The distribution to draw from, given one row of log-probabilities: (token, probability)
/// pairs after temperature, top-k and top-p, renormalised, most probable first.
pub fn candidates(logp: &[f32], opts: &SamplingOptions) -> Vec<(u32, f32)> {
    let t = opts.temperature.max(1e-6);
    let mut c: Vec<(u32, f32)> = logp.iter().enumerate().map(|(i, &l)| (i as u32, l / t)).collect();
    c.sort_by(|a, b| b.1.total_cmp(&a.1));
    if opts.top_k > 0 {
        c.truncate(opts.top_k);
    }
    let max = c.first().map_or(0.0, |x| x.1);
    let mut total = 0.0;
    for x in c.iter_mut() {
        x.1 = (x.1 - max).exp();
        total += x.1;
    }
    for x in c.iter_mut() {
        x.1 /= total;
    }
    if opts.top_p < 1.0 {
        let mut mass = 0.0;
        let keep = c
            .iter()
            .position(|x| {
                mass += x.1;
                mass >= opts.top_p
            })
            .map_or(c.len(), |i| i + 1);
        c.truncate(keep);
        let total: f32 = c.iter().map(|x| x.1).sum();
        c.iter_mut().for_each(|x| x.1 /= total);
    }
    c
}

/// Samples one output per sentence. Sentence `i` draws from the random stream
/// `(opts.seed, streams[i])`: pass each sentence's position in the input, and its sample does not
/// depend on the batch it is decoded in.
pub fn sample<M: StepModel>(model: &M, streams: &[u64], opts: &SamplingOptions) -> Result<Vec<Hypothesis>> {
    let sources = streams.len();
    let eos = model.eos();
    let v = model.vocab();
    let max_len = opts.max_len.min(model.max_len());
    let mut rngs: Vec<Xoshiro256PlusPlus> = streams
        .iter()
        .map(|&i| Xoshiro256PlusPlus::seed_from_u64(opts.seed ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
        .collect();
    let mut state = model.start(1)?;
    let mut out: Vec<Hypothesis> = vec![Hypothesis { tokens: Vec::new(), logp: 0.0, score: 0.0 }; sources];
    let mut done = vec![false; sources];
    let mut last = vec![model.start_token(); sources];
    for step in 0..=max_len {
        if done.iter().all(|&d| d) {
            break;
        }
        let logp = model.step(&last, &mut state)?;
        for s in 0..sources {
            if done[s] {
                continue;
            }
            let row = &logp[s * v..(s + 1) * v];
            let token = if step == max_len {
                eos
            } else {
                let c = candidates(row, opts);
                let mut u: f32 = rngs[s].gen();
                c.iter()
                    .find(|x| {
                        u -= x.1;
                        u <= 0.0
                    })
                    .unwrap_or(c.last().expect("a non-empty vocabulary"))
                    .0
            };
            out[s].logp += row[token as usize];
            if token == eos {
                done[s] = true;
                out[s].score = out[s].logp;
            } else {
                out[s].tokens.push(token);
                last[s] = token;
            }
        }
    }
    Ok(out)
}
