//! How close the hot loop is to the machine's limit: f32 GEMM GFLOP/s on the shapes that
//! dominate training and decoding (the same call the linear layers make), and the int8 product
//! of quantized models on the decoding shapes, against the peak multiply-add rate measured on
//! this machine with register-resident FMA chains.

use std::time::Instant;

use serde::Serialize;

use super::{median, round, system};
use transduce::error::Result;
use transduce::kernels::int8::{self, Int8Matrix, Path};
use transduce::kernels::linear::{self, gemm_row_major, Operand};
use transduce::kernels::panel::{self, PanelMatrix};
use transduce::kernels::BiasActivation;

#[derive(Debug, Serialize)]
pub struct GemmFigure {
    pub system: String,
    pub figure: &'static str,
    /// `m x k x n`.
    pub shape: String,
    pub threads: usize,
    pub median_us: f64,
    pub gflops: f64,
}

#[derive(Debug, Serialize)]
pub struct PeakFigure {
    pub system: String,
    pub figure: &'static str,
    /// The widest vector FMA measured (`avx512f`, `avx2+fma`, or none).
    pub isa: &'static str,
    pub threads: usize,
    /// Multiply-adds count as 2 flops.
    pub gflops: Option<f64>,
}

/// The product that runs a shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    /// The `gemm` crate, as training and the encoder call it.
    Gemm,
    /// [`PanelMatrix`], as decoding calls it (weights packed once, outside the timing).
    Panel,
    /// [`Int8Matrix`], as a quantized model decodes (weights quantized once, outside the timing;
    /// the activations' quantization inside it). Multiply-adds count as 2 operations.
    Int8,
}

/// `shapes` (`(m, k, n)`) with the GEMM, the panel and the int8 kernel; by default torch_ref.py's
/// two shapes (an activation block times a square weight; a decoding batch times the output
/// projection) and a training-sized FFN product with the GEMM, the decoding products (one
/// hypothesis, a beam-4 batch of 32) with the GEMM and the panels, and NLLB-600M's decoding
/// products at beam 4 × 16 sentences (64 rows: attention, FFN, the 256,206-entry output
/// projection) in int8.
pub fn gemm_figures(shapes: &[(usize, usize, usize)]) -> Result<Vec<GemmFigure>> {
    use Kernel::{Gemm, Int8, Panel};
    if !shapes.is_empty() {
        return shapes
            .iter()
            .flat_map(|&(m, k, n)| [Gemm, Panel, Int8].map(|kernel| gemm_figure(m, k, n, kernel)))
            .collect();
    }
    let shapes = [
        (1024, 256, 1024, Gemm),
        (32, 256, 8000, Gemm),
        (2048, 512, 2048, Gemm),
        (1, 256, 1024, Gemm),
        (1, 256, 1024, Panel),
        (1, 256, 8000, Gemm),
        (1, 256, 8000, Panel),
        (128, 256, 1024, Gemm),
        (128, 256, 1024, Panel),
        (128, 256, 8000, Gemm),
        (128, 256, 8000, Panel),
        (64, 1024, 1024, Int8),
        (64, 1024, 4096, Int8),
        (64, 4096, 1024, Int8),
        (64, 1024, 256_206, Int8),
    ];
    shapes.into_iter().map(|(m, k, n, kernel)| gemm_figure(m, k, n, kernel)).collect()
}

fn gemm_figure(m: usize, k: usize, n: usize, kernel: Kernel) -> Result<GemmFigure> {
    let threads = rayon::current_num_threads();
    let a: Vec<f32> = (0..m * k).map(|i| ((i % 13) as f32 - 6.0) * 0.1).collect();
    let b: Vec<f32> = (0..k * n).map(|i| ((i % 7) as f32 - 3.0) * 0.1).collect();
    let (t, mut run): (usize, Box<dyn FnMut()>) = match kernel {
        Kernel::Gemm => {
            let t = if m * n * k >= linear::PARALLEL_MIN_MACS { threads } else { 1 };
            (t, Box::new(move || drop(std::hint::black_box(gemm_row_major(&a, Operand::Plain, &b, m, n, k, t)))))
        }
        Kernel::Panel => {
            // b read as W [n, k]: the same numbers, the layout the model stores
            let w = PanelMatrix::pack(&b, n, k);
            let bias = vec![0f32; n];
            let t = if m * n * k >= panel::PARALLEL_MIN_MACS { threads } else { 1 };
            (t, Box::new(move || drop(std::hint::black_box(w.matmul(&a, m, &bias, BiasActivation::Identity)))))
        }
        Kernel::Int8 => {
            let w = Int8Matrix::quantize(&b, n, k);
            let bias = vec![0f32; n];
            let t = if m * n * k >= int8::PARALLEL_MIN_MACS { threads } else { 1 };
            let mut out = Vec::new();
            // the caller's memory handed back each time, as decoding recycles a step's logits
            (
                t,
                Box::new(move || {
                    out = std::hint::black_box(w.matmul_into(&a, m, &bias, Path::detect(), std::mem::take(&mut out)))
                }),
            )
        }
    };
    let flops = 2.0 * (m * k * n) as f64;
    let reps = ((2e9 / flops) as usize).clamp(5, 20_000);
    for _ in 0..reps / 10 + 1 {
        run();
    }
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t0 = Instant::now();
        run();
        times.push(t0.elapsed().as_secs_f64());
    }
    let med = median(times);
    Ok(GemmFigure {
        system: system(),
        figure: match kernel {
            Kernel::Gemm => "matmul_f32",
            Kernel::Panel => "matmul_f32_panel",
            Kernel::Int8 => "matmul_int8",
        },
        shape: format!("{m}x{k}x{n}"),
        threads: t,
        median_us: round(med * 1e6, 1),
        gflops: round(flops / med / 1e9, 1),
    })
}

