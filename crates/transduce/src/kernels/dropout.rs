//! Fused inverted dropout whose mask is a hash of (seed, element index): nothing is stored
//! between forward and backward, and both run in parallel.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu::{f32_slice, with_f32};

/// SplitMix64 finaliser: a well-mixed 64-bit hash of a counter.
#[inline]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A dropout mask defined by a seed: element `i` is kept when the hash of (seed, i) falls
/// below the keep threshold.
#[derive(Debug, Clone, Copy)]
pub struct DropoutMask {
    seed: u64,
    /// Keep an element when its 32-bit hash is below this.
    threshold: u32,
    /// `1 / (1 - p)`
    pub scale: f32,
}

impl DropoutMask {
    pub fn new(p: f32, seed: u64) -> Self {
        let keep = 1.0 - p as f64;
        let threshold = (keep * u32::MAX as f64).round() as u32;
        // Spread consecutive seeds far apart so their index ranges never overlap.
        let seed = mix(seed).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        DropoutMask { seed, threshold, scale: 1.0 / keep as f32 }
    }
}

/// Whether element `index` survives `mask`.
#[inline]
pub fn keep_element(mask: &DropoutMask, index: u64) -> bool {
    ((mix(mask.seed.wrapping_add(index)) >> 32) as u32) < mask.threshold
}

#[derive(Clone, Copy)]
struct Dropout(DropoutMask);

impl Dropout {
    fn apply(&self, x: &[f32]) -> Vec<f32> {
        let mut y = vec![0f32; x.len()];
        const CHUNK: usize = 1 << 14;
        let m = &self.0;
        y.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK)).enumerate().for_each(|(c, (y, x))| {
            let base = (c * CHUNK) as u64;
            for (i, (y, &x)) in y.iter_mut().zip(x).enumerate() {
                *y = if keep_element(m, base + i as u64) { x * m.scale } else { 0.0 };
            }
        });
        y
    }
}

impl CustomOp1 for Dropout {
    fn name(&self) -> &'static str {
        "transduce-dropout"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        Ok((CpuStorage::F32(self.apply(f32_slice(storage, layout)?)), layout.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        // The same mask applied to the gradient.
        let dx = with_f32(grad, |g| self.apply(g))?;
        Ok(Some(Tensor::from_vec(dx, res.shape(), res.device())?))
    }
}

/// Zeroes each element of CPU f32 `x` with probability `p` (decided by a hash of `seed` and
/// the element's index) and scales the rest by `1 / (1 - p)`.
pub fn dropout(x: &Tensor, p: f32, seed: u64) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Dropout(DropoutMask::new(p, seed)))
}
