//! Hugging Face M2M-100 and NLLB-200 directories (`model_type: m2m_100`): `M2M100Config` ->
//! [`ModelConfig`] and the family's tokenizers with their language tokens.
//!
//! The family's specifics are points of [`ModelConfig`]: pre-norm layers with a final layer
//! norm per stack, embeddings scaled by `sqrt(d_model)`, fairseq's sinusoids (computed, not
//! stored) from position `pad + 1`, one table for both embeddings and the output projection,
//! no output bias, decoding from `</s>` with the target language's token forced first. The
//! weights use Marian's names (see [`super::hf_marian::read_weights`]), the stacks' last
//! norms being `model.{encoder,decoder}.layer_norm`.

use std::sync::Arc;

use serde_json::Value;

use super::hf_config::{field_err, has_tokenizer_class, read_json, HfConfig};
use crate::error::{Error, Result};
use crate::model::config::{
    Dropout, EmbeddingScale, FinalNorm, ModelConfig, NormPlacement, OutputBias, PadEmbedding, Positions, SpecialIds,
    Tying, Vocab,
};
use crate::model_dir::{
    ModelDir, GENERATION_CONFIG, JOINT_TOKENIZER, MARIAN_VOCAB, SPECIAL_TOKENS_MAP, TOKENIZER_CONFIG,
};
use crate::text::fairseq::FairseqVocab;
use crate::text::languages::{LanguageTokens, M2M100_CODES, NLLB_CODES, WMT21_CODES};
use crate::text::{SubwordTokenizer, Tokenizers};

/// The SentencePiece BPE model both families ship.
pub const SENTENCEPIECE_BPE: &str = "sentencepiece.bpe.model";

/// The tokenizer files and settings of the family, copied as they are when a directory is
/// imported (quantized).
pub const FILES: [&str; 6] =
    [JOINT_TOKENIZER, SENTENCEPIECE_BPE, MARIAN_VOCAB, TOKENIZER_CONFIG, SPECIAL_TOKENS_MAP, GENERATION_CONFIG];

/// `tokenizer_config.json`'s `tokenizer_class` of the family's tokenizers: a transduce directory
/// imported from such a model keeps reading its tokenizer this way.
pub const TOKENIZER_CLASSES: [&str; 3] = ["NllbTokenizer", "NllbTokenizerFast", "M2M100Tokenizer"];

/// Whether the directory's tokenizer is one of this family's (by `tokenizer_class`).
pub fn has_family_tokenizer(dir: &ModelDir) -> Result<bool> {
    has_tokenizer_class(dir, &TOKENIZER_CLASSES)
}

/// Reads `config.json` (an `M2M100Config`).
pub fn read_config(dir: &ModelDir) -> Result<ModelConfig> {
    let c = HfConfig::read(dir.config_path(), "m2m_100")?;
    let (int, int_or, flag) = (|f: &str| c.int(f), |f: &str, d: usize| c.int_or(f, d), |f: &str, d: bool| c.flag(f, d));
    let heads = c.same("encoder_attention_heads", "decoder_attention_heads")?;
    let ffn_dim = c.same("encoder_ffn_dim", "decoder_ffn_dim")?;
    let activation = c.activation("relu")?;
    if !flag("tie_word_embeddings", true)? {
        return Err(c.err("tie_word_embeddings", "only tied output projections are supported"));
    }
    let pad = int_or("pad_token_id", 1)? as u32;
    let eos = int_or("eos_token_id", 2)? as u32;
    let config = ModelConfig {
        vocab: Vocab::Shared { size: int("vocab_size")? },
        d_model: int("d_model")?,
        heads,
        ffn_dim,
        encoder_layers: int("encoder_layers")?,
        decoder_layers: int("decoder_layers")?,
        dropout: Dropout::uniform(0.0),
        activation,
        norm_placement: NormPlacement::Pre,
        final_norm: FinalNorm::Both,
        positions: Positions::SinusoidalFairseq,
        embedding_scale: match flag("scale_embedding", true)? {
            true => EmbeddingScale::SqrtDModel,
            false => EmbeddingScale::None,
        },
        tying: Tying::All,
        max_positions: int("max_position_embeddings")?,
        layer_norm_eps: 1e-5,
        special: SpecialIds {
            pad,
            bos: int_or("bos_token_id", 0)? as u32,
            eos,
            unk: unk_id(dir)?,
            decoder_start: int_or("decoder_start_token_id", eos as usize)? as u32,
        },
        pad_embedding: PadEmbedding::Learned,
        output_bias: OutputBias::None,
        ..ModelConfig::classic()
    };
    config.validate().map_err(|e| Error::Input(format!("{}: {e}", c.path.display())))?;
    Ok(config)
}

