//! Safetensors weights whose names mirror the module tree, loaded with every name and shape
//! checked against the config before a model is built.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::{var_builder::SimpleBackend, Init, VarBuilder, VarMap};

use super::config::ModelConfig;
use super::params::SeededInit;
use super::seq2seq::Seq2Seq;
use crate::error::{Error, Result};

/// Records the name and shape of every parameter a model asks for.
#[derive(Default)]
struct ShapeRecorder(Mutex<BTreeMap<String, Shape>>);

impl SimpleBackend for ShapeRecorder {
    fn get(&self, s: Shape, name: &str, _: Init, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.0.lock().expect("recorder lock").insert(name.to_string(), s.clone());
        Tensor::zeros(s, dtype, dev)
    }
    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> candle_core::Result<Tensor> {
        candle_core::bail!("parameter {name}: requested without a shape")
    }
    fn contains_tensor(&self, _: &str) -> bool {
        true
    }
}

/// Name and shape of every parameter of a model with this config, sorted by name.
pub fn parameter_shapes(config: &ModelConfig) -> Result<BTreeMap<String, Shape>> {
    let recorder = std::sync::Arc::new(ShapeRecorder::default());
    struct Shared(std::sync::Arc<ShapeRecorder>);
    impl SimpleBackend for Shared {
        fn get(&self, s: Shape, n: &str, h: Init, dt: DType, dev: &Device) -> candle_core::Result<Tensor> {
            self.0.get(s, n, h, dt, dev)
        }
        fn get_unchecked(&self, n: &str, dt: DType, dev: &Device) -> candle_core::Result<Tensor> {
            self.0.get_unchecked(n, dt, dev)
        }
        fn contains_tensor(&self, n: &str) -> bool {
            self.0.contains_tensor(n)
        }
    }
    let vb = VarBuilder::from_backend(Box::new(Shared(recorder.clone())), DType::F32, Device::Cpu);
    Seq2Seq::new(config, vb)?;
    let shapes = recorder.0.lock().expect("recorder lock").clone();
    Ok(shapes)
}

/// Checks `tensors` against the parameters of `config`: every expected name present with the
/// expected shape, nothing unexpected. The error lists every problem, by tensor name.
pub fn check_tensors(config: &ModelConfig, tensors: &HashMap<String, Tensor>, path: &Path) -> Result<()> {
    let expected = parameter_shapes(config)?;
    let mut problems = Vec::new();
    for (name, shape) in &expected {
        match tensors.get(name) {
            None => problems.push(format!("missing tensor `{name}` (expected shape {:?})", shape.dims())),
            Some(t) if t.shape() != shape => {
                problems.push(format!("tensor `{name}` has shape {:?}, the config needs {:?}", t.dims(), shape.dims()))
            }
            Some(_) => {}
        }
    }
    let mut unexpected: Vec<_> = tensors.keys().filter(|n| !expected.contains_key(*n)).collect();
    unexpected.sort();
    problems.extend(unexpected.into_iter().map(|n| format!("unexpected tensor `{n}`")));
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Weights { path: path.to_path_buf(), why: problems.join("; ") })
    }
}

/// Reads a safetensors file into a name -> tensor map.
pub fn read_safetensors(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    if !path.exists() {
        return Err(Error::io(path, std::io::Error::new(std::io::ErrorKind::NotFound, "no such file")));
    }
    candle_core::safetensors::load(path, device)
        .map_err(|e| Error::Weights { path: path.to_path_buf(), why: format!("not a readable safetensors file: {e}") })
}

/// Loads a model for inference (weights laid out for decoding) from a checked safetensors file.
pub fn load_model(config: &ModelConfig, path: &Path, dtype: DType, device: &Device) -> Result<Seq2Seq> {
    let tensors = read_safetensors(path, device)?;
    check_tensors(config, &tensors, path)?;
    model_from_tensors(config, tensors, dtype, device)
}

/// An inference model over checked tensors (named as [`parameter_shapes`] lists them).
pub fn model_from_tensors(
    config: &ModelConfig,
    tensors: HashMap<String, Tensor>,
    dtype: DType,
    device: &Device,
) -> Result<Seq2Seq> {
    let tensors = tensors.into_iter().map(|(n, t)| Ok((n, t.to_dtype(dtype)?))).collect::<candle_core::Result<_>>()?;
    let mut model = Seq2Seq::new(config, VarBuilder::from_tensors(tensors, dtype, device))?;
    model.prepare_inference()?;
    Ok(model)
}

/// A trainable model: its parameters live in `varmap`.
pub struct TrainableModel {
    pub model: Seq2Seq,
    pub varmap: VarMap,
}

impl TrainableModel {
    /// Fresh parameters drawn from `seed`.
    pub fn init(config: &ModelConfig, seed: u64, dtype: DType, device: &Device) -> Result<Self> {
        let varmap = VarMap::new();
        let model = Seq2Seq::new(config, SeededInit::var_builder(&varmap, seed, dtype, device))?;
        Ok(TrainableModel { model, varmap })
    }

    /// Parameters read from a checked safetensors file.
    pub fn load(config: &ModelConfig, path: &Path, dtype: DType, device: &Device) -> Result<Self> {
        let tensors = read_safetensors(path, device)?;
        check_tensors(config, &tensors, path)?;
        let trainable = Self::init(config, 0, dtype, device)?;
        for (name, var) in trainable.varmap.data().lock().expect("varmap lock").iter() {
            var.set(&tensors[name].to_dtype(dtype)?)?;
        }
        Ok(trainable)
    }

    /// Writes all parameters (one entry per tied tensor) to `path`.
    pub fn save(&self, path: &Path) -> Result<()> {
        self.varmap.save(path).map_err(|e| Error::Weights { path: path.to_path_buf(), why: e.to_string() })
    }

    /// Parameters sorted by name, for deterministic optimizer and clipping order.
    pub fn named_vars(&self) -> Vec<(String, candle_core::Var)> {
        let data = self.varmap.data().lock().expect("varmap lock");
        let mut vars: Vec<_> = data.iter().map(|(n, v)| (n.clone(), v.clone())).collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars
    }

    pub fn parameter_count(&self) -> usize {
        self.named_vars().iter().map(|(_, v)| v.elem_count()).sum()
    }
}
