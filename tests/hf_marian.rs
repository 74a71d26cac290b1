//! Parity with Hugging Face Marian on tiny seeded models (fixtures written by
//! `tools/make_hf_fixtures.py`): SentencePiece and MarianTokenizer ids, logits, greedy and
//! beam outputs of `generate()`; the same on `../shared/models/marian-fren-s` when present.

mod common;

use std::path::{Path, PathBuf};

use candle_core::Tensor;
use serde_json::Value;
use transduce::convert::hf_marian;
use transduce::search::{BeamOptions, DecodeOptions, Scores, Strategy};
use transduce::text::sentencepiece::SentencePieceModel;
use transduce::translate::Translator;
use transduce_cli::bench::translation::TranslationBench;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf_marian")
}

fn shared_model() -> Option<PathBuf> {
    common::shared("models/marian-fren-s")
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

/// Every tricky string: normalised text, pieces, ids and decoding as `sentencepiece` gives them.
fn check_spm(model: &SentencePieceModel, cases: &Value, name: &str) {
    for case in cases.as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        assert_eq!(model.normalize(text), case["normalized"].as_str().unwrap(), "{name}: normalize({text:?})");
        let encoded = model.encode(text).unwrap();
        let pieces: Vec<String> = encoded.iter().map(|p| p.0.clone()).collect();
        assert_eq!(pieces, strings(&case["pieces"]), "{name}: pieces of {text:?}");
        let got: Vec<u32> = encoded.iter().map(|p| p.1).collect();
        assert_eq!(got, ids(&case["ids"]), "{name}: ids of {text:?}");
        assert_eq!(model.decode_pieces(&pieces), case["decoded"].as_str().unwrap(), "{name}: decode of {text:?}");
    }
}

#[test]
fn sentencepiece_matches_the_reference_implementation() {
    let reference = read_json(&fixtures().join("reference.json"));
    for (file, cases) in reference["spm"].as_object().unwrap() {
        let model = SentencePieceModel::load(&fixtures().join(file)).unwrap();
        check_spm(&model, cases, file);
    }
}

/// `generate()` outputs (start token and padding stripped, `</s>` kept), token for token.
fn check_generate(t: &Translator, cases: &Value, strategy: Strategy, max_new_tokens: usize) {
    let sources: Vec<&str> = cases.as_array().unwrap().iter().map(|c| c["source"].as_str().unwrap()).collect();
    // the EOS that ends the output counts among max_new_tokens
    let opts = DecodeOptions { strategy, max_len: max_new_tokens - 1, max_len_ratio: None, ..DecodeOptions::default() };
    let out = t.translate(&sources, &opts).unwrap();
    if strategy == Strategy::Greedy {
        // without scores (the output projection's high halves first): the same tokens
        let unscored = t.translate(&sources, &DecodeOptions { scores: Scores::Omit, ..opts }).unwrap();
        assert!(out.iter().zip(&unscored).all(|(a, b)| a.best().tokens == b.best().tokens), "greedy without scores");
    }
    let eos = t.model.config.special.eos;
    let cases = cases.as_array().unwrap();
    assert!(cases.len() >= 6, "{} generate() cases in the fixture", cases.len());
    common::fixture_len(cases, out.len(), "generate() cases");
    for (case, translation) in cases.iter().zip(&out) {
        let best = &translation.outputs[0];
        let mut got = best.tokens.clone();
        got.push(eos);
        assert_eq!(got, ids(&case["ids"]), "{strategy:?} tokens for {:?}", case["source"]);
        assert_eq!(best.text, case["text"].as_str().unwrap());
    }
}

fn check_model(dir: &Path, reference: &Value, tolerance: f32) {
    let t = Translator::load(dir).unwrap();
    common::hf::check_plain_tokenizer(&t, &reference["tokenizer"]);
    let (worst, _) = common::hf::logit_difference(&t.model, &reference["batch"]);
    assert!(worst < tolerance, "largest logit difference {worst}");
    let n = reference["max_new_tokens"].as_u64().unwrap() as usize;
    check_generate(&t, &reference["greedy"], Strategy::Greedy, n);
    check_generate(&t, &reference["beam4"], Strategy::Beam(BeamOptions::hugging_face(4)), n);
}

#[test]
fn tiny_marian_loads_straight_from_its_hugging_face_directory() {
    let reference = read_json(&fixtures().join("reference.json"));
    check_model(&fixtures().join("tiny"), &reference["tiny"], 1e-4);
}

