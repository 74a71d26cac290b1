//! Writing a transduce model of the M2M-100 / NLLB-200 or T5 / mT5 / MADLAD-400 family (one
//! fine-tuned with `transduce train --init`) back as the family's Hugging Face directory:
//! `config.json` from the configuration, the weights under the family's names, the tokenizer
//! files as the model directory holds them.
//!
//! What is written is read back before the export counts as done: the directory must give the
//! same configuration, so a model that is not a point of the family is refused, naming what
//! differs.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde_json::{json, Value};

use super::hf_marian::{self, write_json, write_safetensors};
use super::{hf_m2m100, hf_t5};
use crate::error::{Error, Result};
use crate::model::config::{
    Activation, Dropout, EmbeddingScale, FeedForwardKind, ModelConfig, OutputScale, Positions, Tying,
};
use crate::model_dir::{Format, ModelDir};

/// The Hugging Face families transduce writes besides Marian.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `M2M100ForConditionalGeneration` (M2M-100, NLLB-200).
    M2m100,
    /// `T5ForConditionalGeneration` (T5, mT5, MADLAD-400).
    T5,
}

/// What [`export`] wrote.
#[derive(Debug)]
pub struct FamilyExport {
    pub config: ModelConfig,
    pub files: Vec<String>,
}

/// Writes the transduce model directory `dir` as a Hugging Face `family` directory at `out`.
pub fn export(dir: &Path, out: &Path, family: Family) -> Result<FamilyExport> {
    let from = ModelDir::open(dir)?;
    if from.format() != Format::Native {
        return Err(Error::Input(format!(
            "{}: export reads a transduce model directory with floating-point weights (this one is {:?})",
            dir.display(),
            from.format()
        )));
    }
    if out.canonicalize().ok() == from.path().canonicalize().ok() {
        return Err(Error::Input(format!("{}: export to another directory than the model's", out.display())));
    }
    let config = from.config()?;
    let (tensors, _) = from.tensors(&config, &Device::Cpu)?;
    let out_dir = ModelDir::create(out)?;
    let (hf_config, hf_tensors) = match family {
        Family::M2m100 => (m2m100_config(&config), m2m100_tensors(&tensors)?),
        Family::T5 => (t5_config(&config), t5_tensors(&config, &tensors)?),
    };
    let files = from.copy_files(&tokenizer_files(family), &out_dir)?;
    write_safetensors(&out_dir.weights_path(), &hf_tensors)?;
    write_json(&out_dir.config_path(), &hf_config)?;
    let back = ModelDir::open(out)?.config()?;
    let differences = differences(&config, &back);
    if !differences.is_empty() {
        std::fs::remove_file(out_dir.weights_path()).map_err(|e| Error::io(&out_dir.weights_path(), e))?;
        return Err(Error::Input(format!(
            "{}: not a {family:?} model ({}); nothing written",
            dir.display(),
            differences.join("; ")
        )));
    }
    Ok(FamilyExport { config, files })
}

fn tokenizer_files(family: Family) -> Vec<&'static str> {
    match family {
        Family::M2m100 => hf_m2m100::FILES.to_vec(),
        Family::T5 => hf_t5::FILES.to_vec(),
    }
}

/// The fields where `written` (read back from the export) differs from `config`; dropout is
/// a training setting and is not compared.
fn differences(config: &ModelConfig, written: &ModelConfig) -> Vec<String> {
    let mut a = serde_json::to_value(config).expect("config serialises");
    let mut b = serde_json::to_value(written).expect("config serialises");
    for v in [&mut a, &mut b] {
        v["dropout"] = serde_json::to_value(Dropout::uniform(0.0)).expect("serialises");
    }
    let (Value::Object(a), Value::Object(b)) = (a, b) else { return vec!["unreadable".into()] };
    let mut out: Vec<String> = a
        .iter()
        .filter(|(k, v)| b.get(*k) != Some(v))
        .map(|(k, v)| format!("{k} is {v}, the family's would be {}", b.get(k).unwrap_or(&Value::Null)))
        .collect();
    out.sort();
    out
}

