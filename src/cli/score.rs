//! `transduce score`: corpus BLEU and chrF, identical to sacrebleu 2.x.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};

use transduce::data::lines::{read_all, read_lines, LineReader};
use transduce::eval::{py_rstrip, Bleu, Case, Chrf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Metric {
    Bleu,
    Chrf,
}

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Reference file; repeat for multiple references (one per line, aligned with the hypotheses).
    #[arg(long = "ref", short = 'r', required = true)]
    pub refs: Vec<PathBuf>,
    /// Hypothesis file (default: standard input).
    #[arg(long)]
    pub hyp: Option<PathBuf>,
    #[arg(long, short = 'm', value_enum, value_delimiter = ',', default_value = "bleu,chrf")]
    pub metrics: Vec<Metric>,
    /// Lowercase hypotheses and references for BLEU (sacrebleu `-lc`).
    #[arg(long = "lc", short = 'l')]
    pub lowercase: bool,
    /// Lowercase hypotheses and references for chrF (sacrebleu `--chrf-lowercase`).
    #[arg(long = "chrf-lc")]
    pub chrf_lowercase: bool,
    /// Print one JSON object instead of sacrebleu's text lines.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &ScoreArgs) -> Result<()> {
    let (hyp_name, hyps) = match &args.hyp {
        Some(path) => (path.display().to_string(), read_lines(path)?),
        None => ("standard input".to_string(), read_all(LineReader::new(std::io::stdin(), "standard input"))?),
    };
    let mut streams = Vec::new();
    for path in &args.refs {
        let lines = read_lines(path)?;
        if lines.len() != hyps.len() {
            bail!(
                "{} has {} lines but {hyp_name} has {}: they must be aligned",
                path.display(),
                lines.len(),
                hyps.len()
            );
        }
        streams.push(lines);
    }
    // like sacrebleu's command line, ignore trailing whitespace
    let hyps: Vec<&str> = hyps.iter().map(|l| py_rstrip(l)).collect();
    let refs: Vec<Vec<&str>> = streams.iter().map(|s| s.iter().map(|l| py_rstrip(l)).collect()).collect();
    let case_of = |lower: bool| if lower { Case::Lower } else { Case::Sensitive };
    let mut json = serde_json::Map::new();
    for metric in &args.metrics {
        match metric {
            Metric::Bleu => {
                let s = Bleu { case: case_of(args.lowercase) }.corpus_score(&hyps, &refs);
                if args.json {
                    json.insert("bleu".into(), serde_json::json!(format!("{:.2}", s.score).parse::<f64>()?));
                    json.insert("bleu_signature".into(), s.to_string().into());
                } else {
                    println!("{s}");
                }
            }
            Metric::Chrf => {
                let s = Chrf { case: case_of(args.chrf_lowercase) }.corpus_score(&hyps, &refs);
                if args.json {
                    json.insert("chrf".into(), serde_json::json!(format!("{:.2}", s.score).parse::<f64>()?));
                } else {
                    println!("{s}");
                }
            }
        }
    }
    if args.json {
        json.insert("bleu_lowercase".into(), args.lowercase.into());
        json.insert("chrf_lowercase".into(), args.chrf_lowercase.into());
        json.insert("references".into(), refs.len().into());
        println!("{}", serde_json::Value::Object(json));
    }
    Ok(())
}
