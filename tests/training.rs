//! The trainer on a small generated corpus: exact resume, gradient accumulation, checkpoint
//! averaging, stopping on a signal, atomic outputs.

mod common;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::Path;

use common::TempDir;
use std::sync::atomic::AtomicBool;

use candle_core::{DType, Device};
use rand::{Rng, SeedableRng};
use transduce::data::batching::Example;
use transduce::data::corpus::{CorpusSource, FilterCounts};
use transduce::data::Batch;
use transduce::model::config::{Dropout, ModelConfig, Preset};
use transduce::model::{Ctx, TrainableModel};
use transduce::text::languages::Tags;
use transduce::text::SubwordModel;
use transduce::train::corpus::{ExampleStream, Segmentation, SubwordSamplers};
use transduce::train::{average_checkpoints, train, ModelOverrides, ScheduleKind, Start, StopReason, TrainConfig};
use transduce::train::{AdamWConfig, InverseSqrt, LrSchedule, TrainStep};
use transduce::ModelDir;

/// A word-for-word "translation" corpus.
fn write_corpus(dir: &Path, lines: usize, seed: u64) -> CorpusSource {
    let src_words = ["le", "chat", "chien", "mange", "voit", "une", "pomme", "maison", "grand", "petit", "rouge"];
    let tgt_words = ["the", "cat", "dog", "eats", "sees", "an", "apple", "house", "big", "small", "red"];
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (mut src, mut tgt) = (String::new(), String::new());
    for _ in 0..lines {
        let idx: Vec<usize> = (0..rng.gen_range(2..8)).map(|_| rng.gen_range(0..src_words.len())).collect();
        src += &(idx.iter().map(|&i| src_words[i]).collect::<Vec<_>>().join(" ") + "\n");
        tgt += &(idx.iter().map(|&i| tgt_words[i]).collect::<Vec<_>>().join(" ") + "\n");
    }
    let (source, target) = (dir.join(format!("c{seed}.fr")), dir.join(format!("c{seed}.en")));
    std::fs::write(&source, src).unwrap();
    std::fs::write(&target, tgt).unwrap();
    CorpusSource::Aligned { source, target }
}

fn config(dir: &Path, out: &str) -> TrainConfig {
    let train_files = write_corpus(dir, 300, 1);
    let valid = write_corpus(dir, 20, 2);
    let mut cfg = TrainConfig::new(train_files, Some(valid), dir.join(out));
    cfg.preset = Preset::Tiny;
    cfg.vocab_size = 40;
    cfg.dropout = Some(0.1);
    cfg.max_tokens = 120;
    cfg.window = 1000;
    cfg.lr = 3e-3;
    cfg.warmup = 5;
    cfg.valid_every = 3;
    cfg.log_every = 1;
    cfg.keep_last = 2;
    cfg
}

#[test]
fn resumed_training_continues_exactly_where_it_stopped() {
    let t = TempDir::new("training-resume");
    let never = AtomicBool::new(false);
    let mut a = config(&t.0, "a");
    a.max_updates = Some(8);
    let full = train(&a, Start::Fresh, &never, |_, _| {}).unwrap();
    assert_eq!(full.stop, StopReason::MaxUpdates);
    assert_eq!(full.losses.len(), 8);

    // same tokenizer, stop after 5 updates, then resume to 8
    let mut b = config(&t.0, "b");
    std::fs::create_dir_all(&b.out).unwrap();
    std::fs::copy(a.out.join("tokenizer.json"), b.out.join("tokenizer.json")).unwrap();
    b.max_updates = Some(5);
    let first = train(&b, Start::Fresh, &never, |_, _| {}).unwrap();
    assert_eq!(first.losses, full.losses[..5].to_vec());
    b.max_updates = Some(8);
    let second = train(&b, Start::Resume, &never, |_, _| {}).unwrap();
    assert_eq!(second.losses.iter().map(|l| l.0).collect::<Vec<_>>(), vec![6, 7, 8]);
    for ((u, resumed), (_, uninterrupted)) in second.losses.iter().zip(&full.losses[5..]) {
        assert!((resumed - uninterrupted).abs() < 1e-6, "update {u}: {resumed} after resume, {uninterrupted} without");
    }
    // outputs are complete: no partial checkpoint or temporary file is left behind
    let cks = ModelDir::open(&b.out).unwrap().checkpoints().unwrap();
    assert_eq!(cks.len(), 2, "{cks:?}");
    for entry in std::fs::read_dir(b.out.join("checkpoints")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(name.starts_with("update-") && !name.contains("partial"), "{name}");
    }
    for f in ["config.json", "model.safetensors", "tokenizer.json", "training.json", "metrics.jsonl", "curves.svg"] {
        assert!(b.out.join(f).exists(), "{f} missing");
    }
    assert!(!b.out.join("model.safetensors.tmp").exists());
    let metrics = std::fs::read_to_string(b.out.join("metrics.jsonl")).unwrap();
    assert!(metrics.lines().any(|l| l.contains("\"kind\":\"valid\"") && l.contains("bleu")), "{metrics}");
}