/// Rounds of register-resident multiply-add chains each thread runs per timing.
const PEAK_ITERS: u64 = 20_000_000;

/// Giga-operations per second of `kernel` (`PEAK_ITERS` rounds of `ops_per_round` operations)
/// on every thread at once: the fastest of three timings after one warm-up.
fn peak_rate<T: Send>(threads: usize, kernel: fn(u64) -> T, ops_per_round: f64) -> f64 {
    let run = || {
        let t0 = Instant::now();
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads).map(|_| s.spawn(move || kernel(PEAK_ITERS))).collect();
            for h in handles {
                // the kernels return their sums so that nothing is optimised away
                std::hint::black_box(h.join().ok());
            }
        });
        t0.elapsed().as_secs_f64()
    };
    run();
    let best = (0..3).map(|_| run()).fold(f64::INFINITY, f64::min);
    round(threads as f64 * PEAK_ITERS as f64 * ops_per_round / best / 1e9, 1)
}

/// Peak f32 multiply-add rate: every thread runs independent FMA chains that never leave the
/// registers, so only the FMA units limit it.
pub fn peak_figure() -> PeakFigure {
    let threads = rayon::current_num_threads();
    let (isa, per_thread) = fma_kernel();
    let gflops = per_thread.map(|kernel| peak_rate(threads, kernel, (FMA_CHAINS * lanes(isa) * 2) as f64));
    PeakFigure { system: system(), figure: "peak_f32", isa, threads, gflops }
}

/// Peak int8 multiply-add rate of `vpdpbusd` (AVX-512 VNNI; 64 u8 × i8 products per instruction,
/// 2 operations each), measured as [`peak_figure`] measures the FMA; `None` without VNNI.
pub fn peak_int8_figure() -> PeakFigure {
    let threads = rayon::current_num_threads();
    let gflops = dpbusd_kernel().map(|kernel| peak_rate(threads, kernel, (FMA_CHAINS * 64 * 2) as f64));
    let isa = if gflops.is_some() { "avx512vnni" } else { "none" };
    PeakFigure { system: system(), figure: "peak_int8", isa, threads, gflops }
}

#[cfg(target_arch = "x86_64")]
fn dpbusd_kernel() -> Option<fn(u64) -> i64> {
    let vnni = std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512vnni");
    // SAFETY: the features were detected at run time.
    vnni.then_some(|n| unsafe { x86::dpbusd_avx512(n) })
}

#[cfg(not(target_arch = "x86_64"))]
fn dpbusd_kernel() -> Option<fn(u64) -> i64> {
    None
}

/// Runs `n` rounds of the FMA chains; returns their sum (so nothing is optimised away).
type FmaKernel = fn(u64) -> f32;

/// Independent accumulators per thread: enough to cover the FMA latency on two ports.
const FMA_CHAINS: usize = 12;

fn lanes(isa: &str) -> usize {
    match isa {
        "avx512f" => 16,
        "avx2+fma" => 8,
        _ => 0,
    }
}

#[cfg(target_arch = "x86_64")]
fn fma_kernel() -> (&'static str, Option<FmaKernel>) {
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the feature was detected at run time.
        ("avx512f", Some(|n| unsafe { x86::fma_avx512(n) }))
    } else if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the features were detected at run time.
        ("avx2+fma", Some(|n| unsafe { x86::fma_avx2(n) }))
    } else {
        ("none", None)
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn fma_kernel() -> (&'static str, Option<FmaKernel>) {
    ("none", None)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::FMA_CHAINS;

    #[target_feature(enable = "avx512f")]
    pub unsafe fn fma_avx512(iters: u64) -> f32 {
        let (m, a) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
        let mut acc = [_mm512_set1_ps(1.0); FMA_CHAINS];
        for _ in 0..iters {
            for x in acc.iter_mut() {
                *x = _mm512_fmadd_ps(*x, m, a);
            }
        }
        acc.iter().map(|&x| _mm512_reduce_add_ps(x)).sum()
    }

    #[target_feature(enable = "avx512f,avx512vnni")]
    pub unsafe fn dpbusd_avx512(iters: u64) -> i64 {
        let (x, w) = (_mm512_set1_epi8(1), _mm512_set1_epi8(-1));
        let mut acc = [_mm512_setzero_si512(); FMA_CHAINS];
        for _ in 0..iters {
            for a in acc.iter_mut() {
                *a = _mm512_dpbusd_epi32(*a, x, w);
            }
        }
        acc.iter().map(|&a| _mm512_reduce_add_epi32(a) as i64).sum()
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn fma_avx2(iters: u64) -> f32 {
        let (m, a) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
        let mut acc = [_mm256_set1_ps(1.0); FMA_CHAINS];
        for _ in 0..iters {
            for x in acc.iter_mut() {
                *x = _mm256_fmadd_ps(*x, m, a);
            }
        }
        let mut out = [0f32; 8];
        let sum = acc.iter().fold(_mm256_setzero_ps(), |s, &x| _mm256_add_ps(s, x));
        _mm256_storeu_ps(out.as_mut_ptr(), sum);
        out.iter().sum()
    }
}
