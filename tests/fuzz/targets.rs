//! The fuzz targets: each takes arbitrary bytes to one of transduce's parsers and reads what it
//! accepts further (encodes with a parsed tokenizer, loads a parsed model). A target may return
//! an error for any input; a panic, a hang or an allocation sized by unchecked input is a bug.
//!
//! Shared by `tests/fuzz.rs` (every target for a short bounded time over the committed corpus
//! and its mutations, in CI) and `fuzz/` (coverage-guided libFuzzer runs, `tools/fuzz.sh`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use candle_core::Device;
use transduce::eval::{Bleu, Chrf};
use transduce::text::sentencepiece::SentencePieceModel;
use transduce::text::SubwordTokenizer;

/// A fuzz target: its name (the corpus directory under `tests/fuzz/corpus/`) and its function.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
}

pub const TARGETS: &[Target] = &[
    Target { name: "sentencepiece", run: sentencepiece },
    Target { name: "safetensors", run: safetensors },
    Target { name: "model_dir", run: model_dir },
    Target { name: "hf_config", run: hf_config },
    Target { name: "tokenizer_json", run: tokenizer_json },
    Target { name: "vocab_json", run: vocab_json },
    Target { name: "train_toml", run: train_toml },
    Target { name: "metrics", run: metrics },
    Target { name: "corpus_lines", run: corpus_lines },
    Target { name: "server_request", run: server_request },
    Target { name: "html", run: html },
];

pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// The repository's root (this file is compiled by the root package's tests and by `fuzz/`).
fn root() -> &'static Path {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    if manifest.join("tests/fixtures").exists() {
        manifest
    } else {
        manifest.parent().expect("fuzz/ sits in the repository")
    }
}

/// The tiny Hugging Face Marian model the model-directory targets start from.
pub fn tiny_hf() -> PathBuf {
    root().join("tests/fixtures/hf_marian/tiny")
}

/// A scratch directory of this process, holding a copy of the tiny model under `model/`.
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("transduce-fuzz-{}", std::process::id()));
        let model = dir.join("model");
        std::fs::create_dir_all(&model).expect("a scratch directory");
        for entry in std::fs::read_dir(tiny_hf()).expect("the tiny model fixture") {
            let path = entry.expect("a fixture file").path();
            std::fs::copy(&path, model.join(path.file_name().expect("a file name"))).expect("copying the fixture");
        }
        dir
    })
}

/// Writes `bytes` as `name` in the scratch directory (or its `model/`) and returns the path.
fn file(name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch().join(name);
    std::fs::write(&path, bytes).expect("writing a scratch file");
    path
}

/// The tiny model's original `name`, put back after a target changed it (from memory, with
/// `write`, which retries a write a signal interrupts: libFuzzer's timers send them).
fn restore(name: &str) {
    static ORIGINALS: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    let originals = ORIGINALS.get_or_init(|| {
        ["config.json", "model.safetensors"]
            .iter()
            .map(|n| (n.to_string(), std::fs::read(tiny_hf().join(n)).expect("a fixture file")))
            .collect()
    });
    let (_, bytes) = originals.iter().find(|(n, _)| n == name).expect("a restorable fixture file");
    std::fs::write(scratch().join("model").join(name), bytes).expect("restoring a fixture file");
}

/// Splits `data` at the first 0xFF byte (never in UTF-8 text) into two parts.
fn two_parts(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == 0xff) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[]),
    }
}

const TEXT: &str = "Le chat noir, très « rapide », dort.\tAnd ＡＢＣ ﬁ \u{200b} 123!";

/// A SentencePiece model (protobuf) parsed, then used: normalising and encoding text.
pub fn sentencepiece(data: &[u8]) {
    if let Ok(model) = SentencePieceModel::from_bytes(data) {
        let _ = model.normalize(TEXT);
        if let Ok(pieces) = model.encode(TEXT) {
            let names: Vec<&str> = pieces.iter().map(|(p, _)| p.as_str()).collect();
            let _ = model.decode_pieces(&names);
        }
        let _ = model.to_bytes();
    }
}

/// A safetensors file: header, dtypes, shapes, offsets, and the tensors read from it.
pub fn safetensors(data: &[u8]) {
    let path = file("weights.safetensors", data);
    let _ = transduce::model::weights::stores_int8(&path);
    let _ = transduce::model::weights::read_weights_file(&path, &Device::Cpu);
}

