//! Int8 linear layers for inference: `y = x W^T + b` with W stored as int8 with one scale per
//! output row, and x quantized per row on the fly (symmetric, 127 levels each side).
//!
//! `y[i, j] = sx[i] * sw[j] * sum_k qx[i, k] * qw[j, k] + b[j]`, the sum exact in i32. With
//! AVX-512 VNNI the sum runs on `vpdpbusd` (u8 x i8 -> i32, 64 multiply-adds per instruction):
//! x goes in as `qx + 128` (u8) and `128 * sum_k qw[j, k]`, precomputed per row of W, is taken
//! back out, so the result is the same integer as the portable path computes. With AVX2 the sum
//! runs on `vpmaddubsw` + `vpmaddwd` (32 multiply-adds per instruction pair): x goes back to
//! signed, `|x|` times `w` with x's sign (no pair of products reaches i16's limit: both factors
//! are within ±127), again the same integer.

use rayon::prelude::*;

use super::cpu::SharedOut;

/// Output columns per packed block (one 512-bit register of i32 lanes).
const BLOCK: usize = 16;

/// From this many multiply-adds a product's output columns are split across the threads.
pub const PARALLEL_MIN_MACS: usize = 1 << 21;

/// A weight matrix W [n, k] quantized per output row, packed for the kernel: for each block of
/// 16 output rows, for each group of 4 inputs, 16 × 4 bytes (row-major within the group).
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Matrix {
    n: usize,
    k: usize,
    /// `k` rounded up to a multiple of 4 (padding weights are 0).
    k4: usize,
    packed: Vec<i8>,
    /// Per output row: `W[j, :] ≈ scales[j] * q[j, :]`.
    scales: Vec<f32>,
    /// Per output row: `128 * sum_k q[j, k]`, the offset of the u8 activations.
    offsets: Vec<i32>,
}

/// Where weight `(j, kk)` lies in the packed layout (inputs padded to `k4`).
fn packed_index(k4: usize, j: usize, kk: usize) -> usize {
    (j / BLOCK) * BLOCK * k4 + (kk / 4) * BLOCK * 4 + (j % BLOCK) * 4 + kk % 4
}

/// Symmetric per-row quantization of one row: the scale and the int8 values.
pub fn quantize_row(row: &[f32], out: &mut [i8]) -> f32 {
    let scale = row_scale(row);
    let inv = 1.0 / scale;
    for (o, &v) in out.iter_mut().zip(row) {
        *o = level(v * inv) as i8;
    }
    scale
}

/// The scale of a row: its largest magnitude over 127 (1 for a row of zeros or non-finite).
fn row_scale(row: &[f32]) -> f32 {
    let max = row.iter().fold(0f32, |m, &v| m.max(v.abs()));
    if max > 0.0 && max.is_finite() {
        max / 127.0
    } else {
        1.0
    }
}

/// `v` rounded (halves away from zero) and clamped to -127 ..= 127, NaN as 0: what
/// `v.round().clamp(-127.0, 127.0) as i32` gives, in operations that vectorise.
#[inline(always)]
fn level(v: f32) -> i32 {
    let r = round_half_away(v).clamp(-127.0, 127.0);
    let r = if r.is_nan() { 0.0 } else { r };
    // the integer read off the bits of 1.5 * 2^23 + r (no saturating float-to-int conversion,
    // which Rust does lane by lane)
    (r + 12_582_912.0).to_bits() as i32 - 0x4B40_0000
}

impl Int8Matrix {
    /// Quantizes `w` [n, k] (row-major) row by row.
    pub fn quantize(w: &[f32], n: usize, k: usize) -> Self {
        assert_eq!(w.len(), n * k, "weight is not [n, k]");
        let mut q = vec![0i8; n * k];
        let scales: Vec<f32> =
            w.chunks_exact(k.max(1)).zip(q.chunks_exact_mut(k.max(1))).map(|(r, o)| quantize_row(r, o)).collect();
        Self::from_quantized(&q, scales, n, k)
    }

