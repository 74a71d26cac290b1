//! Parity with Hugging Face T5 and MADLAD-400-style mT5 on tiny seeded models (fixtures written
//! by `tools/make_t5_fixtures.py` with the real `T5Tokenizer` and `generate()`): tokenizer ids
//! (extra ids and `<2xx>` tokens in text), logits, greedy and beam-4 outputs (MADLAD's target
//! language as the `<2xx>` source prefix), int8 close to f32, explain, quantize and the CLI.

mod common;

use std::path::{Path, PathBuf};

use serde_json::Value;
use transduce::model::config::{FeedForwardKind, NormKind, Positions, Tying};
use transduce::search::{BeamOptions, DecodeOptions, Scores, Strategy};
use transduce::text::languages::Direction;
use transduce::translate::{Input, Translator};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf_t5")
}

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("reference.json")).unwrap()).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

/// Each reference case as an input (MADLAD's: with its target language).
fn inputs(cases: &[Value]) -> Vec<Input<'_>> {
    cases
        .iter()
        .enumerate()
        .map(|(i, c)| Input {
            direction: c["target_lang"].as_str().map(|target| Direction { source: "", target }),
            ..Input::new(c["source"].as_str().unwrap(), i as u64)
        })
        .collect()
}

/// `generate(forced_eos_token_id=eos)` outputs (start token and padding stripped, `</s>`
/// kept), token for token.
fn check_generate(t: &Translator, cases: &Value, strategy: Strategy, max_new_tokens: usize) {
    let cases = cases.as_array().unwrap();
    assert!(cases.len() >= 6, "{} generate() cases in the fixture", cases.len());
    // the EOS (forced at the cap) counts among max_new_tokens; transduce's max_len does not
    let opts = DecodeOptions { strategy, max_len: max_new_tokens - 1, max_len_ratio: None, ..DecodeOptions::default() };
    let out = t.translate_inputs(&inputs(cases), &opts).unwrap();
    if strategy == Strategy::Greedy {
        // without scores (the output projection's high halves first): the same tokens
        let unscored = t.translate_inputs(&inputs(cases), &DecodeOptions { scores: Scores::Omit, ..opts }).unwrap();
        assert!(out.iter().zip(&unscored).all(|(a, b)| a.best().tokens == b.best().tokens), "greedy without scores");
    }
    let eos = t.model.config.special.eos;
    for (case, translation) in cases.iter().zip(&out) {
        let best = &translation.outputs[0];
        let mut got = best.tokens.clone();
        got.push(eos);
        assert_eq!(got, ids(&case["ids"]), "{strategy:?} tokens for {:?} -> {}", case["source"], case["target_lang"]);
        assert_eq!(best.text, case["text"].as_str().unwrap());
    }
}

fn check_family(name: &str) {
    let reference = &reference()[name];
    let t = Translator::load(&fixtures().join(name)).unwrap();
    assert!(reference["tokenizer"].as_array().unwrap().len() >= 20);
    common::hf::check_plain_tokenizer(&t, &reference["tokenizer"]);
    let (worst, scale) = common::hf::logit_difference(&t.model, &reference["batch"]);
    assert!(worst < 2e-5, "largest logit difference {worst} (largest logit {scale})");
    let n = reference["max_new_tokens"].as_u64().unwrap() as usize;
    check_generate(&t, &reference["greedy"], Strategy::Greedy, n);
    check_generate(&t, &reference["beam4"], Strategy::Beam(BeamOptions::hugging_face(4)), n);
}

/// T5 (v1.0): ReLU, the output tied to the embeddings and fed `d_model^-0.5 h`, heads of
/// `d_kv` = 6 with d_model 32 and 4 heads.
#[test]
fn t5_matches_transformers() {
    let t = Translator::load(&fixtures().join("t5")).unwrap();
    let c = &t.model.config;
    assert_eq!(
        (c.norm, c.feed_forward, c.tying, c.attention_dim()),
        (NormKind::Rms, FeedForwardKind::Plain, Tying::All, 24)
    );
    assert_eq!(c.positions, Positions::Relative { buckets: 8, max_distance: 20 });
    assert!(t.languages().is_none());
    check_family("t5");
}

