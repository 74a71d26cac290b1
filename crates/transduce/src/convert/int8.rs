//! `transduce quantize`: a model directory whose matrices are stored in int8 with one scale
//! per row (about a quarter of the f32 size); it loads as an int8 model.

use std::path::Path;

use candle_core::Device;

use super::{hf_m2m100, hf_marian, hf_t5};
use crate::error::{Error, Result};
use crate::model::weights::write_int8;
use crate::model_dir::{self, Format, ModelDir};

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

/// Writes `out` from the model directory `src` (transduce, or Hugging Face Marian, M2M-100,
/// NLLB-200, T5, mT5 or MADLAD-400, imported on the way): config and tokenizer files copied, the weights in int8.
pub fn quantize(src: &Path, out: &Path) -> Result<QuantizeSummary> {
    let src = ModelDir::open(src)?;
    if src.path().canonicalize().ok() == out.canonicalize().ok() {
        return Err(Error::Input(format!("{}: write the quantized model to another directory", out.display())));
    }
    let before = match src.format() {
        Format::Native | Format::NativeInt8 => vec![src.weights_path()],
        Format::HfMarian | Format::HfM2m100 | Format::HfT5 => hf_marian::weight_files(&src)?,
    };
    let mut bytes_before = 0;
    for file in &before {
        bytes_before += std::fs::metadata(file).map_err(|e| Error::io(file, e))?.len();
    }
    let config = src.config()?;
    let (tensors, _) = src.tensors(&config, &Device::Cpu)?;
    let out = match src.format() {
        Format::HfMarian => hf_marian::import(src.path(), out)?.dir,
        Format::HfM2m100 | Format::HfT5 => {
            let out = ModelDir::create(out)?;
            let files: &[&str] = match src.format() {
                Format::HfT5 => &hf_t5::FILES,
                _ => &hf_m2m100::FILES,
            };
            src.copy_files(files, &out)?;
            config.save(&out.config_path())?;
            out
        }
        Format::Native | Format::NativeInt8 => {
            let out = ModelDir::create(out)?;
            let mut files = vec![model_dir::CONFIG, model_dir::GENERATION_CONFIG];
            files.extend(model_dir::TOKENIZER_FILES);
            src.copy_files(&files, &out)?;
            out
        }
    };
    let weights = out.weights_path();
    let (quantized, kept) = write_int8(&tensors, &weights)?;
    let bytes_after = std::fs::metadata(&weights).map_err(|e| Error::io(&weights, e))?.len();
    Ok(QuantizeSummary { quantized, kept, bytes_before, bytes_after })
}
