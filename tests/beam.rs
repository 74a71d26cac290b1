//! Beam search bookkeeping on a scripted step model, and on a real (random) model: beam 1 is
//! greedy, batches do not change results.

mod common;

use candle_core::{DType, Device};
use common::*;
use transduce::data::Batch;
use transduce::model::config::NormPlacement;
use transduce::search::{beam_search, greedy, BeamOptions, EncodedBatch, LengthPenalty, StepModel};

const EOS: u32 = 2;
const A: u32 = 3;
const B: u32 = 4;
const V: usize = 5;

/// Next-token probabilities as a function of the prefix; the state is each row's prefix.
struct Scripted {
    sources: usize,
    script: fn(&[u32]) -> [f32; V],
}

impl StepModel for Scripted {
    type State = Vec<Vec<u32>>;
    fn start_token(&self) -> u32 {
        1
    }
    fn eos(&self) -> u32 {
        EOS
    }
    fn max_len(&self) -> usize {
        50
    }
    fn start(&self, group: usize) -> candle_core::Result<Self::State> {
        Ok(vec![Vec::new(); self.sources * group])
    }
    fn step(&self, last: &[u32], state: &mut Self::State) -> candle_core::Result<Vec<f32>> {
        let mut out = Vec::new();
        for (prefix, &t) in state.iter_mut().zip(last) {
            if t != 1 {
                prefix.push(t);
            }
            out.extend((self.script)(prefix).iter().map(|p| p.max(1e-9).ln()));
        }
        Ok(out)
    }
    fn reorder(&self, state: &mut Self::State, indices: &[u32]) -> candle_core::Result<()> {
        *state = indices.iter().map(|&i| state[i as usize].clone()).collect();
        Ok(())
    }
    fn vocab(&self) -> usize {
        V
    }
}

/// Greedy takes A (0.6) but every continuation after A is poor; B (0.4) then EOS (0.9) wins.
fn trap(prefix: &[u32]) -> [f32; V] {
    match prefix {
        [] => [0.0, 0.0, 0.0, 0.6, 0.4],
        [A] => [0.0, 0.0, 0.3, 0.35, 0.35],
        [B] => [0.0, 0.0, 0.9, 0.05, 0.05],
        _ => [0.0, 0.0, 0.5, 0.25, 0.25],
    }
}

fn opts(beam: usize) -> BeamOptions {
    BeamOptions { beam, length_penalty: LengthPenalty::None, max_len: 10, min_len: 0, n_best: beam }
}

#[test]
fn beam_finds_what_greedy_misses_and_ranks_the_n_best() {
    let m = Scripted { sources: 2, script: trap };
    let greedyish = beam_search(&m, 2, &opts(1)).unwrap();
    assert_eq!(greedyish[0][0].tokens[0], A, "beam 1 follows the greedy choice");
    let out = beam_search(&m, 2, &opts(3)).unwrap();
    for sentence in &out {
        assert_eq!(sentence[0].tokens, vec![B]);
        assert!((sentence[0].logp - (0.4f32.ln() + 0.9f32.ln())).abs() < 1e-5);
        assert!(sentence.windows(2).all(|w| w[0].score >= w[1].score), "n-best in score order");
        assert_eq!(sentence.len(), 3);
    }
    assert_eq!(out[1][1].tokens, vec![A], "second best: A then EOS (0.6 * 0.3)");
}

#[test]
fn min_and_max_length_are_respected() {
    let m = Scripted { sources: 1, script: trap };
    let out = beam_search(&m, 1, &BeamOptions { min_len: 2, ..opts(3) }).unwrap();
    assert!(out[0].iter().all(|h| h.tokens.len() >= 2), "{out:?}");
    let out = beam_search(&m, 1, &BeamOptions { max_len: 1, ..opts(3) }).unwrap();
    assert!(out[0].iter().all(|h| h.tokens.len() <= 1), "{out:?}");
}

#[test]
fn length_penalties_rank_as_defined() {
    assert_eq!(LengthPenalty::None.score(-3.0, 3), -3.0);
    assert_eq!(LengthPenalty::Average.score(-3.0, 3), -1.0);
    let gnmt = LengthPenalty::Gnmt { alpha: 1.0 }.score(-3.0, 7);
    assert!((gnmt - (-3.0 / 2.0)).abs() < 1e-6);
}

#[test]
fn beam_one_is_greedy_and_batches_do_not_change_results() {
    let config = tiny_config(NormPlacement::Pre);
    let mut m = model(&config, DType::F32).model;
    m.prepare_inference().unwrap();
    let sources: [&[u32]; 3] = [&[5, 6, 7, 8, 9], &[10, 11], &[12, 13, 14]];
    let (src, mask) = Batch::sources(&sources, config.special, &Device::Cpu).unwrap();
    let memory = m.encode(&src, &mask).unwrap();
    let step = EncodedBatch { model: &m, memory: &memory };
    let o = BeamOptions { max_len: 12, length_penalty: LengthPenalty::None, ..BeamOptions::default() };
    let one = beam_search(&step, 3, &BeamOptions { beam: 1, n_best: 1, ..o }).unwrap();
    let greedy_out = greedy(&m, &memory, 12).unwrap();
    for (b, g) in one.iter().zip(&greedy_out) {
        assert_eq!(&b[0].tokens, g);
    }
    let batched = beam_search(&step, 3, &o).unwrap();
    for (i, s) in sources.iter().enumerate() {
        let (src, mask) = Batch::sources(&[s], config.special, &Device::Cpu).unwrap();
        let mem = m.encode(&src, &mask).unwrap();
        let alone = beam_search(&EncodedBatch { model: &m, memory: &mem }, 1, &o).unwrap();
        assert_eq!(alone[0][0].tokens, batched[i][0].tokens, "sentence {i}");
        assert!((alone[0][0].score - batched[i][0].score).abs() < 1e-4);
    }
}
