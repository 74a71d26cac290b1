//! What a search is asked to do: the strategy and the constraints every strategy honours.

use crate::error::{Error, Result};

/// How hypotheses of different lengths are compared.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LengthPenalty {
    /// Sum of log-probabilities divided by `((5 + len) / 6)^alpha` (Wu et al., 2016).
    Gnmt { alpha: f32 },
    /// Mean log-probability per token.
    Average,
    /// Sum of log-probabilities divided by `len^alpha` (Hugging Face's `length_penalty`).
    Power { alpha: f32 },
    /// Plain sum of log-probabilities.
    None,
}

impl LengthPenalty {
    /// A finite exponent.
    pub fn validate(self) -> Result<()> {
        match self {
            LengthPenalty::Gnmt { alpha } | LengthPenalty::Power { alpha } if !alpha.is_finite() => {
                Err(Error::option("length_penalty", format!("alpha {alpha} is not a finite number")))
            }
            _ => Ok(()),
        }
    }

    /// Score of a hypothesis with total log-probability `logp` over `len` tokens (EOS included).
    pub fn score(self, logp: f32, len: usize) -> f32 {
        match self {
            LengthPenalty::Gnmt { alpha } => logp / ((5.0 + len as f32) / 6.0).powf(alpha),
            LengthPenalty::Average => logp / len.max(1) as f32,
            LengthPenalty::Power { alpha } => logp / (len.max(1) as f32).powf(alpha),
            LengthPenalty::None => logp,
        }
    }

    /// The best score a live hypothesis with total `logp` (which can only fall) can still reach
    /// by finishing with at most `max_total_len` tokens.
    pub(crate) fn best_reachable(self, logp: f32, max_total_len: usize) -> f32 {
        // every penalty divides a non-positive sum by a factor that grows with length
        self.score(logp, max_total_len).max(logp)
    }
}

/// Which finished hypotheses a beam search keeps and when it stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BeamRule {
    /// An EOS counts only among the `beam` best candidates of a step, `beam` finished
    /// hypotheses are kept, and a sentence stops when its best live hypothesis, scored at its
    /// current length, does not beat the worst of them (Hugging Face's `early_stopping=False`
    /// heuristic; an EOS forced at the length limit costs its log-probability). The default:
    /// with a length penalty that rewards length (GNMT α 1.5), the exact rule goes on to find
    /// long, looping hypotheses that score higher (Multi30k en→de: 3.5 % more words than the
    /// references on test_2016_flickr), and this rule stops before most of them (1.1 % more
    /// words, 1.0 BLEU higher).
    #[default]
    Heuristic,
    /// Every EOS continuation among the candidates finishes a hypothesis; a sentence stops
    /// once no live hypothesis can beat its n-best, even at no further cost (an exact bound on
    /// the length-penalised score).
    Exact,
    /// Hugging Face `generate()` (`early_stopping=False`), for identical outputs: an EOS counts
    /// only among the `beam` best candidates of a step, `beam` finished hypotheses are kept, a
    /// sentence stops when its best live hypothesis, scored at its current length, does not
    /// beat the worst of them, and the EOS forced at the length limit costs nothing.
    HuggingFace,
    /// CTranslate2 (`translate_batch` with a length penalty): an EOS counts only among the
    /// `beam` best candidates, a sentence stops once `beam` hypotheses have finished (at any
    /// steps), the best by `logp / len^alpha` (EOS counted) wins; disallowed tokens leave
    /// the distribution before it is normalised. (CTranslate2 also never ends before one token:
    /// `min_len` 1.)
    CTranslate2,
}

crate::choices!(BeamRule, "beam rule", {
    Heuristic => "heuristic", Exact => "exact", HuggingFace => "hugging-face", CTranslate2 => "ctranslate2"
});

/// Beam search parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BeamOptions {
    pub beam: usize,
    pub length_penalty: LengthPenalty,
    /// Hypotheses returned per sentence (at most `beam`).
    pub n_best: usize,
    pub rule: BeamRule,
}

