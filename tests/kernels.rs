//! Each fused kernel against its plain-candle reference composition: forward values and
//! gradients of every input.

use candle_core::{DType, Device, Tensor, Var};
use transduce::kernels::{self, cross_entropy::smoothed_cross_entropy_rows, Kernels};
use transduce::train::{label_smoothed_cross_entropy, paired_kl_divergence};

fn randn(shape: &[usize], seed: u64) -> Tensor {
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| Normal::new(0.0, 2.0).unwrap().sample(&mut rng)).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
}

/// Gradients of `sum(f(inputs) * weights)` for each input, with the given kernels.
fn grads(inputs: &[Tensor], weights: &Tensor, f: impl Fn(&[Tensor]) -> Tensor) -> (Tensor, Vec<Tensor>) {
    let vars: Vec<Var> = inputs.iter().map(|t| Var::from_tensor(t).unwrap()).collect();
    let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let out = f(&ts);
    let g = (out.clone() * weights).unwrap().sum_all().unwrap().backward().unwrap();
    (out, ts.iter().map(|t| g.get(t).expect("gradient recorded").clone()).collect())
}

#[test]
fn fused_softmax_matches_reference_forward_and_backward() {
    let x = randn(&[3, 4, 5, 37], 1);
    let w = randn(&[3, 4, 5, 37], 2);
    let (yf, gf) = grads(std::slice::from_ref(&x), &w, |t| Kernels::Fused.softmax_last_dim(&t[0]).unwrap());
    let (yr, gr) = grads(&[x], &w, |t| Kernels::Reference.softmax_last_dim(&t[0]).unwrap());
    assert!(max_diff(&yf, &yr) < 1e-6, "forward {}", max_diff(&yf, &yr));
    assert!(max_diff(&gf[0], &gr[0]) < 1e-5, "backward {}", max_diff(&gf[0], &gr[0]));
}

#[test]
fn fused_layer_norm_matches_reference_forward_and_backward() {
    let x = randn(&[2, 7, 48], 3);
    let w = randn(&[48], 4);
    let b = randn(&[48], 5);
    let up = randn(&[2, 7, 48], 6);
    let (yf, gf) = grads(&[x.clone(), w.clone(), b.clone()], &up, |t| {
        Kernels::Fused.layer_norm(&t[0], &t[1], &t[2], 1e-5).unwrap()
    });
    let (yr, gr) = grads(&[x, w, b], &up, |t| Kernels::Reference.layer_norm(&t[0], &t[1], &t[2], 1e-5).unwrap());
    assert!(max_diff(&yf, &yr) < 1e-5, "forward {}", max_diff(&yf, &yr));
    for (name, (f, r)) in ["x", "weight", "bias"].iter().zip(gf.iter().zip(&gr)) {
        assert!(max_diff(f, r) < 1e-4, "d{name}: {}", max_diff(f, r));
    }
}

#[test]
fn fused_cross_entropy_matches_reference_loss_and_gradient() {
    let logits = randn(&[2, 9, 53], 7);
    let targets: Vec<u32> = (0..18).map(|i| if i % 7 == 3 { 0 } else { (i * 5 + 1) % 53 }).collect();
    let targets = Tensor::from_vec(targets, (2, 9), &Device::Cpu).unwrap();
    for eps in [0.0, 0.1] {
        let one = Tensor::ones((), DType::F32, &Device::Cpu).unwrap();
        let run = |k: Kernels| {
            let (loss, g) = grads(std::slice::from_ref(&logits), &one, |t| {
                label_smoothed_cross_entropy(&t[0], &targets, 0, eps, k).unwrap().loss
            });
            let nll = label_smoothed_cross_entropy(&logits, &targets, 0, eps, k).unwrap();
            (loss, nll.nll, nll.ntokens, g)
        };
        let (lf, nf, tf, gf) = run(Kernels::Fused);
        let (lr, nr, tr, gr) = run(Kernels::Reference);
        assert_eq!(tf, tr);
        assert_eq!(tf, 15);
        assert!(max_diff(&lf, &lr) < 1e-5, "eps {eps}: loss {}", max_diff(&lf, &lr));
        assert!(max_diff(&nf, &nr) < 1e-5, "eps {eps}: nll {}", max_diff(&nf, &nr));
        assert!(max_diff(&gf[0], &gr[0]) < 1e-6, "eps {eps}: gradient {}", max_diff(&gf[0], &gr[0]));
    }
    // padding rows get zero loss and zero gradient
    let rows = smoothed_cross_entropy_rows(&logits.reshape((18, 53)).unwrap(), &targets.flatten_all().unwrap(), 0, 0.1)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    assert_eq!(rows[3], vec![0.0, 0.0]);
    assert!(rows[4][1] > 0.0);
}

