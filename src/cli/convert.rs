//! `transduce import` and `transduce export`: model directories of other toolkits.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use transduce::convert::hf_family::{self, Family};
use transduce::convert::hf_marian;

/// Model formats transduce imports (the other families load as they are).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Hugging Face `MarianMTModel` (OPUS-MT): config.json, model.safetensors, source.spm,
    /// target.spm, vocab.json.
    HfMarian,
}

/// Model formats transduce writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// Hugging Face `MarianMTModel` (OPUS-MT), also read by CTranslate2.
    HfMarian,
    /// Hugging Face `M2M100ForConditionalGeneration` (M2M-100, NLLB-200), for a model
    /// fine-tuned from one: config.json, model.safetensors, the tokenizer files it came with.
    #[value(name = "hf-m2m100")]
    HfM2m100,
    /// Hugging Face `T5ForConditionalGeneration` (T5, mT5, MADLAD-400), for a model fine-tuned
    /// from one.
    #[value(name = "hf-t5")]
    HfT5,
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
    pub format: ExportFormat,
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
    let family = match args.format {
        ExportFormat::HfMarian => return export_marian(args),
        ExportFormat::HfM2m100 => Family::M2m100,
        ExportFormat::HfT5 => Family::T5,
    };
    let s = hf_family::export(&args.model, &args.out, family)
        .with_context(|| format!("exporting {}", args.model.display()))?;
    let c = &s.config;
    eprintln!(
        "wrote a Hugging Face {family:?} directory (d_model {}, {}+{} layers, vocabulary {}; copied {}) to {}",
        c.d_model,
        c.encoder_layers,
        c.decoder_layers,
        c.vocab.target(),
        s.files.join(", "),
        args.out.display()
    );
    Ok(())
}

fn export_marian(args: &ExportArgs) -> Result<()> {
    let s = hf_marian::export(&args.model, &args.out).with_context(|| format!("exporting {}", args.model.display()))?;
    if s.moved_pad {
        eprintln!("<pad> moved to the last id ({}), as CTranslate2's Marian converter expects", s.config.special.pad);
    }
    for note in &s.notes {
        eprintln!("note: {note}");
    }
    eprintln!("wrote a Hugging Face Marian directory to {}", args.out.display());
    Ok(())
}