/// MADLAD-400 (an mT5): gated GELU, untied output, `<2xx>` target tokens before the source.
#[test]
fn madlad_matches_transformers() {
    let t = Translator::load(&fixtures().join("madlad")).unwrap();
    let c = &t.model.config;
    assert_eq!((c.feed_forward, c.tying), (FeedForwardKind::Gated, Tying::Inputs));
    let codes: Vec<&str> = t.languages().unwrap().codes().collect();
    assert_eq!(codes, ["en", "de", "fr"]);
    check_family("madlad");
}

/// The target language is required and named; the source language is not needed.
#[test]
fn madlad_takes_the_target_language_alone() {
    let t = Translator::load(&fixtures().join("madlad")).unwrap();
    let opts = DecodeOptions::default();
    let err = t.translate(&["Bonjour"], &opts).unwrap_err().to_string();
    assert!(err.contains("target_lang"), "{err}");
    let input = |source, target| Input { direction: Some(Direction { source, target }), ..Input::new("Bonjour", 0) };
    let err = t.translate_inputs(&[input("", "xx")], &opts).unwrap_err().to_string();
    assert!(err.contains("target_lang") && err.contains("\"xx\" is not one of this model's 3"), "{err}");
    // a source language is accepted and ignored; the code or its token
    let a = t.translate_inputs(&[input("fr", "de")], &opts).unwrap();
    assert_eq!(a, t.translate_inputs(&[input("", "<2de>")], &opts).unwrap());
}

/// int8 weights close to f32 transformers, and `transduce quantize` equal to int8 at load.
#[test]
fn int8_outputs_stay_close() {
    for name in ["t5", "madlad"] {
        let reference = &reference()[name];
        let cases = reference["greedy"].as_array().unwrap();
        let want = |c: &Value| c["text"].as_str().unwrap().to_string();
        // </s> counts among generate()'s 30 new tokens
        common::hf::check_int8(&fixtures().join(name), reference, &inputs(cases), 29, want);
    }
}

/// The explainer on MADLAD: the `<2xx>` token is the source's first token, the decoder starts
/// from `<pad>`, and the translation is `translate`'s.
#[test]
fn explain_shows_the_target_token() {
    let t = Translator::load(&fixtures().join("madlad")).unwrap();
    let input = Input { direction: Some(Direction { source: "", target: "de" }), ..Input::new(transduce_source(), 0) };
    let opts = DecodeOptions { strategy: Strategy::Greedy, ..DecodeOptions::default() };
    let e = transduce::explain::explain_input(&t, &input, &opts, 3).unwrap();
    let translation = t.translate_inputs(&[input], &opts).unwrap().remove(0);
    assert_eq!(e.translation, translation.text());
    assert_eq!(e.source_tokens.first().map(String::as_str), Some("<2de>"));
    assert_eq!(e.decoder_inputs[0], "<s>", "the start step, whatever its token");
    let n = translation.best().tokens.len();
    assert_eq!(e.steps.len(), n + 1);
}

fn transduce_source() -> &'static str {
    "Un homme regarde le chat noir."
}

/// `transduce translate --target-lang` (MADLAD) and plain `transduce translate` (T5) give the
/// library's translations with the CLI's defaults.
#[test]
fn cli_translates_with_each_model() {
    let tmp = common::TempDir::new("t5-cli");
    let lines = ["Un homme regarde le chat noir.", "Où est la gare ?"];
    let input = tmp.write("in.txt", (lines.join("\n") + "\n").as_bytes());
    for (name, target) in [("t5", None), ("madlad", Some("fr"))] {
        let dir = fixtures().join(name);
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_transduce"));
        cmd.args(["translate", "-m", dir.to_str().unwrap(), "--beam", "4", "--input", input.to_str().unwrap()]);
        if let Some(target) = target {
            cmd.args(["--target-lang", target]);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let t = Translator::load(&dir).unwrap();
        let settings = transduce::search::SearchSettings { beam: 4, ..Default::default() };
        let cli_defaults = settings.decode_options(transduce::search::Alignment::Off, 4096).unwrap();
        let inputs: Vec<Input> = lines
            .iter()
            .enumerate()
            .map(|(i, s)| Input {
                direction: target.map(|target| Direction { source: "", target }),
                ..Input::new(s, i as u64)
            })
            .collect();
        let want: Vec<String> =
            t.translate_inputs(&inputs, &cli_defaults).unwrap().iter().map(|tr| tr.text().to_string() + "\n").collect();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), want.concat(), "{name}");
    }
}

