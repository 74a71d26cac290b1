//! The translator and `transduce translate` on a trained tiny word-for-word model: input order
//! restored, results independent of batching for every strategy, forced prefixes, n-best,
//! token scores, alignments, empty and over-long lines, and the CLI's output formats.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::OnceLock;

use common::TempDir;
use transduce::data::corpus::CorpusSource;
use transduce::model::Preset;
use transduce::search::{Alignment, BeamOptions, Combination, DecodeOptions, SamplingOptions, Scores, Strategy};
use transduce::train::{train, ModelOverrides, Start, TrainConfig};
use transduce::translate::{Input, LoadOptions, Translator};

/// `n` random sentences of 2 to 7 words and their word-for-word translations.
fn sentences(n: usize, seed: u64) -> Vec<(String, String)> {
    common::word_for_word(n, 2..8, seed)
}

/// A model directory trained once per test run (a few seconds).
fn model_dir() -> &'static Path {
    static DIR: OnceLock<(TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| train_tiny(1)).1
}

/// The same training from another seed: an ensemble's second model, of the same vocabulary.
fn second_model_dir() -> &'static Path {
    static DIR: OnceLock<(TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| train_tiny(2)).1
}

/// A tiny word-for-word model trained from weights drawn with `seed`.
fn train_tiny(seed: u64) -> (TempDir, PathBuf) {
    let tmp = TempDir::new(&format!("translate-{seed}"));
    let dir = tmp.0.clone();
    let pairs = sentences(20000, 1);
    let (s, t) = (dir.join("train.fr"), dir.join("train.en"));
    std::fs::write(&s, pairs.iter().map(|p| format!("{}\n", p.0)).collect::<String>()).unwrap();
    std::fs::write(&t, pairs.iter().map(|p| format!("{}\n", p.1)).collect::<String>()).unwrap();
    let mut cfg = TrainConfig::new(CorpusSource::Aligned { source: s, target: t }, None, dir.join("model"));
    cfg.preset = Preset::Tiny;
    cfg.model = ModelOverrides { d_model: Some(64), heads: Some(4), ffn_dim: Some(128), ..Default::default() };
    cfg.vocab_size = 100;
    cfg.max_tokens = 600;
    cfg.lr = 1.5e-3;
    cfg.warmup = 100;
    cfg.label_smoothing = 0.0;
    cfg.max_updates = Some(800);
    cfg.seed = seed;
    cfg.log_every = 100;
    train(&cfg, Start::Fresh, &AtomicBool::new(false), |_, _| {}).unwrap();
    (tmp, dir.join("model"))
}

fn beam(k: usize, n_best: usize) -> Strategy {
    Strategy::Beam(BeamOptions { beam: k, n_best, ..BeamOptions::default() })
}

#[test]
fn translations_come_back_in_input_order_and_are_right() {
    let t = Translator::load(model_dir()).unwrap();
    let pairs = sentences(40, 7);
    let lines: Vec<&str> = pairs.iter().map(|p| p.0.as_str()).collect();
    let out = t.translate(&lines, &DecodeOptions::default()).unwrap();
    let right = out.iter().zip(&pairs).filter(|(o, p)| o.text() == p.1).count();
    assert!(right >= 36, "{right}/40 exact: {:?}", out.iter().map(|o| o.text()).collect::<Vec<_>>());
}

#[test]
fn batching_does_not_change_any_strategy() {
    let t = Translator::load(model_dir()).unwrap();
    let pairs = sentences(24, 9);
    let inputs: Vec<Input> = pairs.iter().enumerate().map(|(i, p)| Input::new(&p.0, i as u64)).collect();
    let sampling = Strategy::Sample(SamplingOptions { temperature: 1.5, top_k: 0, top_p: 0.95, seed: 5 });
    for strategy in [Strategy::Greedy, beam(5, 3), sampling] {
        let opts = DecodeOptions { strategy, ..DecodeOptions::default() };
        let together = t.translate_inputs(&inputs, &opts).unwrap();
        let alone = t.translate_inputs(&inputs, &DecodeOptions { max_tokens: 1, ..opts }).unwrap();
        let mut reversed: Vec<Input> = inputs.clone();
        reversed.reverse();
        let mut backwards = t.translate_inputs(&reversed, &DecodeOptions { max_tokens: 60, ..opts }).unwrap();
        backwards.reverse();
        for i in 0..inputs.len() {
            for other in [&alone[i], &backwards[i]] {
                assert_eq!(together[i].outputs.len(), other.outputs.len());
                for (a, b) in together[i].outputs.iter().zip(&other.outputs) {
                    assert_eq!(a.tokens, b.tokens, "{strategy:?}: sentence {i}");
                    assert!((a.score - b.score).abs() < 1e-4, "{strategy:?}: sentence {i}");
                }
            }
        }
    }
}

