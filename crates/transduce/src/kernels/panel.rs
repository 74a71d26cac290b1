//! Inference `y = act(x W^T + b)` in f32, with W^T stored once in column panels.
//!
//! Decoding multiplies a few rows (one per hypothesis) by every weight matrix, so its time goes
//! to streaming the weights; a general GEMM strides through W or repacks it on each call. Here
//! W^T [k, n] is packed once into panels of [`PANEL`] columns, each panel [k, PANEL] contiguous
//! and zero-padded at the right edge. A micro-tile of up to 6 rows × 64 columns walks one panel
//! front to back with up to 24 vector accumulators, so a single row reads each weight exactly
//! once in address order; larger batches reuse a panel from L2 across all their row tiles.
//!
//! On AVX2 (no AVX-512) all the rows of a block go through one panel at a time, k in blocks
//! that stay in L1, tiles of 6 rows × 16 columns sharing each weight load.
//!
//! Every output is `bias + Σ_k x[k] w[k]` summed in k order with fused multiply-adds, on every
//! path, so the AVX-512, AVX2 and portable paths agree to the bit.

use rayon::prelude::*;

use super::cpu::SharedOut;
use super::linear::BiasActivation;

/// Columns per panel (four 16-lane vectors).
pub const PANEL: usize = 64;
/// Rows per micro-tile.
const MR: usize = 6;
/// Below this many multiply-adds a product stays off the rayon pool: waking a sleeping worker
/// costs tens of microseconds on these machines, more than a batch-1 product saves (measured:
/// greedy batch-1 decoding got slower with 1 << 18 or 1 << 20).
pub const PARALLEL_MIN_MACS: usize = 1 << 22;
/// From this many multiply-adds (and below [`PARALLEL_MIN_MACS`]) a product is split with the
/// spinning helper of [`super::pair`], which answers in well under a microsecond.
pub const PAIR_MIN_MACS: usize = 1 << 17;

/// The instruction set a product runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// Plain Rust (`mul_add`, auto-vectorised), any CPU.
    Portable,
    /// AVX2 + FMA intrinsics: tiles of up to 6 rows × 16 columns, each weight load shared by
    /// the tile's rows (AMD Zen, Intel before AVX-512).
    Avx2,
    /// AVX-512F intrinsics.
    Avx512,
}

impl Path {
    pub fn detect() -> Path {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Path::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                return Path::Avx2;
            }
        }
        Path::Portable
    }
}

/// A weight W [n, k] packed for `x W^T`: panel `p` holds W^T[:, 64p .. 64p + 64] as [k, 64].
#[derive(Debug, Clone)]
pub struct PanelMatrix {
    values: Values,
    n: usize,
    k: usize,
}

/// How a [`PanelMatrix`] holds its weights, in panel order.
#[derive(Debug, Clone)]
enum Values {
    /// As f32.
    Whole(Vec<f32>),
    /// Each f32 as its high and low 16 bits ([`PanelMatrix::pack_halves`]).
    Halves(Halves),
}

/// A matrix's weights split into their high and low 16 bits: the same 4 bytes per weight, and
/// the high halves alone are the weights truncated to bfloat16 (toward zero), from which
/// [`PanelMatrix::high_products`] bounds every output while reading half the bytes.
#[derive(Debug, Clone)]
struct Halves {
    high: Vec<u16>,
    low: Vec<u16>,
    /// Per output j: `||w_j||`, rounded up.
    norms: Vec<f32>,
    /// Per output j: `||w_j - high(w_j)||`, rounded up.
    residuals: Vec<f32>,
}

impl Halves {
    fn value(&self, i: usize) -> f32 {
        f32::from_bits((self.high[i] as u32) << 16 | self.low[i] as u32)
    }
}

/// The weight truncated to its high 16 bits (a bfloat16, rounded toward zero).
fn high_half(v: f32) -> f32 {
    f32::from_bits(v.to_bits() & 0xFFFF_0000)
}

/// `x` (non-negative) as an f32 no smaller than it.
fn round_up(x: f64) -> f32 {
    let f = x as f32;
    if (f as f64) < x {
        f32::from_bits(f.to_bits() + 1)
    } else {
        f
    }
}

