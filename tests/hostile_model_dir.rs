//! Hostile model directories: truncated files, headers with huge shapes, huge header lengths or
//! overlapping offsets, NaN / infinite weights, wrong dtypes, symbolic links out of the
//! directory. Each gives an error naming the file and the field, before any allocation an
//! unchecked header would size.

mod common;

use std::path::Path;

use serde_json::{json, Value};
use transduce::Translator;

fn fixture() -> std::path::PathBuf {
    common::server::tiny_hf()
}

/// A copy of the tiny Hugging Face Marian model in `dir/name`.
fn copy(dir: &Path, name: &str) -> std::path::PathBuf {
    let to = dir.join(name);
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(fixture()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
    to
}

/// The header and data of a safetensors file.
fn split(bytes: &[u8]) -> (serde_json::Map<String, Value>, Vec<u8>) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (serde_json::from_slice(&bytes[8..8 + n]).unwrap(), bytes[8 + n..].to_vec())
}

fn join(header: &serde_json::Map<String, Value>, data: &[u8]) -> Vec<u8> {
    let text = serde_json::to_vec(header).unwrap();
    [&(text.len() as u64).to_le_bytes()[..], &text, data].concat()
}

/// The first tensor in file order (the one at offset 0) and its entry.
fn first_tensor(header: &serde_json::Map<String, Value>) -> (String, Value) {
    let (name, entry) = header
        .iter()
        .filter(|(n, _)| *n != "__metadata__")
        .min_by_key(|(_, e)| e["data_offsets"][0].as_u64().unwrap())
        .unwrap();
    (name.clone(), entry.clone())
}

fn load_error(dir: &Path) -> String {
    match Translator::load(dir) {
        Ok(_) => panic!("{}: loaded", dir.display()),
        Err(e) => e.to_string(),
    }
}

/// Rewrites `model.safetensors` of a fresh copy with `edit` and returns the load error.
fn with_weights(
    dir: &Path,
    name: &str,
    edit: impl FnOnce(&mut serde_json::Map<String, Value>, &mut Vec<u8>),
) -> String {
    let model = copy(dir, name);
    let (mut header, mut data) = split(&std::fs::read(model.join("model.safetensors")).unwrap());
    edit(&mut header, &mut data);
    std::fs::write(model.join("model.safetensors"), join(&header, &data)).unwrap();
    load_error(&model)
}

