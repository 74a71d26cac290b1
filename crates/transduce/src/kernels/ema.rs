//! In-place exponential moving average of CPU f32 parameters: `avg ← d·avg + (1−d)·θ` in one
//! parallel pass over a host copy, no temporary tensors (the reference is
//! [`crate::train::ema::WeightAverage`]'s candle composition).

use rayon::prelude::*;

use candle_core::{Result, Tensor};

use super::cpu::with_f32;

/// Moves `average` (the host copy of one parameter) towards `theta` by `1 − decay`.
pub fn ema_update(average: &mut [f32], theta: &Tensor, decay: f32) -> Result<()> {
    with_f32(theta, |theta| {
        if theta.len() != average.len() {
            candle_core::bail!("ema: {} parameters, {} averaged", theta.len(), average.len());
        }
        const CHUNK: usize = 1 << 14;
        average.par_chunks_mut(CHUNK).zip(theta.par_chunks(CHUNK)).for_each(|(avg, theta)| {
            for (a, &t) in avg.iter_mut().zip(theta) {
                *a = decay * *a + (1.0 - decay) * t;
            }
        });
        Ok(())
    })?
}
