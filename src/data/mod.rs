//! Batches and data sources.

pub mod batch;
pub mod lines;
pub mod synthetic;

pub use batch::Batch;
