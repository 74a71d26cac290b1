//! Search bookkeeping on a scripted step model (EOS, min/max length, length penalty, n-best
//! order, early stop, dropped sentences, prefix, n-gram and repetition control), and on a real
//! (random) model: beam 1 is greedy, batches do not change results, attention is recorded; and
//! ensembles of random models against a plain-candle reference.

mod common;

use std::cell::RefCell;

use candle_core::{DType, Device, Tensor};
use common::*;
use transduce::data::Batch;
use transduce::kernels::log_softmax_last_dim;
use transduce::model::config::{ModelConfig, NormPlacement};
use transduce::model::{Memory, Seq2Seq, TrainableModel};
use transduce::search::{
    beam_search, decode, greedy, greedy_search, Alignment, BeamOptions, BeamRule, Combination, DecodeOptions,
    EncodedBatch, Ensemble, LengthPenalty, StepModel, StepOutput, Strategy, Target,
};

const EOS: u32 = 2;
const A: u32 = 3;
const B: u32 = 4;
const V: usize = 5;

type Script = fn(usize, &[u32]) -> [f32; V];

/// Next-token probabilities as a function of (sentence, prefix); records the rows of each step.
struct Scripted {
    sources: usize,
    script: Script,
    rows_per_step: RefCell<Vec<usize>>,
}

/// Rows of (sentence, prefix), `group` per sentence.
struct State {
    group: usize,
    rows: Vec<(usize, Vec<u32>)>,
}

impl Scripted {
    fn new(sources: usize, script: Script) -> Self {
        Scripted { sources, script, rows_per_step: RefCell::new(Vec::new()) }
    }
}

impl StepModel for Scripted {
    type State = State;
    fn start_token(&self) -> u32 {
        1
    }
    fn eos(&self) -> u32 {
        EOS
    }
    fn max_len(&self) -> usize {
        50
    }
    fn vocab(&self) -> usize {
        V
    }
    fn sources(&self) -> usize {
        self.sources
    }
    fn start(&self, group: usize) -> candle_core::Result<State> {
        Ok(State { group, rows: (0..self.sources * group).map(|r| (r / group, Vec::new())).collect() })
    }
    fn step(&self, last: &[u32], state: &mut State, _: Alignment) -> candle_core::Result<StepOutput> {
        assert_eq!(last.len(), state.rows.len());
        self.rows_per_step.borrow_mut().push(last.len());
        let mut logits = Vec::new();
        for ((sentence, prefix), &t) in state.rows.iter_mut().zip(last) {
            if t != 1 {
                prefix.push(t);
            }
            logits.extend((self.script)(*sentence, prefix).iter().map(|p| p.max(1e-9).ln()));
        }
        Ok(StepOutput { logits, attention: None, source_len: 0 })
    }
    fn reorder(&self, state: &mut State, indices: &[u32]) -> candle_core::Result<()> {
        state.rows = indices.iter().map(|&i| state.rows[i as usize].clone()).collect();
        Ok(())
    }
    fn retain(&self, state: &mut State, sources: &[u32]) -> candle_core::Result<()> {
        let g = state.group;
        state.rows = sources.iter().flat_map(|&s| state.rows[s as usize * g..(s as usize + 1) * g].to_vec()).collect();
        Ok(())
    }
}

/// Greedy takes A (0.6) but every continuation after A is poor; B (0.4) then EOS (0.9) wins.
fn trap(_: usize, prefix: &[u32]) -> [f32; V] {
    match prefix {
        [] => [0.0, 0.0, 0.0, 0.6, 0.4],
        [A] => [0.0, 0.0, 0.3, 0.35, 0.35],
        [B] => [0.0, 0.0, 0.9, 0.05, 0.05],
        _ => [0.0, 0.0, 0.5, 0.25, 0.25],
    }
}

fn opts(max_len: usize) -> DecodeOptions {
    DecodeOptions { max_len, ..DecodeOptions::default() }
}