#[test]
fn a_run_with_two_workers_records_them_and_resumes_exactly() {
    let t = TempDir::new("training-workers");
    let never = AtomicBool::new(false);
    let mut a = config(&t.0, "a");
    a.workers = Some(2);
    a.max_updates = Some(6);
    let full = train(&a, Start::Fresh, &never, |_, _| {}).unwrap();
    assert_eq!(full.losses.len(), 6);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.out.join("training.json")).unwrap()).unwrap();
    assert_eq!(saved["workers"], 2, "{saved}");
    let mut b = config(&t.0, "b");
    b.workers = Some(2);
    std::fs::create_dir_all(&b.out).unwrap();
    std::fs::copy(a.out.join("tokenizer.json"), b.out.join("tokenizer.json")).unwrap();
    b.max_updates = Some(3);
    let first = train(&b, Start::Fresh, &never, |_, _| {}).unwrap();
    assert_eq!(first.losses, full.losses[..3].to_vec());
    b.max_updates = Some(6);
    let second = train(&b, Start::Resume, &never, |_, _| {}).unwrap();
    for ((u, resumed), (_, uninterrupted)) in second.losses.iter().zip(&full.losses[3..]) {
        assert!((resumed - uninterrupted).abs() < 1e-6, "update {u}: {resumed} after resume, {uninterrupted} without");
    }
}

#[test]
fn checkpoints_without_validation_data_or_metrics_lines_work() {
    let t = TempDir::new("training-no-valid");
    let never = AtomicBool::new(false);
    let mut cfg = config(&t.0, "nv");
    cfg.valid = None;
    cfg.log_every = 100;
    cfg.valid_every = 2;
    cfg.max_updates = Some(3);
    let summary = train(&cfg, Start::Fresh, &never, |_, _| {}).unwrap();
    assert_eq!(summary.state.updates, 3);
    assert!(summary.last_validation.is_none());
    assert!(cfg.out.join("model.safetensors").exists() && cfg.out.join("curves.svg").exists());
}