impl Default for BeamOptions {
    fn default() -> Self {
        BeamOptions {
            beam: 5,
            length_penalty: LengthPenalty::Gnmt { alpha: 0.6 },
            n_best: 1,
            rule: BeamRule::Heuristic,
        }
    }
}

impl BeamOptions {
    /// `beam >= 1`, `1 <= n_best <= beam`, and a finite length-penalty exponent.
    pub fn validate(&self) -> Result<()> {
        if self.beam == 0 {
            return Err(Error::option("beam", "must be at least 1"));
        }
        if self.n_best == 0 || self.n_best > self.beam {
            return Err(Error::option("n_best", format!("{} is not in 1..={} (the beam)", self.n_best, self.beam)));
        }
        self.length_penalty.validate()
    }

    /// What `transformers`' `generate(num_beams=beam)` does with its default `length_penalty=1.0`.
    pub fn hugging_face(beam: usize) -> Self {
        BeamOptions {
            beam,
            length_penalty: LengthPenalty::Power { alpha: 1.0 },
            n_best: 1,
            rule: BeamRule::HuggingFace,
        }
    }

    /// What CTranslate2's `translate_batch(beam_size=beam)` does with its default
    /// `length_penalty=1`.
    pub fn ctranslate2(beam: usize) -> Self {
        BeamOptions { rule: BeamRule::CTranslate2, ..Self::hugging_face(beam) }
    }
}

/// Sampling parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingOptions {
    /// Divides the log-probabilities; below 1 sharpens, above 1 flattens.
    pub temperature: f32,
    /// Keep only the `k` most probable tokens (0 = all).
    pub top_k: usize,
    /// Keep the smallest set of most probable tokens whose probability reaches `p` (1 = all).
    pub top_p: f32,
    pub seed: u64,
}

impl SamplingOptions {
    /// A positive finite temperature and `top_p` in (0, 1].
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(Error::option("temperature", format!("{} is not a positive number", self.temperature)));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(Error::option("top_p", format!("{} is not in (0, 1]", self.top_p)));
        }
        Ok(())
    }
}

impl Default for SamplingOptions {
    fn default() -> Self {
        SamplingOptions { temperature: 1.0, top_k: 0, top_p: 1.0, seed: 0 }
    }
}

/// How the next token is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Strategy {
    /// The most probable token at each step.
    Greedy,
    Beam(BeamOptions),
    /// A draw from the (tempered, truncated) distribution at each step.
    Sample(SamplingOptions),
}

/// Which cross-attention each output token reports (heads averaged), for alignments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alignment {
    Off,
    LastLayer,
    /// Decoder layer, counted from 0.
    Layer(usize),
}

impl Alignment {
    /// `Off` unless `wanted`; then decoder layer `layer`, or the last.
    pub fn when(wanted: bool, layer: Option<usize>) -> Self {
        match (wanted, layer) {
            (false, _) => Alignment::Off,
            (true, None) => Alignment::LastLayer,
            (true, Some(l)) => Alignment::Layer(l),
        }
    }
}

/// One `DecodeOptions` for every strategy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodeOptions {
    pub strategy: Strategy,
    /// Most output tokens (EOS excluded), whatever the source length. Peers count otherwise:
    /// Hugging Face's `generate(max_length=L)` counts the decoder start token and the EOS
    /// (`max_len = L - 2`), its `max_new_tokens=N` the EOS (`N - 1`); CTranslate2's
    /// `max_decoding_length=N` neither (`N`). A sentence that reaches the limit ends with the
    /// EOS forced there (free under the Hugging Face and CTranslate2 beam rules).
    pub max_len: usize,
    /// Also at most `ceil(ratio * source tokens)` output tokens (default 3, as Marian's
    /// `--max-length-factor`).
    pub max_len_ratio: Option<f32>,
    /// EOS is not allowed before this many tokens.
    pub min_len: usize,
    /// No n-gram of this size occurs twice in an output (0 = off).
    pub no_repeat_ngram: usize,
    /// Logits of tokens already in the output are divided (if positive) or multiplied (if
    /// negative) by this (1 = off), as in CTRL and Hugging Face.
    pub repetition_penalty: f32,
    pub alignment: Alignment,
    /// Source tokens (padding included) per batch, for callers that batch (the translator).
    pub max_tokens: usize,
    /// Whether outputs carry their log-probabilities.
    pub scores: Scores,
}

