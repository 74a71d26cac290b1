//! The `transduce` command line.

mod cli;

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
    /// Train a small model on a built-in task and show what it learned.
    Demo(cli::demo::DemoArgs),
    /// Measure training and decoding speed (JSON lines, comparable with shared/bench/torch_ref.py).
    Bench(cli::bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    transduce::runtime::keep_freed_memory();
    let result = match &cli.command {
        Command::Demo(args) => cli::demo::run(args),
        Command::Bench(args) => cli::bench::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
