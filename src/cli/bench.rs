//! `transduce bench`: prints one JSON line per figure.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use super::choice::choice;

use crate::bench::corpus::{corpus_batches, CorpusWorkload};
use crate::bench::gemm::{gemm_figures, peak_figure, peak_int8_figure};
use crate::bench::loss_curve::LossCurve;
use crate::bench::translation::{TranslationBench, TranslationRun};
use crate::bench::{greedy_decode, train_step, Workload};
use crate::process::peak_rss_bytes;
use transduce::data::lines::LineReader;
use transduce::model::Preset;
use transduce::train::default_workers;
use transduce::translate::{LoadOptions, Quantization, Translator};

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: BenchCommand,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Forward + loss + backward + AdamW on one random batch (as torch_ref.py train).
    Train(ModelArgs),
    /// Forward + loss + backward + AdamW on real corpus batches: the trainer's token-budget
    /// batches of a parallel corpus (bench/compare_torch.py --corpus runs PyTorch on the same ones).
    TrainCorpus(TrainCorpusArgs),
    /// Encode once, then greedy steps with the key/value cache, at batch 1 and 32.
    Greedy(ModelArgs),
    /// Train and greedy.
    All(ModelArgs),
    /// Translate a file with a model directory the way shared/bench/peers/bench_peers.py runs
    /// CTranslate2 and transformers: beam search in sentence batches, then greedy one sentence
    /// at a time; writes the outputs for scoring.
    Translate(TranslateArgs),
    /// f32 and int8 matrix products (GFLOP/s, GOP/s) and the machine's measured peak multiply-add rates.
    Gemm(GemmArgs),
    /// Training losses step by step on one random batch, with the initial weights and the batch
    /// written beside them (bench/compare_loss_curve.py trains PyTorch from the same state).
    LossCurve(LossCurveArgs),
}

#[derive(Debug, Args)]
pub struct GemmArgs {
    /// Only these products, `MxKxN` (x [m, k] times W^T [k, n]), each with every kernel;
    /// repeatable (default: the training and decoding shapes).
    #[arg(long = "shape", value_parser = parse_shape)]
    pub shapes: Vec<(usize, usize, usize)>,
}

/// `MxKxN`, e.g. `64x256x8000`.
fn parse_shape(text: &str) -> Result<(usize, usize, usize), String> {
    let dims: Vec<usize> =
        text.split('x')
            .map(|d| d.parse::<usize>().ok().filter(|&d| d > 0))
            .collect::<Option<_>>()
            .ok_or_else(|| format!("shape {text:?}: expected MxKxN with positive numbers, e.g. 64x256x8000"))?;
    match dims[..] {
        [m, k, n] => Ok((m, k, n)),
        _ => Err(format!("shape {text:?}: expected three sizes MxKxN, e.g. 64x256x8000")),
    }
}

#[derive(Debug, Args)]
pub struct LossCurveArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[arg(long, default_value_t = 200)]
    pub steps: usize,
    /// Dropout everywhere (0 makes the run deterministic).
    #[arg(long, default_value_t = 0.0)]
    pub dropout: f32,
    /// Directory for init.safetensors, batch.safetensors and transduce_losses.json.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct TrainCorpusArgs {
    /// Source side of the corpus, plain or gzip.
    #[arg(long)]
    pub src: PathBuf,
    /// Target side, line by line with `--src`.
    #[arg(long)]
    pub tgt: PathBuf,
    /// The shared `tokenizer.json` of a model that `transduce train` made on this corpus.
    #[arg(long)]
    pub tokenizer: PathBuf,
    #[arg(long, value_parser = choice::<Preset>(), default_value = "small")]
    pub preset: Preset,
    /// Padded tokens per batch, as `transduce train --max-tokens`.
    #[arg(long, default_value_t = 1024)]
    pub max_tokens: usize,
    /// Batches timed (after 3 warm-up steps).
    #[arg(long, default_value_t = 50)]
    pub batches: usize,
    /// Workers computing each step, each batch cut into as many shards (`transduce train
    /// --workers`; by default as many as training takes: 2 where there are 2 threads).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Shuffles the epoch the batches are taken from.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also write the batches as JSON lines for bench/torch_corpus.py.
    #[arg(long)]
    pub write_batches: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ModelArgs {
    #[arg(long, value_parser = choice::<Preset>(), default_value = "small")]
    pub preset: Preset,
    #[arg(long, default_value_t = 8000)]
    pub vocab: usize,
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    #[arg(long, default_value_t = 16)]
    pub src_len: usize,
    #[arg(long, default_value_t = 16)]
    pub tgt_len: usize,
}

#[derive(Debug, Args)]
pub struct TranslateArgs {
    /// Model directory (transduce or Hugging Face Marian).
    #[arg(long, short = 'm')]
    pub model: PathBuf,
    /// Source lines, plain or gzip.
    #[arg(long)]
    pub src: PathBuf,
    /// Directory for `<system>.{beamN,greedy1}.{txt,pieces}` and `<system>.json`.
    #[arg(long)]
    pub out: PathBuf,
    /// Name of the outputs (default `transduce`).
    #[arg(long, default_value = "transduce")]
    pub name: String,
    #[arg(long, default_value_t = 4)]
    pub beam: usize,
    /// Sentences per beam-search batch.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    #[arg(long, default_value_t = 200)]
    pub greedy_lines: usize,
    #[arg(long, default_value_t = 64)]
    pub warmup_lines: usize,
    #[arg(long, default_value_t = 256)]
    pub max_len: usize,
    /// Run the linear layers in int8 (`int8`), or as the weights are stored.
    #[arg(long, value_parser = choice::<Quantization>(), default_value_t = Quantization::AsStored)]
    pub quantization: Quantization,
    /// Batches translated at once, each on its share of the threads (CTranslate2's
    /// `inter_threads`): 2 on two cores for throughput, 1 for the lowest latency.
    #[arg(long, visible_alias = "streams", default_value_t = 1)]
    pub workers: usize,
    /// Only the first N lines (0 = all).
    #[arg(long, default_value_t = 0)]
    pub limit: usize,
}