/// Whether a search reports the log-probabilities of what it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scores {
    /// Every hypothesis with its total and per-token log-probabilities.
    #[default]
    Include,
    /// Scores left out (NaN) where that saves work: greedy search then picks each token as it
    /// would from the log-probabilities (the same tokens) without normalising over the
    /// vocabulary ([`super::StepModel::step_most_probable`]). Beam search and sampling need
    /// the scores and compute them.
    Omit,
}

crate::choices!(Scores, "scores", { Include => "include", Omit => "omit" });

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            strategy: Strategy::Beam(BeamOptions::default()),
            max_len: 256,
            max_len_ratio: Some(3.0),
            min_len: 0,
            no_repeat_ngram: 0,
            repetition_penalty: 1.0,
            alignment: Alignment::Off,
            max_tokens: 4096,
            scores: Scores::Include,
        }
    }
}

impl DecodeOptions {
    /// Checks every option; the error names the first one out of range. The searches and the
    /// translator call it, so nothing is clamped silently.
    pub fn validate(&self) -> Result<()> {
        match &self.strategy {
            Strategy::Greedy => {}
            Strategy::Beam(b) => b.validate()?,
            Strategy::Sample(s) => s.validate()?,
        }
        if self.max_len == 0 {
            return Err(Error::option("max_len", "must be at least 1"));
        }
        if let Some(r) = self.max_len_ratio {
            if !(r.is_finite() && r > 0.0) {
                return Err(Error::option("max_len_ratio", format!("{r} is not a positive number")));
            }
        }
        if self.min_len > self.max_len {
            return Err(Error::option("min_len", format!("{} is above max_len {}", self.min_len, self.max_len)));
        }
        if !(self.repetition_penalty.is_finite() && self.repetition_penalty > 0.0) {
            return Err(Error::option(
                "repetition_penalty",
                format!("{} is not a positive number", self.repetition_penalty),
            ));
        }
        if self.max_tokens == 0 {
            return Err(Error::option("max_tokens", "must be at least 1"));
        }
        Ok(())
    }

    /// Greedy search with the other defaults.
    pub fn greedy(max_len: usize) -> Self {
        DecodeOptions { strategy: Strategy::Greedy, max_len, ..DecodeOptions::default() }
    }

    /// The output limit for a source of `source_len` tokens (EOS excluded).
    pub fn max_len_for(&self, source_len: usize) -> usize {
        match self.max_len_ratio {
            Some(r) => self.max_len.min((r * source_len as f32).ceil() as usize),
            None => self.max_len,
        }
    }

    /// Whether the EOS forced at the length limit adds nothing to a hypothesis' log-probability
    /// (Hugging Face) rather than the model's own EOS log-probability.
    pub fn forced_eos_is_free(&self) -> bool {
        matches!(self.strategy, Strategy::Beam(BeamOptions { rule: BeamRule::HuggingFace | BeamRule::CTranslate2, .. }))
    }

    /// Whether disallowed tokens leave the distribution before it is normalised (CTranslate2)
    /// rather than getting `-inf` after (Hugging Face, Marian).
    pub fn bans_before_softmax(&self) -> bool {
        matches!(self.strategy, Strategy::Beam(BeamOptions { rule: BeamRule::CTranslate2, .. }))
    }

    /// Rows decoded per source sentence.
    pub fn group(&self) -> usize {
        match self.strategy {
            Strategy::Beam(b) => b.beam,
            _ => 1,
        }
    }
}

/// What one sentence's output must satisfy besides the shared options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target<'a> {
    /// Most output tokens (EOS excluded).
    pub max_len: usize,
    /// Tokens the output must start with.
    pub prefix: &'a [u32],
    /// How many of the prefix's first tokens are tags the model is told (a multilingual
    /// model's target language), not choices it makes: they score log-probability 0, as
    /// `generate()`'s `forced_bos_token_id` scores them, and `min_len` counts after them.
    pub tags: usize,
}

