//! `transduce demo`: the built-in demonstration. For now: train a tiny model to reverse random
//! token sequences, then show it decoding fresh ones.

use std::time::Instant;

use anyhow::Result;
use clap::Args;

use transduce::data::synthetic::SyntheticTask;
use transduce::train::synthetic::{exact_match, train_synthetic, SyntheticRun};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Which synthetic task to learn.
    #[arg(long, value_enum, default_value = "reverse")]
    pub task: SyntheticTask,
    /// Number of parameter updates.
    #[arg(long)]
    pub updates: Option<usize>,
    /// Peak learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub fn run(args: &DemoArgs) -> Result<()> {
    let mut run = SyntheticRun::quick(args.task);
    run.seed = args.seed;
    if let Some(u) = args.updates {
        run.updates = u;
    }
    if let Some(lr) = args.lr {
        run.peak_lr = lr;
    }
    eprintln!(
        "training a {}+{}-layer encoder-decoder (d {}) to {:?} random sequences of {}-{} tokens, {} updates",
        run.config.encoder_layers,
        run.config.decoder_layers,
        run.config.d_model,
        run.task,
        run.lengths.0,
        run.lengths.1,
        run.updates
    );
    let t0 = Instant::now();
    let model = train_synthetic(&run, |update, s| {
        if update % 100 == 0 || update == 1 {
            eprintln!(
                "update {update:>5}  loss {:.4}  lr {:.2e}  |g| {:.3}  {:.0} tgt tok/s",
                s.loss,
                s.lr,
                s.grad_norm,
                (update * run.batch_size * (run.lengths.0 + run.lengths.1 + 2) / 2) as f64 / t0.elapsed().as_secs_f64()
            );
        }
    })?;
    let (acc, samples) = exact_match(&model, &run, 1000, run.seed + 1000)?;
    println!(
        "exact match on 1000 unseen sequences: {:.1}% (trained in {:.1}s)",
        acc * 100.0,
        t0.elapsed().as_secs_f64()
    );
    for (src, want, got) in samples {
        let mark = if want == got { "ok" } else { "WRONG" };
        println!("  {src:?} -> {got:?}  [{mark}]");
    }
    Ok(())
}
