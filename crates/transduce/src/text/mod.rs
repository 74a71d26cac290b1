//! Text to token ids and back. No tensors here.

pub mod fairseq;
pub mod languages;
pub mod marian;
pub mod protobuf;
pub mod sampling;
pub mod sentencepiece;
pub mod sentences;
pub mod subword;
pub mod t5;

pub use sampling::SubwordSampler;
pub use subword::{SubwordModel, SubwordTokenizer, SubwordTraining, SPECIAL_TOKENS};

use std::sync::Arc;

/// The tokenizers of a model directory (the same one twice when the vocabulary is joint);
/// [`crate::ModelDir::tokenizers`] reads them.
pub struct Tokenizers {
    pub source: Arc<SubwordTokenizer>,
    pub target: Arc<SubwordTokenizer>,
}
