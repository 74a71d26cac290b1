//! Decoder state for step-by-step decoding: an explicit value, never hidden in layers.

use candle_core::{Device, Result, Tensor};

use super::attention::{KeyValues, MASKED};
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
        self.written = sources.iter().map(|&s| self.written[s as usize]).collect();
        self.trim_padding()
    }

    /// Drops the source positions that are padding for every sentence (left by a longer
    /// sentence that has gone).
    fn trim_padding(&mut self) -> Result<()> {
        let (sources, s) = (self.cross_bias.dim(0)?, self.cross_bias.dim(3)?);
        if sources == 0 {
            return Ok(());
        }
        let bias = self.cross_bias.flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?;
        let used = bias
            .chunks(s)
            .map(|row| row.iter().rposition(|&b| b > (MASKED / 2.0) as f32).map_or(0, |p| p + 1))
            .max()
            .unwrap_or(s);
        if used < s {
            for kv in self.cross_kv.iter_mut() {
                *kv =
                    KeyValues { k: kv.k.narrow(2, 0, used)?.contiguous()?, v: kv.v.narrow(2, 0, used)?.contiguous()? };
            }
            self.cross_bias = self.cross_bias.narrow(3, 0, used)?.contiguous()?;
        }
        Ok(())
    }

    /// Appends the sentences of `joining`, a fresh state of the same model and group (nothing
    /// decoded yet), after this state's: continuous batching, where waiting sentences join a
    /// batch between two steps. Their first step is the next one, at their own position 0;
    /// source memories of different lengths are padded (zero keys and values, masked), which
    /// changes no output.
    pub fn append(&mut self, joining: DecoderState) -> Result<()> {
        if joining.group != self.group {
            candle_core::bail!("append: groups of {} and {} rows per sentence", self.group, joining.group);
        }
        if joining.step() != 0 {
            candle_core::bail!("append: the joining sentences have started decoding");
        }
        if joining.cross_kv.len() != self.cross_kv.len() {
            candle_core::bail!("append: states of different models");
        }
        let rows = self.rows()?;
        let new_rows = joining.rows()?;
        for cache in self.self_kv.iter_mut() {
            cache.add_rows(rows, new_rows)?;
        }
        let len = self.cross_bias.dim(3)?.max(joining.cross_bias.dim(3)?);
        let pad = |t: &Tensor, dim: usize, value: Option<f64>| -> Result<Tensor> {
            let missing = len - t.dim(dim)?;
            if missing == 0 {
                return Ok(t.clone());
            }
            let mut shape = t.dims().to_vec();
            shape[dim] = missing;
            let fill = match value {
                Some(v) => Tensor::full(v as f32, shape, t.device())?.to_dtype(t.dtype())?,
                None => Tensor::zeros(shape, t.dtype(), t.device())?,
            };
            Tensor::cat(&[t, &fill], dim)
        };
        for (kv, new) in self.cross_kv.iter_mut().zip(&joining.cross_kv) {
            let k = Tensor::cat(&[pad(&kv.k, 2, None)?, pad(&new.k, 2, None)?], 0)?;
            let v = Tensor::cat(&[pad(&kv.v, 2, None)?, pad(&new.v, 2, None)?], 0)?;
            *kv = KeyValues { k, v };
        }
        self.cross_bias =
            Tensor::cat(&[pad(&self.cross_bias, 3, Some(MASKED))?, pad(&joining.cross_bias, 3, Some(MASKED))?], 0)?;
        self.written.extend(joining.written);
        Ok(())
    }
}
