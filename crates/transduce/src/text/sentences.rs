//! A rule-based multilingual sentence splitter: a paragraph becomes sentence spans, and what
//! lies between them (spaces, newlines) is left to the caller, so a translation can be put back
//! with the original whitespace.
//!
//! A sentence ends after `.`, `!`, `?`, `…` (or `。！？` with no space needed), any closing
//! quotes or brackets, then whitespace and something that can start a sentence (a capital, a
//! digit, an opening quote or bracket, an inverted `¿¡`). Not after a known abbreviation
//! (`Dr.`, `z.B.`, `Mme.`, `etc.` …), a single initial (`J. Smith`), or, in languages that write
//! ordinals with a dot (German, Czech …), a number (`am 3. Oktober`).

use std::ops::Range;

/// How newlines count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Newlines {
    /// A newline always ends a sentence (paragraphs, list items, lines of a poem).
    #[default]
    Split,
    /// Newlines are spaces inside a sentence (DeepL's `split_sentences=nonewlines`).
    Join,
}

/// Words that end with a dot without ending a sentence, lowercase, without the final dot.
const ABBREVIATIONS: &[&str] = &[
    // English
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "inc", "ltd", "co", "mt", "no", "fig",
    "approx", "dept", "est", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
    "u.s", "a.m", "p.m", "cf", "al", "vol", "ed", "gen", "col", "lt", "sgt", "capt", "rev", "hon", // French
    "m", "mm", "mme", "mmes", "mlle", "mlles", "pr", "me", "av", "apr", "env", "p.ex", "ex", "cf", "vol", "chap",
    "boul", "bd", "ste", "st", "j.-c", // German
    "z.b", "bzw", "usw", "hr", "fr", "nr", "ca", "vgl", "s", "d.h", "u.a", "z.t", "inkl", "evtl", "ggf", "bzgl", "str",
    "tel", "dipl", "ing", // Spanish, Italian, Portuguese
    "sra", "srta", "ud", "uds", "dra", "sig", "sigg", "dott", "ecc", "pag", "pág", "núm", "sres", // Czech
    "např", "atd", "tj", "tzv", "apod", "resp", "mj", "pí", "ing", "mgr", "doc",
];

/// Languages whose ordinal numbers end with a dot.
const DOT_ORDINALS: &[&str] =
    &["de", "cs", "sk", "da", "no", "nb", "fi", "hu", "hr", "sl", "sr", "et", "lv", "is", "tr"];

/// Byte spans of the sentences of `text`, in order, without surrounding whitespace. `lang` is
/// an ISO 639-1 code, when known.
pub fn split(text: &str, lang: Option<&str>, newlines: Newlines) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    match newlines {
        Newlines::Split => {
            let mut at = 0;
            for line in text.split_inclusive('\n') {
                split_line(text, at..at + line.len(), lang, &mut out);
                at += line.len();
            }
        }
        Newlines::Join => split_line(text, 0..text.len(), lang, &mut out),
    }
    out
}

/// Appends the sentences of `text[range]` to `out`.
fn split_line(text: &str, range: Range<usize>, lang: Option<&str>, out: &mut Vec<Range<usize>>) {
    let line = &text[range.clone()];
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut begin = None::<usize>;
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        if begin.is_none() && !c.is_whitespace() {
            begin = Some(at);
        }
        if let Some(b) = begin {
            if is_terminator(c) {
                // the whole cluster of terminators and closing marks
                let mut j = i + 1;
                while j < chars.len() && (is_terminator(chars[j].1) || is_closing(chars[j].1)) {
                    j += 1;
                }
                let end = chars.get(j).map_or(line.len(), |&(p, _)| p);
                let ends = if is_cjk_terminator(c) {
                    true
                } else {
                    let spaced = chars.get(j).is_none_or(|&(_, n)| n.is_whitespace());
                    let next = chars[j..].iter().find(|(_, n)| !n.is_whitespace()).map(|&(_, n)| n);
                    spaced && next.is_none_or(can_start) && !(c == '.' && j == i + 1 && keeps_going(line, b, at, lang))
                };
                if ends {
                    out.push(range.start + b..range.start + end);
                    begin = None;
                }
                i = j;
                continue;
            }
        }
        i += 1;
    }
    if let Some(b) = begin {
        let end = line.trim_end().len();
        if end > b {
            out.push(range.start + b..range.start + end);
        }
    }
}

