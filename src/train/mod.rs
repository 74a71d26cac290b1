//! The training step: label-smoothed cross-entropy, AdamW, gradient clipping, learning-rate
//! schedule. Only this module asks for gradients.

pub mod loss;
pub mod optim;
pub mod plot;
pub mod schedule;
pub mod step;
pub mod synthetic;
pub mod trainer;

pub use loss::{label_smoothed_cross_entropy, LossOutput};
pub use optim::{AdamW, AdamWConfig};
pub use schedule::InverseSqrt;
pub use step::{StepStats, TrainStep};
