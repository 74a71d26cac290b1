//! Reference logits written by the Hugging Face fixture scripts, compared with a model's.

use candle_core::Tensor;
use serde_json::Value;
use transduce::model::Seq2Seq;

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

/// The largest difference between `model`'s teacher-forced logits of the reference `batch`
/// (`input_ids`, `attention_mask`, `decoder_input_ids`, `logits_shape`, every
/// `logits_stride`-th value in `logits`) and the reference, and the largest reference |logit|.
pub fn logit_difference(model: &Seq2Seq, batch: &Value) -> (f32, f32) {
    let dev = candle_core::Device::Cpu;
    let rows = |v: &Value| -> Vec<Vec<u32>> { v.as_array().unwrap().iter().map(ids).collect() };
    let tensor = |r: Vec<Vec<u32>>| Tensor::new(r, &dev).unwrap();
    let src = tensor(rows(&batch["input_ids"]));
    let mask = tensor(rows(&batch["attention_mask"])).to_dtype(candle_core::DType::F32).unwrap();
    let dec = tensor(rows(&batch["decoder_input_ids"]));
    let memory = model.encode(&src, &mask).unwrap();
    let logits = model.decode(&dec, &memory).unwrap();
    let shape: Vec<usize> =
        batch["logits_shape"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect();
    assert_eq!(logits.dims(), shape.as_slice());
    let stride = batch["logits_stride"].as_u64().unwrap() as usize;
    let got: Vec<f32> = logits.flatten_all().unwrap().to_vec1().unwrap();
    let want: Vec<f32> = batch["logits"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
    assert_eq!(want.len(), got.len().div_ceil(stride), "reference values for the logits' shape and stride");
    let worst = want.iter().enumerate().map(|(i, w)| (got[i * stride] - w).abs()).fold(0f32, f32::max);
    let scale = want.iter().fold(0f32, |m, w| m.max(w.abs()));
    eprintln!("logits: {} values compared, largest difference {worst:.2e} (largest logit {scale:.1})", want.len());
    (worst, scale)
}
