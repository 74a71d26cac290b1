//! Translation speed measured the way `shared/bench/peers/bench_peers.py` measures CTranslate2
//! and transformers, so the figures line up: text in, text out (tokenize, search, detokenize),
//! beam search over all lines sorted by source length in batches of a fixed sentence count,
//! greedy search one sentence at a time over the first lines; one warm-up on a prefix, then the
//! median of timed runs. Output tokens exclude EOS.

use std::time::Instant;

use serde::Serialize;

use super::{median, round, system};
use transduce::error::{Error, Result};
use transduce::search::{BeamOptions, DecodeOptions, Strategy};
use transduce::translate::{Input, Output, Translator};

/// What to measure.
#[derive(Debug, Clone, Copy)]
pub struct TranslationBench {
    pub beam: usize,
    /// Sentences per beam-search batch.
    pub batch: usize,
    /// Timed runs of each mode (the median is reported).
    pub runs: usize,
    /// Lines translated one at a time by greedy search.
    pub greedy_lines: usize,
    /// Lines of the beam-search warm-up.
    pub warmup_lines: usize,
    /// Most output tokens per sentence, EOS excluded.
    pub max_len: usize,
}

impl Default for TranslationBench {
    fn default() -> Self {
        TranslationBench { beam: 4, batch: 32, runs: 3, greedy_lines: 200, warmup_lines: 64, max_len: 256 }
    }
}

/// One mode's timing.
#[derive(Debug, Clone, Serialize)]
pub struct TranslationFigure {
    pub system: String,
    pub figure: &'static str,
    /// `beam4`, `greedy1`, ...
    pub mode: String,
    pub lines: usize,
    pub times_s: Vec<f64>,
    pub median_s: f64,
    pub out_tokens: usize,
    pub tok_per_s: f64,
    pub ms_per_sent: f64,
}

/// One mode's timing and what the last timed run wrote.
#[derive(Debug, Clone)]
pub struct TranslationRun {
    pub figure: TranslationFigure,
    pub texts: Vec<String>,
    /// Subword pieces of each output, EOS excluded.
    pub pieces: Vec<Vec<String>>,
}

impl TranslationBench {
    /// CTranslate2's `translate_batch` defaults (length penalty 1, at least one token), the
    /// whole batch in one search.
    fn options(&self, strategy: Strategy) -> DecodeOptions {
        DecodeOptions {
            strategy,
            max_len: self.max_len,
            max_len_ratio: None,
            min_len: 1,
            max_tokens: usize::MAX,
            ..DecodeOptions::default()
        }
    }

    /// Beam search over every line, sorted by source length (stable), in batches of `batch`
    /// sentences (as many at once as the translator has streams).
    pub fn beam(&self, translator: &Translator, lines: &[&str]) -> Result<TranslationRun> {
        let opts = self.options(Strategy::Beam(BeamOptions::ctranslate2(self.beam)));
        let by_length = |lines: &[&str]| -> Result<Vec<usize>> {
            let mut lengths = Vec::with_capacity(lines.len());
            for line in lines {
                lengths.push(translator.tokenizers.source.encode(line)?.len());
            }
            let mut order: Vec<usize> = (0..lines.len()).collect();
            order.sort_by_key(|&i| lengths[i]);
            Ok(order)
        };
        let run = |order: &[usize]| -> Result<Vec<Output>> {
            let inputs: Vec<Input> = order.iter().map(|&i| Input::new(lines[i], i as u64)).collect();
            let groups: Vec<&[Input]> = inputs.chunks(self.batch.max(1)).collect();
            let mut outputs = vec![None; lines.len()];
            for (&i, t) in order.iter().zip(translator.translate_groups(&groups, &opts)?.into_iter().flatten()) {
                outputs[i] = t.outputs.into_iter().next();
            }
            Ok(outputs.into_iter().flatten().collect())
        };
        let warmup = &lines[..self.warmup_lines.min(lines.len())];
        run(&by_length(warmup)?)?;
        let order = by_length(lines)?;
        self.timed(translator, &format!("beam{}", self.beam), lines.len(), || run(&order))
    }

    /// Greedy search on the first `greedy_lines` lines, one sentence per call.
    pub fn greedy(&self, translator: &Translator, lines: &[&str]) -> Result<TranslationRun> {
        let opts = self.options(Strategy::Greedy);
        let lines = &lines[..self.greedy_lines.min(lines.len())];
        let run = |lines: &[&str]| -> Result<Vec<Output>> {
            let mut outputs = Vec::with_capacity(lines.len());
            for line in lines {
                let t = translator.translate(&[line], &opts)?;
                outputs.extend(t.into_iter().filter_map(|t| t.outputs.into_iter().next()));
            }
            Ok(outputs)
        };
        run(&lines[..10.min(lines.len())])?;
        self.timed(translator, "greedy1", lines.len(), || run(lines))
    }

    fn timed(
        &self,
        translator: &Translator,
        mode: &str,
        lines: usize,
        mut run: impl FnMut() -> Result<Vec<Output>>,
    ) -> Result<TranslationRun> {
        let mut times = Vec::new();
        let mut outputs = Vec::new();
        for _ in 0..self.runs.max(1) {
            let t0 = Instant::now();
            outputs = run()?;
            times.push(t0.elapsed().as_secs_f64());
        }
        if outputs.len() != lines {
            return Err(Error::Input(format!("{} outputs for {lines} lines", outputs.len())));
        }
        let med = median(times.clone());
        let target = &translator.tokenizers.target;
        let pieces: Vec<Vec<String>> = outputs.iter().map(|o| target.id_pieces(&o.tokens)).collect();
        let out_tokens = outputs.iter().map(|o| o.tokens.len()).sum();
        let texts = outputs.into_iter().map(|o| o.text).collect();
        let figure = TranslationFigure {
            system: system(),
            figure: "translate",
            mode: mode.to_string(),
            lines,
            times_s: times.iter().map(|&t| round(t, 6)).collect(),
            median_s: round(med, 6),
            out_tokens,
            tok_per_s: round(out_tokens as f64 / med, 1),
            ms_per_sent: round(1e3 * med / lines.max(1) as f64, 2),
        };
        Ok(TranslationRun { figure, texts, pieces })
    }
}
