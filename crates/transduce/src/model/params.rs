//! Parameter creation: a seeded initialiser behind candle's `VarBuilder`, so the same seed
//! gives the same model on every run (candle's own CPU RNG cannot be seeded).

use std::sync::Mutex;

use candle_core::{DType, Device, Shape, Tensor, Var};
use candle_nn::{var_builder::SimpleBackend, Init, VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Creates trainable variables in a [`VarMap`] on first request, drawing initial values from a
/// seeded generator in request (i.e. module construction) order.
pub struct SeededInit {
    varmap: VarMap,
    rng: Mutex<Xoshiro256PlusPlus>,
}

impl SeededInit {
    pub fn new(varmap: VarMap, seed: u64) -> Self {
        SeededInit { varmap, rng: Mutex::new(Xoshiro256PlusPlus::seed_from_u64(seed)) }
    }

    /// A `VarBuilder` that creates (or reuses) variables in `varmap`.
    pub fn var_builder(varmap: &VarMap, seed: u64, dtype: DType, device: &Device) -> VarBuilder<'static> {
        VarBuilder::from_backend(Box::new(SeededInit::new(varmap.clone(), seed)), dtype, device.clone())
    }

    fn sample(&self, shape: &Shape, init: Init) -> candle_core::Result<Vec<f64>> {
        let n = shape.elem_count();
        let mut rng = self.rng.lock().expect("rng lock");
        Ok(match init {
            Init::Const(c) => vec![c; n],
            Init::Uniform { lo, up } => (0..n).map(|_| rng.gen_range(lo..up)).collect(),
            Init::Randn { mean, stdev } => {
                let normal = Normal::new(mean, stdev).map_err(candle_core::Error::wrap)?;
                (0..n).map(|_| normal.sample(&mut *rng)).collect()
            }
            Init::Kaiming { .. } => candle_core::bail!("Kaiming init is not used by transduce"),
        })
    }
}

impl SimpleBackend for SeededInit {
    fn get(&self, s: Shape, name: &str, h: Init, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let mut data = self.varmap.data().lock().expect("varmap lock");
        if let Some(var) = data.get(name) {
            if var.shape() != &s {
                candle_core::bail!("parameter {name}: shape {:?} requested, {:?} exists", s, var.shape());
            }
            return Ok(var.as_tensor().clone());
        }
        let values = self.sample(&s, h)?;
        let tensor = Tensor::from_vec(values, s, dev)?.to_dtype(dtype)?;
        let var = Var::from_tensor(&tensor)?;
        let t = var.as_tensor().clone();
        data.insert(name.to_string(), var);
        Ok(t)
    }

    fn get_unchecked(&self, name: &str, _dtype: DType, _dev: &Device) -> candle_core::Result<Tensor> {
        candle_core::bail!("parameter {name}: requested without a shape")
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.varmap.data().lock().expect("varmap lock").contains_key(name)
    }
}

/// Glorot/Xavier uniform bound for a `[fan_out, fan_in]` weight.
pub fn xavier_uniform(fan_in: usize, fan_out: usize) -> Init {
    let a = (6.0 / (fan_in + fan_out) as f64).sqrt();
    Init::Uniform { lo: -a, up: a }
}
