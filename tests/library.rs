//! The library as another program embeds it: `Translator::load_with` and its options, one
//! translator shared by threads, the reference kernels against the fused ones through cached
//! beam search, options checked with the option named, and `ModelDir` detecting formats.

mod common;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use common::TempDir;
use transduce::kernels::Kernels;
use transduce::model_dir::{self, Format};
use transduce::search::{BeamOptions, BeamRule, DecodeOptions, LengthPenalty, SamplingOptions, Strategy};
use transduce::train::TrainConfig;
use transduce::{Error, LoadOptions, ModelDir, Quantization, Translator};

fn tiny_hf() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf_marian/tiny")
}

/// The fixture corpus (French-like lines of every length), checked to be there.
fn corpus() -> Vec<String> {
    let text = std::fs::read_to_string(tiny_hf().join("../corpus.txt")).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    assert!(lines.len() >= 200, "the fixture corpus has {} lines", lines.len());
    lines
}

fn beam(k: usize) -> DecodeOptions {
    DecodeOptions {
        strategy: Strategy::Beam(BeamOptions { beam: k, n_best: 2, ..BeamOptions::default() }),
        max_len: 40,
        max_tokens: 512,
        ..DecodeOptions::default()
    }
}

#[test]
fn translator_is_send_and_sync() {
    fn shared<T: Send + Sync>() {}
    shared::<Translator>();
    shared::<ModelDir>();
}

#[test]
fn four_threads_sharing_one_translator_get_the_serial_outputs() {
    let translator = Translator::load(&tiny_hf()).unwrap();
    let lines = corpus();
    let lines: Vec<&str> = lines.iter().take(120).map(String::as_str).collect();
    let opts = beam(4);
    let serial = translator.translate(&lines, &opts).unwrap();
    let quarters: Vec<&[&str]> = lines.chunks(30).collect();
    assert_eq!(quarters.len(), 4);
    let parallel: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = quarters.iter().map(|q| s.spawn(|| translator.translate(q, &opts).unwrap())).collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(parallel.len(), serial.len());
    for (i, (p, s)) in parallel.iter().zip(&serial).enumerate() {
        assert_eq!(p, s, "line {i}: {:?}", lines[i]);
    }
}

#[test]
fn a_translator_with_its_own_threads_translates_as_the_default() {
    let lines = corpus();
    let lines: Vec<&str> = lines.iter().take(40).map(String::as_str).collect();
    let plain = Translator::load(&tiny_hf()).unwrap().translate(&lines, &beam(3)).unwrap();
    let own = LoadOptions { threads: Some(1), ..LoadOptions::default() };
    let mut translator = Translator::load_with(&tiny_hf(), own).unwrap();
    assert_eq!(translator.translate(&lines, &beam(3)).unwrap(), plain);
    translator.set_workers(2).unwrap();
    assert_eq!(translator.translate(&lines, &beam(3)).unwrap(), plain);
    let err = Translator::load_with(&tiny_hf(), LoadOptions { threads: Some(0), ..LoadOptions::default() });
    assert!(matches!(err, Err(Error::Option { option: "threads", .. })));
}

#[test]
fn reference_kernels_translate_a_beam_batch_as_the_fused_ones() {
    let lines = corpus();
    let lines: Vec<&str> = lines.iter().take(64).map(String::as_str).collect();
    let load = |kernels| Translator::load_with(&tiny_hf(), LoadOptions { kernels, ..LoadOptions::default() }).unwrap();
    let (fused, reference) = (load(Kernels::Fused), load(Kernels::Reference));
    for opts in [beam(4), DecodeOptions { strategy: Strategy::Greedy, ..beam(1) }] {
        let a = fused.translate(&lines, &opts).unwrap();
        let b = reference.translate(&lines, &opts).unwrap();
        let mut same_text = 0;
        for (i, (a, b)) in a.iter().zip(&b).enumerate() {
            assert_eq!(a.outputs.len(), b.outputs.len(), "line {i}");
            if a.text() == b.text() {
                same_text += 1;
                let diff = (a.best().score - b.best().score).abs();
                assert!(diff < 1e-3, "line {i} {:?}: scores {} and {}", lines[i], a.best().score, b.best().score);
            }
        }
        // float sums in another order may flip a near tie; nearly every line must agree
        assert!(same_text * 100 >= lines.len() * 95, "{same_text} of {} lines agree", lines.len());
        eprintln!("{:?}: {same_text} of {} lines identical", opts.strategy, lines.len());
    }
}