#[test]
fn sources_of_very_different_lengths_encode_in_groups_and_translate_as_alone() {
    use transduce::translate::length_groups::{length_groups, GROUP_COST_ROWS};
    let t = Translator::load(model_dir()).unwrap();
    // six sentences of 2 words and six of 40 (five sentences' words, repeated)
    let short = common::word_for_word(6, 2..3, 21);
    let long: Vec<String> = common::word_for_word(6 * 8, 5..6, 22)
        .chunks(8)
        .map(|c| c.iter().map(|p| p.0.as_str()).collect::<Vec<_>>().join(" "))
        .collect();
    let lines: Vec<&str> = short.iter().map(|p| p.0.as_str()).chain(long.iter().map(String::as_str)).collect();
    let lengths: Vec<usize> = lines.iter().map(|l| t.tokenizers.source.encode(l).unwrap().len() + 1).collect();
    assert!(length_groups(&lengths, GROUP_COST_ROWS).len() > 1, "the batch is encoded in groups: {lengths:?}");
    for strategy in [Strategy::Greedy, beam(4, 1)] {
        let opts = DecodeOptions { strategy, max_tokens: 100_000, ..DecodeOptions::default() };
        let together = t.translate(&lines, &opts).unwrap();
        for (i, line) in lines.iter().enumerate() {
            let alone = t.translate(&[*line], &opts).unwrap();
            assert_eq!(together[i].outputs[0].tokens, alone[0].outputs[0].tokens, "{strategy:?}: line {i}");
            let (a, b) = (together[i].outputs[0].score, alone[0].outputs[0].score);
            assert!((a - b).abs() < 1e-4, "{strategy:?}: line {i}: {a} against {b}");
        }
    }
}

