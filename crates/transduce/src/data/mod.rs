//! Batches and data sources.

pub mod batch;
pub mod batching;
pub mod corpus;
pub mod lines;
pub mod synthetic;

pub use batch::Batch;