fn beam(k: usize, length_penalty: LengthPenalty) -> BeamOptions {
    BeamOptions { beam: k, length_penalty, n_best: k, rule: BeamRule::Exact }
}

fn targets(n: usize, max_len: usize) -> Vec<Target<'static>> {
    Target::unconstrained(n, max_len)
}

#[test]
fn beam_finds_what_greedy_misses_and_ranks_the_n_best() {
    let m = Scripted::new(2, trap);
    let one = beam_search(&m, &targets(2, 10), &opts(10), &beam(1, LengthPenalty::None)).unwrap();
    assert_eq!(one[0][0].tokens[0], A, "beam 1 follows the greedy choice");
    let out = beam_search(&m, &targets(2, 10), &opts(10), &beam(3, LengthPenalty::None)).unwrap();
    for sentence in &out {
        assert_eq!(sentence[0].tokens, vec![B]);
        assert!((sentence[0].logp - (0.4f32.ln() + 0.9f32.ln())).abs() < 1e-5);
        assert_eq!(sentence[0].token_logp.len(), 2, "B and EOS");
        assert!(sentence.windows(2).all(|w| w[0].score >= w[1].score), "n-best in score order");
        assert_eq!(sentence.len(), 3);
    }
    assert_eq!(out[1][1].tokens, vec![A], "second best: A then EOS (0.6 * 0.3)");
}

#[test]
fn min_and_max_length_are_respected() {
    let m = Scripted::new(1, trap);
    let o = DecodeOptions { min_len: 2, ..opts(10) };
    let out = beam_search(&m, &targets(1, 10), &o, &beam(3, LengthPenalty::None)).unwrap();
    assert!(out[0].iter().all(|h| h.tokens.len() >= 2), "{out:?}");
    let out = beam_search(&m, &targets(1, 1), &opts(10), &beam(3, LengthPenalty::None)).unwrap();
    assert!(out[0].iter().all(|h| h.tokens.len() <= 1), "{out:?}");
    // the ratio form: 1.5 x 2 source tokens = 3 output tokens at most
    assert_eq!(DecodeOptions { max_len_ratio: Some(1.5), ..opts(10) }.max_len_for(2), 3);
    assert_eq!(DecodeOptions { max_len_ratio: Some(1.5), ..opts(2) }.max_len_for(4), 2);
}

/// EOS now (0.5) or A then EOS with certainty after it (0.5 * 1.0): equal sums, different lengths.
fn long_or_short(_: usize, prefix: &[u32]) -> [f32; V] {
    match prefix {
        [] => [0.0, 0.0, 0.45, 0.55, 0.0],
        [A] => [0.0, 0.0, 0.8, 0.1, 0.1],
        _ => [0.0, 0.0, 1.0, 0.0, 0.0],
    }
}

#[test]
fn length_penalties_rank_as_defined() {
    assert_eq!(LengthPenalty::None.score(-3.0, 3), -3.0);
    assert_eq!(LengthPenalty::Average.score(-3.0, 3), -1.0);
    let gnmt = LengthPenalty::Gnmt { alpha: 1.0 }.score(-3.0, 7);
    assert!((gnmt - (-3.0 / 2.0)).abs() < 1e-6);
    // sums: EOS 0.45 (ln -0.80) vs A EOS 0.44 (ln -0.82): no penalty keeps the short one,
    // the average and GNMT prefer the longer
    let m = Scripted::new(1, long_or_short);
    let best = |lp| beam_search(&m, &targets(1, 10), &opts(10), &beam(2, lp)).unwrap()[0][0].tokens.clone();
    assert_eq!(best(LengthPenalty::None), Vec::<u32>::new());
    assert_eq!(best(LengthPenalty::Average), vec![A]);
    assert_eq!(best(LengthPenalty::Gnmt { alpha: 1.0 }), vec![A]);
}

