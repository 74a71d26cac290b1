//! The built-in demo: a small French→English model trained on the phrase grammar
//! ([`crate::demo::grammar`]), with held-out sentences to show that it translates rather than
//! remembers. Trained once into a model directory and reused.

pub mod grammar;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use crate::demo::grammar::{je_t_aime, Grammar, GrammarPair};
use transduce::data::corpus::CorpusSource;
use transduce::error::{Error, Result};
use transduce::explain::forced_attention;
use transduce::model::Preset;
use transduce::model_dir;
use transduce::search::{DecodeOptions, Strategy};
use transduce::text::SubwordModel;
use transduce::train::{train, ModelOverrides, ScheduleKind, Start, StepStats, TrainConfig, TrainState};
use transduce::translate::align::{AerCounts, GoldLinks};
use transduce::translate::Translator;

/// Sentences the demo prints and explains; none of them is in the training data.
pub const SHOWCASE: [&str; 5] = [
    "Je t'aime .",
    "Est-ce que tu m'aimes ?",
    "Elle ne mange pas la soupe chaude .",
    "Les enfants cherchent le petit chat .",
    "Nous ne les connaissons pas .",
];

/// The demo's corpus and model settings.
#[derive(Debug, Clone)]
pub struct DemoSetup {
    pub dir: PathBuf,
    pub seed: u64,
    pub train_sentences: usize,
    pub heldout_sentences: usize,
    pub updates: usize,
}

impl DemoSetup {
    pub fn new(dir: &Path) -> Self {
        DemoSetup { dir: dir.to_path_buf(), seed: 1, train_sentences: 40_000, heldout_sentences: 500, updates: 900 }
    }

    /// Training pairs and held-out pairs (distinct from the training ones and from
    /// [`SHOWCASE`]).
    pub fn corpus(&self) -> (Vec<GrammarPair>, Vec<GrammarPair>) {
        let mut grammar = Grammar::new(self.seed);
        let mut seen: HashSet<String> = SHOWCASE.iter().map(|s| s.to_string()).collect();
        seen.insert(je_t_aime().french);
        let mut take = |n: usize, seen: &mut HashSet<String>| {
            let mut out = Vec::with_capacity(n);
            while out.len() < n {
                let p = grammar.sample();
                if seen.insert(p.french.clone()) {
                    out.push(p);
                }
            }
            out
        };
        let heldout = take(self.heldout_sentences, &mut seen);
        let train = take(self.train_sentences, &mut seen);
        (train, heldout)
    }

    /// The training options: a 3+3-layer pre-norm model, d 128, on a joint BPE vocabulary (whole
    /// words, mostly: the unigram trainer keeps few whole words of so small a lexicon).
    pub fn train_config(&self) -> TrainConfig {
        let corpus = self.dir.join("corpus.tsv");
        let mut cfg = TrainConfig::new(CorpusSource::Tsv(corpus), None, self.dir.join("model"));
        cfg.preset = Preset::Small;
        cfg.model = ModelOverrides {
            d_model: Some(128),
            heads: Some(4),
            ffn_dim: Some(256),
            encoder_layers: Some(3),
            decoder_layers: Some(3),
            ..ModelOverrides::default()
        };
        cfg.subword = SubwordModel::Bpe;
        cfg.vocab_size = 1000;
        cfg.dropout = Some(0.0);
        cfg.max_tokens = 2500;
        cfg.lr = 3e-3;
        cfg.warmup = 100;
        // the schedule the demo's figures were measured with
        cfg.lr_schedule = Some(ScheduleKind::InverseSqrt);
        cfg.label_smoothing = 0.0;
        cfg.max_updates = Some(self.updates);
        cfg.log_every = 100;
        cfg.keep_last = 1;
        cfg.seed = self.seed;
        cfg
    }

    /// The model directory, trained now unless a finished one is there.
    pub fn model(&self, on_update: impl FnMut(&TrainState, &StepStats)) -> Result<Translator> {
        let cfg = self.train_config();
        if !cfg.out.join(model_dir::WEIGHTS).exists() {
            std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
            let (train_pairs, heldout) = self.corpus();
            let tsv: String = train_pairs.iter().map(|p| format!("{}\t{}\n", p.french, p.english)).collect();
            let path = self.dir.join("corpus.tsv");
            std::fs::write(&path, tsv).map_err(|e| Error::io(&path, e))?;
            let gold: String =
                heldout.iter().map(|p| format!("{}\t{}\t{}\n", p.french, p.english, p.gold_line())).collect();
            let path = self.dir.join("heldout.tsv");
            std::fs::write(&path, gold).map_err(|e| Error::io(&path, e))?;
            let _ = std::fs::remove_dir_all(&cfg.out);
            train(&cfg, Start::Fresh, &AtomicBool::new(false), on_update)?;
        }
        Translator::load(&cfg.out)
    }
}

/// Share of `pairs` translated exactly (greedy), and the outputs.
pub fn exact_match(translator: &Translator, pairs: &[GrammarPair]) -> Result<(f64, Vec<String>)> {
    let lines: Vec<&str> = pairs.iter().map(|p| p.french.as_str()).collect();
    let opts = DecodeOptions { strategy: Strategy::Greedy, ..DecodeOptions::default() };
    let out: Vec<String> = translator.translate(&lines, &opts)?.iter().map(|t| t.text().to_string()).collect();
    let right = out.iter().zip(pairs).filter(|(o, p)| **o == p.english).count();
    Ok((right as f64 / pairs.len().max(1) as f64, out))
}

/// Alignment error rate of each decoder layer's cross-attention (heads averaged) against the
/// grammar's gold links, reading each pair's reference translation.
pub fn alignment_error(translator: &Translator, pairs: &[GrammarPair]) -> Result<Vec<AerCounts>> {
    let mut counts = vec![AerCounts::default(); translator.model.config.decoder_layers];
    for p in pairs {
        let attention = forced_attention(translator, &p.french, &p.english)?;
        let gold = GoldLinks { sure: p.sure.clone(), possible: p.possible.clone() };
        for (layer, c) in counts.iter_mut().enumerate() {
            c.add(&attention.links(layer, &[]), &gold);
        }
    }
    Ok(counts)
}