    /// Packs already quantized rows `q` \[n, k\] with their scales \[n\].
    pub fn from_quantized(q: &[i8], scales: Vec<f32>, n: usize, k: usize) -> Self {
        assert_eq!((q.len(), scales.len()), (n * k, n), "quantized weight is not [n, k] with n scales");
        let k4 = k.div_ceil(4) * 4;
        let blocks = n.div_ceil(BLOCK);
        let mut packed = vec![0i8; blocks * BLOCK * k4];
        for j in 0..n {
            for kk in 0..k {
                packed[packed_index(k4, j, kk)] = q[j * k + kk];
            }
        }
        let offsets = q.chunks_exact(k.max(1)).map(|r| 128 * r.iter().map(|&v| v as i32).sum::<i32>()).collect();
        Int8Matrix { n, k, k4, packed, scales, offsets }
    }

    /// Output size (rows of W).
    pub fn rows(&self) -> usize {
        self.n
    }

    /// Input size (columns of W).
    pub fn cols(&self) -> usize {
        self.k
    }

    /// The quantized rows [n, k] and their scales, as stored.
    pub fn unpack(&self) -> (Vec<i8>, Vec<f32>) {
        let mut q = vec![0i8; self.n * self.k];
        for j in 0..self.n {
            for kk in 0..self.k {
                q[j * self.k + kk] = self.packed[packed_index(self.k4, j, kk)];
            }
        }
        (q, self.scales.clone())
    }

    /// Rows `ids` of W as f32 (`scale * q`), [ids.len(), k]: the values [`round_trip`] gives.
    pub fn gather_rows(&self, ids: &[u32]) -> Vec<f32> {
        let k = self.k;
        let mut out = vec![0f32; ids.len() * k];
        for (row, &j) in out.chunks_exact_mut(k.max(1)).zip(ids) {
            let s = self.scales[j as usize];
            for (kk, v) in row.iter_mut().enumerate() {
                *v = self.packed[packed_index(self.k4, j as usize, kk)] as f32 * s;
            }
        }
        out
    }

    /// Rows `ids` of W as their own matrix, quantized values and scales as they are (a
    /// vocabulary shortlist's output projection).
    pub fn select_rows(&self, ids: &[u32]) -> Self {
        let k = self.k;
        let mut q = vec![0i8; ids.len() * k];
        for (row, &j) in q.chunks_exact_mut(k.max(1)).zip(ids) {
            for (kk, v) in row.iter_mut().enumerate() {
                *v = self.packed[packed_index(self.k4, j as usize, kk)];
            }
        }
        let scales = ids.iter().map(|&j| self.scales[j as usize]).collect();
        Self::from_quantized(&q, scales, ids.len(), k)
    }

    /// W as f32 (`scale * q`), [n, k].
    pub fn dequantize(&self) -> Vec<f32> {
        let (q, scales) = self.unpack();
        q.chunks_exact(self.k.max(1)).zip(&scales).flat_map(|(r, &s)| r.iter().map(move |&v| v as f32 * s)).collect()
    }

    /// `x W^T + b` for x [m, k] -> [m, n], on the fastest path this CPU has.
    pub fn matmul(&self, x: &[f32], m: usize, bias: &[f32]) -> Vec<f32> {
        self.matmul_with(x, m, bias, Path::detect())
    }

    /// `matmul` on a chosen path (tests compare them).
    pub fn matmul_with(&self, x: &[f32], m: usize, bias: &[f32], path: Path) -> Vec<f32> {
        self.matmul_into(x, m, bias, path, Vec::new())
    }

