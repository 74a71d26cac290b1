//! `transduce bench`: prints one JSON line per figure.

use anyhow::Result;
use clap::{Args, ValueEnum};

use transduce::bench::{greedy_decode, train_step, Workload};
use transduce::model::Preset;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Figure {
    /// Forward + loss + backward + AdamW on one batch.
    Train,
    /// Encode once, then greedy steps with the key/value cache, at batch 1 and 32.
    Greedy,
    /// Both.
    All,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[arg(value_enum, default_value = "all")]
    pub figure: Figure,
    #[arg(long, value_enum, default_value = "small")]
    pub preset: Preset,
    #[arg(long, default_value_t = 8000)]
    pub vocab: usize,
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    #[arg(long, default_value_t = 16)]
    pub src_len: usize,
    #[arg(long, default_value_t = 16)]
    pub tgt_len: usize,
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let w = Workload { vocab: args.vocab, batch: args.batch, src_len: args.src_len, tgt_len: args.tgt_len };
    if matches!(args.figure, Figure::Greedy | Figure::All) {
        for batch in [1, 32.min(args.batch)] {
            println!("{}", serde_json::to_string(&greedy_decode(args.preset, w, batch)?)?);
        }
    }
    if matches!(args.figure, Figure::Train | Figure::All) {
        println!("{}", serde_json::to_string(&train_step(args.preset, w)?)?);
    }
    Ok(())
}
