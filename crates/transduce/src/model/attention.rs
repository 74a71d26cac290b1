//! Multi-head scaled dot-product attention: one implementation for the three roles.
//!
//! | role                | queries  | keys/values            | mask                          |
//! |---------------------|----------|------------------------|-------------------------------|
//! | encoder self        | encoder  | encoder (same layer)   | source padding                |
//! | decoder self        | decoder  | decoder, cached steps  | causal (+ target padding)     |
//! | cross               | decoder  | encoder memory         | source padding                |

use std::sync::Arc;

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::VarBuilder;

use super::config::{AttentionScale, ModelConfig};
use super::context::Ctx;
use super::layers::Linear;
use super::source_memory::SourceMemory;
use crate::kernels::step_attention::{self, MemoryRow, SourceMemories, StepCache};

/// Additive mask value for positions that must receive zero attention. Finite, so a fully
/// masked row (a padding query) stays finite instead of turning into NaN.
pub const MASKED: f64 = -1e9;

/// Which role an attention module plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttentionKind {
    EncoderSelf,
    DecoderSelf,
    Cross,
}

/// Whether a forward pass returns attention probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Record {
    #[default]
    Nothing,
    Probabilities,
}

/// Projected keys and values, split into heads: each [b, heads, len, head_dim].
#[derive(Debug, Clone)]
pub struct KeyValues {
    pub k: Tensor,
    pub v: Tensor,
}

impl KeyValues {
    pub fn len(&self) -> Result<usize> {
        self.k.dim(2)
    }

    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Appends `new` along the time axis.
    pub fn append(&self, new: &KeyValues) -> Result<KeyValues> {
        Ok(KeyValues { k: Tensor::cat(&[&self.k, &new.k], 2)?, v: Tensor::cat(&[&self.v, &new.v], 2)? })
    }

    /// Selects batch rows: `indices` \[n\] u32.
    pub fn index_rows(&self, indices: &Tensor) -> Result<KeyValues> {
        Ok(KeyValues { k: self.k.index_select(indices, 0)?, v: self.v.index_select(indices, 0)? })
    }
}

/// Output of one attention call.
#[derive(Debug, Clone)]
pub struct AttentionOutput {
    /// [b, tq, d_model]
    pub output: Tensor,
    /// [b, heads, tq, tk], when recorded.
    pub probs: Option<Tensor>,
}

#[derive(Debug, Clone)]
pub struct MultiHeadAttention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub out_proj: Linear,
    pub kind: AttentionKind,
    heads: usize,
    head_dim: usize,
    /// Multiplier of the logits `q k^T`.
    scale: f64,
    dropout: f32,
}

impl MultiHeadAttention {
    /// Projections `d_model -> heads * head_dim` and back.
    pub fn new(vb: VarBuilder, c: &ModelConfig, kind: AttentionKind) -> Result<Self> {
        let (d, inner, bias) = (c.d_model, c.attention_dim(), c.linear_bias);
        Ok(MultiHeadAttention {
            q_proj: Linear::new(vb.pp("q_proj"), d, inner, bias)?,
            k_proj: Linear::new(vb.pp("k_proj"), d, inner, bias)?,
            v_proj: Linear::new(vb.pp("v_proj"), d, inner, bias)?,
            out_proj: Linear::new(vb.pp("out_proj"), inner, d, bias)?,
            kind,
            heads: c.heads,
            head_dim: c.head_dim(),
            scale: match c.attention_scale {
                AttentionScale::InverseSqrtHeadDim => 1.0 / (c.head_dim() as f64).sqrt(),
                AttentionScale::None => 1.0,
            },
            dropout: c.dropout.attention,
        })
    }

    /// Applies `f` to each projection.
    pub fn for_each_linear(&mut self, mut f: impl FnMut(&mut Linear) -> Result<()>) -> Result<()> {
        for l in [&mut self.q_proj, &mut self.k_proj, &mut self.v_proj, &mut self.out_proj] {
            f(l)?;
        }
        Ok(())
    }

    /// Keys and values of rows `x` [m, d] as row-major [m, heads * head_dim] vectors, straight
    /// from the projections (no tensor, no split into heads).
    pub(crate) fn project_kv_rows(&self, x: &Tensor, ctx: &Ctx) -> Result<(Vec<f32>, Vec<f32>)> {
        Ok((self.k_proj.forward_rows(x, ctx)?, self.v_proj.forward_rows(x, ctx)?))
    }