impl<'a> Target<'a> {
    /// A sentence of at most `max_len` tokens that starts with `prefix` (no tags).
    pub fn new(max_len: usize, prefix: &'a [u32]) -> Self {
        Target { max_len, prefix, tags: 0 }
    }

    /// `count` sentences limited to `max_len` tokens, without prefixes.
    pub fn unconstrained(count: usize, max_len: usize) -> Vec<Target<'static>> {
        vec![Target::new(max_len, &[]); count]
    }
}

/// A search strategy by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SearchKind {
    #[default]
    Beam,
    Greedy,
    Sample,
}

crate::choices!(SearchKind, "search", { Beam => "beam", Greedy => "greedy", Sample => "sample" });

/// A length penalty by name; its exponent comes separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PenaltyKind {
    /// GNMT: divide by ((5 + len) / 6)^alpha.
    #[default]
    Gnmt,
    /// Mean log-probability per token.
    Average,
    /// Hugging Face: divide by len^alpha.
    Power,
    None,
}

crate::choices!(PenaltyKind, "length penalty", { Gnmt => "gnmt", Average => "average", Power => "power", None => "none" });

impl LengthPenalty {
    /// The penalty `kind` with exponent `alpha` (ignored by those without one).
    pub fn new(kind: PenaltyKind, alpha: f32) -> Self {
        match kind {
            PenaltyKind::Gnmt => LengthPenalty::Gnmt { alpha },
            PenaltyKind::Average => LengthPenalty::Average,
            PenaltyKind::Power => LengthPenalty::Power { alpha },
            PenaltyKind::None => LengthPenalty::None,
        }
    }
}

/// Every search option as one flat record, the way command-line flags and keyword arguments
/// give them (`transduce translate` / `serve` flags, the Python package's keywords); options
/// of the strategies not chosen are ignored. The defaults are the command line's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchSettings {
    pub search: SearchKind,
    pub beam: usize,
    pub length_penalty: PenaltyKind,
    /// The length penalty's exponent (GNMT and power).
    pub alpha: f32,
    pub beam_rule: BeamRule,
    pub n_best: usize,
    pub temperature: f32,
    pub top_k: usize,
    pub top_p: f32,
    pub seed: u64,
    pub max_len: usize,
    /// At most this many output tokens per source token; 0 or less: no such limit.
    pub max_len_ratio: f32,
    pub min_len: usize,
    pub no_repeat_ngram: usize,
    pub repetition_penalty: f32,
}

impl Default for SearchSettings {
    fn default() -> Self {
        SearchSettings {
            search: SearchKind::Beam,
            beam: 5,
            length_penalty: PenaltyKind::Gnmt,
            alpha: 0.6,
            beam_rule: BeamRule::Heuristic,
            n_best: 1,
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            seed: 0,
            max_len: 256,
            max_len_ratio: 3.0,
            min_len: 0,
            no_repeat_ngram: 0,
            repetition_penalty: 1.0,
        }
    }
}

impl SearchSettings {
    /// The library's options, checked ([`DecodeOptions::validate`]: the error names the option).
    pub fn decode_options(&self, alignment: Alignment, max_tokens: usize) -> Result<DecodeOptions> {
        let strategy = match self.search {
            SearchKind::Greedy => Strategy::Greedy,
            SearchKind::Beam => Strategy::Beam(BeamOptions {
                beam: self.beam,
                length_penalty: LengthPenalty::new(self.length_penalty, self.alpha),
                n_best: self.n_best,
                rule: self.beam_rule,
            }),
            SearchKind::Sample => Strategy::Sample(SamplingOptions {
                temperature: self.temperature,
                top_k: self.top_k,
                top_p: self.top_p,
                seed: self.seed,
            }),
        };
        let opts = DecodeOptions {
            strategy,
            max_len: self.max_len,
            max_len_ratio: (self.max_len_ratio > 0.0).then_some(self.max_len_ratio),
            min_len: self.min_len,
            no_repeat_ngram: self.no_repeat_ngram,
            repetition_penalty: self.repetition_penalty,
            alignment,
            max_tokens,
            scores: Scores::Include,
        };
        opts.validate()?;
        Ok(opts)
    }
}
