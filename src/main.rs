//! The `transduce` command line.

use transduce_cli::{cli, process};

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "transduce", version, about = "Encoder-decoder Transformers: train, translate, inspect")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train (once) a French→English model on a built-in grammar; translate and explain "Je t'aime .".
    Demo(cli::demo::DemoArgs),
    /// Word alignments from cross-attention (Pharaoh), or their error rate against gold links.
    Align(cli::align::AlignArgs),
    /// Write the explainer page (HTML + SVG, or JSON) of a model translating sentences.
    Explain(cli::explain::ExplainArgs),
    /// Train a translation model from parallel text.
    Train(Box<cli::train::TrainArgs>),
    /// Translate text with a trained model (beam search).
    Translate(cli::translate::TranslateArgs),
    /// Convert another toolkit's model directory (Hugging Face Marian) into a transduce one.
    Import(cli::convert::ImportArgs),
    /// Write a transduce model as another toolkit's model directory (Hugging Face Marian).
    Export(cli::convert::ExportArgs),
    /// Store a model's matrices in int8 with per-row scales (translates with int8 arithmetic).
    Quantize(cli::quantize::QuantizeArgs),
    /// Measure a vocabulary shortlist from parallel text (`translate --shortlist` decodes over it).
    Shortlist(cli::shortlist::ShortlistArgs),
    /// A model's subword segmentation of text, line by line (the most likely, or drawn as training's
    /// --subword-sampling draws).
    Tokenize(cli::tokenize::TokenizeArgs),
    /// Average the last checkpoints of a model directory into its model.safetensors.
    Average(cli::average::AverageArgs),
    /// Corpus BLEU and chrF of hypotheses against references, identical to sacrebleu 2.x.
    Score(cli::score::ScoreArgs),
    /// Serve translations over HTTP: the LibreTranslate and DeepL APIs, every request batched together.
    Serve(Box<cli::serve::ServeArgs>),
    /// Measure training and decoding speed (JSON lines, comparable with shared/bench/torch_ref.py).
    Bench(cli::bench::BenchArgs),
}

fn main() -> ExitCode {
    // like other Unix filters, end quietly when the reader of our output goes away (`| head`)
    // SAFETY: restoring the default disposition of one signal before any thread starts.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // sacrebleu spells its lowercase flag `-lc`; accept it as `--lc`.
    let cli = Cli::parse_from(std::env::args_os().map(|a| if a == "-lc" { "--lc".into() } else { a }));
    process::keep_freed_memory();
    process::quiet_candle_pool();
    let result = match &cli.command {
        Command::Demo(args) => cli::demo::run(args),
        Command::Import(args) => cli::convert::import(args),
        Command::Export(args) => cli::convert::export(args),
        Command::Bench(args) => cli::bench::run(args),
        Command::Score(args) => cli::score::run(args),
        Command::Serve(args) => cli::serve::run(args),
        Command::Train(args) => cli::train::run(args),
        Command::Average(args) => cli::average::run(args),
        Command::Quantize(args) => cli::quantize::run(args),
        Command::Shortlist(args) => cli::shortlist::run(args),
        Command::Tokenize(args) => cli::tokenize::run(args),
        Command::Translate(args) => cli::translate::run(args),
        Command::Explain(args) => cli::explain::run(args),
        Command::Align(args) => cli::align::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
