//! Attention heads apart and back together: `[b, t, heads * dh]` ↔ `[b, heads, t, dh]`, each
//! the other's backward. candle does these as a transpose and a strided copy on one thread; here
//! the copy runs in parallel, in blocks of whole output rows.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};

use super::cpu::{f32_slice, par_filled, rows_per_task, with_f32};

/// Which way the elements move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// `[b, t, h * dh]` -> `[b, h, t, dh]`
    Split,
    /// `[b, h, t, dh]` -> `[b, t, h * dh]`
    Merge,
}

#[derive(Debug, Clone, Copy)]
struct Heads {
    direction: Direction,
    /// (b, t, h, dh)
    dims: (usize, usize, usize, usize),
}

impl Heads {
    fn reverse(self) -> Self {
        let direction = match self.direction {
            Direction::Split => Direction::Merge,
            Direction::Merge => Direction::Split,
        };
        Heads { direction, ..self }
    }

    fn output_shape(self) -> Shape {
        let (b, t, h, dh) = self.dims;
        match self.direction {
            Direction::Split => Shape::from((b, h, t, dh)),
            Direction::Merge => Shape::from((b, t, h * dh)),
        }
    }

    /// The permuted copy of `x`, in parallel over blocks of `dh`-long output rows.
    fn permute(self, x: &[f32]) -> Vec<f32> {
        let (b, t, h, dh) = self.dims;
        let rows = b * t * h;
        let chunk = rows_per_task(rows, dh) * dh;
        par_filled(rows * dh, chunk, |c, out| {
            let first = c * chunk / dh;
            for (r, o) in out.chunks_exact_mut(dh).enumerate() {
                let row = first + r;
                // the input row that lands at output row `row`
                let from = match self.direction {
                    // output (bi, hi, ti) <- input (bi, ti, hi)
                    Direction::Split => {
                        let (bi, hi, ti) = (row / (h * t), row / t % h, row % t);
                        (bi * t + ti) * h + hi
                    }
                    // output (bi, ti, hi) <- input (bi, hi, ti)
                    Direction::Merge => {
                        let (bi, ti, hi) = (row / (t * h), row / h % t, row % h);
                        (bi * h + hi) * t + ti
                    }
                };
                o.copy_from_slice(&x[from * dh..(from + 1) * dh]);
            }
        })
    }
}

impl CustomOp1 for Heads {
    fn name(&self) -> &'static str {
        "transduce-heads"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(storage, layout)?;
        Ok((CpuStorage::F32(self.permute(x)), self.output_shape()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let dx = with_f32(grad, |g| self.reverse().permute(g))?;
        Ok(Some(Tensor::from_vec(dx, arg.shape(), arg.device())?))
    }
}

/// CPU f32 `x` [b, t, heads * dh] -> [b, heads, t, dh], contiguous.
pub fn split_heads(x: &Tensor, heads: usize) -> Result<Tensor> {
    let (b, t, d) = x.dims3()?;
    if heads == 0 || d % heads != 0 {
        candle_core::bail!("split_heads: width {d} is not a multiple of {heads} heads");
    }
    x.contiguous()?.apply_op1(Heads { direction: Direction::Split, dims: (b, t, heads, d / heads) })
}

/// CPU f32 `x` [b, heads, t, dh] -> [b, t, heads * dh], contiguous.
pub fn merge_heads(x: &Tensor) -> Result<Tensor> {
    let (b, h, t, dh) = x.dims4()?;
    x.contiguous()?.apply_op1(Heads { direction: Direction::Merge, dims: (b, t, h, dh) })
}
