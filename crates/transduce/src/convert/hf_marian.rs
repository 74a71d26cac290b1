//! Hugging Face Marian (OPUS-MT) directories: `MarianConfig` <-> [`ModelConfig`], tensor names
//! both ways, and whole-directory import and export.
//!
//! Marian's specifics are points of [`ModelConfig`]: post-norm layers without a final norm,
//! sinusoidal positions in `[sin | cos]` halves (computed, not stored), embeddings scaled by
//! `sqrt(d_model)`, one embedding table for encoder, decoder and output projection, a
//! `final_logits_bias`, and decoding that starts from `<pad>`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde_json::{json, Value};

use super::hf_config::HfConfig;
use super::hf_t5;
use crate::error::{Error, Result};
use crate::model::config::{
    Activation, AttentionScale, Dropout, EmbeddingScale, FeedForwardKind, FinalNorm, LinearBias, ModelConfig, NormKind,
    NormPlacement, OutputBias, OutputScale, PadEmbedding, Positions, SpecialIds, Tying, Vocab,
};
use crate::model::weights::{check_tensors, parameter_shapes, stream_weights_file, Stored};
use crate::model_dir::{
    self, replace_atomically, Format, ModelDir, MARIAN_SOURCE_SPM, MARIAN_TARGET_SPM, MARIAN_TARGET_VOCAB, MARIAN_VOCAB,
};
use crate::text::marian::{EOS, PAD, UNK};
use crate::text::sentencepiece::{NormalizerSpec, Piece, PieceType, SentencePieceModel, TrainerSpec};

/// Files copied unchanged between a Marian directory and a transduce one.
const TOKENIZER_FILES: [&str; 6] = [
    MARIAN_SOURCE_SPM,
    MARIAN_TARGET_SPM,
    MARIAN_VOCAB,
    MARIAN_TARGET_VOCAB,
    model_dir::TOKENIZER_CONFIG,
    model_dir::SPECIAL_TOKENS_MAP,
];

/// Reads `config.json` (a `MarianConfig`) and the `<unk>` id from `vocab.json`.
pub fn read_config(dir: &ModelDir) -> Result<ModelConfig> {
    let c = HfConfig::read(dir.config_path(), "marian")?;
    let (int, flag) = (|f: &str| c.int(f), |f: &str, d: bool| c.flag(f, d));
    let same = |a: &str, b: &str| c.same(a, b);
    let heads = same("encoder_attention_heads", "decoder_attention_heads")?;
    let ffn_dim = same("encoder_ffn_dim", "decoder_ffn_dim")?;
    for (field, needed) in
        [("normalize_before", false), ("add_final_layer_norm", false), ("normalize_embedding", false)]
    {
        if flag(field, needed)? != needed {
            return Err(c.err(field, format!("only {needed} is supported (Marian is post-norm)")));
        }
    }
    let activation = c.activation("swish")?;
    let vocab_size = int("vocab_size")?;
    let decoder_vocab = c.int_or("decoder_vocab_size", vocab_size)?;
    let shared = flag("share_encoder_decoder_embeddings", true)?;
    let tied = flag("tie_word_embeddings", true)?;
    let (vocab, tying) = match (shared, tied) {
        (true, _) if decoder_vocab != vocab_size => {
            return Err(c.err("decoder_vocab_size", "differs from vocab_size with shared embeddings"))
        }
        (true, true) => (Vocab::Shared { size: vocab_size }, Tying::All),
        (true, false) => (Vocab::Shared { size: vocab_size }, Tying::Inputs),
        (false, true) => (Vocab::Separate { source: vocab_size, target: decoder_vocab }, Tying::DecoderInputOutput),
        (false, false) => (Vocab::Separate { source: vocab_size, target: decoder_vocab }, Tying::None),
    };
    let pad = int("pad_token_id")? as u32;
    let unk = vocab_id(&dir.file(MARIAN_VOCAB), UNK)?;
    let config = ModelConfig {
        vocab,
        d_model: int("d_model")?,
        heads,
        ffn_dim,
        encoder_layers: int("encoder_layers")?,
        decoder_layers: int("decoder_layers")?,
        dropout: Dropout::uniform(0.0),
        activation,
        norm_placement: NormPlacement::Post,
        final_norm: FinalNorm::None,
        positions: Positions::SinusoidalHalves,
        embedding_scale: if flag("scale_embedding", false)? {
            EmbeddingScale::SqrtDModel
        } else {
            EmbeddingScale::None
        },
        tying,
        max_positions: int("max_position_embeddings")?,
        layer_norm_eps: 1e-5,
        special: SpecialIds {
            pad,
            bos: pad,
            eos: int("eos_token_id")? as u32,
            unk,
            decoder_start: int("decoder_start_token_id")? as u32,
        },
        pad_embedding: PadEmbedding::Learned,
        output_bias: OutputBias::Learned,
        ..ModelConfig::classic()
    };
    config.validate().map_err(|e| Error::Input(format!("{}: {e}", c.path.display())))?;
    Ok(config)
}

