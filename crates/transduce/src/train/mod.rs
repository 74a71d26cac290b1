//! Training: the step (label-smoothed cross-entropy, AdamW, gradient clipping, learning-rate
//! schedule) and the run around it: configuration, corpus stream, validation, checkpoints and
//! the loop. Only this module asks for gradients.

pub mod budget;
pub mod checkpoint;
pub mod config;
pub mod corpus;
pub mod dropout_ramp;
pub mod ema;
pub mod init;
pub mod loss;
pub mod optim;
pub mod plot;
pub mod schedule;
pub mod step;
pub mod synthetic;
pub mod trainer;
pub mod validation;

pub use budget::{dropout_for_epochs, Counted, Projection};
pub use checkpoint::{average_checkpoints, TrainState};
pub use config::{default_workers, parse_duration, ModelOverrides, StopMetric, TrainConfig, VocabSharing};
pub use dropout_ramp::DropoutRamp;
pub use ema::WeightAverage;
pub use loss::{label_smoothed_cross_entropy, paired_kl_divergence, LossOutput};
pub use optim::{AdamW, AdamWConfig, DecayScope};
pub use schedule::{Budget, Cosine, InverseSqrt, LrSchedule, ScheduleKind};
pub use step::{StepSeconds, StepStats, TrainStep};
pub use trainer::{train, Start, StopReason, TrainSummary};
pub use validation::Validation;
