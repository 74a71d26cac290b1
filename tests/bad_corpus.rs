//! A big training corpus with the defects real ones have — CRLF endings, NUL bytes, 1 MB lines,
//! and near the end invalid UTF-8 or a missing line on one side — gives a clear error with the
//! file and line before any update is made, or trains with the bad pairs dropped and counted.
//!
//! `TRANSDUCE_BAD_CORPUS_MB` sets the size of each side (16 MB by default, as CI runs it;
//! `tools/reliability.sh` runs 1024).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Writes `lines` sentence pairs of about `mb` MB per side, every 1000th source line ending in
/// CRLF, one with a NUL byte, one 1 MB line; `tail` is appended to each side as it is.
fn write_corpus(dir: &Path, mb: usize, tail: (&[u8], &[u8])) -> (PathBuf, PathBuf, usize) {
    let words = ["le", "chat", "noir", "voit", "un", "chien", "rouge", "dans", "la", "maison"];
    let english = ["the", "cat", "black", "sees", "a", "dog", "red", "in", "the", "house"];
    let (sp, tp) = (dir.join("big.fr"), dir.join("big.en"));
    let mut s = std::io::BufWriter::new(std::fs::File::create(&sp).unwrap());
    let mut t = std::io::BufWriter::new(std::fs::File::create(&tp).unwrap());
    let (mut written, mut lines, mut state) = (0usize, 0usize, 7u64);
    while written < mb << 20 {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let idx: Vec<usize> = (0..3 + (state >> 60) as usize).map(|k| ((state >> (k * 4)) % 10) as usize).collect();
        let source: Vec<&str> = idx.iter().map(|&i| words[i]).collect();
        let target: Vec<&str> = idx.iter().map(|&i| english[i]).collect();
        let end = if lines % 1000 == 999 { "\r\n" } else { "\n" };
        let mut line = source.join(" ");
        if lines == 5000 {
            line.push_str(" \0 nul");
        }
        if lines == 7000 {
            line = "x".repeat(1 << 20);
        }
        write!(s, "{line}{end}").unwrap();
        writeln!(t, "{}", target.join(" ")).unwrap();
        written += line.len() + 1;
        lines += 1;
    }
    s.write_all(tail.0).unwrap();
    t.write_all(tail.1).unwrap();
    s.flush().unwrap();
    t.flush().unwrap();
    (sp, tp, lines)
}

fn train(dir: &Path, src: &Path, tgt: &Path) -> (bool, String, f64) {
    let out = dir.join("model");
    let _ = std::fs::remove_dir_all(&out);
    let started = Instant::now();
    let (ok, _, err) = common::transduce(
        &[
            "train",
            "--src",
            src.to_str().unwrap(),
            "--tgt",
            tgt.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--preset",
            "tiny",
            "--vocab-size",
            "200",
            "--max-updates",
            "2",
            "--max-tokens",
            "500",
        ],
        b"",
    );
    (ok, err, started.elapsed().as_secs_f64())
}

#[test]
fn defects_near_the_end_of_a_big_corpus_are_named_before_training() {
    let mb: usize = std::env::var("TRANSDUCE_BAD_CORPUS_MB").ok().and_then(|s| s.parse().ok()).unwrap_or(16);
    let dir = common::TempDir::new("bad-corpus");
    let mut report = Vec::new();

    // invalid UTF-8 in the third line from the end
    let (src, tgt, lines) = write_corpus(&dir.0, mb, (b"le chat\nle \xff\xfe chat\nfin\n", b"the cat\nthe cat\nend\n"));
    let (ok, err, seconds) = train(&dir.0, &src, &tgt);
    let line = lines + 2;
    assert!(!ok && err.contains(&format!("big.fr: line {line}: invalid UTF-8")), "{err}");
    assert!(!err.contains("updates"), "no update is made before the error: {err}");
    report.push(format!("{mb} MB, invalid UTF-8 at line {line}: {:.1} s: {}", seconds, err.trim()));

    // one target line missing at the end
    let (src, tgt, lines) = write_corpus(&dir.0, mb, (b"le chat\nfin\n", b"the cat\n"));
    let (ok, err, seconds) = train(&dir.0, &src, &tgt);
    assert!(!ok && err.contains(&format!("has {} lines but", lines + 2)), "{err}");
    assert!(!err.contains("updates"), "{err}");
    report.push(format!("{mb} MB, a line missing at the end: {:.1} s: {}", seconds, err.trim()));

    // CRLF, a NUL byte and a 1 MB line: trained on, the long pair dropped and counted
    let (src, tgt, lines) = write_corpus(&dir.0, mb, (b"", b""));
    let (ok, err, seconds) = train(&dir.0, &src, &tgt);
    assert!(ok, "{err}");
    let summary = err.lines().find(|l| l.starts_with("stopped")).unwrap();
    assert!(summary.contains("after 2 updates"), "{summary}");
    assert!(
        !summary.contains("dropped 0 with an empty side, 0 too long, 0 with"),
        "the 1 MB line is counted: {summary}"
    );
    report.push(format!("{mb} MB ({lines} lines) with CRLF, NUL and a 1 MB line: {seconds:.1} s: {summary}"));
    eprintln!("{}", report.join("\n"));
}
