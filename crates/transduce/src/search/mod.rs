//! Search strategies over a model's decoding steps: greedy, beam and sampling, all under the
//! same constraints (lengths, prefix, n-gram and repetition control) from one [`DecodeOptions`],
//! over one model or an [`Ensemble`].

pub mod beam;
pub mod constraints;
pub mod decoding;
pub mod ensemble;
pub mod greedy;
pub mod hypothesis;
pub mod options;
pub mod sampling;
pub mod select;
pub mod step;

use candle_core::Result;

pub use beam::beam_search;
pub use decoding::{Decoding, Finished, Sentence};
pub use ensemble::{Combination, Ensemble};
pub use greedy::{greedy, greedy_search};
pub use hypothesis::Hypothesis;
pub use options::{
    Alignment, BeamOptions, BeamRule, DecodeOptions, LengthPenalty, PenaltyKind, SamplingOptions, Scores, SearchKind,
    SearchSettings, Strategy, Target,
};
pub use sampling::sample;
pub use step::{EncodedBatch, StepModel, StepOutput};

/// Decodes every sentence with `opts.strategy`: per sentence, the hypotheses best first (one,
/// except for beam search's n-best). `streams[i]` names sentence `i`'s random stream for
/// sampling (its position in the input).
pub fn decode<M: StepModel>(
    model: &M,
    targets: &[Target],
    streams: &[u64],
    opts: &DecodeOptions,
) -> Result<Vec<Vec<Hypothesis>>> {
    decoding::decode_all(model, targets, streams, opts)
}
