//! Helpers shared by the integration tests.
#![allow(dead_code)]

use candle_core::{DType, Device, Tensor};
use transduce::model::config::{Dropout, ModelConfig, NormPlacement, Positions, Preset, Tying, Vocab};
use transduce::model::TrainableModel;

/// A tiny model with random weights: vocab 23, d 16, 2 heads, 2+2 layers, no dropout.
pub fn tiny_config(placement: NormPlacement) -> ModelConfig {
    let mut c = ModelConfig::preset(Preset::Tiny, 23);
    c.d_model = 16;
    c.heads = 2;
    c.ffn_dim = 24;
    c.dropout = Dropout::uniform(0.0);
    c.norm_placement = placement;
    c.max_positions = 40;
    c
}

/// The same with separate vocabularies, learned positions and no tying: the other branches.
pub fn tiny_config_untied(placement: NormPlacement) -> ModelConfig {
    let mut c = tiny_config(placement);
    c.vocab = Vocab::Separate { source: 23, target: 19 };
    c.tying = Tying::None;
    c.positions = Positions::Learned;
    c
}

pub fn model(config: &ModelConfig, dtype: DType) -> TrainableModel {
    TrainableModel::init(config, 7, dtype, &Device::Cpu).unwrap()
}

pub fn ids(rows: &[&[u32]]) -> Tensor {
    let t = rows[0].len();
    let flat: Vec<u32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Tensor::from_vec(flat, (rows.len(), t), &Device::Cpu).unwrap()
}

pub fn ones_mask(b: usize, s: usize) -> Tensor {
    Tensor::ones((b, s), DType::U8, &Device::Cpu).unwrap()
}

/// Largest absolute difference between two tensors of the same shape.
pub fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims());
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_scalar()
        .unwrap()
}

/// A scratch directory removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("transduce-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    pub fn write_gz(&self, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        use std::io::Write;
        let p = self.0.join(name);
        let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&p).unwrap(), flate2::Compression::fast());
        gz.write_all(bytes).unwrap();
        gz.finish().unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The Multi30k directory (`TRANSDUCE_DATA`, else `../shared/data/multi30k`), or `None` with a
/// message saying the test is skipped.
pub fn multi30k() -> Option<std::path::PathBuf> {
    let dir = std::env::var("TRANSDUCE_DATA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/multi30k"));
    if dir.join("val.en.gz").exists() {
        Some(dir)
    } else {
        eprintln!("skipped: Multi30k not found at {} (set TRANSDUCE_DATA)", dir.display());
        None
    }
}
