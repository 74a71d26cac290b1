//! Helpers shared by the fused CPU kernels.

use std::mem::MaybeUninit;

use candle_core::{CpuStorage, DType, Layout, Result, Tensor};

/// The contiguous f32 elements of a CPU tensor's storage.
pub fn f32_slice<'a>(storage: &'a CpuStorage, layout: &Layout) -> Result<&'a [f32]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&storage.as_slice::<f32>()?[start..end]),
        None => candle_core::bail!("fused kernel needs a contiguous input, got strides {:?}", layout.stride()),
    }
}

/// The contiguous u32 elements of a CPU tensor's storage.
pub fn u32_slice<'a>(storage: &'a CpuStorage, layout: &Layout) -> Result<&'a [u32]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&storage.as_slice::<u32>()?[start..end]),
        None => candle_core::bail!("fused kernel needs a contiguous input, got strides {:?}", layout.stride()),
    }
}

/// A pointer to an output buffer whose disjoint parts parallel tasks write (each task's part
/// is its own: the caller guarantees it).
#[derive(Clone, Copy)]
pub struct SharedOut(pub *mut f32);
// SAFETY: only used for disjoint writes, while the buffer outlives the tasks.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

impl SharedOut {
    pub fn get(self) -> *mut f32 {
        self.0
    }
}

/// Whether the fused CPU kernels apply to `t` (f32 on the CPU); other devices and dtypes use
/// the reference compositions.
pub fn applies(t: &Tensor) -> bool {
    t.device().is_cpu() && t.dtype() == DType::F32
}

/// Rows per parallel task, so that each task has at least ~16K elements of work.
pub fn rows_per_task(rows: usize, row_len: usize) -> usize {
    let min_rows = (16 * 1024 / row_len.max(1)).max(1);
    let threads = rayon::current_num_threads().max(1);
    rows.div_ceil(threads * 4).max(min_rows)
}

/// A vector of `len` elements written in parallel chunks of `chunk` elements: the task that
/// owns a chunk zeroes it and passes it to `fill` with the chunk's index. No thread zeroes the
/// whole buffer first (a serial pass over every output before the parallel one), and each
/// chunk is written while it is in its core's cache.
pub fn par_filled(len: usize, chunk: usize, fill: impl Fn(usize, &mut [f32]) + Sync + Send) -> Vec<f32> {
    let zeroed_then_filled = |c: usize, part: &mut [MaybeUninit<f32>]| {
        part.fill(MaybeUninit::new(0.0));
        // SAFETY: every element of `part` was initialised just above, and MaybeUninit<f32>
        // has the layout of f32.
        let part = unsafe { &mut *(part as *mut [MaybeUninit<f32>] as *mut [f32]) };
        fill(c, part);
    };
    // SAFETY: each chunk is zeroed before `fill` sees it
    unsafe { par_written(len, chunk, zeroed_then_filled) }
}

/// [`par_filled`] without the zeroing, for the largest outputs of a training step (the
/// [tokens, vocab] logits and their gradient), where zeroing is a pass over memory that `fill`
/// then overwrites: `fill` gets each chunk uninitialised and writes it.
///
/// # Safety
/// `fill` must write every element of the chunk it is given (the vector's length is set once
/// all chunks return, so an element left unwritten would be read uninitialised).
pub unsafe fn par_written(
    len: usize,
    chunk: usize,
    fill: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync + Send,
) -> Vec<f32> {
    use rayon::prelude::*;
    let mut out: Vec<f32> = Vec::with_capacity(len);
    let chunk = chunk.max(1);
    match len <= chunk {
        // one chunk: on the calling thread, without waking the pool
        true => fill(0, &mut out.spare_capacity_mut()[..len]),
        false => out.spare_capacity_mut()[..len].par_chunks_mut(chunk).enumerate().for_each(|(c, part)| fill(c, part)),
    }
    // SAFETY: the chunks cover 0..len, and the caller's `fill` wrote each of their elements.
    unsafe { out.set_len(len) };
    out
}

/// Runs `f` on the contiguous f32 elements of a CPU tensor.
pub fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        candle_core::Storage::Cpu(s) => Ok(f(f32_slice(s, layout)?)),
        _ => candle_core::bail!("fused kernel runs on the CPU"),
    }
}

