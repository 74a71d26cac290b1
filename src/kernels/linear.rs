//! Inference-only linear layer `y = x W^T + b` for CPU f32, calling the GEMM directly so the
//! thread count can follow the problem size: decoding multiplies a few rows by each weight
//! matrix, where waking a second thread costs more than it saves.

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};

use super::cpu::f32_slice;

/// Below this many multiply-adds the GEMM runs on the calling thread.
const PARALLEL_MIN_MACS: usize = 1 << 22;

struct LinearInference;

impl CustomOp3 for LinearInference {
    fn name(&self) -> &'static str {
        "transduce-linear-inference"
    }

    fn cpu_fwd(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        sw: &CpuStorage,
        lw: &Layout,
        sb: &CpuStorage,
        lb: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w, b) = (f32_slice(sx, lx)?, f32_slice(sw, lw)?, f32_slice(sb, lb)?);
        let (m, k) = lx.shape().dims2()?;
        let (n, kw) = lw.shape().dims2()?;
        if k != kw || b.len() != n {
            candle_core::bail!("linear: x {:?}, weight {:?}, bias {:?}", lx.dims(), lw.dims(), lb.dims());
        }
        let mut y = Vec::with_capacity(m * n);
        for _ in 0..m {
            y.extend_from_slice(b);
        }
        let parallelism = if m * n * k >= PARALLEL_MIN_MACS {
            gemm::Parallelism::Rayon(rayon::current_num_threads())
        } else {
            gemm::Parallelism::None
        };
        // SAFETY: y is [m, n] row-major, x is [m, k] row-major, W^T is read through W [n, k]
        // row-major (row stride 1, column stride k); all slices have exactly these sizes.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                y.as_mut_ptr(),
                1,
                n as isize,
                true,
                x.as_ptr(),
                1,
                k as isize,
                w.as_ptr(),
                k as isize,
                1,
                1.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
        Ok((CpuStorage::F32(y), Shape::from((m, n))))
    }
}

/// `x W^T + b` for CPU f32 x: [m, k], W: [n, k], b: [n] -> [m, n]. Records no gradient.
pub fn linear_inference(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op3_no_bwd(&w.contiguous()?, &b.contiguous()?, &LinearInference)
}
