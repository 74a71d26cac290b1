//! Export to Hugging Face Marian: import -> export -> import keeps every weight bit for bit; a
//! model trained by transduce with `--arch marian` exports and translates as before (through
//! SentencePiece files written from its tokenizer.json); models that do not fit are refused
//! with the setting named; transformers and CTranslate2 translate the export like transduce
//! (when Python with those packages is available).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::OnceLock;

use candle_core::{Device, Tensor};
use common::TempDir;
use transduce::convert::hf_marian;
use transduce::data::corpus::CorpusSource;
use transduce::model::config::Architecture;
use transduce::model::weights::read_safetensors;
use transduce::model::Preset;
use transduce::search::{BeamOptions, DecodeOptions, Strategy};
use transduce::train::{train, ModelOverrides, Start, TrainConfig};
use transduce::translate::Translator;

fn tiny_hf() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf_marian/tiny")
}

fn same_bits(a: &HashMap<String, Tensor>, b: &HashMap<String, Tensor>) {
    let mut names: Vec<_> = a.keys().collect();
    names.sort();
    let mut other: Vec<_> = b.keys().collect();
    other.sort();
    assert_eq!(names, other);
    for name in names {
        let (x, y) = (&a[name], &b[name]);
        assert_eq!(x.dims(), y.dims(), "{name}");
        let xs: Vec<u32> = x.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().map(|v| v.to_bits()).collect();
        let ys: Vec<u32> = y.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().map(|v| v.to_bits()).collect();
        assert!(xs == ys, "{name} changed");
    }
}

#[test]
fn import_export_import_keeps_every_weight_bit_for_bit() {
    let tmp = TempDir::new("hf-round-trip");
    let (imported, exported, again) = (tmp.0.join("a"), tmp.0.join("hf"), tmp.0.join("b"));
    hf_marian::import(&tiny_hf(), &imported).unwrap();
    let summary = hf_marian::export(&imported, &exported).unwrap();
    assert!(!summary.moved_pad, "an imported model keeps its ids");
    hf_marian::import(&exported, &again).unwrap();
    let read = |dir: &Path| read_safetensors(&dir.join("model.safetensors"), &Device::Cpu).unwrap();
    same_bits(&read(&imported), &read(&again));
    // and the exported Hugging Face file holds the original's tensors
    same_bits(&read(&tiny_hf()), &read(&exported));
    for file in ["source.spm", "target.spm", "vocab.json"] {
        assert_eq!(std::fs::read(tiny_hf().join(file)).unwrap(), std::fs::read(exported.join(file)).unwrap());
    }
}

#[test]
fn models_marian_cannot_hold_are_refused_with_the_setting_named() {
    let tmp = TempDir::new("hf-refuse");
    let config = common::tiny_config(transduce::model::config::NormPlacement::Pre);
    config.save(&tmp.0.join("config.json")).unwrap();
    common::model(&config, candle_core::DType::F32).save(&tmp.0.join("model.safetensors")).unwrap();
    let err = hf_marian::export(&tmp.0, &tmp.0.join("out")).unwrap_err().to_string();
    assert!(err.contains("norm_placement is Pre"), "{err}");
    assert!(err.contains("positions are Sinusoidal"), "{err}");
    assert!(err.contains("final_norm"), "{err}");
    let err = hf_marian::export(&tiny_hf(), &tmp.0.join("out")).unwrap_err().to_string();
    assert!(err.contains("already a Hugging Face Marian directory"), "{err}");
}

fn sentences(n: usize, seed: u64) -> Vec<(String, String)> {
    common::word_for_word(n, 2..7, seed)
}

/// A tiny `--arch marian` model trained once per run, and its export.
fn trained() -> &'static (TempDir, PathBuf, PathBuf) {
    static DIR: OnceLock<(TempDir, PathBuf, PathBuf)> = OnceLock::new();
    DIR.get_or_init(|| {
        let tmp = TempDir::new("hf-export");
        let dir = tmp.0.clone();
        let pairs = sentences(8000, 3);
        let (s, t) = (dir.join("train.fr"), dir.join("train.en"));
        std::fs::write(&s, pairs.iter().map(|p| format!("{}\n", p.0)).collect::<String>()).unwrap();
        std::fs::write(&t, pairs.iter().map(|p| format!("{}\n", p.1)).collect::<String>()).unwrap();
        let mut cfg = TrainConfig::new(CorpusSource::Aligned { source: s, target: t }, None, dir.join("model"));
        cfg.preset = Preset::Tiny;
        cfg.model = ModelOverrides {
            d_model: Some(64),
            heads: Some(4),
            ffn_dim: Some(128),
            arch: Some(Architecture::Marian),
            ..Default::default()
        };
        cfg.vocab_size = 60;
        cfg.max_tokens = 600;
        cfg.lr = 1e-3;
        cfg.warmup = 100;
        cfg.max_updates = Some(400);
        cfg.log_every = 100;
        train(&cfg, Start::Fresh, &AtomicBool::new(false), |_, _| {}).unwrap();
        let exported = dir.join("hf");
        let summary = hf_marian::export(&dir.join("model"), &exported).unwrap();
        assert!(summary.moved_pad, "transduce puts <pad> first; Marian wants it last");
        (tmp, dir.join("model"), exported)
    })
}

