//! Search strategies over a model's decoding steps.

pub mod beam;
pub mod greedy;
pub mod sampling;
pub mod step;

pub use beam::{beam_search, BeamOptions, Hypothesis, LengthPenalty};
pub use greedy::greedy;
pub use sampling::{sample, SamplingOptions};
pub use step::{EncodedBatch, StepModel};