#[test]
fn a_stop_request_saves_a_checkpoint_and_ends_cleanly() {
    let t = TempDir::new("training-signal");
    let stop = AtomicBool::new(false);
    let mut cfg = config(&t.0, "s");
    cfg.max_updates = Some(100);
    let summary = train(&cfg, Start::Fresh, &stop, |state, _| {
        if state.updates == 2 {
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    })
    .unwrap();
    assert_eq!(summary.stop, StopReason::Signal);
    assert_eq!(summary.state.updates, 2);
    let last = ModelDir::open(&cfg.out).unwrap().checkpoints().unwrap().pop().unwrap();
    assert!(last.path.ends_with("update-000000002"), "{last:?}");
    assert!(summary.state.filter_counts.read == 0 || summary.state.filter_counts.kept > 0);
}

#[test]
fn patience_stops_training_when_validation_stops_improving() {
    let t = TempDir::new("training-patience");
    let never = AtomicBool::new(false);
    let mut cfg = config(&t.0, "p");
    // a learning rate of zero: validation can never improve after the first
    cfg.lr = 0.0;
    cfg.valid_every = 1;
    cfg.patience = Some(2);
    cfg.max_updates = Some(50);
    let summary = train(&cfg, Start::Fresh, &never, |_, _| {}).unwrap();
    assert_eq!(summary.stop, StopReason::EarlyStopping);
    assert_eq!(summary.state.updates, 3, "best at 1, no improvement at 2 and 3");
}

#[test]
fn averaging_takes_the_mean_of_the_last_checkpoints() {
    let t = TempDir::new("training-average");
    let never = AtomicBool::new(false);
    let mut cfg = config(&t.0, "avg");
    cfg.max_updates = Some(6);
    train(&cfg, Start::Fresh, &never, |_, _| {}).unwrap();
    let cks = ModelDir::open(&cfg.out).unwrap().checkpoints().unwrap();
    assert_eq!(cks.len(), 2);
    let read = |p: &Path| transduce::model::weights::read_safetensors(p, &Device::Cpu).unwrap();
    let (a, b) = (read(&cks[0].weights()), read(&cks[1].weights()));
    assert_eq!(average_checkpoints(&cfg.out, 2).unwrap(), 2);
    let avg = read(&cfg.out.join("model.safetensors"));
    for (name, t) in &avg {
        let want = ((&a[name] + &b[name]).unwrap() / 2.0).unwrap();
        let d: f32 = (t - want).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap();
        assert!(d < 1e-6, "{name}: {d}");
    }
}

#[test]
fn accumulated_gradients_equal_one_batch_of_the_same_examples() {
    let mut config = ModelConfig::preset(Preset::Tiny, 30);
    config.dropout = Dropout::uniform(0.0);
    let p: Vec<(&[u32], &[u32])> = vec![(&[5, 6, 7], &[8, 9]), (&[10, 11], &[12, 13, 14, 15]), (&[16], &[17, 18, 19])];
    let dev = Device::Cpu;
    let run = |batches: Vec<Batch>| {
        let model = TrainableModel::init(&config, 3, DType::F32, &dev).unwrap();
        let schedule = InverseSqrt { peak_lr: 1e-2, warmup: 1 };
        let mut step =
            TrainStep::new(&model, AdamWConfig::default(), LrSchedule::InverseSqrt(schedule), 0.1, 0.0).unwrap();
        let stats = step.step_accumulated(&model, &batches, &Ctx::train(0)).unwrap();
        let w = model.named_vars().into_iter().find(|(n, _)| n == "shared.weight").unwrap().1;
        (stats.loss, stats.grad_norm, w.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap())
    };
    let whole = run(vec![Batch::new(&p, vec![0, 1, 2], config.special, &dev).unwrap()]);
    let split = run(vec![
        Batch::new(&p[..1], vec![0], config.special, &dev).unwrap(),
        Batch::new(&p[1..], vec![1, 2], config.special, &dev).unwrap(),
    ]);
    assert!((whole.0 - split.0).abs() < 1e-5, "loss {} vs {}", whole.0, split.0);
    assert!((whole.1 - split.1).abs() < 1e-4, "grad norm {} vs {}", whole.1, split.1);
    for (a, b) in whole.2.iter().zip(&split.2) {
        assert!((a - b).abs() < 1e-5);
    }
}

#[test]
fn workers_make_the_update_of_their_shards_one_after_another_and_repeat_it() {
    let p: Vec<(&[u32], &[u32])> = vec![(&[5, 6, 7], &[8, 9]), (&[10, 11], &[12, 13, 14, 15]), (&[16], &[17, 18, 19])];
    let dev = Device::Cpu;
    let run = |dropout: f32, workers: usize| {
        let mut config = ModelConfig::preset(Preset::Tiny, 30);
        config.dropout = Dropout::uniform(dropout);
        let shards = vec![
            Batch::new(&p[..1], vec![0], config.special, &dev).unwrap(),
            Batch::new(&p[1..], vec![1, 2], config.special, &dev).unwrap(),
        ];
        let model = TrainableModel::init(&config, 3, DType::F32, &dev).unwrap();
        let schedule = InverseSqrt { peak_lr: 1e-2, warmup: 1 };
        let mut step = TrainStep::new(&model, AdamWConfig::default(), LrSchedule::InverseSqrt(schedule), 0.1, 1.0)
            .unwrap()
            .with_workers(workers)
            .unwrap();
        assert_eq!(step.workers(), workers);
        let stats: Vec<_> = (0..3).map(|u| step.step_accumulated(&model, &shards, &Ctx::train(u)).unwrap()).collect();
        let weights: Vec<Vec<f32>> = model
            .named_vars()
            .into_iter()
            .map(|(_, v)| v.as_tensor().flatten_all().unwrap().to_vec1().unwrap())
            .collect();
        (stats, weights)
    };
    let close = |a: &[Vec<f32>], b: &[Vec<f32>], tolerance: f32| {
        a.iter().flatten().zip(b.iter().flatten()).all(|(x, y)| (x - y).abs() <= tolerance)
    };
    // without dropout two workers make the sequential updates, up to the order of float sums
    let (one, one_w) = run(0.0, 1);
    let (two, two_w) = run(0.0, 2);
    for (a, b) in one.iter().zip(&two) {
        assert!((a.loss - b.loss).abs() < 1e-5 && (a.grad_norm - b.grad_norm).abs() < 1e-4, "{a:?} vs {b:?}");
        assert_eq!(a.ntokens, b.ntokens);
    }
    assert!(close(&one_w, &two_w, 1e-5));
    // with dropout each shard draws from its own stream forked from the update's: the same
    // updates on every run, whichever worker finishes first
    let (first, first_w) = run(0.3, 2);
    let (again, again_w) = run(0.3, 2);
    assert_eq!(first.iter().map(|s| s.loss).collect::<Vec<_>>(), again.iter().map(|s| s.loss).collect::<Vec<_>>());
    assert!(close(&first_w, &again_w, 0.0));
    assert!(!close(&first_w, &two_w, 1e-4), "dropout changes the updates");
}

#[test]
fn r_drop_adds_the_copies_divergence_and_is_the_plain_step_without_dropout() {
    let p: Vec<(&[u32], &[u32])> = vec![(&[5, 6, 7], &[8, 9]), (&[10, 11], &[12, 13, 14, 15]), (&[16], &[17, 18, 19])];
    let dev = Device::Cpu;
    let run = |dropout: f32, r_drop: f64| {
        let mut config = ModelConfig::preset(Preset::Tiny, 30);
        config.dropout = Dropout::uniform(dropout);
        let batch = Batch::new(&p, vec![0, 1, 2], config.special, &dev).unwrap();
        let model = TrainableModel::init(&config, 3, DType::F32, &dev).unwrap();
        let schedule = InverseSqrt { peak_lr: 1e-2, warmup: 1 };
        let mut step = TrainStep::new(&model, AdamWConfig::default(), LrSchedule::InverseSqrt(schedule), 0.1, 0.0)
            .unwrap()
            .with_r_drop(r_drop);
        let stats: Vec<_> = (0..3).map(|u| step.step(&model, &batch, &Ctx::train(u)).unwrap()).collect();
        let w = model.named_vars().into_iter().find(|(n, _)| n == "shared.weight").unwrap().1;
        (stats, w.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap())
    };
    // no dropout: both copies agree, the divergence is 0 and the updates are the plain ones
    let (plain, plain_w) = run(0.0, 0.0);
    let (twice, twice_w) = run(0.0, 1.0);
    for (a, b) in plain.iter().zip(&twice) {
        assert!(a.divergence.is_none());
        assert!(b.divergence.unwrap().abs() < 1e-6, "{:?}", b.divergence);
        assert!((a.loss - b.loss).abs() < 1e-5 && (a.grad_norm - b.grad_norm).abs() < 1e-4, "{a:?} vs {b:?}");
        assert_eq!(a.ntokens, b.ntokens);
    }
    assert!(plain_w.iter().zip(&twice_w).all(|(a, b)| (a - b).abs() < 1e-5));
    // with dropout the copies differ: the loss is their cross-entropy plus α times the divergence
    let (one, _) = run(0.3, 1.0);
    let (five, _) = run(0.3, 5.0);
    let (d1, d5) = (one[0].divergence.unwrap(), five[0].divergence.unwrap());
    assert!(d1 > 1e-3, "{d1}");
    // the first update's forward pass is the same for both weights: only α differs
    assert!((d1 - d5).abs() < 1e-6);
    assert!(((five[0].loss - one[0].loss) - 4.0 * d1).abs() < 1e-4, "{} {} {d1}", five[0].loss, one[0].loss);
    assert!((one[0].nll - five[0].nll).abs() < 1e-6);
}

#[test]
fn an_r_drop_run_logs_its_divergence_saves_its_weight_and_resumes_exactly() {
    let t = TempDir::new("training-r-drop");
    let never = AtomicBool::new(false);
    let mut a = config(&t.0, "a");
    a.r_drop = 2.0;
    a.max_updates = Some(6);
    let full = train(&a, Start::Fresh, &never, |_, _| {}).unwrap();
    let metrics = std::fs::read_to_string(a.out.join("metrics.jsonl")).unwrap();
    let divergences: Vec<f64> = metrics
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "train")
        .map(|v| v["r_drop_kl"].as_f64().expect("every update logs the divergence"))
        .collect();
    assert_eq!(divergences.len(), 6);
    assert!(divergences.iter().all(|&d| d > 0.0), "{divergences:?}");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.out.join("training.json")).unwrap()).unwrap();
    assert_eq!(saved["r_drop"], serde_json::json!(2.0));

    // stopped after 3 updates and resumed: the same losses as without the stop
    let mut b = config(&t.0, "b");
    b.r_drop = 2.0;
    std::fs::create_dir_all(&b.out).unwrap();
    std::fs::copy(a.out.join("tokenizer.json"), b.out.join("tokenizer.json")).unwrap();
    b.max_updates = Some(3);
    train(&b, Start::Fresh, &never, |_, _| {}).unwrap();
    b.max_updates = Some(6);
    let resumed = train(&b, Start::Resume, &never, |_, _| {}).unwrap();
    for ((u, r), (_, f)) in resumed.losses.iter().zip(&full.losses[3..]) {
        assert!((r - f).abs() < 1e-6, "update {u}: {r} after resume, {f} without");
    }

    for bad in [-1.0, f64::NAN] {
        let mut wrong = config(&t.0, "wrong");
        wrong.r_drop = bad;
        let e = train(&wrong, Start::Fresh, &never, |_, _| {}).unwrap_err().to_string();
        assert!(e.contains("r_drop"), "{e}");
    }
}

