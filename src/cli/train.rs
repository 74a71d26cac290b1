//! `transduce train`: a translation model from raw parallel text in one command.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;

use super::choice::choice;
use indicatif::{ProgressBar, ProgressStyle};

use transduce::data::corpus::CorpusSource;
use transduce::model::config::Architecture;
use transduce::model::config::{Activation, NormPlacement};
use transduce::model::Preset;
use transduce::model_dir::Languages;
use transduce::text::SubwordModel;
use transduce::train::dropout_ramp::default_until;
use transduce::train::{
    parse_duration, train, DecayScope, DropoutRamp, ScheduleKind, Start, StopMetric, TrainConfig, VocabSharing,
};

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training source text (one sentence per line; plain or gzip).
    #[arg(long, requires = "tgt", required_unless_present = "tsv")]
    pub src: Option<PathBuf>,
    /// Training target text, aligned with --src.
    #[arg(long, requires = "src")]
    pub tgt: Option<PathBuf>,
    /// Training pairs as one `source<TAB>target` file, instead of --src/--tgt.
    #[arg(long, conflicts_with_all = ["src", "tgt"])]
    pub tsv: Option<PathBuf>,
    #[arg(long, requires = "valid_tgt")]
    pub valid_src: Option<PathBuf>,
    #[arg(long, requires = "valid_src")]
    pub valid_tgt: Option<PathBuf>,
    /// Validation pairs as one TSV file, instead of --valid-src/--valid-tgt.
    #[arg(long, conflicts_with_all = ["valid_src", "valid_tgt"])]
    pub valid_tsv: Option<PathBuf>,
    /// Model directory to write (config.json, model.safetensors, tokenizer.json, ...).
    #[arg(long)]
    pub out: PathBuf,
    /// A TOML file with any TrainConfig fields; command-line options override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Continue from the newest checkpoint in --out.
    #[arg(long)]
    pub resume: bool,
    /// Fine-tune this model directory (transduce, Hugging Face Marian, M2M-100 / NLLB-200,
    /// T5 / mT5 / MADLAD-400) with its own tokenizer and language codes; a multilingual model
    /// takes --src-lang and --tgt-lang in its codes.
    #[arg(long, conflicts_with_all = [
        "preset", "d_model", "heads", "ffn_dim", "layers", "encoder_layers", "decoder_layers", "norm", "activation",
        "arch", "subword", "vocab_size", "vocab_sharing",
    ])]
    pub init: Option<PathBuf>,
    #[arg(long, value_parser = choice::<Preset>())]
    pub preset: Option<Preset>,
    /// Model width (overrides the preset's).
    #[arg(long)]
    pub d_model: Option<usize>,
    /// Attention heads (overrides the preset's).
    #[arg(long)]
    pub heads: Option<usize>,
    /// Feed-forward inner size (overrides the preset's).
    #[arg(long)]
    pub ffn_dim: Option<usize>,
    /// Encoder and decoder layers (overrides the preset's).
    #[arg(long)]
    pub layers: Option<usize>,
    #[arg(long)]
    pub encoder_layers: Option<usize>,
    #[arg(long)]
    pub decoder_layers: Option<usize>,
    /// Layer norm before (pre) or after (post) each residual block.
    #[arg(long, value_parser = choice::<NormPlacement>())]
    pub norm: Option<NormPlacement>,
    #[arg(long, value_parser = choice::<Activation>())]
    pub activation: Option<Activation>,
    /// Architecture family: `marian` makes the model exportable to Hugging Face Marian and
    /// CTranslate2 (post-norm, sinusoid halves, swish, decoding from a zero `<pad>` embedding).
    #[arg(long, value_parser = choice::<Architecture>())]
    pub arch: Option<Architecture>,
    #[arg(long, value_parser = choice::<SubwordModel>())]
    pub subword: Option<SubwordModel>,
    /// Vocabulary size of each tokenizer.
    #[arg(long)]
    pub vocab_size: Option<usize>,
    /// One vocabulary for both languages (joint) or one per side.
    #[arg(long, value_parser = choice::<VocabSharing>())]
    pub vocab_sharing: Option<VocabSharing>,
    /// Dropout on every sub-layer's output and the embeddings (default: with a budget, 0.1 for
    /// fewer than 10 passes over the corpus, 0.2 from 10, 0.3 from 20, 0.4 from 40, as projected before the
    /// first update; never below the preset's)
    #[arg(long)]
    pub dropout: Option<f32>,
    /// Dropout on attention probabilities (fairseq's --attention-dropout; default 0)
    #[arg(long)]
    pub attention_dropout: Option<f32>,
    /// Dropout after the feed-forward activation (fairseq's --activation-dropout; default 0)
    #[arg(long)]
    pub activation_dropout: Option<f32>,
    /// Probability of dropping a whole source token (its embedding zeroed before positions are
    /// added; Marian's --dropout-src, Sennrich and Zhang's word dropout; default 0)
    #[arg(long)]
    pub source_word_dropout: Option<f32>,
    /// A rising dropout: the sub-layer dropout of the first update, rising linearly to
    /// --dropout (or the budget's) by --dropout-rise-until of the budget, every other dropout
    /// scaled alike (late or curriculum dropout; needs --max-time or --max-updates; key
    /// `dropout_ramp.start`)
    #[arg(long, value_name = "P")]
    pub dropout_start: Option<f32>,
    /// The fraction of the budget by which a --dropout-start ramp reaches the dropout (0.5; 1:
    /// at the end; key `dropout_ramp.until`)
    #[arg(long, value_name = "FRACTION", requires = "dropout_start")]
    pub dropout_rise_until: Option<f64>,
    /// Subword regularisation (Kudo, 2018): every epoch, each training sentence's segmentation
    /// is drawn from the unigram tokenizer with probability proportional to P(segmentation)^ALPHA
    /// (SentencePiece's sampling, fairseq's --sentencepiece-alpha; default 0: the most likely one)
    #[arg(long, value_name = "ALPHA")]
    pub subword_sampling: Option<f64>,
    /// Longest pair kept, in tokens per side (128; with --init, at most the model's positions
    /// less two).
    #[arg(long)]
    pub max_len: Option<usize>,
    #[arg(long)]
    pub max_tokens: Option<usize>,
    #[arg(long)]
    pub update_freq: Option<usize>,
    /// Workers computing each update at once: every batch is cut into N shards, each computed
    /// on its share of the threads and their gradients summed (Marian's --cpu-threads; default 2
    /// where there are at least 2 threads, else 1)
    #[arg(long)]
    pub workers: Option<usize>,
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long)]
    pub warmup: Option<usize>,
    /// How the learning rate falls after warm-up (default: cosine down to --lr-floor over the
    /// run's --max-updates or --max-time, whichever ends first; inverse-sqrt without either).
    #[arg(long, value_parser = choice::<ScheduleKind>())]
    pub lr_schedule: Option<ScheduleKind>,
    /// The cosine's last learning rate as a fraction of --lr (0.05).
    #[arg(long)]
    pub lr_floor: Option<f64>,
    #[arg(long)]
    pub label_smoothing: Option<f64>,
    /// AdamW's decoupled weight decay (0.1; 0 turns it off): each update also shrinks the
    /// weights --weight-decay-scope names by lr × this fraction (key `adam.weight_decay`).
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Which parameters --weight-decay shrinks: all (PyTorch's AdamW over every parameter), or
    /// matrices (weight matrices and embeddings; biases and layer-norm parameters are left
    /// alone, as nanoGPT and Hugging Face's Trainer do). Default matrices.
    #[arg(long, value_parser = choice::<DecayScope>())]
    pub weight_decay_scope: Option<DecayScope>,
    /// R-Drop: run each batch twice under two dropout masks and add this weight times their
    /// symmetric KL divergence per token to the loss (0, off; an update costs about twice)
    #[arg(long)]
    pub r_drop: Option<f64>,
    /// Keep an exponential moving average of the weights with this decay (e.g. 0.999) and
    /// validate and save it instead of the last weights.
    #[arg(long)]
    pub ema: Option<f64>,
    #[arg(long)]
    pub clip_norm: Option<f64>,
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long)]
    pub max_updates: Option<usize>,
    #[arg(long)]
    pub max_epochs: Option<usize>,
    /// Wall-time limit: `90s`, `45m`, `2h`, `1h30m`.
    #[arg(long)]
    pub max_time: Option<String>,
    #[arg(long)]
    pub valid_every: Option<usize>,
    /// Write a training line to metrics.jsonl every N updates.
    #[arg(long)]
    pub log_every: Option<usize>,
    #[arg(long)]
    pub keep_last: Option<usize>,
    #[arg(long)]
    pub patience: Option<usize>,
    /// The source language's code (e.g. `fr`), recorded for `transduce serve`; with --init of a
    /// multilingual model, one of its codes (`fra_Latn`, `fr`; MADLAD-400 ignores it).
    #[arg(long, requires = "tgt_lang")]
    pub src_lang: Option<String>,
    /// The target language's code (e.g. `en`).
    #[arg(long, requires = "src_lang")]
    pub tgt_lang: Option<String>,
    #[arg(long, value_parser = choice::<StopMetric>())]
    pub stop_metric: Option<StopMetric>,
}

