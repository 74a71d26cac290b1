//! Fused linear layer `y = act(x W^T + b)` for CPU f32, with its backward.
//!
//! The forward calls the GEMM directly so the thread count can follow the problem size (a few
//! rows, where waking a second thread costs more than it saves, run on the calling thread).
//! Inference reads weights packed once instead (`super::panel`). The backward computes dx, dW and db in one node, instead of candle's
//! matmul + transpose + broadcast-add nodes, each with its own zero-filled gradient buffer.

use std::mem::MaybeUninit;

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu::{f32_slice, fast_exp, par_written, rows_per_task, with_f32};

/// Below this many multiply-adds the GEMM runs on the calling thread.
pub const PARALLEL_MIN_MACS: usize = 1 << 22;

/// What follows the bias add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BiasActivation {
    Identity,
    Relu,
    /// `x * sigmoid(x)` (swish), for inference: its backward needs the input, which the fused
    /// op does not keep.
    Silu,
}

impl BiasActivation {
    /// Applies the activation to `y` in place.
    pub fn apply(self, y: &mut [f32]) {
        match self {
            BiasActivation::Identity => {}
            BiasActivation::Relu => y.iter_mut().for_each(|v| *v = v.max(0.0)),
            // candle's silu with a vectorised exp (within a few ulp of libm's)
            BiasActivation::Silu => y.iter_mut().for_each(|v| *v /= 1.0 + fast_exp(-*v)),
        }
    }
}

struct Linear {
    activation: BiasActivation,
}

impl CustomOp3 for Linear {
    fn name(&self) -> &'static str {
        "transduce-linear"
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
        // the bias in every row, written in parallel; the GEMM adds x W^T to it
        let bias_rows = |_: usize, y: &mut [MaybeUninit<f32>]| {
            for row in y.chunks_exact_mut(n) {
                for (y, &b) in row.iter_mut().zip(b) {
                    y.write(b);
                }
            }
        };
        // SAFETY: the chunks are whole rows, each of which gets the bias
        let mut y = unsafe { par_written(m * n, rows_per_task(m, n) * n, bias_rows) };
        let parallelism = if m * n * k >= PARALLEL_MIN_MACS {
            gemm::Parallelism::Rayon(rayon::current_num_threads())
        } else {
            gemm::Parallelism::None
        };
        // SAFETY: y is [m, n] row-major, x is [m, k] row-major, W [n, k] row-major is read as
        // W^T [k, n] (column stride k, row stride 1); all slices have exactly these sizes.
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
        if self.activation != BiasActivation::Identity {
            let chunk = rows_per_task(m, n) * n;
            y.par_chunks_mut(chunk).for_each(|c| self.activation.apply(c));
        }
        Ok((CpuStorage::F32(y), Shape::from((m, n))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let n = w.dim(0)?;
        let g = match self.activation {
            BiasActivation::Silu => candle_core::bail!("linear: the fused silu is for inference only"),
            BiasActivation::Identity => grad.contiguous()?.detach(),
            BiasActivation::Relu => with_f32(res, |y| {
                with_f32(grad, |g| {
                    let chunk = rows_per_task(g.len() / n, n) * n;
                    let relu_gradient = |c: usize, d: &mut [MaybeUninit<f32>]| {
                        let (y, g) = (&y[c * chunk..][..d.len()], &g[c * chunk..][..d.len()]);
                        for ((d, &y), &g) in d.iter_mut().zip(y).zip(g) {
                            d.write(if y > 0.0 { g } else { 0.0 });
                        }
                    };
                    // SAFETY: every element of each chunk is written
                    let d = unsafe { par_written(g.len(), chunk, relu_gradient) };
                    Tensor::from_vec(d, res.shape(), res.device())
                })
            })???,
        };
        let (m, k) = x.dims2()?;
        // each output is written once, by the GEMM that computes it
        let ((dx, dw), db) = with_f32(&g, |g| {
            with_f32(x, |x| {
                with_f32(w, |w| {
                    // dx = g W and dW = g^T x: the same number of multiply-adds, computed side
                    // by side, each GEMM on half the threads (no synchronisation inside either)
                    let threads = rayon::current_num_threads();
                    let dx = |threads| gemm_row_major(g, Operand::Plain, w, m, k, n, threads);
                    let dw_db = |threads| {
                        let dw = gemm_row_major(g, Operand::Transposed, x, n, k, m, threads);
                        (dw, column_sum(g, n))
                    };
                    match m * n * k >= PARALLEL_MIN_MACS && threads > 1 {
                        true => {
                            let (dx, (dw, db)) = rayon::join(|| dx(threads / 2), || dw_db(threads - threads / 2));
                            ((dx, dw), db)
                        }
                        false => {
                            let (dw, db) = dw_db(1);
                            ((dx(1), dw), db)
                        }
                    }
                })
            })
        })???;
        let device = b.device();
        Ok((
            Some(Tensor::from_vec(dx, (m, k), device)?),
            Some(Tensor::from_vec(dw, (n, k), device)?),
            Some(Tensor::from_vec(db, n, device)?),
        ))
    }
}

/// How [`gemm_row_major`] reads its left operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operand {
    /// `a` is the row-major \[rows, inner\] matrix itself.
    Plain,
    /// `a` is row-major \[inner, rows\]; its transpose is used.
    Transposed,
}