/// Sentence 0 ends at once with certainty; sentence 1 writes five A's first.
fn one_short_one_long(sentence: usize, prefix: &[u32]) -> [f32; V] {
    match (sentence, prefix.len()) {
        (0, _) => [0.0, 0.0, 0.999, 0.001, 0.0],
        (_, n) if n < 5 => [0.0, 0.0, 0.0001, 0.999, 0.0009],
        _ => [0.0, 0.0, 0.999, 0.0005, 0.0005],
    }
}

#[test]
fn finished_sentences_stop_early_and_leave_the_batch() {
    let m = Scripted::new(2, one_short_one_long);
    let o = opts(20);
    let out = beam_search(&m, &targets(2, 20), &o, &BeamOptions { n_best: 1, ..beam(2, LengthPenalty::None) }).unwrap();
    assert_eq!(out[0][0].tokens, Vec::<u32>::new());
    assert_eq!(out[1][0].tokens, vec![A; 5]);
    let rows = m.rows_per_step.borrow().clone();
    // step 0: both sentences (2 rows each); sentence 0 is then done (nothing live can beat
    // log 0.999) and only sentence 1's rows remain, until it stops after its EOS
    assert_eq!(rows[0], 4, "{rows:?}");
    assert!(rows[1..].iter().all(|&r| r == 2), "{rows:?}");
    assert!(rows.len() <= 8, "stops soon after the best finished hypothesis: {rows:?}");
    // greedy drops finished sentences too
    let m = Scripted::new(2, one_short_one_long);
    let g = greedy_search(&m, &targets(2, 20), &o).unwrap();
    assert_eq!(g[1].tokens, vec![A; 5]);
    assert_eq!(m.rows_per_step.borrow()[..2], [2, 1]);
}

/// A long, likely path (ten A's) against early endings that are unlikely but rank among the
/// first candidates because the distribution is peaked.
fn long_and_sure(_: usize, prefix: &[u32]) -> [f32; V] {
    if prefix.len() < 10 {
        [0.0, 0.0, 0.004, 0.99, 0.006]
    } else {
        [0.0, 0.0, 0.99, 0.005, 0.005]
    }
}

#[test]
fn early_unlikely_endings_do_not_end_the_search() {
    // regression: finishing a sentence once `beam` hypotheses had ended (fairseq's rule) kept
    // five poor early endings and lost the best, long translation
    for rule in [BeamRule::Exact, BeamRule::Heuristic] {
        let m = Scripted::new(1, long_and_sure);
        let lp = LengthPenalty::Gnmt { alpha: 0.6 };
        let out = beam_search(&m, &targets(1, 30), &opts(30), &BeamOptions { rule, ..beam(5, lp) }).unwrap();
        assert_eq!(out[0][0].tokens, vec![A; 10], "{rule}: {:?}", out[0]);
    }
}

/// Two likely endings after one token (A then EOS 0.65, B then EOS 0.6), or a confident loop of
/// B's after two tokens that ends by itself at 12: the loop is less likely in total, but a
/// length penalty that rewards length enough ranks it first.
fn ends_or_loops(_: usize, prefix: &[u32]) -> [f32; V] {
    match prefix {
        [] => [0.0, 0.0, 0.0, 0.5, 0.5],
        [A] => [0.0, 0.0, 0.65, 0.0, 0.35],
        [B] => [0.0, 0.0, 0.6, 0.4, 0.0],
        p if p.len() < 12 => [0.0, 0.0, 0.05, 0.0, 0.95],
        _ => [0.0, 0.0, 0.95, 0.0, 0.05],
    }
}

