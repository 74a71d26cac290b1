//! Translate standard input with a model directory, one sentence per line, as a program that
//! embeds the library would:
//!
//! ```sh
//! echo "Un homme fait du vélo ." | cargo run --release --example translate -- MODEL_DIR [BEAM]
//! ```
//!
//! MODEL_DIR is any model directory transduce reads: one `transduce train` wrote, a Hugging Face
//! Marian (OPUS-MT) directory, or an int8 one from `transduce quantize`.

use std::io::{BufRead, Write};

use transduce::search::{BeamOptions, Strategy};
use transduce::{DecodeOptions, LoadOptions, Translator};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: translate MODEL_DIR [BEAM] < input.txt")?;
    let beam: usize = args.next().map(|b| b.parse()).transpose()?.unwrap_or(4);
    // CPU, f32, weights as stored, the caller's threads: LoadOptions' defaults
    let translator = Translator::load_with(dir.as_ref(), LoadOptions::default())?;
    let opts = DecodeOptions {
        strategy: Strategy::Beam(BeamOptions { beam, ..BeamOptions::default() }),
        ..DecodeOptions::default()
    };
    opts.validate()?; // a bad beam size is an error naming the option, before any work
    let lines: Vec<String> = std::io::stdin().lock().lines().collect::<Result<_, _>>()?;
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let mut out = std::io::stdout().lock();
    for translation in translator.translate(&refs, &opts)? {
        writeln!(out, "{}", translation.text())?;
    }
    Ok(())
}
