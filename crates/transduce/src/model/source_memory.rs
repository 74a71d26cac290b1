//! The source memory a decoder's cross-attention reads while decoding: held as batch tensors
//! (any device, any kernels), or per source sentence for the CPU step kernels, so that
//! sentences join and leave a continuous batch without copying the memories of the others.

use std::sync::Arc;

use candle_core::{DType, Result, Tensor};

use super::attention::{KeyValues, MultiHeadAttention, MASKED};
use super::context::Ctx;

/// The cross-attention memory of a decoding batch, one entry per source sentence.
#[derive(Debug, Clone)]
pub enum CrossMemory {
    /// Per decoder layer, keys/values [sources, heads, s, head_dim] (shorter sources padded),
    /// with the padding bias [sources, 1, 1, s].
    Batched { kv: Vec<KeyValues>, bias: Tensor },
    /// Each source sentence's own memory, unpadded: what the step kernels read in place.
    PerSource(Vec<Arc<SourceMemory>>),
}

/// One source sentence's cross-attention memory for the CPU step kernels.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceMemory {
    /// Per decoder layer, keys and values [heads, len, head_dim].
    pub(crate) layers: Vec<(Vec<f32>, Vec<f32>)>,
    /// Additive bias [len] (0 but where the source itself masks a position).
    pub(crate) bias: Vec<f32>,
}

impl SourceMemory {
    /// Source positions.
    pub fn len(&self) -> usize {
        self.bias.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bias.is_empty()
    }
}

/// One decoder layer's view of a [`CrossMemory`].
#[derive(Debug, Clone, Copy)]
pub enum LayerMemory<'a> {
    Batched { kv: &'a KeyValues, bias: &'a Tensor },
    PerSource { sources: &'a [Arc<SourceMemory>], layer: usize },
}

/// The positions of each source that are not padding: up to its last unmasked one (sources
/// are right-padded), at least one. `bias`: [sources, 1, 1, s].
fn own_lengths(bias: &Tensor) -> Result<Vec<usize>> {
    let s = bias.dim(3)?;
    let values = bias.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
    Ok(values
        .chunks(s.max(1))
        .map(|row| row.iter().rposition(|&b| b > (MASKED / 2.0) as f32).map_or(1, |p| p + 1).min(s))
        .collect())
}

/// One memory per source of `bias` [sources, 1, 1, s], its bias cut to the source's own
/// length ([`own_lengths`]) and no layers yet.
fn unfilled_memories(bias: &Tensor) -> Result<Vec<SourceMemory>> {
    let s = bias.dim(3)?;
    let flat_bias = bias.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
    Ok(own_lengths(bias)?
        .iter()
        .enumerate()
        .map(|(i, &len)| SourceMemory { layers: Vec::new(), bias: flat_bias[i * s..][..len].to_vec() })
        .collect())
}

impl CrossMemory {
    /// Splits batch keys/values (per layer, [sources, heads, s, head_dim] f32) and their
    /// padding bias [sources, 1, 1, s] into per-source memories, each cut to its own length.
    pub fn per_source(kv: &[KeyValues], bias: &Tensor) -> Result<Self> {
        let (sources, s) = (bias.dim(0)?, bias.dim(3)?);
        let mut memories = unfilled_memories(bias)?;
        for layer in kv {
            let (_, heads, _, head_dim) = layer.k.dims4()?;
            let k = layer.k.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
            let v = layer.v.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
            let block = heads * s * head_dim;
            // [heads, s, head_dim] of source i, each head cut to its first `len` positions
            let cut = |all: &[f32], i: usize, len: usize| -> Vec<f32> {
                all[i * block..][..block]
                    .chunks(s * head_dim)
                    .flat_map(|head| &head[..len * head_dim])
                    .copied()
                    .collect()
            };
            for (i, memory) in memories.iter_mut().enumerate().take(sources) {
                let len = memory.len();
                memory.layers.push((cut(&k, i, len), cut(&v, i, len)));
            }
        }
        Ok(CrossMemory::PerSource(memories.into_iter().map(Arc::new).collect()))
    }

