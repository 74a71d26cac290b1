//! Translating a stream of lines into a stream of results in input order, in bounded memory: a
//! window of lines at a time (sorted and batched by token budget inside the translator), each
//! result written as text, JSON lines, Moses n-best lines or Pharaoh alignments.
//!
//! `transduce translate` and the Python package's `Translator.translate_file` both run
//! [`translate_lines`].

use std::io::Write;
use std::path::Path;

use crate::data::lines::LineReader;
use crate::error::{Error, Result};
use crate::model_dir::Languages;
use crate::search::{Alignment, DecodeOptions, Scores, Strategy};
use crate::text::languages::Direction;
use crate::translate::align::pharaoh;
use crate::translate::{Input, Output, Translation, Translator};

/// What each input line becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// The translation (with ` ||| links` when the options ask for alignments).
    #[default]
    Text,
    /// One JSON object per line: id, text, score, tokens, and what was asked for.
    Jsonl,
    /// Moses n-best lines: `id ||| text ||| score`, the n-best per input.
    Nbest,
    /// Only the word alignment, `source-target` links (from cross-attention).
    Pharaoh,
}

impl TokenScores {
    /// `Include` when `wanted`.
    pub fn when(wanted: bool) -> Self {
        if wanted {
            TokenScores::Include
        } else {
            TokenScores::Omit
        }
    }
}

crate::choices!(Format, "output format", { Text => "text", Jsonl => "jsonl", Nbest => "nbest", Pharaoh => "pharaoh" });

impl Format {
    /// What the search computes for output in this format when `asked` for scores: text and
    /// pharaoh lines show none, so they are omitted; an n-best list shows them, and per-token
    /// scores in JSON lines need them, so `Omit` is refused there (the error names the option
    /// `scores`); otherwise as asked.
    pub fn scores(self, asked: Scores, token_scores: TokenScores) -> Result<Scores> {
        match (self, asked) {
            (Format::Text | Format::Pharaoh, _) => Ok(Scores::Omit),
            (Format::Jsonl, Scores::Omit) if token_scores == TokenScores::Include => {
                Err(Error::option("scores", "per-token scores need the scores: drop `omit` or the token scores"))
            }
            (Format::Nbest, Scores::Omit) => Err(Error::option("scores", "an n-best list writes scores: drop `omit`")),
            (Format::Jsonl | Format::Nbest, asked) => Ok(asked),
        }
    }
}

/// Whether JSON lines carry each token's log-probability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenScores {
    #[default]
    Omit,
    Include,
}

/// The target prefixes translations must start with.
pub enum Prefixes {
    None,
    /// The same prefix for every line.
    Same(String),
    /// One line of this reader per input line (an empty line: none).
    PerLine(LineReader),
}

impl Prefixes {
    /// One prefix per line of `file` if given, else `same` for every line, else none.
    pub fn open(file: Option<&Path>, same: Option<String>) -> Result<Self> {
        Ok(match (file, same) {
            (Some(path), _) => Prefixes::PerLine(LineReader::open(path)?),
            (None, Some(p)) => Prefixes::Same(p),
            (None, None) => Prefixes::None,
        })
    }
}

/// How [`translate_lines`] reads and writes.
#[derive(Debug, Clone)]
pub struct StreamOptions {
    pub format: Format,
    pub token_scores: TokenScores,
    /// Input lines read, sorted and translated at a time (bounds memory; 1 for interactive use).
    pub window: usize,
    /// Source and target language of every line, for a multilingual model.
    pub languages: Option<Languages>,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions { format: Format::Text, token_scores: TokenScores::Omit, window: 2000, languages: None }
    }
}

/// What a window (and, summed, the whole stream) did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamReport {
    /// Input lines translated.
    pub lines: u64,
    /// Output tokens of the best translations, EOS included.
    pub target_tokens: u64,
    /// 0-based ids of the lines cut to the model's longest sequence.
    pub truncated: Vec<u64>,
}

