//! Small building blocks: linear projection, layer norm, feed-forward block.

use std::sync::Arc;

use candle_core::{DType, Result, Tensor};
use candle_nn::{Init, VarBuilder};

use super::config::{Activation, FeedForwardKind, LinearBias, ModelConfig, NormKind};
use super::context::Ctx;
use super::params::xavier_uniform;
use crate::kernels::cpu::with_f32;
use crate::kernels::int8::Int8Matrix;
use crate::kernels::largest::{largest_outputs, Largest};
use crate::kernels::panel::PanelMatrix;
use crate::kernels::{self, reference_bias_add, BiasActivation};

/// `y = x W^T + b`. weight: \[out, in\], bias: \[out\].
#[derive(Debug, Clone)]
pub struct Linear {
    /// [out, in]; `None` once an inference copy replaces it (see [`Linear::release_weight`]).
    weight: Option<Tensor>,
    /// (out, in)
    shape: (usize, usize),
    pub bias: Tensor,
    /// `weight` packed in column panels for inference on the CPU (see [`Linear::prepare_inference`]).
    panels: Option<Arc<PanelMatrix>>,
    /// `weight` quantized to int8 per output row (see [`Linear::quantize_int8`]).
    int8: Option<Arc<Int8Matrix>>,
    /// The weight's parameter name (`encoder.layers.0.self_attn.q_proj.weight`).
    pub name: String,
}

impl Linear {
    pub fn new(vb: VarBuilder, d_in: usize, d_out: usize, bias: LinearBias) -> Result<Self> {
        let weight = vb.get_with_hints((d_out, d_in), "weight", xavier_uniform(d_in, d_out))?;
        let bias = match bias {
            LinearBias::Learned => vb.get_with_hints(d_out, "bias", Init::Const(0.0))?,
            // a constant, not a parameter: never stored, never trained
            LinearBias::None => Tensor::zeros(d_out, vb.dtype(), vb.device())?,
        };
        Self::from_parts(weight, bias, format!("{}.weight", vb.prefix()))
    }

    /// A projection over existing tensors (e.g. an output layer tied to an embedding table),
    /// `name` its weight's parameter name.
    pub fn from_parts(weight: Tensor, bias: Tensor, name: String) -> Result<Self> {
        let shape = weight.dims2()?;
        Ok(Linear { weight: Some(weight), shape, bias, panels: None, int8: None, name })
    }

    /// Runs inference from `rows` (the weight packed or quantized while loading) and drops the
    /// weight: for a model that only translates.
    pub fn set_inference(&mut self, rows: TableRows) -> Result<()> {
        let (n, k) = rows.shape();
        if (n, k) != self.shape {
            candle_core::bail!("{}: inference copy [{n}, {k}] for a weight of {:?}", self.name, self.shape);
        }
        (self.panels, self.int8) = match rows {
            TableRows::Panels(p) => (Some(p), None),
            TableRows::Int8(q) => (None, Some(q)),
        };
        self.weight = None;
        Ok(())
    }

    /// The weight [out, in]: the tensor itself, or, once released, rebuilt from the inference
    /// copy (exactly the packed values; the int8 values for an int8 layer).
    pub fn weight(&self) -> Result<Tensor> {
        let (n, k) = self.shape;
        if let Some(w) = &self.weight {
            Ok(w.clone())
        } else if let Some(p) = &self.panels {
            Tensor::from_vec(p.unpack(), (n, k), self.bias.device())
        } else if let Some(q) = &self.int8 {
            Tensor::from_vec(q.dequantize(), (n, k), self.bias.device())
        } else {
            candle_core::bail!("linear: the weight was released without an inference copy")
        }
    }

    /// Makes inference run in int8 (per-row scales, activations quantized per row on the fly);
    /// drops the packed f32 copy. Training ignores it.
    pub fn quantize_int8(&mut self) -> Result<()> {
        let (n, k) = self.shape;
        let w = with_f32(&self.weight()?.to_dtype(candle_core::DType::F32)?, |w| Int8Matrix::quantize(w, n, k))?;
        self.int8 = Some(Arc::new(w));
        self.panels = None;
        Ok(())
    }

    /// Drops the weight tensor where an inference copy (panels or int8) holds it, for a model
    /// that only translates: the memory of one copy of every matrix. [`Linear::weight`] still
    /// gives it back; training such a layer is an error.
    pub fn release_weight(&mut self) {
        if self.panels.is_some() || self.int8.is_some() {
            self.weight = None;
        }
    }