/// `e^x` in plain arithmetic (Cephes' `expf`: range reduction by ln 2, degree-6 polynomial,
/// within 2 ulp of the exact value), so loops over it vectorise instead of calling libm once
/// per element. Below -87.33 it returns 0 (as `exp` underflows there, and so that masked
/// attention scores give exact zeros, not subnormals that slow every product they enter);
/// NaN stays NaN.
#[inline(always)]
pub fn fast_exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    let underflow = x < -87.33;
    let x = x.clamp(-87.33, 88.37);
    let n = (x * LOG2E + 0.5).floor();
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // 2^n from the bits of 2^23 + 127 + n (whose low bits are the biased exponent): no
    // float-to-int conversion, which Rust saturates lane by lane and so would not vectorise
    let y = e * f32::from_bits((n + (127.0 + 8_388_608.0)).to_bits() << 23);
    if underflow {
        0.0
    } else {
        y
    }
}

/// Lanes of the partial results in [`max_of`] and [`sum_exp`]: independent chains the
/// compiler turns into vector registers.
const LANES: usize = 16;

/// [`fast_exp`] on 16 lanes with AVX-512F: the same operations in the same order (no fused
/// multiply-adds, as the scalar code has none), so the same bits lane by lane.
///
/// # Safety
/// The CPU must have avx512f.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f")]
pub unsafe fn fast_exp_avx512(x: std::arch::x86_64::__m512) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    let c = _mm512_set1_ps;
    // lanes not below -87.33 (NaN included) keep their value, the others become 0
    let kept = _mm512_cmp_ps_mask::<_CMP_NLT_UQ>(x, c(-87.33));
    // `clamp`: NaN passes through (max/min return their second operand when one is NaN)
    let x = _mm512_min_ps(c(88.37), _mm512_max_ps(c(-87.33), x));
    let n = _mm512_add_ps(_mm512_mul_ps(x, c(std::f32::consts::LOG2_E)), c(0.5));
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(n);
    let r = _mm512_sub_ps(_mm512_sub_ps(x, _mm512_mul_ps(n, c(0.693_359_4))), _mm512_mul_ps(n, c(-2.121_944_4e-4)));
    let mut p = c(1.987_569_1e-4);
    for coefficient in [1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 0.5] {
        p = _mm512_add_ps(_mm512_mul_ps(p, r), c(coefficient));
    }
    let e = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(_mm512_mul_ps(p, r), r), r), c(1.0));
    let two_n = _mm512_slli_epi32::<23>(_mm512_castps_si512(_mm512_add_ps(n, c(127.0 + 8_388_608.0))));
    _mm512_maskz_mul_ps(kept, e, _mm512_castsi512_ps(two_n))
}

/// The largest element (`-inf` for an empty slice), in vector-wide steps.
pub fn max_of(xs: &[f32]) -> f32 {
    max_of_except(xs, &[])
}

/// `sum(exp(x - max))` with [`fast_exp`], in `LANES` partial sums (a fixed order, so every
/// caller gets the same bits).
pub fn sum_exp(xs: &[f32], max: f32) -> f32 {
    sum_exp_except(xs, max, &[])
}

/// `log(sum(exp(x)))` of one row, in vector-wide steps.
pub fn log_sum_exp(xs: &[f32]) -> f32 {
    let max = max_of(xs);
    max + sum_exp(xs, max).ln()
}

/// The sum of `xs` in `LANES` partial sums (vector-wide, a fixed order).
pub fn sum_of(xs: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = xs.chunks_exact(LANES);
    let rest: f32 = chunks.remainder().iter().sum();
    for chunk in chunks {
        for i in 0..LANES {
            acc[i] += chunk[i];
        }
    }
    acc.iter().sum::<f32>() + rest
}