/// Translates every line of `input` with `opts` and writes the results to `out` in input order,
/// flushing after each window; `on_window` hears what each window did (its error stops the
/// stream and is returned). A prefix reader with
/// fewer or more lines than the input is an error naming both.
pub fn translate_lines(
    translator: &Translator,
    input: &mut LineReader,
    mut prefixes: Prefixes,
    out: &mut dyn Write,
    opts: &DecodeOptions,
    stream: &StreamOptions,
    mut on_window: impl FnMut(&StreamReport) -> Result<()>,
) -> Result<StreamReport> {
    if stream.window == 0 {
        return Err(Error::option("window", "must be at least 1"));
    }
    translator.check(opts)?;
    let mut total = StreamReport::default();
    let write_error = |e: std::io::Error| Error::Input(format!("writing the translations: {e}"));
    loop {
        let mut lines = Vec::new();
        let mut line_prefixes: Vec<Option<String>> = Vec::new();
        while lines.len() < stream.window {
            let Some(line) = input.next_line()? else { break };
            let prefix = match &mut prefixes {
                Prefixes::None => None,
                Prefixes::Same(p) => Some(p.clone()),
                Prefixes::PerLine(r) => Some(r.next_line()?.ok_or_else(|| {
                    Error::Input(format!(
                        "{}: fewer lines than {} ({} read)",
                        r.name(),
                        input.name(),
                        input.lines_read() - 1
                    ))
                })?),
            };
            lines.push(line);
            line_prefixes.push(prefix.filter(|p| !p.is_empty()));
        }
        if lines.is_empty() {
            break;
        }
        let first = total.lines;
        let inputs: Vec<Input> = lines
            .iter()
            .zip(&line_prefixes)
            .enumerate()
            .map(|(i, (text, prefix))| Input {
                prefix: prefix.as_deref(),
                direction: stream.languages.as_ref().map(|l| Direction { source: &l.source, target: &l.target }),
                ..Input::new(text, first + i as u64)
            })
            .collect();
        let translations = translator.translate_inputs(&inputs, opts)?;
        let mut window = StreamReport { lines: lines.len() as u64, ..StreamReport::default() };
        for (i, t) in translations.iter().enumerate() {
            let id = first + i as u64;
            if t.truncated {
                window.truncated.push(id);
            }
            write_translation(out, id, t, opts, stream).map_err(write_error)?;
            window.target_tokens += (t.best().tokens.len() + usize::from(!t.best().token_scores.is_empty())) as u64;
        }
        out.flush().map_err(write_error)?;
        on_window(&window)?;
        total.lines += window.lines;
        total.target_tokens += window.target_tokens;
        total.truncated.extend(window.truncated);
    }
    if let Prefixes::PerLine(r) = &mut prefixes {
        if r.next_line()?.is_some() {
            return Err(Error::Input(format!("{}: more lines than {} ({})", r.name(), input.name(), total.lines)));
        }
    }
    Ok(total)
}

/// Writes one input line's result (`id` counts lines from 0) in `stream.format`.
pub fn write_translation(
    out: &mut dyn Write,
    id: u64,
    t: &Translation,
    opts: &DecodeOptions,
    stream: &StreamOptions,
) -> std::io::Result<()> {
    let aligned = opts.alignment != Alignment::Off;
    let links = |o: &Output| o.alignment.as_deref().map(pharaoh).unwrap_or_default();
    match stream.format {
        Format::Text if aligned => writeln!(out, "{} ||| {}", t.text(), links(t.best())),
        Format::Text => writeln!(out, "{}", t.text()),
        Format::Pharaoh => writeln!(out, "{}", links(t.best())),
        Format::Nbest => {
            for o in &t.outputs {
                writeln!(out, "{id} ||| {} ||| {:.6}", o.text, o.score)?;
            }
            Ok(())
        }
        Format::Jsonl => {
            let entry = |o: &Output| {
                let mut v = serde_json::json!({ "text": o.text, "tokens": o.tokens });
                if opts.scores == Scores::Include {
                    v["score"] = serde_json::json!(o.score);
                }
                if stream.token_scores == TokenScores::Include {
                    v["token_scores"] = serde_json::json!(o.token_scores);
                }
                if aligned {
                    v["alignment"] = serde_json::json!(links(o));
                }
                v
            };
            let mut v = entry(t.best());
            v["id"] = serde_json::json!(id);
            if t.truncated {
                v["truncated"] = serde_json::json!(true);
            }
            if matches!(opts.strategy, Strategy::Beam(b) if b.n_best > 1) {
                v["n_best"] = serde_json::json!(t.outputs.iter().map(entry).collect::<Vec<_>>());
            }
            writeln!(out, "{v}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_format_computes_the_scores_it_shows() {
        for asked in [Scores::Include, Scores::Omit] {
            for token_scores in [TokenScores::Include, TokenScores::Omit] {
                assert_eq!(Format::Text.scores(asked, token_scores).unwrap(), Scores::Omit);
                assert_eq!(Format::Pharaoh.scores(asked, token_scores).unwrap(), Scores::Omit);
            }
        }
        assert_eq!(Format::Jsonl.scores(Scores::Omit, TokenScores::Omit).unwrap(), Scores::Omit);
        assert_eq!(Format::Jsonl.scores(Scores::Include, TokenScores::Include).unwrap(), Scores::Include);
        assert_eq!(Format::Nbest.scores(Scores::Include, TokenScores::Omit).unwrap(), Scores::Include);
        let err = Format::Jsonl.scores(Scores::Omit, TokenScores::Include).unwrap_err().to_string();
        assert!(err.starts_with("option `scores`: per-token scores need"), "{err}");
        let err = Format::Nbest.scores(Scores::Omit, TokenScores::Omit).unwrap_err().to_string();
        assert!(err.starts_with("option `scores`: an n-best list"), "{err}");
    }
}
