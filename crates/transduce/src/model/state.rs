//! Decoder state for step-by-step decoding: an explicit value, never hidden in layers.

use candle_core::{Device, Result, Tensor};

use super::attention::KeyValues;
use super::candidates::Candidates;
use super::context::Ctx;
use super::seq2seq::Seq2Seq;
use super::source_memory::CrossMemory;
use crate::kernels::step_attention::StepCache;

/// One decoder layer's self-attention keys/values of the positions decoded so far.
#[derive(Debug, Clone, Default)]
pub enum SelfCache {
    #[default]
    Empty,
    /// [rows, heads, t, head_dim], copied when rows are reordered: any device, any number of
    /// new positions per call.
    Tensors(KeyValues),
    /// Kept per step on the CPU and reordered by index (one new position per call).
    Steps(StepCache),
}

impl SelfCache {
    /// New row `i` continues old row `indices[i]`.
    fn select_rows(&mut self, indices: &[u32], device: &Device) -> Result<()> {
        match self {
            SelfCache::Empty => {}
            SelfCache::Tensors(kv) => *kv = kv.index_rows(&Tensor::new(indices, device)?)?,
            SelfCache::Steps(steps) => steps.select_rows(indices),
        }
        Ok(())
    }

    /// Adds `rows` rows with no history after the `current` ones.
    fn add_rows(&mut self, current: usize, rows: usize) -> Result<()> {
        match self {
            SelfCache::Steps(steps) => steps.add_rows(current, rows),
            SelfCache::Empty if current == 0 => {}
            _ => candle_core::bail!(
                "sentences join a batch mid-decoding only with the fused CPU step kernels (a per-step cache)"
            ),
        }
        Ok(())
    }
}

/// Everything a decoder step needs from earlier steps and from the source.
///
/// Rows are grouped by source sentence, in order: source `s` holds `rows_of()[s]` consecutive
/// rows (the beams of one sentence; `group` each at the start). The source memory is held once
/// per source sentence and never copied per row. With per-source memories (the CPU step
/// kernels) a sentence's row count may change between steps ([`DecoderState::regroup`]): a
/// beam search starts from one row, not `group` copies of it.
#[derive(Debug, Clone)]
pub struct DecoderState {
    /// Per layer, self-attention keys/values of the positions decoded so far.
    pub(crate) self_kv: Vec<SelfCache>,
    /// What cross-attention reads, per layer and source sentence.
    pub(crate) cross: CrossMemory,
    /// Rows per source sentence at the start (the beam size).
    pub(crate) group: usize,
    /// Per source sentence, its rows now.
    pub(crate) rows_of: Vec<usize>,
    /// Where the state's tensors are.
    pub(crate) device: Device,
    /// Per source sentence, the positions decoded so far (sentences that joined later have
    /// fewer).
    pub(crate) written: Vec<usize>,
    /// Per source sentence, the target ids it may produce (a vocabulary shortlist), or `None`:
    /// the whole vocabulary.
    pub(crate) candidates: Option<Candidates>,
    /// The memory of an earlier step's logits, handed back ([`DecoderState::recycle`]) for
    /// the next step to write into.
    pub(crate) spare_logits: Vec<f32>,
}

impl DecoderState {
    /// Number of positions decoded so far (by the sentence that has decoded the most).
    pub fn step(&self) -> usize {
        self.written.iter().copied().max().unwrap_or(0)
    }

    /// The position each row decodes next, when rows differ (sentences joined mid-decoding);
    /// `None` when every row is at the same one.
    pub(crate) fn row_positions(&self) -> Option<Vec<u32>> {
        let first = *self.written.first()?;
        if self.written.iter().all(|&w| w == first) {
            return None;
        }
        Some(self.written.iter().zip(&self.rows_of).flat_map(|(&w, &n)| std::iter::repeat_n(w as u32, n)).collect())
    }

    /// Called after each decoded position.
    pub(crate) fn advance(&mut self) {
        self.written.iter_mut().for_each(|w| *w += 1);
    }

    /// Decoder rows per source sentence at the start.
    pub fn group(&self) -> usize {
        self.group
    }

    /// Decoder rows of each source sentence now, in order.
    pub fn rows_of(&self) -> &[usize] {
        &self.rows_of
    }

    /// Whether rows decode over target candidates (a vocabulary shortlist).
    pub fn has_candidates(&self) -> bool {
        self.candidates.is_some()
    }

    /// Restricts each source sentence to its own target candidates (one list per source, in
    /// order): its steps score only those tokens.
    pub fn set_candidates(&mut self, candidates: Candidates) -> Result<()> {
        if candidates.sources() != self.rows_of.len() {
            candle_core::bail!("candidates for {} sources, the state has {}", candidates.sources(), self.rows_of.len());
        }
        self.candidates = Some(candidates);
        Ok(())
    }

    /// Next-token logits [rows, vocab] row-major of `hidden` [rows, d] (this state's rows):
    /// the whole vocabulary, or each row's own candidates and -inf elsewhere.
    pub fn logits(&mut self, model: &Seq2Seq, hidden: &Tensor, ctx: &Ctx) -> Result<Vec<f32>> {
        let spare = std::mem::take(&mut self.spare_logits);
        match &mut self.candidates {
            Some(c) => c.logits(model, hidden, &self.rows_of, ctx, spare),
            None => model.logits_rows_into(hidden, ctx, spare),
        }
    }

