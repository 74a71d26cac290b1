//! How a translation is searched for: the options `translate` and `serve` share.

use anyhow::Result;
use clap::Args;

use super::choice::choice;
use transduce::search::{Alignment, BeamRule, DecodeOptions, PenaltyKind, SearchKind, SearchSettings};

/// Search options.
#[derive(Debug, Clone, Args)]
pub struct SearchArgs {
    /// beam, greedy or sample.
    #[arg(long, value_parser = choice::<SearchKind>(), default_value_t = SearchKind::Beam)]
    pub search: SearchKind,
    /// Beam size (beam search).
    #[arg(long, default_value_t = 5)]
    pub beam: usize,
    /// Length normalisation of beam scores: gnmt (divide by ((5 + len) / 6)^alpha), average
    /// (mean log-probability per token), power (Hugging Face: divide by len^alpha) or none.
    #[arg(long, value_parser = choice::<PenaltyKind>(), default_value_t = PenaltyKind::Gnmt)]
    pub length_penalty: PenaltyKind,
    /// Length penalty exponent (GNMT and power).
    #[arg(long, default_value_t = 0.6)]
    pub alpha: f32,
    /// Which finished hypotheses count and when a sentence stops: `heuristic` (stop when the
    /// best live hypothesis, scored now, does not beat the beam's finished ones), `exact` (when
    /// no live hypothesis can still win), `hugging-face` (transformers' `generate()`, with
    /// `--length-penalty power --alpha 1`) or `ctranslate2` (after `beam` have finished).
    #[arg(long, value_parser = choice::<BeamRule>(), default_value_t = BeamRule::Heuristic)]
    pub beam_rule: BeamRule,
    /// Hypotheses per sentence (beam search; shown by --format nbest and jsonl).
    #[arg(long, default_value_t = 1)]
    pub n_best: usize,
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f32,
    /// Sample among the k most probable tokens (0 = all).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Sample among the most probable tokens holding this much probability.
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Most output tokens per sentence.
    #[arg(long, default_value_t = 256)]
    pub max_len: usize,
    /// Also at most this many output tokens per source token (0 = no such limit).
    #[arg(long, default_value_t = 3.0)]
    pub max_len_ratio: f32,
    #[arg(long, default_value_t = 0)]
    pub min_len: usize,
    /// Forbid repeating any n-gram of this size (0 = off).
    #[arg(long, default_value_t = 0)]
    pub no_repeat_ngram: usize,
    /// Penalise tokens already produced (1 = off; 1.2 is common).
    #[arg(long, default_value_t = 1.0)]
    pub repetition_penalty: f32,
}

impl SearchArgs {
    /// The library's options (validated, errors naming the flag).
    pub fn decode_options(&self, alignment: Alignment, max_tokens: usize) -> Result<DecodeOptions> {
        let settings = SearchSettings {
            search: self.search,
            beam: self.beam,
            length_penalty: self.length_penalty,
            alpha: self.alpha,
            beam_rule: self.beam_rule,
            n_best: self.n_best,
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            seed: self.seed,
            max_len: self.max_len,
            max_len_ratio: self.max_len_ratio,
            min_len: self.min_len,
            no_repeat_ngram: self.no_repeat_ngram,
            repetition_penalty: self.repetition_penalty,
        };
        // the library checks every option; the message names the flag
        settings.decode_options(alignment, max_tokens).map_err(super::as_flags)
    }
}
