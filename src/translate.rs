//! Translating text with a model directory: load, tokenize, batch by length, search, detokenize,
//! restore input order.

use std::path::Path;

use candle_core::{DType, Device};

use crate::data::Batch;
use crate::error::{Error, Result};
use crate::model::{load_model, ModelConfig, Seq2Seq};
use crate::search::{beam_search, BeamOptions, EncodedBatch};
use crate::text::Tokenizers;

/// A model directory ready to translate.
pub struct Translator {
    pub model: Seq2Seq,
    pub tokenizers: Tokenizers,
}

/// One translation.
#[derive(Debug, Clone, PartialEq)]
pub struct Translation {
    pub text: String,
    pub tokens: Vec<u32>,
    /// Length-penalised score (0 for an empty input).
    pub score: f32,
    /// Whether the input was cut to the model's longest sequence.
    pub truncated: bool,
}

impl Translator {
    /// Reads `config.json`, `model.safetensors` and `tokenizer.json` (or
    /// `source_tokenizer.json` and `target_tokenizer.json`).
    pub fn load(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::Input(format!("{}: not a model directory", dir.display())));
        }
        let config = ModelConfig::load(&dir.join("config.json"))?;
        let model = load_model(&config, &dir.join("model.safetensors"), DType::F32, &Device::Cpu)?;
        let tokenizers = Tokenizers::load(dir)?;
        let sides = [
            ("source", &tokenizers.source, config.vocab.source()),
            ("target", &tokenizers.target, config.vocab.target()),
        ];
        for (side, tok, size) in sides {
            if tok.vocab_size() != size {
                return Err(Error::Input(format!(
                    "{}: the {side} tokenizer has {} entries, config.json says {size}",
                    dir.display(),
                    tok.vocab_size()
                )));
            }
        }
        Ok(Translator { model, tokenizers })
    }

    /// Translates `lines` in order, `batch_size` sentences of similar length at a time.
    pub fn translate(&self, lines: &[&str], opts: &BeamOptions, batch_size: usize) -> Result<Vec<Translation>> {
        let max_src = self.model.config.max_positions - 1;
        let mut encoded = Vec::with_capacity(lines.len());
        for line in lines {
            let mut ids = self.tokenizers.source.encode(line)?;
            let truncated = ids.len() > max_src;
            ids.truncate(max_src);
            encoded.push((ids, truncated));
        }
        let mut order: Vec<usize> = (0..lines.len()).filter(|&i| !encoded[i].0.is_empty()).collect();
        order.sort_by_key(|&i| encoded[i].0.len());
        let mut out: Vec<Translation> = encoded
            .iter()
            .map(|(_, truncated)| Translation {
                text: String::new(),
                tokens: Vec::new(),
                score: 0.0,
                truncated: *truncated,
            })
            .collect();
        for chunk in order.chunks(batch_size.max(1)) {
            let sources: Vec<&[u32]> = chunk.iter().map(|&i| &encoded[i].0[..]).collect();
            let (src, mask) = Batch::sources(&sources, self.model.config.special, &Device::Cpu)?;
            let memory = self.model.encode(&src, &mask)?;
            let step = EncodedBatch { model: &self.model, memory: &memory };
            let hyps = beam_search(&step, chunk.len(), opts)?;
            for (&i, h) in chunk.iter().zip(hyps) {
                if let Some(best) = h.into_iter().next() {
                    out[i].text = self.tokenizers.target.decode(&best.tokens)?;
                    out[i].tokens = best.tokens;
                    out[i].score = best.score;
                }
            }
        }
        Ok(out)
    }
}
