//! `transduce translate`: text in, translations out, in input order.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use transduce::data::lines::{read_all, read_lines, LineReader};
use transduce::search::{BeamOptions, LengthPenalty};
use transduce::translate::Translator;

#[derive(Debug, Args)]
pub struct TranslateArgs {
    /// Model directory (config.json, model.safetensors, tokenizer.json).
    #[arg(long, short = 'm')]
    pub model: PathBuf,
    /// Input file (default: standard input), one sentence per line.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Output file (default: standard output).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Beam size (1 = greedy).
    #[arg(long, default_value_t = 5)]
    pub beam: usize,
    /// GNMT length penalty exponent.
    #[arg(long, default_value_t = 0.6)]
    pub alpha: f32,
    /// Most output tokens per sentence.
    #[arg(long, default_value_t = 256)]
    pub max_len: usize,
    /// Sentences decoded together.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
}

pub fn run(args: &TranslateArgs) -> Result<()> {
    let translator = Translator::load(&args.model)?;
    let lines = match &args.input {
        Some(p) => read_lines(p)?,
        None => read_all(LineReader::new(std::io::stdin(), "standard input"))?,
    };
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let opts = BeamOptions {
        beam: args.beam,
        length_penalty: LengthPenalty::Gnmt { alpha: args.alpha },
        max_len: args.max_len,
        ..BeamOptions::default()
    };
    let out = translator.translate(&refs, &opts, args.batch_size)?;
    let truncated = out.iter().filter(|t| t.truncated).count();
    if truncated > 0 {
        eprintln!("warning: {truncated} input lines were longer than the model accepts and were truncated");
    }
    let mut text = String::new();
    for t in &out {
        text.push_str(&t.text);
        text.push('\n');
    }
    match &args.output {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?,
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(())
}