#[test]
fn bad_decode_options_are_refused_with_the_option_named() {
    let beam_of = |beam: usize, n_best: usize| DecodeOptions {
        strategy: Strategy::Beam(BeamOptions { beam, n_best, ..BeamOptions::default() }),
        ..DecodeOptions::default()
    };
    let sample = |temperature: f32, top_p: f32| DecodeOptions {
        strategy: Strategy::Sample(SamplingOptions { temperature, top_p, ..SamplingOptions::default() }),
        ..DecodeOptions::default()
    };
    let cases: Vec<(DecodeOptions, &str)> = vec![
        (beam_of(0, 1), "beam"),
        (beam_of(4, 0), "n_best"),
        (beam_of(4, 5), "n_best"),
        (
            DecodeOptions {
                strategy: Strategy::Beam(BeamOptions {
                    length_penalty: LengthPenalty::Gnmt { alpha: f32::NAN },
                    ..BeamOptions::default()
                }),
                ..DecodeOptions::default()
            },
            "length_penalty",
        ),
        (sample(0.0, 1.0), "temperature"),
        (sample(1.0, 1.5), "top_p"),
        (sample(1.0, 0.0), "top_p"),
        (DecodeOptions { max_len: 0, ..DecodeOptions::default() }, "max_len"),
        (DecodeOptions { max_len_ratio: Some(-1.0), ..DecodeOptions::default() }, "max_len_ratio"),
        (DecodeOptions { min_len: 300, ..DecodeOptions::default() }, "min_len"),
        (DecodeOptions { repetition_penalty: 0.0, ..DecodeOptions::default() }, "repetition_penalty"),
        (DecodeOptions { max_tokens: 0, ..DecodeOptions::default() }, "max_tokens"),
    ];
    let translator = Translator::load(&tiny_hf()).unwrap();
    for (opts, option) in cases {
        match opts.validate() {
            Err(Error::Option { option: named, why }) => assert_eq!(named, option, "{why}"),
            other => panic!("{option}: {other:?}"),
        }
        // the translator refuses them too, whatever the input
        let err = translator.translate(&["un chat"], &opts).unwrap_err().to_string();
        assert!(err.contains(&format!("option `{option}`")), "{err}");
    }
    assert!(DecodeOptions::default().validate().is_ok());
    assert!(beam_of(4, 4).validate().is_ok());
}

#[test]
fn bad_training_options_are_refused_and_toml_keys_are_checked() {
    let tmp = TempDir::new("library-train-config");
    let corpus = transduce::data::corpus::CorpusSource::Tsv(tmp.0.join("corpus.tsv"));
    let base = TrainConfig::new(corpus, None, tmp.0.join("model"));
    assert!(base.validate().is_ok());
    type Change = Box<dyn Fn(&mut TrainConfig)>;
    let cases: Vec<(Change, &str)> = vec![
        (Box::new(|c| c.vocab_size = 3), "vocab_size"),
        (Box::new(|c| c.max_tokens = 0), "max_tokens"),
        (Box::new(|c| c.update_freq = 0), "update_freq"),
        (Box::new(|c| c.dropout = Some(1.5)), "dropout"),
        (Box::new(|c| c.label_smoothing = 1.0), "label_smoothing"),
        (Box::new(|c| c.lr = f64::NAN), "lr"),
        (Box::new(|c| c.keep_last = 0), "keep_last"),
        (Box::new(|c| c.log_every = 0), "log_every"),
        (Box::new(|c| c.patience = Some(2)), "patience"),
        (Box::new(|c| c.adam.beta2 = 1.0), "adam.beta2"),
        (Box::new(|c| c.model.heads = Some(0)), "model.heads"),
    ];
    for (change, option) in cases {
        let mut cfg = base.clone();
        change(&mut cfg);
        match cfg.validate() {
            Err(Error::Option { option: named, .. }) => assert_eq!(named, option),
            other => panic!("{option}: {other:?}"),
        }
    }
    // the TOML file merges into the configuration; an unknown key is named
    let mut cfg = base.clone();
    let good = tmp.write("good.toml", b"lr = 0.002\n[model]\nheads = 8\n");
    cfg.merge_toml(&good).unwrap();
    assert_eq!((cfg.lr, cfg.model.heads), (0.002, Some(8)));
    let bad = tmp.write("bad.toml", b"[model]\nhead = 8\n");
    let err = cfg.merge_toml(&bad).unwrap_err().to_string();
    assert!(err.contains("bad.toml") && err.contains("head"), "{err}");
    // so do JSON options (the Python package's keyword arguments)
    let mut cfg = base.clone();
    let good = serde_json::json!({"lr": 0.003, "model": {"d_model": 64}, "filter": {"max_len": 50}});
    cfg.merge_json(good.as_object().unwrap().clone(), "keywords").unwrap();
    assert_eq!((cfg.lr, cfg.model.d_model, cfg.model.heads, cfg.filter.max_len), (0.003, Some(64), None, 50));
    assert_eq!(cfg.filter.max_ratio, base.filter.max_ratio, "nested objects merge key by key");
    let bad = serde_json::json!({"model": {"head": 8}});
    let err = cfg.merge_json(bad.as_object().unwrap().clone(), "keywords").unwrap_err().to_string();
    assert!(err.contains("keywords") && err.contains("head"), "{err}");
    let wrong_type = serde_json::json!({"lr": "fast"});
    let err = cfg.merge_json(wrong_type.as_object().unwrap().clone(), "keywords").unwrap_err().to_string();
    assert!(err.contains("keywords"), "{err}");
}

