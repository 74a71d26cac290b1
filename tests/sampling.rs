//! Sampling: the truncated distribution, reproducibility, frequencies, batch independence.

mod common;

use candle_core::{DType, Device};
use common::*;
use transduce::data::Batch;
use transduce::model::config::NormPlacement;
use transduce::search::sampling::candidates;
use transduce::search::{greedy, sample, DecodeOptions, EncodedBatch, SamplingOptions, Target};

#[test]
fn temperature_top_k_and_top_p_shape_the_distribution() {
    let logp: Vec<f32> = [0.5f32, 0.3, 0.15, 0.05].iter().map(|p| p.ln()).collect();
    let all = candidates(&logp, &SamplingOptions::default());
    let probs: Vec<f32> = all.iter().map(|c| c.1).collect();
    assert!(probs.iter().zip([0.5, 0.3, 0.15, 0.05]).all(|(a, b)| (a - b).abs() < 1e-6), "{probs:?}");
    let top2 = candidates(&logp, &SamplingOptions { top_k: 2, ..Default::default() });
    assert_eq!(top2.iter().map(|c| c.0).collect::<Vec<_>>(), vec![0, 1]);
    assert!((top2[0].1 - 0.625).abs() < 1e-6);
    let nucleus = candidates(&logp, &SamplingOptions { top_p: 0.8, ..Default::default() });
    assert_eq!(nucleus.len(), 2, "0.5 + 0.3 reaches 0.8");
    let sharp = candidates(&logp, &SamplingOptions { temperature: 0.5, ..Default::default() });
    let z: f32 = [0.5f32, 0.3, 0.15, 0.05].iter().map(|p| p * p).sum();
    assert!((sharp[0].1 - 0.25 / z).abs() < 1e-5);
}

#[test]
fn samples_follow_the_model_are_reproducible_and_batch_independent() {
    let config = tiny_config(NormPlacement::Pre);
    let mut m = model(&config, DType::F32).model;
    m.prepare_inference().unwrap();
    let sources: Vec<&[u32]> = vec![&[5, 6, 7, 8], &[9, 10], &[11, 12, 13]];
    let (src, mask) = Batch::sources(&sources, config.special, &Device::Cpu).unwrap();
    let memory = m.encode(&src, &mask).unwrap();
    let step = EncodedBatch::new(&m, &memory);
    let opts = SamplingOptions { seed: 7, ..Default::default() };
    let dec = DecodeOptions { max_len: 10, ..DecodeOptions::default() };
    let t = Target::unconstrained(3, 10);
    let run = |step: &EncodedBatch, t: &[Target], streams: &[u64], o: SamplingOptions| {
        sample(step, t, streams, &dec, &o).unwrap()
    };
    let a = run(&step, &t, &[0, 1, 2], opts);
    let b = run(&step, &t, &[0, 1, 2], opts);
    assert_eq!(a, b, "same seed, same samples");
    let other = run(&step, &t, &[0, 1, 2], SamplingOptions { seed: 8, ..opts });
    assert_ne!(a, other, "another seed, other samples");
    // top-k 1 is greedy
    let top1 = run(&step, &t, &[0, 1, 2], SamplingOptions { top_k: 1, ..opts });
    let g = greedy(&m, &memory, 10).unwrap();
    for (s, g) in top1.iter().zip(&g) {
        assert_eq!(&s.tokens, g);
    }
    // sentence 1 alone, with its stream id, samples what it sampled in the batch
    let (src, mask) = Batch::sources(&sources[1..2], config.special, &Device::Cpu).unwrap();
    let mem = m.encode(&src, &mask).unwrap();
    let alone = run(&EncodedBatch::new(&m, &mem), &t[..1], &[1], opts);
    assert_eq!(alone[0].tokens, a[1].tokens);
}

#[test]
fn first_token_frequencies_match_the_model() {
    let config = tiny_config(NormPlacement::Pre);
    let m = model(&config, DType::F32).model;
    let n = 3000;
    let rows: Vec<&[u32]> = vec![&[5, 6, 7]; n];
    let (src, mask) = Batch::sources(&rows, config.special, &Device::Cpu).unwrap();
    let memory = m.encode(&src, &mask).unwrap();
    let step = EncodedBatch::new(&m, &memory);
    let streams: Vec<u64> = (0..n as u64).collect();
    let dec = DecodeOptions { max_len: 1, ..DecodeOptions::default() };
    let t = Target::unconstrained(n, 1);
    let out = sample(&step, &t, &streams, &dec, &SamplingOptions { seed: 3, ..Default::default() }).unwrap();
    // the model's own first-step distribution
    let first = vec![config.special.decoder_start; 1];
    let one = m.encode(&src.narrow(0, 0, 1).unwrap(), &mask.narrow(0, 0, 1).unwrap()).unwrap();
    let mut s1 = m.start(&one, 1).unwrap();
    let logits = m.decode_step(&candle_core::Tensor::new(first.as_slice(), &Device::Cpu).unwrap(), &mut s1).unwrap();
    let probs = candle_nn::ops::softmax_last_dim(&logits).unwrap().squeeze(0).unwrap().to_vec1::<f32>().unwrap();
    let (best, p) = probs.iter().enumerate().fold((0, 0f32), |b, (i, &p)| if p > b.1 { (i, p) } else { b });
    let hits = out.iter().filter(|h| h.tokens.first().copied().unwrap_or(config.special.eos) as usize == best).count();
    let freq = hits as f32 / n as f32;
    let sd = (p * (1.0 - p) / n as f32).sqrt();
    assert!((freq - p).abs() < 4.0 * sd + 1e-3, "token {best}: sampled {freq}, model {p}");
}