    /// The int8 weight, when quantized.
    pub fn int8(&self) -> Option<&Int8Matrix> {
        self.int8.as_deref()
    }

    /// The inference copy of the weight (int8 or panels), to read rows of a tied embedding
    /// table from.
    pub fn inference_rows(&self) -> Option<TableRows> {
        match (&self.int8, &self.panels) {
            (Some(q), _) => Some(TableRows::Int8(q.clone())),
            (None, Some(p)) => Some(TableRows::Panels(p.clone())),
            (None, None) => None,
        }
    }

    /// Packs a copy of an f32 CPU weight in column panels, which inference reads in address
    /// order (other devices and dtypes, and int8 layers, are left as they are). A snapshot: call
    /// it on a model that will not be trained further.
    pub fn prepare_inference(&mut self) -> Result<()> {
        self.prepare_inference_as(Packing::Panels)
    }

    /// [`Linear::prepare_inference`] in panels of whole f32 values or of split halves
    /// ([`Packing::Int8`] packs as panels: [`Linear::quantize_int8`] quantizes).
    pub fn prepare_inference_as(&mut self, packing: Packing) -> Result<()> {
        let Some(weight) = self.weight.as_ref().filter(|w| self.int8.is_none() && kernels::cpu::applies(w)) else {
            return Ok(());
        };
        let (n, k) = self.shape;
        let pack = match packing {
            Packing::Halves => PanelMatrix::pack_halves,
            Packing::Panels | Packing::Int8 => PanelMatrix::pack,
        };
        self.panels = Some(Arc::new(with_f32(weight, |w| pack(w, n, k))?));
        Ok(())
    }

    /// The projection onto outputs `ids` alone (rows of the weight and bias, in that order),
    /// in the same form as this one (panels, int8 or the weight tensor): a vocabulary
    /// shortlist's output layer, whose outputs are the same values as this layer's at `ids`.
    pub fn select_rows(&self, ids: &[u32]) -> Result<Self> {
        let index = Tensor::new(ids, self.bias.device())?;
        let bias = self.bias.index_select(&index, 0)?;
        let weight = match &self.weight {
            Some(w) => Some(w.index_select(&index, 0)?),
            None => None,
        };
        Ok(Linear {
            weight,
            shape: (ids.len(), self.shape.1),
            bias,
            panels: self.panels.as_ref().map(|p| Arc::new(p.select_rows(ids))),
            int8: self.int8.as_ref().map(|q| Arc::new(q.select_rows(ids))),
            name: format!("{} (shortlist)", self.name),
        })
    }

    /// x: [.., in] -> [.., out]
    pub fn forward(&self, x: &Tensor, ctx: &Ctx) -> Result<Tensor> {
        self.forward_act(x, BiasActivation::Identity, ctx)
    }

    /// `x W^T + b` for x [m, in] as a row-major [m, out] vector: straight from the inference
    /// kernel where one applies (no copy out of a tensor), else from [`Linear::forward`].
    pub fn forward_rows(&self, x: &Tensor, ctx: &Ctx) -> Result<Vec<f32>> {
        self.forward_rows_into(x, ctx, Vec::new())
    }

    /// [`Linear::forward_rows`] into `out`'s memory where the inference kernels run (see
    /// [`PanelMatrix::matmul_into`]).
    pub fn forward_rows_into(&self, x: &Tensor, ctx: &Ctx, out: Vec<f32>) -> Result<Vec<f32>> {
        x.dims2()?;
        match self.inference_product(x, BiasActivation::Identity, ctx, out) {
            Some(y) => y,
            None => self.forward(x, ctx)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1(),
        }
    }

    /// Per row of x [m, in], the largest output's index among those not in `banned[row]`,
    /// where the inference copy is packed in halves and the fused kernels run
    /// ([`crate::kernels::largest`]); `None` elsewhere.
    pub fn largest_outputs(&self, x: &Tensor, banned: &[&[u32]], ctx: &Ctx) -> Result<Option<Vec<Largest>>> {
        if ctx.is_training() || !kernels::cpu::applies(x) || !ctx.kernels.fused_for(x) || self.int8.is_some() {
            return Ok(None);
        }
        let Some(p) = self.panels.as_deref().filter(|p| p.high_bounds().is_some()) else {
            return Ok(None);
        };
        let m = x.dim(0)?;
        with_f32(x, |x| with_f32(&self.bias, |b| largest_outputs(p, x, m, b, banned)))?
    }