#[test]
fn subword_sampling_draws_other_segmentations_of_the_same_text_each_epoch_and_resumes_exactly() {
    let t = TempDir::new("training-subword-sampling");
    let never = AtomicBool::new(false);
    let mut a = config(&t.0, "a");
    a.subword_sampling = 0.1;
    // about ten batches a pass: the run crosses epochs, each with its own draws
    a.max_tokens = 600;
    // a schedule that does not follow the budget: the stopped run's first updates are the full run's
    a.lr_schedule = Some(ScheduleKind::InverseSqrt);
    a.max_updates = Some(30);
    let full = train(&a, Start::Fresh, &never, |_, _| {}).unwrap();
    assert!(full.state.epoch >= 1, "the run crosses an epoch: {:?}", full.state);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.out.join("training.json")).unwrap()).unwrap();
    assert_eq!(saved["subword_sampling"], serde_json::json!(0.1));

    let tok = ModelDir::open(&a.out).unwrap().tokenizers().unwrap();
    let samplers = SubwordSamplers::new(&a, &tok).unwrap().expect("sampling is on");
    let tags = Tags::default();
    let counts = Cell::new(FilterCounts::default());
    let epoch = |segmentation| -> BTreeMap<usize, Example> {
        let stream = ExampleStream::open(&a.train, &tok, segmentation, &tags, a.filter, &counts).unwrap();
        stream.map(|e| (e.index, e)).collect()
    };
    let best = epoch(Segmentation::Best);
    let first = epoch(Segmentation::Sampled { samplers: &samplers, epoch: 0 });
    assert_eq!(first, epoch(Segmentation::Sampled { samplers: &samplers, epoch: 0 }), "the same draws again");
    let second = epoch(Segmentation::Sampled { samplers: &samplers, epoch: 1 });
    let decoded = |ids: &[u32]| tok.source.decode(ids).unwrap();
    let mut resegmented = 0;
    for (index, b) in &best {
        for drawn in [&first, &second] {
            let Some(d) = drawn.get(index) else { continue };
            // another segmentation of the same text
            assert_eq!(decoded(&d.source), decoded(&b.source), "line {index}");
            assert_eq!(decoded(&d.target), decoded(&b.target), "line {index}");
            resegmented += usize::from(d.source != b.source || d.target != b.target);
        }
    }
    assert!(resegmented > best.len() / 2, "{resegmented} of {} pairs drawn twice differ", best.len());
    let differ = first.iter().filter(|(i, e)| second.get(*i).is_some_and(|s| s != *e)).count();
    assert!(differ > first.len() / 4, "epochs 0 and 1 differ in {differ} of {} pairs", first.len());

    // stopped after 12 updates and resumed: the same batches and losses as without the stop
    let mut b = config(&t.0, "b");
    b.subword_sampling = 0.1;
    b.max_tokens = 600;
    b.lr_schedule = Some(ScheduleKind::InverseSqrt);
    std::fs::create_dir_all(&b.out).unwrap();
    std::fs::copy(a.out.join("tokenizer.json"), b.out.join("tokenizer.json")).unwrap();
    b.max_updates = Some(12);
    train(&b, Start::Fresh, &never, |_, _| {}).unwrap();
    b.max_updates = Some(30);
    let resumed = train(&b, Start::Resume, &never, |_, _| {}).unwrap();
    assert_eq!(resumed.losses.len(), 18);
    for ((u, r), (_, f)) in resumed.losses.iter().zip(&full.losses[12..]) {
        assert!((r - f).abs() < 1e-6, "update {u}: {r} after resume, {f} without");
    }

    // only a unigram tokenizer has segmentations to draw
    let mut bpe = config(&t.0, "bpe");
    bpe.subword = SubwordModel::Bpe;
    bpe.subword_sampling = 0.1;
    bpe.max_updates = Some(1);
    let e = train(&bpe, Start::Fresh, &never, |_, _| {}).unwrap_err().to_string();
    assert!(e.contains("subword_sampling") && e.contains("unigram"), "{e}");
}