/// Id of `token` in a `vocab.json`.
fn vocab_id(path: &Path, token: &str) -> Result<u32> {
    let vocab: HashMap<String, u32> = crate::error::read_json(path)?;
    vocab.get(token).copied().ok_or_else(|| Error::Input(format!("{}: no {token} entry", path.display())))
}

/// The weight files of a Hugging Face directory: `model.safetensors`, or the shards
/// `model.safetensors.index.json` lists (each once, in name order); a directory with only
/// `pytorch_model.bin` is refused with the conversion that fixes it.
pub fn weight_files(dir: &ModelDir) -> Result<Vec<PathBuf>> {
    let single = dir.weights_path();
    if single.exists() {
        return Ok(vec![single]);
    }
    let index = dir.file(model_dir::SHARDED_WEIGHTS_INDEX);
    if index.exists() {
        let value: Value = crate::error::read_json(&index)?;
        let Some(map) = value.get("weight_map").and_then(Value::as_object) else {
            return Err(super::hf_config::field_err(&index, "weight_map", "missing or not an object"));
        };
        let mut shards = Vec::new();
        for (tensor, file) in map {
            let Some(file) = file.as_str().filter(|f| !f.contains('/') && !f.contains('\\') && *f != "..") else {
                return Err(super::hf_config::field_err(
                    &index,
                    "weight_map",
                    format!("{tensor}: not a file name here"),
                ));
            };
            shards.push(file.to_string());
        }
        shards.sort();
        shards.dedup();
        return Ok(shards.into_iter().map(|f| dir.file(&f)).collect());
    }
    let why = match dir.file(model_dir::PYTORCH_WEIGHTS).exists() {
        true => format!(
            "only {}; transduce reads {} (save the model with `save_pretrained(dir, safe_serialization=True)`)",
            model_dir::PYTORCH_WEIGHTS,
            model_dir::WEIGHTS
        ),
        false => format!("no {} (or {})", model_dir::WEIGHTS, model_dir::SHARDED_WEIGHTS_INDEX),
    };
    Err(Error::Input(format!("{}: {why}", dir.path().display())))
}

/// The Hugging Face name of a transduce parameter.
pub fn hf_name(name: &str) -> String {
    if name == "lm_head.bias" {
        return "final_logits_bias".into();
    }
    if name == "lm_head.weight" {
        return name.into();
    }
    let renamed = name
        .replace(".self_attn_norm.", ".self_attn_layer_norm.")
        .replace(".cross_attn_norm.", ".encoder_attn_layer_norm.")
        .replace(".cross_attn.", ".encoder_attn.")
        .replace(".ffn_norm.", ".final_layer_norm.")
        .replace(".ffn.fc", ".fc")
        // a stack's last norm (pre-norm families: M2M-100, NLLB-200)
        .replace("coder.final_norm.", "coder.layer_norm.");
    format!("model.{renamed}")
}

