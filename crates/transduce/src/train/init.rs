//! Fine-tuning (`transduce train --init MODEL_DIR`): training continues from any model
//! transduce loads (its own, Hugging Face Marian, M2M-100 / NLLB-200, T5 / mT5 / MADLAD-400),
//! with the model's tokenizer and language codes as they are.

use std::path::Path;

use candle_core::{DType, Device};

use super::config::TrainConfig;
use crate::convert::{hf_m2m100, hf_t5};
use crate::error::{Error, Result};
use crate::model::{ModelConfig, TrainableModel};
use crate::model_dir::{self, Format, ModelDir};
use crate::text::languages::{Direction, Tags};
use crate::text::Tokenizers;

/// The files of a model's tokenizer, of every family: copied beside the fine-tuned model, whose
/// directory then reads its tokenizer as the original did.
fn tokenizer_files() -> Vec<&'static str> {
    let mut files: Vec<&str> = model_dir::TOKENIZER_FILES.to_vec();
    files.extend(hf_m2m100::FILES);
    files.extend(hf_t5::FILES);
    files.extend([model_dir::TOKENIZER_CONFIG, model_dir::SPECIAL_TOKENS_MAP, model_dir::GENERATION_CONFIG]);
    files.sort();
    files.dedup();
    files
}

/// The tokenizers, configuration and parameters of the model directory `init`, its tokenizer
/// files copied into `out` (the run's directory). The run's dropout replaces the model's.
pub fn from_model_dir(
    init: &Path,
    cfg: &TrainConfig,
    out: &ModelDir,
) -> Result<(Tokenizers, ModelConfig, TrainableModel)> {
    let from = ModelDir::open(init)?;
    if from.format() == Format::NativeInt8 {
        return Err(Error::option(
            "init",
            format!("{}: stored in int8; fine-tune the floating-point model", init.display()),
        ));
    }
    if from.path().canonicalize().ok() == out.path().canonicalize().ok() {
        return Err(Error::option("init", "the model to start from is the output directory; give another --out"));
    }
    let mut config = from.config()?;
    if cfg.dropout.is_some()
        || cfg.attention_dropout.is_some()
        || cfg.activation_dropout.is_some()
        || cfg.source_word_dropout > 0.0
    {
        config.dropout = cfg.dropout_around(cfg.dropout.unwrap_or(config.dropout.residual));
    }
    // a pair longer than the model's positions could not be trained on
    if cfg.filter.max_len + 2 > config.max_positions {
        return Err(Error::option(
            "max_len",
            format!("{} tokens and </s> exceed the model's {} positions", cfg.filter.max_len, config.max_positions),
        ));
    }
    let tok = from.tokenizers()?;
    from.copy_files(&tokenizer_files(), out)?;
    let (tensors, _) = from.tensors(&config, &Device::Cpu)?;
    let model = TrainableModel::from_tensors(&config, &tensors, DType::F32, &Device::Cpu)?;
    Ok((tok, config, model))
}

/// The language tokens leading each side of the run's pairs: a multilingual model's codes for
/// `cfg.languages` (required), none for other models.
pub fn tags(tok: &Tokenizers, cfg: &TrainConfig) -> Result<Tags> {
    let Some(languages) = tok.source.languages() else { return Ok(Tags::default()) };
    let Some(pair) = &cfg.languages else {
        return Err(languages.direction_needed("tgt_lang"));
    };
    languages.tags(Direction { source: &pair.source, target: &pair.target }, ("src_lang", "tgt_lang"))
}