#[test]
fn fused_paired_kl_matches_reference_divergence_and_gradient() {
    // [2b, t, V] logits: rows of the second copy near the first (as under two dropout masks)
    let first = randn(&[2, 9, 53], 21);
    let second = (&first + (randn(&[2, 9, 53], 22) * 0.3).unwrap()).unwrap();
    let logits = Tensor::cat(&[&first, &second], 0).unwrap();
    let targets: Vec<u32> = (0..18).map(|i| if i % 7 == 3 { 0 } else { (i * 5 + 1) % 53 }).collect();
    let targets = Tensor::from_vec(targets, (2, 9), &Device::Cpu).unwrap();
    let one = Tensor::ones((), DType::F32, &Device::Cpu).unwrap();
    let run = |k: Kernels| {
        grads(std::slice::from_ref(&logits), &one, |t| paired_kl_divergence(&t[0], &targets, 0, k).unwrap())
    };
    let (kf, gf) = run(Kernels::Fused);
    let (kr, gr) = run(Kernels::Reference);
    assert!(max_diff(&kf, &kr) < 1e-5, "divergence {}", max_diff(&kf, &kr));
    assert!(max_diff(&gf[0], &gr[0]) < 1e-6, "gradient {}", max_diff(&gf[0], &gr[0]));

    // by hand: ½ Σ (p − q)(log p − log q) over the 15 non-padding tokens, averaged
    let rows = |t: &Tensor| t.reshape((18, 53)).unwrap().to_vec2::<f32>().unwrap();
    let (a, b) = (rows(&first), rows(&second));
    let log_softmax = |x: &[f32]| {
        let lse = x.iter().map(|&v| (v as f64).exp()).sum::<f64>().ln();
        x.iter().map(|&v| v as f64 - lse).collect::<Vec<_>>()
    };
    let mut want = 0.0;
    for i in (0..18).filter(|i| i % 7 != 3) {
        let (lp, lq) = (log_softmax(&a[i]), log_softmax(&b[i]));
        want += 0.5 * lp.iter().zip(&lq).map(|(p, q)| (p.exp() - q.exp()) * (p - q)).sum::<f64>();
    }
    let got = kf.to_scalar::<f32>().unwrap() as f64;
    assert!((got - want / 15.0).abs() < 1e-5, "{got} against {}", want / 15.0);
    assert!(got > 0.01, "two different distributions diverge: {got}");
    // padding tokens get no gradient, in either copy
    let g = gf[0].reshape((36, 53)).unwrap().to_vec2::<f32>().unwrap();
    assert!(g[3].iter().chain(&g[18 + 3]).all(|&v| v == 0.0));
    assert!(g[4].iter().any(|&v| v != 0.0) && g[18 + 4].iter().any(|&v| v != 0.0));
    // the same logits twice: no divergence, no gradient
    let same = Tensor::cat(&[&first, &first], 0).unwrap();
    let (k0, g0) = grads(&[same], &one, |t| paired_kl_divergence(&t[0], &targets, 0, Kernels::Fused).unwrap());
    assert!(k0.to_scalar::<f32>().unwrap().abs() < 1e-6);
    assert!(
        g0[0]
            .abs()
            .unwrap()
            .max_keepdim(1)
            .unwrap()
            .max(0)
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
            < 1e-6
    );
}

#[test]
fn reference_path_is_used_off_the_fused_dtype() {
    let x = randn(&[2, 5], 9).to_dtype(DType::F64).unwrap();
    assert!(!Kernels::Fused.fused_for(&x));
    let y = Kernels::Fused.softmax_last_dim(&x).unwrap();
    let r = kernels::softmax_last_dim(&x).unwrap();
    assert_eq!(y.to_vec2::<f64>().unwrap(), r.to_vec2::<f64>().unwrap());
}