/// Tensors of a Hugging Face checkpoint that hold nothing transduce keeps: the sinusoid tables
/// of older checkpoints, and the cross-attention position bias some T5 checkpoints carry, which
/// no layer uses (transformers ignores it too).
fn redundant(hf: &str) -> bool {
    hf.ends_with("embed_positions.weight")
        || hf.ends_with("embed_positions.weights")
        || hf == "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight"
}

/// Reads `model.safetensors` of a Hugging Face directory (Marian, M2M-100, NLLB-200) into
/// transduce names, every name and shape checked against `config`.
pub fn read_weights(dir: &ModelDir, config: &ModelConfig, device: &Device) -> Result<HashMap<String, Tensor>> {
    let mut tensors = HashMap::new();
    let copies = stream_weights(dir, config, device, &|_| true, &|_| false, &mut |name, stored| {
        tensors.insert(name, stored.into_tensor(device)?);
        Ok(())
    })?;
    let mut problems = Vec::new();
    for copy in copies {
        let original = &tensors[copy.tied_to];
        let same = copy.tensor.dims() == original.dims()
            && copy.tensor.sub(original)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()? == 0.0;
        if !same {
            problems.push(copy.differs());
        }
    }
    if !problems.is_empty() {
        return Err(Error::Weights { path: dir.weights_path(), why: problems.join("; ") });
    }
    check_tensors(config, &tensors, &dir.weights_path())?;
    Ok(tensors)
}

/// A checkpoint's copy of a tied table (some store one), to be compared with the table.
pub struct TiedCopy {
    /// Its Hugging Face name.
    pub name: String,
    /// The transduce name of the table it must equal.
    pub tied_to: &'static str,
    pub tensor: Tensor,
}

impl TiedCopy {
    /// The problem when it differs.
    pub fn differs(&self) -> String {
        format!("`{}` differs from the table the config ties it to", self.name)
    }
}

