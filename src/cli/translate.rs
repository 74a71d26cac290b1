//! `transduce translate`: text in, translations out in input order, streaming in bounded
//! memory (a window of lines at a time, batched by token budget inside the translator).

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

use super::choice::choice;
use indicatif::{ProgressBar, ProgressStyle};

use super::search::SearchArgs;
use transduce::data::lines::LineReader;
use transduce::kernels::Kernels;
use transduce::search::{Alignment, DecodeOptions};
use transduce::translate::align::pharaoh;
use transduce::translate::{Input, LoadOptions, Quantization, Translation, Translator};

/// What each input line becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The translation (with ` ||| links` when --alignments).
    Text,
    /// One JSON object per line: id, text, score, tokens, and what was asked for.
    Jsonl,
    /// Moses n-best lines: `id ||| text ||| score`, --n-best per input.
    Nbest,
    /// Only the word alignment, `source-target` links (from cross-attention).
    Pharaoh,
}

#[derive(Debug, Args)]
pub struct TranslateArgs {
    /// Model directory (config.json, model.safetensors, tokenizer.json).
    #[arg(long, short = 'm')]
    pub model: PathBuf,
    /// Input file, plain or gzip (default: standard input), one sentence per line.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Output file (default: standard output).
    #[arg(long)]
    pub output: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    #[command(flatten)]
    pub decoding: SearchArgs,
    /// Target text every translation must start with.
    #[arg(long, conflicts_with = "prefix_file")]
    pub prefix: Option<String>,
    /// A file with one target prefix per input line (empty lines: none).
    #[arg(long)]
    pub prefix_file: Option<PathBuf>,
    /// Word alignments from cross-attention (text: ` ||| 0-0 1-2`; jsonl: "alignment").
    #[arg(long)]
    pub alignments: bool,
    /// Decoder layer whose cross-attention gives alignments (default: the last).
    #[arg(long)]
    pub alignment_layer: Option<usize>,
    /// Per-token log-probabilities in JSON lines.
    #[arg(long)]
    pub token_scores: bool,
    /// Source tokens per batch (padding and beam copies included).
    #[arg(long, default_value_t = 4096)]
    pub max_tokens: usize,
    /// Run the linear layers in int8 (`int8`), or as the weights are stored.
    #[arg(long, value_parser = choice::<Quantization>(), default_value_t = Quantization::AsStored)]
    pub quantization: Quantization,
    /// Batches translated at once, each on its share of the threads (CTranslate2's
    /// `inter_threads`): 2 on two cores for throughput, 1 for the lowest latency.
    #[arg(long, visible_alias = "streams", default_value_t = 1)]
    pub workers: usize,
    /// Threads to translate with (default: all cores, or RAYON_NUM_THREADS).
    #[arg(long)]
    pub threads: Option<usize>,
    /// The fused CPU kernels, or the plain-candle reference compositions of every op (slower;
    /// for checking).
    #[arg(long, value_parser = choice::<Kernels>(), default_value_t = Kernels::Fused)]
    pub kernels: Kernels,
    /// Input lines read, sorted and translated at a time (bounds memory; 1 for interactive use).
    #[arg(long, default_value_t = 2000)]
    pub window: usize,
}

impl TranslateArgs {
    fn decode_options(&self) -> Result<DecodeOptions> {
        let wants_alignment = self.alignments || self.format == Format::Pharaoh;
        let alignment = match (wants_alignment, self.alignment_layer) {
            (false, _) => Alignment::Off,
            (true, None) => Alignment::LastLayer,
            (true, Some(l)) => Alignment::Layer(l),
        };
        self.decoding.decode_options(alignment, self.max_tokens)
    }
}

