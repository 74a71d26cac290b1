//! Text to token ids and back. No tensors here.

pub mod subword;

pub use subword::{SubwordModel, SubwordTokenizer, SubwordTraining, SPECIAL_TOKENS};

use std::path::Path;
use std::sync::Arc;

use crate::error::Result;

/// File of a joint vocabulary in a model directory.
pub const JOINT_TOKENIZER: &str = "tokenizer.json";
/// Files of per-side vocabularies in a model directory.
pub const SOURCE_TOKENIZER: &str = "source_tokenizer.json";
pub const TARGET_TOKENIZER: &str = "target_tokenizer.json";

/// The tokenizers of a model directory (the same one twice when the vocabulary is joint).
pub struct Tokenizers {
    pub source: Arc<SubwordTokenizer>,
    pub target: Arc<SubwordTokenizer>,
}

impl Tokenizers {
    /// `tokenizer.json`, or else `source_tokenizer.json` and `target_tokenizer.json`.
    pub fn load(dir: &Path) -> Result<Self> {
        let joint = dir.join(JOINT_TOKENIZER);
        if joint.exists() {
            let t = Arc::new(SubwordTokenizer::load(&joint)?);
            return Ok(Tokenizers { source: t.clone(), target: t });
        }
        Ok(Tokenizers {
            source: Arc::new(SubwordTokenizer::load(&dir.join(SOURCE_TOKENIZER))?),
            target: Arc::new(SubwordTokenizer::load(&dir.join(TARGET_TOKENIZER))?),
        })
    }
}