/// `<unk>`'s id: from `vocab.json` (M2M-100) or `tokenizer.json` (NLLB-200), else fairseq's 3.
fn unk_id(dir: &ModelDir) -> Result<u32> {
    for name in [MARIAN_VOCAB, JOINT_TOKENIZER] {
        let path = dir.file(name);
        if !path.exists() {
            continue;
        }
        let v = read_json(&path)?;
        let id = match name {
            MARIAN_VOCAB => v.get("<unk>").and_then(Value::as_u64),
            _ => v["added_tokens"]
                .as_array()
                .and_then(|tokens| tokens.iter().find(|t| t["content"] == "<unk>"))
                .and_then(|t| t["id"].as_u64()),
        };
        return id.map(|i| i as u32).ok_or_else(|| Error::Input(format!("{}: no <unk> entry", path.display())));
    }
    Ok(3)
}

/// The tokenizer (shared by both sides) and its language tokens: `tokenizer.json` where the
/// directory has one (NLLB-200: reproduces `NllbTokenizer`), else `sentencepiece.bpe.model` +
/// `vocab.json` (M2M-100: `M2M100Tokenizer`).
pub fn tokenizers(dir: &ModelDir) -> Result<Tokenizers> {
    let settings_path = dir.file(TOKENIZER_CONFIG);
    let settings = match settings_path.exists() {
        true => read_json(&settings_path)?,
        false => Value::Null,
    };
    let joint = dir.file(JOINT_TOKENIZER);
    let tokenizer = if joint.exists() {
        let tokenizer = SubwordTokenizer::load_pretrained(&joint)?;
        let hf = tokenizer.hugging_face().expect("tokenizer.json is read by tokenizers");
        // the codes the tokenizer declares, else NLLB-200's
        let declared: Vec<String> = ["extra_special_tokens", "additional_special_tokens"]
            .iter()
            .filter_map(|field| settings.get(*field).and_then(Value::as_array))
            .flatten()
            .filter_map(|t| t.as_str().or_else(|| t["content"].as_str()).map(str::to_string))
            .collect();
        let codes: Vec<String> = match declared.is_empty() {
            true => NLLB_CODES.iter().map(|c| c.to_string()).collect(),
            false => declared,
        };
        let found: Vec<(&str, u32)> =
            codes.iter().filter_map(|c| hf.token_to_id(c).map(|id| (c.as_str(), id))).collect();
        if found.is_empty() {
            return Err(Error::Input(format!(
                "{}: none of the {} language codes (e.g. {}) is a token: the tokenizer cannot name languages \
                 (transformers 5 writes such a file from a bare {SENTENCEPIECE_BPE}; save the tokenizer with its \
                 language codes)",
                joint.display(),
                codes.len(),
                codes.first().map_or("", String::as_str)
            )));
        }
        tokenizer.with_languages(LanguageTokens::new(found.iter().map(|&(c, id)| (c, c, id))))
    } else {
        let (spm, vocab) = (dir.file(SENTENCEPIECE_BPE), dir.file(MARIAN_VOCAB));
        if !spm.exists() || !vocab.exists() {
            return Err(Error::Input(format!(
                "{}: no tokenizer ({JOINT_TOKENIZER} as NLLB-200 ships it, or {SENTENCEPIECE_BPE} and \
                 {MARIAN_VOCAB} as M2M-100 ships them)",
                dir.path().display()
            )));
        }
        let codes: &[&str] = match settings.get("language_codes").and_then(Value::as_str).unwrap_or("m2m100") {
            "m2m100" => &M2M100_CODES,
            "wmt21" => &WMT21_CODES,
            other => {
                return Err(field_err(
                    &settings_path,
                    "language_codes",
                    format!("{other:?} is not a known set (m2m100, wmt21)"),
                ))
            }
        };
        let madeup = settings.get("num_madeup_words").and_then(Value::as_u64).unwrap_or(8) as usize;
        SubwordTokenizer::fairseq(FairseqVocab::m2m100(&spm, &vocab, codes, madeup)?)
    };
    let t = Arc::new(tokenizer);
    Ok(Tokenizers { source: t.clone(), target: t })
}
