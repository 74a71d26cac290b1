//! Parity with Hugging Face M2M-100 and NLLB-200 on tiny seeded models (fixtures written by
//! `tools/make_multilingual_fixtures.py` with the real `M2M100Tokenizer`, `NllbTokenizer` and
//! `generate()`): SentencePiece BPE pieces, tokenizer ids with the language tokens, logits,
//! greedy and beam-4 outputs with the target language forced first, int8 close to f32.

mod common;

use std::path::{Path, PathBuf};

use serde_json::Value;
use transduce::search::{BeamOptions, DecodeOptions, Scores, Strategy};
use transduce::text::languages::Direction;
use transduce::text::sentencepiece::SentencePieceModel;
use transduce::translate::{Input, Translator};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf_m2m100")
}

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("reference.json")).unwrap()).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

#[test]
fn sentencepiece_bpe_matches_the_reference_implementation() {
    let reference = reference();
    for (file, cases) in reference["spm"].as_object().unwrap() {
        let model = SentencePieceModel::load(&fixtures().join(file)).unwrap();
        let cases = cases.as_array().unwrap();
        assert!(cases.len() >= 20, "{} cases", cases.len());
        for case in cases {
            let text = case["text"].as_str().unwrap();
            assert_eq!(model.normalize(text), case["normalized"].as_str().unwrap(), "normalize({text:?})");
            let encoded = model.encode(text).unwrap();
            let pieces: Vec<String> = encoded.iter().map(|p| p.0.clone()).collect();
            assert_eq!(pieces, strings(&case["pieces"]), "pieces of {text:?}");
            let got: Vec<u32> = encoded.iter().map(|p| p.1).collect();
            assert_eq!(got, ids(&case["ids"]), "ids of {text:?}");
            assert_eq!(model.decode_pieces(&pieces), case["decoded"].as_str().unwrap(), "decode of {text:?}");
        }
    }
}

/// Tokenizer ids (`[source language] X </s>`) and decoding. `M2M100Tokenizer` of transformers 5
/// keeps the `__xx__` language tokens in `decode(skip_special_tokens=True)`; transduce drops
/// them as transformers 4 did, so the reference text is compared without them.
fn check_tokenizer(t: &Translator, cases: &Value) {
    let eos = t.model.config.special.eos;
    let languages = t.languages().expect("a multilingual model");
    for case in cases.as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let mut got = vec![languages.id(case["source_lang"].as_str().unwrap(), "source_lang").unwrap()];
        got.extend(t.tokenizers.source.encode(text).unwrap());
        got.push(eos);
        assert_eq!(got, ids(&case["ids"]), "ids of {text:?}");
        let decoded = t.tokenizers.target.decode(&ids(&case["ids"])).unwrap();
        assert_eq!(decoded, without_language_tokens(case["decoded"].as_str().unwrap()), "decoding of {text:?}");
    }
}

/// `text` without the `__xx__` language tokens transformers 5 leaves in.
fn without_language_tokens(text: &str) -> String {
    let mut out = text.to_string();
    for code in transduce::text::languages::M2M100_CODES {
        out = out.replace(&format!("__{code}__"), "");
    }
    match out == text {
        true => out,
        false => out.trim().to_string(),
    }
}

/// `generate(forced_bos_token_id=target, forced_eos_token_id=eos)` outputs (start token and
/// padding stripped; the language token and `</s>` kept), token for token, per language pair.
fn check_generate(t: &Translator, cases: &Value, strategy: Strategy, max_new_tokens: usize) -> usize {
    let cases = cases.as_array().unwrap();
    assert!(cases.len() >= 12, "{} generate() cases in the fixture", cases.len());
    // the language token and the EOS (forced at the cap) count among max_new_tokens;
    // transduce's max_len counts neither
    let opts = DecodeOptions { strategy, max_len: max_new_tokens - 2, max_len_ratio: None, ..DecodeOptions::default() };
    let inputs = directed_inputs(cases);
    let out = t.translate_inputs(&inputs, &opts).unwrap();
    if strategy == Strategy::Greedy {
        // without scores (the output projection's high halves first): the same tokens
        let unscored = t.translate_inputs(&inputs, &DecodeOptions { scores: Scores::Omit, ..opts }).unwrap();
        assert!(out.iter().zip(&unscored).all(|(a, b)| a.best().tokens == b.best().tokens), "greedy without scores");
    }
    let eos = t.model.config.special.eos;
    let languages = t.languages().unwrap();
    for (case, translation) in cases.iter().zip(&out) {
        let best = &translation.outputs[0];
        let target = languages.id(case["target_lang"].as_str().unwrap(), "target_lang").unwrap();
        let mut got = vec![target];
        got.extend(&best.tokens);
        got.push(eos);
        assert_eq!(got, ids(&case["ids"]), "{strategy:?} tokens for {:?} -> {}", case["source"], case["target_lang"]);
        assert_eq!(best.text, without_language_tokens(case["text"].as_str().unwrap()));
        assert_eq!(best.token_scores.len(), best.tokens.len() + 1, "scores of the translation and </s>");
    }
    cases.len()
}

