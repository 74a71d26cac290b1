//! `transduce serve`: the translation server (LibreTranslate and DeepL APIs).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, ValueEnum};

use super::choice::choice;
use super::search::SearchArgs;
use crate::serve::connections::ConnectionLimits;
use transduce::search::{Alignment, Scores};
use transduce::translate::scheduler::SchedulerOptions;
use transduce::translate::{LoadOptions, Quantization};

/// How the server logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    /// One JSON object per event.
    Json,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A directory of model directories, one per direction (or one model directory); each
    /// model's languages come from its tokenizer_config.json (source_lang, target_lang).
    #[arg(long)]
    pub models: PathBuf,
    /// Address to listen on (loopback unless told otherwise).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    #[arg(long, default_value_t = 5000)]
    pub port: u16,
    /// API keys, one per line with an optional requests-per-minute limit; when given, the
    /// translation routes need a key (LibreTranslate `api_key`, DeepL `Authorization`).
    #[arg(long)]
    pub api_keys: Option<PathBuf>,
    /// Most characters per text.
    #[arg(long, default_value_t = 5000)]
    pub char_limit: usize,
    /// Most texts per request.
    #[arg(long, default_value_t = 50)]
    pub batch_limit: usize,
    /// Most alternatives a request may ask for.
    #[arg(long, default_value_t = 5)]
    pub alternatives_limit: usize,
    /// Most bytes in a request body.
    #[arg(long, default_value_t = 1 << 20)]
    pub body_limit: usize,
    /// Seconds a request may take before it is answered 408.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Seconds a client may take to send a request's headers (and an idle connection may wait
    /// for its next request) before the connection is closed: slow-drip clients hold no slot.
    #[arg(long, default_value_t = 30)]
    pub header_timeout: u64,
    /// Most open connections; past it new ones wait in the listen backlog until one closes
    /// (default: what the open-file limit allows, keeping 256 descriptors for the rest).
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Most sentences waiting per model; past it requests get 503 with Retry-After.
    #[arg(long, default_value_t = 4096)]
    pub queue: usize,
    /// Source tokens in a model's decoding batch (rows × longest source).
    #[arg(long, default_value_t = 4096)]
    pub max_tokens: usize,
    /// Threads to translate with, shared by every model (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Batches each model decodes side by side, each on its share of the threads (as
    /// `transduce translate --workers`); a worker whose siblings are idle decodes on all the
    /// threads, so a lone request keeps its latency (default: 2, or 1 with one thread).
    #[arg(long)]
    pub workers: Option<usize>,
    #[arg(long, value_parser = choice::<Quantization>(), default_value_t = Quantization::AsStored)]
    pub quantization: Quantization,
    /// The file name of a vocabulary shortlist in each model's directory (`vmap.txt`, as
    /// CTranslate2 names it; `transduce shortlist` writes one): a model with that file decodes
    /// each sentence over its candidates (`translate --shortlist`), one without it over its
    /// whole vocabulary.
    #[arg(long)]
    pub shortlist: Option<String>,
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub decoding: SearchArgs,
}

/// What the server runs with, checked.
pub struct ServeConfig<'a> {
    pub args: &'a ServeArgs,
    pub decode: transduce::DecodeOptions,
    pub load: LoadOptions,
    pub scheduling: SchedulerOptions,
    pub timeout: Duration,
    pub connections: ConnectionLimits,
}

pub fn run(args: &ServeArgs) -> Result<()> {
    // no reply of the LibreTranslate or DeepL API carries a score: greedy search then finds each
    // token without computing the whole row of log-probabilities (the same tokens)
    let decode = transduce::DecodeOptions {
        scores: Scores::Omit,
        ..args.decoding.decode_options(Alignment::Off, args.max_tokens)?
    };
    if args.threads == Some(0) {
        anyhow::bail!("--threads: must be at least 1");
    }
    if args.timeout == 0 {
        anyhow::bail!("--timeout: must be at least 1 second");
    }
    if args.header_timeout == 0 {
        anyhow::bail!("--header-timeout: must be at least 1 second");
    }
    if args.max_connections == Some(0) {
        anyhow::bail!("--max-connections: must be at least 1");
    }
    let load = LoadOptions { quantization: args.quantization, ..LoadOptions::default() };
    if args.workers == Some(0) {
        anyhow::bail!("--workers: must be at least 1");
    }
    let threads = args.threads.unwrap_or_else(rayon::current_num_threads);
    let workers = args.workers.unwrap_or(2.min(threads));
    let scheduling = SchedulerOptions { max_tokens: args.max_tokens, queue: args.queue, workers };
    let timeout = Duration::from_secs(args.timeout);
    let connections = ConnectionLimits::new(Duration::from_secs(args.header_timeout), args.max_connections);
    crate::serve::run(ServeConfig { args, decode, load, scheduling, timeout, connections })
}
