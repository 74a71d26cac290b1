//! Model configuration: one serde struct, saved as `config.json` beside the weights.
//!
//! Every architectural choice is an enum, so a config file reads as a description of the
//! model: "Attention Is All You Need" base/big and Hugging Face Marian (OPUS-MT) are both
//! points in this space.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Where layer normalisation sits relative to each residual sub-layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NormPlacement {
    /// `x + f(norm(x))` (fairseq `--normalize-before`, T2T); trains without warm-up tricks.
    Pre,
    /// `norm(x + f(x))` as in the original paper and Marian.
    Post,
}

crate::choices!(NormPlacement, "norm placement", { Pre => "pre", Post => "post" });

/// Whether each stack ends with a layer norm over its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinalNorm {
    None,
    /// One layer norm after the last layer of the encoder and of the decoder.
    Both,
}

/// Non-linearity inside the position-wise feed-forward block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Relu,
    Gelu,
    Silu,
    /// Marian's `swish` (x * sigmoid(x)), an alias of SiLU kept for config fidelity.
    Swish,
    /// GELU's tanh approximation (Hugging Face `gelu_new`: T5 v1.1, mT5, MADLAD-400).
    GeluTanh,
}

crate::choices!(Activation, "activation", {
    Relu => "relu", Gelu => "gelu", Silu => "silu", Swish => "swish", GeluTanh => "gelu_tanh"
});

/// The shape of the position-wise feed-forward block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedForwardKind {
    /// `fc2(act(fc1(x)))`.
    #[default]
    Plain,
    /// `fc2(act(fc1(x)) * up(x))` (T5 v1.1, mT5, MADLAD-400: "gated-gelu").
    Gated,
}

/// Which normalisation the layers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NormKind {
    /// `(x - mean) / sqrt(var + eps) * weight + bias`.
    #[default]
    LayerNorm,
    /// `x / sqrt(mean(x^2) + eps) * weight`, no bias, no centring (T5).
    Rms,
}

/// Whether the attention and feed-forward projections add a bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinearBias {
    #[default]
    Learned,
    /// None (T5): a constant zero, never stored or trained.
    None,
}

/// What multiplies the attention logits `q k^T`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttentionScale {
    /// `1 / sqrt(head_dim)`, as in the original paper.
    #[default]
    InverseSqrtHeadDim,
    /// 1 (T5, whose initialisation folds the scale into the query projection).
    None,
}

/// What multiplies the decoder's output before the output projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputScale {
    #[default]
    None,
    /// `d_model^-0.5` (T5 with a tied output projection).
    InverseSqrtDModel,
}

/// How token positions enter the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Positions {
    /// Fixed sinusoids, interleaved `[sin, cos, sin, cos, ...]` (Vaswani et al.).
    Sinusoidal,
    /// Fixed sinusoids laid out as `[sin ... | cos ...]` halves (Marian / Hugging Face Marian).
    SinusoidalHalves,
    /// fairseq's sinusoids (M2M-100, NLLB-200): `[sin | cos]` halves with frequencies
    /// `10000^(-i / (d/2 - 1))`, computed in f32 as fairseq does, the first token at position
    /// `special.pad + 1`.
    SinusoidalFairseq,
    /// A trained table `[max_positions, d_model]` per stack.
    Learned,
    /// No position embeddings: a trained bias on the self-attention logits per head and
    /// bucket of relative distance (T5), `[buckets, heads]` per stack, computed once per call
    /// and shared by the stack's layers. Bidirectional in the encoder (half the buckets each
    /// way), causal in the decoder; distances up to `buckets / 4` (bidirectional: `/ 4`;
    /// causal: `/ 2`) get a bucket each, longer ones share logarithmically wider buckets up to
    /// `max_distance`.
    Relative { buckets: usize, max_distance: usize },
}

/// Multiplier applied to token embeddings before positions are added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmbeddingScale {
    None,
    /// `sqrt(d_model)`, as in the original paper and Marian.
    SqrtDModel,
}

