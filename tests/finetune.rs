//! Fine-tuning (`transduce train --init`) of the tiny Hugging Face models of each family on a
//! small domain set: the loss falls, the model keeps its tokenizer and language codes, and
//! `transduce export` writes it back in its family's format, which loads to the same
//! translations.

mod common;

use std::path::{Path, PathBuf};

use transduce::search::{DecodeOptions, Strategy};
use transduce::text::languages::Direction;
use transduce::translate::{Input, Translator};

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(path)
}

/// A small "domain": kitchen sentences the fixtures never saw, French -> English.
fn domain(dir: &Path) -> (String, String) {
    let things =
        [("la tasse", "the cup"), ("le couteau", "the knife"), ("la poêle", "the pan"), ("le sel", "the salt")];
    let verbs = [("lave", "washes"), ("prend", "takes"), ("pose", "puts down")];
    let (mut s, mut t) = (String::new(), String::new());
    for (i, (fr, en)) in things.iter().enumerate() {
        for (j, (vf, ve)) in verbs.iter().enumerate() {
            let who = [("Le cuisinier", "The cook"), ("Ma sœur", "My sister")][(i + j) % 2];
            s += &format!("{} {vf} {fr}.\n", who.0);
            t += &format!("{} {ve} {en}.\n", who.1);
        }
    }
    let (sp, tp) = (dir.join("domain.fr"), dir.join("domain.en"));
    std::fs::write(&sp, s).unwrap();
    std::fs::write(&tp, t).unwrap();
    (sp.to_str().unwrap().into(), tp.to_str().unwrap().into())
}

/// Training losses (`metrics.jsonl`, one per update).
fn losses(dir: &Path) -> Vec<f64> {
    common::metrics_records(dir, "train").iter().map(|v| v["loss"].as_f64().unwrap()).collect()
}

/// Fine-tunes `init` for 40 updates; returns the model directory and the mean loss of the first
/// and last five updates.
fn fine_tune(tmp: &Path, init: &Path, languages: &[&str]) -> (PathBuf, f64, f64) {
    let (src, tgt) = domain(tmp);
    let out = tmp.join("tuned");
    let args = [
        "train",
        "--init",
        init.to_str().unwrap(),
        "--src",
        &src,
        "--tgt",
        &tgt,
        "--out",
        out.to_str().unwrap(),
        "--max-updates",
        "40",
        "--lr",
        "3e-3",
        "--warmup",
        "1",
        "--max-tokens",
        "300",
        "--dropout",
        "0",
        "--label-smoothing",
        "0",
        "--log-every",
        "1",
        "--valid-every",
        "1000",
    ];
    let (ok, _, err) = common::transduce(&[&args[..], languages].concat(), b"");
    assert!(ok, "{err}");
    let l = losses(&out);
    assert_eq!(l.len(), 40);
    let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
    (out, mean(&l[..5]), mean(&l[35..]))
}

const HELD_IN: [&str; 2] = ["Le cuisinier lave la tasse.", "Ma sœur prend le sel."];
const REFERENCES: [&str; 2] = ["The cook washes the cup.", "My sister takes the salt."];

fn translations(t: &Translator, direction: Option<Direction>) -> Vec<String> {
    let inputs: Vec<Input> =
        HELD_IN.iter().enumerate().map(|(i, s)| Input { direction, ..Input::new(s, i as u64) }).collect();
    let opts = DecodeOptions { strategy: Strategy::Greedy, ..DecodeOptions::default() };
    t.translate_inputs(&inputs, &opts).unwrap().iter().map(|tr| tr.text().to_string()).collect()
}