/// [`max_of`] with the elements at `banned` read as `-inf`: the same bits as on a copy of `xs`
/// with those set, without the copy.
pub fn max_of_except(xs: &[f32], banned: &[usize]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = xs.len() - chunks.remainder().len();
    let rest = masked(chunks.remainder(), tail, banned);
    let rest = rest[..xs.len() - tail].iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    for (c, chunk) in chunks.enumerate() {
        let chunk = masked(chunk, c * LANES, banned);
        for i in 0..LANES {
            acc[i] = acc[i].max(chunk[i]);
        }
    }
    acc.iter().fold(rest, |m, &x| m.max(x))
}

/// [`sum_exp`] with the elements at `banned` read as `-inf` (as [`max_of_except`]).
pub fn sum_exp_except(xs: &[f32], max: f32, banned: &[usize]) -> f32 {
    let chunks = xs.chunks_exact(LANES);
    let tail = xs.len() - chunks.remainder().len();
    let rest = masked(chunks.remainder(), tail, banned);
    let rest: f32 = rest[..xs.len() - tail].iter().map(|&x| fast_exp(x - max)).sum();
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: avx512f was detected.
        let acc = unsafe { lane_sums_avx512(&xs[..tail], max, banned) };
        return acc.iter().sum::<f32>() + rest;
    }
    lane_sums(&xs[..tail], max, banned).iter().sum::<f32>() + rest
}

/// Per lane, `sum(exp(x - max))` over the whole chunks `xs` (a multiple of `LANES` long), the
/// elements at `banned` read as `-inf`.
fn lane_sums(xs: &[f32], max: f32, banned: &[usize]) -> [f32; LANES] {
    let mut acc = [0f32; LANES];
    for (c, chunk) in xs.chunks_exact(LANES).enumerate() {
        let chunk = masked(chunk, c * LANES, banned);
        for i in 0..LANES {
            acc[i] += fast_exp(chunk[i] - max);
        }
    }
    acc
}

/// [`lane_sums`] in one AVX-512 register: the same operations lane by lane (subtraction,
/// [`fast_exp_avx512`], addition, in chunk order), so the same bits, in half the
/// instructions of the AVX2 build.
///
/// # Safety
/// The CPU must have avx512f.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn lane_sums_avx512(xs: &[f32], max: f32, banned: &[usize]) -> [f32; LANES] {
    use std::arch::x86_64::*;
    let mut acc = _mm512_setzero_ps();
    let m = _mm512_set1_ps(max);
    for (c, chunk) in xs.chunks_exact(LANES).enumerate() {
        let start = c * LANES;
        let v = match banned.iter().any(|&b| (start..start + LANES).contains(&b)) {
            true => _mm512_loadu_ps(masked(chunk, start, banned).as_ptr()),
            false => _mm512_loadu_ps(chunk.as_ptr()),
        };
        acc = _mm512_add_ps(acc, fast_exp_avx512(_mm512_sub_ps(v, m)));
    }
    let mut lanes = [0f32; LANES];
    _mm512_storeu_ps(lanes.as_mut_ptr(), acc);
    lanes
}

/// Up to `LANES` elements starting at index `start` in their first lanes, banned positions at
/// `-inf` (and the lanes past a short tail too: callers read only `chunk.len()` of them).
#[inline(always)]
fn masked(chunk: &[f32], start: usize, banned: &[usize]) -> [f32; LANES] {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    lanes[..chunk.len()].copy_from_slice(chunk);
    for &b in banned {
        if (start..start + chunk.len()).contains(&b) {
            lanes[b - start] = f32::NEG_INFINITY;
        }
    }
    lanes
}

#[cfg(test)]
mod tests {
    use super::{fast_exp, max_of, sum_exp};

    #[test]
    fn max_and_sum_of_exponentials_match_plain_loops() {
        for n in [0, 1, 15, 16, 17, 100, 8000] {
            let xs: Vec<f32> = (0..n).map(|i| ((i * 7919 % 1000) as f32 - 500.0) * 0.01).collect();
            let max = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            assert_eq!(max_of(&xs), max);
            let total: f64 = xs.iter().map(|&x| x as f64).sum();
            assert!((super::sum_of(&xs) as f64 - total).abs() <= 1e-4 * total.abs().max(1.0), "n {n}");
            let plain: f64 = xs.iter().map(|&x| ((x - max) as f64).exp()).sum();
            assert!((sum_exp(&xs, max) as f64 - plain).abs() <= 1e-5 * plain.max(1.0), "n {n}");
        }
    }