/// A model directory with this `config.json` and `model.safetensors` (split at 0xFF): loaded
/// for translation and, where it loads, translating a sentence.
pub fn model_dir(data: &[u8]) {
    let (config, weights) = two_parts(data);
    let model = scratch().join("model");
    std::fs::write(model.join("config.json"), config).expect("writing config.json");
    std::fs::write(model.join("model.safetensors"), weights).expect("writing model.safetensors");
    if let Ok(translator) = transduce::Translator::load(&model) {
        let options = transduce::DecodeOptions { max_len: 8, ..Default::default() };
        let _ = translator.translate(&["le chat"], &options);
    }
    restore("config.json");
    restore("model.safetensors");
}

/// A Hugging Face `config.json` read as the model configuration (format detection included).
pub fn hf_config(data: &[u8]) {
    let model = scratch().join("model");
    std::fs::write(model.join("config.json"), data).expect("writing config.json");
    if let Ok(dir) = transduce::ModelDir::open(&model) {
        if let Ok(config) = dir.config() {
            let _ = config.validate();
        }
    }
    restore("config.json");
}

/// A `tokenizer.json` loaded, then encoding and decoding text.
pub fn tokenizer_json(data: &[u8]) {
    let path = file("tokenizer.json", data);
    if let Ok(tokenizer) = SubwordTokenizer::load_pretrained(&path) {
        if let Ok(ids) = tokenizer.encode(TEXT) {
            let _ = tokenizer.decode(&ids);
        }
    }
}

/// A Marian `vocab.json` beside the tiny model's SentencePiece files, then encoding text.
pub fn vocab_json(data: &[u8]) {
    let vocab = file("vocab.json", data);
    let spm = tiny_hf().join("source.spm");
    if let Ok(marian) = transduce::text::marian::MarianVocab::load(&spm, &tiny_hf().join("target.spm"), &vocab) {
        let tokenizer = SubwordTokenizer::marian(marian);
        if let Ok(ids) = tokenizer.encode(TEXT) {
            let _ = tokenizer.decode(&ids);
        }
    }
}

/// A training config (`--config train.toml`) merged over the defaults and checked.
pub fn train_toml(data: &[u8]) {
    let path = file("train.toml", data);
    let source = transduce::data::corpus::CorpusSource::Tsv(scratch().join("none.tsv"));
    let mut config = transduce::TrainConfig::new(source, None, scratch().join("out"));
    if config.merge_toml(&path).is_ok() {
        let _ = config.validate();
    }
}

/// BLEU's 13a tokenizer, BLEU and chrF of a hypothesis and a reference (split at 0xFF).
pub fn metrics(data: &[u8]) {
    let (hyp, reference) = two_parts(data);
    let (hyp, reference) = (String::from_utf8_lossy(hyp), String::from_utf8_lossy(reference));
    let _ = transduce::eval::tokenize_13a::tokenize_13a(&hyp);
    let _ = Bleu::default().corpus_score(&[&hyp], &[vec![&reference]]);
    let _ = Chrf::default().corpus_score(&[&hyp], &[vec![&reference]]);
}

/// Corpus lines: a stream read line by line, and a `source<TAB>target` file read as pairs.
pub fn corpus_lines(data: &[u8]) {
    let mut lines = transduce::data::lines::LineReader::from_bytes(data.to_vec(), "fuzz");
    while let Ok(Some(_)) = lines.next_line() {}
    let tsv = file("corpus.tsv", data);
    let source = transduce::data::corpus::CorpusSource::Tsv(tsv);
    if let Ok(pairs) = transduce::data::corpus::PairReader::open(&source) {
        for pair in pairs {
            if pair.is_err() {
                break;
            }
        }
    }
}

/// A request to the server: query string and body (split at 0xFF), the body as JSON or as a
/// form by the first byte, then the LibreTranslate and DeepL parameters read from it.
pub fn server_request(data: &[u8]) {
    use axum::http::{header, HeaderMap, HeaderValue};
    let (query, body) = two_parts(data);
    let mut headers = HeaderMap::new();
    let json = body.first().is_some_and(|b| b % 2 == 0);
    let kind = if json { "application/json" } else { "application/x-www-form-urlencoded" };
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    let query = std::str::from_utf8(query).ok();
    let body = axum::body::Bytes::copy_from_slice(body);
    if let Ok(params) = transduce_cli::serve::request::Params::read(query, &headers, &body) {
        for name in ["q", "source", "target", "format", "alternatives", "api_key"] {
            let _ = params.string(name);
        }
        let _ = params.strings("text");
        let _ = params.strings("q");
    }
}

/// HTML as the server splits it into sentences (tags, entities, verbatim elements).
pub fn html(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = transduce_cli::serve::html::sentences_to_translate(&text, "en");
}