#[test]
fn shared_opus_style_model_matches_transformers() {
    let Some(dir) = shared_model() else { return };
    let reference = read_json(&fixtures().join("reference-fren.json"));
    check_spm(&SentencePieceModel::load(&dir.join("source.spm")).unwrap(), &reference["spm"], "marian-fren-s");
    check_model(&dir, &reference["model"], 1e-4);
}

/// A copy of the tiny Marian directory to break.
fn broken_copy(tag: &str) -> common::TempDir {
    let tmp = common::TempDir::new(tag);
    for entry in std::fs::read_dir(fixtures().join("tiny")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, tmp.0.join(path.file_name().unwrap())).unwrap();
    }
    tmp
}

fn edit_config(dir: &Path, edit: impl Fn(&mut Value)) {
    let mut config = read_json(&dir.join("config.json"));
    edit(&mut config);
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
}

#[test]
fn bad_marian_directories_are_errors_naming_the_field_file_or_tensor() {
    let tmp = broken_copy("hf-bad-config");
    let err = |dir: &Path| hf_marian::import(dir, &dir.join("out")).unwrap_err().to_string();
    edit_config(&tmp.0, |c| c["normalize_before"] = Value::Bool(true));
    assert!(err(&tmp.0).contains("field `normalize_before`"), "{}", err(&tmp.0));
    edit_config(&tmp.0, |c| {
        c["normalize_before"] = Value::Bool(false);
        c["activation_function"] = "quick_gelu".into();
    });
    assert!(err(&tmp.0).contains("field `activation_function`: \"quick_gelu\""), "{}", err(&tmp.0));
    edit_config(&tmp.0, |c| {
        c["activation_function"] = "swish".into();
        c["decoder_ffn_dim"] = 64.into();
    });
    assert!(err(&tmp.0).contains("decoder_ffn_dim = 64 differs from encoder_ffn_dim = 32"), "{}", err(&tmp.0));
    edit_config(&tmp.0, |c| c["decoder_ffn_dim"] = 32.into());
    hf_marian::import(&tmp.0, &tmp.0.join("out")).unwrap();

    let weights = tmp.0.join("model.safetensors");
    let mut tensors = candle_core::safetensors::load(&weights, &candle_core::Device::Cpu).unwrap();
    tensors.remove("model.decoder.layers.1.fc2.weight");
    let bias = tensors.remove("model.encoder.layers.0.fc1.bias").unwrap();
    tensors.insert("model.encoder.layers.0.fc1.bias".into(), bias.narrow(0, 0, 31).unwrap());
    tensors.insert(
        "model.encoder.layernorm_embedding.weight".into(),
        Tensor::zeros(16, candle_core::DType::F32, &candle_core::Device::Cpu).unwrap(),
    );
    candle_core::safetensors::save(&tensors, &weights).unwrap();
    let e = err(&tmp.0);
    assert!(e.contains("missing tensor `model.decoder.layers.1.fc2.weight`"), "{e}");
    assert!(e.contains("unexpected tensor `model.encoder.layernorm_embedding.weight`"), "{e}");
    assert!(
        e.contains(
            "tensor `model.encoder.layers.0.fc1.bias` (transduce `encoder.layers.0.ffn.fc1.bias`) has shape [31]"
        ),
        "{e}"
    );

    let tmp = broken_copy("hf-bad-vocab");
    std::fs::remove_file(tmp.0.join("vocab.json")).unwrap();
    assert!(err(&tmp.0).contains("vocab.json"), "{}", err(&tmp.0));
    let tmp = broken_copy("hf-bad-spm");
    std::fs::write(tmp.0.join("source.spm"), b"\x0a\x05ab").unwrap();
    let e = Translator::load(&tmp.0).err().unwrap().to_string();
    assert!(e.contains("source.spm: not a readable SentencePiece model"), "{e}");
}

