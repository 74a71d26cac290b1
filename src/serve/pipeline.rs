//! A request's texts through the models: split into sentences (each one unit of the shared
//! batch), translated along the route (through English when there is no direct model), and put
//! back together with the original whitespace and newlines.

use tokio::sync::oneshot;
use transduce::search::{BeamOptions, DecodeOptions, Strategy};
use transduce::text::sentences::{self, Newlines};
use transduce::translate::scheduler::Refused;
use transduce::Translation;

use super::models::Hop;
use super::request::ApiError;
use axum::http::StatusCode;

/// A text cut into sentences and the text between them.
#[derive(Debug, Clone, PartialEq)]
pub struct Segmented {
    /// Text before each sentence, and after the last one (one more than sentences).
    gaps: Vec<String>,
    sentences: Vec<String>,
}

impl Segmented {
    /// Cuts `text` (in language `lang`) into sentences; with [`Split::No`] the whole trimmed
    /// text is one unit.
    pub fn new(text: &str, lang: &str, split: Split) -> Self {
        let spans = match split {
            Split::Sentences(newlines) => sentences::split(text, Some(lang), newlines),
            Split::No => {
                let start = text.len() - text.trim_start().len();
                let end = text.trim_end().len();
                std::iter::once(start..end).filter(|r| r.start < r.end).collect()
            }
        };
        let mut gaps = Vec::with_capacity(spans.len() + 1);
        let mut at = 0;
        for r in &spans {
            gaps.push(text[at..r.start].to_string());
            at = r.end;
        }
        gaps.push(text[at..].to_string());
        Segmented { gaps, sentences: spans.into_iter().map(|r| text[r].to_string()).collect() }
    }

    pub fn sentences(&self) -> &[String] {
        &self.sentences
    }

    /// The text with sentence `i` replaced by `translated[i]`.
    pub fn assemble(&self, translated: &[String]) -> String {
        let mut out = String::new();
        for (gap, sentence) in self.gaps.iter().zip(translated) {
            out.push_str(gap);
            out.push_str(sentence);
        }
        out.push_str(self.gaps.last().map_or("", String::as_str));
        out
    }
}

/// How texts are cut into units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Sentences(Newlines),
    /// One unit per text (DeepL's `split_sentences=0`).
    No,
}

/// The decoding options of a request wanting `alternatives` besides the best translation.
pub fn options(base: &DecodeOptions, alternatives: usize) -> DecodeOptions {
    if alternatives == 0 {
        return *base;
    }
    let beam = match base.strategy {
        Strategy::Beam(b) => b,
        _ => BeamOptions::default(),
    };
    let n = alternatives + 1;
    DecodeOptions { strategy: Strategy::Beam(BeamOptions { beam: beam.beam.max(n), n_best: n, ..beam }), ..*base }
}

/// Sentences through one hop's model, waiting without blocking the runtime; if the caller goes
/// away, the scheduler drops the sentences not yet started.
pub async fn translate(hop: Hop<'_>, lines: Vec<String>, opts: DecodeOptions) -> Result<Vec<Translation>, ApiError> {
    let (tx, rx) = oneshot::channel();
    let direction = hop.model.direction(hop.source, hop.target);
    let reply = Box::new(move |r| drop(tx.send(r)));
    let ticket = hop.model.scheduler.submit_in(lines, direction.as_ref(), opts, reply).map_err(|e| match e {
        Refused::Full { .. } => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("Server busy: {e}")).retry_after(1)
        }
        Refused::Stopped => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).retry_after(5),
        Refused::Invalid(e) => ApiError::bad_request(format!("Invalid request: {e}")),
    })?;
    let result = rx.await.map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the translator stopped"))?;
    drop(ticket);
    result.map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("Cannot translate text: {e}")))
}

/// Each text's translation and its alternatives (distinct from it and each other), through
/// `route`: alternatives come from the n-best list of the last model, sentence by sentence.
pub async fn translate_texts(
    route: &[Hop<'_>],
    texts: &[String],
    split: Split,
    base: &DecodeOptions,
    alternatives: usize,
) -> Result<Vec<(String, Vec<String>)>, ApiError> {
    let source = route[0].source;
    let segmented: Vec<Segmented> = texts.iter().map(|t| Segmented::new(t, source, split)).collect();
    let mut lines: Vec<String> = segmented.iter().flat_map(|s| s.sentences().iter().cloned()).collect();
    let mut outputs: Vec<Vec<String>> = Vec::new();
    for (i, hop) in route.iter().enumerate() {
        let last = i + 1 == route.len();
        let opts = if last { options(base, alternatives) } else { *base };
        let translations = translate(*hop, std::mem::take(&mut lines), opts).await?;
        if last {
            outputs = translations.into_iter().map(|t| t.outputs.into_iter().map(|o| o.text).collect()).collect();
        } else {
            lines = translations.into_iter().map(|t| t.text().to_string()).collect();
        }
    }
    let mut at = 0;
    let mut out = Vec::with_capacity(texts.len());
    for s in &segmented {
        let sentences = &outputs[at..at + s.sentences().len()];
        at += s.sentences().len();
        let nth = |i: usize| -> Vec<String> {
            sentences.iter().map(|o| o.get(i).or(o.first()).cloned().unwrap_or_default()).collect()
        };
        let best = s.assemble(&nth(0));
        let mut alts: Vec<String> = Vec::new();
        for i in 1..=alternatives {
            let alt = s.assemble(&nth(i));
            if alt != best && !alts.contains(&alt) {
                alts.push(alt);
            }
        }
        out.push((best, alts));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assembling_keeps_whitespace_and_newlines() {
        let text = "  Un chat.  Un chien !\n\nFin.\n";
        let s = Segmented::new(text, "fr", Split::Sentences(Newlines::Split));
        assert_eq!(s.sentences(), ["Un chat.", "Un chien !", "Fin."]);
        let upper: Vec<String> = s.sentences().iter().map(|x| x.to_uppercase()).collect();
        assert_eq!(s.assemble(&upper), "  UN CHAT.  UN CHIEN !\n\nFIN.\n");
        let whole = Segmented::new(" a. B. ", "en", Split::No);
        assert_eq!(whole.sentences(), ["a. B."]);
        assert_eq!(whole.assemble(&["x".into()]), " x ");
        let blank = Segmented::new(" \n ", "en", Split::Sentences(Newlines::Split));
        assert!(blank.sentences().is_empty());
        assert_eq!(blank.assemble(&[]), " \n ");
    }

    #[test]
    fn alternatives_widen_the_beam() {
        let base = DecodeOptions::default();
        let o = options(&base, 3);
        let Strategy::Beam(b) = o.strategy else { panic!("beam") };
        assert_eq!((b.n_best, b.beam >= 4), (4, true));
        assert_eq!(options(&base, 0), base);
    }
}
