//! `transduce demo`: trains (once) a small French→English model on the built-in phrase grammar,
//! shows it translating sentences it never saw, and writes the explainer page for them.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;

use crate::demo::{alignment_error, exact_match, DemoSetup, SHOWCASE};
use transduce::explain::{explain, html};
use transduce::search::{DecodeOptions, Strategy};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the demo keeps its corpus, model and page.
    #[arg(long, default_value = "runs/demo")]
    pub dir: PathBuf,
    /// Train again even if a model is there.
    #[arg(long)]
    pub retrain: bool,
    /// Parameter updates when training.
    #[arg(long)]
    pub updates: Option<usize>,
}

pub fn run(args: &DemoArgs) -> Result<()> {
    let started = Instant::now();
    let mut setup = DemoSetup::new(&args.dir);
    if let Some(u) = args.updates {
        setup.updates = u;
    }
    let model_dir = setup.train_config().out;
    if args.retrain && model_dir.exists() {
        std::fs::remove_dir_all(&model_dir)?;
    }
    if model_dir.join(transduce::model_dir::WEIGHTS).exists() {
        eprintln!("reusing the demo model in {} (--retrain to train it again)", model_dir.display());
    } else {
        eprintln!(
            "training a French→English model on {} sentences of the built-in phrase grammar ({} updates)",
            setup.train_sentences, setup.updates
        );
    }
    let translator = setup.model(|state, stats| {
        if state.updates % 100 == 0 {
            eprintln!("update {:>5}  loss {:.3}  {:.0}s", state.updates, stats.loss, started.elapsed().as_secs_f64());
        }
    })?;
    let (_, heldout) = setup.corpus();
    let (accuracy, _) = exact_match(&translator, &heldout)?;
    println!("exact match on {} held-out grammar sentences: {:.1}%", heldout.len(), accuracy * 100.0);
    let aer = alignment_error(&translator, &heldout)?;
    let (best, counts) =
        aer.iter().enumerate().min_by(|a, b| a.1.aer().total_cmp(&b.1.aer())).expect("a decoder has layers");
    println!(
        "alignment error rate of cross-attention against the grammar's gold links: {:.1}% (layer {best}; all layers: {})",
        counts.aer() * 100.0,
        aer.iter().map(|c| format!("{:.1}%", c.aer() * 100.0)).collect::<Vec<_>>().join(", ")
    );
    let opts = DecodeOptions { strategy: Strategy::Greedy, ..DecodeOptions::default() };
    let explanations =
        SHOWCASE.iter().map(|s| explain(&translator, s, &opts, 5)).collect::<transduce::error::Result<Vec<_>>>()?;
    for e in &explanations {
        println!("  {}  ->  {}", e.source, e.translation);
    }
    let page = args.dir.join("explain.html");
    html::write(&page, &explanations, "demo fr→en")?;
    println!("explainer page: {}", page.display());
    println!("done in {:.0}s", started.elapsed().as_secs_f64());
    Ok(())
}
