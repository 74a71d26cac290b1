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

/// Tokenizer ids (`X </s>`, no language token) and `decode(skip_special_tokens=True)` of the
/// reference `cases` (`text`, `ids`, `decoded`).
pub fn check_plain_tokenizer(t: &transduce::translate::Translator, cases: &Value) {
    let eos = t.model.config.special.eos;
    for case in cases.as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let mut got = t.tokenizers.source.encode(text).unwrap();
        got.push(eos);
        assert_eq!(got, ids(&case["ids"]), "ids of {text:?}");
        let decoded = t.tokenizers.target.decode(&ids(&case["ids"])).unwrap();
        assert_eq!(decoded, case["decoded"].as_str().unwrap(), "decoding of {text:?}");
    }
}

/// int8 weights of the fixture `dir` (reference `reference`): teacher-forced logits within 5 %
/// of transformers' f32 range, greedy outputs of `inputs` (at most `max_len` tokens, the
/// reference's cap) that mostly equal the reference texts (`want` of each greedy case);
/// `transduce quantize` of the directory gives the same translations as quantizing at load.
pub fn check_int8(
    dir: &std::path::Path,
    reference: &Value,
    inputs: &[transduce::translate::Input],
    max_len: usize,
    want: impl Fn(&Value) -> String,
) {
    use transduce::search::{DecodeOptions, Strategy};
    use transduce::translate::{LoadOptions, Quantization, Translator};
    let name = dir.file_name().unwrap().to_string_lossy();
    let opts = LoadOptions { quantization: Quantization::Int8, ..LoadOptions::default() };
    let t = Translator::load_with(dir, opts).unwrap();
    let (worst, scale) = logit_difference(&t.model, &reference["batch"]);
    let cases = reference["greedy"].as_array().unwrap();
    let opts = DecodeOptions { strategy: Strategy::Greedy, max_len, max_len_ratio: None, ..Default::default() };
    let out = t.translate_inputs(inputs, &opts).unwrap();
    let same = cases.iter().zip(&out).filter(|(c, o)| o.text() == want(c)).count();
    eprintln!(
        "{name} int8: largest logit difference {worst:.3} of {scale:.1}; {same} of {} greedy outputs equal to f32 \
         transformers",
        cases.len()
    );
    assert!(worst < 0.05 * scale, "{name}: int8 logits off by {worst}");
    assert!(same * 2 >= cases.len(), "{name}: only {same} of {} int8 outputs equal", cases.len());
    // `transduce quantize` of the Hugging Face directory: the same model, stored in int8
    let tmp = super::TempDir::new(&format!("quantize-{name}"));
    let out = tmp.0.join("int8");
    let summary = transduce::convert::int8::quantize(dir, &out).unwrap();
    assert!(summary.quantized > 0);
    let stored = Translator::load(&out).unwrap();
    assert_eq!(stored.translate_inputs(inputs, &opts).unwrap(), t.translate_inputs(inputs, &opts).unwrap());
}