/// Hands the tensors of a Hugging Face directory's `model.safetensors` (or its shards, listed
/// in `model.safetensors.index.json`) that `wanted` (by transduce name) accepts to `take` one
/// at a time, under transduce names, as f32 (the matrices `quantize` names, by transduce name,
/// as int8 quantized while read: [`stream_weights_file`]), each name and shape checked against
/// `config` (every problem listed in one error); the copies of tied tables come back for the
/// caller to compare.
pub fn stream_weights(
    dir: &ModelDir,
    config: &ModelConfig,
    device: &Device,
    wanted: &dyn Fn(&str) -> bool,
    quantize: &dyn Fn(&str) -> bool,
    take: &mut dyn FnMut(String, Stored) -> Result<()>,
) -> Result<Vec<TiedCopy>> {
    let files = weight_files(dir)?;
    let path = dir.weights_path();
    let shapes = parameter_shapes(config)?;
    let t5 = dir.format() == Format::HfT5;
    let gated = config.feed_forward == FeedForwardKind::Gated;
    let name_of = |name: &str| match t5 {
        true => hf_t5::hf_name(name, gated),
        false => hf_name(name),
    };
    let by_hf: HashMap<String, String> = shapes.keys().map(|n| (name_of(n), n.clone())).collect();
    // copies of a tied table, which some checkpoints store, must equal it
    let copy_names = match t5 {
        true => ["encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight"],
        false => ["model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight", "lm_head.weight"],
    };
    let tied_to = |copy: &str| match (config.tying, copy) {
        (Tying::All, _) => Some("shared.weight"),
        (Tying::Inputs, _) if copy != copy_names[2] => Some("shared.weight"),
        (Tying::DecoderInputOutput, "lm_head.weight") => Some("decoder.embed_tokens.weight"),
        _ => None,
    };
    let has_shared = shapes.contains_key("shared.weight");
    let mut seen = std::collections::HashSet::new();
    let (mut problems, mut copies, mut unexpected) = (Vec::new(), Vec::new(), Vec::new());
    let mut stored_copies: Vec<(String, Tensor)> = Vec::new();
    let wanted_hf = |hf: &str| match by_hf.get(hf) {
        Some(name) => wanted(name),
        // copies may stand in for a missing shared table
        None if copy_names.contains(&hf) => tied_to(hf).is_some_and(wanted),
        // read to be reported, in the calls that want what is not a table
        None => !redundant(hf) && wanted(hf),
    };
    // only the config's own matrices: a stored copy of a table is compared as f32
    let quantize_hf = |hf: &str| by_hf.get(hf).is_some_and(|name| quantize(name));
    let as_f32 = |stored: Stored| -> Result<Tensor> {
        let t = stored.into_tensor(device)?;
        // bf16 / f16 checkpoints (MADLAD-400) load as f32
        Ok(if t.dtype() == DType::F32 { t } else { t.to_dtype(DType::F32)? })
    };
    let mut each = |hf: String, stored: Stored| -> Result<()> {
        let Some(name) = by_hf.get(&hf) else {
            if copy_names.contains(&hf.as_str()) && tied_to(&hf).is_some() {
                stored_copies.push((hf, as_f32(stored)?));
            } else if !redundant(&hf) {
                unexpected.push(hf);
            }
            return Ok(());
        };
        let stored = match stored {
            // quantized as it was read, for a caller that asked for it in int8
            Stored::Int8 { .. } if quantize(name) => stored,
            stored => {
                let t = as_f32(stored)?;
                // stored as [1, vocab]
                let t = if name == "lm_head.bias" && t.rank() == 2 && t.dim(0)? == 1 { t.squeeze(0)? } else { t };
                Stored::Float(t)
            }
        };
        let (dims, shape) = (stored.dims(), &shapes[name]);
        if dims != shape.dims() {
            problems.push(format!(
                "tensor `{hf}` (transduce `{name}`) has shape {dims:?}, the config needs {:?}",
                shape.dims()
            ));
            return Ok(());
        }
        seen.insert(name.clone());
        take(name.clone(), stored)
    };
    for file in &files {
        stream_weights_file(file, device, &wanted_hf, &quantize_hf, &mut each)?;
    }
    // a checkpoint without `model.shared.weight` but with the encoder's copy
    if has_shared && !seen.contains("shared.weight") {
        if let Some(i) = stored_copies.iter().position(|(n, _)| n == "model.encoder.embed_tokens.weight") {
            let (_, t) = stored_copies.remove(i);
            seen.insert("shared.weight".to_string());
            take("shared.weight".into(), Stored::Float(t))?;
        }
    }
    for (name, tensor) in stored_copies {
        let tied_to = tied_to(&name).expect("only tied copies are kept");
        copies.push(TiedCopy { name, tied_to, tensor });
    }
    for (name, shape) in &shapes {
        if !seen.contains(name) && wanted(name) && !problems.iter().any(|p| p.contains(&format!("`{name}`"))) {
            problems.push(format!("missing tensor `{}` (shape {:?})", name_of(name), shape.dims()));
        }
    }
    unexpected.sort();
    problems.extend(unexpected.into_iter().map(|n| format!("unexpected tensor `{n}`")));
    if !problems.is_empty() {
        return Err(Error::Weights { path, why: problems.join("; ") });
    }
    Ok(copies)
}

