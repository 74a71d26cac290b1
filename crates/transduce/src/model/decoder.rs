//! The decoder: masked (causal) self-attention over the output written so far, cross-attention
//! into the encoder memory, feed-forward. The same layer code serves teacher-forced training
//! (all positions at once) and cached step-by-step decoding (one position per call).

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use super::attention::{causal_bias, AttentionKind, KeyValues, MultiHeadAttention, Record};
use super::config::{FinalNorm, ModelConfig, NormPlacement};
use super::context::Ctx;
use super::embedding::{Embeddings, Start};
use super::layers::{FeedForward, LayerNorm, Linear};
use super::position_bias::{Direction, RelativePositionBias};
use super::source_memory::{CrossMemory, LayerMemory};
use super::state::SelfCache;

/// Attention probabilities of one decoder layer, when recorded.
#[derive(Debug, Clone)]
pub struct DecoderLayerAttention {
    /// [rows, heads, t, t_total]: zero above the causal diagonal.
    pub self_attn: Tensor,
    /// [rows, heads, t, s]
    pub cross_attn: Tensor,
}

/// What conditions the decoder besides its own tokens: the source memory (shared by every
/// step) and an optional target padding bias.
pub struct CrossInputs<'a> {
    /// The memory's keys/values for every layer, one entry per source sentence.
    pub memory: &'a CrossMemory,
    /// Decoder rows of each source sentence, in order (the beams; 1 in training); the same
    /// for every source with a batched memory.
    pub rows_of: &'a [usize],
    /// Additive self-attention bias, broadcastable to [rows, heads, t, t_total]. Callers of
    /// [`Decoder::forward`] pass target padding (or nothing); it adds the causal mask, once,
    /// before the layers see it.
    pub self_bias: Option<&'a Tensor>,
}

#[derive(Debug, Clone)]
pub struct DecoderLayer {
    pub self_attn: MultiHeadAttention,
    pub self_attn_norm: LayerNorm,
    pub cross_attn: MultiHeadAttention,
    pub cross_attn_norm: LayerNorm,
    pub ffn: FeedForward,
    pub ffn_norm: LayerNorm,
    placement: NormPlacement,
    dropout: f32,
}

impl DecoderLayer {
    pub fn new(vb: VarBuilder, c: &ModelConfig) -> Result<Self> {
        let norm = |name: &str| LayerNorm::new(vb.pp(name), c);
        Ok(DecoderLayer {
            self_attn: MultiHeadAttention::new(vb.pp("self_attn"), c, AttentionKind::DecoderSelf)?,
            self_attn_norm: norm("self_attn_norm")?,
            cross_attn: MultiHeadAttention::new(vb.pp("cross_attn"), c, AttentionKind::Cross)?,
            cross_attn_norm: norm("cross_attn_norm")?,
            ffn: FeedForward::new(vb.pp("ffn"), c)?,
            ffn_norm: norm("ffn_norm")?,
            placement: c.norm_placement,
            dropout: c.dropout.residual,
        })
    }

    /// Applies `f` to every linear projection of the layer.
    pub fn for_each_linear(&mut self, mut f: impl FnMut(&mut Linear) -> Result<()>) -> Result<()> {
        self.self_attn.for_each_linear(&mut f)?;
        self.cross_attn.for_each_linear(&mut f)?;
        self.ffn.for_each_linear(f)
    }

    /// x: [rows, t, d], the positions after those already in `cache`.
    ///
    /// `cache` holds this layer's self-attention keys/values of earlier positions and is
    /// extended with the new ones; `memory` is this layer's projection of the source memory;
    /// `cross.self_bias` is the complete self-attention bias (causal included).
    pub fn forward(
        &self,
        x: &Tensor,
        cache: &mut SelfCache,
        cross: &CrossInputs,
        memory: LayerMemory,
        record: Record,
        ctx: &Ctx,
    ) -> Result<(Tensor, Option<DecoderLayerAttention>)> {
        let mut self_probs = None;
        let mut cross_probs = None;
        let self_attention = |h: &Tensor, probs: &mut Option<Tensor>, cache: &mut SelfCache| -> Result<Tensor> {
            let out = match cache {
                SelfCache::Steps(steps) => self.self_attn.attend_step(h, steps, record, ctx)?,
                _ => {
                    let new = self.self_attn.project_kv(h, ctx)?;
                    let kv = match cache {
                        SelfCache::Tensors(past) => past.append(&new)?,
                        _ => new,
                    };
                    let out = self.self_attn.attend(h, &kv, cross.self_bias, 1, record, ctx)?;
                    *cache = SelfCache::Tensors(kv);
                    out
                }
            };
            *probs = out.probs;
            ctx.dropout(&out.output, self.dropout)
        };
        let cross_attention = |h: &Tensor, probs: &mut Option<Tensor>| -> Result<Tensor> {
            let out = match memory {
                // one position per row against each source's own memory: the CPU step kernels
                LayerMemory::PerSource { sources, layer } => {
                    self.cross_attn.attend_memory_step(h, sources, layer, cross.rows_of, record, ctx)?
                }
                LayerMemory::Batched { kv, bias } => {
                    let group = cross.rows_of.first().copied().unwrap_or(1);
                    if cross.rows_of.iter().any(|&n| n != group) {
                        candle_core::bail!("a batched memory needs the same rows for every source");
                    }
                    self.cross_attn.attend(h, kv, Some(bias), group, record, ctx)?
                }
            };
            *probs = out.probs;
            ctx.dropout(&out.output, self.dropout)
        };
        let ffn = |h: &Tensor| ctx.dropout(&self.ffn.forward(h, ctx)?, self.dropout);
        let x = match self.placement {
            NormPlacement::Pre => {
                let x = (x + self_attention(&self.self_attn_norm.forward(x, ctx)?, &mut self_probs, cache)?)?;
                let x = (&x + cross_attention(&self.cross_attn_norm.forward(&x, ctx)?, &mut cross_probs)?)?;
                (&x + ffn(&self.ffn_norm.forward(&x, ctx)?)?)?
            }
            NormPlacement::Post => {
                let x = self.self_attn_norm.forward(&(x + self_attention(x, &mut self_probs, cache)?)?, ctx)?;
                let x = self.cross_attn_norm.forward(&(&x + cross_attention(&x, &mut cross_probs)?)?, ctx)?;
                self.ffn_norm.forward(&(&x + ffn(&x)?)?, ctx)?
            }
        };
        let attention = match (self_probs, cross_probs) {
            (Some(self_attn), Some(cross_attn)) => Some(DecoderLayerAttention { self_attn, cross_attn }),
            _ => None,
        };
        Ok((x, attention))
    }
}

