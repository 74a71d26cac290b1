//! Decoder state for step-by-step decoding: an explicit value, never hidden in layers.

use candle_core::{Device, Result, Tensor};

use super::attention::KeyValues;
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
}

/// Everything a decoder step needs from earlier steps and from the source.
///
/// Rows are grouped: rows `g * group .. (g + 1) * group` belong to source sentence `g` (the
/// beams of one sentence). Cross-attention keys/values are held once per source sentence and
/// never copied per row.
#[derive(Debug, Clone)]
pub struct DecoderState {
    /// Per layer, self-attention keys/values of the positions decoded so far.
    pub(crate) self_kv: Vec<SelfCache>,
    /// Per layer, projected memory: [sources, heads, s, head_dim].
    pub(crate) cross_kv: Vec<KeyValues>,
    /// Source padding bias [sources, 1, 1, s].
    pub(crate) cross_bias: Tensor,
    pub(crate) group: usize,
    pub(crate) step: usize,
}

impl DecoderState {
    /// Number of positions decoded so far.
    pub fn step(&self) -> usize {
        self.step
    }

    /// Decoder rows per source sentence.
    pub fn group(&self) -> usize {
        self.group
    }

    /// Number of source sentences.
    pub fn sources(&self) -> Result<usize> {
        self.cross_bias.dim(0)
    }

    /// Number of decoder rows (sources × group).
    pub fn rows(&self) -> Result<usize> {
        Ok(self.sources()? * self.group)
    }

    /// Per-layer cross-attention keys/values (one row per source sentence).
    pub fn cross_kv(&self) -> &[KeyValues] {
        &self.cross_kv
    }

    /// Reorders rows for beam search: new row `i` continues old row `indices[i]`.
    /// A row may only take the history of a row of the same source sentence, so the shared
    /// cross-attention keys/values stay valid and are not touched.
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
        let device: Device = self.cross_bias.device().clone();
        for cache in self.self_kv.iter_mut() {
            cache.select_rows(indices, &device)?;
        }
        Ok(())
    }

    /// Keeps only the given source sentences (and all their rows), e.g. to drop finished
    /// sentences from a batch. `sources` are indices of source sentences, ascending.
    pub fn retain_sources(&mut self, sources: &[u32]) -> Result<()> {
        let device: Device = self.cross_bias.device().clone();
        let src_index = Tensor::new(sources, &device)?;
        let group = self.group as u32;
        let rows: Vec<u32> = sources.iter().flat_map(|&s| (0..group).map(move |r| s * group + r)).collect();
        for cache in self.self_kv.iter_mut() {
            cache.select_rows(&rows, &device)?;
        }
        for kv in self.cross_kv.iter_mut() {
            *kv = kv.index_rows(&src_index)?;
        }
        self.cross_bias = self.cross_bias.index_select(&src_index, 0)?;
        Ok(())
    }
}