/// Converts a Marian directory into a transduce model directory at `out`.
pub fn import(src: &Path, out: &Path) -> Result<ImportSummary> {
    let src = ModelDir::open(src)?;
    if src.format() != Format::HfMarian {
        return Err(Error::Input(format!("{}: not a Hugging Face Marian directory", src.path().display())));
    }
    let config = read_config(&src)?;
    let tensors = read_weights(&src, &config, &Device::Cpu)?;
    for needed in [MARIAN_SOURCE_SPM, MARIAN_TARGET_SPM, MARIAN_VOCAB] {
        if !src.file(needed).exists() {
            return Err(Error::Input(format!("{}: no {needed}", src.path().display())));
        }
    }
    let dir = ModelDir::create(out)?;
    let mut files = TOKENIZER_FILES.to_vec();
    files.push(model_dir::GENERATION_CONFIG);
    let copied = src.copy_files(&files, &dir)?;
    replace_atomically(&dir.weights_path(), |tmp| {
        candle_core::safetensors::save(&tensors, tmp)
            .map_err(|e| Error::Weights { path: tmp.to_path_buf(), why: e.to_string() })
    })?;
    config.save(&dir.config_path())?;
    let parameters = tensors.values().map(|t| t.elem_count()).sum();
    Ok(ImportSummary { dir, config, parameters, files: copied })
}

/// What [`import`] wrote.
#[derive(Debug)]
pub struct ImportSummary {
    /// The transduce model directory written.
    pub dir: ModelDir,
    pub config: ModelConfig,
    pub parameters: usize,
    pub files: Vec<String>,
}

/// Why a transduce model cannot be written as a Marian model, if it cannot: every setting
/// Marian has no place for, by name.
pub fn marian_incompatibilities(c: &ModelConfig) -> Vec<String> {
    let mut why = Vec::new();
    if c.norm_placement != NormPlacement::Post {
        why.push(format!("norm_placement is {:?}; Marian is post-norm (train with --norm post)", c.norm_placement));
    }
    if c.final_norm != FinalNorm::None {
        why.push("final_norm is set; Marian has no final layer norm (post-norm models need none)".into());
    }
    if c.positions != Positions::SinusoidalHalves {
        why.push(format!("positions are {:?}; Marian computes sinusoid halves [sin | cos]", c.positions));
    }
    if c.layer_norm_eps != 1e-5 {
        why.push(format!("layer_norm_eps is {}; Marian uses 1e-5", c.layer_norm_eps));
    }
    let t5_like = [
        (c.head_dim.is_some_and(|h| h * c.heads != c.d_model), "head_dim is not d_model / heads"),
        (c.norm != NormKind::LayerNorm, "the norm is RMS norm; Marian's has a bias"),
        (c.feed_forward != FeedForwardKind::Plain, "the feed-forward block is gated"),
        (c.linear_bias != LinearBias::Learned, "the projections have no bias"),
        (c.attention_scale != AttentionScale::InverseSqrtHeadDim, "attention logits are not scaled"),
        (c.output_scale != OutputScale::None, "the output is rescaled"),
        (c.output_bias != OutputBias::Learned, "the output projection has no bias"),
    ];
    why.extend(t5_like.into_iter().filter(|(differs, _)| *differs).map(|(_, what)| format!("{what}; Marian's is not")));
    why
}

/// The `MarianConfig` of a transduce config (after [`marian_incompatibilities`] found none).
pub fn marian_config(c: &ModelConfig) -> Value {
    let (shared, tied) = match c.tying {
        Tying::All => (true, true),
        Tying::Inputs => (true, false),
        Tying::DecoderInputOutput => (false, true),
        Tying::None => (false, false),
    };
    let activation = match c.activation {
        Activation::Relu => "relu",
        Activation::Gelu => "gelu",
        Activation::Silu => "silu",
        Activation::Swish => "swish",
        Activation::GeluTanh => "gelu_new",
    };
    json!({
        "architectures": ["MarianMTModel"],
        "model_type": "marian",
        "activation_function": activation,
        "activation_dropout": 0.0,
        "attention_dropout": 0.0,
        "dropout": 0.0,
        "d_model": c.d_model,
        "encoder_attention_heads": c.heads,
        "decoder_attention_heads": c.heads,
        "encoder_ffn_dim": c.ffn_dim,
        "decoder_ffn_dim": c.ffn_dim,
        "encoder_layers": c.encoder_layers,
        "decoder_layers": c.decoder_layers,
        "encoder_layerdrop": 0.0,
        "decoder_layerdrop": 0.0,
        "vocab_size": c.vocab.source(),
        "decoder_vocab_size": c.vocab.target(),
        "max_position_embeddings": c.max_positions,
        "scale_embedding": c.embedding_scale == EmbeddingScale::SqrtDModel,
        "share_encoder_decoder_embeddings": shared,
        "tie_word_embeddings": tied,
        "pad_token_id": c.special.pad,
        "eos_token_id": c.special.eos,
        "forced_eos_token_id": c.special.eos,
        "decoder_start_token_id": c.special.decoder_start,
        "bos_token_id": null,
        "is_encoder_decoder": true,
        "init_std": 0.02,
        "use_cache": true,
        "dtype": "float32",
    })
}