/// Fine-tunes, checks the loss falls and the tuned model learned the domain, exports to
/// `format` and checks the export translates as the tuned model does.
fn check(name: &str, init: &Path, languages: &[&str], direction: Option<Direction>, format: Option<&str>) {
    let tmp = common::TempDir::new(&format!("finetune-{name}"));
    let (tuned, first, last) = fine_tune(&tmp.0, init, languages);
    eprintln!("{name}: loss {first:.3} -> {last:.3} over 40 updates");
    assert!(last < 0.5 * first, "{name}: loss {first:.3} -> {last:.3}");
    let t = Translator::load(&tuned).unwrap();
    let original = Translator::load(init).unwrap();
    assert_eq!(t.languages().map(|l| l.len()), original.languages().map(|l| l.len()), "{name}: language codes kept");
    assert_eq!(t.tokenizers.source.vocab_size(), original.tokenizers.source.vocab_size(), "{name}: vocabulary kept");
    let tuned_out = translations(&t, direction);
    let chrf = |hyps: &[String]| {
        let hyps: Vec<&str> = hyps.iter().map(String::as_str).collect();
        transduce::eval::Chrf::default().corpus_score(&hyps, &[REFERENCES.to_vec()]).score
    };
    let (before, after) = (chrf(&translations(&original, direction)), chrf(&tuned_out));
    eprintln!("{name}: chrF on the domain {before:.1} -> {after:.1}: {tuned_out:?}");
    assert!(after > before + 10.0, "{name}: chrF {before:.1} -> {after:.1}");
    let Some(format) = format else { return };
    let exported = tmp.0.join("exported");
    let (ok, _, err) =
        common::transduce(&["export", format, "-m", tuned.to_str().unwrap(), "--out", exported.to_str().unwrap()], b"");
    assert!(ok, "{err}");
    let back = Translator::load(&exported).unwrap();
    // never onto the model itself
    let (ok, _, err) =
        common::transduce(&["export", format, "-m", tuned.to_str().unwrap(), "--out", tuned.to_str().unwrap()], b"");
    assert!(!ok && err.contains("another directory"), "{err}");
    assert_eq!(translations(&back, direction), tuned_out, "{name}: the export translates as the tuned model");
}

#[test]
fn nllb_fine_tunes_and_exports_back() {
    let direction = Some(Direction { source: "fra_Latn", target: "eng_Latn" });
    let languages = ["--src-lang", "fra_Latn", "--tgt-lang", "eng_Latn"];
    check("nllb", &fixture("hf_m2m100/nllb"), &languages, direction, Some("hf-m2m100"));
}

#[test]
fn madlad_fine_tunes_and_exports_back() {
    let direction = Some(Direction { source: "", target: "en" });
    let languages = ["--src-lang", "fr", "--tgt-lang", "en"];
    check("madlad", &fixture("hf_t5/madlad"), &languages, direction, Some("hf-t5"));
}

#[test]
fn t5_and_marian_fine_tune() {
    check("t5", &fixture("hf_t5/t5"), &[], None, Some("hf-t5"));
    check("marian", &fixture("hf_marian/tiny"), &[], None, None);
}

/// A multilingual model without its languages, or with a code it lacks, is refused naming the
/// flag; an int8 directory is refused.
#[test]
fn fine_tuning_names_what_is_missing() {
    let tmp = common::TempDir::new("finetune-errors");
    let (src, tgt) = domain(&tmp.0);
    let out = tmp.0.join("out");
    let run = |init: &Path, extra: &[&str]| {
        let args = ["train", "--init", init.to_str().unwrap(), "--src", &src, "--tgt", &tgt, "--out"];
        common::transduce(&[&args[..], &[out.to_str().unwrap(), "--max-updates", "1"], extra].concat(), b"")
    };
    let (ok, _, err) = run(&fixture("hf_m2m100/nllb"), &[]);
    assert!(!ok && err.contains("--tgt-lang"), "{err}");
    let (ok, _, err) = run(&fixture("hf_m2m100/nllb"), &["--src-lang", "fra_Latn", "--tgt-lang", "xx"]);
    assert!(!ok && err.contains("--tgt-lang") && err.contains("\"xx\""), "{err}");
    let (ok, _, err) = run(&fixture("hf_m2m100/m2m100"), &["--preset", "tiny"]);
    assert!(!ok && err.contains("--preset"), "{err}");
}