/// Where weight `(j, kk)` of W [n, k] lies in the packed panels.
fn packed_index(k: usize, j: usize, kk: usize) -> usize {
    ((j / PANEL) * k + kk) * PANEL + j % PANEL
}

impl PanelMatrix {
    /// Packs W: [n, k] row-major.
    pub fn pack(w: &[f32], n: usize, k: usize) -> Self {
        assert_eq!(w.len(), n * k, "weight is not [n, k]");
        let mut packed = vec![0f32; n.div_ceil(PANEL) * k * PANEL];
        for (j, row) in w.chunks_exact(k.max(1)).enumerate().take(n) {
            for (kk, &v) in row.iter().enumerate() {
                packed[packed_index(k, j, kk)] = v;
            }
        }
        PanelMatrix { values: Values::Whole(packed), n, k }
    }

    /// Packs W: [n, k] row-major as its high and low 16-bit halves: products give the same bits
    /// as [`PanelMatrix::pack`]'s, and [`PanelMatrix::high_products`] bounds them from the high
    /// halves alone (an output projection whose largest output is all greedy search needs).
    pub fn pack_halves(w: &[f32], n: usize, k: usize) -> Self {
        assert_eq!(w.len(), n * k, "weight is not [n, k]");
        let len = n.div_ceil(PANEL) * k * PANEL;
        let (mut high, mut low) = (vec![0u16; len], vec![0u16; len]);
        let (mut norms, mut residuals) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for (j, row) in w.chunks_exact(k.max(1)).enumerate().take(n) {
            let (mut norm, mut residual) = (0f64, 0f64);
            for (kk, &v) in row.iter().enumerate() {
                let i = packed_index(k, j, kk);
                (high[i], low[i]) = ((v.to_bits() >> 16) as u16, v.to_bits() as u16);
                norm += (v as f64) * (v as f64);
                residual += ((v - high_half(v)) as f64).powi(2);
            }
            // the f64 sums' own rounding is far below one f32 ulp
            norms.push(round_up(norm.sqrt() * (1.0 + 1e-9)));
            residuals.push(round_up(residual.sqrt() * (1.0 + 1e-9)));
        }
        PanelMatrix { values: Values::Halves(Halves { high, low, norms, residuals }), n, k }
    }

    /// The weight at packed position `i`.
    fn value(&self, i: usize) -> f32 {
        match &self.values {
            Values::Whole(packed) => packed[i],
            Values::Halves(h) => h.value(i),
        }
    }

    /// Panel `p` as f32 [k, 64]: the packed values, or for halves, put together in `scratch`.
    fn panel<'a>(&'a self, p: usize, scratch: &'a mut Vec<f32>) -> &'a [f32] {
        let span = p * self.k * PANEL..(p + 1) * self.k * PANEL;
        match &self.values {
            Values::Whole(packed) => &packed[span],
            Values::Halves(h) => {
                scratch.clear();
                let (high, low) = (&h.high[span.clone()], &h.low[span]);
                scratch.extend(high.iter().zip(low).map(|(&hi, &lo)| f32::from_bits((hi as u32) << 16 | lo as u32)));
                scratch
            }
        }
    }

    /// W [n, k] back, exactly as packed.
    pub fn unpack(&self) -> Vec<f32> {
        let (n, k) = (self.n, self.k);
        let mut w = vec![0f32; n * k];
        for (j, row) in w.chunks_exact_mut(k.max(1)).enumerate().take(n) {
            for (kk, v) in row.iter_mut().enumerate() {
                *v = self.value(packed_index(k, j, kk));
            }
        }
        w
    }

    /// Rows `ids` of W, [ids.len(), k] row-major, exactly as packed (a tied embedding table
    /// looked up in its output projection's copy).
    pub fn gather_rows(&self, ids: &[u32]) -> Vec<f32> {
        let k = self.k;
        let mut out = vec![0f32; ids.len() * k];
        for (row, &j) in out.chunks_exact_mut(k.max(1)).zip(ids) {
            for (kk, v) in row.iter_mut().enumerate() {
                *v = self.value(packed_index(k, j as usize, kk));
            }
        }
        out
    }