#[test]
fn the_heuristic_rule_stops_before_long_loops_the_exact_rule_goes_on_to_find() {
    let search = |rule, alpha| {
        let m = Scripted::new(1, ends_or_loops);
        let lp = LengthPenalty::Gnmt { alpha };
        let out = beam_search(&m, &targets(1, 30), &opts(30), &BeamOptions { rule, n_best: 1, ..beam(2, lp) }).unwrap();
        let steps = m.rows_per_step.borrow().len();
        (out[0][0].clone(), steps)
    };
    // GNMT 1.5: the exact bound keeps the search going to the loop, whose score is higher
    let (exact, exact_steps) = search(BeamRule::Exact, 1.5);
    let (heuristic, heuristic_steps) = search(BeamRule::Heuristic, 1.5);
    assert_eq!(exact.tokens.len(), 12, "{exact:?}");
    assert!(exact.tokens[2..].iter().all(|&t| t == B), "{exact:?}");
    assert!(exact.score > heuristic.score && exact.logp < heuristic.logp, "{exact:?} {heuristic:?}");
    // after step 2 both finished hypotheses beat every live one as it stands: the search stops
    assert_eq!(heuristic.tokens, vec![A]);
    assert_eq!(heuristic_steps, 2);
    assert!(exact_steps >= 13, "the loop ends at step 13: {exact_steps}");
    // with a mild penalty both rules keep the likely ending
    assert_eq!(search(BeamRule::Exact, 0.6).0.tokens, vec![A]);
    assert_eq!(search(BeamRule::Heuristic, 0.6).0.tokens, vec![A]);
}

#[test]
fn under_the_heuristic_rule_an_eos_forced_at_the_limit_costs_its_probability() {
    // ten likely A's cut at 3 tokens: Hugging Face's rule adds nothing for the forced EOS,
    // the heuristic rule its log-probability (0.004), as the exact rule does
    let logp = |rule| {
        let m = Scripted::new(1, long_and_sure);
        let lp = LengthPenalty::Gnmt { alpha: 0.6 };
        let o = DecodeOptions { strategy: Strategy::Beam(BeamOptions { rule, ..beam(2, lp) }), ..opts(3) };
        let out = decode(&m, &targets(1, 3), &[0], &o).unwrap();
        assert_eq!(out[0][0].tokens, vec![A; 3], "{rule}");
        out[0][0].logp
    };
    let three_a = 3.0 * 0.99f32.ln();
    assert!((logp(BeamRule::HuggingFace) - three_a).abs() < 1e-5);
    for rule in [BeamRule::Heuristic, BeamRule::Exact] {
        assert!((logp(rule) - (three_a + 0.004f32.ln())).abs() < 1e-4, "{rule}");
    }
}

fn loves_a(_: usize, _: &[u32]) -> [f32; V] {
    [0.0, 0.0, 0.05, 0.6, 0.35]
}

#[test]
fn prefix_ngram_and_repetition_constraints() {
    let m = Scripted::new(1, trap);
    let prefix = [A, A];
    let t = [Target::new(10, &prefix)];
    for strategy in [Strategy::Greedy, Strategy::Beam(beam(3, LengthPenalty::None))] {
        let out = decode(&m, &t, &[0], &DecodeOptions { strategy, ..opts(10) }).unwrap();
        assert!(out[0].iter().all(|h| h.tokens.starts_with(&prefix)), "{strategy:?}: {out:?}");
    }
    let m = Scripted::new(1, loves_a);
    let g = |o: DecodeOptions| greedy_search(&m, &targets(1, 6), &o).unwrap()[0].tokens.clone();
    assert_eq!(g(opts(6)), vec![A; 6]);
    assert_eq!(
        g(DecodeOptions { no_repeat_ngram: 2, ..opts(6) }),
        vec![A, A, B, A],
        "then A and B both repeat a bigram"
    );
    let penalised = g(DecodeOptions { repetition_penalty: 10.0, ..opts(6) });
    assert_eq!(penalised[..2], [A, B], "{penalised:?}");
}

