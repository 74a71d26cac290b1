//! Sampling: each next token drawn from the (tempered, truncated) allowed distribution, with a
//! random stream per sentence so a sentence samples the same alone or in any batch.

use candle_core::Result;

use super::decoding::decode_all;
use super::hypothesis::Hypothesis;
use super::options::{DecodeOptions, SamplingOptions, Strategy, Target};
use super::step::StepModel;

/// The distribution to draw from, given one row of log-probabilities: (token, probability)
/// pairs after temperature, top-k and top-p, renormalised, most probable first. Disallowed
/// (`-inf`) tokens never appear.
pub fn candidates(logp: &[f32], opts: &SamplingOptions) -> Vec<(u32, f32)> {
    // validated positive (`SamplingOptions::validate`)
    let t = opts.temperature;
    let mut c: Vec<(u32, f32)> =
        logp.iter().enumerate().filter(|(_, l)| l.is_finite()).map(|(i, &l)| (i as u32, l / t)).collect();
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
/// `(sampling.seed, streams[i])`: pass each sentence's position in the input, and its sample
/// does not depend on the batch it is decoded in. `logp` and scores are the model's
/// log-probabilities (after the constraints), not the tempered ones.
pub fn sample<M: StepModel>(
    model: &M,
    targets: &[Target],
    streams: &[u64],
    opts: &DecodeOptions,
    sampling: &SamplingOptions,
) -> Result<Vec<Hypothesis>> {
    let opts = DecodeOptions { strategy: Strategy::Sample(*sampling), ..*opts };
    let out = decode_all(model, targets, streams, &opts)?;
    Ok(out.into_iter().map(|mut h| h.remove(0)).collect())
}