/// `op(a) b` \[rows, cols\] with `b` \[inner, cols\], all row-major, on `threads` threads (1: the
/// calling thread), in a new vector that is never zero-filled: the GEMM, with `read_dst` off,
/// stores every element without reading it (zeros when `inner` is 0). Panics when a slice's
/// length does not match its shape.
#[allow(clippy::too_many_arguments)]
pub fn gemm_row_major(
    a: &[f32],
    op: Operand,
    b: &[f32],
    rows: usize,
    cols: usize,
    inner: usize,
    threads: usize,
) -> Vec<f32> {
    assert!(a.len() == rows * inner && b.len() == inner * cols);
    let (a_cs, a_rs) = match op {
        Operand::Plain => (1, inner as isize),
        Operand::Transposed => (rows as isize, 1),
    };
    let parallelism = match threads {
        0 | 1 => gemm::Parallelism::None,
        t => gemm::Parallelism::Rayon(t),
    };
    let mut out = Vec::with_capacity(rows * cols);
    // SAFETY: the capacity holds rows * cols elements, which the GEMM writes (and does not read)
    // before the length is set; the sizes of `a` and `b` were checked above and the strides stay
    // inside each slice.
    unsafe {
        gemm::gemm(
            rows,
            cols,
            inner,
            out.spare_capacity_mut().as_mut_ptr().cast::<f32>(),
            1,
            cols as isize,
            false,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            1,
            cols as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
        out.set_len(rows * cols);
    }
    out
}

/// `activation(x W^T + b)` for CPU f32 x: \[m, k\], W: \[n, k\], b: \[n\] -> \[m, n\].
pub fn linear(x: &Tensor, w: &Tensor, b: &Tensor, activation: BiasActivation) -> Result<Tensor> {
    x.contiguous()?.apply_op3(&w.contiguous()?, &b.contiguous()?, Linear { activation })
}

/// Sum of the rows of `g` (row length `n`), in parallel over row blocks.
pub fn column_sum(g: &[f32], n: usize) -> Vec<f32> {
    let chunk = rows_per_task(g.len() / n, n) * n;
    g.par_chunks(chunk)
        .map(|g| {
            let mut acc = vec![0f32; n];
            for row in g.chunks_exact(n) {
                acc.iter_mut().zip(row).for_each(|(a, v)| *a += v);
            }
            acc
        })
        .reduce(
            || vec![0f32; n],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
                a
            },
        )
}
