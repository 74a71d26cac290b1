//! `transduce quantize`: a model directory whose matrices are stored in int8 with one scale
//! per row (about a quarter of the f32 size); it loads as an int8 model.

use std::path::Path;

use candle_core::Device;

use super::hf_marian;
use crate::error::{Error, Result};
use crate::model::weights::{read_safetensors, write_int8};
use crate::model::ModelConfig;
use crate::text::{
    JOINT_TOKENIZER, MARIAN_SOURCE_SPM, MARIAN_TARGET_SPM, MARIAN_TARGET_VOCAB, MARIAN_VOCAB, SOURCE_TOKENIZER,
    TARGET_TOKENIZER,
};

/// What [`quantize`] wrote.
#[derive(Debug, Clone)]
pub struct QuantizeSummary {
    /// Matrices stored in int8.
    pub quantized: usize,
    /// Tensors kept in f32 (biases, layer norms).
    pub kept: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// Writes `out` from the model directory `src` (transduce, or Hugging Face Marian, which is
/// imported on the way): config and tokenizer files copied, `model.safetensors` in int8.
pub fn quantize(src: &Path, out: &Path) -> Result<QuantizeSummary> {
    if !src.is_dir() {
        return Err(Error::Input(format!("{}: not a model directory", src.display())));
    }
    if src.canonicalize().ok() == out.canonicalize().ok() {
        return Err(Error::Input(format!("{}: write the quantized model to another directory", out.display())));
    }
    let before = src.join("model.safetensors");
    let bytes_before = std::fs::metadata(&before).map_err(|e| Error::io(&before, e))?.len();
    if hf_marian::is_hf_marian(src) {
        hf_marian::import(src, out)?;
    } else {
        ModelConfig::load(&src.join("config.json"))?;
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
        let files = [
            "config.json",
            JOINT_TOKENIZER,
            SOURCE_TOKENIZER,
            TARGET_TOKENIZER,
            MARIAN_SOURCE_SPM,
            MARIAN_TARGET_SPM,
            MARIAN_VOCAB,
            MARIAN_TARGET_VOCAB,
            "generation_config.json",
        ];
        for name in files {
            let from = src.join(name);
            if from.exists() {
                std::fs::copy(&from, out.join(name)).map_err(|e| Error::io(&from, e))?;
            }
        }
    }
    let weights = out.join("model.safetensors");
    let tensors = read_safetensors(if hf_marian::is_hf_marian(src) { &weights } else { &before }, &Device::Cpu)?;
    let (quantized, kept) = write_int8(&tensors, &weights)?;
    let bytes_after = std::fs::metadata(&weights).map_err(|e| Error::io(&weights, e))?.len();
    Ok(QuantizeSummary { quantized, kept, bytes_before, bytes_after })
}
