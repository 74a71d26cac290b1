//! `transduce explain`: the explainer page (HTML + SVG, or JSON) for sentences translated by a
//! model directory.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

use transduce::data::lines::read_lines;
use transduce::explain::{explain_input, html};
use transduce::search::{BeamOptions, DecodeOptions, Strategy};
use transduce::text::languages::Direction;
use transduce::translate::{Input, Translator};

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Model directory.
    #[arg(long, short = 'm')]
    pub model: PathBuf,
    /// Sentences to explain.
    pub sentences: Vec<String>,
    /// A file with one sentence per line, instead of (or besides) the arguments.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// The page to write (SVG images go beside it).
    #[arg(long, default_value = "explain.html")]
    pub out: PathBuf,
    /// Also write the recorded data as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Beam size (1 = greedy).
    #[arg(long, default_value_t = 1)]
    pub beam: usize,
    /// Candidates shown per decoder step.
    #[arg(long, default_value_t = 5)]
    pub top_k: usize,
    /// Source language of a multilingual model (M2M-100: `fr`; NLLB-200: `fra_Latn`).
    #[arg(long, requires = "target_lang")]
    pub source_lang: Option<String>,
    /// Target language of a multilingual model.
    #[arg(long)]
    pub target_lang: Option<String>,
}

pub fn run(args: &ExplainArgs) -> Result<()> {
    let mut sentences = args.sentences.clone();
    if let Some(p) = &args.input {
        sentences.extend(read_lines(p)?.into_iter().filter(|l| !l.trim().is_empty()));
    }
    if sentences.is_empty() {
        bail!("nothing to explain: give sentences or --input FILE");
    }
    let translator = Translator::load(&args.model)?;
    let strategy = match args.beam {
        0 | 1 => Strategy::Greedy,
        k => Strategy::Beam(BeamOptions { beam: k, ..BeamOptions::default() }),
    };
    let opts = DecodeOptions { strategy, ..DecodeOptions::default() };
    let explanations = sentences
        .iter()
        .map(|s| {
            let direction = match (&args.source_lang, &args.target_lang) {
                (source, Some(target)) => Some(Direction { source: source.as_deref().unwrap_or_default(), target }),
                _ => None,
            };
            explain_input(&translator, &Input { direction, ..Input::new(s, 0) }, &opts, args.top_k)
        })
        .collect::<transduce::error::Result<Vec<_>>>()
        .map_err(super::as_flags)?;
    let name = args.model.display().to_string();
    html::write(&args.out, &explanations, &name)?;
    if let Some(p) = &args.json {
        std::fs::write(p, serde_json::to_string(&explanations)?).with_context(|| format!("writing {}", p.display()))?;
    }
    for e in &explanations {
        println!("{} -> {}", e.source, e.translation);
    }
    eprintln!("wrote {}", args.out.display());
    Ok(())
}