    /// `matmul` on a chosen path into `out`'s memory (its contents dropped): a caller that
    /// hands back the last result's vector reuses its pages instead of faulting in fresh ones
    /// (a step's logits are rows × vocabulary floats).
    pub fn matmul_into(&self, x: &[f32], m: usize, bias: &[f32], path: Path, out: Vec<f32>) -> Vec<f32> {
        assert_eq!((x.len(), bias.len()), (m * self.k, self.n), "x is not [m, k] or bias not [n]");
        let (xq, sx) = quantize_activations(x, m, self.k, self.k4);
        let mut y = out;
        y.clear();
        y.reserve(m * self.n);
        let out = SharedOut(y.as_mut_ptr());
        let blocks = self.n.div_ceil(BLOCK);
        // split the output columns across threads when the product is large enough to pay for it
        let groups = if m * self.n * self.k >= PARALLEL_MIN_MACS { rayon::current_num_threads().max(1) * 2 } else { 1 };
        let per_group = blocks.div_ceil(groups).max(1);
        let task = |g: usize| {
            let range = g * per_group..((g + 1) * per_group).min(blocks);
            let epilogue = Epilogue { sx: &sx, scales: &self.scales, offsets: &self.offsets, bias, n: self.n };
            // SAFETY: tasks write disjoint column blocks of y, which has room for [m, n].
            unsafe { self.blocks(&xq, m, range, &epilogue, out, path) };
        };
        if groups > 1 {
            (0..blocks.div_ceil(per_group)).into_par_iter().for_each(task);
        } else {
            task(0);
        }
        // SAFETY: the blocks wrote every column of every row.
        unsafe { y.set_len(m * self.n) };
        y
    }

    /// Output blocks `range` for all rows, written to `y` (row stride n).
    ///
    /// # Safety
    /// `y` has room for [m, n] floats and no other thread writes these blocks.
    unsafe fn blocks(
        &self,
        xq: &[u8],
        m: usize,
        range: std::ops::Range<usize>,
        epilogue: &Epilogue,
        y: SharedOut,
        path: Path,
    ) {
        match path {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: Path::Vnni is only chosen when the CPU has avx512f and avx512vnni.
            Path::Vnni => vnni::dot_blocks(&self.packed, self.k4, xq, m, range, epilogue, y),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: Path::Avx2 is only chosen when the CPU has avx2.
            Path::Avx2 => avx2::dot_blocks(&self.packed, self.k4, xq, m, range, epilogue, y),
            _ => {
                let mut sums = vec![0i32; m * range.len() * BLOCK];
                portable_dot_blocks(&self.packed, self.k4, xq, m, range.clone(), &mut sums);
                let width = range.len() * BLOCK;
                for i in 0..m {
                    for (c, j) in (range.start * BLOCK..range.end * BLOCK).enumerate() {
                        if j < self.n {
                            *y.get().add(i * self.n + j) = epilogue.apply(i, j, sums[i * width + c]);
                        }
                    }
                }
            }
        }
    }
}

/// What turns an exact i32 sum into an output: `(sum - offset[j]) * (sx[i] * scale[j]) + b[j]`.
struct Epilogue<'a> {
    sx: &'a [f32],
    scales: &'a [f32],
    offsets: &'a [i32],
    bias: &'a [f32],
    n: usize,
}

impl Epilogue<'_> {
    #[inline(always)]
    fn apply(&self, i: usize, j: usize, sum: i32) -> f32 {
        (sum - self.offsets[j]) as f32 * (self.sx[i] * self.scales[j]) + self.bias[j]
    }
}

/// A matrix [n, k] as int8 storage gives it back: each row quantized and dequantized.
pub fn round_trip(t: &candle_core::Tensor) -> candle_core::Result<candle_core::Tensor> {
    let (n, k) = t.dims2()?;
    let w =
        super::cpu::with_f32(&t.to_dtype(candle_core::DType::F32)?, |w| Int8Matrix::quantize(w, n, k).dequantize())?;
    candle_core::Tensor::from_vec(w, (n, k), t.device())?.to_dtype(t.dtype())
}