    /// `activation(x W^T + b)`, x: [.., in] -> [.., out]
    pub fn forward_act(&self, x: &Tensor, activation: BiasActivation, ctx: &Ctx) -> Result<Tensor> {
        let dims = x.dims();
        let d_in = dims[dims.len() - 1];
        let x2 = x.reshape((x.elem_count() / d_in.max(1), d_in))?;
        let y = if let Some(y) = self.inference_product(&x2, activation, ctx, Vec::new()) {
            Tensor::from_vec(y?, (x2.dim(0)?, self.bias.dim(0)?), x.device())?
        } else if !ctx.kernels.fused_for(x) {
            reference_bias_add(&x2.matmul(&self.weight()?.t()?)?, &self.bias, activation)?
        } else {
            let Some(weight) = &self.weight else {
                candle_core::bail!("linear: this layer's weight was released for inference; it cannot train")
            };
            kernels::linear::linear(&x2, weight, &self.bias, activation)?
        };
        let mut out_dims = dims.to_vec();
        *out_dims.last_mut().expect("non-scalar input") = self.bias.dim(0)?;
        y.reshape(out_dims)
    }

    /// `activation(x W^T + b)` for x [m, in] as a row-major [m, out] vector from an inference
    /// copy of the weight, when one applies: int8 (whatever the kernels, as it was quantized
    /// for them), else the packed panels under the fused kernels; never while training.
    /// `out`: memory to reuse for the result.
    fn inference_product(
        &self,
        x: &Tensor,
        activation: BiasActivation,
        ctx: &Ctx,
        out: Vec<f32>,
    ) -> Option<Result<Vec<f32>>> {
        if ctx.is_training() || !kernels::cpu::applies(x) {
            return None;
        }
        let m = match x.dim(0) {
            Ok(m) => m,
            Err(e) => return Some(Err(e)),
        };
        if let Some(q) = self.int8.as_deref() {
            let path = crate::kernels::int8::Path::detect();
            let y = with_f32(x, |x| with_f32(&self.bias, |b| q.matmul_into(x, m, b, path, out))).and_then(|y| y);
            return Some(y.map(|mut y| {
                activation.apply(&mut y);
                y
            }));
        }
        let p = self.panels.as_deref().filter(|_| ctx.kernels.fused_for(x))?;
        let path = crate::kernels::panel::Path::detect();
        Some(with_f32(x, |x| with_f32(&self.bias, |b| p.matmul_into(x, m, b, activation, path, out))).and_then(|y| y))
    }
}

/// How a matrix is packed for inference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    /// Column panels of f32 ([`PanelMatrix::pack`]).
    Panels,
    /// Column panels of each f32's high and low halves ([`PanelMatrix::pack_halves`]): the
    /// same products, and greedy search finds the largest output from the high halves alone
    /// (an output projection's).
    Halves,
    /// Int8 per output row ([`Int8Matrix::quantize`]).
    Int8,
}

/// Rows of a matrix held in an inference layout.
#[derive(Debug, Clone)]
pub enum TableRows {
    Panels(Arc<PanelMatrix>),
    Int8(Arc<Int8Matrix>),
}

impl TableRows {
    /// `w` [n, k] packed (or quantized) for inference.
    pub fn pack(w: &[f32], n: usize, k: usize, packing: Packing) -> Self {
        match packing {
            Packing::Int8 => TableRows::Int8(Arc::new(Int8Matrix::quantize(w, n, k))),
            Packing::Panels => TableRows::Panels(Arc::new(PanelMatrix::pack(w, n, k))),
            Packing::Halves => TableRows::Panels(Arc::new(PanelMatrix::pack_halves(w, n, k))),
        }
    }

    /// Whether these rows are what packing `w` [n, k] gives (a stored copy of a tied table
    /// checked against the table).
    pub fn holds(&self, w: &[f32]) -> bool {
        match self {
            TableRows::Panels(p) => p.unpack() == w,
            TableRows::Int8(q) => {
                let again = Int8Matrix::quantize(w, q.rows(), q.cols());
                again.unpack() == q.unpack()
            }
        }
    }