#[test]
fn greedy_without_scores_writes_the_same_tokens() {
    use transduce::kernels::largest::Largest;
    let t = Translator::load(model_dir()).unwrap();
    let pairs = sentences(30, 13);
    let mut inputs: Vec<Input> = pairs.iter().enumerate().map(|(i, p)| Input::new(&p.0, i as u64)).collect();
    inputs[3].prefix = Some("the dog");
    // plain; a minimum length (EOS banned); repeated bigrams banned; a repetition penalty
    // (from the log-probabilities); an output limit (EOS forced); one sentence per batch
    let settings = [(0, 0, 1.0, 256, 4096), (12, 0, 1.0, 256, 4096), (0, 2, 1.0, 256, 4096), (0, 0, 1.3, 256, 4096)];
    for (min_len, no_repeat_ngram, repetition_penalty, max_len, max_tokens) in
        settings.into_iter().chain([(0, 0, 1.0, 3, 4096), (4, 1, 1.0, 256, 1)])
    {
        let scored = DecodeOptions {
            strategy: Strategy::Greedy,
            min_len,
            no_repeat_ngram,
            repetition_penalty,
            max_len,
            max_tokens,
            ..DecodeOptions::default()
        };
        let with = t.translate_inputs(&inputs, &scored).unwrap();
        let without = t.translate_inputs(&inputs, &DecodeOptions { scores: Scores::Omit, ..scored }).unwrap();
        for (i, (a, b)) in with.iter().zip(&without).enumerate() {
            let (a, b) = (a.best(), b.best());
            assert_eq!(a.tokens, b.tokens, "{scored:?}: sentence {i}");
            assert_eq!(a.token_scores.len(), b.token_scores.len(), "one (NaN) score per token and EOS");
            assert!(b.score.is_nan() && b.token_scores.iter().all(|s| s.is_nan()));
        }
        assert!(without[3].text().starts_with("the dog"));
    }
    // the model's output projection settles rows itself (not the fallback every time): the
    // token of the largest logit, as the full projection gives it
    let d = t.model.config.d_model;
    let hidden = candle_core::Tensor::randn(0f32, 1.0, (4, d), &candle_core::Device::Cpu).unwrap();
    let ctx = transduce::model::Ctx::eval();
    let found = t.model.largest_logits(&hidden, &[&[], &[], &[], &[]], &ctx).unwrap().expect("packed in halves");
    let logits = t.model.logits_rows(&hidden, &ctx).unwrap();
    let v = logits.len() / 4;
    for (row, f) in found.iter().enumerate() {
        let full = &logits[row * v..(row + 1) * v];
        let best = (0..v).fold(0, |b, j| if full[j] > full[b] { j } else { b });
        assert_eq!(*f, Largest::At(best as u32), "row {row}");
    }
    let int8 = Translator::load_with(
        model_dir(),
        transduce::translate::LoadOptions {
            quantization: transduce::translate::Quantization::Int8,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(int8.model.largest_logits(&hidden, &[&[], &[], &[], &[]], &ctx).unwrap().is_none());
}

#[test]
fn workers_change_nothing_but_the_speed() {
    let mut t = Translator::load(model_dir()).unwrap();
    let pairs = sentences(30, 11);
    let inputs: Vec<Input> = pairs.iter().enumerate().map(|(i, p)| Input::new(&p.0, i as u64)).collect();
    let sampling = Strategy::Sample(SamplingOptions { temperature: 1.5, top_k: 0, top_p: 0.95, seed: 5 });
    for strategy in [Strategy::Greedy, beam(4, 2), sampling] {
        // small batches, so the workers share many of them
        let opts = DecodeOptions { strategy, max_tokens: 40, ..DecodeOptions::default() };
        t.set_workers(1).unwrap();
        let one = t.translate_inputs(&inputs, &opts).unwrap();
        let groups: Vec<&[Input]> = inputs.chunks(7).collect();
        let one_groups = t.translate_groups(&groups, &opts).unwrap();
        t.set_workers(3).unwrap();
        assert_eq!(t.translate_inputs(&inputs, &opts).unwrap(), one, "{strategy:?}");
        assert_eq!(t.translate_groups(&groups, &opts).unwrap(), one_groups, "{strategy:?}");
        // a group is translated as the inputs alone would be
        for (group, out) in groups.iter().zip(&one_groups) {
            assert_eq!(&t.translate_inputs(group, &opts).unwrap(), out, "{strategy:?}");
        }
    }
}

#[test]
fn prefixes_n_best_scores_and_alignments() {
    let t = Translator::load(model_dir()).unwrap();
    let input = Input { prefix: Some("the dog"), ..Input::new("le chat mange une pomme", 0) };
    for strategy in [Strategy::Greedy, beam(4, 1)] {
        let out = t.translate_inputs(&[input], &DecodeOptions { strategy, ..DecodeOptions::default() }).unwrap();
        assert!(out[0].text().starts_with("the dog"), "{strategy:?}: {}", out[0].text());
    }
    let opts = DecodeOptions { strategy: beam(5, 3), alignment: Alignment::LastLayer, ..DecodeOptions::default() };
    let out = t.translate(&["le chat voit une maison"], &opts).unwrap();
    let outputs = &out[0].outputs;
    assert_eq!(outputs.len(), 3);
    assert!(outputs.windows(2).all(|w| w[0].score >= w[1].score));
    for o in outputs {
        assert_eq!(o.token_scores.len(), o.tokens.len() + 1, "one score per token and EOS");
        assert!(o.token_scores.iter().all(|s| *s <= 0.0));
        let links = o.alignment.as_ref().unwrap();
        let target_words = o.text.split_whitespace().count();
        assert_eq!(links.len(), target_words, "one link per target word: {links:?}");
        assert!(links.iter().all(|&(s, t)| s < 5 && t < target_words));
    }
    // greedy: the score is the sum of the token scores
    let g =
        t.translate(&["le chat"], &DecodeOptions { strategy: Strategy::Greedy, ..DecodeOptions::default() }).unwrap();
    let sum: f32 = g[0].best().token_scores.iter().sum();
    assert!((g[0].best().score - sum).abs() < 1e-4);
}

#[test]
fn empty_and_overlong_lines() {
    let t = Translator::load(model_dir()).unwrap();
    let long = vec!["chat"; 1500].join(" ");
    let out = t
        .translate(&["", "le chien", &long, "   "], &DecodeOptions { max_len: 20, ..DecodeOptions::default() })
        .unwrap();
    assert_eq!(out.len(), 4);
    assert_eq!(out[0].text(), "");
    assert_eq!(out[1].text(), "the dog");
    assert!(out[2].truncated && !out[1].truncated);
    assert!(out[2].best().tokens.len() <= 20);
    assert_eq!(out[3].text(), "");
}

fn transduce(args: &[&str], stdin: &str) -> (bool, String, String) {
    common::transduce(args, stdin.as_bytes())
}

#[test]
fn cli_formats_stream_in_order() {
    let m = model_dir().to_str().unwrap();
    let input = "le chat\n\nune pomme rouge\nle chien voit le chat\n";
    let (ok, out, err) = transduce(&["translate", "-m", m, "--window", "2"], input);
    assert!(ok, "{err}");
    assert_eq!(out, "the cat\n\nan apple red\nthe dog sees the cat\n");

    let (ok, out, err) = transduce(
        &["translate", "-m", m, "--format", "jsonl", "--n-best", "2", "--token-scores", "--alignments"],
        input,
    );
    assert!(ok, "{err}");
    let rows: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 4);
    assert_eq!((&rows[2]["id"], &rows[2]["text"]), (&serde_json::json!(2), &serde_json::json!("an apple red")));
    assert_eq!(rows[2]["n_best"].as_array().unwrap().len(), 2);
    let links = rows[2]["alignment"].as_str().unwrap();
    assert_eq!(links.split(' ').count(), 3, "one link per target word: {links}");
    assert!(links.split(' ').all(|l| l.split('-').all(|i| i.parse::<usize>().is_ok_and(|i| i < 3))), "{links}");
    assert_eq!(rows[2]["token_scores"].as_array().unwrap().len(), rows[2]["tokens"].as_array().unwrap().len() + 1);

    let (ok, out, _) = transduce(&["translate", "-m", m, "--format", "nbest", "--n-best", "3"], "le chat\n");
    assert!(ok);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with("0 ||| the cat ||| -"), "{out}");

    let (ok, pharaoh, _) = transduce(&["translate", "-m", m, "--format", "pharaoh"], "le chat\n\nune pomme rouge\n");
    assert!(ok);
    assert_eq!(pharaoh, format!("{}\n\n{links}\n", pharaoh.lines().next().unwrap()));

    let (ok, out, err) = transduce(&["translate", "-m", m, "--search", "greedy", "--prefix", "the dog"], "le chat\n");
    assert!(ok, "{err}");
    assert!(out.starts_with("the dog"), "{out}");

    // JSON lines without scores: the same tokens, no "score"; scores asked for otherwise: refused
    let greedy = ["translate", "-m", m, "--search", "greedy", "--format", "jsonl"];
    let (ok, scored, err) = transduce(&greedy, input);
    assert!(ok, "{err}");
    let (ok, unscored, err) = transduce(&[&greedy[..], &["--scores", "omit"]].concat(), input);
    assert!(ok, "{err}");
    for (a, b) in scored.lines().zip(unscored.lines()) {
        let (a, b): (serde_json::Value, serde_json::Value) =
            (serde_json::from_str(a).unwrap(), serde_json::from_str(b).unwrap());
        assert_eq!((&a["tokens"], &a["text"]), (&b["tokens"], &b["text"]));
        assert!(a["score"].is_number() && b.get("score").is_none(), "{a} {b}");
    }
    let (ok, _, err) = transduce(&[&greedy[..], &["--scores", "omit", "--token-scores"]].concat(), input);
    assert!(!ok && err.contains("option `scores`: per-token scores need the scores"), "{err}");
    let (ok, _, err) = transduce(&["translate", "-m", m, "--format", "nbest", "--scores", "omit"], input);
    assert!(!ok && err.contains("option `scores`: an n-best list writes scores"), "{err}");

    // a prefix file must have one line per input line
    let dir = TempDir::new("translate-cli");
    let prefixes = dir.write("prefixes", b"the\n");
    let (ok, _, err) =
        transduce(&["translate", "-m", m, "--prefix-file", prefixes.to_str().unwrap()], "le chat\nle chien\n");
    assert!(!ok && err.contains("fewer lines"), "{err}");
    // the library checks the options; the command names the flag
    let (ok, _, err) = transduce(&["translate", "-m", m, "--beam", "2", "--n-best", "3"], "le chat\n");
    assert!(!ok && err.contains("--n-best: 3 is not in 1..=2"), "{err}");
    let (ok, _, err) = transduce(&["translate", "-m", m, "--search", "sample", "--top-p", "1.5"], "le chat\n");
    assert!(!ok && err.contains("--top-p: 1.5 is not in (0, 1]"), "{err}");
    let (ok, _, err) = transduce(&["translate", "-m", m, "--alignments", "--alignment-layer", "9"], "le chat\n");
    assert!(!ok && err.contains("--alignment-layer: 9: the decoder has"), "{err}");
    let (ok, _, err) = transduce(&["translate", "-m", m, "--max-tokens", "0"], "le chat\n");
    assert!(!ok && err.contains("--max-tokens: must be at least 1"), "{err}");
    let (ok, _, err) = transduce(&["translate", "-m", m, "--beam-rule", "huggingface"], "le chat\n");
    assert!(!ok && err.contains("hugging-face"), "{err}");
}