/// Which embedding matrices share one tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tying {
    /// Encoder input, decoder input and output projection are three tensors.
    None,
    /// Encoder and decoder input embeddings are one tensor; the output projection is separate.
    /// Requires a shared vocabulary.
    Inputs,
    /// Decoder input embedding and output projection are one tensor.
    DecoderInputOutput,
    /// All three are one tensor (Marian, OPUS-MT). Requires a shared vocabulary.
    All,
}

/// Source and target vocabulary sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Vocab {
    /// One vocabulary for both sides.
    Shared {
        size: usize,
    },
    Separate {
        source: usize,
        target: usize,
    },
}

impl Vocab {
    pub fn source(&self) -> usize {
        match *self {
            Vocab::Shared { size } => size,
            Vocab::Separate { source, .. } => source,
        }
    }
    pub fn target(&self) -> usize {
        match *self {
            Vocab::Shared { size } => size,
            Vocab::Separate { target, .. } => target,
        }
    }
}

/// Dropout probabilities, active only in training.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Dropout {
    /// On each sub-layer's output before the residual add, and on embeddings.
    pub residual: f32,
    /// On attention probabilities.
    pub attention: f32,
    /// After the feed-forward activation.
    pub ffn: f32,
    /// Whole source tokens: each source token's embedding is zeroed with this probability
    /// (the rest scaled by `1 / (1 - p)`) before positions are added — Marian's `--dropout-src`,
    /// the word dropout of Sennrich and Zhang (2019). 0 unless asked for.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub source_words: f32,
}

impl Dropout {
    /// `p` everywhere inside the layers; no source word dropout.
    pub fn uniform(p: f32) -> Self {
        Dropout { residual: p, attention: p, ffn: p, source_words: 0.0 }
    }
}

/// Whether a probability is 0 (serde's `skip_serializing_if` for options that are off).
pub(crate) fn is_zero(p: &f32) -> bool {
    *p == 0.0
}

/// What the embedding of the padding token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PadEmbedding {
    /// The table's row, like any token.
    #[default]
    Learned,
    /// Always a zero vector (PyTorch's `padding_idx`): a decoder that starts from `<pad>`
    /// starts from zero, as CTranslate2 runs Marian models.
    Zero,
}

/// Whether the output projection adds a bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputBias {
    /// A trained bias (Marian's `final_logits_bias`).
    #[default]
    Learned,
    /// None (M2M-100, NLLB-200, T5).
    None,
}

/// Token ids with a fixed meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecialIds {
    pub pad: u32,
    pub bos: u32,
    pub eos: u32,
    pub unk: u32,
    /// First decoder input (Marian uses `pad`; fairseq-style models use `bos` or `eos`).
    pub decoder_start: u32,
}

impl Default for SpecialIds {
    fn default() -> Self {
        SpecialIds { pad: 0, bos: 1, eos: 2, unk: 3, decoder_start: 1 }
    }
}

/// Complete description of an encoder-decoder Transformer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub vocab: Vocab,
    pub d_model: usize,
    pub heads: usize,
    pub ffn_dim: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub dropout: Dropout,
    pub activation: Activation,
    pub norm_placement: NormPlacement,
    pub final_norm: FinalNorm,
    pub positions: Positions,
    pub embedding_scale: EmbeddingScale,
    pub tying: Tying,
    /// Longest sequence (source or target, in tokens) the model accepts.
    pub max_positions: usize,
    pub layer_norm_eps: f64,
    pub special: SpecialIds,
    #[serde(default)]
    pub pad_embedding: PadEmbedding,
    #[serde(default)]
    pub output_bias: OutputBias,
    /// Size of each attention head when it is not `d_model / heads` (T5's `d_kv`); the
    /// projections then map `d_model` to `heads * head_dim` and back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<usize>,
    #[serde(default)]
    pub norm: NormKind,
    #[serde(default)]
    pub feed_forward: FeedForwardKind,
    #[serde(default)]
    pub linear_bias: LinearBias,
    #[serde(default)]
    pub attention_scale: AttentionScale,
    #[serde(default)]
    pub output_scale: OutputScale,
}

