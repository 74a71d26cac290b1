//! The explainer: recorded attention sums to 1 and the decoder's self-attention never looks
//! ahead; the page it writes loads in a real browser (headless Chromium) without console errors,
//! with the expected heatmaps and token labels; a screenshot is kept in target/.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;

use common::TempDir;
use transduce::data::corpus::CorpusSource;
use transduce::explain::{explain, html, Explanation};
use transduce::model::Preset;
use transduce::search::DecodeOptions;
use transduce::train::{train, Start, TrainConfig};
use transduce::translate::Translator;

/// A barely trained tiny model directory (the page does not need a good model).
fn model(dir: &Path) -> PathBuf {
    let (s, t) = (dir.join("train.fr"), dir.join("train.en"));
    std::fs::write(&s, "je t'aime .\nle chat noir .\ntu vois le chien ?\n".repeat(20)).unwrap();
    std::fs::write(&t, "I love you .\nthe black cat .\ndo you see the dog ?\n".repeat(20)).unwrap();
    let mut cfg = TrainConfig::new(CorpusSource::Aligned { source: s, target: t }, None, dir.join("model"));
    cfg.preset = Preset::Tiny;
    cfg.vocab_size = 60;
    cfg.max_updates = Some(3);
    train(&cfg, Start::Fresh, &AtomicBool::new(false), |_, _| {}).unwrap();
    dir.join("model")
}

fn explained(dir: &Path) -> (Translator, Vec<Explanation>) {
    let t = Translator::load(&model(dir)).unwrap();
    let opts = DecodeOptions { max_len: 8, ..DecodeOptions::greedy(8) };
    let e = ["je t'aime .", "le chat noir ."].iter().map(|s| explain(&t, s, &opts, 3).unwrap()).collect();
    (t, e)
}

#[test]
fn recorded_attention_is_normalised_and_causal() {
    let dir = TempDir::new("explain-record");
    let (t, explanations) = explained(&dir.0);
    let layers = t.model.config.decoder_layers;
    for e in &explanations {
        assert_eq!(e.encoder_attention.len(), t.model.config.encoder_layers);
        assert_eq!(e.cross_attention.len(), layers);
        assert_eq!(e.steps.len(), e.target_tokens.len());
        assert_eq!(e.context_map.len(), e.source_tokens.len());
        assert_eq!(e.source_tokens.last().unwrap(), "</s>");
        assert!(e.source_tokens.iter().all(|p| !p.is_empty()), "{:?}", e.source_tokens);
        for maps in [&e.encoder_attention, &e.decoder_self_attention, &e.cross_attention] {
            for row in maps.iter().flatten().flatten() {
                assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-4, "{row:?}");
            }
        }
        for head in e.decoder_self_attention.iter().flatten() {
            for (i, row) in head.iter().enumerate() {
                assert!(row[i + 1..].iter().all(|&a| a == 0.0), "step {i} looks ahead: {row:?}");
            }
        }
        for step in &e.steps {
            assert!(step.candidates.windows(2).all(|w| w[0].1 >= w[1].1));
        }
    }
}

#[test]
fn the_page_loads_in_a_browser() {
    let Some(browser) = common::browser() else { return };
    let dir = TempDir::new("explain-page");
    let (_, explanations) = explained(&dir.0);
    let page = dir.0.join("page.html");
    let files = html::write(&page, &explanations, "tiny").unwrap();
    assert_eq!(files.len(), 1 + 2 * explanations.len());
    let profile = dir.0.join("profile");
    let run = |extra: &[&str]| {
        Command::new(browser)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(format!("file://{}", page.display()))
            .output()
            .unwrap()
    };
    let out = run(&["--dump-dom", "--virtual-time-budget=2000"]);
    let dom = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(dom.contains(r#"data-ready="yes""#), "the page's script did not finish:\n{log}");
    for line in log.lines() {
        assert!(!line.contains("Uncaught") && !line.contains(":ERROR:CONSOLE"), "console error: {line}");
    }
    let expected: usize = explanations.iter().map(html::heatmap_count).sum();
    assert_eq!(dom.matches(r#"class="heatmap"#).count(), expected);
    // one map per view is shown: three views per sentence plus the alignment
    assert_eq!(dom.matches(r#"class="heatmap shown""#).count(), 3 * explanations.len());
    for e in &explanations {
        for token in e.source_tokens.iter().chain(&e.target_tokens) {
            // as the DOM serialises text
            let label = token.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
            assert!(dom.contains(&format!(">{label}</text>")), "label {token} missing");
        }
    }
    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/explain-page.png");
    let out =
        run(&[&format!("--screenshot={}", shot.display()), "--window-size=1200,2000", "--virtual-time-budget=2000"]);
    assert!(out.status.success() && shot.exists(), "{}", String::from_utf8_lossy(&out.stderr));
}
