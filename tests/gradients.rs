//! Autograd gradients of a tiny f64 model against central finite differences, for the loss
//! through every kind of parameter: embeddings, attention projections, layer norms, FFN,
//! learned positions, output bias.

mod common;

use candle_core::{DType, Device, Tensor};
use common::*;
use rand::{Rng, SeedableRng};
use transduce::data::Batch;
use transduce::kernels::Kernels;
use transduce::model::config::{ModelConfig, NormPlacement};
use transduce::model::{Ctx, TrainableModel};
use transduce::train::label_smoothed_cross_entropy;

fn loss(m: &TrainableModel, batch: &Batch) -> Tensor {
    let logits = m.model.forward(&batch.src, &batch.src_mask, &batch.tgt_in, &Ctx::eval()).unwrap();
    label_smoothed_cross_entropy(&logits, &batch.tgt_out, m.model.config.special.pad, 0.1, Kernels::Reference)
        .unwrap()
        .loss
}

fn check(config: &ModelConfig, names: &[&str]) {
    let m = model(config, DType::F64);
    let pairs: Vec<(&[u32], &[u32])> = vec![(&[5, 6, 7, 8], &[9, 10, 11]), (&[12, 13], &[14, 15, 16, 17])];
    let batch = Batch::new(&pairs, vec![0, 1], config.special, &Device::Cpu).unwrap();
    let grads = loss(&m, &batch).backward().unwrap();
    let vars = m.named_vars();
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    for name in names {
        let var = &vars.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no parameter {name}")).1;
        let grad = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("{name}: no gradient recorded"));
        let grad = grad.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let base = var.as_tensor().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let h = 1e-5;
        let mut worst: f64 = 0.0;
        for _ in 0..6 {
            let i = rng.gen_range(0..base.len());
            let at = |delta: f64| {
                let mut v = base.clone();
                v[i] += delta;
                var.set(&Tensor::from_vec(v, var.shape(), &Device::Cpu).unwrap()).unwrap();
                loss(&m, &batch).to_scalar::<f64>().unwrap()
            };
            let numeric = (at(h) - at(-h)) / (2.0 * h);
            var.set(&Tensor::from_vec(base.clone(), var.shape(), &Device::Cpu).unwrap()).unwrap();
            let err = (numeric - grad[i]).abs() / (1e-4 + numeric.abs().max(grad[i].abs()));
            assert!(err < 1e-5, "{name}[{i}]: autograd {} vs finite difference {numeric}", grad[i]);
            worst = worst.max(err);
        }
        assert!(grad.iter().any(|g| g.abs() > 1e-8), "{name}: gradient is identically zero");
        eprintln!("{name}: worst relative error {worst:.2e}");
    }
}

#[test]
fn gradients_match_finite_differences_pre_norm_tied() {
    check(
        &tiny_config(NormPlacement::Pre),
        &[
            "shared.weight",
            "lm_head.bias",
            "encoder.layers.0.self_attn.q_proj.weight",
            "encoder.layers.1.self_attn.k_proj.weight",
            "encoder.layers.0.self_attn_norm.weight",
            "encoder.final_norm.bias",
            "decoder.layers.0.self_attn.v_proj.weight",
            "decoder.layers.1.cross_attn.q_proj.weight",
            "decoder.layers.1.cross_attn.out_proj.bias",
            "decoder.layers.0.ffn.fc1.weight",
            "decoder.layers.1.ffn_norm.weight",
            "decoder.final_norm.weight",
        ],
    );
}

#[test]
fn gradients_match_finite_differences_post_norm_untied_learned_positions() {
    check(
        &tiny_config_untied(NormPlacement::Post),
        &[
            "encoder.embed_tokens.weight",
            "decoder.embed_tokens.weight",
            "lm_head.weight",
            "encoder.embed_positions.weight",
            "decoder.embed_positions.weight",
            "encoder.layers.0.ffn.fc2.bias",
            "decoder.layers.0.cross_attn.k_proj.weight",
            "decoder.layers.0.cross_attn_norm.bias",
        ],
    );
}

/// T5's choices: RMS norm, gated GELU (tanh), no biases, unscaled logits, heads of 6 with d 16,
/// the relative position bias of each stack (trained through the unfused attention), an
/// untied output fed `d^-0.5 h`.
#[test]
fn gradients_match_finite_differences_t5() {
    use transduce::model::config::{
        Activation, AttentionScale, EmbeddingScale, FeedForwardKind, LinearBias, NormKind, OutputBias, OutputScale,
        Positions, Tying,
    };
    let mut c = tiny_config(NormPlacement::Pre);
    c.norm = NormKind::Rms;
    c.feed_forward = FeedForwardKind::Gated;
    c.activation = Activation::GeluTanh;
    c.linear_bias = LinearBias::None;
    c.attention_scale = AttentionScale::None;
    c.head_dim = Some(6);
    c.positions = Positions::Relative { buckets: 4, max_distance: 6 };
    c.embedding_scale = EmbeddingScale::None;
    c.tying = Tying::Inputs;
    c.output_bias = OutputBias::None;
    c.output_scale = OutputScale::InverseSqrtDModel;
    check(
        &c,
        &[
            "shared.weight",
            "lm_head.weight",
            "encoder.relative_bias.weight",
            "decoder.relative_bias.weight",
            "encoder.layers.0.self_attn.q_proj.weight",
            "encoder.layers.1.self_attn_norm.weight",
            "decoder.layers.0.ffn.up.weight",
            "decoder.layers.1.ffn.fc1.weight",
            "decoder.layers.0.cross_attn.out_proj.weight",
            "decoder.final_norm.weight",
        ],
    );
}
