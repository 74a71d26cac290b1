//! Token embeddings and position encodings.

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::{Init, VarBuilder};

use super::config::{EmbeddingScale, ModelConfig, PadEmbedding, Positions};
use super::context::Ctx;
use super::layers::TableRows;

/// A `[vocab, d_model]` table; the output projection may share it (see `Tying`).
pub fn embedding_table(vb: VarBuilder, vocab: usize, d_model: usize) -> Result<Tensor> {
    vb.get_with_hints((vocab, d_model), "weight", Init::Randn { mean: 0.0, stdev: (d_model as f64).powf(-0.5) })
}

/// Sinusoidal table [len, d].
pub fn sinusoids(len: usize, d: usize, layout: Positions, dtype: DType, device: &Device) -> Result<Tensor> {
    let half = d / 2;
    let mut values = vec![0f32; len * d];
    if layout == Positions::SinusoidalFairseq {
        fairseq_sinusoids(&mut values, len, d, 0);
        return Tensor::from_vec(values, (len, d), device)?.to_dtype(dtype);
    }
    for p in 0..len {
        for i in 0..half {
            let angle = p as f64 / 10000f64.powf(2.0 * i as f64 / d as f64);
            let (s, c) = (angle.sin() as f32, angle.cos() as f32);
            match layout {
                Positions::SinusoidalHalves => {
                    values[p * d + i] = s;
                    values[p * d + half + i] = c;
                }
                _ => {
                    values[p * d + 2 * i] = s;
                    values[p * d + 2 * i + 1] = c;
                }
            }
        }
    }
    Tensor::from_vec(values, (len, d), device)?.to_dtype(dtype)
}

/// fairseq's `SinusoidalPositionalEmbedding.get_embedding` for positions `offset..offset + len`
/// into `values` [len, d]: `[sin | cos]` halves of `p * exp(-i * ln(10000) / (half - 1))`, in f32
/// as PyTorch computes it (an odd `d` leaves the last column zero).
fn fairseq_sinusoids(values: &mut [f32], len: usize, d: usize, offset: usize) {
    let half = d / 2;
    let step = (10000f64.ln() / (half as f64 - 1.0).max(1.0)) as f32;
    let frequencies: Vec<f32> = (0..half).map(|i| (i as f32 * -step).exp()).collect();
    for p in 0..len {
        let position = (p + offset) as f32;
        for (i, f) in frequencies.iter().enumerate() {
            let angle = position * f;
            values[p * d + i] = angle.sin();
            values[p * d + half + i] = angle.cos();
        }
    }
}

/// The position of a call's first token.
#[derive(Debug, Clone)]
pub enum Start {
    /// Every row's first token is at this position.
    Shared(usize),
    /// Row `i`'s single token is at position `positions[i]`: \[rows\] u32 (rows that joined a
    /// batch mid-decoding are at earlier positions than the others).
    PerRow(Tensor),
}

/// Token embedding × scale + positions, then dropout.
#[derive(Debug, Clone)]
pub struct Embeddings {
    /// [vocab, d]
    pub tokens: Tensor,
    /// [max_positions, d]: fixed or trained; `None` for relative positions (T5), which enter
    /// as attention bias instead.
    pub positions: Option<Tensor>,
    /// Longest sequence.
    max_positions: usize,
    scale: f64,
    dropout: f32,
    /// Whole tokens dropped in training ([`Dropout::source_words`] on the source side, 0 on the
    /// target side).
    ///
    /// [`Dropout::source_words`]: super::config::Dropout::source_words
    word_dropout: f32,
    /// The padding id whose embedding is forced to zero ([`PadEmbedding::Zero`]).
    zero_pad: Option<u32>,
    /// Where rows are looked up instead of `tokens` once a translator shares the tied output
    /// projection's inference copy (see [`Embeddings::read_rows_from`]).
    rows: Option<TableRows>,
}

