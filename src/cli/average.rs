//! `transduce average`: averages the last checkpoints of a model directory.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use transduce::train::average_checkpoints;
use transduce::ModelDir;

#[derive(Debug, Args)]
pub struct AverageArgs {
    /// Model directory written by `transduce train`.
    pub dir: PathBuf,
    /// How many of the newest checkpoints to average.
    #[arg(long, default_value_t = 5)]
    pub last: usize,
}

pub fn run(args: &AverageArgs) -> Result<()> {
    let n = average_checkpoints(&args.dir, args.last).map_err(super::as_flags)?;
    eprintln!("averaged {n} checkpoints into {}", ModelDir::open(&args.dir)?.weights_path().display());
    Ok(())
}
