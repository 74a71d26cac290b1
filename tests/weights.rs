//! Saving and loading weights: names mirror the module tree, every shape is checked.

mod common;

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use common::*;
use transduce::model::config::NormPlacement;
use transduce::model::weights::{load_model, parameter_shapes, TrainableModel};

#[test]
fn saved_weights_load_back_to_the_same_model() {
    let dir = std::env::temp_dir().join(format!("transduce-weights-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = tiny_config_untied(NormPlacement::Post);
    let trained = model(&config, DType::F32);
    trained.save(&dir.join("model.safetensors")).unwrap();
    config.save(&dir.join("config.json")).unwrap();

    let config_back = transduce::ModelConfig::load(&dir.join("config.json")).unwrap();
    assert_eq!(config_back, config);
    let loaded = load_model(&config_back, &dir.join("model.safetensors"), DType::F32, &Device::Cpu).unwrap();
    let retrain = TrainableModel::load(&config, &dir.join("model.safetensors"), DType::F32, &Device::Cpu).unwrap();
    let src = ids(&[&[5, 6, 7, 2]]);
    let tgt = ids(&[&[1, 8, 9]]);
    let a = trained.model.decode(&tgt, &trained.model.encode(&src, &ones_mask(1, 4)).unwrap()).unwrap();
    let b = loaded.decode(&tgt, &loaded.encode(&src, &ones_mask(1, 4)).unwrap()).unwrap();
    let c = retrain.model.decode(&tgt, &retrain.model.encode(&src, &ones_mask(1, 4)).unwrap()).unwrap();
    // the loaded model decodes through transposed weights: same values, other summation order
    assert!(max_diff(&a, &b) < 1e-5, "{}", max_diff(&a, &b));
    assert_eq!(max_diff(&a, &c), 0.0);

    // a field of the wrong type: the error names the file, the field and the line
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    json["d_model"] = serde_json::json!("wide");
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&json).unwrap()).unwrap();
    let err = transduce::ModelConfig::load(&dir.join("config.json")).unwrap_err().to_string();
    assert!(err.contains("config.json: invalid JSON at `d_model`: invalid type: string \"wide\""), "{err}");
    assert!(err.contains(" line "), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn names_mirror_the_module_tree() {
    let names = parameter_shapes(&tiny_config(NormPlacement::Pre)).unwrap();
    for name in [
        "shared.weight",
        "lm_head.bias",
        "encoder.layers.0.self_attn.q_proj.weight",
        "encoder.layers.1.ffn.fc2.bias",
        "encoder.final_norm.weight",
        "decoder.layers.1.cross_attn.out_proj.weight",
        "decoder.layers.0.cross_attn_norm.bias",
    ] {
        assert!(names.contains_key(name), "{name} missing from {:?}", names.keys());
    }
    assert_eq!(names["shared.weight"].dims(), &[23, 16]);
}

#[test]
fn missing_mismatched_and_unexpected_tensors_are_named() {
    let dir = std::env::temp_dir().join(format!("transduce-bad-weights-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = tiny_config(NormPlacement::Pre);
    let m = model(&config, DType::F32);
    let mut tensors: HashMap<String, Tensor> =
        m.named_vars().into_iter().map(|(n, v)| (n, v.as_tensor().clone())).collect();
    tensors.remove("decoder.layers.1.ffn.fc1.weight");
    tensors
        .insert("encoder.layers.0.self_attn.k_proj.bias".into(), Tensor::zeros(7, DType::F32, &Device::Cpu).unwrap());
    tensors.insert("encoder.layers.9.extra".into(), Tensor::zeros(1, DType::F32, &Device::Cpu).unwrap());
    let path = dir.join("model.safetensors");
    candle_core::safetensors::save(&tensors, &path).unwrap();
    let err = load_model(&config, &path, DType::F32, &Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("missing tensor `decoder.layers.1.ffn.fc1.weight`"), "{err}");
    assert!(err.contains("`encoder.layers.0.self_attn.k_proj.bias` has shape [7]"), "{err}");
    assert!(err.contains("unexpected tensor `encoder.layers.9.extra`"), "{err}");
    assert!(err.contains("model.safetensors"), "{err}");

    let err = load_model(&config, &dir.join("nope.safetensors"), DType::F32, &Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("nope.safetensors"), "{err}");
    std::fs::write(&path, b"not safetensors").unwrap();
    let err = load_model(&config, &path, DType::F32, &Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("not a readable safetensors file"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