    /// Hands back a step's logits once read, so the next step writes into the same memory
    /// (rows × vocabulary floats: 65 MB at NLLB's vocabulary and 64 rows, which a fresh
    /// allocation maps and faults in page by page).
    pub fn recycle(&mut self, logits: Vec<f32>) {
        self.spare_logits = logits;
    }

    /// Number of source sentences.
    pub fn sources(&self) -> Result<usize> {
        self.cross.sources()
    }

    /// Number of decoder rows (summed over the sources).
    pub fn rows(&self) -> Result<usize> {
        Ok(self.rows_of.iter().sum())
    }

    /// What cross-attention reads (one entry per source sentence).
    pub fn cross_memory(&self) -> &CrossMemory {
        &self.cross
    }

    /// Whether sources may hold different numbers of rows ([`DecoderState::regroup`]): with
    /// per-source memories.
    pub fn rows_can_vary(&self) -> bool {
        matches!(self.cross, CrossMemory::PerSource(_))
    }

    /// Reorders rows for beam search: new row `i` continues old row `indices[i]`.
    /// A row may only take the history of a row of the same source sentence, so the shared
    /// source memory stays valid and is not touched.
    pub fn reorder(&mut self, indices: &[u32]) -> Result<()> {
        let rows = self.rows_of.clone();
        self.regroup(indices, &rows)
    }

    /// [`DecoderState::reorder`] that also changes how many rows each source holds: after it,
    /// source `s` holds `rows[s]` rows (at least one), new row `i` continuing old row
    /// `indices[i]` of the same source. Sources of a batched memory keep `group` rows each.
    pub fn regroup(&mut self, indices: &[u32], rows: &[usize]) -> Result<()> {
        if rows.len() != self.rows_of.len() || indices.len() != rows.iter().sum::<usize>() {
            candle_core::bail!(
                "regroup: {} indices in {} groups for {} sources",
                indices.len(),
                rows.len(),
                self.rows_of.len()
            );
        }
        if rows.contains(&0) || (!self.rows_can_vary() && rows.iter().any(|&n| n != self.group)) {
            candle_core::bail!("regroup: {rows:?} rows per source (a batched memory keeps {} each)", self.group);
        }
        let old_source = source_of_rows(&self.rows_of);
        for (i, (&j, new)) in indices.iter().zip(source_of_rows(rows)).enumerate() {
            if old_source.get(j as usize) != Some(&new) {
                candle_core::bail!("regroup: row {i} of source {new} cannot take row {j}");
            }
        }
        let identity = rows == self.rows_of && indices.iter().enumerate().all(|(i, &j)| i as u32 == j);
        if !identity {
            for cache in self.self_kv.iter_mut() {
                cache.select_rows(indices, &self.device)?;
            }
        }
        self.rows_of = rows.to_vec();
        Ok(())
    }

    /// Keeps only the given source sentences (and all their rows), e.g. to drop finished
    /// sentences from a batch. `sources` are indices of source sentences, ascending.
    pub fn retain_sources(&mut self, sources: &[u32]) -> Result<()> {
        let starts = row_starts(&self.rows_of);
        let rows: Vec<u32> = sources
            .iter()
            .flat_map(|&s| (starts[s as usize]..starts[s as usize] + self.rows_of[s as usize]).map(|r| r as u32))
            .collect();
        for cache in self.self_kv.iter_mut() {
            cache.select_rows(&rows, &self.device)?;
        }
        self.cross.retain(sources)?;
        if let Some(c) = &mut self.candidates {
            c.retain(sources);
        }
        self.written = sources.iter().map(|&s| self.written[s as usize]).collect();
        self.rows_of = sources.iter().map(|&s| self.rows_of[s as usize]).collect();
        Ok(())
    }

    /// Appends the sentences of `joining`, a fresh state of the same model and group (nothing
    /// decoded yet), after this state's: continuous batching, where waiting sentences join a
    /// batch between two steps. Their first step is the next one, at their own position 0.
    /// Per-source memories are only linked; batched ones of different lengths are padded
    /// (zero keys and values, masked), which changes no output.
    pub fn append(&mut self, joining: DecoderState) -> Result<()> {
        if joining.group != self.group {
            candle_core::bail!("append: groups of {} and {} rows per sentence", self.group, joining.group);
        }
        if joining.step() != 0 {
            candle_core::bail!("append: the joining sentences have started decoding");
        }
        if joining.self_kv.len() != self.self_kv.len() {
            candle_core::bail!("append: states of different models");
        }
        if joining.candidates.is_some() != self.candidates.is_some() {
            candle_core::bail!("append: a state with a vocabulary shortlist and one without");
        }
        let rows = self.rows()?;
        let new_rows = joining.rows()?;
        for cache in self.self_kv.iter_mut() {
            cache.add_rows(rows, new_rows)?;
        }
        self.cross.append(joining.cross)?;
        if let (Some(c), Some(joining)) = (&mut self.candidates, joining.candidates) {
            c.append(joining);
        }
        self.written.extend(joining.written);
        self.rows_of.extend(joining.rows_of);
        Ok(())
    }
}

/// The first row of each source, given each one's row count.
pub(crate) fn row_starts(rows_of: &[usize]) -> Vec<usize> {
    rows_of
        .iter()
        .scan(0, |next, &n| {
            let start = *next;
            *next += n;
            Some(start)
        })
        .collect()
}

/// The source of each row, given each source's row count.
pub(crate) fn source_of_rows(rows_of: &[usize]) -> Vec<usize> {
    rows_of.iter().enumerate().flat_map(|(s, &n)| std::iter::repeat_n(s, n)).collect()
}
