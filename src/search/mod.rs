//! Search strategies over a model's decoding steps.

pub mod greedy;

pub use greedy::greedy;