#[test]
fn an_ensemble_of_two_seeds_translates_right_in_any_batching() {
    let dirs = [model_dir(), second_model_dir()];
    let single = Translator::load(dirs[0]).unwrap();
    let pairs = sentences(40, 11);
    let inputs: Vec<Input> = pairs.iter().enumerate().map(|(i, p)| Input::new(&p.0, i as u64)).collect();
    for combination in [Combination::Linear, Combination::LogLinear] {
        let t = Translator::load_ensemble(&dirs, LoadOptions::default(), combination).unwrap();
        assert_eq!(t.models(), 2);
        for strategy in [Strategy::Greedy, beam(5, 2)] {
            let opts = DecodeOptions { strategy, ..DecodeOptions::default() };
            let together = t.translate_inputs(&inputs, &opts).unwrap();
            let right = together.iter().zip(&pairs).filter(|(o, p)| o.text() == p.1).count();
            assert!(right >= 36, "{combination:?} {strategy:?}: {right}/40 exact");
            let alone = t.translate_inputs(&inputs, &DecodeOptions { max_tokens: 1, ..opts }).unwrap();
            for (i, (a, b)) in together.iter().zip(&alone).enumerate() {
                for (a, b) in a.outputs.iter().zip(&b.outputs) {
                    assert_eq!(a.tokens, b.tokens, "{combination:?} {strategy:?}: sentence {i}");
                    assert!((a.score - b.score).abs() < 1e-4, "{combination:?} {strategy:?}: sentence {i}");
                }
            }
            // the second model has its say: the scores are not the first model's alone
            let first = single.translate_inputs(&inputs, &opts).unwrap();
            let moved = first.iter().zip(&together).filter(|(a, b)| (a.best().score - b.best().score).abs() > 1e-3);
            assert!(moved.count() > 20, "{combination:?} {strategy:?}: the ensemble scores as its first model");
        }
    }
}