/// Which implementation computes the integer dot products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// Plain Rust, any CPU.
    Portable,
    /// AVX-512 VNNI `vpdpbusd`.
    Vnni,
    /// AVX2 `vpmaddubsw` and `vpmaddwd`.
    Avx2,
}

impl Path {
    pub fn detect() -> Path {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512vnni") {
            return Path::Vnni;
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            return Path::Avx2;
        }
        Path::Portable
    }

    /// The paths this CPU can run, fastest first.
    pub fn available() -> Vec<Path> {
        let mut paths = vec![Path::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                paths.insert(0, Path::Avx2);
            }
            if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512vnni") {
                paths.insert(0, Path::Vnni);
            }
        }
        paths
    }
}

/// Rows of x as `round(x / s) + 128` (u8, k padded to `k4` with 128, i.e. zero) and their scales:
/// [`quantize_row`]'s values, computed in vector registers.
fn quantize_activations(x: &[f32], m: usize, k: usize, k4: usize) -> (Vec<u8>, Vec<f32>) {
    let mut xq = vec![128u8; m * k4];
    let mut scales = vec![0f32; m];
    let row = |((row, out), scale): ((&[f32], &mut [u8]), &mut f32)| {
        *scale = row_scale(row);
        let inv = 1.0 / *scale;
        for (o, &v) in out.iter_mut().zip(row) {
            *o = (level(v * inv) + 128) as u8;
        }
    };
    let (rows, outs) = (&x[..m * k], &mut xq[..]);
    // rows are independent: a decoding step's 64 rows of 4096 split over the threads (it ran
    // on one thread while the others waited for the product)
    if m * k >= 1 << 16 && m > 1 {
        rows.par_chunks_exact(k.max(1)).zip(outs.par_chunks_exact_mut(k4.max(1))).zip(&mut scales).for_each(row);
    } else {
        rows.chunks_exact(k.max(1)).zip(outs.chunks_exact_mut(k4.max(1))).zip(&mut scales).for_each(row);
    }
    (xq, scales)
}

/// `f32::round` (halves away from zero) from `trunc`, which vectorises where `round` is a
/// library call per element; NaN gives NaN.
#[inline(always)]
fn round_half_away(v: f32) -> f32 {
    let t = v.trunc();
    // v - t is exact (|v| < 2^23 has a fractional part; larger values have none)
    if (v - t).abs() >= 0.5 {
        t + 1f32.copysign(v)
    } else {
        t
    }
}

