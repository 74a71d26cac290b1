//! `transduce average`: averages the last checkpoints of a model directory.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use transduce::train::trainer::average_checkpoints;

#[derive(Debug, Args)]
pub struct AverageArgs {
    /// Model directory written by `transduce train`.
    pub dir: PathBuf,
    /// How many of the newest checkpoints to average.
    #[arg(long, default_value_t = 5)]
    pub last: usize,
}

pub fn run(args: &AverageArgs) -> Result<()> {
    let n = average_checkpoints(&args.dir, args.last)?;
    eprintln!("averaged {n} checkpoints into {}", args.dir.join("model.safetensors").display());
    Ok(())
}