pub fn run(args: &BenchArgs) -> Result<()> {
    match &args.command {
        BenchCommand::Train(m) => model_figures(m, false, true),
        BenchCommand::TrainCorpus(c) => train_corpus(c),
        BenchCommand::Greedy(m) => model_figures(m, true, false),
        BenchCommand::All(m) => model_figures(m, true, true),
        BenchCommand::Translate(t) => translate(t),
        BenchCommand::LossCurve(a) => loss_curve(a),
        BenchCommand::Gemm(g) => {
            for figure in gemm_figures(&g.shapes)? {
                println!("{}", serde_json::to_string(&figure)?);
            }
            println!("{}", serde_json::to_string(&peak_figure())?);
            println!("{}", serde_json::to_string(&peak_int8_figure())?);
            Ok(())
        }
    }
}

fn loss_curve(args: &LossCurveArgs) -> Result<()> {
    let m = &args.model;
    let workload = Workload { vocab: m.vocab, batch: m.batch, src_len: m.src_len, tgt_len: m.tgt_len };
    let curve = LossCurve { preset: m.preset, workload, steps: args.steps, dropout: args.dropout };
    let losses = curve.run(&args.out)?;
    let record = serde_json::json!({
        "system": crate::bench::system(),
        "figure": "loss_curve",
        "preset": m.preset,
        "dropout": args.dropout,
        "losses": losses,
    });
    let path = args.out.join("transduce_losses.json");
    std::fs::write(&path, serde_json::to_string(&record)?).with_context(|| format!("writing {}", path.display()))?;
    println!("{record}");
    Ok(())
}

fn train_corpus(args: &TrainCorpusArgs) -> Result<()> {
    let workload = CorpusWorkload {
        src: &args.src,
        tgt: &args.tgt,
        tokenizer: &args.tokenizer,
        max_tokens: args.max_tokens,
        batches: args.batches,
        seed: args.seed,
    };
    let batches = corpus_batches(&workload)?;
    if let Some(path) = &args.write_batches {
        batches.write(path)?;
    }
    println!(
        "{}",
        serde_json::to_string(&batches.train(
            args.preset,
            args.max_tokens,
            args.workers.unwrap_or_else(default_workers)
        )?)?
    );
    Ok(())
}

fn model_figures(args: &ModelArgs, greedy: bool, train: bool) -> Result<()> {
    let w = Workload { vocab: args.vocab, batch: args.batch, src_len: args.src_len, tgt_len: args.tgt_len };
    if greedy {
        for batch in [1, 32.min(args.batch)] {
            println!("{}", serde_json::to_string(&greedy_decode(args.preset, w, batch)?)?);
        }
    }
    if train {
        println!("{}", serde_json::to_string(&train_step(args.preset, w)?)?);
    }
    Ok(())
}

fn translate(args: &TranslateArgs) -> Result<()> {
    let started = std::time::Instant::now();
    let mut translator =
        Translator::load_with(&args.model, LoadOptions { quantization: args.quantization, ..LoadOptions::default() })?;
    if args.workers > 1 {
        crate::process::share_heaps();
    }
    translator.set_workers(args.workers)?;
    let load_s = started.elapsed().as_secs_f64();
    let mut reader = LineReader::open(&args.src)?;
    let mut lines = Vec::new();
    while let Some(line) = reader.next_line()? {
        lines.push(line);
        if lines.len() == args.limit {
            break;
        }
    }
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let bench = TranslationBench {
        beam: args.beam,
        batch: args.batch,
        runs: args.runs,
        greedy_lines: args.greedy_lines,
        warmup_lines: args.warmup_lines,
        max_len: args.max_len,
    };
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let beam = bench.beam(&translator, &lines)?;
    write_run(&args.out, &args.name, &beam)?;
    let greedy = bench.greedy(&translator, &lines)?;
    write_run(&args.out, &args.name, &greedy)?;
    let record = serde_json::json!({
        "system": args.name,
        "load_s": load_s,
        "n_lines": lines.len(),
        "beam": beam.figure,
        "greedy1": greedy.figure,
        "peak_rss_mb": peak_rss_bytes().map(|b| b as f64 / (1 << 20) as f64),
    });
    let path = args.out.join(format!("{}.json", args.name));
    std::fs::write(&path, serde_json::to_string_pretty(&record)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Prints the figure and writes `<name>.<mode>.txt` (texts) and `.pieces` (space-joined pieces).
fn write_run(dir: &Path, name: &str, run: &TranslationRun) -> Result<()> {
    println!("{}", serde_json::to_string(&run.figure)?);
    let write = |ext: &str, lines: Vec<String>| -> Result<()> {
        let path = dir.join(format!("{name}.{}.{ext}", run.figure.mode));
        std::fs::write(&path, lines.join("\n") + "\n").with_context(|| format!("writing {}", path.display()))
    };
    write("txt", run.texts.clone())?;
    write("pieces", run.pieces.iter().map(|p| p.join(" ")).collect())
}