    /// Output `j` of `x W^T + b` for one row `x` \[k\], computed as every product path computes it
    /// (a chain of fused multiply-adds in k order, then the bias): the same bits.
    pub fn output(&self, x: &[f32], j: usize, bias: f32) -> f32 {
        let k = self.k;
        (0..k).fold(0f32, |acc, kk| x[kk].mul_add(self.value(packed_index(k, j, kk)), acc)) + bias
    }

    /// Per output j, `(||w_j||, ||w_j - high(w_j)||)` rounded up, for a matrix packed in halves.
    pub fn high_bounds(&self) -> Option<(&[f32], &[f32])> {
        match &self.values {
            Values::Whole(_) => None,
            Values::Halves(h) => Some((&h.norms, &h.residuals)),
        }
    }

    /// Rows `ids` of W packed as their own matrix (a vocabulary shortlist's output projection).
    pub fn select_rows(&self, ids: &[u32]) -> Self {
        Self::pack(&self.gather_rows(ids), ids.len(), self.k)
    }

    /// Output features (`n`).
    pub fn rows(&self) -> usize {
        self.n
    }

    /// Input features (`k`).
    pub fn cols(&self) -> usize {
        self.k
    }

    /// `activation(x W^T + b)` for x [m, k] -> [m, n], on the fastest path this CPU has.
    pub fn matmul(&self, x: &[f32], m: usize, bias: &[f32], activation: BiasActivation) -> Vec<f32> {
        self.matmul_with(x, m, bias, activation, Path::detect())
    }

    /// `matmul` on a chosen path (tests compare them).
    pub fn matmul_with(&self, x: &[f32], m: usize, bias: &[f32], activation: BiasActivation, path: Path) -> Vec<f32> {
        self.matmul_into(x, m, bias, activation, path, Vec::new())
    }

    /// `matmul_with` into `out`'s memory (its contents dropped): a caller that hands back the
    /// last result's vector reuses its pages instead of faulting in fresh ones (a step's logits
    /// are rows × vocabulary floats).
    pub fn matmul_into(
        &self,
        x: &[f32],
        m: usize,
        bias: &[f32],
        activation: BiasActivation,
        path: Path,
        out: Vec<f32>,
    ) -> Vec<f32> {
        self.product_into(x, m, bias, activation, path, Operand::Weights, out)
    }

    /// `x high(W)^T` for x [m, k] -> [m, n], with the weights truncated to their high halves:
    /// half the bytes of [`PanelMatrix::matmul`] read; each output within the bound of
    /// `crate::kernels::largest` of the exact one. `None` unless packed in halves.
    pub fn high_products(&self, x: &[f32], m: usize, path: Path) -> Option<Vec<f32>> {
        matches!(self.values, Values::Halves(_)).then(|| {
            let zeros = vec![0f32; self.n];
            self.product_into(x, m, &zeros, BiasActivation::Identity, path, Operand::HighHalves, Vec::new())
        })
    }