/// A checkpoint in shards (`model.safetensors.index.json`, as MADLAD-400 ships its 3B and
/// larger models, here with an unused cross-attention bias as older T5 checkpoints have) loads
/// to the same model; a `pytorch_model.bin`-only directory is refused with the conversion named.
#[test]
fn sharded_checkpoints_load_and_pickles_are_refused() {
    let tmp = common::TempDir::new("t5-shards");
    let from = fixtures().join("madlad");
    let dir = tmp.0.join("sharded");
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(&from).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap() != "model.safetensors" {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    let bytes = std::fs::read(from.join("model.safetensors")).unwrap();
    let all = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = all.names().into_iter().map(str::to_string).collect();
    names.sort();
    let mut weight_map = serde_json::Map::new();
    for (i, half) in names.chunks(names.len().div_ceil(2)).enumerate() {
        let file = format!("model-{:05}-of-00002.safetensors", i + 1);
        let views: Vec<(String, safetensors::tensor::TensorView)> =
            half.iter().map(|n| (n.clone(), all.tensor(n).unwrap())).collect();
        std::fs::write(dir.join(&file), safetensors::serialize(views, None).unwrap()).unwrap();
        half.iter().for_each(|n| drop(weight_map.insert(n.clone(), file.clone().into())));
    }
    // the unused cross-attention position bias some T5 checkpoints carry is passed over
    let unused = "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight";
    let table = all.tensor("decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight").unwrap();
    let extra = "model-extra.safetensors";
    std::fs::write(dir.join(extra), safetensors::serialize(vec![(unused.to_string(), table)], None).unwrap()).unwrap();
    weight_map.insert(unused.to_string(), extra.into());
    let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
    let reference = reference();
    let inputs = inputs(reference["madlad"]["greedy"].as_array().unwrap());
    let opts = DecodeOptions { strategy: Strategy::Greedy, ..DecodeOptions::default() };
    let sharded = Translator::load(&dir).unwrap();
    let single = Translator::load(&from).unwrap();
    assert_eq!(sharded.translate_inputs(&inputs, &opts).unwrap(), single.translate_inputs(&inputs, &opts).unwrap());
    // a shard the index names but the directory lacks, then only a pickle
    std::fs::remove_file(dir.join("model-00002-of-00002.safetensors")).unwrap();
    let err = Translator::load(&dir).err().expect("an error").to_string();
    assert!(err.contains("model-00002-of-00002.safetensors"), "{err}");
    std::fs::remove_file(dir.join("model.safetensors.index.json")).unwrap();
    std::fs::write(dir.join("pytorch_model.bin"), b"not read").unwrap();
    let err = Translator::load(&dir).err().expect("an error").to_string();
    assert!(err.contains("pytorch_model.bin") && err.contains("safe_serialization=True"), "{err}");
}

/// A directory with only `spiece.model` (as mT5 ships): `T5Tokenizer` natively, the same ids,
/// decoding and translations as through `tokenizer.json`.
#[test]
fn spiece_model_alone_reproduces_t5_tokenizer() {
    for name in ["t5", "madlad"] {
        let tmp = common::TempDir::new(&format!("t5-spm-{name}"));
        let from = fixtures().join(name);
        for entry in std::fs::read_dir(&from).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().unwrap() != "tokenizer.json" {
                std::fs::copy(&path, tmp.0.join(path.file_name().unwrap())).unwrap();
            }
        }
        let native = Translator::load(&tmp.0).unwrap();
        let reference = &reference()[name];
        common::hf::check_plain_tokenizer(&native, &reference["tokenizer"]);
        let n = reference["max_new_tokens"].as_u64().unwrap() as usize;
        check_generate(&native, &reference["beam4"], Strategy::Beam(BeamOptions::hugging_face(4)), n);
        let json = Translator::load(&from).unwrap();
        assert_eq!(native.tokenizers.source.vocab_size(), json.tokenizers.source.vocab_size());
        assert_eq!(
            native.languages().map(|l| l.codes().collect::<Vec<_>>().join(",")),
            json.languages().map(|l| l.codes().collect::<Vec<_>>().join(","))
        );
    }
}