impl Embeddings {
    /// `tokens` is the (possibly shared) table; `vb` is the stack's prefix, for learned positions.
    pub fn new(vb: VarBuilder, tokens: Tensor, c: &ModelConfig) -> Result<Self> {
        let positions = match c.positions {
            Positions::Learned => Some(vb.pp("embed_positions").get_with_hints(
                (c.max_positions, c.d_model),
                "weight",
                Init::Randn { mean: 0.0, stdev: 0.02 },
            )?),
            Positions::SinusoidalFairseq => {
                // the first token sits at `pad + 1`: row p holds position p + pad + 1
                let mut values = vec![0f32; c.max_positions * c.d_model];
                fairseq_sinusoids(&mut values, c.max_positions, c.d_model, c.special.pad as usize + 1);
                Some(Tensor::from_vec(values, (c.max_positions, c.d_model), vb.device())?.to_dtype(vb.dtype())?)
            }
            Positions::Relative { .. } => None,
            layout => Some(sinusoids(c.max_positions, c.d_model, layout, vb.dtype(), vb.device())?),
        };
        let scale = match c.embedding_scale {
            EmbeddingScale::None => 1.0,
            EmbeddingScale::SqrtDModel => (c.d_model as f64).sqrt(),
        };
        let zero_pad = (c.pad_embedding == PadEmbedding::Zero).then_some(c.special.pad);
        Ok(Embeddings {
            tokens,
            positions,
            max_positions: c.max_positions,
            scale,
            dropout: c.dropout.residual,
            word_dropout: 0.0,
            zero_pad,
            rows: None,
        })
    }

    /// These embeddings with whole tokens dropped with probability `p` in training.
    pub fn with_word_dropout(self, p: f32) -> Self {
        Embeddings { word_dropout: p, ..self }
    }

    /// Looks rows up in `rows` (the tied output projection's packed or int8 copy, the same
    /// values) and drops the table: one copy of the largest matrix less, for inference only.
    pub fn read_rows_from(&mut self, rows: TableRows) -> Result<()> {
        let d = self.tokens.dim(1)?;
        self.tokens = Tensor::zeros((0, d), self.tokens.dtype(), self.tokens.device())?;
        self.rows = Some(rows);
        Ok(())
    }

    /// ids: [b, t] u32, first position `start` -> [b, t, d]
    pub fn forward(&self, ids: &Tensor, start: usize, ctx: &Ctx) -> Result<Tensor> {
        self.forward_from(ids, &Start::Shared(start), ctx)
    }

    /// ids: [b, t] u32 at the positions of `start` (t = 1 for [`Start::PerRow`]) -> [b, t, d]
    pub fn forward_from(&self, ids: &Tensor, start: &Start, ctx: &Ctx) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let max = self.max_positions;
        let last = match start {
            Start::Shared(start) => start + t,
            Start::PerRow(rows) => {
                if t != 1 || rows.dim(0)? != b {
                    candle_core::bail!("per-row positions: {} positions for [{b}, {t}] tokens", rows.dim(0)?);
                }
                rows.max(0)?.to_scalar::<u32>()? as usize + 1
            }
        };
        if last > max {
            candle_core::bail!("sequence of {last} positions exceeds max_positions {max}");
        }
        let d = self.tokens.dim(1)?;
        let x = match &self.rows {
            Some(rows) => {
                let values = rows.gather(&ids.flatten_all()?.to_vec1::<u32>()?);
                Tensor::from_vec(values, (b, t, d), ids.device())?.to_dtype(self.tokens.dtype())?
            }
            None => self.tokens.index_select(&ids.flatten_all()?, 0)?.reshape((b, t, d))?,
        };
        let x = match self.zero_pad {
            // also stops the lookup's gradient into the padding row
            Some(pad) => x.broadcast_mul(&ids.ne(pad)?.to_dtype(x.dtype())?.unsqueeze(2)?)?,
            None => x,
        };
        let x = if self.scale != 1.0 { (x * self.scale)? } else { x };
        let x = self.drop_words(x, ctx)?;
        let x = match (start, &self.positions) {
            (_, None) => x,
            (Start::Shared(start), Some(positions)) => x.broadcast_add(&positions.narrow(0, *start, t)?)?,
            (Start::PerRow(rows), Some(positions)) => (x + positions.index_select(rows, 0)?.unsqueeze(1)?)?,
        };
        ctx.dropout(&x, self.dropout)
    }

    /// x: [b, t, d] token embeddings -> the same with each token's row zeroed with probability
    /// `word_dropout` and the others scaled by `1 / (1 - word_dropout)`, in training only.
    fn drop_words(&self, x: Tensor, ctx: &Ctx) -> Result<Tensor> {
        if self.word_dropout <= 0.0 || !ctx.is_training() {
            return Ok(x);
        }
        let (b, t, _) = x.dims3()?;
        let tokens = Tensor::ones((b, t, 1), x.dtype(), x.device())?;
        x.broadcast_mul(&ctx.dropout(&tokens, self.word_dropout)?)
    }
}
