//! Text to token ids and back. No tensors here.

pub mod marian;
pub mod protobuf;
pub mod sentencepiece;
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

/// Files of a Marian (OPUS-MT) tokenizer: SentencePiece models and the model vocabulary
/// (`target_vocab.json` only when the vocabularies are separate).
pub const MARIAN_SOURCE_SPM: &str = "source.spm";
pub const MARIAN_TARGET_SPM: &str = "target.spm";
pub const MARIAN_VOCAB: &str = "vocab.json";
pub const MARIAN_TARGET_VOCAB: &str = "target_vocab.json";

/// The tokenizers of a model directory (the same one twice when the vocabulary is joint).
pub struct Tokenizers {
    pub source: Arc<SubwordTokenizer>,
    pub target: Arc<SubwordTokenizer>,
}

impl Tokenizers {
    /// `tokenizer.json`, or else `source.spm` + `target.spm` + `vocab.json` (Marian), or else
    /// `source_tokenizer.json` and `target_tokenizer.json`.
    pub fn load(dir: &Path) -> Result<Self> {
        let joint = dir.join(JOINT_TOKENIZER);
        if joint.exists() {
            let t = Arc::new(SubwordTokenizer::load(&joint)?);
            return Ok(Tokenizers { source: t.clone(), target: t });
        }
        if dir.join(MARIAN_SOURCE_SPM).exists() {
            let (source_spm, target_spm) = (dir.join(MARIAN_SOURCE_SPM), dir.join(MARIAN_TARGET_SPM));
            let vocab = dir.join(MARIAN_VOCAB);
            let separate = dir.join(MARIAN_TARGET_VOCAB);
            let source = marian::MarianVocab::load(&source_spm, &source_spm, &vocab)?;
            // MarianTokenizer joins target pieces with the source model unless the vocabularies are separate
            let target = match separate.exists() {
                true => marian::MarianVocab::load(&target_spm, &target_spm, &separate)?,
                false => marian::MarianVocab::load(&target_spm, &source_spm, &vocab)?,
            };
            return Ok(Tokenizers {
                source: Arc::new(SubwordTokenizer::marian(source)),
                target: Arc::new(SubwordTokenizer::marian(target)),
            });
        }
        Ok(Tokenizers {
            source: Arc::new(SubwordTokenizer::load(&dir.join(SOURCE_TOKENIZER))?),
            target: Arc::new(SubwordTokenizer::load(&dir.join(TARGET_TOKENIZER))?),
        })
    }
}
