//! Write the explainer page of a model translating a few sentences: attention per layer and
//! head, the encoder's context map, the decoder's choices step by step, the alignment.
//!
//! ```sh
//! cargo run --release --example explain -- MODEL_DIR "Je t'aime ." [more sentences] > /dev/null
//! ```
//!
//! The page (`explain.html`, self-contained) and its SVG figures go to the current directory.

use transduce::explain::{explain, html};
use transduce::{DecodeOptions, Translator};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, sentences) = args.split_first().ok_or("usage: explain MODEL_DIR SENTENCE...")?;
    if sentences.is_empty() {
        return Err("give at least one sentence to explain".into());
    }
    let translator = Translator::load(dir.as_ref())?;
    let opts = DecodeOptions::greedy(64);
    let explanations = sentences.iter().map(|s| explain(&translator, s, &opts, 5)).collect::<Result<Vec<_>, _>>()?;
    for e in &explanations {
        println!(
            "{} -> {}  (pieces: {} -> {})",
            e.source,
            e.translation,
            e.source_tokens.join(" "),
            e.target_tokens.join(" ")
        );
    }
    let files = html::write("explain.html".as_ref(), &explanations, dir)?;
    eprintln!("wrote {}", files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", "));
    Ok(())
}
