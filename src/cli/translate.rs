//! `transduce translate`: text in, translations out in input order, streaming in bounded
//! memory (a window of lines at a time, batched by token budget inside the translator).

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::choice::choice;
use super::search::SearchArgs;
use transduce::data::lines::LineReader;
use transduce::kernels::Kernels;
use transduce::model_dir::Languages;
use transduce::search::{Alignment, Combination, DecodeOptions, Scores};
use transduce::translate::stream::{translate_lines, Format, Prefixes, StreamOptions, TokenScores};
use transduce::translate::{LoadOptions, Quantization, Translator};

#[derive(Debug, Args)]
pub struct TranslateArgs {
    /// Model directory (config.json, model.safetensors, tokenizer.json). Several (`-m A -m B`
    /// or `-m A B`) translate as an ensemble: models of one vocabulary (trained with the same
    /// tokenizer options on the same corpus, e.g. with different --seed), each step's
    /// distribution combined by --ensemble-mode; it costs one model's time per model.
    #[arg(long, short = 'm', required = true, num_args = 1..)]
    pub model: Vec<PathBuf>,
    /// How an ensemble combines its models' next-token distributions: `linear` averages the
    /// probabilities (fairseq's, Sockeye's default), `log-linear` the log-probabilities
    /// (Marian's).
    #[arg(long, value_parser = choice::<Combination>(), default_value_t = Combination::Linear)]
    pub ensemble_mode: Combination,
    /// Input file, plain or gzip (default: standard input), one sentence per line.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Output file (default: standard output).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// text (with ` ||| links` when --alignments), jsonl (id, text, score, tokens and what was
    /// asked for), nbest (Moses: `id ||| text ||| score`, --n-best per input) or pharaoh (only
    /// the `source-target` links).
    #[arg(long, value_parser = choice::<Format>(), default_value_t = Format::Text)]
    pub format: Format,
    #[command(flatten)]
    pub decoding: SearchArgs,
    /// Source language of a multilingual model (M2M-100: `fr`; NLLB-200: `fra_Latn`).
    #[arg(long, requires = "target_lang")]
    pub source_lang: Option<String>,
    /// Target language of a multilingual model (NLLB-200, M2M-100: forced as the first output
    /// token; MADLAD-400: `de` for `<2de>`, the only language it takes).
    #[arg(long)]
    pub target_lang: Option<String>,
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
    /// Whether JSON lines carry the translation's log-probability (`score`): `omit` lets greedy
    /// search pick each token without normalising over the vocabulary (the same tokens; faster
    /// for large vocabularies), as CTranslate2's `return_scores=False`. Text and pharaoh output
    /// show no scores and always omit them; n-best lists always include them.
    #[arg(long, value_parser = choice::<Scores>(), default_value_t = Scores::Include)]
    pub scores: Scores,
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
    /// A vocabulary shortlist (`transduce shortlist`, or CTranslate2's `vmap.txt`): each
    /// sentence is decoded over the target tokens its source tokens list, not the whole
    /// vocabulary (faster for large vocabularies).
    #[arg(long)]
    pub shortlist: Option<PathBuf>,
}

impl TranslateArgs {
    fn decode_options(&self) -> Result<DecodeOptions> {
        let alignment = Alignment::when(self.alignments || self.format == Format::Pharaoh, self.alignment_layer);
        let mut opts = self.decoding.decode_options(alignment, self.max_tokens)?;
        opts.scores = self.format.scores(self.scores, TokenScores::when(self.token_scores))?;
        Ok(opts)
    }
}

pub fn run(args: &TranslateArgs) -> Result<()> {
    let opts = args.decode_options()?;
    let load = LoadOptions {
        quantization: args.quantization,
        threads: args.threads,
        kernels: args.kernels,
        ..LoadOptions::default()
    };
    let mut translator = Translator::load_ensemble(&args.model, load, args.ensemble_mode)?;
    if args.workers > 1 {
        crate::process::share_heaps();
    }
    translator.set_workers(args.workers)?;
    if let Some(path) = &args.shortlist {
        translator.set_shortlist(Some(translator.read_shortlist(path)?));
    }
    let mut input = match &args.input {
        Some(p) => LineReader::open(p)?,
        None => LineReader::new(std::io::stdin(), "standard input"),
    };
    let prefixes = Prefixes::open(args.prefix_file.as_deref(), args.prefix.clone())?;
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
    let sink = match &args.output {
        Some(p) => NamedSink {
            name: p.display().to_string(),
            inner: Box::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?),
        },
        None => NamedSink { name: "standard output".into(), inner: Box::new(std::io::stdout().lock()) },
    };
    let mut out = BufWriter::new(sink);
    let max_src = translator.max_source_tokens();
    let started = std::time::Instant::now();
    let languages = match (&args.source_lang, &args.target_lang) {
        // MADLAD-400 takes the target alone
        (source, Some(target)) => {
            Some(Languages { source: source.clone().unwrap_or_default(), target: target.clone() })
        }
        _ => None,
    };
    let stream = StreamOptions {
        format: args.format,
        token_scores: TokenScores::when(args.token_scores),
        window: args.window,
        languages,
    };
    let name = input.name().to_string();
    let report = translate_lines(&translator, &mut input, prefixes, &mut out, &opts, &stream, |window| {
        for id in &window.truncated {
            bar.suspend(|| eprintln!("warning: {name}: line {}: longer than {max_src} tokens, truncated", id + 1));
        }
        bar.inc(window.lines);
        Ok(())
    })
    .map_err(super::as_flags)?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "translated {} lines, {} target tokens (EOS included) in {seconds:.2} s: {:.0} tokens/s",
        report.lines,
        report.target_tokens,
        report.target_tokens as f64 / seconds.max(1e-9)
    );
    Ok(())
}

/// The translations' destination, named in its write errors (`out.en: No space left on device`).
struct NamedSink {
    name: String,
    inner: Box<dyn Write>,
}

impl NamedSink {
    fn named(&self, e: std::io::Error) -> std::io::Error {
        std::io::Error::new(e.kind(), format!("{}: {e}", self.name))
    }
}

impl Write for NamedSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf).map_err(|e| self.named(e))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush().map_err(|e| self.named(e))
    }
}