/// Each reference case as an input with its languages.
fn directed_inputs(cases: &[Value]) -> Vec<Input<'_>> {
    cases
        .iter()
        .enumerate()
        .map(|(i, c)| Input {
            direction: Some(Direction {
                source: c["source_lang"].as_str().unwrap(),
                target: c["target_lang"].as_str().unwrap(),
            }),
            ..Input::new(c["source"].as_str().unwrap(), i as u64)
        })
        .collect()
}

fn check_family(name: &str) {
    let reference = &reference()[name];
    let t = Translator::load(&fixtures().join(name)).unwrap();
    check_tokenizer(&t, &reference["tokenizer"]);
    // logits reach ±12 here: 2e-5 is a few f32 ulps of them (about 1.7e-6 relative)
    let (worst, _) = common::hf::logit_difference(&t.model, &reference["batch"]);
    assert!(worst < 2e-5, "largest logit difference {worst}");
    let n = reference["max_new_tokens"].as_u64().unwrap() as usize;
    check_generate(&t, &reference["greedy"], Strategy::Greedy, n);
    check_generate(&t, &reference["beam4"], Strategy::Beam(BeamOptions::hugging_face(4)), n);
}

#[test]
fn m2m100_matches_transformers() {
    check_family("m2m100");
}

#[test]
fn nllb_matches_transformers() {
    check_family("nllb");
}

/// int8 weights close to f32 transformers, and `transduce quantize` equal to int8 at load.
#[test]
fn int8_outputs_stay_close() {
    for name in ["m2m100", "nllb"] {
        let reference = &reference()[name];
        let cases = reference["greedy"].as_array().unwrap();
        let want = |c: &Value| without_language_tokens(c["text"].as_str().unwrap());
        // the language token and </s> count among generate()'s 30 new tokens
        common::hf::check_int8(&fixtures().join(name), reference, &directed_inputs(cases), 28, want);
    }
}

#[test]
fn languages_are_required_and_checked_by_name() {
    let t = Translator::load(&fixtures().join("nllb")).unwrap();
    let opts = DecodeOptions::default();
    let err = t.translate(&["Bonjour"], &opts).unwrap_err().to_string();
    assert!(err.contains("target_lang") && err.contains("give the source and target language"), "{err}");
    let input = |source, target| Input { direction: Some(Direction { source, target }), ..Input::new("Bonjour", 0) };
    let err = t.translate_inputs(&[input("fra_Latn", "klingon")], &opts).unwrap_err().to_string();
    assert!(err.contains("target_lang") && err.contains("\"klingon\" is not one of this model's 202"), "{err}");
    let err = t.translate_inputs(&[input("fr", "eng_Latn")], &opts).unwrap_err().to_string();
    assert!(err.contains("source_lang"), "{err}");
    // M2M-100 takes its codes bare or as tokens
    let t = Translator::load(&fixtures().join("m2m100")).unwrap();
    let a = t.translate_inputs(&[input("fr", "en")], &opts).unwrap();
    let b = t.translate_inputs(&[input("__fr__", "__en__")], &opts).unwrap();
    assert_eq!(a, b);
    assert_eq!(t.languages().unwrap().len(), 100);
    // the tied table is looked up in the output projection's packed copy, not held twice
    assert_eq!(t.model.encoder.embeddings.tokens.dim(0).unwrap(), 0);
    assert_eq!(t.model.decoder.embeddings.tokens.dim(0).unwrap(), 0);
    // a blank line stays blank (the language token alone is nothing to translate)
    let blank = t
        .translate_inputs(
            &[Input { direction: Some(Direction { source: "fr", target: "en" }), ..Input::new("  ", 0) }],
            &opts,
        )
        .unwrap();
    assert_eq!(blank[0].text(), "");
}