    /// Each source's own positions of `states` [sources, s, d] (up to its last unmasked one in
    /// `bias` [sources, 1, 1, s], as [`CrossMemory::per_source`] cuts them) projected through
    /// every layer of `layers` into per-source memories: the same memories as projecting the
    /// padded batch and cutting it, without projecting the padding or copying the batch
    /// twice (split into heads, then cut).
    pub fn project_per_source(
        states: &Tensor,
        bias: &Tensor,
        layers: &[&MultiHeadAttention],
        ctx: &Ctx,
    ) -> Result<Self> {
        let (sources, s, d) = states.dims3()?;
        let mut memories = unfilled_memories(bias)?;
        let rows: Vec<u32> = memories
            .iter()
            .enumerate()
            .flat_map(|(i, memory)| (0..memory.len()).map(move |t| (i * s + t) as u32))
            .collect();
        let x = states.reshape((sources * s, d))?.index_select(&Tensor::new(rows, states.device())?, 0)?;
        for attention in layers {
            let (heads, head_dim) = (attention.heads(), attention.head_dim());
            let (k, v) = attention.project_kv_rows(&x, ctx)?;
            // rows [len, heads * head_dim] of each source -> [heads, len, head_dim]
            let mut first = 0;
            for memory in memories.iter_mut() {
                let len = memory.len();
                let by_head = |all: &[f32]| -> Vec<f32> {
                    let own = &all[first * heads * head_dim..][..len * heads * head_dim];
                    (0..heads)
                        .flat_map(|h| {
                            own.chunks_exact(heads * head_dim).flat_map(move |row| &row[h * head_dim..][..head_dim])
                        })
                        .copied()
                        .collect()
                };
                memory.layers.push((by_head(&k), by_head(&v)));
                first += len;
            }
        }
        Ok(CrossMemory::PerSource(memories.into_iter().map(Arc::new).collect()))
    }

    /// Number of source sentences.
    pub fn sources(&self) -> Result<usize> {
        match self {
            CrossMemory::Batched { bias, .. } => bias.dim(0),
            CrossMemory::PerSource(sources) => Ok(sources.len()),
        }
    }

    /// Positions a row's attention spans: the padded length, or the longest source.
    pub fn positions(&self) -> Result<usize> {
        match self {
            CrossMemory::Batched { bias, .. } => bias.dim(3),
            CrossMemory::PerSource(sources) => Ok(sources.iter().map(|s| s.len()).max().unwrap_or(0)),
        }
    }

    /// Decoder layers the memory is projected for.
    pub fn layers(&self) -> usize {
        match self {
            CrossMemory::Batched { kv, .. } => kv.len(),
            CrossMemory::PerSource(sources) => sources.first().map_or(0, |s| s.layers.len()),
        }
    }

    /// Whether every source has a memory for each of `layers` decoder layers.
    pub fn fits(&self, layers: usize) -> bool {
        match self {
            CrossMemory::Batched { kv, .. } => kv.len() == layers,
            CrossMemory::PerSource(sources) => sources.iter().all(|s| s.layers.len() == layers),
        }
    }

