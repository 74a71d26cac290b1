//! What a search sees of a model: a step function over grouped rows.

use candle_core::{Result, Tensor, D};

use crate::model::{DecoderState, Memory, Seq2Seq};

/// A decoder that scores the next token for rows grouped by source sentence.
pub trait StepModel {
    /// Per-batch decoding state.
    type State;

    /// First decoder input (Marian: pad; here usually `<s>`).
    fn start_token(&self) -> u32;
    fn eos(&self) -> u32;
    /// Longest output the model can produce.
    fn max_len(&self) -> usize;
    /// A state with `group` rows per source sentence.
    fn start(&self, group: usize) -> Result<Self::State>;
    /// Log-probabilities of the next token for each row, given each row's last token:
    /// `[rows][vocab]`, flattened row-major.
    fn step(&self, last: &[u32], state: &mut Self::State) -> Result<Vec<f32>>;
    /// New row `i` continues old row `indices[i]` (within its source's group).
    fn reorder(&self, state: &mut Self::State, indices: &[u32]) -> Result<()>;
    fn vocab(&self) -> usize;
}

/// A [`Seq2Seq`] decoding one encoded batch.
pub struct EncodedBatch<'a> {
    pub model: &'a Seq2Seq,
    pub memory: &'a Memory,
}

impl StepModel for EncodedBatch<'_> {
    type State = DecoderState;

    fn start_token(&self) -> u32 {
        self.model.config.special.decoder_start
    }
    fn eos(&self) -> u32 {
        self.model.config.special.eos
    }
    fn max_len(&self) -> usize {
        self.model.config.max_positions
    }
    fn start(&self, group: usize) -> Result<DecoderState> {
        self.model.start(self.memory, group)
    }
    fn step(&self, last: &[u32], state: &mut DecoderState) -> Result<Vec<f32>> {
        let logits = self.model.decode_step(&Tensor::new(last, self.memory.states.device())?, state)?;
        let logp = crate::kernels::log_softmax_last_dim(&logits)?;
        logp.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1()
    }
    fn reorder(&self, state: &mut DecoderState, indices: &[u32]) -> Result<()> {
        state.reorder(indices)
    }
    fn vocab(&self) -> usize {
        self.model.lm_head.bias.dim(D::Minus1).unwrap_or(0)
    }
}