/// `acc[i, c] = sum_k xq[i, k] * w[j, k]` (u8 x i8) for the columns `j` of `blocks`.
fn portable_dot_blocks(packed: &[i8], k4: usize, xq: &[u8], m: usize, blocks: std::ops::Range<usize>, acc: &mut [i32]) {
    let width = blocks.len() * BLOCK;
    for (bi, block) in blocks.enumerate() {
        let w = &packed[block * BLOCK * k4..(block + 1) * BLOCK * k4];
        for i in 0..m {
            let x = &xq[i * k4..(i + 1) * k4];
            let mut sums = [0i32; BLOCK];
            for (g, group) in w.chunks_exact(BLOCK * 4).enumerate() {
                let xs = &x[g * 4..g * 4 + 4];
                for (c, s) in sums.iter_mut().enumerate() {
                    let wc = &group[c * 4..c * 4 + 4];
                    *s += (0..4).map(|t| xs[t] as i32 * wc[t] as i32).sum::<i32>();
                }
            }
            acc[i * width + bi * BLOCK..][..BLOCK].copy_from_slice(&sums);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use std::arch::x86_64::*;

    use super::{Epilogue, SharedOut, BLOCK};

    /// Rows per micro-tile and 16-column blocks per micro-tile.
    const MR: usize = 4;
    const NB: usize = 4;

    /// The outputs of blocks `blocks` for all `m` rows, with `vpdpbusd` on micro-tiles of up to
    /// 4 rows × 64 columns, finished in registers ([`Epilogue`]) and stored into `y`.
    ///
    /// # Safety
    /// The CPU has avx512f and avx512vnni; `y` has room for [m, n] and no other thread writes
    /// these blocks.
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub unsafe fn dot_blocks(
        packed: &[i8],
        k4: usize,
        xq: &[u8],
        m: usize,
        blocks: std::ops::Range<usize>,
        e: &Epilogue,
        y: SharedOut,
    ) {
        let mut b = blocks.start;
        while b < blocks.end {
            let nb = (blocks.end - b).min(NB);
            let mut i = 0;
            while i < m {
                let mr = (m - i).min(MR);
                match (mr, nb) {
                    (4, 4) => tile::<4, 4>(packed, k4, xq, i, b, e, y),
                    (4, 3) => tile::<4, 3>(packed, k4, xq, i, b, e, y),
                    (4, 2) => tile::<4, 2>(packed, k4, xq, i, b, e, y),
                    (4, 1) => tile::<4, 1>(packed, k4, xq, i, b, e, y),
                    (3, _) | (2, _) | (1, _) => {
                        for r in i..i + mr {
                            match nb {
                                4 => tile::<1, 4>(packed, k4, xq, r, b, e, y),
                                3 => tile::<1, 3>(packed, k4, xq, r, b, e, y),
                                2 => tile::<1, 2>(packed, k4, xq, r, b, e, y),
                                _ => tile::<1, 1>(packed, k4, xq, r, b, e, y),
                            }
                        }
                    }
                    _ => unreachable!("tiles are at most {MR} rows and {NB} blocks"),
                }
                i += mr;
            }
            b += nb;
        }
    }

    /// One micro-tile: rows `i .. i + R` of xq against blocks `b .. b + N`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512vnni")]
    unsafe fn tile<const R: usize, const N: usize>(
        packed: &[i8],
        k4: usize,
        xq: &[u8],
        i: usize,
        b: usize,
        e: &Epilogue,
        y: SharedOut,
    ) {
        let mut acc = [[_mm512_setzero_si512(); N]; R];
        let w = packed.as_ptr().add(b * BLOCK * k4);
        let x = xq.as_ptr().add(i * k4);
        for g in 0..k4 / 4 {
            let mut wv = [_mm512_setzero_si512(); N];
            for (n, v) in wv.iter_mut().enumerate() {
                *v = _mm512_loadu_si512(w.add(n * BLOCK * k4 + g * BLOCK * 4) as *const _);
            }
            for (r, row) in acc.iter_mut().enumerate() {
                let xv = _mm512_set1_epi32((x.add(r * k4 + g * 4) as *const i32).read_unaligned());
                for (a, &wn) in row.iter_mut().zip(&wv) {
                    *a = _mm512_dpbusd_epi32(*a, xv, wn);
                }
            }
        }
        // (sum - offset) * (sx * scale) + bias, as Epilogue::apply rounds it (no fused multiply-add)
        for (r, row) in acc.iter().enumerate() {
            let sx = _mm512_set1_ps(e.sx[i + r]);
            for (nb, &a) in row.iter().enumerate() {
                let j0 = (b + nb) * BLOCK;
                let cols = (e.n - j0).min(BLOCK);
                let mask: __mmask16 = if cols == BLOCK { 0xFFFF } else { (1u16 << cols) - 1 };
                let offsets = _mm512_maskz_loadu_epi32(mask, e.offsets.as_ptr().add(j0));
                let scales = _mm512_maskz_loadu_ps(mask, e.scales.as_ptr().add(j0));
                let bias = _mm512_maskz_loadu_ps(mask, e.bias.as_ptr().add(j0));
                let v = _mm512_cvtepi32_ps(_mm512_sub_epi32(a, offsets));
                let out = _mm512_add_ps(_mm512_mul_ps(v, _mm512_mul_ps(sx, scales)), bias);
                _mm512_mask_storeu_ps(y.get().add((i + r) * e.n + j0), mask, out);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{Epilogue, SharedOut, BLOCK};

    /// Rows per micro-tile (each row holds two accumulators of 8 columns).
    const MR: usize = 4;

    /// The outputs of blocks `blocks` for all `m` rows, on micro-tiles of up to 4 rows × 16
    /// columns, finished in registers as [`Epilogue::apply`] rounds.
    ///
    /// # Safety
    /// The CPU has avx2; `y` has room for [m, n] and no other thread writes these blocks.
    #[target_feature(enable = "avx2")]
    pub unsafe fn dot_blocks(
        packed: &[i8],
        k4: usize,
        xq: &[u8],
        m: usize,
        blocks: std::ops::Range<usize>,
        e: &Epilogue,
        y: SharedOut,
    ) {
        for b in blocks {
            let mut i = 0;
            while i < m {
                let mr = (m - i).min(MR);
                match mr {
                    4 => tile::<4>(packed, k4, xq, i, b, e, y),
                    3 => tile::<3>(packed, k4, xq, i, b, e, y),
                    2 => tile::<2>(packed, k4, xq, i, b, e, y),
                    _ => tile::<1>(packed, k4, xq, i, b, e, y),
                }
                i += mr;
            }
        }
    }

    /// Rows `i .. i + R` of xq against block `b` (16 columns).
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn tile<const R: usize>(
        packed: &[i8],
        k4: usize,
        xq: &[u8],
        i: usize,
        b: usize,
        e: &Epilogue,
        y: SharedOut,
    ) {
        let mut acc = [[_mm256_setzero_si256(); 2]; R];
        let w = packed.as_ptr().add(b * BLOCK * k4);
        let x = xq.as_ptr().add(i * k4);
        let flip = _mm256_set1_epi8(i8::MIN);
        let ones = _mm256_set1_epi16(1);
        for g in 0..k4 / 4 {
            // 16 columns × 4 inputs: columns 0-7, then 8-15
            let w0 = _mm256_loadu_si256(w.add(g * BLOCK * 4) as *const __m256i);
            let w1 = _mm256_loadu_si256(w.add(g * BLOCK * 4 + 32) as *const __m256i);
            for (r, row) in acc.iter_mut().enumerate() {
                let xv = _mm256_set1_epi32((x.add(r * k4 + g * 4) as *const i32).read_unaligned());
                // u8 - 128 as i8; then |x| (u8) times w carrying x's sign
                let xs = _mm256_xor_si256(xv, flip);
                let xa = _mm256_abs_epi8(xs);
                let p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(xa, _mm256_sign_epi8(w0, xs)), ones);
                let p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(xa, _mm256_sign_epi8(w1, xs)), ones);
                row[0] = _mm256_add_epi32(row[0], p0);
                row[1] = _mm256_add_epi32(row[1], p1);
            }
        }
        // the sums are already `sum - offset`; * (sx * scale) + bias without fused multiply-add
        for (r, row) in acc.iter().enumerate() {
            let sx = _mm256_set1_ps(e.sx[i + r]);
            for (h, &a) in row.iter().enumerate() {
                let j0 = b * BLOCK + h * 8;
                if j0 >= e.n {
                    continue;
                }
                let out = y.get().add((i + r) * e.n + j0);
                if e.n - j0 >= 8 {
                    let scales = _mm256_loadu_ps(e.scales.as_ptr().add(j0));
                    let bias = _mm256_loadu_ps(e.bias.as_ptr().add(j0));
                    let v = _mm256_cvtepi32_ps(a);
                    _mm256_storeu_ps(out, _mm256_add_ps(_mm256_mul_ps(v, _mm256_mul_ps(sx, scales)), bias));
                } else {
                    let mut sums = [0i32; 8];
                    _mm256_storeu_si256(sums.as_mut_ptr() as *mut __m256i, a);
                    for (c, &sum) in sums.iter().enumerate().take(e.n - j0) {
                        let j = j0 + c;
                        *out.add(c) = sum as f32 * (e.sx[i + r] * e.scales[j]) + e.bias[j];
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize, seed: u32) -> Vec<f32> {
        (0..len as u32)
            .map(|i| ((i.wrapping_mul(2654435761).wrapping_add(seed) >> 8) % 2001) as f32 / 1000.0 - 1.0)
            .collect()
    }

    #[test]
    fn quantized_product_is_close_to_f32_and_paths_agree_exactly() {
        for (m, k, n) in [(1, 5, 3), (3, 16, 17), (7, 33, 70), (9, 64, 129), (130, 256, 48)] {
            let (x, w, b) = (data(m * k, 1), data(n * k, 2), data(n, 3));
            let q = Int8Matrix::quantize(&w, n, k);
            let portable = q.matmul_with(&x, m, &b, Path::Portable);
            for path in Path::available() {
                assert_eq!(portable, q.matmul_with(&x, m, &b, path), "{m}x{k}x{n} {path:?}");
            }
            for i in 0..m {
                for j in 0..n {
                    let exact: f32 = (0..k).map(|t| x[i * k + t] * w[j * k + t]).sum::<f32>() + b[j];
                    // each factor is off by at most half a step of 1/127 of its row's max (1)
                    let bound = k as f32 * (2.0 / 254.0 + 1.0 / (254.0 * 254.0)) + 1e-4;
                    assert!((portable[i * n + j] - exact).abs() <= bound, "{m}x{k}x{n} [{i},{j}]");
                }
            }
        }
    }

    #[test]
    fn packing_round_trips_and_requantizing_a_dequantized_matrix_changes_nothing() {
        let (n, k) = (37, 21);
        let w = data(n * k, 9);
        let q = Int8Matrix::quantize(&w, n, k);
        let (values, scales) = q.unpack();
        assert_eq!(Int8Matrix::from_quantized(&values, scales, n, k), q);
        assert_eq!(Int8Matrix::quantize(&q.dequantize(), n, k).unpack().0, values);
    }

    #[test]
    fn activations_quantize_as_quantize_row_does() {
        // halves, values next to halves, large, tiny, zero and NaN
        let mut x: Vec<f32> = (-600..=600).map(|i| i as f32 * 0.25).collect();
        x.extend([0.49999997, -0.49999997, 126.5, -126.5, 1e-30, 0.0, -0.0, f32::NAN, 3e38, -3e38]);
        for v in x.iter().copied().filter(|v| !v.is_nan()) {
            assert_eq!(round_half_away(v), v.round(), "{v}");
        }
        // the levels are the plain definition's, the int8 weights' as they always were
        for v in x.iter().flat_map(|&v| [v, v * 0.37, v * 1e3]) {
            assert_eq!(level(v), v.round().clamp(-127.0, 127.0) as i32, "{v}");
        }
        let (k, m) = (x.len() / 7, 7);
        let (xq, scales) = quantize_activations(&x[..m * k], m, k, k.div_ceil(4) * 4);
        let mut q = vec![0i8; k];
        for i in 0..m {
            assert_eq!(scales[i], quantize_row(&x[i * k..(i + 1) * k], &mut q), "row {i}");
            let want: Vec<u8> = q.iter().map(|&v| (v as i16 + 128) as u8).collect();
            assert_eq!(&xq[i * k.div_ceil(4) * 4..][..k], &want[..], "row {i}");
        }
    }

    #[test]
    fn zero_rows_quantize_to_zero() {
        let q = Int8Matrix::quantize(&[0.0; 8], 2, 4);
        assert_eq!(q.matmul(&[1.0, 2.0, 3.0, 4.0], 1, &[0.5, -0.5]), vec![0.5, -0.5]);
    }
}