#[test]
fn an_ensemble_refuses_a_model_of_another_vocabulary_and_a_scheduler() {
    let hf = common::tiny_hf();
    let err = Translator::load_ensemble(&[model_dir(), hf.as_path()], LoadOptions::default(), Combination::Linear)
        .err()
        .expect("a Marian model's vocabulary is not the tiny model's")
        .to_string();
    assert!(err.contains(&hf.display().to_string()) && err.contains("cannot decode in an ensemble"), "{err}");
    let t = Translator::load_ensemble(&[model_dir(), second_model_dir()], LoadOptions::default(), Combination::Linear)
        .unwrap();
    let options = transduce::translate::scheduler::SchedulerOptions::default();
    let err = transduce::translate::scheduler::Scheduler::start(std::sync::Arc::new(t), options).err().unwrap();
    assert!(err.to_string().contains("ensemble of 2"), "{err}");
}

#[test]
fn cli_translates_with_an_ensemble() {
    let (a, b) = (model_dir().to_str().unwrap(), second_model_dir().to_str().unwrap());
    let input = "le chat\n\nune pomme rouge\nle chien voit le chat\n";
    let t = Translator::load_ensemble(&[a, b], LoadOptions::default(), Combination::LogLinear).unwrap();
    let beam5 = DecodeOptions { strategy: beam(5, 1), ..DecodeOptions::default() };
    let want: Vec<String> =
        t.translate(&input.lines().collect::<Vec<_>>(), &beam5).unwrap().iter().map(|o| o.text().to_string()).collect();
    for args in [vec!["-m", a, "-m", b], vec!["-m", a, b]] {
        let mut full = vec!["translate"];
        full.extend(args);
        full.extend(["--ensemble-mode", "log-linear", "--beam", "5"]);
        let (ok, out, err) = transduce(&full, input);
        assert!(ok, "{err}");
        assert_eq!(out, want.iter().map(|l| format!("{l}\n")).collect::<String>());
    }
    let (ok, _, err) = transduce(&["translate", "-m", a, "-m", "/nonexistent/model"], input);
    assert!(!ok && err.contains("/nonexistent/model"), "{err}");
}
