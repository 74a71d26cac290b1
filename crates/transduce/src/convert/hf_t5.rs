//! Hugging Face T5, mT5 and MADLAD-400 directories (`model_type: t5` / `mt5`): `T5Config` ->
//! [`ModelConfig`], the tensor names, and the tokenizer with MADLAD's `<2xx>` target codes.
//!
//! The family's specifics are points of [`ModelConfig`]: pre-norm layers with RMS norms and a
//! final norm per stack, no biases anywhere, no position embeddings but a relative position
//! bias per stack ([`Positions::Relative`]), unscaled attention logits, a plain ReLU or a gated
//! GELU feed-forward block (`feed_forward_proj`), attention heads of `d_kv` (not
//! `d_model / heads`), the output projection its own matrix where the checkpoint stores
//! `lm_head.weight` (mT5, MADLAD) or tied to the embeddings, fed `d_model^-0.5 * h` in T5 v1.0,
//! decoding from `<pad>`.

use std::sync::Arc;

use serde_json::Value;

use super::hf_config::{field_err, has_tokenizer_class, read_json, HfConfig};
use super::hf_marian;
use crate::error::{Error, Result};
use crate::model::config::{
    AttentionScale, Dropout, EmbeddingScale, FeedForwardKind, FinalNorm, LinearBias, ModelConfig, NormKind,
    NormPlacement, OutputBias, OutputScale, PadEmbedding, Positions, SpecialIds, Tying, Vocab,
};
use crate::model::weights::stores_tensor;
use crate::model_dir::{ModelDir, GENERATION_CONFIG, JOINT_TOKENIZER, SPECIAL_TOKENS_MAP, TOKENIZER_CONFIG};
use crate::text::languages::{target_code, LanguageMarking, LanguageTokens};
use crate::text::t5::T5Vocab;
use crate::text::{SubwordTokenizer, Tokenizers};

/// The SentencePiece (unigram) model the family ships.
pub const SENTENCEPIECE: &str = "spiece.model";

/// The tokenizer files and settings of the family, copied as they are when a directory is
/// imported (quantized).
pub const FILES: [&str; 5] = [JOINT_TOKENIZER, SENTENCEPIECE, TOKENIZER_CONFIG, SPECIAL_TOKENS_MAP, GENERATION_CONFIG];

/// `tokenizer_config.json`'s `tokenizer_class` of the family's tokenizers.
pub const TOKENIZER_CLASSES: [&str; 2] = ["T5Tokenizer", "T5TokenizerFast"];

/// Whether the directory's tokenizer is one of this family's (by `tokenizer_class`).
pub fn has_family_tokenizer(dir: &ModelDir) -> Result<bool> {
    has_tokenizer_class(dir, &TOKENIZER_CLASSES)
}

/// Whether a `config.json` `model_type` is this family's.
pub fn is_family(model_type: &str) -> bool {
    matches!(model_type, "t5" | "mt5")
}

/// Reads `config.json` (a `T5Config` or `MT5Config`).
pub fn read_config(dir: &ModelDir) -> Result<ModelConfig> {
    let path = dir.config_path();
    let model_type = read_model_type(&path)?;
    let c = HfConfig::read(path, &model_type)?;
    let (int, int_or) = (|f: &str| c.int(f), |f: &str, d: usize| c.int_or(f, d));
    // transformers: `feed_forward_proj` is "{act}" or "gated-{act}", "gated-gelu" meaning gelu_new
    let projection = c.str_or("feed_forward_proj", "relu");
    let (feed_forward, act) = match projection.split_once('-') {
        Some(("gated", act)) => (FeedForwardKind::Gated, act),
        None => (FeedForwardKind::Plain, projection),
        Some(_) => return Err(c.err("feed_forward_proj", format!("{projection:?} is not `act` or `gated-act`"))),
    };
    let act = match projection {
        "gated-gelu" => "gelu_new",
        _ => act,
    };
    let activation = c.activation_named("feed_forward_proj", act)?;
    // T5 v1.0 feeds the tied projection d^-0.5 h; T5 v1.1 and MADLAD-400 (tie_word_embeddings
    // false) and mT5 do not. transformers 5 writes the choice as `scale_decoder_outputs`.
    let scaled = match c.value.get("scale_decoder_outputs").and_then(Value::as_bool) {
        Some(scaled) => scaled,
        None => model_type == "t5" && c.flag("tie_word_embeddings", true)?,
    };
    // the output projection is its own matrix wherever the checkpoint stores one
    let mut untied = false;
    for file in hf_marian::weight_files(dir)? {
        untied |= stores_tensor(&file, "lm_head.weight")?;
    }
    let layers = int("num_layers")?;
    let pad = int_or("pad_token_id", 0)? as u32;
    let config = ModelConfig {
        vocab: Vocab::Shared { size: int("vocab_size")? },
        d_model: int("d_model")?,
        heads: int("num_heads")?,
        head_dim: Some(int("d_kv")?),
        ffn_dim: int("d_ff")?,
        encoder_layers: layers,
        decoder_layers: int_or("num_decoder_layers", layers)?,
        dropout: Dropout::uniform(0.0),
        activation,
        feed_forward,
        norm: NormKind::Rms,
        norm_placement: NormPlacement::Pre,
        final_norm: FinalNorm::Both,
        positions: Positions::Relative {
            buckets: int_or("relative_attention_num_buckets", 32)?,
            max_distance: int_or("relative_attention_max_distance", 128)?,
        },
        embedding_scale: EmbeddingScale::None,
        tying: if untied { Tying::Inputs } else { Tying::All },
        output_scale: if scaled { OutputScale::InverseSqrtDModel } else { OutputScale::None },
        // relative positions have no limit; the longest sequence transduce accepts
        max_positions: int_or("n_positions", 512)?.max(1024),
        layer_norm_eps: c.value.get("layer_norm_epsilon").and_then(Value::as_f64).unwrap_or(1e-6),
        special: SpecialIds {
            pad,
            bos: pad,
            eos: int_or("eos_token_id", 1)? as u32,
            unk: 2,
            decoder_start: int_or("decoder_start_token_id", pad as usize)? as u32,
        },
        pad_embedding: PadEmbedding::Learned,
        output_bias: OutputBias::None,
        linear_bias: LinearBias::None,
        attention_scale: AttentionScale::None,
    };
    config.validate().map_err(|e| Error::Input(format!("{}: {e}", c.path.display())))?;
    Ok(config)
}