    /// [`PanelMatrix::matmul_into`] of `operand`.
    #[allow(clippy::too_many_arguments)]
    fn product_into(
        &self,
        x: &[f32],
        m: usize,
        bias: &[f32],
        activation: BiasActivation,
        path: Path,
        operand: Operand,
        out: Vec<f32>,
    ) -> Vec<f32> {
        let (n, k) = (self.n, self.k);
        assert_eq!((x.len(), bias.len()), (m * k, n), "x is not [m, k] or bias not [n]");
        // every element is written below (each row meets every panel): no zero-fill
        let mut y = out;
        y.clear();
        y.reserve(m * n);
        let out = SharedOut(y.as_mut_ptr());
        let panels = n.div_ceil(PANEL);
        let threads = rayon::current_num_threads().max(1);
        // SAFETY (all three): the tasks write disjoint parts of y, which is [m, n].
        let macs = m * n * k;
        if threads == 1 || macs < PAIR_MIN_MACS || (macs < PARALLEL_MIN_MACS && panels < 2) {
            unsafe { self.block(x, 0..m, 0..panels, bias, activation, path, operand, out) };
        } else if macs < PARALLEL_MIN_MACS {
            // a few rows: half the panels each on this thread and the spinning helper
            let half = panels / 2;
            super::pair::join(
                || unsafe { self.block(x, 0..m, 0..half, bias, activation, path, operand, out) },
                || unsafe { self.block(x, 0..m, half..panels, bias, activation, path, operand, out) },
            );
        } else if panels >= 2 * threads {
            // split the columns: every task streams its own panels once
            let per_task = panels.div_ceil(threads * 2);
            (0..panels.div_ceil(per_task)).into_par_iter().for_each(|t| {
                let range = t * per_task..((t + 1) * per_task).min(panels);
                unsafe { self.block(x, 0..m, range, bias, activation, path, operand, out) };
            });
        } else {
            // few panels, many rows: split the rows
            let per_task = m.div_ceil(threads * 2).next_multiple_of(MR);
            (0..m.div_ceil(per_task)).into_par_iter().for_each(|t| {
                let rows = t * per_task..((t + 1) * per_task).min(m);
                unsafe { self.block(x, rows, 0..panels, bias, activation, path, operand, out) };
            });
        }
        // SAFETY: the blocks above wrote all m * n elements.
        unsafe { y.set_len(m * n) };
        y
    }

    /// Rows `rows` of x against panels `panels`, into those rows and panel columns of y.
    ///
    /// # Safety
    /// `y` points to room for [m, n] floats (x is [m, k]) and no other thread writes the
    /// same part.
    #[allow(clippy::too_many_arguments)]
    unsafe fn block(
        &self,
        x: &[f32],
        rows: std::ops::Range<usize>,
        panels: std::ops::Range<usize>,
        bias: &[f32],
        activation: BiasActivation,
        path: Path,
        operand: Operand,
        y: SharedOut,
    ) {
        let (n, k) = (self.n, self.k);
        let mut tile = [[0f32; PANEL]; MR];
        let mut scratch = Vec::new();
        #[cfg(target_arch = "x86_64")]
        if path == Path::Avx2 {
            // every row of the block against one panel at a time, k in blocks that stay in L1
            let m = rows.len();
            let mut out = vec![0f32; m * PANEL];
            let xs = &x[rows.start * k..rows.end * k];
            for p in panels {
                let panel = self.operand_panel(p, operand, &mut scratch);
                let cols = p * PANEL..((p + 1) * PANEL).min(n);
                // SAFETY: Path::Avx2 is only chosen when the CPU has avx2 and fma; the sizes
                // are checked in `matmul_with` and here.
                unsafe { avx2::panel_rows(panel, k, xs, m, &mut out) };
                for (t, row) in out.chunks_exact_mut(PANEL).enumerate() {
                    let row = &mut row[..cols.len()];
                    row.iter_mut().zip(&bias[cols.clone()]).for_each(|(v, &b)| *v += b);
                    activation.apply(row);
                    std::ptr::copy_nonoverlapping(
                        row.as_ptr(),
                        y.get().add((rows.start + t) * n + cols.start),
                        cols.len(),
                    );
                }
            }
            return;
        }
        for p in panels {
            // AVX-512 reads halves straight from their panels for one row tile (a panel put
            // together first pays off over several), and high halves alone always; every other
            // case reads f32
            let span = p * k * PANEL..(p + 1) * k * PANEL;
            let panel = match (&self.values, operand, path) {
                (Values::Halves(h), Operand::HighHalves, Path::Avx512) => TilePanel::High(&h.high[span]),
                (Values::Halves(h), Operand::Weights, Path::Avx512) if rows.len() <= MR => {
                    TilePanel::Halves { high: &h.high[span.clone()], low: &h.low[span] }
                }
                _ => TilePanel::F32(self.operand_panel(p, operand, &mut scratch)),
            };
            let cols = p * PANEL..((p + 1) * PANEL).min(n);
            let mut i = rows.start;
            while i < rows.end {
                let r = (rows.end - i).min(MR);
                let xs = &x[i * k..(i + r) * k];
                #[cfg(target_arch = "x86_64")]
                if path == Path::Avx512 {
                    let at = y.get().add(i * n + cols.start);
                    let bias = &bias[cols.clone()];
                    // SAFETY: Path::Avx512 is only chosen when the CPU has avx512f; the slices
                    // have the sizes the tile reads (checked in `matmul_with`); the output rows
                    // i .. i + r of these columns are this call's to write.
                    unsafe { avx512::tile_out(panel, k, xs, r, bias, activation, at, n) };
                    i += r;
                    continue;
                }
                let TilePanel::F32(panel) = panel else { unreachable!("only AVX-512 reads halves as they are") };
                portable_tile(panel, k, xs, r, &mut tile);
                for (t, row) in tile.iter_mut().take(r).enumerate() {
                    let row = &mut row[..cols.len()];
                    row.iter_mut().zip(&bias[cols.clone()]).for_each(|(v, &b)| *v += b);
                    activation.apply(row);
                    std::ptr::copy_nonoverlapping(row.as_ptr(), y.get().add((i + t) * n + cols.start), cols.len());
                }
                i += r;
            }
        }
    }
}