/// Hugging Face tensors of a transduce model's parameters.
pub fn marian_tensors(tensors: &HashMap<String, Tensor>) -> Result<HashMap<String, Tensor>> {
    let mut out = HashMap::new();
    for (name, t) in tensors {
        let t = if name == "lm_head.bias" { t.unsqueeze(0)? } else { t.clone() };
        out.insert(hf_name(name), t.to_dtype(DType::F32)?.contiguous()?);
    }
    Ok(out)
}

/// `generation_config.json` as OPUS-MT ships it: never generate `<pad>`, force `</s>` at the
/// length limit.
pub fn generation_config(c: &ModelConfig) -> Value {
    json!({
        "bad_words_ids": [[c.special.pad]],
        "decoder_start_token_id": c.special.decoder_start,
        "eos_token_id": c.special.eos,
        "forced_eos_token_id": c.special.eos,
        "pad_token_id": c.special.pad,
        "max_length": c.max_positions,
        "num_beams": 4,
    })
}

/// spm's `nmt_nfkc` rules (NFKC plus whitespace and control-character clean-up) as a
/// precompiled character map, taken from a model `sentencepiece` trained.
const NMT_NFKC_CHARSMAP: &[u8] = include_bytes!("../../assets/nmt_nfkc.charsmap");

/// What [`export`] wrote.
#[derive(Debug)]
pub struct ExportSummary {
    pub config: ModelConfig,
    /// Ids changed so that `<pad>` is the last one, as CTranslate2's Marian converter expects.
    pub moved_pad: bool,
    /// Notes for the user (differences that remain).
    pub notes: Vec<String>,
}