fn effective_config(a: &TrainArgs) -> Result<TrainConfig> {
    let corpus = |tsv: &Option<PathBuf>, src: &Option<PathBuf>, tgt: &Option<PathBuf>| match (tsv, src, tgt) {
        (Some(tsv), _, _) => Some(CorpusSource::Tsv(tsv.clone())),
        (None, Some(s), Some(t)) => Some(CorpusSource::Aligned { source: s.clone(), target: t.clone() }),
        _ => None,
    };
    let train = corpus(&a.tsv, &a.src, &a.tgt).context("give --src and --tgt, or --tsv")?;
    let valid = corpus(&a.valid_tsv, &a.valid_src, &a.valid_tgt);
    let mut cfg = TrainConfig::new(train, valid, a.out.clone());
    if let Some(path) = &a.config {
        cfg.merge_toml(path)?;
    }
    macro_rules! set {
        ($($field:ident),*) => { $(if let Some(v) = a.$field.clone() { cfg.$field = v; })* };
    }
    set!(
        preset,
        subword,
        vocab_size,
        vocab_sharing,
        max_tokens,
        update_freq,
        lr,
        warmup,
        lr_floor,
        label_smoothing,
        r_drop,
        clip_norm,
        seed
    );
    set!(valid_every, log_every, keep_last, stop_metric);
    let m = &mut cfg.model;
    for (field, value) in [
        (&mut m.d_model, a.d_model),
        (&mut m.heads, a.heads),
        (&mut m.ffn_dim, a.ffn_dim),
        (&mut m.encoder_layers, a.encoder_layers.or(a.layers)),
        (&mut m.decoder_layers, a.decoder_layers.or(a.layers)),
    ] {
        if value.is_some() {
            *field = value;
        }
    }
    if a.norm.is_some() {
        m.norm_placement = a.norm;
    }
    if a.activation.is_some() {
        m.activation = a.activation;
    }
    if a.arch.is_some() {
        m.arch = a.arch;
    }
    if a.ema.is_some() {
        cfg.ema = a.ema;
    }
    if a.workers.is_some() {
        cfg.workers = a.workers;
    }
    if let Some(w) = a.weight_decay {
        cfg.adam.weight_decay = w;
    }
    if let Some(scope) = a.weight_decay_scope {
        cfg.adam.weight_decay_scope = scope;
    }
    if a.lr_schedule.is_some() {
        cfg.lr_schedule = a.lr_schedule;
    }
    if a.dropout.is_some() {
        cfg.dropout = a.dropout;
    }
    if a.attention_dropout.is_some() {
        cfg.attention_dropout = a.attention_dropout;
    }
    if a.activation_dropout.is_some() {
        cfg.activation_dropout = a.activation_dropout;
    }
    if let Some(p) = a.source_word_dropout {
        cfg.source_word_dropout = p;
    }
    if let Some(start) = a.dropout_start {
        let until = a.dropout_rise_until.unwrap_or_else(|| cfg.dropout_ramp.map_or_else(default_until, |r| r.until));
        cfg.dropout_ramp = Some(DropoutRamp { start, until });
    }
    if let Some(alpha) = a.subword_sampling {
        cfg.subword_sampling = alpha;
    }
    if let Some(l) = a.max_len {
        cfg.filter.max_len = l;
    }
    if a.max_updates.is_some() {
        cfg.max_updates = a.max_updates;
    }
    if a.max_epochs.is_some() {
        cfg.max_epochs = a.max_epochs;
    }
    if let Some(t) = &a.max_time {
        cfg.max_time_s = Some(parse_duration(t).context("--max-time")?);
    }
    if a.patience.is_some() {
        cfg.patience = a.patience;
    }
    if let Some(init) = &a.init {
        cfg.init = Some(init.clone());
        // pairs the pretrained model has positions for, unless --max-len says otherwise
        if a.max_len.is_none() {
            let positions = transduce::model_dir::ModelDir::open(init)?.config()?.max_positions;
            cfg.filter.max_len = cfg.filter.max_len.min(positions.saturating_sub(2).max(1));
        }
    }
    if let (Some(source), Some(target)) = (&a.src_lang, &a.tgt_lang) {
        cfg.languages = Some(Languages { source: source.clone(), target: target.clone() });
    }
    cfg.validate().map_err(super::as_flags)?;
    Ok(cfg)
}

