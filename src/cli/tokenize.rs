//! `transduce tokenize`: a model's subword segmentation of text, one line in, one line out
//! (SentencePiece's `spm_encode`): the most likely segmentation, or one drawn as
//! `train --subword-sampling` draws them, to see what training with it shows the model.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use transduce::data::lines::LineReader;
use transduce::model_dir::ModelDir;
use transduce::text::SubwordSampler;

/// Which of the model's tokenizers segments the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Side {
    Source,
    Target,
}

/// What each line becomes (`spm_encode --output_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// The pieces, separated by spaces (`▁` marks a word's start).
    Piece,
    /// The pieces' ids in the model's vocabulary, separated by spaces.
    Id,
}

#[derive(Debug, Args)]
pub struct TokenizeArgs {
    /// Model directory (transduce, Hugging Face Marian, M2M-100 / NLLB-200, T5 family).
    #[arg(long, short = 'm')]
    pub model: PathBuf,
    /// Input file, plain or gzip (default: standard input), one sentence per line.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Which side's tokenizer (a joint vocabulary has one for both).
    #[arg(long, value_enum, default_value_t = Side::Source)]
    pub side: Side,
    /// What each line becomes.
    #[arg(long, value_enum, default_value_t = Output::Piece)]
    pub output_format: Output,
    /// Draw each line's segmentation with probability ∝ P(segmentation)^α, as `train
    /// --subword-sampling α` does (a unigram tokenizer trained by transduce); 0: the most likely.
    #[arg(long, default_value_t = 0.0, value_name = "ALPHA")]
    pub subword_sampling: f64,
    /// Seed of the draws: the same seed and input give the same segmentations.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub fn run(args: &TokenizeArgs) -> Result<()> {
    let dir = ModelDir::open(&args.model).with_context(|| format!("loading {}", args.model.display()))?;
    let tokenizers = dir.tokenizers()?;
    let tok = match args.side {
        Side::Source => tokenizers.source,
        Side::Target => tokenizers.target,
    };
    let sampler = match args.subword_sampling == 0.0 {
        true => None,
        false => Some(SubwordSampler::new(&tok, args.subword_sampling).map_err(super::as_flags)?),
    };
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(args.seed);
    let mut input = match &args.input {
        Some(p) => LineReader::open(p)?,
        None => LineReader::new(std::io::stdin(), "standard input"),
    };
    let mut out = BufWriter::new(std::io::stdout().lock());
    let (mut lines, mut pieces) = (0usize, 0usize);
    while let Some(line) = input.next_line()? {
        let best = tok.encode(&line).with_context(|| format!("{}: line {}", input.name(), input.lines_read()))?;
        let ids = match &sampler {
            Some(sampler) => sampler.resample(&best, &mut rng),
            None => best,
        };
        let text = match args.output_format {
            Output::Piece => tok.id_pieces(&ids).join(" "),
            Output::Id => ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" "),
        };
        writeln!(out, "{text}").context("writing standard output")?;
        lines += 1;
        pieces += ids.len();
    }
    out.flush().context("writing standard output")?;
    eprintln!(
        "tokenized {lines} lines of {} into {pieces} pieces ({:.2} a line)",
        input.name(),
        pieces as f64 / lines.max(1) as f64
    );
    Ok(())
}
