//! Decoder state for step-by-step decoding: an explicit value, never hidden in layers.

use candle_core::{Device, Result, Tensor};

use super::attention::KeyValues;
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
/// Rows are grouped: rows `g * group .. (g + 1) * group` belong to source sentence `g` (the
/// beams of one sentence). The source memory is held once per source sentence and never
/// copied per row.
#[derive(Debug, Clone)]
pub struct DecoderState {
    /// Per layer, self-attention keys/values of the positions decoded so far.
    pub(crate) self_kv: Vec<SelfCache>,
    /// What cross-attention reads, per layer and source sentence.
    pub(crate) cross: CrossMemory,
    pub(crate) group: usize,
    /// Where the state's tensors are.
    pub(crate) device: Device,
    /// Per source sentence, the positions decoded so far (sentences that joined later have
    /// fewer).
    pub(crate) written: Vec<usize>,
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
        Some(self.written.iter().flat_map(|&w| std::iter::repeat_n(w as u32, self.group)).collect())
    }

    /// Called after each decoded position.
    pub(crate) fn advance(&mut self) {
        self.written.iter_mut().for_each(|w| *w += 1);
    }

    /// Decoder rows per source sentence.
    pub fn group(&self) -> usize {
        self.group
    }

    /// Number of source sentences.
    pub fn sources(&self) -> Result<usize> {
        self.cross.sources()
    }

    /// Number of decoder rows (sources × group).
    pub fn rows(&self) -> Result<usize> {
        Ok(self.sources()? * self.group)
    }

    /// What cross-attention reads (one entry per source sentence).
    pub fn cross_memory(&self) -> &CrossMemory {
        &self.cross
    }

    /// Reorders rows for beam search: new row `i` continues old row `indices[i]`.
    /// A row may only take the history of a row of the same source sentence, so the shared
    /// source memory stays valid and is not touched.
    pub fn reorder(&mut self, indices: &[u32]) -> Result<()> {
        let rows = self.rows()?;
        if indices.len() != rows {
            candle_core::bail!("reorder: {} indices for {rows} rows", indices.len());
        }
        for (i, &j) in indices.iter().enumerate() {
            if j as usize >= rows || j as usize / self.group != i / self.group {
                candle_core::bail!("reorder: row {i} cannot take row {j} (group size {})", self.group);
            }
        }
        for cache in self.self_kv.iter_mut() {
            cache.select_rows(indices, &self.device)?;
        }
        Ok(())
    }

    /// Keeps only the given source sentences (and all their rows), e.g. to drop finished
    /// sentences from a batch. `sources` are indices of source sentences, ascending.
    pub fn retain_sources(&mut self, sources: &[u32]) -> Result<()> {
        let group = self.group as u32;
        let rows: Vec<u32> = sources.iter().flat_map(|&s| (0..group).map(move |r| s * group + r)).collect();
        for cache in self.self_kv.iter_mut() {
            cache.select_rows(&rows, &self.device)?;
        }
        self.cross.retain(sources)?;
        self.written = sources.iter().map(|&s| self.written[s as usize]).collect();
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
        let rows = self.rows()?;
        let new_rows = joining.rows()?;
        for cache in self.self_kv.iter_mut() {
            cache.add_rows(rows, new_rows)?;
        }
        self.cross.append(joining.cross)?;
        self.written.extend(joining.written);
        Ok(())
    }
}
