//! What a search sees of a model: a step function over grouped rows.

use candle_core::{DType, Result, Tensor};

use super::constraints::{most_probable, next_token, rows_logp, NextToken, SearchTokens};
use super::options::{Alignment, DecodeOptions, Target};
use crate::kernels::largest::Largest;
use crate::kernels::Kernels;
use crate::model::{Candidates, Ctx, DecoderState, Memory, Record, Seq2Seq};

/// One decoding step's results for every row.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutput {
    /// `[rows][vocab]` next-token logits, flattened row-major.
    pub logits: Vec<f32>,
    /// `[rows][source_len]` cross-attention (heads averaged), when asked for.
    pub attention: Option<Vec<f32>>,
    /// Source positions per attention row (padding included).
    pub source_len: usize,
}

/// A decoder that scores the next token for rows grouped by source sentence.
pub trait StepModel {
    /// Per-batch decoding state.
    type State;

    /// First decoder input (Marian: pad; here usually `<s>`).
    fn start_token(&self) -> u32;
    fn eos(&self) -> u32;
    /// Longest output the model can produce (EOS excluded).
    fn max_len(&self) -> usize;
    /// A token never to generate (padding), if the model has one.
    fn pad(&self) -> Option<u32> {
        None
    }
    /// EOS and padding, as the constraints need them.
    fn search_tokens(&self) -> SearchTokens {
        SearchTokens { eos: self.eos(), pad: self.pad() }
    }
    fn vocab(&self) -> usize;
    /// Source sentences in a fresh state.
    fn sources(&self) -> usize;
    /// A state with `group` rows per source sentence.
    fn start(&self, group: usize) -> Result<Self::State>;
    /// Scores the next token of each row, given each row's last token.
    fn step(&self, last: &[u32], state: &mut Self::State, alignment: Alignment) -> Result<StepOutput>;
    /// [`StepModel::step`], then each row's most probable allowed token, as greedy search takes
    /// it from [`rows_logp`] (`rows[i] = (history, target)` of row `i`): a model may find the
    /// same tokens with less work than all the log-probabilities.
    fn step_most_probable(
        &self,
        last: &[u32],
        state: &mut Self::State,
        rows: &[(&[u32], &Target)],
        opts: &DecodeOptions,
    ) -> Result<Vec<u32>> {
        let out = self.step(last, state, Alignment::Off)?;
        let chosen = most_probable_rows(&out.logits, rows, opts, self.search_tokens());
        self.recycle(state, out.logits);
        Ok(chosen)
    }
    /// New row `i` continues old row `indices[i]` (within its source's group).
    fn reorder(&self, state: &mut Self::State, indices: &[u32]) -> Result<()>;
    /// Whether the sentences of `state` may hold different numbers of rows
    /// ([`StepModel::regroup`]); when not, each holds its `group` rows throughout.
    fn rows_can_vary(&self, _state: &Self::State) -> bool {
        false
    }
    /// New row `i` continues old row `indices[i]` (of the same source), and source `s` holds
    /// `rows[s]` rows after it: only where [`StepModel::rows_can_vary`].
    fn regroup(&self, _state: &mut Self::State, _indices: &[u32], _rows: &[usize]) -> Result<()> {
        candle_core::bail!("this model keeps the same rows for every sentence")
    }
    /// Takes back a step's logits once the search has read them (to write the next step's
    /// into the same memory); by default they are dropped.
    fn recycle(&self, _state: &mut Self::State, _logits: Vec<f32>) {}
    /// Keeps only the groups of the listed sources (positions in the current state), in order.
    fn retain(&self, state: &mut Self::State, sources: &[u32]) -> Result<()>;
    /// Appends the sentences of a fresh state (`joining`, from [`StepModel::start`] on other
    /// sources) after those of `state`, whatever `state` has decoded: continuous batching.
    fn append(&self, _state: &mut Self::State, _joining: Self::State) -> Result<()> {
        candle_core::bail!("this model cannot add sentences to a batch mid-decoding")
    }
}

/// Each row's most probable allowed token from its logits ([`rows_logp`], then
/// [`most_probable`]).
fn most_probable_rows(
    logits: &[f32],
    rows: &[(&[u32], &Target)],
    opts: &DecodeOptions,
    tokens: SearchTokens,
) -> Vec<u32> {
    let logp = rows_logp(logits, rows, opts, tokens);
    let v = logp.len() / rows.len().max(1);
    logp.chunks(v.max(1)).take(rows.len()).map(|row| most_probable(row, tokens.eos)).collect()
}

/// A [`Seq2Seq`] decoding one encoded batch with the fused kernels ([`EncodedBatch::new`]) or
/// the kernels of choice ([`EncodedBatch::with_kernels`]).
pub struct EncodedBatch<'a> {
    pub model: &'a Seq2Seq,
    pub memory: &'a Memory,
    pub kernels: Kernels,
    /// Per source sentence of `memory`, the target ids it may produce (a vocabulary
    /// shortlist), given to the states [`StepModel::start`] makes.
    pub candidates: Option<Candidates>,
}

impl<'a> EncodedBatch<'a> {
    pub fn new(model: &'a Seq2Seq, memory: &'a Memory) -> Self {
        Self::with_kernels(model, memory, Kernels::default())
    }

    pub fn with_kernels(model: &'a Seq2Seq, memory: &'a Memory, kernels: Kernels) -> Self {
        EncodedBatch { model, memory, kernels, candidates: None }
    }

