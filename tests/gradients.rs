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

/// The training loss reads the logits of non-padding positions only
/// (`Seq2Seq::forward_targets`): they are the full forward's rows there, and the loss and every
/// gradient are those of the full forward with padding ignored, with the fused f32 kernels and
/// the f64 reference.
#[test]
fn skipping_padding_rows_changes_neither_logits_nor_loss_nor_gradients() {
    let config = tiny_config(NormPlacement::Pre);
    let pad = config.special.pad;
    // targets of 2, 5 and 3 tokens (+ eos): two rows padded
    let pairs: Vec<(&[u32], &[u32])> =
        vec![(&[5, 6, 7, 8], &[9, 10]), (&[12, 13], &[14, 15, 16, 17, 18]), (&[19, 20, 21], &[19, 20, 11])];
    for (dtype, kernels, tolerance) in [(DType::F32, Kernels::Fused, 1e-5), (DType::F64, Kernels::Reference, 1e-12)] {
        let m = model(&config, dtype);
        let batch = Batch::new(&pairs, vec![0, 1, 2], config.special, &Device::Cpu).unwrap();
        let ctx = Ctx::eval().with_kernels(kernels);
        let full = m.model.forward(&batch.src, &batch.src_mask, &batch.tgt_in, &ctx).unwrap();
        let (kept, targets) =
            m.model.forward_targets(&batch.src, &batch.src_mask, &batch.tgt_in, &batch.tgt_out, pad, &ctx).unwrap();
        // the non-padding positions in row-major order: rows 0 and 2 lose 3 and 2 positions
        let out = batch.tgt_out.flatten_all().unwrap().to_vec1::<u32>().unwrap();
        let positions: Vec<usize> = (0..out.len()).filter(|&i| out[i] != pad).collect();
        assert_eq!(positions.len(), batch.ntokens);
        assert_eq!(targets.to_vec1::<u32>().unwrap(), positions.iter().map(|&i| out[i]).collect::<Vec<_>>());
        let v = full.dim(2).unwrap();
        let index = Tensor::new(positions.iter().map(|&i| i as u32).collect::<Vec<_>>(), &Device::Cpu).unwrap();
        let full_rows = full.reshape((out.len(), v)).unwrap().index_select(&index, 0).unwrap();
        let d = max_diff(&kept, &full_rows);
        assert!(d <= tolerance, "{dtype:?}: kept logits differ from the full forward's by {d}");

        let full_loss = label_smoothed_cross_entropy(&full, &batch.tgt_out, pad, 0.1, kernels).unwrap();
        let kept_loss = label_smoothed_cross_entropy(&kept, &targets, pad, 0.1, kernels).unwrap();
        assert_eq!(kept_loss.ntokens, full_loss.ntokens);
        let d = max_diff(&kept_loss.loss, &full_loss.loss);
        assert!(d <= tolerance, "{dtype:?}: loss differs by {d}");
        let (full_grads, kept_grads) = (full_loss.loss.backward().unwrap(), kept_loss.loss.backward().unwrap());
        for (name, var) in m.named_vars() {
            let (a, b) = (full_grads.get(var.as_tensor()).unwrap(), kept_grads.get(var.as_tensor()).unwrap());
            let (d, scale) = (max_diff(a, b), max_diff(a, &a.zeros_like().unwrap()));
            assert!(d <= tolerance * scale.max(1.0), "{dtype:?}: gradient of {name} differs by {d}");
        }
    }
}
