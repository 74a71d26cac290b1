//! T5's relative position bias: a trained scalar per head and bucket of relative distance,
//! added to the self-attention logits of every layer of a stack ([`Positions::Relative`]).
//!
//! Distances are bucketed as `transformers`' `T5Attention._relative_position_bucket` does: in
//! the encoder (bidirectional) half the buckets are for keys after the query; short distances
//! get a bucket each, longer ones logarithmically wider buckets, all beyond `max_distance` the
//! last. The logarithm is computed in f32 as PyTorch computes it, so the buckets agree.

use std::sync::Arc;

use candle_core::{Result, Tensor};
use candle_nn::{Init, VarBuilder};

use super::config::{ModelConfig, Positions};
use crate::kernels::step_attention::StepBias;

/// Which keys a query sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Keys on both sides (the encoder).
    Bidirectional,
    /// Earlier keys and its own (the decoder).
    Causal,
}

/// The bias table of one stack: `[buckets, heads]`.
#[derive(Debug, Clone)]
pub struct RelativePositionBias {
    /// [buckets, heads]
    pub table: Tensor,
    buckets: usize,
    max_distance: usize,
    direction: Direction,
}

impl RelativePositionBias {
    /// The stack's table (`{prefix}.relative_bias.weight`) when `c.positions` is relative.
    pub fn new(vb: VarBuilder, c: &ModelConfig, direction: Direction) -> Result<Option<Self>> {
        let Positions::Relative { buckets, max_distance } = c.positions else { return Ok(None) };
        let table = vb.pp("relative_bias").get_with_hints((buckets, c.heads), "weight", Init::Const(0.0))?;
        Ok(Some(RelativePositionBias { table, buckets, max_distance, direction }))
    }

    /// The bucket of a key at `relative` = key position - query position.
    pub fn bucket(&self, relative: i64) -> u32 {
        bucket(relative, self.buckets, self.max_distance, self.direction)
    }

    /// Bias [1, heads, tq, tk] for queries at positions `start .. start + tq` and keys at
    /// `0 .. tk` (differentiable in the table).
    pub fn bias(&self, start: usize, tq: usize, tk: usize) -> Result<Tensor> {
        let ids: Vec<u32> = (0..tq)
            .flat_map(|i| (0..tk).map(move |j| (j as i64, (start + i) as i64)))
            .map(|(key, query)| self.bucket(key - query))
            .collect();
        let heads = self.table.dim(1)?;
        let ids = Tensor::from_vec(ids, tq * tk, self.table.device())?;
        // [tq * tk, heads] -> [heads, tq, tk]
        self.table.index_select(&ids, 0)?.reshape((tq, tk, heads))?.permute((2, 0, 1))?.unsqueeze(0)?.contiguous()
    }

    /// The causal bias of a decoding step by distance to the query, for the step kernel.
    pub fn steps(&self) -> Result<Arc<StepBias>> {
        let heads = self.table.dim(1)?;
        let table = self.table.to_dtype(candle_core::DType::F32)?.to_vec2::<f32>()?;
        // every distance from max_distance on shares the last bucket
        let by_distance: Vec<Vec<f32>> =
            (0..=self.max_distance).map(|n| table[self.bucket(-(n as i64)) as usize].clone()).collect();
        Ok(Arc::new(StepBias::new(heads, by_distance)))
    }
}

/// `T5Attention._relative_position_bucket(relative, bidirectional, buckets, max_distance)`.
pub fn bucket(relative: i64, buckets: usize, max_distance: usize, direction: Direction) -> u32 {
    let (mut buckets, mut base) = (buckets as i64, 0i64);
    let distance = match direction {
        Direction::Bidirectional => {
            buckets /= 2;
            if relative > 0 {
                base = buckets;
            }
            relative.abs()
        }
        Direction::Causal => (-relative).max(0),
    };
    let exact = buckets / 2;
    let bucket = if distance < exact {
        distance
    } else {
        // f32 as torch: log(d / exact) / log(max_distance / exact) * (buckets - exact)
        let ratio = (max_distance as f64 / exact as f64).ln() as f32;
        let large = exact + ((distance as f32 / exact as f32).ln() / ratio * (buckets - exact) as f32) as i64;
        large.min(buckets - 1)
    };
    (base + bucket) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_match_transformers() {
        // transformers 5.24: T5Attention._relative_position_bucket(torch.arange(-200, 201, 25), ..., 32, 128)
        let relative: Vec<i64> = (-200..=200).step_by(25).collect();
        let bidirectional: Vec<u32> = relative.iter().map(|&r| bucket(r, 32, 128, Direction::Bidirectional)).collect();
        let causal: Vec<u32> = relative.iter().map(|&r| bucket(r, 32, 128, Direction::Causal)).collect();
        assert_eq!(bidirectional, [15, 15, 15, 15, 15, 14, 13, 11, 0, 27, 29, 30, 31, 31, 31, 31, 31]);
        assert_eq!(causal, [31, 31, 31, 31, 30, 27, 24, 19, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        // the exact range
        assert_eq!(bucket(-7, 32, 128, Direction::Bidirectional), 7);
        assert_eq!(bucket(7, 32, 128, Direction::Bidirectional), 23);
        assert_eq!(bucket(-15, 32, 128, Direction::Bidirectional), 9);
        assert_eq!(bucket(-15, 32, 128, Direction::Causal), 15);
    }
}
