//! Beam search over grouped decoder rows: `beam` rows per source sentence, reordered in place
//! after each step; finished hypotheses are scored with a length penalty; a sentence stops as
//! soon as no live hypothesis can beat its n-best, and then leaves the batch (the step itself
//! is [`decoding`](super::decoding)'s).

use candle_core::Result;

use super::decoding::decode_all;
use super::hypothesis::Hypothesis;
use super::options::{BeamOptions, DecodeOptions, Strategy, Target};
use super::step::StepModel;

/// Decodes every sentence of `model`; returns, per sentence, up to `beam.n_best` hypotheses,
/// best first.
pub fn beam_search<M: StepModel>(
    model: &M,
    targets: &[Target],
    opts: &DecodeOptions,
    beam: &BeamOptions,
) -> Result<Vec<Vec<Hypothesis>>> {
    let opts = DecodeOptions { strategy: Strategy::Beam(*beam), ..*opts };
    decode_all(model, targets, &vec![0; targets.len()], &opts)
}