fn read_model_type(path: &std::path::Path) -> Result<String> {
    Ok(read_json(path)?.get("model_type").and_then(Value::as_str).unwrap_or_default().to_string())
}

/// The Hugging Face name of a transduce parameter of a T5 model (`gated`: the feed-forward
/// block is `wi_0`, `wi_1`, `wo`; else `wi`, `wo`).
pub fn hf_name(name: &str, gated: bool) -> String {
    if let Some(stack) = name.strip_suffix(".relative_bias.weight") {
        return format!("{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight");
    }
    if let Some(stack) = name.strip_suffix(".final_norm.weight") {
        return format!("{stack}.final_layer_norm.weight");
    }
    let Some((stack, rest)) = name.split_once(".layers.") else { return name.to_string() };
    let Some((layer, part)) = rest.split_once('.') else { return name.to_string() };
    let ffn = if stack == "decoder" { 2 } else { 1 };
    let wi = if gated { "wi_0" } else { "wi" };
    let mapped = match part {
        "self_attn_norm.weight" => "layer.0.layer_norm.weight".to_string(),
        "cross_attn_norm.weight" => "layer.1.layer_norm.weight".to_string(),
        "ffn_norm.weight" => format!("layer.{ffn}.layer_norm.weight"),
        "ffn.fc1.weight" => format!("layer.{ffn}.DenseReluDense.{wi}.weight"),
        "ffn.up.weight" => format!("layer.{ffn}.DenseReluDense.wi_1.weight"),
        "ffn.fc2.weight" => format!("layer.{ffn}.DenseReluDense.wo.weight"),
        other => {
            let (module, projection) = other.split_once('.').unwrap_or((other, ""));
            let module = match module {
                "self_attn" => "layer.0.SelfAttention",
                "cross_attn" => "layer.1.EncDecAttention",
                _ => return name.to_string(),
            };
            let projection = match projection {
                "q_proj.weight" => "q.weight",
                "k_proj.weight" => "k.weight",
                "v_proj.weight" => "v.weight",
                "out_proj.weight" => "o.weight",
                _ => return name.to_string(),
            };
            format!("{module}.{projection}")
        }
    };
    format!("{stack}.block.{layer}.{mapped}")
}

/// The tokenizer (shared by both sides): `tokenizer.json` through the `tokenizers` crate where
/// the directory has one, else `spiece.model` with `tokenizer_config.json`'s `extra_ids`
/// ([`T5Vocab`]); MADLAD-400's target codes (`<2de>`, ...) where the vocabulary has them.
pub fn tokenizers(dir: &ModelDir) -> Result<Tokenizers> {
    let joint = dir.file(JOINT_TOKENIZER);
    let tokenizer = if joint.exists() {
        let tokenizer = SubwordTokenizer::load_pretrained(&joint)?;
        let hf = tokenizer.hugging_face().expect("tokenizer.json is read by tokenizers");
        let mut codes: Vec<(String, u32)> = hf
            .get_vocab(true)
            .into_iter()
            .filter_map(|(token, id)| target_code(&token).map(|code| (code.to_string(), id)))
            .collect();
        codes.sort_by_key(|&(_, id)| id);
        match codes.is_empty() {
            true => tokenizer,
            false => {
                let tokens: Vec<String> = codes.iter().map(|(c, _)| format!("<2{c}>")).collect();
                let entries = codes.iter().zip(&tokens).map(|((c, id), t)| (c.as_str(), t.as_str(), *id));
                tokenizer.with_languages(LanguageTokens::new(entries).with_marking(LanguageMarking::TargetPrefix))
            }
        }
    } else {
        let spm = dir.file(SENTENCEPIECE);
        if !spm.exists() {
            return Err(Error::Input(format!(
                "{}: no tokenizer ({JOINT_TOKENIZER} or {SENTENCEPIECE})",
                dir.path().display()
            )));
        }
        SubwordTokenizer::t5(T5Vocab::load(&spm, extra_ids(dir)?)?)
    };
    let t = Arc::new(tokenizer);
    Ok(Tokenizers { source: t.clone(), target: t })
}

/// `T5Tokenizer`'s `extra_ids`: `tokenizer_config.json`'s field, else the `<extra_id_N>` tokens
/// it lists, else 100 (the class's default).
fn extra_ids(dir: &ModelDir) -> Result<usize> {
    let path = dir.file(TOKENIZER_CONFIG);
    if !path.exists() {
        return Ok(100);
    }
    let settings = read_json(&path)?;
    if let Some(n) = settings.get("extra_ids") {
        return n.as_u64().map(|n| n as usize).ok_or_else(|| field_err(&path, "extra_ids", "not a count"));
    }
    let listed = ["additional_special_tokens", "extra_special_tokens"]
        .iter()
        .filter_map(|field| settings.get(*field).and_then(Value::as_array))
        .flatten()
        .filter_map(|t| t.as_str().or_else(|| t["content"].as_str()))
        .filter(|t| t.starts_with("<extra_id_"))
        .count();
    Ok(if listed > 0 { listed } else { 100 })
}