/// Writes a transduce model directory as a Hugging Face Marian directory at `out`.
pub fn export(dir: &Path, out: &Path) -> Result<ExportSummary> {
    let model_dir = ModelDir::open(dir)?;
    match model_dir.format() {
        Format::HfMarian => {
            return Err(Error::Input(format!("{}: already a Hugging Face Marian directory", dir.display())))
        }
        Format::HfM2m100 => {
            return Err(Error::Input(format!("{}: already a Hugging Face M2M-100 / NLLB-200 directory", dir.display())))
        }
        Format::HfT5 => return Err(Error::Input(format!("{}: already a Hugging Face T5 directory", dir.display()))),
        Format::NativeInt8 => {
            return Err(Error::Input(format!(
                "{}: stored in int8; export the floating-point model (quantize the export instead)",
                dir.display()
            )))
        }
        Format::Native => {}
    }
    let mut config = model_dir.config()?;
    let problems = marian_incompatibilities(&config);
    if !problems.is_empty() {
        return Err(Error::Input(format!(
            "{}: cannot be written as a Marian model: {}",
            dir.display(),
            problems.join("; ")
        )));
    }
    let (mut tensors, _) = model_dir.tensors(&config, &Device::Cpu)?;
    let tokenizers = model_dir.tokenizers()?;
    let mut notes = Vec::new();
    let out_dir = ModelDir::create(out)?;
    let pad = config.special.pad as usize;
    if config.pad_embedding == PadEmbedding::Zero {
        for table in ["shared.weight", "encoder.embed_tokens.weight", "decoder.embed_tokens.weight"] {
            if let Some(t) = tensors.get_mut(table) {
                let mut rows: Vec<Vec<f32>> = t.to_dtype(DType::F32)?.to_vec2()?;
                rows[pad].iter_mut().for_each(|x| *x = 0.0);
                *t = Tensor::new(rows, &Device::Cpu)?;
            }
        }
    } else if config.special.decoder_start == config.special.pad {
        notes.push(
            "the <pad> embedding is learned: CTranslate2 starts Marian decoders from zeros and will differ".into(),
        );
    } else {
        notes.push(format!(
            "decoding starts from token {} (not <pad>): transformers follows config.json, but CTranslate2 \
             starts Marian decoders from a zero vector and will differ (train with --arch marian)",
            config.special.decoder_start
        ));
    }
    let moved_pad;
    match (tokenizers.source.marian_vocab(), tokenizers.source.hugging_face()) {
        (Some(_), _) => {
            model_dir.copy_files(&TOKENIZER_FILES, &out_dir)?;
            moved_pad = false;
        }
        (None, Some(hf)) => {
            if !std::sync::Arc::ptr_eq(&tokenizers.source, &tokenizers.target) {
                return Err(Error::Input(format!(
                    "{}: separate source and target vocabularies are not exported yet (train with --vocab-sharing joint)",
                    dir.display()
                )));
            }
            let (spm, spm_note) =
                sentencepiece_of(hf).map_err(|why| Error::Input(format!("{}: {why}", dir.display())))?;
            notes.extend(spm_note);
            // ids with <pad> moved to the end, as CTranslate2's Marian converter expects
            let v = config.vocab.target();
            let order: Vec<u32> = (0..v as u32).filter(|&i| i as usize != pad).chain([pad as u32]).collect();
            moved_pad = pad != v - 1;
            if moved_pad {
                permute_vocabulary(&mut tensors, &order)?;
                let new_id = |old: u32| order.iter().position(|&o| o == old).expect("a permutation") as u32;
                let s = &mut config.special;
                (s.pad, s.bos, s.eos, s.unk, s.decoder_start) =
                    (new_id(s.pad), new_id(s.bos), new_id(s.eos), new_id(s.unk), new_id(s.decoder_start));
            }
            let vocab: serde_json::Map<String, Value> = order
                .iter()
                .enumerate()
                .map(|(new, &old)| (spm.pieces[old as usize].piece.clone(), json!(new)))
                .collect();
            write_json(&out_dir.file(MARIAN_VOCAB), &Value::Object(vocab))?;
            spm.save(&out_dir.file(MARIAN_SOURCE_SPM))?;
            spm.save(&out_dir.file(MARIAN_TARGET_SPM))?;
            let tokenizer_config = json!({
                "tokenizer_class": "MarianTokenizer",
                "eos_token": EOS, "unk_token": UNK, "pad_token": PAD,
                "model_max_length": config.max_positions,
                "separate_vocabs": false,
            });
            write_json(&out_dir.file(model_dir::TOKENIZER_CONFIG), &tokenizer_config)?;
        }
        (None, None) => unreachable!("a tokenizer has one backend"),
    }
    write_safetensors(&out_dir.weights_path(), &marian_tensors(&tensors)?)?;
    write_json(&out_dir.config_path(), &marian_config(&config))?;
    write_json(&out_dir.file(model_dir::GENERATION_CONFIG), &generation_config(&config))?;
    Ok(ExportSummary { config, moved_pad, notes })
}

/// Writes `tensors` (Hugging Face names) as a PyTorch-flavoured safetensors file at `path`.
pub(crate) fn write_safetensors(path: &Path, tensors: &HashMap<String, Tensor>) -> Result<()> {
    let metadata = Some(std::collections::HashMap::from([("format".to_string(), "pt".to_string())]));
    replace_atomically(path, |tmp| {
        safetensors::serialize_to_file(tensors.iter().map(|(n, t)| (n.clone(), SafeView(t.clone()))), metadata, tmp)
            .map_err(|e| Error::Weights { path: tmp.to_path_buf(), why: e.to_string() })
    })
}