    /// What decoder layer `layer` reads.
    pub fn layer(&self, layer: usize) -> LayerMemory<'_> {
        match self {
            CrossMemory::Batched { kv, bias } => LayerMemory::Batched { kv: &kv[layer], bias },
            CrossMemory::PerSource(sources) => LayerMemory::PerSource { sources, layer },
        }
    }

    /// Keeps only the listed sources (ascending positions), in order.
    pub(crate) fn retain(&mut self, keep: &[u32]) -> Result<()> {
        match self {
            CrossMemory::PerSource(sources) => {
                *sources = keep.iter().map(|&s| sources[s as usize].clone()).collect();
            }
            CrossMemory::Batched { kv, bias } => {
                let index = Tensor::new(keep, bias.device())?;
                for layer in kv.iter_mut() {
                    *layer = layer.index_rows(&index)?;
                }
                *bias = bias.index_select(&index, 0)?;
                self.trim_padding()?;
            }
        }
        Ok(())
    }

    /// Drops the batch positions that are padding for every source (left by a longer
    /// sentence that has gone).
    fn trim_padding(&mut self) -> Result<()> {
        let CrossMemory::Batched { kv, bias } = self else {
            return Ok(());
        };
        let (sources, s) = (bias.dim(0)?, bias.dim(3)?);
        if sources == 0 {
            return Ok(());
        }
        let used = own_lengths(bias)?.into_iter().max().unwrap_or(s);
        if used < s {
            for layer in kv.iter_mut() {
                *layer = KeyValues {
                    k: layer.k.narrow(2, 0, used)?.contiguous()?,
                    v: layer.v.narrow(2, 0, used)?.contiguous()?,
                };
            }
            *bias = bias.narrow(3, 0, used)?.contiguous()?;
        }
        Ok(())
    }

    /// Appends the sources of `joining` (of the same model and kind) after these.
    pub(crate) fn append(&mut self, joining: CrossMemory) -> Result<()> {
        if !joining.fits(self.layers()) {
            candle_core::bail!("append: memories of different models");
        }
        match (self, joining) {
            (CrossMemory::PerSource(sources), CrossMemory::PerSource(new)) => sources.extend(new),
            (CrossMemory::Batched { kv, bias }, CrossMemory::Batched { kv: new_kv, bias: new_bias }) => {
                // shorter memories padded with zero keys and values, masked
                let len = bias.dim(3)?.max(new_bias.dim(3)?);
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
                for (layer, new) in kv.iter_mut().zip(&new_kv) {
                    let k = Tensor::cat(&[pad(&layer.k, 2, None)?, pad(&new.k, 2, None)?], 0)?;
                    let v = Tensor::cat(&[pad(&layer.v, 2, None)?, pad(&new.v, 2, None)?], 0)?;
                    *layer = KeyValues { k, v };
                }
                *bias = Tensor::cat(&[pad(bias, 3, Some(MASKED))?, pad(&new_bias, 3, Some(MASKED))?], 0)?;
            }
            _ => candle_core::bail!("append: a batched memory and a per-source one (states of different kernels)"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    /// Two sources padded to 3 positions (the second has 2), 2 heads of width 2, 2 layers.
    fn batch() -> (Vec<KeyValues>, Tensor) {
        let dev = Device::Cpu;
        let layer = |offset: f32| {
            let k: Vec<f32> = (0..24).map(|i| i as f32 + offset).collect();
            let v: Vec<f32> = (0..24).map(|i| -(i as f32) - offset).collect();
            KeyValues {
                k: Tensor::from_vec(k, (2, 2, 3, 2), &dev).unwrap(),
                v: Tensor::from_vec(v, (2, 2, 3, 2), &dev).unwrap(),
            }
        };
        let bias = Tensor::from_vec(vec![0f32, 0., 0., 0., 0., MASKED as f32], (2, 1, 1, 3), &dev).unwrap();
        (vec![layer(0.0), layer(100.0)], bias)
    }

    #[test]
    fn per_source_memories_are_the_batch_rows_cut_to_their_own_length() {
        let (kv, bias) = batch();
        let CrossMemory::PerSource(sources) = CrossMemory::per_source(&kv, &bias).unwrap() else {
            panic!("per-source memory expected")
        };
        assert_eq!(sources.iter().map(|s| s.len()).collect::<Vec<_>>(), [3, 2]);
        // source 1, layer 1: heads [12..18) and [18..24) of the batch, first 2 positions each
        let (k, v) = &sources[1].layers[1];
        assert_eq!(k, &[112., 113., 114., 115., 118., 119., 120., 121.]);
        assert_eq!(v, &[-112., -113., -114., -115., -118., -119., -120., -121.]);
        assert_eq!(sources[0].layers[0].0, (0..12).map(|i| i as f32).collect::<Vec<_>>());
        assert_eq!(sources[1].bias, [0., 0.]);
    }

    #[test]
    fn sources_join_and_leave_without_copying_any_memory() {
        let (kv, bias) = batch();
        let mut memory = CrossMemory::per_source(&kv, &bias).unwrap();
        let joining = CrossMemory::per_source(&kv, &bias).unwrap();
        let (CrossMemory::PerSource(before), CrossMemory::PerSource(new)) = (memory.clone(), joining.clone()) else {
            panic!("per-source memories expected")
        };
        memory.append(joining).unwrap();
        memory.retain(&[1, 2]).unwrap();
        let CrossMemory::PerSource(after) = &memory else { panic!("still per source") };
        assert!(Arc::ptr_eq(&after[0], &before[1]) && Arc::ptr_eq(&after[1], &new[0]));
        assert_eq!((memory.sources().unwrap(), memory.positions().unwrap()), (2, 3));
        let batched = CrossMemory::Batched { kv, bias };
        assert!(memory.append(batched).is_err(), "a batched memory cannot join per-source ones");
    }
}