/// Writes one input line's result in `format`.
fn write_translation(out: &mut impl Write, id: u64, t: &Translation, args: &TranslateArgs) -> Result<()> {
    let links = |o: &transduce::translate::Output| o.alignment.as_deref().map(pharaoh).unwrap_or_default();
    match args.format {
        Format::Text if args.alignments => writeln!(out, "{} ||| {}", t.text(), links(t.best()))?,
        Format::Text => writeln!(out, "{}", t.text())?,
        Format::Pharaoh => writeln!(out, "{}", links(t.best()))?,
        Format::Nbest => {
            for o in &t.outputs {
                writeln!(out, "{id} ||| {} ||| {:.6}", o.text, o.score)?;
            }
        }
        Format::Jsonl => {
            let entry = |o: &transduce::translate::Output| {
                let mut v = serde_json::json!({ "text": o.text, "score": o.score, "tokens": o.tokens });
                if args.token_scores {
                    v["token_scores"] = serde_json::json!(o.token_scores);
                }
                if args.alignments {
                    v["alignment"] = serde_json::json!(links(o));
                }
                v
            };
            let mut v = entry(t.best());
            v["id"] = serde_json::json!(id);
            if t.truncated {
                v["truncated"] = serde_json::json!(true);
            }
            if args.decoding.n_best > 1 {
                v["n_best"] = serde_json::json!(t.outputs.iter().map(entry).collect::<Vec<_>>());
            }
            writeln!(out, "{v}")?;
        }
    }
    Ok(())
}

pub fn run(args: &TranslateArgs) -> Result<()> {
    let opts = args.decode_options()?;
    let load = LoadOptions {
        quantization: args.quantization,
        threads: args.threads,
        kernels: args.kernels,
        ..LoadOptions::default()
    };
    let mut translator = Translator::load_with(&args.model, load)?;
    if args.workers > 1 {
        crate::process::share_heaps();
    }
    translator.set_workers(args.workers)?;
    let mut input = match &args.input {
        Some(p) => LineReader::open(p)?,
        None => LineReader::new(std::io::stdin(), "standard input"),
    };
    let mut prefixes = args.prefix_file.as_deref().map(LineReader::open).transpose()?;
    let bar = match &args.input {
        Some(p) => {
            let mut counter = LineReader::open(p)?;
            let mut total = 0u64;
            while counter.next_line()?.is_some() {
                total += 1;
            }
            let bar = ProgressBar::new(total);
            bar.set_style(ProgressStyle::with_template(
                "[{elapsed_precise}] {bar:30} {pos}/{len} lines  {per_sec}  ETA {eta}",
            )?);
            bar
        }
        None => ProgressBar::hidden(),
    };
    let sink: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::new(sink);
    let max_src = translator.model.config.max_positions - 1;
    let mut next_id = 0u64;
    let (started, mut target_tokens) = (std::time::Instant::now(), 0usize);
    loop {
        let mut lines = Vec::new();
        let mut line_prefixes = Vec::new();
        while lines.len() < args.window.max(1) {
            let Some(line) = input.next_line()? else { break };
            let prefix = match prefixes.as_mut() {
                Some(r) => Some(r.next_line()?.with_context(|| {
                    format!("{}: fewer lines than {} ({} read)", r.name(), input.name(), input.lines_read() - 1)
                })?),
                None => args.prefix.clone(),
            };
            lines.push(line);
            line_prefixes.push(prefix.filter(|p| !p.is_empty()));
        }
        if lines.is_empty() {
            break;
        }
        let inputs: Vec<Input> = lines
            .iter()
            .zip(&line_prefixes)
            .enumerate()
            .map(|(i, (text, prefix))| Input { text, prefix: prefix.as_deref(), stream: next_id + i as u64 })
            .collect();
        let translations = translator.translate_inputs(&inputs, &opts).map_err(super::as_flags)?;
        for (i, t) in translations.iter().enumerate() {
            let id = next_id + i as u64;
            if t.truncated {
                bar.suspend(|| {
                    eprintln!("warning: {}: line {}: longer than {max_src} tokens, truncated", input.name(), id + 1)
                });
            }
            write_translation(&mut out, id, t, args)?;
            target_tokens += t.best().tokens.len() + usize::from(!t.best().token_scores.is_empty());
        }
        out.flush()?;
        next_id += lines.len() as u64;
        bar.inc(lines.len() as u64);
    }
    if let Some(r) = prefixes.as_mut() {
        if r.next_line()?.is_some() {
            bail!("{}: more lines than {} ({next_id})", r.name(), input.name());
        }
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "translated {next_id} lines, {target_tokens} target tokens (EOS included) in {seconds:.1} s: {:.0} tokens/s",
        target_tokens as f64 / seconds.max(1e-9)
    );
    Ok(())
}