#[test]
fn per_side_vocabularies_give_separate_tokenizers_and_embeddings() {
    use transduce::model::config::{Tying, Vocab};
    use transduce::train::VocabSharing;
    let t = TempDir::new("training-per-side");
    let never = AtomicBool::new(false);
    let mut cfg = config(&t.0, "ps");
    cfg.vocab_sharing = VocabSharing::PerSide;
    cfg.vocab_size = 25;
    cfg.max_updates = Some(3);
    let summary = train(&cfg, Start::Fresh, &never, |_, _| {}).unwrap();
    assert_eq!(summary.state.updates, 3);
    assert!(summary.last_validation.is_some());
    for f in ["source_tokenizer.json", "target_tokenizer.json"] {
        assert!(cfg.out.join(f).exists(), "{f}");
    }
    assert!(!cfg.out.join("tokenizer.json").exists());
    let config = ModelConfig::load(&cfg.out.join("config.json")).unwrap();
    assert!(matches!(config.vocab, Vocab::Separate { .. }), "{:?}", config.vocab);
    assert_eq!(config.tying, Tying::DecoderInputOutput);
}

#[test]
fn loss_curve_writes_the_state_it_trains_from_and_repeats_exactly() {
    use transduce::model::config::Preset;
    use transduce_cli::bench::loss_curve::LossCurve;
    use transduce_cli::bench::Workload;
    let tmp = TempDir::new("loss-curve");
    let dir = tmp.0.clone();
    let curve = LossCurve {
        preset: Preset::Tiny,
        workload: Workload { vocab: 50, batch: 8, src_len: 6, tgt_len: 5 },
        steps: 40,
        dropout: 0.0,
    };
    let losses = curve.run(&dir).unwrap();
    assert_eq!(losses.len(), 40);
    assert!(losses.windows(2).all(|w| w[1] < w[0]) && losses[39] < losses[0] - 0.5, "one batch: {losses:?}");
    assert_eq!(curve.run(&dir).unwrap(), losses, "dropout 0 is deterministic");
    let init = candle_core::safetensors::load(dir.join("init.safetensors"), &candle_core::Device::Cpu).unwrap();
    assert!(init.contains_key("shared.weight") && init.contains_key("lm_head.weight"), "{:?}", init.keys());
    let batch = candle_core::safetensors::load(dir.join("batch.safetensors"), &candle_core::Device::Cpu).unwrap();
    let tgt_out = batch["tgt_out"].flatten_all().unwrap().to_vec1::<i64>().unwrap();
    assert_eq!(batch["src"].dims(), [8, 6]);
    assert_eq!(tgt_out.len(), 8 * 6);
    assert!(tgt_out.iter().all(|&t| t != 0), "no padding in the batch");
}