    pub fn heads(&self) -> usize {
        self.heads
    }

    pub fn head_dim(&self) -> usize {
        self.head_dim
    }

    /// [b, t, d] -> [b, heads, t, head_dim]
    fn split_heads(&self, x: &Tensor, ctx: &Ctx) -> Result<Tensor> {
        if ctx.kernels.fused_for(x) {
            return crate::kernels::heads::split_heads(x, self.heads);
        }
        let (b, t, _) = x.dims3()?;
        x.reshape((b, t, self.heads, self.head_dim))?.transpose(1, 2)?.contiguous()
    }

    /// [b, heads, t, head_dim] -> [b, t, d]
    fn merge_heads(&self, x: &Tensor, ctx: &Ctx) -> Result<Tensor> {
        if ctx.kernels.fused_for(x) {
            return crate::kernels::heads::merge_heads(x);
        }
        let (b, _, t, _) = x.dims4()?;
        x.transpose(1, 2)?.reshape((b, t, self.heads * self.head_dim))
    }

    /// Keys and values of `x` [b, t, d] (source memory for cross-attention, the new decoder
    /// positions for decoder self-attention).
    pub fn project_kv(&self, x: &Tensor, ctx: &Ctx) -> Result<KeyValues> {
        Ok(KeyValues {
            k: self.split_heads(&self.k_proj.forward(x, ctx)?, ctx)?,
            v: self.split_heads(&self.v_proj.forward(x, ctx)?, ctx)?,
        })
    }

    /// Attends from `x` [b, tq, d] to `kv` ([b / group, heads, tk, head_dim]).
    ///
    /// `bias` is additive and broadcasts to [b / group, heads, group * tq, tk] (a per-head bias,
    /// T5's positions, only with `group` 1).
    /// `group` > 1 lets `group` consecutive query rows share one key/value row (the beams of one
    /// sentence against its source memory), so cross-attention K/V are never copied per beam.
    pub fn attend(
        &self,
        x: &Tensor,
        kv: &KeyValues,
        bias: Option<&Tensor>,
        group: usize,
        record: Record,
        ctx: &Ctx,
    ) -> Result<AttentionOutput> {
        let (b, tq, _) = x.dims3()?;
        let q = self.split_heads(&self.q_proj.forward(x, ctx)?, ctx)?;
        let q = if group > 1 {
            // [b, h, tq, dh] -> [b/g, g, h, tq, dh] -> [b/g, h, g*tq, dh]
            q.reshape((b / group, group, self.heads, tq, self.head_dim))?.transpose(1, 2)?.reshape((
                b / group,
                self.heads,
                group * tq,
                self.head_dim,
            ))?
        } else {
            q
        };
        let scale = self.scale;
        // the fused kernel gives no gradient to a bias: a trained (per-head) one trains unfused
        let per_head = bias.is_some_and(|b| b.rank() == 4 && b.dim(1).is_ok_and(|h| h > 1));
        let fused = record == Record::Nothing && ctx.kernels.fused_for(&q) && !(per_head && ctx.is_training());
        let (ctx_vectors, probs) = if fused {
            let dropout = ctx.dropout_seed(self.dropout);
            (crate::kernels::attention::attention(&q, &kv.k, &kv.v, bias, scale, dropout)?, None)
        } else {
            let scores = (q.matmul(&kv.k.t()?)? * scale)?;
            let scores = match bias {
                Some(bias) => scores.broadcast_add(bias)?,
                None => scores,
            };
            let probs = ctx.softmax(&scores)?;
            let ctx_vectors = ctx.dropout(&probs, self.dropout)?.matmul(&kv.v)?;
            (ctx_vectors, matches!(record, Record::Probabilities).then_some(probs))
        };
        // [b/g, h, g*tq, last] -> [b, h, tq, last]
        let ungroup = |t: Tensor| -> Result<Tensor> {
            if group == 1 {
                return Ok(t);
            }
            let last = t.dim(3)?;
            t.reshape((b / group, self.heads, group, tq, last))?.transpose(1, 2)?.reshape((b, self.heads, tq, last))
        };
        let ctx_vectors = ungroup(ctx_vectors)?;
        let probs = probs.map(ungroup).transpose()?;
        let output = self.out_proj.forward(&self.merge_heads(&ctx_vectors, ctx)?, ctx)?;
        Ok(AttentionOutput { output, probs })
    }
}

