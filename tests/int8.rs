//! Int8 inference: `transduce quantize` writes int8 matrices with per-row scales, they load as
//! an int8 model, and its outputs stay close to the f32 model's.

mod common;

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use transduce::convert::int8::quantize;
use transduce::model::weights::{read_weights_file, Precision};
use transduce::search::{BeamOptions, DecodeOptions, Strategy};
use transduce::translate::{LoadOptions, Quantization, Translator};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf_marian/tiny-zero-pad")
}

const SOURCES: [&str; 4] = [
    "Un homme regarde le chat noir.",
    "Deux enfants jouent dans le parc avec un chien.",
    "Bonjour.",
    "Le chien court.",
];

/// Teacher-forced logits of a fixed batch.
fn logits(t: &Translator) -> Vec<f32> {
    let dev = Device::Cpu;
    let (eos, pad) = (t.model.config.special.eos, t.model.config.special.pad);
    let src = Tensor::new(&[[5u32, 9, 14, 22, eos], [31, 7, 3, eos, pad]], &dev).unwrap();
    let mask = Tensor::new(&[[1f32, 1., 1., 1., 1.], [1., 1., 1., 1., 0.]], &dev).unwrap();
    let start = t.model.config.special.decoder_start;
    let dec = Tensor::new(&[[start, 12, 40, 8], [start, 6, 6, 19]], &dev).unwrap();
    let memory = t.model.encode(&src, &mask).unwrap();
    t.model.decode(&dec, &memory).unwrap().flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn quantized_directory_is_smaller_loads_as_int8_and_stays_close() {
    let out = common::TempDir::new("int8-quantize");
    let summary = quantize(&fixture(), &out.0).unwrap();
    assert!(summary.quantized > 0 && summary.kept > 0);
    assert!((summary.bytes_after as f64) < 0.55 * summary.bytes_before as f64, "{summary:?}");
    let (_, precision) = read_weights_file(&out.0.join("model.safetensors"), &Device::Cpu).unwrap();
    assert_eq!(precision, Precision::Int8);

    let float = Translator::load(&fixture()).unwrap();
    let stored = Translator::load(&out.0).unwrap();
    let at_load =
        Translator::load_with(&fixture(), LoadOptions { quantization: Quantization::Int8, ..LoadOptions::default() })
            .unwrap();
    assert!(float.model.lm_head.int8().is_none());
    assert!(stored.model.lm_head.int8().is_some() && at_load.model.lm_head.int8().is_some());

    // quantizing at load and storing in int8 are the same arithmetic
    let (a, b, f) = (logits(&stored), logits(&at_load), logits(&float));
    assert_eq!(a, b);
    let range = f.iter().fold(0f32, |m, v| m.max(v.abs()));
    let worst = a.iter().zip(&f).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(worst < 0.05 * range, "int8 logits off by {worst} (f32 logits up to {range})");

    for strategy in [Strategy::Greedy, Strategy::Beam(BeamOptions::ctranslate2(4))] {
        let opts = DecodeOptions { strategy, max_len: 20, ..DecodeOptions::default() };
        let x = stored.translate(&SOURCES, &opts).unwrap();
        let y = at_load.translate(&SOURCES, &opts).unwrap();
        assert_eq!(x, y, "{strategy:?}");
    }
}

#[test]
fn quantized_model_translates_the_shared_marian_model_as_f32_does() {
    let Some(dir) = common::shared("models/marian-fren-s") else { return };
    let float = Translator::load(&dir).unwrap();
    let int8 = Translator::load_with(&dir, LoadOptions { quantization: Quantization::Int8, ..LoadOptions::default() })
        .unwrap();
    let lines = [
        "Un homme en chemise bleue est debout sur une échelle.",
        "Deux chiens courent dans la neige.",
        "Une femme joue de la guitare dans la rue.",
        "Des enfants jouent au football sur la plage.",
        "Un homme âgé lit le journal sur un banc.",
        "Une petite fille en robe rose saute dans une flaque.",
    ];
    let opts = DecodeOptions { strategy: Strategy::Beam(BeamOptions::ctranslate2(4)), ..DecodeOptions::default() };
    let (x, y) = (float.translate(&lines, &opts).unwrap(), int8.translate(&lines, &opts).unwrap());
    let same = x.iter().zip(&y).filter(|(a, b)| a.text() == b.text()).count();
    for (a, b) in x.iter().zip(&y) {
        eprintln!("f32:  {}\nint8: {}", a.text(), b.text());
    }
    assert!(same >= lines.len() - 2, "only {same} of {} translations unchanged by int8", lines.len());
}

#[test]
fn int8_tensor_without_scales_is_an_error_naming_it() {
    let out = common::TempDir::new("int8-broken");
    quantize(&fixture(), &out.0).unwrap();
    let path = out.0.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let name = "decoder.layers.0.ffn.fc1.weight";
    let kept: Vec<(String, safetensors::tensor::TensorView)> =
        file.tensors().into_iter().filter(|(n, _)| n != &format!("{name}_scale")).collect();
    safetensors::serialize_to_file(kept, None, &path).unwrap();
    let e = Translator::load(&out.0).err().unwrap().to_string();
    assert!(e.contains(&format!("int8 tensor `{name}` has no scales `{name}_scale`")), "{e}");
}