/// Every tensor of a safetensors file, as f32 values by name.
fn tensors(path: &Path) -> std::collections::BTreeMap<String, Vec<f32>> {
    candle_core::safetensors::load(path, &Device::Cpu)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, v.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect()
}

#[test]
fn a_moving_average_of_the_weights_is_saved_and_resumed_exactly() {
    let t = TempDir::new("training-ema");
    let never = AtomicBool::new(false);
    let ema = |out: &str, updates: usize| {
        let mut cfg = config(&t.0, out);
        cfg.valid = None;
        cfg.valid_every = 4;
        cfg.ema = Some(0.9);
        // the same rates whatever the budget, so a run cut at 4 and resumed to 8 is comparable
        cfg.lr_schedule = Some(ScheduleKind::InverseSqrt);
        cfg.max_updates = Some(updates);
        cfg
    };
    let a = ema("a", 8);
    train(&a, Start::Fresh, &never, |_, _| {}).unwrap();
    let saved = tensors(&a.out.join("model.safetensors"));
    let last = ModelDir::open(&a.out).unwrap().checkpoints().unwrap().pop().unwrap();
    let (weights, optimizer) = (tensors(&last.weights()), tensors(&last.optimizer()));
    // the model written is the average the checkpoint keeps, not the last weights
    for (name, values) in &saved {
        assert_eq!(values, &optimizer[&format!("ema.{name}")], "{name}");
    }
    assert!(saved.iter().any(|(name, values)| values != &weights[name]), "the average equals the last weights");

    // stopped at 4 and resumed to 8: the same average, bit for bit
    let mut b = ema("b", 4);
    std::fs::create_dir_all(&b.out).unwrap();
    std::fs::copy(a.out.join("tokenizer.json"), b.out.join("tokenizer.json")).unwrap();
    train(&b, Start::Fresh, &never, |_, _| {}).unwrap();
    b.max_updates = Some(8);
    train(&b, Start::Resume, &never, |_, _| {}).unwrap();
    assert_eq!(tensors(&b.out.join("model.safetensors")), saved);

    // a decay outside (0, 1) is refused naming the option
    let mut bad = ema("bad", 1);
    bad.ema = Some(1.0);
    let err = train(&bad, Start::Fresh, &never, |_, _| {}).unwrap_err().to_string();
    assert!(err.contains("ema"), "{err}");
}

