//! Helpers shared by the fused CPU kernels.

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

/// Runs `f` on the contiguous f32 elements of a CPU tensor.
pub fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        candle_core::Storage::Cpu(s) => Ok(f(f32_slice(s, layout)?)),
        _ => candle_core::bail!("fused kernel runs on the CPU"),
    }
}