#[test]
fn beam_one_is_greedy_batches_do_not_change_results_attention_is_recorded() {
    let config = tiny_config(NormPlacement::Pre);
    let mut m = model(&config, DType::F32).model;
    m.prepare_inference().unwrap();
    let sources: [&[u32]; 3] = [&[5, 6, 7, 8, 9], &[10, 11], &[12, 13, 14]];
    let (src, mask) = Batch::sources(&sources, config.special, &Device::Cpu).unwrap();
    let memory = m.encode(&src, &mask).unwrap();
    let step = EncodedBatch::new(&m, &memory);
    let t = targets(3, 12);
    let lp = LengthPenalty::None;
    let one = beam_search(
        &step,
        &t,
        &opts(12),
        &BeamOptions { beam: 1, n_best: 1, length_penalty: lp, rule: BeamRule::Exact },
    )
    .unwrap();
    let greedy_out = greedy(&m, &memory, 12).unwrap();
    for (b, g) in one.iter().zip(&greedy_out) {
        assert_eq!(&b[0].tokens, g);
    }
    let o = DecodeOptions { alignment: Alignment::LastLayer, ..opts(12) };
    let b5 = BeamOptions { length_penalty: lp, ..BeamOptions::default() };
    let batched = beam_search(&step, &t, &o, &b5).unwrap();
    for (i, s) in sources.iter().enumerate() {
        let (src, mask) = Batch::sources(&[s], config.special, &Device::Cpu).unwrap();
        let mem = m.encode(&src, &mask).unwrap();
        let alone = beam_search(&EncodedBatch::new(&m, &mem), &t[..1], &o, &b5).unwrap();
        assert_eq!(alone[0][0].tokens, batched[i][0].tokens, "sentence {i}");
        assert!((alone[0][0].score - batched[i][0].score).abs() < 1e-4);
        // one attention row per output token and EOS, over the padded source; sums to 1,
        // nothing on padding
        let h = &batched[i][0];
        assert_eq!(h.attention.len(), h.tokens.len() + 1);
        for row in &h.attention {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-4);
            assert!(row[s.len() + 1..].iter().all(|&a| a < 1e-6), "{row:?}");
        }
    }
}

/// Two random models of one shape (seeds 7 and 8), ready to decode.
fn two_random_models() -> (ModelConfig, [Seq2Seq; 2]) {
    let config = tiny_config(NormPlacement::Pre);
    let models = [7, 8].map(|seed| {
        let mut m = TrainableModel::init(&config, seed, DType::F32, &Device::Cpu).unwrap().model;
        m.prepare_inference().unwrap();
        m
    });
    (config, models)
}

#[test]
fn an_ensemble_step_is_the_mixture_or_product_of_its_members_distributions() {
    let (config, models) = two_random_models();
    let sources: [&[u32]; 2] = [&[5, 6, 7, 8, 9], &[10, 11]];
    let (src, mask) = Batch::sources(&sources, config.special, &Device::Cpu).unwrap();
    let memories: Vec<_> = models.iter().map(|m| m.encode(&src, &mask).unwrap()).collect();
    let last = [1u32, 1, 1, 1];
    // the reference: each member's own step, log-softmaxed and combined with candle ops
    let member_logp: Vec<Tensor> = models
        .iter()
        .zip(&memories)
        .map(|(m, memory)| {
            let step = EncodedBatch::new(m, memory);
            let mut state = step.start(2).unwrap();
            let out = step.step(&last, &mut state, Alignment::Off).unwrap();
            log_softmax_last_dim(&Tensor::from_vec(out.logits, (4, config.vocab.target()), &Device::Cpu).unwrap())
                .unwrap()
        })
        .collect();
    let stacked = Tensor::stack(&member_logp, 0).unwrap();
    let linear = stacked.exp().unwrap().mean(0).unwrap().log().unwrap();
    let log_linear = log_softmax_last_dim(&stacked.mean(0).unwrap()).unwrap();
    assert!(max_diff(&linear, &log_linear) > 1e-3, "the two combinations differ on these models");
    for (combination, want) in [(Combination::Linear, linear), (Combination::LogLinear, log_linear)] {
        let members = models.iter().zip(&memories).map(|(m, memory)| EncodedBatch::new(m, memory)).collect();
        let ensemble = Ensemble::new(members, combination).unwrap();
        let mut state = ensemble.start(2).unwrap();
        let out = ensemble.step(&last, &mut state, Alignment::LastLayer).unwrap();
        let got = Tensor::from_vec(out.logits, want.dims(), &Device::Cpu).unwrap();
        assert!(max_diff(&got, &want) < 1e-5, "{combination:?}: {}", max_diff(&got, &want));
        // attention: the members' average, still a distribution over the source
        let attention = out.attention.expect("attention asked for");
        for row in attention.chunks(out.source_len) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-4);
        }
    }
}