/// The updates of `metrics.jsonl`'s validation records.
fn validated_updates(out: &Path) -> Vec<u64> {
    common::metrics_records(out, "valid").iter().map(|r| r["update"].as_u64().unwrap()).collect()
}

#[test]
fn the_updates_after_the_last_validation_are_validated_at_the_end() {
    let t = TempDir::new("training-final-validation");
    let never = AtomicBool::new(false);
    // 7 updates, validation every 3: at 3, 6, and the last one
    let mut cfg = config(&t.0, "seven");
    cfg.max_updates = Some(7);
    let summary = train(&cfg, Start::Fresh, &never, |_, _| {}).unwrap();
    assert_eq!(validated_updates(&cfg.out), vec![3, 6, 7]);
    assert!(summary.last_validation.is_some());
    // ending on a validation: none more
    let mut cfg = config(&t.0, "six");
    cfg.max_updates = Some(6);
    train(&cfg, Start::Fresh, &never, |_, _| {}).unwrap();
    assert_eq!(validated_updates(&cfg.out), vec![3, 6]);
    // a stop request ends at once, without one
    let mut cfg = config(&t.0, "stopped");
    cfg.max_updates = Some(50);
    let stop = AtomicBool::new(false);
    let summary = train(&cfg, Start::Fresh, &stop, |state, _| {
        if state.updates == 4 {
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    })
    .unwrap();
    assert_eq!(summary.stop, StopReason::Signal);
    assert_eq!(validated_updates(&cfg.out), vec![3]);
}

/// A run from scratch without a dropout of its own: the `small` preset (dropout 0.1), narrowed
/// to train fast, and no validation.
fn budgeted(dir: &Path, out: &str) -> TrainConfig {
    let mut cfg = config(dir, out);
    cfg.preset = Preset::Small;
    cfg.model = ModelOverrides {
        d_model: Some(16),
        heads: Some(2),
        ffn_dim: Some(32),
        encoder_layers: Some(1),
        decoder_layers: Some(1),
        ..ModelOverrides::default()
    };
    cfg.dropout = None;
    cfg.valid_every = 0;
    cfg
}

/// The dropout the model directory's `config.json` records on sub-layers (by default attention
/// and the feed-forward activation drop nothing).
fn saved_dropout(out: &Path) -> f32 {
    let c = ModelConfig::load(&out.join("config.json")).unwrap();
    assert!(c.dropout.attention == 0.0 && c.dropout.ffn == 0.0, "{:?}", c.dropout);
    c.dropout.residual
}

#[test]
fn without_a_dropout_of_its_own_a_run_gets_more_the_more_passes_its_budget_allows() {
    let t = TempDir::new("training-budget-dropout");
    let never = AtomicBool::new(false);
    // stopped before the first update: the projection and the model are made, nothing trained
    let stopped = AtomicBool::new(true);
    let project = |cfg: &TrainConfig| {
        let summary = train(cfg, Start::Fresh, &stopped, |_, _| {}).unwrap();
        assert_eq!(summary.stop, StopReason::Signal);
        summary.projection.expect("a projection")
    };
    // one pass at most: the whole corpus is counted
    let mut one = budgeted(&t.0, "one");
    one.max_updates = Some(10_000);
    one.max_epochs = Some(1);
    let p = project(&one);
    let counted = p.batches_per_epoch.unwrap();
    assert!(counted.whole_corpus && counted.batches > 5, "{p:?}");
    assert_eq!(p.epochs, 1.0);
    assert_eq!((p.dropout, saved_dropout(&one.out)), (0.1, 0.1));
    let batches = counted.batches;

    // the passes an update budget allows decide: 12 get 0.2, 25 get 0.3, 45 get 0.4
    for (name, passes, dropout) in [("twelve", 12, 0.2), ("many", 25, 0.3), ("most", 45, 0.4)] {
        let mut cfg = budgeted(&t.0, name);
        cfg.max_updates = Some(passes * batches);
        let p = project(&cfg);
        assert!((p.epochs - passes as f64).abs() < 1e-9 && p.seconds_per_update.is_none(), "{p:?}");
        assert_eq!((p.dropout, saved_dropout(&cfg.out)), (dropout, dropout), "{name}");
        let record = &common::metrics_records(&cfg.out, "budget")[0];
        assert_eq!(record["projection"]["dropout"].as_f64().unwrap() as f32, dropout, "{record}");
    }
    // fewer updates than a tenth of the corpus's batches: counting stops, under ten passes
    let mut few = budgeted(&t.0, "few");
    few.max_updates = Some(2);
    let p = project(&few);
    assert!(!p.batches_per_epoch.unwrap().whole_corpus && p.epochs <= 1.0, "{p:?}");
    assert_eq!(p.dropout, 0.1);

    // a time budget: a speed probe times updates, and its seconds count towards the budget
    let mut clock = budgeted(&t.0, "clock");
    clock.max_time_s = Some(3600.0);
    let summary = train(&clock, Start::Fresh, &stopped, |_, _| {}).unwrap();
    let p = summary.projection.unwrap();
    let per = p.seconds_per_update.unwrap();
    assert!(per > 0.0 && per < 1.0, "{p:?}");
    let updates = p.updates.unwrap();
    assert!(updates * per <= 3600.0 && updates * per > 3600.0 - p.seconds - 1e-6, "{p:?}");
    assert!(p.epochs > 40.0 && p.dropout == 0.4, "a narrow model has time for many passes: {p:?}");
    assert!(summary.state.elapsed_s >= p.seconds && p.seconds > 0.0, "{} s, {p:?}", summary.state.elapsed_s);
    assert_eq!(saved_dropout(&clock.out), 0.4);

    // asked for: kept, nothing projected
    let mut asked = budgeted(&t.0, "asked");
    asked.max_updates = Some(25 * batches);
    asked.dropout = Some(0.15);
    assert!(train(&asked, Start::Fresh, &stopped, |_, _| {}).unwrap().projection.is_none());
    assert_eq!(saved_dropout(&asked.out), 0.15);
    let metrics = asked.out.join("metrics.jsonl");
    assert!(!metrics.exists() || common::metrics_records(&asked.out, "budget").is_empty());

    // a resumed run keeps the dropout it started with, whatever its new budget
    let mut resumed = budgeted(&t.0, "resumed");
    resumed.max_updates = Some(2);
    train(&resumed, Start::Fresh, &never, |_, _| {}).unwrap();
    assert_eq!(saved_dropout(&resumed.out), 0.1);
    resumed.max_updates = Some(25 * batches);
    assert!(train(&resumed, Start::Resume, &stopped, |_, _| {}).unwrap().projection.is_none());
    assert_eq!(saved_dropout(&resumed.out), 0.1);
    assert_eq!(common::metrics_records(&resumed.out, "budget").len(), 1, "the first run's record, kept");

    // a preset without dropout stays without
    let mut tiny = config(&t.0, "tiny");
    tiny.dropout = None;
    tiny.max_updates = Some(25 * batches);
    assert!(train(&tiny, Start::Fresh, &stopped, |_, _| {}).unwrap().projection.is_none());
    assert_eq!(saved_dropout(&tiny.out), 0.0);
}

#[test]
fn attention_and_activation_dropout_replace_their_parts_of_any_dropout() {
    let t = TempDir::new("training-dropout-parts");
    let stopped = AtomicBool::new(true);
    let saved = |cfg: &TrainConfig| {
        train(cfg, Start::Fresh, &stopped, |_, _| {}).unwrap();
        let d = ModelConfig::load(&cfg.out.join("config.json")).unwrap().dropout;
        (d.residual, d.attention, d.ffn)
    };
    // by default the budget chooses the sub-layers' dropout (25 passes: 0.3) and attention and
    // the feed-forward activation drop nothing
    let mut chosen = budgeted(&t.0, "chosen");
    chosen.max_epochs = Some(25);
    assert_eq!(saved(&chosen), (0.3, 0.0, 0.0));
    // `None`: the same as the sub-layers'
    let mut uniform = budgeted(&t.0, "uniform");
    uniform.max_epochs = Some(25);
    (uniform.attention_dropout, uniform.activation_dropout) = (None, None);
    assert_eq!(saved(&uniform), (0.3, 0.3, 0.3));
    // asked for, both parts apart
    let mut asked = budgeted(&t.0, "asked");
    asked.dropout = Some(0.25);
    asked.attention_dropout = Some(0.05);
    asked.activation_dropout = Some(0.1);
    assert_eq!(saved(&asked), (0.25, 0.05, 0.1));
    // the preset's dropout, only the activation's apart
    let mut preset = budgeted(&t.0, "preset");
    preset.attention_dropout = None;
    assert_eq!(saved(&preset), (0.1, 0.1, 0.0));
    // out of range: refused, naming the option
    let mut wrong = budgeted(&t.0, "wrong");
    wrong.attention_dropout = Some(1.5);
    let e = train(&wrong, Start::Fresh, &stopped, |_, _| {}).unwrap_err().to_string();
    assert!(e.contains("attention_dropout"), "{e}");
}
