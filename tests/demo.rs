//! The built-in demo trains a French→English model on the phrase grammar that translates
//! held-out sentences (at least 95 % exactly) and "Je t'aime ." as "I love you .".

mod common;

use common::TempDir;
use transduce_cli::demo::{alignment_error, exact_match, DemoSetup};

#[test]
fn the_demo_model_translates_unseen_grammar_sentences() {
    let dir = TempDir::new("demo");
    let setup = DemoSetup::new(&dir.0);
    let started = std::time::Instant::now();
    let translator = setup.model(|_, _| {}).unwrap();
    eprintln!("demo model trained in {:.0} s", started.elapsed().as_secs_f64());
    let (_, heldout) = setup.corpus();
    let (accuracy, outputs) = exact_match(&translator, &heldout).unwrap();
    let wrong: Vec<String> = heldout
        .iter()
        .zip(&outputs)
        .filter(|(p, o)| p.english != **o)
        .take(10)
        .map(|(p, o)| format!("{} -> {o} (want {})", p.french, p.english))
        .collect();
    assert!(accuracy >= 0.95, "{:.1}% exact; e.g. {wrong:#?}", accuracy * 100.0);
    let (je, _) = exact_match(&translator, &[transduce_cli::demo::grammar::je_t_aime()]).unwrap();
    assert_eq!(je, 1.0, "Je t'aime .");
    let aer = alignment_error(&translator, &heldout[..100]).unwrap();
    let best = aer.iter().map(|c| c.aer()).fold(1.0, f64::min);
    assert!(best < 0.5, "cross-attention should align better than chance: {aer:?}");
}
