//! BLEU and chrF against sacrebleu 2.x on committed fixtures (written by
//! tools/make_score_fixtures.py): 13a tokenization of every line, per-segment statistics, and
//! the printed corpus scores, cased and lowercased, with one and two references.

mod common;

use std::path::Path;

use serde_json::Value;
use transduce::eval::tokenize_13a::tokenize_13a;
use transduce::eval::{Bleu, Case, Chrf};

fn fixture() -> (Vec<String>, Vec<String>, Vec<String>, Value) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/score");
    let lines = |name: &str| -> Vec<String> {
        std::fs::read_to_string(dir.join(name)).unwrap().lines().map(str::to_string).collect()
    };
    let expected = serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    (lines("hyp.txt"), lines("ref1.txt"), lines("ref2.txt"), expected)
}

#[test]
fn tokenization_matches_sacrebleu_13a_line_by_line() {
    let (hyps, refs, _, expected) = fixture();
    let want = expected["tokenized_13a"].as_array().unwrap();
    common::fixture_len(want, hyps.len() + refs.len(), "score/expected.json tokenized_13a");
    assert!(hyps.len() >= 100, "score/hyp.txt has {} lines", hyps.len());
    for (line, want) in hyps.iter().chain(&refs).zip(want) {
        assert_eq!(tokenize_13a(line), want.as_str().unwrap(), "line {line:?}");
    }
}

#[test]
fn segment_statistics_match_sacrebleu() {
    let (hyps, r1, r2, expected) = fixture();
    let segments = expected["segments"].as_array().unwrap();
    assert_eq!(segments.len(), hyps.len());
    for (i, seg) in segments.iter().enumerate() {
        let refs = [r1[i].as_str(), r2[i].as_str()];
        let b = Bleu::default().segment_stats(&hyps[i], &refs);
        let mut got: Vec<u64> = vec![b.hyp_len as u64, b.ref_len as u64];
        got.extend(b.correct.iter().chain(&b.total).map(|&x| x as u64));
        let want: Vec<u64> = seg["bleu"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
        assert_eq!(got, want, "BLEU statistics of segment {i}: {:?}", hyps[i]);
        let c = Chrf::default().segment_stats(&hyps[i], &refs);
        let got: Vec<u64> = c.iter().flatten().map(|&x| x as u64).collect();
        let want: Vec<u64> = seg["chrf"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
        assert_eq!(got, want, "chrF statistics of segment {i}: {:?}", hyps[i]);
    }
}

#[test]
fn corpus_scores_match_sacrebleu_to_the_printed_decimals() {
    let (hyps, r1, r2, expected) = fixture();
    let hyps: Vec<&str> = hyps.iter().map(String::as_str).collect();
    let r1: Vec<&str> = r1.iter().map(String::as_str).collect();
    let r2: Vec<&str> = r2.iter().map(String::as_str).collect();
    for (case, case_name) in [(Case::Sensitive, "cased"), (Case::Lower, "lc")] {
        for nrefs in [1, 2] {
            let streams = [r1.clone(), r2.clone()][..nrefs].to_vec();
            let key = format!("{case_name}_{nrefs}ref");
            let want = &expected["corpus"][&key];
            let bleu = Bleu { case }.corpus_score(&hyps, &streams);
            assert_eq!(format!("{:.2}", bleu.score), want["bleu"].as_str().unwrap(), "{key} BLEU");
            let line = bleu.to_string();
            assert!(line.starts_with(&format!("BLEU = {}", want["bleu_line"].as_str().unwrap())), "{key}: {line}");
            assert_eq!(format!("{:.3}", bleu.brevity_penalty), want["bp"].as_str().unwrap(), "{key} BP");
            assert_eq!(bleu.stats.hyp_len as u64, want["sys_len"].as_u64().unwrap());
            assert_eq!(bleu.stats.ref_len as u64, want["ref_len"].as_u64().unwrap());
            let chrf = Chrf { case }.corpus_score(&hyps, &streams);
            assert_eq!(format!("{:.2}", chrf.score), want["chrf"].as_str().unwrap(), "{key} chrF");
        }
    }
}

#[test]
fn degenerate_corpora() {
    // identical text scores 100; nothing in common scores 0; an empty hypothesis corpus scores 0
    let same = ["a b c d e", "f g h i j"];
    let refs = vec![same.to_vec()];
    assert_eq!(format!("{:.2}", Bleu::default().corpus_score(&same, &refs).score), "100.00");
    assert_eq!(format!("{:.2}", Chrf::default().corpus_score(&same, &refs).score), "100.00");
    let other = ["x y z", "u v w"];
    assert_eq!(Bleu::default().corpus_score(&other, &refs).score, 0.0);
    assert_eq!(Chrf::default().corpus_score(&other, &refs).score, 0.0);
    let empty = ["", ""];
    assert_eq!(Bleu::default().corpus_score(&empty, &refs).score, 0.0);
    assert_eq!(Chrf::default().corpus_score(&empty, &refs).score, 0.0);
}