    #[test]
    fn masked_max_and_sum_equal_those_of_a_masked_copy_to_the_bit() {
        use super::{max_of_except, sum_exp_except};
        for n in [1, 15, 16, 17, 40, 8000] {
            let xs: Vec<f32> = (0..n).map(|i| ((i * 7919 % 1000) as f32 - 500.0) * 0.01).collect();
            for banned in [vec![], vec![0], vec![n - 1], vec![n / 2, n - 1], vec![0, 0]] {
                let mut copy = xs.clone();
                banned.iter().for_each(|&b| copy[b] = f32::NEG_INFINITY);
                let max = max_of(&copy);
                assert_eq!(max_of_except(&xs, &banned).to_bits(), max.to_bits(), "n {n} {banned:?}");
                assert_eq!(sum_exp_except(&xs, max, &banned).to_bits(), sum_exp(&copy, max).to_bits(), "n {n}");
            }
        }
    }

    #[test]
    fn lane_sums_are_the_same_bits_on_every_path() {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            for n in [0, 16, 48, 8000] {
                let mut xs: Vec<f32> = (0..n).map(|i| ((i * 7919 % 1000) as f32 - 500.0) * 0.05).collect();
                if n > 40 {
                    xs[3] = f32::NEG_INFINITY;
                    xs[40] = f32::NAN;
                }
                for banned in [vec![], vec![0], vec![n.max(1) - 1], vec![17, 33]] {
                    for max in [0.0, 24.9, f32::NEG_INFINITY] {
                        let plain = super::lane_sums(&xs, max, &banned);
                        // SAFETY: avx512f was detected.
                        let wide = unsafe { super::lane_sums_avx512(&xs, max, &banned) };
                        for (p, w) in plain.iter().zip(wide) {
                            assert!(p.to_bits() == w.to_bits() || (p.is_nan() && w.is_nan()), "n {n} {banned:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn fast_exp_is_within_a_few_ulp_of_exp() {
        let mut worst = 0f32;
        for i in -200_000..=200_000 {
            let x = i as f32 * 4.35e-4; // -87 ..= 87
            let (got, want) = (fast_exp(x), x.exp());
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(worst < 3.0 * f32::EPSILON, "relative error {worst}");
        // the power of two built from float bits equals the integer-shift construction it
        // replaced, to the bit (decoding outputs did not change)
        for i in -900_000..=900_000 {
            let x = i as f32 * 1e-4;
            let n = (x.clamp(-87.33, 88.37) * std::f32::consts::LOG2_E + 0.5).floor();
            let by_int = f32::from_bits(((n as i32 + 127) << 23) as u32);
            assert_eq!(f32::from_bits((n + (127.0 + 8_388_608.0)).to_bits() << 23), by_int, "x {x}");
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            let xs: Vec<f32> = (-900_000..900_000)
                .map(|i| i as f32 * 1e-4)
                .chain([f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 0.0, 1e30, -1e30, f32::MIN_POSITIVE])
                .collect();
            for chunk in xs.chunks(16) {
                let mut lanes = [0f32; 16];
                lanes[..chunk.len()].copy_from_slice(chunk);
                let mut got = [0f32; 16];
                // SAFETY: avx512f was detected; the pointers are to 16 floats.
                unsafe {
                    use std::arch::x86_64::*;
                    let v = super::fast_exp_avx512(_mm512_loadu_ps(lanes.as_ptr()));
                    _mm512_storeu_ps(got.as_mut_ptr(), v);
                }
                for (x, g) in lanes.iter().zip(got) {
                    let want = fast_exp(*x);
                    assert!(g.to_bits() == want.to_bits() || (g.is_nan() && want.is_nan()), "x {x}: {g} vs {want}");
                }
            }
        }
        assert_eq!(fast_exp(0.0), 1.0);
        assert_eq!(fast_exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(fast_exp(-1e9), 0.0);
        assert!(fast_exp(-87.0) > 0.0 && fast_exp(-87.0).is_normal());
        assert!(fast_exp(f32::NAN).is_nan());
    }
}
