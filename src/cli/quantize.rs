//! `transduce quantize`: store a model's matrices in int8.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use transduce::convert::int8;

#[derive(Debug, Args)]
pub struct QuantizeArgs {
    /// Model directory (transduce or Hugging Face Marian).
    #[arg(long, short = 'm')]
    pub model: PathBuf,
    /// The transduce model directory to write.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: &QuantizeArgs) -> Result<()> {
    let s = int8::quantize(&args.model, &args.out).with_context(|| format!("quantizing {}", args.model.display()))?;
    eprintln!(
        "wrote {}: {} matrices in int8 (one scale per row), {} tensors in f32; weights {:.1} MB -> {:.1} MB",
        args.out.display(),
        s.quantized,
        s.kept,
        s.bytes_before as f64 / 1e6,
        s.bytes_after as f64 / 1e6
    );
    Ok(())
}