pub(crate) fn write_json(path: &Path, value: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("json serialises") + "\n";
    model_dir::write_atomic(path, text.as_bytes())
}

/// Reorders the vocabulary axis of every embedding table and of the output bias:
/// new id `i` takes old id `order[i]`.
fn permute_vocabulary(tensors: &mut HashMap<String, Tensor>, order: &[u32]) -> Result<()> {
    let index = Tensor::new(order, &Device::Cpu)?;
    for name in [
        "shared.weight",
        "encoder.embed_tokens.weight",
        "decoder.embed_tokens.weight",
        "lm_head.weight",
        "lm_head.bias",
    ] {
        if let Some(t) = tensors.get_mut(name) {
            *t = t.index_select(&index, 0)?;
        }
    }
    Ok(())
}

/// A SentencePiece model equivalent to a unigram `tokenizer.json` trained by transduce
/// (NFKC, `▁` word boundaries), and a note on what differs.
fn sentencepiece_of(
    tokenizer: &tokenizers::Tokenizer,
) -> std::result::Result<(SentencePieceModel, Option<String>), String> {
    let json: Value =
        serde_json::from_str(&tokenizer.to_string(false).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let model = &json["model"];
    if model["type"] != "Unigram" {
        return Err(format!(
            "the tokenizer is {}, Marian needs a SentencePiece unigram model (train with --subword unigram)",
            model["type"]
        ));
    }
    let unk = model["unk_id"].as_u64().ok_or("the unigram tokenizer has no unk_id")? as i32;
    let specials = ["<pad>", "<s>", "</s>"];
    let pieces: Vec<Piece> = model["vocab"]
        .as_array()
        .ok_or("no vocab in tokenizer.json")?
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let piece = entry[0].as_str().unwrap_or_default().to_string();
            let kind = match () {
                _ if i as i32 == unk => PieceType::Unknown,
                _ if specials.contains(&piece.as_str()) => PieceType::Control,
                _ => PieceType::Normal,
            };
            Piece { score: entry[1].as_f64().unwrap_or(0.0) as f32, piece, kind }
        })
        .collect();
    let id = |p: &str| pieces.iter().position(|x| x.piece == p).map_or(-1, |i| i as i32);
    let (normalizer, note) = match json["normalizer"]["type"].as_str() {
        Some("NFKC") => (
            NormalizerSpec {
                name: "nmt_nfkc".into(),
                precompiled_charsmap: NMT_NFKC_CHARSMAP.to_vec(),
                ..NormalizerSpec::default()
            },
            Some(
                "SentencePiece normalises with nmt_nfkc (NFKC, control characters removed, runs of spaces \
                  collapsed) where tokenizer.json applied NFKC: text with unusual whitespace may segment differently"
                    .to_string(),
            ),
        ),
        None => (NormalizerSpec::default(), None),
        Some(other) => return Err(format!("normalizer {other} has no SentencePiece equivalent")),
    };
    let trainer = TrainerSpec {
        vocab_size: pieces.len() as i32,
        unk_id: unk,
        bos_id: id("<s>"),
        eos_id: id("</s>"),
        pad_id: id("<pad>"),
        ..TrainerSpec::default()
    };
    Ok((SentencePieceModel::new(pieces, trainer, normalizer)?, note))
}

/// A candle tensor as a safetensors view (f32, contiguous).
struct SafeView(Tensor);

impl safetensors::View for SafeView {
    fn dtype(&self) -> safetensors::Dtype {
        safetensors::Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        self.0.dims()
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        let values: Vec<f32> = self.0.flatten_all().and_then(|t| t.to_vec1()).expect("f32 tensor");
        std::borrow::Cow::Owned(values.iter().flat_map(|v| v.to_le_bytes()).collect())
    }
    fn data_len(&self) -> usize {
        self.0.elem_count() * 4
    }
}
