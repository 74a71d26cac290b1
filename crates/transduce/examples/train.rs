//! Train a tiny translation model from parallel text and translate with it: the library's
//! training loop without the command line.
//!
//! ```sh
//! cargo run --release --example train [-- OUT_DIR]
//! ```
//!
//! It writes a small word-for-word French→English corpus, trains the `tiny` preset on it for
//! 800 updates (under a minute on two cores), and translates sentences it never saw.

use std::sync::atomic::AtomicBool;

use transduce::data::corpus::CorpusSource;
use transduce::train::{train, Start};
use transduce::{DecodeOptions, Preset, TrainConfig, Translator};

const WORDS: [(&str, &str); 8] = [
    ("le", "the"),
    ("chat", "cat"),
    ("chien", "dog"),
    ("voit", "sees"),
    ("mange", "eats"),
    ("une", "an"),
    ("pomme", "apple"),
    ("rouge", "red"),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args().nth(1).map(Into::into).unwrap_or_else(|| std::env::temp_dir().join("transduce-example"));
    std::fs::create_dir_all(&out)?;
    // 4000 sentences of 2 to 6 words, each word translated on its own
    let (mut fr, mut en) = (String::new(), String::new());
    let mut x: u64 = 7;
    for _ in 0..4000 {
        let mut next = || {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 33) as usize
        };
        let words: Vec<usize> = (0..2 + next() % 5).map(|_| next() % WORDS.len()).collect();
        fr += &(words.iter().map(|&w| WORDS[w].0).collect::<Vec<_>>().join(" ") + "\n");
        en += &(words.iter().map(|&w| WORDS[w].1).collect::<Vec<_>>().join(" ") + "\n");
    }
    let (source, target) = (out.join("train.fr"), out.join("train.en"));
    std::fs::write(&source, fr)?;
    std::fs::write(&target, en)?;

    let mut cfg = TrainConfig::new(CorpusSource::Aligned { source, target }, None, out.join("model"));
    cfg.preset = Preset::Tiny;
    cfg.vocab_size = 60;
    cfg.max_tokens = 800;
    cfg.lr = 1e-3;
    cfg.warmup = 100;
    cfg.max_updates = Some(800);
    cfg.validate()?; // every option checked, the one at fault named
    let stop = AtomicBool::new(false); // a program sets it to stop training cleanly (a signal, a button)
    let summary = train(&cfg, Start::Fresh, &stop, |state, stats| {
        if state.updates % 100 == 0 {
            eprintln!("update {}: loss {:.3}", state.updates, stats.loss);
        }
    })?;
    eprintln!("stopped ({:?}) after {} updates", summary.stop, summary.state.updates);

    let translator = Translator::load(&cfg.out)?;
    let unseen = ["le chien rouge mange une pomme", "une pomme voit le chat"];
    for (fr, t) in unseen.iter().zip(translator.translate(&unseen, &DecodeOptions::default())?) {
        println!("{fr} -> {}", t.text());
    }
    println!("model written to {}", cfg.out.display());
    Ok(())
}