#[derive(Debug, Clone)]
pub struct Decoder {
    pub embeddings: Embeddings,
    pub layers: Vec<DecoderLayer>,
    pub final_norm: Option<LayerNorm>,
    /// T5's relative position bias, shared by the layers' self-attention.
    pub position_bias: Option<RelativePositionBias>,
}

/// Hidden states of the decoder's last layer, and attention when recorded.
#[derive(Debug, Clone)]
pub struct DecoderOutput {
    /// [rows, t, d]
    pub hidden: Tensor,
    pub attention: Vec<DecoderLayerAttention>,
}

impl Decoder {
    pub fn new(vb: VarBuilder, tokens: Tensor, c: &ModelConfig) -> Result<Self> {
        let layers = (0..c.decoder_layers)
            .map(|i| DecoderLayer::new(vb.pp(format!("layers.{i}")), c))
            .collect::<Result<Vec<_>>>()?;
        let final_norm = match c.final_norm {
            FinalNorm::Both => Some(LayerNorm::new(vb.pp("final_norm"), c)?),
            FinalNorm::None => None,
        };
        let position_bias = RelativePositionBias::new(vb.clone(), c, Direction::Causal)?;
        Ok(Decoder { embeddings: Embeddings::new(vb, tokens, c)?, layers, final_norm, position_bias })
    }

    /// Keys/values of the memory [b, s, d] for every layer's cross-attention.
    pub fn cross_kv(&self, memory_states: &Tensor, ctx: &Ctx) -> Result<Vec<KeyValues>> {
        self.layers.iter().map(|l| l.cross_attn.project_kv(memory_states, ctx)).collect()
    }

    /// ids: [rows, t] u32 at positions `start ..`; `caches` has one entry per layer.
    pub fn forward(
        &self,
        ids: &Tensor,
        start: usize,
        caches: &mut [SelfCache],
        cross: &CrossInputs,
        record: Record,
        ctx: &Ctx,
    ) -> Result<DecoderOutput> {
        self.forward_from(ids, &Start::Shared(start), caches, cross, record, ctx)
    }

    /// [`Decoder::forward`] at the positions of `start` (one token per row for
    /// [`Start::PerRow`], whose rows' caches then hold their own histories).
    pub fn forward_from(
        &self,
        ids: &Tensor,
        start: &Start,
        caches: &mut [SelfCache],
        cross: &CrossInputs,
        record: Record,
        ctx: &Ctx,
    ) -> Result<DecoderOutput> {
        debug_assert_eq!(caches.len(), self.layers.len());
        let mut x = self.embeddings.forward_from(ids, start, ctx)?;
        // one causal mask for all layers: query i (position start + i) sees keys 0 ..= start + i
        let t = ids.dim(1)?;
        let causal = match start {
            Start::Shared(start) => causal_bias(t, start + t, x.dtype(), x.device())?,
            // one new position per row: nothing to mask
            Start::PerRow(_) => None,
        };
        let self_bias = match (causal, cross.self_bias) {
            (Some(c), Some(b)) => Some(b.broadcast_add(&c)?),
            (Some(c), None) => Some(c),
            (None, b) => b.cloned(),
        };
        // T5's positions: the step kernels' caches add them themselves
        let stepping = matches!(caches.first(), Some(SelfCache::Steps(_)));
        let self_bias = match (&self.position_bias, start) {
            (Some(positions), Start::Shared(start)) if !stepping => {
                let bias = positions.bias(*start, t, start + t)?.to_dtype(x.dtype())?;
                Some(match self_bias {
                    Some(b) => b.broadcast_add(&bias)?,
                    None => bias,
                })
            }
            (Some(_), Start::PerRow(_)) if !stepping => {
                candle_core::bail!("relative positions at per-row starts need the fused CPU step kernels")
            }
            _ => self_bias,
        };
        let cross = CrossInputs { self_bias: self_bias.as_ref(), ..*cross };
        let mut attention = Vec::new();
        if !cross.memory.fits(self.layers.len()) {
            candle_core::bail!(
                "a source memory of {} layers for a decoder of {}",
                cross.memory.layers(),
                self.layers.len()
            );
        }
        for (i, (layer, cache)) in self.layers.iter().zip(caches.iter_mut()).enumerate() {
            let (y, att) = layer.forward(&x, cache, &cross, cross.memory.layer(i), record, ctx)?;
            x = y;
            attention.extend(att);
        }
        if let Some(norm) = &self.final_norm {
            x = norm.forward(&x, ctx)?;
        }
        Ok(DecoderOutput { hidden: x, attention })
    }
}
