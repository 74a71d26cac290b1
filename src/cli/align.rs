//! `transduce align`: word alignments from cross-attention in Pharaoh format, and their error
//! rate against gold links.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

use transduce::data::lines::read_lines;
use transduce::explain::forced_attention_input;
use transduce::search::DecodeOptions;
use transduce::text::languages::Direction;
use transduce::translate::align::{parse_gold, pharaoh, AerCounts, GoldLinks};
use transduce::translate::{Input, Translator};

#[derive(Debug, Args)]
pub struct AlignArgs {
    /// Model directory.
    #[arg(long, short = 'm')]
    pub model: PathBuf,
    /// Source sentences, one per line.
    #[arg(long)]
    pub input: PathBuf,
    /// Their translations, one per line (default: the model's own greedy translations).
    #[arg(long)]
    pub target: Option<PathBuf>,
    /// Decoder layer whose cross-attention aligns, from 0 (default: the last).
    #[arg(long)]
    pub layer: Option<usize>,
    /// Heads to average, e.g. `0,2` (default: all).
    #[arg(long, value_delimiter = ',')]
    pub heads: Vec<usize>,
    /// Gold links (`i-j` sure, `ipj` possible), one line per pair: report the alignment error
    /// rate of every layer instead of writing links.
    #[arg(long, requires = "target")]
    pub gold: Option<PathBuf>,
    /// Source language of a multilingual model (M2M-100: `fr`; NLLB-200: `fra_Latn`).
    #[arg(long, requires = "target_lang")]
    pub source_lang: Option<String>,
    /// Target language of a multilingual model.
    #[arg(long)]
    pub target_lang: Option<String>,
}

pub fn run(args: &AlignArgs) -> Result<()> {
    let translator = Translator::load(&args.model)?;
    let direction = match (&args.source_lang, &args.target_lang) {
        (source, Some(target)) => Some(Direction { source: source.as_deref().unwrap_or_default(), target }),
        _ => None,
    };
    let sources = read_lines(&args.input)?;
    let targets = match &args.target {
        Some(p) => {
            let t = read_lines(p)?;
            if t.len() != sources.len() {
                bail!("{} has {} lines, {} has {}", args.input.display(), sources.len(), p.display(), t.len());
            }
            t
        }
        None => {
            let inputs: Vec<Input> =
                sources.iter().enumerate().map(|(i, s)| Input { direction, ..Input::new(s, i as u64) }).collect();
            let opts = DecodeOptions { strategy: transduce::search::Strategy::Greedy, ..DecodeOptions::default() };
            let translations = translator.translate_inputs(&inputs, &opts).map_err(super::as_flags)?;
            translations.iter().map(|t| t.text().to_string()).collect()
        }
    };
    let layers = translator.model.config.decoder_layers;
    if let Some(l) = args.layer.filter(|&l| l >= layers) {
        bail!("--layer {l}: the decoder has layers 0 to {}", layers - 1);
    }
    let attention = sources
        .iter()
        .zip(&targets)
        .map(|(s, t)| forced_attention_input(&translator, &Input { direction, ..Input::new(s, 0) }, t))
        .collect::<transduce::error::Result<Vec<_>>>()
        .map_err(super::as_flags)?;
    if let Some(path) = &args.gold {
        let gold: Vec<GoldLinks> = read_lines(path)?
            .iter()
            .enumerate()
            .map(|(i, l)| parse_gold(l).map_err(|e| anyhow::anyhow!("{}: line {}: {e}", path.display(), i + 1)))
            .collect::<Result<_>>()?;
        if gold.len() != sources.len() {
            bail!("{} has {} lines for {} sentence pairs", path.display(), gold.len(), sources.len());
        }
        let chosen: Vec<usize> = match args.layer {
            Some(l) => vec![l],
            None => (0..layers).collect(),
        };
        let heads = if args.heads.is_empty() { "all".to_string() } else { format!("{:?}", args.heads) };
        for layer in chosen {
            let mut counts = AerCounts::default();
            for (a, g) in attention.iter().zip(&gold) {
                counts.add(&a.links(layer, &args.heads), g);
            }
            println!(
                "layer {layer} heads {heads}: AER {:.1}%  precision {:.1}%  recall {:.1}%  ({} sentences)",
                counts.aer() * 100.0,
                counts.precision() * 100.0,
                counts.recall() * 100.0,
                gold.len()
            );
        }
        return Ok(());
    }
    let layer = args.layer.unwrap_or(layers - 1);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for a in &attention {
        writeln!(out, "{}", pharaoh(&a.links(layer, &args.heads))).context("writing alignments")?;
    }
    Ok(())
}