#[test]
fn hostile_weights_files_are_refused_naming_the_file_and_tensor() {
    let dir = common::TempDir::new("hostile-model-dir");
    let mut report = Vec::new();
    let mut expect = |case: &str, error: String, parts: &[&str]| {
        for part in parts {
            assert!(error.contains(part), "{case}: {error:?} should name {part:?}");
        }
        report.push(format!("{case}: {error}"));
    };

    // truncated: half the file
    let model = copy(&dir.0, "truncated");
    let bytes = std::fs::read(model.join("model.safetensors")).unwrap();
    std::fs::write(model.join("model.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    expect("truncated", load_error(&model), &["model.safetensors", "truncated"]);
    std::fs::write(model.join("model.safetensors"), &bytes[..5]).unwrap();
    expect("shorter than its header length", load_error(&model), &["model.safetensors"]);

    // a header length of 2^64 - 1: refused before anything is allocated
    let model = copy(&dir.0, "header-length");
    let mut bytes = std::fs::read(model.join("model.safetensors")).unwrap();
    bytes[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(model.join("model.safetensors"), &bytes).unwrap();
    expect("huge header length", load_error(&model), &["model.safetensors", "header of 18446744073709551615 bytes"]);

    // a shape of 2^40 x 2^40 over the same bytes
    let error = with_weights(&dir.0, "huge-shape", |header, _| {
        let (name, _) = first_tensor(header);
        header[&name]["shape"] = json!([1u64 << 40, 1u64 << 40]);
    });
    expect("huge shape", error, &["model.safetensors"]);

    // two tensors over the same bytes
    let error = with_weights(&dir.0, "overlap", |header, _| {
        let (first, entry) = first_tensor(header);
        let other = header.keys().find(|n| **n != first && *n != "__metadata__").unwrap().clone();
        header[&other]["data_offsets"] = entry["data_offsets"].clone();
        header[&other]["shape"] = entry["shape"].clone();
    });
    expect("overlapping offsets", error, &["model.safetensors", "data offsets"]);

    // offsets past the end of the file
    let error = with_weights(&dir.0, "out-of-file", |header, data| {
        let (name, _) = first_tensor(header);
        let end = data.len() as u64;
        header[&name]["data_offsets"] = json!([0, end + 4096]);
    });
    expect("offsets out of the file", error, &["model.safetensors"]);

    // NaN and infinity in the weights
    for (case, value) in [("nan", f32::NAN), ("infinity", f32::INFINITY)] {
        let error = with_weights(&dir.0, case, |header, data| {
            let (name, entry) = first_tensor(header);
            assert_eq!(entry["dtype"], "F32", "{name}");
            data[4..8].copy_from_slice(&value.to_le_bytes());
        });
        expect(case, error, &["model.safetensors", "must be finite"]);
    }

    // an integer dtype where weights are floats (same byte size)
    let error = with_weights(&dir.0, "dtype", |header, _| {
        let (name, _) = first_tensor(header);
        header[&name]["dtype"] = json!("I32");
    });
    expect("wrong dtype", error, &["model.safetensors", "floating point"]);
    let error = with_weights(&dir.0, "unknown-dtype", |header, _| {
        let (name, _) = first_tensor(header);
        header[&name]["dtype"] = json!("F128");
    });
    expect("unknown dtype", error, &["model.safetensors"]);

    eprintln!("{}", report.join("\n"));
}

#[test]
fn symbolic_links_out_of_the_directory_are_refused() {
    let dir = common::TempDir::new("hostile-links");
    let outside = dir.0.join("elsewhere.safetensors");
    std::fs::copy(fixture().join("model.safetensors"), &outside).unwrap();
    let model = copy(&dir.0, "linked-out");
    std::fs::remove_file(model.join("model.safetensors")).unwrap();
    std::os::unix::fs::symlink(&outside, model.join("model.safetensors")).unwrap();
    let error = load_error(&model);
    assert!(
        error.contains("model.safetensors: a symbolic link to") && error.contains("outside the model directory"),
        "{error}"
    );
    eprintln!("link out of the directory: {error}");

    let model = copy(&dir.0, "dangling");
    std::fs::remove_file(model.join("vocab.json")).unwrap();
    std::os::unix::fs::symlink(dir.0.join("nothing"), model.join("vocab.json")).unwrap();
    let error = load_error(&model);
    assert!(error.contains("vocab.json") && error.contains("symbolic link to nothing"), "{error}");

    // links within the directory, and a Hugging Face cache snapshot's links into its blobs/, load
    let model = copy(&dir.0, "linked-in");
    std::fs::rename(model.join("model.safetensors"), model.join("weights.bin")).unwrap();
    std::os::unix::fs::symlink("weights.bin", model.join("model.safetensors")).unwrap();
    Translator::load(&model).unwrap();
    let repo = dir.0.join("hub/models--org--tiny");
    let snapshot = repo.join("snapshots/0123abc");
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    std::fs::create_dir_all(&snapshot).unwrap();
    for entry in std::fs::read_dir(fixture()).unwrap() {
        let path = entry.unwrap().path();
        let blob = repo.join("blobs").join(path.file_name().unwrap());
        std::fs::copy(&path, &blob).unwrap();
        std::os::unix::fs::symlink(
            Path::new("../../blobs").join(path.file_name().unwrap()),
            snapshot.join(path.file_name().unwrap()),
        )
        .unwrap();
    }
    Translator::load(&snapshot).unwrap();
}