#[test]
fn fused_dropout_keeps_the_expected_fraction_and_backpropagates_its_mask() {
    let x = (randn(&[200, 500], 13).abs().unwrap() + 0.1).unwrap();
    let up = randn(&[200, 500], 14);
    let (y, g) = grads(std::slice::from_ref(&x), &up, |t| kernels::dropout::dropout(&t[0], 0.3, 99).unwrap());
    let yv = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let xv = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let kept = yv.iter().filter(|&&v| v != 0.0).count() as f64 / yv.len() as f64;
    assert!((kept - 0.7).abs() < 0.01, "kept fraction {kept}");
    for (y, x) in yv.iter().zip(&xv).take(1000) {
        assert!(*y == 0.0 || (y - x / 0.7).abs() < 1e-5);
    }
    // backward: the same mask, the same scale
    let want = ((&up * y.ne(0.0).unwrap().to_dtype(DType::F32).unwrap()).unwrap() / 0.7).unwrap();
    assert!(max_diff(&g[0], &want) < 1e-5);
    // another seed, another mask; the same seed, the same mask
    let other = kernels::dropout::dropout(&x, 0.3, 100).unwrap();
    assert!(max_diff(&other, &y) > 0.1);
    assert_eq!(max_diff(&kernels::dropout::dropout(&x, 0.3, 99).unwrap(), &y), 0.0);
}

#[test]
fn training_steps_agree_between_fused_and_reference_kernels() {
    use transduce::data::Batch;
    use transduce::model::config::{Dropout, ModelConfig, Preset};
    use transduce::model::{Ctx, TrainableModel};
    use transduce::train::{AdamWConfig, InverseSqrt, LrSchedule, TrainStep};
    let mut config = ModelConfig::preset(Preset::Tiny, 40);
    config.dropout = Dropout::uniform(0.0);
    let pairs: Vec<(&[u32], &[u32])> = vec![(&[5, 6, 7, 8], &[9, 10, 11]), (&[12, 13], &[14, 15, 16, 17, 18])];
    let batch = Batch::new(&pairs, vec![0, 1], config.special, &Device::Cpu).unwrap();
    let run = |kernels: Kernels| {
        let model = TrainableModel::init(&config, 5, DType::F32, &Device::Cpu).unwrap();
        let schedule = InverseSqrt { peak_lr: 1e-2, warmup: 2 };
        let mut step =
            TrainStep::new(&model, AdamWConfig::default(), LrSchedule::InverseSqrt(schedule), 0.1, 1.0).unwrap();
        let ctx = Ctx::train(0).with_kernels(kernels);
        (0..4).map(|_| step.step(&model, &batch, &ctx).unwrap()).map(|s| (s.loss, s.grad_norm)).collect::<Vec<_>>()
    };
    let fused = run(Kernels::Fused);
    let reference = run(Kernels::Reference);
    for (f, r) in fused.iter().zip(&reference) {
        assert!((f.0 - r.0).abs() < 1e-4 && (f.1 - r.1).abs() < 1e-3, "{fused:?} vs {reference:?}");
    }
    assert!(fused[3].0 < fused[0].0, "loss should fall: {fused:?}");
}

/// Reference attention: softmax(q k^T * scale + bias) [* dropout mask] @ v.
fn reference_attention(q: &Tensor, k: &Tensor, v: &Tensor, bias: &Tensor, mask: Option<&Tensor>) -> Tensor {
    let scale = 1.0 / (q.dim(3).unwrap() as f64).sqrt();
    let scores = (q.matmul(&k.t().unwrap()).unwrap() * scale).unwrap().broadcast_add(bias).unwrap();
    let p = kernels::softmax_last_dim(&scores).unwrap();
    let p = match mask {
        Some(m) => (p * m).unwrap(),
        None => p,
    };
    p.matmul(v).unwrap()
}