#[test]
fn model_dir_detects_each_format_once() {
    let tmp = TempDir::new("library-model-dir");
    let hf = ModelDir::open(tiny_hf()).unwrap();
    assert_eq!(hf.format(), Format::HfMarian);
    let native = tmp.0.join("native");
    transduce::convert::hf_marian::import(&tiny_hf(), &native).unwrap();
    let native = ModelDir::open(&native).unwrap();
    assert_eq!(native.format(), Format::Native);
    let int8 = tmp.0.join("int8");
    transduce::convert::int8::quantize(native.path(), &int8).unwrap();
    let int8 = ModelDir::open(&int8).unwrap();
    assert_eq!(int8.format(), Format::NativeInt8);
    // each loads, with the same configuration and tokenizers
    for dir in [&hf, &native, &int8] {
        assert_eq!(dir.config().unwrap(), hf.config().unwrap(), "{:?}", dir.format());
        assert_eq!(dir.tokenizers().unwrap().source.vocab_size(), hf.config().unwrap().vocab.source());
        dir.load_model(DType::F32, &Device::Cpu).unwrap();
    }
    let int8_translator = Translator::load(int8.path()).unwrap();
    assert!(int8_translator.model.lm_head.int8().is_some(), "stored int8 loads as int8");
    let quantized = Translator::load_with(
        native.path(),
        LoadOptions { quantization: Quantization::Int8, ..LoadOptions::default() },
    )
    .unwrap();
    assert!(quantized.model.lm_head.int8().is_some());

    // a family transduce does not read, and a directory that is not one
    let other = tmp.0.join("bart");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join(model_dir::CONFIG), r#"{"model_type": "bart"}"#).unwrap();
    let err = ModelDir::open(&other).unwrap_err().to_string();
    assert!(err.contains("model_type `bart`"), "{err}");
    let err = ModelDir::open(tmp.0.join("absent")).unwrap_err().to_string();
    assert!(err.contains("not a model directory"), "{err}");
}

#[test]
fn a_truncated_weights_file_says_it_is_truncated() {
    let tmp = TempDir::new("library-truncated");
    let dir = tmp.0.join("m");
    transduce::convert::hf_marian::import(&tiny_hf(), &dir).unwrap();
    let weights = dir.join(model_dir::WEIGHTS);
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() - 100]).unwrap();
    let err = Translator::load(&dir).err().expect("a truncated file fails").to_string();
    assert!(err.contains("truncated"), "{err}");
    assert!(err.contains(&format!("needs {} bytes", bytes.len())), "{err}");
    assert!(err.contains(&format!("has {}", bytes.len() - 100)), "{err}");
}

#[test]
fn a_missing_file_names_its_cause_once() {
    let tmp = TempDir::new("library-missing");
    std::fs::create_dir_all(tmp.0.join("m")).unwrap();
    let err = anyhow::Error::from(Translator::load(&tmp.0.join("m")).err().expect("no config.json"));
    let chain = format!("{err:#}");
    assert_eq!(chain.matches("No such file or directory").count(), 1, "{chain}");
    assert!(chain.contains(model_dir::CONFIG), "{chain}");
}

#[test]
fn beam_rules_parse_from_their_names() {
    assert_eq!("hugging-face".parse::<BeamRule>().unwrap(), BeamRule::HuggingFace);
    assert_eq!(BeamRule::CTranslate2.to_string(), "ctranslate2");
    assert_eq!("heuristic".parse::<BeamRule>().unwrap(), BeamRule::default());
    assert_eq!("int8".parse::<Quantization>().unwrap(), Quantization::Int8);
}
