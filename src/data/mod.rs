//! Batches and data sources.

pub mod batch;
pub mod batching;
pub mod corpus;
pub mod grammar;
pub mod lines;
pub mod synthetic;

pub use batch::Batch;
