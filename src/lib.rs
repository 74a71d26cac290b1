//! transduce: encoder-decoder Transformers for sequence-to-sequence tasks.
//!
//! The encoder reads the whole source at once (bidirectional self-attention) into a memory,
//! the "context map". The decoder writes the output one token at a time: masked (causal)
//! self-attention over what it has written, cross-attention into the memory.

pub mod bench;
pub mod data;
pub mod error;
pub mod kernels;
pub mod model;
pub mod runtime;
pub mod search;
pub mod train;

pub use error::{Error, Result};
pub use model::{ModelConfig, Preset, Seq2Seq};
