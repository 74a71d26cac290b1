//! Int8 linear layers for inference: `y = x W^T + b` with W stored as int8 with one scale per
//! output row, and x quantized per row on the fly (symmetric, 127 levels each side).
//!
//! `y[i, j] = sx[i] * sw[j] * sum_k qx[i, k] * qw[j, k] + b[j]`, the sum exact in i32. With
//! AVX-512 VNNI the sum runs on `vpdpbusd` (u8 x i8 -> i32, 64 multiply-adds per instruction):
//! x goes in as `qx + 128` (u8) and `128 * sum_k qw[j, k]`, precomputed per row of W, is taken
//! back out, so the result is the same integer as the portable path computes.

use rayon::prelude::*;

/// Output columns per packed block (one 512-bit register of i32 lanes).
const BLOCK: usize = 16;

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
    let max = row.iter().fold(0f32, |m, &v| m.max(v.abs()));
    let scale = if max > 0.0 && max.is_finite() { max / 127.0 } else { 1.0 };
    let inv = 1.0 / scale;
    for (o, &v) in out.iter_mut().zip(row) {
        *o = (v * inv).round().clamp(-127.0, 127.0) as i8;
    }
    scale
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

    /// Packs already quantized rows `q` [n, k] with their scales [n].
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
        assert_eq!((x.len(), bias.len()), (m * self.k, self.n), "x is not [m, k] or bias not [n]");
        let (xq, sx) = quantize_activations(x, m, self.k, self.k4);
        let mut y = vec![0f32; m * self.n];
        let blocks = self.n.div_ceil(BLOCK);
        // split the output columns across threads when the product is large enough to pay for it
        let groups = if m * self.n * self.k >= 1 << 21 { rayon::current_num_threads().max(1) * 2 } else { 1 };
        let per_group = blocks.div_ceil(groups).max(1);
        let task = |g: usize| -> (usize, Vec<f32>) {
            let (b0, b1) = (g * per_group, ((g + 1) * per_group).min(blocks));
            let mut part = vec![0f32; m * (b1.saturating_sub(b0)) * BLOCK];
            if b1 > b0 {
                self.blocks(&xq, &sx, m, b0..b1, bias, &mut part, path);
            }
            (b0, part)
        };
        let parts: Vec<(usize, Vec<f32>)> = if groups > 1 {
            (0..blocks.div_ceil(per_group)).into_par_iter().map(task).collect()
        } else {
            vec![task(0)]
        };
        for (b0, part) in parts {
            let width = part.len() / m.max(1);
            for i in 0..m {
                let cols = (self.n - b0 * BLOCK).min(width);
                y[i * self.n + b0 * BLOCK..][..cols].copy_from_slice(&part[i * width..][..cols]);
            }
        }
        y
    }

    /// Output blocks `range` for all rows into `out` [m, range.len() * 16].
    #[allow(clippy::too_many_arguments)]
    fn blocks(
        &self,
        xq: &[u8],
        sx: &[f32],
        m: usize,
        range: std::ops::Range<usize>,
        bias: &[f32],
        out: &mut [f32],
        path: Path,
    ) {
        let width = range.len() * BLOCK;
        let mut acc = vec![0i32; m * width];
        match path {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: Path::Vnni is only chosen when the CPU has avx512f and avx512vnni.
            Path::Vnni => unsafe { vnni::dot_blocks(&self.packed, self.k4, xq, m, range.clone(), &mut acc) },
            _ => portable_dot_blocks(&self.packed, self.k4, xq, m, range.clone(), &mut acc),
        }
        for i in 0..m {
            for (c, j) in (range.start * BLOCK..range.end * BLOCK).enumerate() {
                if j < self.n {
                    let v = acc[i * width + c] - self.offsets[j];
                    out[i * width + c] = v as f32 * (sx[i] * self.scales[j]) + bias[j];
                }
            }
        }
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
}

impl Path {
    pub fn detect() -> Path {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512vnni") {
            return Path::Vnni;
        }
        Path::Portable
    }
}

/// Rows of x as `round(x / s) + 128` (u8, k padded to `k4` with 128, i.e. zero) and their scales.
fn quantize_activations(x: &[f32], m: usize, k: usize, k4: usize) -> (Vec<u8>, Vec<f32>) {
    let mut xq = vec![128u8; m * k4];
    let mut q = vec![0i8; k];
    let mut scales = Vec::with_capacity(m);
    for i in 0..m {
        scales.push(quantize_row(&x[i * k..(i + 1) * k], &mut q));
        for (o, &v) in xq[i * k4..i * k4 + k].iter_mut().zip(&q) {
            *o = (v as i16 + 128) as u8;
        }
    }
    (xq, scales)
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

    use super::BLOCK;

    /// Rows per micro-tile and 16-column blocks per micro-tile.
    const MR: usize = 4;
    const NB: usize = 4;

    /// As `portable_dot_blocks`, with `vpdpbusd` on micro-tiles of up to 4 rows × 64 columns.
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub unsafe fn dot_blocks(
        packed: &[i8],
        k4: usize,
        xq: &[u8],
        m: usize,
        blocks: std::ops::Range<usize>,
        acc: &mut [i32],
    ) {
        let width = blocks.len() * BLOCK;
        let mut b = blocks.start;
        while b < blocks.end {
            let nb = (blocks.end - b).min(NB);
            let mut i = 0;
            while i < m {
                let mr = (m - i).min(MR);
                let out = acc.as_mut_ptr().add(i * width + (b - blocks.start) * BLOCK);
                match (mr, nb) {
                    (4, 4) => tile::<4, 4>(packed, k4, xq, i, b, out, width),
                    (4, 3) => tile::<4, 3>(packed, k4, xq, i, b, out, width),
                    (4, 2) => tile::<4, 2>(packed, k4, xq, i, b, out, width),
                    (4, 1) => tile::<4, 1>(packed, k4, xq, i, b, out, width),
                    (3, _) | (2, _) | (1, _) => {
                        for r in 0..mr {
                            let out = out.add(r * width);
                            match nb {
                                4 => tile::<1, 4>(packed, k4, xq, i + r, b, out, width),
                                3 => tile::<1, 3>(packed, k4, xq, i + r, b, out, width),
                                2 => tile::<1, 2>(packed, k4, xq, i + r, b, out, width),
                                _ => tile::<1, 1>(packed, k4, xq, i + r, b, out, width),
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

    /// One micro-tile: rows `i .. i + R` of xq against blocks `b .. b + N`, written to `out`
    /// (row stride `width`).
    #[inline]
    #[target_feature(enable = "avx512f,avx512vnni")]
    unsafe fn tile<const R: usize, const N: usize>(
        packed: &[i8],
        k4: usize,
        xq: &[u8],
        i: usize,
        b: usize,
        out: *mut i32,
        width: usize,
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
        for (r, row) in acc.iter().enumerate() {
            for (n, &a) in row.iter().enumerate() {
                _mm512_storeu_si512(out.add(r * width + n * BLOCK) as *mut _, a);
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
            let fast = q.matmul(&x, m, &b);
            assert_eq!(portable, fast, "{m}x{k}x{n}");
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
    fn zero_rows_quantize_to_zero() {
        let q = Int8Matrix::quantize(&[0.0; 8], 2, 4);
        assert_eq!(q.matmul(&[1.0, 2.0, 3.0, 4.0], 1, &[0.5, -0.5]), vec![0.5, -0.5]);
    }
}
