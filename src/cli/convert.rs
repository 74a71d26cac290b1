//! `transduce import` and `transduce export`: model directories of other toolkits.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use transduce::convert::hf_marian;

/// Model formats transduce reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Hugging Face `MarianMTModel` (OPUS-MT): config.json, model.safetensors, source.spm,
    /// target.spm, vocab.json.
    HfMarian,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    pub format: Format,
    /// The directory to convert.
    pub path: PathBuf,
    /// The transduce model directory to write.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    pub format: Format,
    /// The transduce model directory to convert.
    #[arg(long, short = 'm')]
    pub model: PathBuf,
    /// The directory to write.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn import(args: &ImportArgs) -> Result<()> {
    match args.format {
        Format::HfMarian => {
            let s = hf_marian::import(&args.path, &args.out)
                .with_context(|| format!("importing {}", args.path.display()))?;
            let c = &s.config;
            eprintln!(
                "imported {} parameters (d_model {}, {}+{} layers, vocabulary {}) into {}; copied {}",
                s.parameters,
                c.d_model,
                c.encoder_layers,
                c.decoder_layers,
                c.vocab.target(),
                args.out.display(),
                s.files.join(", ")
            );
        }
    }
    Ok(())
}

pub fn export(args: &ExportArgs) -> Result<()> {
    match args.format {
        Format::HfMarian => {
            let s = hf_marian::export(&args.model, &args.out)
                .with_context(|| format!("exporting {}", args.model.display()))?;
            if s.moved_pad {
                eprintln!(
                    "<pad> moved to the last id ({}), as CTranslate2's Marian converter expects",
                    s.config.special.pad
                );
            }
            for note in &s.notes {
                eprintln!("note: {note}");
            }
            eprintln!("wrote a Hugging Face Marian directory to {}", args.out.display());
        }
    }
    Ok(())
}
