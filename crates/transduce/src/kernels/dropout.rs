//! Fused inverted dropout whose mask is a hash of (seed, element index): nothing is stored
//! between forward and backward, and both run in parallel.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};

use super::cpu::{f32_slice, par_filled, with_f32};

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
        const CHUNK: usize = 1 << 14;
        let m = &self.0;
        par_filled(x.len(), CHUNK, |c, y| apply_chunk(m, (c * CHUNK) as u64, &x[c * CHUNK..][..y.len()], y))
    }
}

/// `y[i] = x[i] * scale` where element `base + i` survives `m`, else 0.
fn apply_chunk(m: &DropoutMask, base: u64, x: &[f32], y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512dq") {
        // SAFETY: avx512f and avx512dq were detected.
        return unsafe { apply_chunk_avx512(m, base, x, y) };
    }
    apply_chunk_plain(m, base, x, y)
}

fn apply_chunk_plain(m: &DropoutMask, base: u64, x: &[f32], y: &mut [f32]) {
    for (i, (y, &x)) in y.iter_mut().zip(x).enumerate() {
        *y = if keep_element(m, base + i as u64) { x * m.scale } else { 0.0 };
    }
}

/// [`apply_chunk_plain`] 16 elements at a time: the hash in two registers of eight 64-bit
/// lanes (AVX-512DQ multiplies them; AVX2 cannot), so the same mask and the same bits.
///
/// # Safety
/// The CPU must have avx512f and avx512dq.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq")]
unsafe fn apply_chunk_avx512(m: &DropoutMask, base: u64, x: &[f32], y: &mut [f32]) {
    use std::arch::x86_64::*;
    let n = x.len().min(y.len());
    let whole = n - n % 16;
    let mix8 = |z: __m512i| {
        let z = _mm512_mullo_epi64(
            _mm512_xor_si512(z, _mm512_srli_epi64::<30>(z)),
            _mm512_set1_epi64(0xbf58_476d_1ce4_e5b9u64 as i64),
        );
        let z = _mm512_mullo_epi64(
            _mm512_xor_si512(z, _mm512_srli_epi64::<27>(z)),
            _mm512_set1_epi64(0x94d0_49bb_1331_11ebu64 as i64),
        );
        _mm512_xor_si512(z, _mm512_srli_epi64::<31>(z))
    };
    let threshold = _mm512_set1_epi64(m.threshold as i64);
    let scale = _mm512_set1_ps(m.scale);
    let steps = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
    let mut i = 0;
    while i < whole {
        let start = m.seed.wrapping_add(base).wrapping_add(i as u64);
        let lo = _mm512_add_epi64(_mm512_set1_epi64(start as i64), steps);
        let hi = _mm512_add_epi64(lo, _mm512_set1_epi64(8));
        // keep where (hash >> 32) < threshold, as unsigned 64-bit numbers
        let keep_lo = _mm512_cmplt_epu64_mask(_mm512_srli_epi64::<32>(mix8(lo)), threshold);
        let keep_hi = _mm512_cmplt_epu64_mask(_mm512_srli_epi64::<32>(mix8(hi)), threshold);
        let keep = (keep_lo as u16) | ((keep_hi as u16) << 8);
        let v = _mm512_loadu_ps(x.as_ptr().add(i));
        _mm512_storeu_ps(y.as_mut_ptr().add(i), _mm512_maskz_mul_ps(keep, v, scale));
        i += 16;
    }
    apply_chunk_plain(m, base + whole as u64, &x[whole..n], &mut y[whole..n]);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wide_mask_is_the_plain_mask_to_the_bit() {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512dq") {
            let x: Vec<f32> =
                (0..1000).map(|i| i as f32 * 0.37 - 100.0).chain([f32::NAN, -0.0, f32::INFINITY]).collect();
            for (p, seed) in [(0.1, 0), (0.3, 7), (0.5, u64::MAX), (0.0, 3), (0.99, 12)] {
                let m = DropoutMask::new(p, seed);
                for (base, len) in [(0, 1003), (16_384, 1003), (u64::MAX - 5, 40), (5, 15), (0, 0)] {
                    let (mut plain, mut wide) = (vec![1f32; len], vec![1f32; len]);
                    apply_chunk_plain(&m, base, &x[..len], &mut plain);
                    // SAFETY: avx512f and avx512dq were detected.
                    unsafe { apply_chunk_avx512(&m, base, &x[..len], &mut wide) };
                    for (k, (a, b)) in plain.iter().zip(&wide).enumerate() {
                        assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()), "p {p} base {base} at {k}");
                    }
                }
            }
        }
    }
}
