//! Search strategies over a model's decoding steps.

pub mod beam;
pub mod greedy;
pub mod step;

pub use beam::{beam_search, BeamOptions, Hypothesis, LengthPenalty};
pub use greedy::greedy;
pub use step::{EncodedBatch, StepModel};