fn test_lines() -> Vec<String> {
    sentences(40, 99).into_iter().map(|p| p.0).collect()
}

/// Translations with at most 64 new tokens, EOS included (as `max_new_tokens=64`).
fn translate(dir: &Path, lines: &[String], strategy: Strategy) -> Vec<String> {
    translate_limit(dir, lines, strategy, 63, 0)
}

/// Translations with `min_len` to `max_len` tokens besides EOS.
fn translate_limit(dir: &Path, lines: &[String], strategy: Strategy, max_len: usize, min_len: usize) -> Vec<String> {
    let t = Translator::load(dir).unwrap();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let opts = DecodeOptions { strategy, max_len, min_len, max_len_ratio: None, ..DecodeOptions::default() };
    t.translate(&refs, &opts).unwrap().into_iter().map(|tr| tr.outputs[0].text.clone()).collect()
}

#[test]
fn a_trained_model_translates_the_same_after_export() {
    let (_, model, exported) = trained();
    let lines = test_lines();
    for strategy in [Strategy::Greedy, Strategy::Beam(BeamOptions::hugging_face(4))] {
        let before = translate(model, &lines, strategy);
        let after = translate(exported, &lines, strategy);
        assert_eq!(before, after, "{strategy:?}");
        let words_right = before.iter().filter(|t| t.split(' ').all(|w| common::TGT.contains(&w))).count();
        assert!(words_right > 30, "the model should have learned something: {before:?}");
    }
}

/// The first Python of `TRANSDUCE_PYTHON` and the repository's venvs `venvs` that imports `modules`.
fn python(venvs: &[&str], modules: &str) -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = std::env::var_os("TRANSDUCE_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain(venvs.iter().map(|v| common::root().join(v).join("bin/python")))
        .collect();
    candidates
        .into_iter()
        .find(|p| Command::new(p).args(["-c", &format!("import {modules}")]).output().is_ok_and(|o| o.status.success()))
}

/// Runs a peer script on the export of the trained model; its JSON output.
fn peer_outputs(python: &Path, script: &str, lines: &[String]) -> serde_json::Value {
    let (tmp, _, exported) = trained();
    let input = tmp.0.join(format!("{script}.test.fr"));
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let out = tmp.0.join(format!("{script}.json"));
    let status = Command::new(python)
        .arg(common::root().join("tools").join(script))
        .args(["--model", exported.to_str().unwrap(), "--input", input.to_str().unwrap()])
        .args(["--out", out.to_str().unwrap(), "--beam", "4", "--max-new-tokens", "64"])
        .status()
        .unwrap();
    assert!(status.success(), "tools/{script} failed");
    serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap()
}

fn texts(v: &serde_json::Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect()
}

#[test]
fn ctranslate2_translates_the_export_like_transduce() {
    let found = python(&[".venv-ct2", ".venv-hf", ".venv-bench"], "ctranslate2, sentencepiece, safetensors");
    let Some(python) = common::optional(&common::CT2, found) else { return };
    let (_, model, _) = trained();
    let lines = test_lines();
    let peers = peer_outputs(&python, "ct2_marian.py", &lines);
    // CTranslate2: max_decoding_length counts no EOS, min_decoding_length is 1
    let greedy_ct2 = translate_limit(model, &lines, Strategy::Greedy, 64, 1);
    assert_eq!(texts(&peers["ct2"]["greedy"]), greedy_ct2, "CTranslate2 greedy");
    // CTranslate2 has its own beam rule, which transduce reproduces
    let beam_ct2 = translate_limit(model, &lines, Strategy::Beam(BeamOptions::ctranslate2(4)), 64, 1);
    assert_eq!(texts(&peers["ct2"]["beam"]), beam_ct2, "CTranslate2 beam 4");
}

#[test]
fn transformers_translates_the_export_like_transduce() {
    let found = python(&[".venv-hf", ".venv-bench"], "transformers, sentencepiece, torch");
    let Some(python) = common::optional(&common::TRANSFORMERS, found) else { return };
    let (_, model, _) = trained();
    let lines = test_lines();
    let peers = peer_outputs(&python, "hf_parity.py", &lines);
    let greedy = translate(model, &lines, Strategy::Greedy);
    let beam_hf = translate(model, &lines, Strategy::Beam(BeamOptions::hugging_face(4)));
    assert_eq!(texts(&peers["hf"]["greedy"]), greedy, "transformers greedy");
    assert_eq!(texts(&peers["hf"]["beam"]), beam_hf, "transformers beam 4");
}