/// Whether the dot at `dot` ends a word that does not end a sentence: an abbreviation, an
/// initial, or an ordinal number.
fn keeps_going(line: &str, sentence_start: usize, dot: usize, lang: Option<&str>) -> bool {
    let before = &line[sentence_start..dot];
    let word = before.rsplit(|c: char| c.is_whitespace() || "(\"'«“‘".contains(c)).next().unwrap_or("");
    if word.is_empty() {
        return false;
    }
    let lower = word.to_lowercase();
    if ABBREVIATIONS.contains(&lower.as_str()) {
        return true;
    }
    // an acronym written with dots: U.S.A, E.S.E
    if word.contains('.') && word.split('.').all(|part| part.chars().count() == 1) {
        return true;
    }
    let mut letters = word.chars();
    // an initial: one capital letter
    if let (Some(first), None) = (letters.next(), letters.next()) {
        if first.is_uppercase() {
            return true;
        }
    }
    word.chars().all(|c| c.is_ascii_digit()) && lang.is_some_and(|l| DOT_ORDINALS.contains(&l))
}

fn is_terminator(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '…' | '‼' | '⁇' | '⁈' | '⁉') || is_cjk_terminator(c)
}

fn is_cjk_terminator(c: char) -> bool {
    matches!(c, '。' | '！' | '？' | '｡')
}

fn is_closing(c: char) -> bool {
    matches!(c, '"' | '\'' | ')' | ']' | '}' | '»' | '”' | '’' | '›' | '」' | '』' | '）')
}

/// Whether a sentence may begin with `c`.
fn can_start(c: char) -> bool {
    c.is_uppercase()
        || c.is_numeric()
        || matches!(c, '"' | '\'' | '(' | '[' | '«' | '“' | '‘' | '‹' | '¿' | '¡' | '—' | '–' | '-' | '„')
        || (!c.is_lowercase() && c.is_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sentences<'a>(text: &'a str, lang: &str) -> Vec<&'a str> {
        split(text, Some(lang), Newlines::Split).into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn splits_at_terminators_followed_by_a_capital() {
        assert_eq!(sentences("Hello there. How are you? Fine!", "en"), ["Hello there.", "How are you?", "Fine!"]);
        assert_eq!(sentences("  Leading space.  Two spaces.  ", "en"), ["Leading space.", "Two spaces."]);
        assert_eq!(sentences("No terminator at the end", "en"), ["No terminator at the end"]);
        assert_eq!(sentences("", "en"), Vec::<&str>::new());
    }

    #[test]
    fn keeps_abbreviations_initials_and_numbers() {
        assert_eq!(sentences("Dr. Smith met Mr. J. Brown at 3.30 p.m. today.", "en").len(), 1);
        assert_eq!(sentences("M. Dupont et Mme. Durand arrivent. Ils partent.", "fr").len(), 2);
        assert_eq!(
            sentences("Er kam z.B. am 3. Oktober. Dann ging er.", "de"),
            ["Er kam z.B. am 3. Oktober.", "Dann ging er."]
        );
        assert_eq!(sentences("Il y en a 3. Trois.", "fr"), ["Il y en a 3.", "Trois."]);
        assert_eq!(sentences("The price is 3.50 dollars. Really.", "en").len(), 2);
        assert_eq!(sentences("Un panneau \"E.S.E. Electronics\". Fin.", "fr").len(), 2);
        assert_eq!(sentences("Made in the U.S.A. Then shipped.", "en").len(), 1);
    }

    #[test]
    fn quotes_ellipses_and_lowercase_continuations() {
        assert_eq!(sentences("« Viens ! » dit-il. Elle vint.", "fr"), ["« Viens ! » dit-il.", "Elle vint."]);
        assert_eq!(sentences("He said \"Stop.\" Then he left.", "en"), ["He said \"Stop.\"", "Then he left."]);
        assert_eq!(sentences("Wait... what? And then… Nothing.", "en"), ["Wait... what?", "And then…", "Nothing."]);
        assert_eq!(sentences("¿Qué? ¡Nada! Bien.", "es"), ["¿Qué?", "¡Nada!", "Bien."]);
        assert_eq!(sentences("今日は晴れ。明日は雨。", "ja"), ["今日は晴れ。", "明日は雨。"]);
    }

    #[test]
    fn newlines_split_or_join() {
        let text = "First line\nsecond line.\n\nNew paragraph";
        assert_eq!(sentences(text, "en"), ["First line", "second line.", "New paragraph"]);
        let joined: Vec<&str> = split(text, Some("en"), Newlines::Join).into_iter().map(|r| &text[r]).collect();
        assert_eq!(joined, ["First line\nsecond line.", "New paragraph"]);
    }

    #[test]
    fn spans_are_in_order_and_leave_only_whitespace_between() {
        let text = "  A b. C d!\n\n E f?  G  ";
        let spans = split(text, None, Newlines::Split);
        let mut at = 0;
        for r in &spans {
            assert!(text[at..r.start].trim().is_empty(), "{:?}", &text[at..r.start]);
            at = r.end;
        }
        assert!(text[at..].trim().is_empty());
    }
}
