//! `transduce score` from the command line: sacrebleu's numbers, its `-lc`, stdin input, and a
//! clear message for each kind of bad input.

mod common;

use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/score")
}

fn expected() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("expected.json")).unwrap()).unwrap()
}

fn transduce(args: &[&str], stdin: Option<&[u8]>) -> (bool, String, String) {
    common::transduce(args, stdin.unwrap_or_default())
}

#[test]
fn prints_sacrebleus_scores_for_files_and_stdin() {
    let dir = fixtures();
    let (hyp, r1, r2) = (dir.join("hyp.txt"), dir.join("ref1.txt"), dir.join("ref2.txt"));
    let e = expected();
    let (ok, out, err) = transduce(&["score", "--ref", r1.to_str().unwrap(), "--hyp", hyp.to_str().unwrap()], None);
    assert!(ok, "{err}");
    let want = &e["corpus"]["cased_1ref"];
    assert!(out.starts_with(&format!("BLEU = {}", want["bleu_line"].as_str().unwrap())), "{out}");
    assert!(out.contains(&format!("chrF2 = {}", want["chrf"].as_str().unwrap())), "{out}");

    let stdin = std::fs::read(&hyp).unwrap();
    let args = ["score", "-r", r1.to_str().unwrap(), "-r", r2.to_str().unwrap(), "-lc", "--metrics", "bleu", "--json"];
    let (ok, out, err) = transduce(&args, Some(&stdin));
    assert!(ok, "{err}");
    let json: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let want: f64 = e["corpus"]["lc_2ref"]["bleu"].as_str().unwrap().parse().unwrap();
    assert_eq!(json["bleu"].as_f64().unwrap(), want);
    assert!(json.get("chrf").is_none());
}

#[test]
fn bad_input_is_named() {
    let tmp = std::env::temp_dir().join(format!("transduce-score-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = tmp.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_str().unwrap().to_string()
    };
    let two = write("two.txt", b"a b\nc d\n");
    let three = write("three.txt", b"a b\nc d\ne\n");
    let bad = write("bad.txt", b"fine\n\xc3\x28 broken\n");

    let (ok, _, err) = transduce(&["score", "--ref", &three, "--hyp", &two], None);
    assert!(!ok);
    assert!(err.contains("three.txt has 3 lines but") && err.contains("two.txt has 2"), "{err}");

    let (ok, _, err) = transduce(&["score", "--ref", &two, "--hyp", &bad], None);
    assert!(!ok);
    assert!(err.contains("bad.txt: line 2: invalid UTF-8"), "{err}");

    let missing = tmp.join("missing.txt");
    let (ok, _, err) = transduce(&["score", "--ref", missing.to_str().unwrap(), "--hyp", &two], None);
    assert!(!ok);
    assert!(err.contains("missing.txt") && err.contains("No such file"), "{err}");
    std::fs::remove_dir_all(&tmp).unwrap();
}