#[test]
fn ctranslate2_greedy_and_beam_search_are_reproduced() {
    let reference = &read_json(&fixtures().join("reference.json"))["tiny_zero_pad_ctranslate2"];
    let t = Translator::load(&fixtures().join("tiny-zero-pad")).unwrap();
    // CTranslate2's max_decoding_length counts no EOS; its min_decoding_length is 1
    let max_len = reference["max_decoding_length"].as_u64().unwrap() as usize;
    for (name, strategy) in [("greedy", Strategy::Greedy), ("beam4", Strategy::Beam(BeamOptions::ctranslate2(4)))] {
        let cases = reference[name].as_array().unwrap();
        let sources: Vec<&str> = cases.iter().map(|c| c["source"].as_str().unwrap()).collect();
        let opts = DecodeOptions { strategy, max_len, max_len_ratio: None, min_len: 1, ..DecodeOptions::default() };
        let out = t.translate(&sources, &opts).unwrap();
        assert!(cases.len() >= 6, "{name}: {} cases in the fixture", cases.len());
        common::fixture_len(cases, out.len(), name);
        for (case, translation) in cases.iter().zip(&out) {
            assert_eq!(translation.outputs[0].tokens, ids(&case["ids"]), "{name}: {:?}", case["source"]);
        }
    }
}

#[test]
fn bench_translate_follows_the_peers_protocol_and_output() {
    let reference = &read_json(&fixtures().join("reference.json"))["tiny_zero_pad_ctranslate2"];
    let t = Translator::load(&fixtures().join("tiny-zero-pad")).unwrap();
    let max_len = reference["max_decoding_length"].as_u64().unwrap() as usize;
    let bench = TranslationBench { beam: 4, batch: 2, runs: 2, greedy_lines: 3, warmup_lines: 2, max_len };
    for (name, mode) in [("beam4", "beam4"), ("greedy", "greedy1")] {
        let cases = reference[name].as_array().unwrap();
        let sources: Vec<&str> = cases.iter().map(|c| c["source"].as_str().unwrap()).collect();
        let run = match name {
            "beam4" => bench.beam(&t, &sources).unwrap(),
            _ => bench.greedy(&t, &sources).unwrap(),
        };
        let lines = if name == "beam4" { sources.len() } else { 3.min(sources.len()) };
        assert_eq!((run.figure.mode.as_str(), run.figure.lines, run.figure.times_s.len()), (mode, lines, 2));
        assert_eq!(run.texts.len(), lines);
        // batches of 2 over length-sorted lines, yet every line gets its own translation back
        for (i, case) in cases.iter().take(lines).enumerate() {
            let want = ids(&case["ids"]);
            assert_eq!(run.pieces[i], t.tokenizers.target.id_pieces(&want), "{name} line {i}");
            assert_eq!(run.texts[i], t.tokenizers.target.decode(&want).unwrap(), "{name} line {i}");
        }
        let tokens: usize = cases.iter().take(lines).map(|c| ids(&c["ids"]).len()).sum();
        assert_eq!(run.figure.out_tokens, tokens);
        assert!(run.figure.tok_per_s > 0.0 && run.figure.median_s > 0.0);
    }
}

/// Regression: lines that run into the length cap. `generate(max_length=L)` counts the decoder
/// start token and the (forced) EOS; transduce's `max_len` counts neither, so `max_len = L - 2`
/// gives generate()'s outputs token for token, for greedy and for the Hugging Face beam rule.
#[test]
fn max_len_maps_onto_generate_max_length_at_the_cap() {
    let cases = read_json(&fixtures().join("max_length.json"));
    let cases = cases.as_array().unwrap();
    common::fixture_len(cases, 6, "max_length.json");
    let t = Translator::load(&fixtures().join("tiny")).unwrap();
    let (eos, start) = (t.model.config.special.eos, t.model.config.special.decoder_start);
    let mut capped = 0;
    for case in cases {
        let max_length = case["max_length"].as_u64().unwrap() as usize;
        let strategy = match case["num_beams"].as_u64().unwrap() {
            1 => Strategy::Greedy,
            k => Strategy::Beam(BeamOptions::hugging_face(k as usize)),
        };
        let sources = strings(&case["sources"]);
        let sequences = case["sequences"].as_array().unwrap();
        common::fixture_len(sequences, sources.len(), "max_length.json sequences");
        let sources: Vec<&str> = sources.iter().map(String::as_str).collect();
        let opts = DecodeOptions { strategy, max_len: max_length - 2, max_len_ratio: None, ..DecodeOptions::default() };
        for (source, (out, want)) in sources.iter().zip(t.translate(&sources, &opts).unwrap().iter().zip(sequences)) {
            let mut got = vec![start];
            got.extend(&out.best().tokens);
            got.push(eos);
            assert_eq!(got, ids(want), "{strategy:?} max_length {max_length}: {source:?}");
            capped += usize::from(got.len() == max_length);
        }
    }
    assert!(capped >= 20, "only {capped} outputs reached the cap: the fixture tests nothing");
}