#[test]
fn fused_attention_matches_reference_forward_and_backward() {
    use transduce::kernels::attention::attention;
    let (b, h, tq, tk, dh) = (2, 3, 5, 7, 12);
    let q = randn(&[b, h, tq, dh], 20);
    let k = randn(&[b, h, tk, dh], 21);
    let v = randn(&[b, h, tk, dh], 22);
    let up = randn(&[b, h, tq, dh], 23);
    // padding (second sentence has 4 keys) plus a causal-style pattern
    let pad: Vec<f32> = (0..b * tk).map(|i| if i >= tk && i % tk >= 4 { -1e9 } else { 0.0 }).collect();
    let pad = Tensor::from_vec(pad, (b, 1, 1, tk), &Device::Cpu).unwrap();
    let causal: Vec<f32> = (0..tq * tk).map(|i| if i % tk > i / tk + 2 { -1e9 } else { 0.0 }).collect();
    let causal = Tensor::from_vec(causal, (tq, tk), &Device::Cpu).unwrap();
    let bias = pad.broadcast_add(&causal).unwrap();
    let scale = 1.0 / (dh as f64).sqrt();
    let inputs = [q.clone(), k.clone(), v.clone()];
    let (yf, gf) = grads(&inputs, &up, |t| attention(&t[0], &t[1], &t[2], Some(&bias), scale, None).unwrap());
    let (yr, gr) = grads(&inputs, &up, |t| reference_attention(&t[0], &t[1], &t[2], &bias, None));
    assert!(max_diff(&yf, &yr) < 1e-5, "forward {}", max_diff(&yf, &yr));
    for (name, (f, r)) in ["q", "k", "v"].iter().zip(gf.iter().zip(&gr)) {
        assert!(max_diff(f, r) < 1e-4, "d{name}: {}", max_diff(f, r));
    }

    // dropout on the probabilities: the mask is a hash of (seed, index)
    use transduce::kernels::dropout::{keep_element, DropoutMask};
    let m = DropoutMask::new(0.25, 77);
    let mask: Vec<f32> = (0..b * h * tq * tk).map(|i| if keep_element(&m, i as u64) { m.scale } else { 0.0 }).collect();
    let mask = Tensor::from_vec(mask, (b, h, tq, tk), &Device::Cpu).unwrap();
    let (yf, gf) =
        grads(&inputs, &up, |t| attention(&t[0], &t[1], &t[2], Some(&bias), scale, Some((0.25, 77))).unwrap());
    let (yr, gr) = grads(&inputs, &up, |t| reference_attention(&t[0], &t[1], &t[2], &bias, Some(&mask)));
    assert!(max_diff(&yf, &yr) < 1e-5, "dropout forward {}", max_diff(&yf, &yr));
    for (name, (f, r)) in ["q", "k", "v"].iter().zip(gf.iter().zip(&gr)) {
        assert!(max_diff(f, r) < 1e-4, "dropout d{name}: {}", max_diff(f, r));
    }
}

#[test]
fn fused_linear_matches_matmul_plus_bias_forward_and_backward() {
    use transduce::kernels::linear::linear;
    use transduce::kernels::BiasActivation;
    for (m, k, n) in [(1, 16, 9), (7, 33, 20), (512, 128, 96)] {
        let x = randn(&[m, k], 30);
        let w = randn(&[n, k], 31);
        let b = randn(&[n], 32);
        let up = randn(&[m, n], 33);
        for act in [BiasActivation::Identity, BiasActivation::Relu] {
            let inputs = [x.clone(), w.clone(), b.clone()];
            let (yf, gf) = grads(&inputs, &up, |t| linear(&t[0], &t[1], &t[2], act).unwrap());
            let (yr, gr) = grads(&inputs, &up, |t| {
                kernels::reference_bias_add(&t[0].matmul(&t[1].t().unwrap()).unwrap(), &t[2], act).unwrap()
            });
            assert!(max_diff(&yf, &yr) < 1e-3, "{m}x{k}x{n} {act:?}: {}", max_diff(&yf, &yr));
            for (name, (f, r)) in ["x", "w", "b"].iter().zip(gf.iter().zip(&gr)) {
                assert!(max_diff(f, r) < 1e-3, "{m}x{k}x{n} {act:?} d{name}: {}", max_diff(f, r));
            }
        }
        // the fused silu (swish) is for inference: forward only, and its backward refuses
        let silu = linear(&x, &w, &b, BiasActivation::Silu).unwrap();
        let reference =
            kernels::reference_bias_add(&x.matmul(&w.t().unwrap()).unwrap(), &b, BiasActivation::Silu).unwrap();
        assert!(max_diff(&silu, &reference) < 1e-3, "{m}x{k}x{n} silu: {}", max_diff(&silu, &reference));
        let xv = candle_core::Var::from_tensor(&x).unwrap();
        let y = linear(xv.as_tensor(), &w, &b, BiasActivation::Silu).unwrap();
        assert!(y.sum_all().unwrap().backward().is_err(), "the fused silu must not pretend to backpropagate");
    }
}