fn activation_name(a: Activation) -> &'static str {
    match a {
        Activation::Relu => "relu",
        Activation::Gelu => "gelu",
        Activation::GeluTanh => "gelu_new",
        Activation::Silu => "silu",
        Activation::Swish => "swish",
    }
}

/// `M2M100Config`.
fn m2m100_config(c: &ModelConfig) -> Value {
    let s = c.special;
    json!({
        "architectures": ["M2M100ForConditionalGeneration"],
        "model_type": "m2m_100",
        "vocab_size": c.vocab.target(),
        "d_model": c.d_model,
        "encoder_layers": c.encoder_layers,
        "decoder_layers": c.decoder_layers,
        "encoder_attention_heads": c.heads,
        "decoder_attention_heads": c.heads,
        "encoder_ffn_dim": c.ffn_dim,
        "decoder_ffn_dim": c.ffn_dim,
        "activation_function": activation_name(c.activation),
        "max_position_embeddings": c.max_positions,
        "scale_embedding": c.embedding_scale == EmbeddingScale::SqrtDModel,
        "tie_word_embeddings": c.tying == Tying::All,
        "pad_token_id": s.pad,
        "bos_token_id": s.bos,
        "eos_token_id": s.eos,
        "decoder_start_token_id": s.decoder_start,
        "dropout": c.dropout.residual,
        "attention_dropout": c.dropout.attention,
        "activation_dropout": c.dropout.ffn,
        "encoder_layerdrop": 0.0,
        "decoder_layerdrop": 0.0,
        "init_std": 0.02,
        "is_encoder_decoder": true,
        "use_cache": true,
        "dtype": "float32",
    })
}

/// The tensors under M2M-100's names; the tied output projection is the shared table.
fn m2m100_tensors(tensors: &HashMap<String, Tensor>) -> Result<HashMap<String, Tensor>> {
    let mut out = HashMap::new();
    for (name, t) in tensors {
        out.insert(hf_marian::hf_name(name), t.to_dtype(DType::F32)?.contiguous()?);
    }
    Ok(out)
}

/// `T5Config`: `tie_word_embeddings` says whether the output is rescaled (T5 v1.0), the
/// checkpoint holding `lm_head.weight` that it is untied.
fn t5_config(c: &ModelConfig) -> Value {
    let (buckets, max_distance) = match c.positions {
        Positions::Relative { buckets, max_distance } => (buckets, max_distance),
        _ => (0, 0),
    };
    let act = activation_name(c.activation);
    let feed_forward_proj = match (c.feed_forward, c.activation) {
        (FeedForwardKind::Gated, Activation::GeluTanh) => "gated-gelu".to_string(),
        (FeedForwardKind::Gated, _) => format!("gated-{act}"),
        (FeedForwardKind::Plain, _) => act.to_string(),
    };
    let s = c.special;
    json!({
        "architectures": ["T5ForConditionalGeneration"],
        "model_type": "t5",
        "vocab_size": c.vocab.target(),
        "d_model": c.d_model,
        "d_kv": c.head_dim(),
        "d_ff": c.ffn_dim,
        "num_layers": c.encoder_layers,
        "num_decoder_layers": c.decoder_layers,
        "num_heads": c.heads,
        "relative_attention_num_buckets": buckets,
        "relative_attention_max_distance": max_distance,
        "dropout_rate": c.dropout.residual,
        "layer_norm_epsilon": c.layer_norm_eps,
        "feed_forward_proj": feed_forward_proj,
        "tie_word_embeddings": c.output_scale == OutputScale::InverseSqrtDModel,
        "n_positions": c.max_positions,
        "pad_token_id": s.pad,
        "eos_token_id": s.eos,
        "decoder_start_token_id": s.decoder_start,
        "is_encoder_decoder": true,
        "use_cache": true,
        "dtype": "float32",
    })
}

/// The tensors under T5's names.
fn t5_tensors(c: &ModelConfig, tensors: &HashMap<String, Tensor>) -> Result<HashMap<String, Tensor>> {
    let gated = c.feed_forward == FeedForwardKind::Gated;
    let mut out = HashMap::new();
    for (name, t) in tensors {
        out.insert(hf_t5::hf_name(name, gated), t.to_dtype(DType::F32)?.contiguous()?);
    }
    Ok(out)
}