    /// (rows, cols) of the matrix.
    pub fn shape(&self) -> (usize, usize) {
        match self {
            TableRows::Panels(p) => (p.rows(), p.cols()),
            TableRows::Int8(q) => (q.rows(), q.cols()),
        }
    }

    /// Rows `ids` as f32, [ids.len(), cols] row-major.
    pub fn gather(&self, ids: &[u32]) -> Vec<f32> {
        match self {
            TableRows::Panels(p) => p.gather_rows(ids),
            TableRows::Int8(q) => q.gather_rows(ids),
        }
    }
}

/// Normalisation over the last dimension: layer norm (weight, bias: \[d\]) or RMS norm
/// (weight \[d\], no bias; [`NormKind`]).
#[derive(Debug, Clone)]
pub struct LayerNorm {
    pub weight: Tensor,
    /// `None` for RMS norm.
    pub bias: Option<Tensor>,
    pub eps: f64,
}

impl LayerNorm {
    /// The normalisation `c.norm` names, over `c.d_model` features.
    pub fn new(vb: VarBuilder, c: &ModelConfig) -> Result<Self> {
        let d = c.d_model;
        let weight = vb.get_with_hints(d, "weight", Init::Const(1.0))?;
        let bias = match c.norm {
            NormKind::LayerNorm => Some(vb.get_with_hints(d, "bias", Init::Const(0.0))?),
            NormKind::Rms => None,
        };
        Ok(LayerNorm { weight, bias, eps: c.layer_norm_eps })
    }

    /// x: [.., d] -> [.., d]
    pub fn forward(&self, x: &Tensor, ctx: &Ctx) -> Result<Tensor> {
        match &self.bias {
            Some(bias) => ctx.layer_norm(x, &self.weight, bias, self.eps),
            None => ctx.rms_norm(x, &self.weight, self.eps),
        }
    }
}

/// Position-wise feed-forward block: `fc2(dropout(act(fc1(x))))`, or gated
/// `fc2(dropout(act(fc1(x)) * up(x)))` ([`FeedForwardKind::Gated`]).
#[derive(Debug, Clone)]
pub struct FeedForward {
    pub fc1: Linear,
    /// The linear branch of a gated block (T5's `wi_1`; `fc1` is `wi_0`).
    pub up: Option<Linear>,
    pub fc2: Linear,
    activation: Activation,
    dropout: f32,
}

impl FeedForward {
    pub fn new(vb: VarBuilder, c: &ModelConfig) -> Result<Self> {
        let up = match c.feed_forward {
            FeedForwardKind::Plain => None,
            FeedForwardKind::Gated => Some(Linear::new(vb.pp("up"), c.d_model, c.ffn_dim, c.linear_bias)?),
        };
        Ok(FeedForward {
            fc1: Linear::new(vb.pp("fc1"), c.d_model, c.ffn_dim, c.linear_bias)?,
            up,
            fc2: Linear::new(vb.pp("fc2"), c.ffn_dim, c.d_model, c.linear_bias)?,
            activation: c.activation,
            dropout: c.dropout.ffn,
        })
    }

    /// Applies `f` to each projection.
    pub fn for_each_linear(&mut self, mut f: impl FnMut(&mut Linear) -> Result<()>) -> Result<()> {
        f(&mut self.fc1)?;
        if let Some(up) = &mut self.up {
            f(up)?;
        }
        f(&mut self.fc2)
    }

    /// x: [b, t, d] -> [b, t, d]
    pub fn forward(&self, x: &Tensor, ctx: &Ctx) -> Result<Tensor> {
        let h = match self.activation {
            Activation::Relu => self.fc1.forward_act(x, BiasActivation::Relu, ctx)?,
            Activation::Gelu => self.fc1.forward(x, ctx)?.gelu_erf()?,
            Activation::GeluTanh => self.fc1.forward(x, ctx)?.gelu()?,
            Activation::Silu | Activation::Swish if !ctx.is_training() => {
                self.fc1.forward_act(x, BiasActivation::Silu, ctx)?
            }
            Activation::Silu | Activation::Swish => self.fc1.forward(x, ctx)?.silu()?,
        };
        let h = match &self.up {
            Some(up) => (h * up.forward(x, ctx)?)?,
            None => h,
        };
        let h = ctx.dropout(&h, self.dropout)?;
        self.fc2.forward(&h, ctx)
    }
}