    /// Decodes each source sentence over its own target candidates only.
    pub fn with_candidates(mut self, candidates: Option<Candidates>) -> Self {
        self.candidates = candidates;
        self
    }

    fn ctx(&self) -> Ctx {
        Ctx::eval().with_kernels(self.kernels)
    }
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
        self.model.config.max_positions - 1
    }
    fn pad(&self) -> Option<u32> {
        Some(self.model.config.special.pad)
    }
    fn vocab(&self) -> usize {
        self.model.config.vocab.target()
    }
    fn sources(&self) -> usize {
        self.memory.states.dim(0).unwrap_or(0)
    }
    fn start(&self, group: usize) -> Result<DecoderState> {
        let mut state = self.model.start_with(self.memory, group, &self.ctx())?;
        if let Some(c) = &self.candidates {
            state.set_candidates(c.clone())?;
        }
        Ok(state)
    }
    fn step(&self, last: &[u32], state: &mut DecoderState, alignment: Alignment) -> Result<StepOutput> {
        let device = self.memory.states.device();
        let last = Tensor::new(last, device)?;
        let ctx = self.ctx();
        let layers = self.model.decoder.layers.len();
        let layer = match alignment {
            Alignment::Off => None,
            Alignment::LastLayer => Some(layers - 1),
            Alignment::Layer(l) if l < layers => Some(l),
            Alignment::Layer(l) => candle_core::bail!("alignment layer {l}: the decoder has {layers} layers"),
        };
        let record = if layer.is_some() { Record::Probabilities } else { Record::Nothing };
        let out = self.model.decode_step_with(&last, state, record, &ctx)?;
        let logits = state.logits(self.model, &out.hidden.squeeze(1)?, &ctx)?;
        let source_len = state.cross_memory().positions()?;
        let attention = match layer {
            // [rows, heads, 1, s] -> [rows, s]
            Some(l) => {
                Some(out.attention[l].cross_attn.mean(1)?.squeeze(1)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?)
            }
            None => None,
        };
        Ok(StepOutput { logits, attention, source_len })
    }
    /// Finds the largest logits from the output projection's high halves where it is packed so
    /// ([`crate::kernels::largest`]): rows whose token the prefix or the length limit forces
    /// skip the projection, and only rows left unsettled (near-ties, a repetition penalty, a
    /// vocabulary shortlist) compute their logits in full.
    fn step_most_probable(
        &self,
        last: &[u32],
        state: &mut DecoderState,
        rows: &[(&[u32], &Target)],
        opts: &DecodeOptions,
    ) -> Result<Vec<u32>> {
        let ctx = self.ctx();
        let out = self.model.decode_step_with(
            &Tensor::new(last, self.memory.states.device())?,
            state,
            Record::Nothing,
            &ctx,
        )?;
        let hidden = out.hidden.squeeze(1)?;
        let tokens = self.search_tokens();
        let rules: Vec<NextToken> =
            rows.iter().map(|(history, target)| next_token(history, target, opts, tokens)).collect();
        let mut chosen: Vec<Option<u32>> =
            rules.iter().map(|r| if let NextToken::Forced(t) = r { Some(*t) } else { None }).collect();
        let open: Vec<usize> = (0..rows.len()).filter(|&i| matches!(rules[i], NextToken::AllBut(_))).collect();
        if !open.is_empty() && !state.has_candidates() {
            let index = Tensor::new(open.iter().map(|&i| i as u32).collect::<Vec<_>>(), hidden.device())?;
            let banned: Vec<&[u32]> = open
                .iter()
                .map(|&i| match &rules[i] {
                    NextToken::AllBut(b) => &b[..],
                    _ => unreachable!("open rows ban tokens"),
                })
                .collect();
            if let Some(found) = self.model.largest_logits(&hidden.index_select(&index, 0)?, &banned, &ctx)? {
                for (&i, f) in open.iter().zip(found) {
                    if let Largest::At(t) = f {
                        chosen[i] = Some(t);
                    }
                }
            }
        }
        if chosen.iter().any(Option::is_none) {
            // the rest from their log-probabilities (all rows' logits: the usual projection)
            let logits = state.logits(self.model, &hidden, &ctx)?;
            let full = most_probable_rows(&logits, rows, opts, tokens);
            state.recycle(logits);
            for (c, f) in chosen.iter_mut().zip(full) {
                c.get_or_insert(f);
            }
        }
        Ok(chosen.into_iter().map(|c| c.expect("every row chosen")).collect())
    }
    fn reorder(&self, state: &mut DecoderState, indices: &[u32]) -> Result<()> {
        state.reorder(indices)
    }
    fn rows_can_vary(&self, state: &DecoderState) -> bool {
        state.rows_can_vary()
    }
    fn regroup(&self, state: &mut DecoderState, indices: &[u32], rows: &[usize]) -> Result<()> {
        state.regroup(indices, rows)
    }
    fn retain(&self, state: &mut DecoderState, sources: &[u32]) -> Result<()> {
        state.retain_sources(sources)
    }
    fn recycle(&self, state: &mut DecoderState, logits: Vec<f32>) {
        state.recycle(logits);
    }
    fn append(&self, state: &mut DecoderState, joining: DecoderState) -> Result<()> {
        state.append(joining)
    }
}