impl MultiHeadAttention {
    /// One decoding step of self-attention on the CPU: x [rows, 1, d]. The step's keys and
    /// values join `cache`, and every row attends over its own beam history there.
    pub fn attend_step(&self, x: &Tensor, cache: &mut StepCache, record: Record, ctx: &Ctx) -> Result<AttentionOutput> {
        let (rows, t, d) = x.dims3()?;
        if t != 1 {
            candle_core::bail!("a step cache takes one position at a time, got {t}");
        }
        // the bias of T5's positions comes with the cache (see StepCache::with_position_bias)
        let x = x.reshape((rows, d))?;
        let flat = |l: &Linear| -> Result<Vec<f32>> { l.forward(&x, ctx)?.flatten_all()?.to_vec1::<f32>() };
        cache.push(flat(&self.k_proj)?, flat(&self.v_proj)?);
        let q = flat(&self.q_proj)?;
        self.finish_step(&q, rows, cache, record, ctx, x.device())
    }

    /// One decoding step of cross-attention on the CPU: x [rows, 1, d], source `s`'s
    /// `rows_of[s]` consecutive rows against its memory (layer `layer`'s keys/values, read in
    /// place).
    pub fn attend_memory_step(
        &self,
        x: &Tensor,
        sources: &[Arc<SourceMemory>],
        layer: usize,
        rows_of: &[usize],
        record: Record,
        ctx: &Ctx,
    ) -> Result<AttentionOutput> {
        let (rows, t, d) = x.dims3()?;
        if t != 1 || rows != rows_of.iter().sum::<usize>() || rows_of.len() != sources.len() {
            candle_core::bail!(
                "a memory step takes one position per row: got [{rows}, {t}] for {} sources of {rows_of:?} rows",
                sources.len()
            );
        }
        let x = x.reshape((rows, d))?;
        let q = self.q_proj.forward(&x, ctx)?.flatten_all()?.to_vec1::<f32>()?;
        let memory = SourceMemories {
            rows: sources
                .iter()
                .zip(rows_of)
                .flat_map(|(s, &n)| {
                    let (k, v) = &s.layers[layer];
                    std::iter::repeat_n(MemoryRow::new(k, v, &s.bias, self.head_dim), n)
                })
                .collect(),
        };
        self.finish_step(&q, rows, &memory, record, ctx, x.device())
    }

    fn finish_step(
        &self,
        q: &[f32],
        rows: usize,
        source: &impl step_attention::KeyValueSource,
        record: Record,
        ctx: &Ctx,
        device: &Device,
    ) -> Result<AttentionOutput> {
        let scale = self.scale as f32;
        let mut probs = (record == Record::Probabilities).then(Vec::new);
        let out = step_attention::attend(q, self.heads, self.head_dim, scale, source, probs.as_mut());
        let out = Tensor::from_vec(out, (rows, 1, self.heads * self.head_dim), device)?;
        let len = source.positions();
        Ok(AttentionOutput {
            output: self.out_proj.forward(&out, ctx)?,
            probs: probs.map(|p| Tensor::from_vec(p, (rows, self.heads, 1, len), device)).transpose()?,
        })
    }
}

/// Additive bias [b, 1, 1, s] from a padding mask [b, s] (1 = token, 0 = padding).
pub fn padding_bias(mask: &Tensor, dtype: DType) -> Result<Tensor> {
    let (b, s) = mask.dims2()?;
    let keep = mask.to_dtype(dtype)?;
    ((keep - 1.0)? * -MASKED)?.reshape((b, 1, 1, s))
}

/// Causal additive bias [tq, tk] for queries at positions `tk - tq .. tk`: query i sees keys
/// `0 ..= i + tk - tq`. `None` when nothing is masked (a single new step).
pub fn causal_bias(tq: usize, tk: usize, dtype: DType, device: &Device) -> Result<Option<Tensor>> {
    if tq <= 1 {
        return Ok(None);
    }
    let offset = tk - tq;
    let values: Vec<f32> =
        (0..tq).flat_map(|i| (0..tk).map(move |j| if j <= i + offset { 0.0 } else { MASKED as f32 })).collect();
    Ok(Some(Tensor::from_vec(values, (tq, tk), device)?.to_dtype(dtype)?))
}
