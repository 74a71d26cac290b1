//! Text to token ids and back. No tensors here.

pub mod subword;

pub use subword::{SubwordModel, SubwordTokenizer, SubwordTraining, SPECIAL_TOKENS};