#[test]
fn an_ensemble_of_one_model_twice_is_that_model_and_batches_do_not_change_its_results() {
    let (config, models) = two_random_models();
    let sources: [&[u32]; 3] = [&[5, 6, 7, 8, 9], &[10, 11], &[12, 13, 14]];
    let (src, mask) = Batch::sources(&sources, config.special, &Device::Cpu).unwrap();
    let t = targets(3, 12);
    let b5 = BeamOptions { length_penalty: LengthPenalty::None, ..BeamOptions::default() };
    let memory = models[0].encode(&src, &mask).unwrap();
    let alone = beam_search(&EncodedBatch::new(&models[0], &memory), &t, &opts(12), &b5).unwrap();
    for combination in [Combination::Linear, Combination::LogLinear] {
        let twice =
            Ensemble::new((0..2).map(|_| EncodedBatch::new(&models[0], &memory)).collect(), combination).unwrap();
        let out = beam_search(&twice, &t, &opts(12), &b5).unwrap();
        for (a, b) in alone.iter().zip(&out) {
            assert_eq!(a[0].tokens, b[0].tokens, "{combination:?}");
            assert!((a[0].score - b[0].score).abs() < 1e-4, "{combination:?}: {} {}", a[0].score, b[0].score);
        }
    }
    // two different models: the same outputs batched and alone, for beam and greedy search
    let memories: Vec<_> = models.iter().map(|m| m.encode(&src, &mask).unwrap()).collect();
    fn ensemble<'a>(models: &'a [Seq2Seq], memories: &'a [Memory]) -> Ensemble<EncodedBatch<'a>> {
        let members = models.iter().zip(memories).map(|(m, memory)| EncodedBatch::new(m, memory)).collect();
        Ensemble::new(members, Combination::Linear).unwrap()
    }
    let batched = beam_search(&ensemble(&models, &memories), &t, &opts(12), &b5).unwrap();
    let batched_greedy = greedy_search(&ensemble(&models, &memories), &t, &opts(12)).unwrap();
    for (i, s) in sources.iter().enumerate() {
        let (src, mask) = Batch::sources(&[s], config.special, &Device::Cpu).unwrap();
        let memories: Vec<_> = models.iter().map(|m| m.encode(&src, &mask).unwrap()).collect();
        let one = beam_search(&ensemble(&models, &memories), &t[..1], &opts(12), &b5).unwrap();
        assert_eq!(one[0][0].tokens, batched[i][0].tokens, "sentence {i}");
        assert!((one[0][0].score - batched[i][0].score).abs() < 1e-4);
        let one_greedy = greedy_search(&ensemble(&models, &memories), &t[..1], &opts(12)).unwrap();
        assert_eq!(one_greedy[0].tokens, batched_greedy[i].tokens, "sentence {i}, greedy");
    }
}

#[test]
fn an_ensemble_refuses_members_of_another_vocabulary() {
    let (config, models) = two_random_models();
    let other_config = tiny_config_untied(NormPlacement::Pre);
    let mut other = model(&other_config, DType::F32).model;
    other.prepare_inference().unwrap();
    let sources: [&[u32]; 1] = [&[5, 6, 7]];
    let (src, mask) = Batch::sources(&sources, config.special, &Device::Cpu).unwrap();
    let (a, b) = (models[0].encode(&src, &mask).unwrap(), other.encode(&src, &mask).unwrap());
    let members = vec![EncodedBatch::new(&models[0], &a), EncodedBatch::new(&other, &b)];
    let err = Ensemble::new(members, Combination::Linear).err().expect("refused").to_string();
    assert!(err.contains("member 1") && err.contains("19") && err.contains("23"), "{err}");
}
