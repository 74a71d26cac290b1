//! The encoder: bidirectional self-attention over the whole source, producing the memory
//! (the "context map") that every decoder step queries.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use super::attention::{padding_bias, AttentionKind, MultiHeadAttention, Record};
use super::config::{FinalNorm, ModelConfig, NormPlacement};
use super::context::Ctx;
use super::embedding::Embeddings;
use super::layers::{FeedForward, LayerNorm, Linear};
use super::position_bias::{Direction, RelativePositionBias};

/// Encoder output: what the decoder attends to.
#[derive(Debug, Clone)]
pub struct Memory {
    /// [b, s, d]
    pub states: Tensor,
    /// Source padding mask [b, s] (1 = token).
    pub mask: Tensor,
    /// Additive cross-attention bias [b, 1, 1, s].
    pub bias: Tensor,
    /// Self-attention probabilities per layer, [b, heads, s, s] each, when recorded.
    pub attention: Vec<Tensor>,
}

#[derive(Debug, Clone)]
pub struct EncoderLayer {
    pub self_attn: MultiHeadAttention,
    pub self_attn_norm: LayerNorm,
    pub ffn: FeedForward,
    pub ffn_norm: LayerNorm,
    placement: NormPlacement,
    dropout: f32,
}

impl EncoderLayer {
    pub fn new(vb: VarBuilder, c: &ModelConfig) -> Result<Self> {
        Ok(EncoderLayer {
            self_attn: MultiHeadAttention::new(vb.pp("self_attn"), c, AttentionKind::EncoderSelf)?,
            self_attn_norm: LayerNorm::new(vb.pp("self_attn_norm"), c)?,
            ffn: FeedForward::new(vb.pp("ffn"), c)?,
            ffn_norm: LayerNorm::new(vb.pp("ffn_norm"), c)?,
            placement: c.norm_placement,
            dropout: c.dropout.residual,
        })
    }

    /// Applies `f` to every linear projection of the layer.
    pub fn for_each_linear(&mut self, mut f: impl FnMut(&mut Linear) -> Result<()>) -> Result<()> {
        self.self_attn.for_each_linear(&mut f)?;
        self.ffn.for_each_linear(f)
    }

    /// x: [b, s, d], bias: [b, 1, 1, s] (or [b, h, s, s] with position bias) -> ([b, s, d],
    /// probs [b, h, s, s] if recorded)
    pub fn forward(&self, x: &Tensor, bias: &Tensor, record: Record, ctx: &Ctx) -> Result<(Tensor, Option<Tensor>)> {
        let mut probs = None;
        let attn = |h: &Tensor, probs: &mut Option<Tensor>| -> Result<Tensor> {
            let kv = self.self_attn.project_kv(h, ctx)?;
            let out = self.self_attn.attend(h, &kv, Some(bias), 1, record, ctx)?;
            *probs = out.probs;
            ctx.dropout(&out.output, self.dropout)
        };
        let ffn = |h: &Tensor| ctx.dropout(&self.ffn.forward(h, ctx)?, self.dropout);
        let x = match self.placement {
            NormPlacement::Pre => {
                let x = (x + attn(&self.self_attn_norm.forward(x, ctx)?, &mut probs)?)?;
                (&x + ffn(&self.ffn_norm.forward(&x, ctx)?)?)?
            }
            NormPlacement::Post => {
                let x = self.self_attn_norm.forward(&(x + attn(x, &mut probs)?)?, ctx)?;
                self.ffn_norm.forward(&(&x + ffn(&x)?)?, ctx)?
            }
        };
        Ok((x, probs))
    }
}

#[derive(Debug, Clone)]
pub struct Encoder {
    pub embeddings: Embeddings,
    pub layers: Vec<EncoderLayer>,
    pub final_norm: Option<LayerNorm>,
    /// T5's relative position bias, shared by the layers.
    pub position_bias: Option<RelativePositionBias>,
}

impl Encoder {
    /// `tokens`: the source embedding table [src_vocab, d] (possibly shared).
    pub fn new(vb: VarBuilder, tokens: Tensor, c: &ModelConfig) -> Result<Self> {
        let layers = (0..c.encoder_layers)
            .map(|i| EncoderLayer::new(vb.pp(format!("layers.{i}")), c))
            .collect::<Result<Vec<_>>>()?;
        let final_norm = match c.final_norm {
            FinalNorm::Both => Some(LayerNorm::new(vb.pp("final_norm"), c)?),
            FinalNorm::None => None,
        };
        let position_bias = RelativePositionBias::new(vb.clone(), c, Direction::Bidirectional)?;
        let embeddings = Embeddings::new(vb, tokens, c)?.with_word_dropout(c.dropout.source_words);
        Ok(Encoder { embeddings, layers, final_norm, position_bias })
    }

    /// src: [b, s] u32, mask: [b, s] (1 = token, 0 = padding) -> Memory
    pub fn forward(&self, src: &Tensor, mask: &Tensor, record: Record, ctx: &Ctx) -> Result<Memory> {
        let mut x = self.embeddings.forward(src, 0, ctx)?;
        let bias = padding_bias(mask, x.dtype())?;
        let self_bias = match &self.position_bias {
            Some(positions) => {
                let s = src.dim(1)?;
                bias.broadcast_add(&positions.bias(0, s, s)?.to_dtype(x.dtype())?)?
            }
            None => bias.clone(),
        };
        let mut attention = Vec::new();
        for layer in &self.layers {
            let (y, probs) = layer.forward(&x, &self_bias, record, ctx)?;
            x = y;
            attention.extend(probs);
        }
        if let Some(norm) = &self.final_norm {
            x = norm.forward(&x, ctx)?;
        }
        Ok(Memory { states: x, mask: mask.clone(), bias, attention })
    }
}