/// The explainer shows the language tokens as what they are: the source's first token and the
/// decoder's forced first step; the rest is the translation `translate` gives.
#[test]
fn explain_shows_the_language_tokens() {
    let t = Translator::load(&fixtures().join("nllb")).unwrap();
    let direction = Some(Direction { source: "fra_Latn", target: "eng_Latn" });
    let input = Input { direction, ..Input::new("Un homme regarde le chat noir.", 0) };
    let opts = DecodeOptions { strategy: Strategy::Greedy, ..DecodeOptions::default() };
    let e = transduce::explain::explain_input(&t, &input, &opts, 3).unwrap();
    let translation = t.translate_inputs(&[input], &opts).unwrap().remove(0);
    assert_eq!(e.translation, translation.text());
    assert_eq!(e.source_tokens.first().map(String::as_str), Some("fra_Latn"));
    assert_eq!(e.target_tokens.first().map(String::as_str), Some("eng_Latn"));
    assert_eq!(e.decoder_inputs[1], "eng_Latn");
    let n = translation.best().tokens.len();
    assert_eq!((e.steps.len(), e.target_tokens.len()), (n + 2, n + 2));
    assert_eq!(e.steps[0].chosen, "eng_Latn");
    let cross = &e.cross_attention[0][0];
    assert_eq!((cross.len(), cross[0].len()), (n + 2, e.source_tokens.len()));
    // without languages: the option is named
    let err = transduce::explain::explain(&t, "Bonjour", &opts, 3).unwrap_err().to_string();
    assert!(err.contains("target_lang"), "{err}");
}

/// `transduce translate --source-lang/--target-lang` on each family, and the flag named when
/// a code is unknown.
#[test]
fn cli_translate_takes_the_family_codes() {
    let tmp = common::TempDir::new("m2m100-cli");
    let input = tmp.write("in.txt", "Un homme regarde le chat noir.\nOù est la gare ?\n".as_bytes());
    for (name, source, target) in [("m2m100", "fr", "en"), ("nllb", "fra_Latn", "deu_Latn")] {
        let dir = fixtures().join(name);
        let run = |target: &str| {
            std::process::Command::new(env!("CARGO_BIN_EXE_transduce"))
                .args(["translate", "-m", dir.to_str().unwrap(), "--source-lang", source, "--target-lang", target])
                .args(["--beam", "4", "--input", input.to_str().unwrap()])
                .output()
                .unwrap()
        };
        let out = run(target);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let t = Translator::load(&dir).unwrap();
        // the CLI's defaults with --beam 4
        let settings = transduce::search::SearchSettings { beam: 4, ..Default::default() };
        let cli_defaults = settings.decode_options(transduce::search::Alignment::Off, 4096).unwrap();
        let inputs: Vec<Input> = ["Un homme regarde le chat noir.", "Où est la gare ?"]
            .iter()
            .enumerate()
            .map(|(i, s)| Input { direction: Some(Direction { source, target }), ..Input::new(s, i as u64) })
            .collect();
        let want: Vec<String> =
            t.translate_inputs(&inputs, &cli_defaults).unwrap().iter().map(|tr| tr.text().to_string() + "\n").collect();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), want.concat(), "{name}");
        let out = run("xx_Latn");
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--target-lang: \"xx_Latn\" is not one of this model's"), "{err}");
    }
}

/// Alignments of a multilingual model count the text's words, not the language tokens: the
/// links `translate` gives equal those of reading its translation back (`transduce align`).
#[test]
fn alignments_leave_the_language_tokens_out() {
    let t = Translator::load(&fixtures().join("nllb")).unwrap();
    let direction = Some(Direction { source: "fra_Latn", target: "eng_Latn" });
    let opts = DecodeOptions {
        strategy: Strategy::Greedy,
        alignment: transduce::search::Alignment::LastLayer,
        ..DecodeOptions::default()
    };
    for text in ["Un homme regarde le chat noir.", "Deux enfants jouent dans le parc avec un chien."] {
        let input = Input { direction, ..Input::new(text, 0) };
        let translation = t.translate_inputs(&[input], &opts).unwrap().remove(0);
        let best = translation.best();
        let forced = transduce::explain::forced_attention_input(&t, &input, &best.text).unwrap();
        let last = forced.cross_attention.len() - 1;
        assert_eq!(forced.links(last, &[]), best.alignment.clone().unwrap(), "{text}");
        let words = text.split_whitespace().count();
        assert!(best.alignment.as_ref().unwrap().iter().all(|&(s, _)| s < words), "{text}");
    }
}
