//! `transduce shortlist`: measure a vocabulary shortlist of a model from parallel text.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use transduce::data::lines::read_lines;
use transduce::translate::Translator;

#[derive(Debug, Args)]
pub struct ShortlistArgs {
    /// Model directory whose tokenizers the shortlist is written in.
    #[arg(long, short = 'm')]
    pub model: PathBuf,
    /// Source sentences, one per line (plain or gzip).
    #[arg(long)]
    pub src: PathBuf,
    /// Their translations, line by line.
    #[arg(long)]
    pub tgt: PathBuf,
    /// The shortlist to write (CTranslate2's `vmap.txt` format; `translate --shortlist` reads it).
    #[arg(long)]
    pub out: PathBuf,
    /// Target tokens every sentence may produce: the ones in most target sentences.
    #[arg(long, default_value_t = 100)]
    pub frequent: usize,
    /// Target tokens per source token: the most associated with it (Dice coefficient).
    #[arg(long, default_value_t = 100)]
    pub per_token: usize,
}

pub fn run(args: &ShortlistArgs) -> Result<()> {
    let translator = Translator::load(&args.model).with_context(|| format!("loading {}", args.model.display()))?;
    let src = read_lines(&args.src)?;
    let tgt = read_lines(&args.tgt)?;
    if src.len() != tgt.len() {
        bail!("{} has {} lines, {} has {}", args.src.display(), src.len(), args.tgt.display(), tgt.len());
    }
    let list = translator.build_shortlist(&src, &tgt, args.frequent, args.per_token)?;
    let (source, target) = translator.piece_ids();
    std::fs::write(&args.out, list.to_text(&source, &target))
        .with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!(
        "wrote {}: {} frequent target tokens, up to {} targets for each of {} source tokens, from {} sentence pairs",
        args.out.display(),
        args.frequent,
        args.per_token,
        list.rules(),
        src.len()
    );
    Ok(())
}