/// Named configurations.
/// A family of architectures, applied before the other overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    /// The preset as it is (pre-norm, interleaved sinusoids, ReLU, decoding from `<s>`).
    Transduce,
    /// Hugging Face Marian / OPUS-MT: post-norm without final norms, `[sin | cos]` sinusoids,
    /// swish, decoding from `<pad>` whose embedding is zero; exports to Marian and CTranslate2.
    Marian,
}

crate::choices!(Architecture, "architecture", { Transduce => "transduce", Marian => "marian" });

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// d 32, 2 heads, FFN 64, 2+2 layers: for tests.
    Tiny,
    /// d 256, 4 heads, FFN 1024, 3+3 layers: the benchmark "cfg S".
    Small,
    /// Transformer base: d 512, 8 heads, FFN 2048, 6+6 layers.
    Base,
    /// Transformer big: d 1024, 16 heads, FFN 4096, 6+6 layers.
    Big,
}

crate::choices!(Preset, "preset", { Tiny => "tiny", Small => "small", Base => "base", Big => "big" });

impl ModelConfig {
    /// A preset with a shared vocabulary of `vocab_size` entries.
    pub fn preset(preset: Preset, vocab_size: usize) -> Self {
        let (d_model, heads, ffn_dim, layers, dropout) = match preset {
            Preset::Tiny => (32, 2, 64, 2, 0.0),
            Preset::Small => (256, 4, 1024, 3, 0.1),
            Preset::Base => (512, 8, 2048, 6, 0.1),
            Preset::Big => (1024, 16, 4096, 6, 0.3),
        };
        ModelConfig {
            vocab: Vocab::Shared { size: vocab_size },
            d_model,
            heads,
            ffn_dim,
            encoder_layers: layers,
            decoder_layers: layers,
            dropout: Dropout::uniform(dropout),
            activation: Activation::Relu,
            norm_placement: NormPlacement::Pre,
            final_norm: FinalNorm::Both,
            positions: Positions::Sinusoidal,
            embedding_scale: EmbeddingScale::SqrtDModel,
            tying: Tying::All,
            max_positions: 1024,
            layer_norm_eps: 1e-5,
            special: SpecialIds::default(),
            pad_embedding: PadEmbedding::Learned,
            output_bias: OutputBias::Learned,
            // the classic Transformer where T5 differs
            head_dim: None,
            norm: NormKind::LayerNorm,
            feed_forward: FeedForwardKind::Plain,
            linear_bias: LinearBias::Learned,
            attention_scale: AttentionScale::InverseSqrtHeadDim,
            output_scale: OutputScale::None,
        }
    }

    /// The classic Transformer's choices where T5 differs (layer norm, plain feed-forward,
    /// biases, scaled logits, `head_dim = d_model / heads`), as the base of a family's config.
    pub fn classic() -> Self {
        ModelConfig::preset(Preset::Tiny, 1)
    }

    pub fn head_dim(&self) -> usize {
        self.head_dim.unwrap_or(self.d_model / self.heads.max(1))
    }

    /// Width of the attention's inner space: `heads * head_dim` (`d_model` unless
    /// `head_dim` says otherwise).
    pub fn attention_dim(&self) -> usize {
        self.heads * self.head_dim()
    }