/// The fused attention with a per-head bias (T5's positions, [b, h, tq, tk]) equals the
/// reference composition; RMS norm's fused kernel equals its reference.
#[test]
fn per_head_bias_and_rms_norm_match_their_references() {
    use candle_core::{Device, Tensor, D};
    let dev = Device::Cpu;
    let (b, h, tq, tk, dh) = (2, 3, 5, 7, 4);
    let q = Tensor::randn(0f32, 1.0, (b, h, tq, dh), &dev).unwrap();
    let k = Tensor::randn(0f32, 1.0, (b, h, tk, dh), &dev).unwrap();
    let v = Tensor::randn(0f32, 1.0, (b, h, tk, dh), &dev).unwrap();
    let positions = Tensor::randn(0f32, 2.0, (1, h, tq, tk), &dev).unwrap();
    let padding = Tensor::new(&[[0f32, 0., 0., 0., 0., 0., -1e9], [0., 0., 0., -1e9, -1e9, -1e9, -1e9]], &dev)
        .unwrap()
        .reshape((b, 1, 1, tk))
        .unwrap();
    let bias = padding.broadcast_add(&positions).unwrap();
    let fused = transduce::kernels::attention::attention(&q, &k, &v, Some(&bias), 1.0, None).unwrap();
    let scores = q.matmul(&k.t().unwrap()).unwrap().broadcast_add(&bias).unwrap();
    let reference = transduce::kernels::softmax_last_dim(&scores).unwrap().matmul(&v).unwrap();
    let diff = (fused - reference).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap();
    assert!(diff.to_scalar::<f32>().unwrap() < 1e-5);
    let x = Tensor::randn(0f32, 3.0, (4, 6, 16), &dev).unwrap();
    let w = Tensor::randn(1f32, 0.2, 16, &dev).unwrap();
    let fused = transduce::kernels::rms_norm_fused(&x, &w, 1e-6).unwrap();
    let reference = transduce::kernels::rms_norm(&x, &w, 1e-6).unwrap();
    let diff = (fused - &reference).unwrap().abs().unwrap().max(D::Minus1).unwrap().max(0).unwrap().max(0).unwrap();
    assert!(diff.to_scalar::<f32>().unwrap() < 1e-5);
}

#[test]
fn fused_head_split_and_merge_are_the_plain_transposes_forward_and_backward() {
    // large enough for several parallel blocks, with t and dh not powers of two
    let (b, t, h, dh) = (5, 37, 4, 24);
    let x = randn(&[b, t, h * dh], 21);
    let up = randn(&[b, h, t, dh], 22);
    let (sf, gf) = grads(std::slice::from_ref(&x), &up, |t| kernels::heads::split_heads(&t[0], h).unwrap());
    let (sr, gr) = grads(std::slice::from_ref(&x), &up, |t| {
        t[0].reshape((b, t[0].dim(1).unwrap(), h, dh)).unwrap().transpose(1, 2).unwrap().contiguous().unwrap()
    });
    assert_eq!(sf.dims(), &[b, h, t, dh]);
    assert_eq!(max_diff(&sf, &sr), 0.0, "split forward");
    assert_eq!(max_diff(&gf[0], &gr[0]), 0.0, "split backward");

    let y = randn(&[b, h, t, dh], 23);
    let up = randn(&[b, t, h * dh], 24);
    let (mf, gf) = grads(std::slice::from_ref(&y), &up, |t| kernels::heads::merge_heads(&t[0]).unwrap());
    let (mr, gr) =
        grads(&[y], &up, |t| t[0].transpose(1, 2).unwrap().reshape((b, t[0].dim(2).unwrap(), h * dh)).unwrap());
    assert_eq!(mf.dims(), &[b, t, h * dh]);
    assert_eq!(max_diff(&mf, &mr), 0.0, "merge forward");
    assert_eq!(max_diff(&gf[0], &gr[0]), 0.0, "merge backward");
    assert!(kernels::heads::split_heads(&x, 5).is_err(), "a width that is not a multiple of the heads");
}