/// One panel as an AVX-512 tile reads it.
#[derive(Debug, Clone, Copy)]
enum TilePanel<'a> {
    /// f32 [k, 64].
    F32(&'a [f32]),
    /// High and low halves, [k, 64] each: the weights to the bit.
    Halves { high: &'a [u16], low: &'a [u16] },
    /// High halves [k, 64] alone, each widened to the f32 it is the top of.
    High(&'a [u16]),
}

/// What a product multiplies by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operand {
    /// The weights.
    Weights,
    /// The weights' high halves (a matrix packed in halves).
    HighHalves,
}

impl PanelMatrix {
    /// Panel `p` of `operand` as f32 [k, 64] (in `scratch` unless stored as such).
    fn operand_panel<'a>(&'a self, p: usize, operand: Operand, scratch: &'a mut Vec<f32>) -> &'a [f32] {
        match (operand, &self.values) {
            (Operand::HighHalves, Values::Halves(h)) => {
                scratch.clear();
                let high = &h.high[p * self.k * PANEL..(p + 1) * self.k * PANEL];
                scratch.extend(high.iter().map(|&hi| f32::from_bits((hi as u32) << 16)));
                scratch
            }
            _ => self.panel(p, scratch),
        }
    }
}

/// Rows `xs` ([r, k], r ≤ 6) times one panel [k, 64] into `tile[..r]`.
fn portable_tile(panel: &[f32], k: usize, xs: &[f32], r: usize, tile: &mut [[f32; PANEL]; MR]) {
    for (t, acc) in tile.iter_mut().take(r).enumerate() {
        *acc = [0f32; PANEL];
        let x = &xs[t * k..(t + 1) * k];
        for (&xv, w) in x.iter().zip(panel.chunks_exact(PANEL)) {
            for (a, &wv) in acc.iter_mut().zip(w) {
                *a = xv.mul_add(wv, *a);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::PANEL;

    /// Weights per block of k: a block of one 16-column quarter (KB × 64 bytes) stays in L1
    /// while every row tile passes over it.
    const KB: usize = 256;

    /// All `m` rows of `xs` ([m, k]) times one panel [k, 64] into `out` ([m, 64]): for each
    /// 16-column quarter and block of k, tiles of up to 6 rows × 2 ymm accumulators, every
    /// weight vector loaded once per tile. Each output is one chain of fused multiply-adds in
    /// k order (carried through `out` between blocks), so the same bits as `portable_tile`.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn panel_rows(panel: &[f32], k: usize, xs: &[f32], m: usize, out: &mut [f32]) {
        assert!(panel.len() >= k * PANEL && xs.len() >= m * k && out.len() >= m * PANEL);
        for quarter in 0..PANEL / 16 {
            let mut k0 = 0;
            while k0 < k || (k == 0 && k0 == 0) {
                let k1 = (k0 + KB).min(k);
                let mut i = 0;
                while i < m {
                    let r = (m - i).min(6);
                    let (x, o) = (&xs[i * k..], &mut out[i * PANEL..]);
                    match r {
                        6 => block::<6>(panel, k, x, o, quarter, k0, k1),
                        5 => block::<5>(panel, k, x, o, quarter, k0, k1),
                        4 => block::<4>(panel, k, x, o, quarter, k0, k1),
                        3 => block::<3>(panel, k, x, o, quarter, k0, k1),
                        2 => block::<2>(panel, k, x, o, quarter, k0, k1),
                        _ => block::<1>(panel, k, x, o, quarter, k0, k1),
                    }
                    i += r;
                }
                if k == 0 {
                    break;
                }
                k0 = k1;
            }
        }
    }

    /// R rows, one quarter, k in `k0..k1`: the accumulators start from zero at `k0 == 0`,
    /// else from what the previous block left in `out`.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn block<const R: usize>(
        panel: &[f32],
        k: usize,
        xs: &[f32],
        out: &mut [f32],
        quarter: usize,
        k0: usize,
        k1: usize,
    ) {
        assert!(xs.len() >= (R - 1) * k + k1 && out.len() >= (R - 1) * PANEL + quarter * 16 + 16);
        let (w, x, o) = (panel.as_ptr(), xs.as_ptr(), out.as_mut_ptr());
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        if k0 > 0 {
            for (t, a) in acc.iter_mut().enumerate() {
                // SAFETY: within out (asserted)
                unsafe {
                    a[0] = _mm256_loadu_ps(o.add(t * PANEL + quarter * 16));
                    a[1] = _mm256_loadu_ps(o.add(t * PANEL + quarter * 16 + 8));
                }
            }
        }
        for kk in k0..k1 {
            // SAFETY: kk < k and quarter * 16 + 16 <= PANEL: within the panel (asserted by the caller)
            let wk = unsafe { w.add(kk * PANEL + quarter * 16) };
            let (w0, w1) = unsafe { (_mm256_loadu_ps(wk), _mm256_loadu_ps(wk.add(8))) };
            for (t, a) in acc.iter_mut().enumerate() {
                // SAFETY: t < R, kk < k1: within xs (asserted)
                let xv = unsafe { _mm256_broadcast_ss(&*x.add(t * k + kk)) };
                a[0] = _mm256_fmadd_ps(xv, w0, a[0]);
                a[1] = _mm256_fmadd_ps(xv, w1, a[1]);
            }
        }
        for (t, a) in acc.iter().enumerate() {
            // SAFETY: within out (asserted)
            unsafe {
                _mm256_storeu_ps(o.add(t * PANEL + quarter * 16), a[0]);
                _mm256_storeu_ps(o.add(t * PANEL + quarter * 16 + 8), a[1]);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::super::cpu::fast_exp_avx512;
    use super::super::linear::BiasActivation;
    use super::{TilePanel, PANEL};

    /// Rows `xs` ([r, k], r ≤ 6) times one panel [k, 64] with 4 × r zmm accumulators (as
    /// `portable_tile`), finished in registers: `+ bias`, then `activation`, stored straight
    /// into the output rows (`y` at the tile's first row and column, row stride `n`,
    /// `bias.len()` columns). The same operations as the scalar finish, so the same bits.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn tile_out(
        panel: TilePanel,
        k: usize,
        xs: &[f32],
        r: usize,
        bias: &[f32],
        activation: BiasActivation,
        y: *mut f32,
        n: usize,
    ) {
        match r {
            6 => finish(&rows::<6>(panel, k, xs), bias, activation, y, n),
            5 => finish(&rows::<5>(panel, k, xs), bias, activation, y, n),
            4 => finish(&rows::<4>(panel, k, xs), bias, activation, y, n),
            3 => finish(&rows::<3>(panel, k, xs), bias, activation, y, n),
            2 => finish(&rows::<2>(panel, k, xs), bias, activation, y, n),
            _ => finish(&rows::<1>(panel, k, xs), bias, activation, y, n),
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn finish<const R: usize>(
        acc: &[[__m512; 4]; R],
        bias: &[f32],
        activation: BiasActivation,
        y: *mut f32,
        n: usize,
    ) {
        let cols = bias.len();
        for (b, block) in (0..4).map(|b| (b, b * 16)).take_while(|&(_, c)| c < cols) {
            let width = (cols - block).min(16);
            let mask: __mmask16 = if width == 16 { 0xFFFF } else { (1u16 << width) - 1 };
            let bv = _mm512_maskz_loadu_ps(mask, bias.as_ptr().add(block));
            for (r, row) in acc.iter().enumerate() {
                let v = _mm512_add_ps(row[b], bv);
                let v = match activation {
                    BiasActivation::Identity => v,
                    BiasActivation::Relu => _mm512_max_ps(v, _mm512_setzero_ps()),
                    // v / (1 + e^-v), as `BiasActivation::apply`
                    BiasActivation::Silu => {
                        let minus =
                            _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(v), _mm512_set1_epi32(i32::MIN)));
                        _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0), fast_exp_avx512(minus)))
                    }
                };
                _mm512_mask_storeu_ps(y.add(r * n + block), mask, v);
            }
        }
    }

    /// What [`accumulate`] loads: f32, both halves, or high halves alone (a const parameter, so
    /// each kind compiles to its own loop).
    const F32: u8 = 0;
    const HALVES: u8 = 1;
    const HIGH: u8 = 2;

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn rows<const R: usize>(panel: TilePanel, k: usize, xs: &[f32]) -> [[__m512; 4]; R] {
        debug_assert!(xs.len() >= R * k);
        let none = (std::ptr::null(), std::ptr::null());
        match panel {
            TilePanel::F32(w) => {
                debug_assert!(w.len() >= k * PANEL);
                accumulate::<R, F32>(w.as_ptr(), none, k, xs)
            }
            TilePanel::Halves { high, low } => {
                debug_assert!(high.len() >= k * PANEL && low.len() >= k * PANEL);
                accumulate::<R, HALVES>(std::ptr::null(), (high.as_ptr(), low.as_ptr()), k, xs)
            }
            TilePanel::High(high) => {
                debug_assert!(high.len() >= k * PANEL);
                accumulate::<R, HIGH>(std::ptr::null(), (high.as_ptr(), std::ptr::null()), k, xs)
            }
        }
    }

    /// The panel's weights (`SOURCE` says from where: f32 at `w`, or halves at `halves`) times
    /// R rows, k in order, one fused multiply-add chain per output.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn accumulate<const R: usize, const SOURCE: u8>(
        w: *const f32,
        halves: (*const u16, *const u16),
        k: usize,
        xs: &[f32],
    ) -> [[__m512; 4]; R] {
        let mut acc = [[_mm512_setzero_ps(); 4]; R];
        let x = xs.as_ptr();
        for kk in 0..k {
            let at = kk * PANEL;
            let wv = [
                load::<SOURCE>(w, halves, at),
                load::<SOURCE>(w, halves, at + 16),
                load::<SOURCE>(w, halves, at + 32),
                load::<SOURCE>(w, halves, at + 48),
            ];
            for (r, row) in acc.iter_mut().enumerate() {
                let xv = _mm512_set1_ps(*x.add(r * k + kk));
                for (a, &wb) in row.iter_mut().zip(&wv) {
                    *a = _mm512_fmadd_ps(xv, wb, *a);
                }
            }
        }
        acc
    }

    /// The 16 weights at packed offset `at`, from where `SOURCE` says.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load<const SOURCE: u8>(w: *const f32, (high, low): (*const u16, *const u16), at: usize) -> __m512 {
        match SOURCE {
            F32 => _mm512_loadu_ps(w.add(at)),
            HALVES => {
                let low = _mm512_cvtepu16_epi32(_mm256_loadu_si256(low.add(at) as *const __m256i));
                _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(widen(high.add(at))), low))
            }
            _ => widen(high.add(at)),
        }
    }

    /// 16 high halves at `p`, widened to the f32s they are the top of.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn widen(p: *const u16) -> __m512 {
        _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(_mm256_loadu_si256(p as *const __m256i))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize, seed: u32) -> Vec<f32> {
        (0..len).map(|i| ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) % 1000) as f32 / 500.0 - 1.0).collect()
    }

    /// `bias + Σ x w` in k order with fused multiply-adds: what every path must give exactly.
    fn reference(x: &[f32], w: &[f32], b: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
        let mut y = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let dot = (0..k).fold(0f32, |a, kk| x[i * k + kk].mul_add(w[j * k + kk], a));
                y[i * n + j] = dot + b[j];
            }
        }
        y
    }

    #[test]
    fn every_path_and_shape_equals_the_reference_to_the_bit() {
        // ragged panels, row counts around the tile size, and shapes big enough to split
        for (m, n, k) in [(1, 1, 1), (1, 70, 5), (3, 64, 17), (4, 129, 8), (7, 200, 33), (9, 1000, 64), (130, 96, 40)] {
            let (x, w, b) = (data(m * k, 1), data(n * k, 2), data(n, 3));
            let want = reference(&x, &w, &b, m, n, k);
            let p = PanelMatrix::pack(&w, n, k);
            let mut paths = vec![Path::Portable, Path::detect()];
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                paths.push(Path::Avx2);
            }
            for path in paths {
                assert_eq!(p.matmul_with(&x, m, &b, BiasActivation::Identity, path), want, "{m}x{k}x{n} {path:?}");
            }
        }
    }

    #[test]
    fn unpacking_gives_the_weight_back() {
        for (n, k) in [(1, 1), (70, 5), (128, 3)] {
            let w = data(n * k, 7);
            assert_eq!(PanelMatrix::pack(&w, n, k).unpack(), w, "{n}x{k}");
            assert_eq!(PanelMatrix::pack_halves(&w, n, k).unpack(), w, "{n}x{k} halves");
            let ids = [0, (n - 1) as u32];
            assert_eq!(
                PanelMatrix::pack_halves(&w, n, k).gather_rows(&ids),
                PanelMatrix::pack(&w, n, k).gather_rows(&ids)
            );
        }
    }

    #[test]
    fn halves_give_the_same_bits_as_whole_weights_and_their_high_products_the_truncated_ones() {
        for (m, n, k) in [(1, 70, 5), (4, 129, 8), (9, 1000, 64), (130, 96, 40)] {
            let (x, w, b) = (data(m * k, 1), data(n * k, 2), data(n, 3));
            let whole = PanelMatrix::pack(&w, n, k);
            let halves = PanelMatrix::pack_halves(&w, n, k);
            let truncated: Vec<f32> = w.iter().map(|&v| high_half(v)).collect();
            let high_want = reference(&x, &truncated, &vec![0.0; n], m, n, k);
            let mut paths = vec![Path::Portable, Path::detect()];
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                paths.push(Path::Avx2);
            }
            for path in paths {
                let want = whole.matmul_with(&x, m, &b, BiasActivation::Identity, path);
                assert_eq!(halves.matmul_with(&x, m, &b, BiasActivation::Identity, path), want, "{m}x{k}x{n} {path:?}");
                assert_eq!(halves.high_products(&x, m, path).unwrap(), high_want, "{m}x{k}x{n} {path:?} high");
                for j in [0, n / 2, n - 1] {
                    assert_eq!(halves.output(&x[..k], j, b[j]).to_bits(), want[j].to_bits(), "output {j}");
                }
            }
            assert!(whole.high_products(&x, m, Path::Portable).is_none());
        }
    }

    #[test]
    fn activation_follows_the_bias_on_every_path() {
        // a full tile and a ragged one, a ragged panel; inputs wide enough that SiLU meets
        // large negative and positive values
        let (m, n, k) = (9, 70, 9);
        let (x, w, b) = (data(m * k, 4), data(n * k, 5), data(n, 6));
        let x: Vec<f32> = x.iter().map(|v| v * 40.0).collect();
        let p = PanelMatrix::pack(&w, n, k);
        let mut paths = vec![Path::Portable, Path::detect()];
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            paths.push(Path::Avx2);
        }
        for act in [BiasActivation::Relu, BiasActivation::Silu] {
            let mut want = reference(&x, &w, &b, m, n, k);
            act.apply(&mut want);
            for &path in &paths {
                let got = p.matmul_with(&x, m, &b, act, path);
                let same = got.iter().zip(&want).all(|(g, w)| g.to_bits() == w.to_bits());
                assert!(same, "{act:?} {path:?}");
            }
        }
    }
}
