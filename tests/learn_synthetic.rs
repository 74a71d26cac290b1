//! End to end: a tiny model learns to copy and to reverse random token sequences.

use std::time::Instant;

use transduce::data::synthetic::SyntheticTask;
use transduce::train::synthetic::{exact_match, train_synthetic, SyntheticRun};

fn learns(task: SyntheticTask) {
    let run = SyntheticRun::quick(task);
    let t0 = Instant::now();
    let mut last = f64::NAN;
    let model = train_synthetic(&run, |_, s| last = s.loss).unwrap();
    let (acc, samples) = exact_match(&model, &run, 500, 12345).unwrap();
    eprintln!(
        "{task:?}: exact match {:.1}% after {:.1}s, final loss {last:.4}",
        acc * 100.0,
        t0.elapsed().as_secs_f64()
    );
    assert!(acc >= 0.99, "{task:?}: exact match {acc}, samples {samples:?}");
}

#[test]
fn tiny_model_learns_to_copy() {
    learns(SyntheticTask::Copy);
}

#[test]
fn tiny_model_learns_to_reverse() {
    learns(SyntheticTask::Reverse);
}