    /// Checks internal consistency; every problem names the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, why: String| Err(Error::Config { field: field.into(), why });
        if let Some(h) = self.head_dim {
            if h == 0 || self.d_model == 0 || self.heads == 0 {
                return bad(
                    "head_dim",
                    format!("head_dim {h}, d_model {} and heads {} must be positive", self.d_model, self.heads),
                );
            }
        } else if self.d_model == 0 || self.heads == 0 || !self.d_model.is_multiple_of(self.heads) {
            return bad(
                "heads",
                format!("d_model {} must be a positive multiple of heads {}", self.d_model, self.heads),
            );
        }
        if !self.d_model.is_multiple_of(2)
            && matches!(
                self.positions,
                Positions::Sinusoidal | Positions::SinusoidalHalves | Positions::SinusoidalFairseq
            )
        {
            return bad("d_model", format!("sinusoidal positions need an even d_model, got {}", self.d_model));
        }
        if let Positions::Relative { buckets, max_distance } = self.positions {
            if buckets < 4 || max_distance < buckets {
                return bad(
                    "positions",
                    format!("relative positions need at least 4 buckets and max_distance >= buckets, got {buckets} and {max_distance}"),
                );
            }
        }
        if self.ffn_dim == 0 {
            return bad("ffn_dim", "must be positive".into());
        }
        if self.max_positions == 0 {
            return bad("max_positions", "must be positive".into());
        }
        let (src, tgt) = (self.vocab.source(), self.vocab.target());
        if src == 0 || tgt == 0 {
            return bad("vocab", "vocabulary sizes must be positive".into());
        }
        if matches!(self.tying, Tying::All | Tying::Inputs) && !matches!(self.vocab, Vocab::Shared { .. }) {
            return bad("tying", format!("{:?} needs a shared vocabulary", self.tying));
        }
        for (name, p) in [
            ("dropout.residual", self.dropout.residual),
            ("dropout.attention", self.dropout.attention),
            ("dropout.ffn", self.dropout.ffn),
        ] {
            if !(0.0..1.0).contains(&p) {
                return bad(name, format!("must be in [0, 1), got {p}"));
            }
        }
        let s = self.special;
        for (name, id) in [
            ("special.pad", s.pad),
            ("special.bos", s.bos),
            ("special.eos", s.eos),
            ("special.unk", s.unk),
            ("special.decoder_start", s.decoder_start),
        ] {
            if id as usize >= tgt.min(src) {
                return bad(name, format!("id {id} is outside the vocabulary"));
            }
        }
        Ok(())
    }

    /// Reads and validates `config.json`.
    pub fn load(path: &Path) -> Result<Self> {
        let config: ModelConfig = crate::error::read_json(path)?;
        config.validate()?;
        Ok(config)
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("config serialises") + "\n";
        crate::model_dir::write_atomic(path, text.as_bytes())
    }
}

impl ModelConfig {
    /// Makes this configuration one of `arch`'s family (Marian: post-norm without final norms,
    /// `[sin | cos]` sinusoids, swish, decoding from a zero `<pad>` embedding).
    pub fn apply_architecture(&mut self, arch: Architecture) {
        match arch {
            Architecture::Transduce => {}
            Architecture::Marian => {
                self.norm_placement = NormPlacement::Post;
                self.final_norm = FinalNorm::None;
                self.positions = Positions::SinusoidalHalves;
                self.activation = Activation::Swish;
                self.special.decoder_start = self.special.pad;
                self.pad_embedding = PadEmbedding::Zero;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_validate_and_round_trip() {
        for p in [Preset::Tiny, Preset::Small, Preset::Base, Preset::Big] {
            let c = ModelConfig::preset(p, 8000);
            c.validate().unwrap();
            let back: ModelConfig = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
            assert_eq!(back, c);
        }
    }

    #[test]
    fn validation_names_the_field() {
        let mut c = ModelConfig::preset(Preset::Tiny, 100);
        c.heads = 3;
        assert!(c.validate().unwrap_err().to_string().contains("heads"));
        let mut c = ModelConfig::preset(Preset::Tiny, 100);
        c.vocab = Vocab::Separate { source: 100, target: 90 };
        assert!(c.validate().unwrap_err().to_string().contains("tying"));
    }
}