pub fn run(args: &TrainArgs) -> Result<()> {
    let cfg = effective_config(args)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    let bar = match cfg.max_updates {
        Some(n) => ProgressBar::new(n as u64),
        None => ProgressBar::new_spinner(),
    };
    bar.set_style(ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} updates  {msg}  ETA {eta}",
    )?);
    let started = Instant::now();
    let mut tokens = 0usize;
    let start = if args.resume { Start::Resume } else { Start::Fresh };
    let trained = train(&cfg, start, &stop, |state, stats| {
        tokens += stats.ntokens;
        bar.set_position(state.updates as u64);
        bar.set_message(format!(
            "epoch {} loss {:.3} lr {:.2e} {:.0} tgt tok/s",
            state.epoch + 1,
            stats.loss,
            stats.lr,
            tokens as f64 / started.elapsed().as_secs_f64()
        ));
    });
    let summary = trained.map_err(super::as_flags)?;
    bar.finish();
    eprintln!(
        "stopped ({:?}) after {} updates, {} epochs, {:.0}s; {}",
        summary.stop, summary.state.updates, summary.state.epoch, summary.state.elapsed_s, summary.state.filter_counts
    );
    if let Some(p) = summary.projection {
        eprintln!("{p}");
    }
    if let Some(v) = summary.last_validation {
        eprintln!("last validation: loss {:.3} ppl {:.2} BLEU {:.2} chrF {:.2}", v.loss, v.perplexity, v.bleu, v.chrf);
    }
    println!("{}", cfg.out.display());
    Ok(())
}
