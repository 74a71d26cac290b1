//! Translating HTML (LibreTranslate's `format=html`, DeepL's `tag_handling=html|xml`): the
//! text between tags is translated and every tag is kept byte for byte. Text runs that inline
//! tags (`<b>`, `<i>`, `<a href>` …) interrupt are translated as one text, and each inline
//! element is put back around the target words its source words align to (cross-attention
//! alignment), as in-browser translators do. `<script>`, `<style>`, `<code>`, `<pre>`,
//! `<textarea>`, comments and anything marked `translate="no"` or `class="notranslate"` are
//! copied untouched; entities in the source stay entities in the output.
//!
//! The tokenizer below only finds where tags start and end (quotes respected), so that the
//! markup is kept exactly as written, malformed or not: a `<` that starts no tag is text, and
//! an unclosed tag is text to the end.

use std::collections::HashMap;

use transduce::search::Alignment;
use transduce::text::sentences::{self, Newlines};
use transduce::{DecodeOptions, Translation};

use super::models::Hop;
use super::pipeline::translate;
use super::request::ApiError;

/// A piece of markup.
#[derive(Debug, Clone, PartialEq)]
enum Token<'a> {
    Text(&'a str),
    Tag {
        raw: &'a str,
        name: String,
        kind: TagKind,
        no_translate: bool,
    },
    /// Comments, doctypes, processing instructions: copied.
    Other(&'a str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagKind {
    Open,
    Close,
    SelfClosing,
}

/// Elements whose content is never translated.
const VERBATIM: &[&str] =
    &["script", "style", "code", "pre", "textarea", "noscript", "svg", "math", "template", "kbd", "samp", "var"];
/// Elements that sit inside a sentence.
const INLINE: &[&str] = &[
    "a", "abbr", "b", "bdi", "bdo", "cite", "data", "del", "dfn", "em", "font", "i", "ins", "label", "mark", "q", "s",
    "small", "span", "strong", "sub", "sup", "time", "u", "tt", "big", "strike",
];
/// Elements with no content.
const VOID: &[&str] =
    &["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"];

fn tokenize(html: &str) -> Vec<Token<'_>> {
    let bytes = html.as_bytes();
    let mut out = Vec::new();
    let mut text_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'<' {
            i += 1;
            continue;
        }
        let Some(end) = tag_end(html, i) else {
            i += 1;
            continue;
        };
        if text_start < i {
            out.push(Token::Text(&html[text_start..i]));
        }
        let raw = &html[i..end];
        out.push(classify(raw));
        i = end;
        text_start = end;
        // raw-text elements: everything up to the matching close tag is one verbatim piece
        if let Some(Token::Tag { name, kind: TagKind::Open, .. }) = out.last() {
            if name == "script" || name == "style" || name == "textarea" {
                let close = format!("</{name}");
                let lower = html[i..].to_ascii_lowercase();
                let stop = lower.find(&close).map_or(html.len(), |p| i + p);
                if i < stop {
                    out.push(Token::Other(&html[i..stop]));
                }
                i = stop;
                text_start = stop;
            }
        }
    }
    if text_start < html.len() {
        out.push(Token::Text(&html[text_start..]));
    }
    out
}

/// Where the tag starting at `<` (index `start`) ends, just after its `>`; `None` when this
/// `<` starts no tag.
fn tag_end(html: &str, start: usize) -> Option<usize> {
    let rest = &html[start..];
    if rest.starts_with("<!--") {
        return Some(rest.find("-->").map_or(html.len(), |p| start + p + 3));
    }
    let next = rest[1..].chars().next()?;
    if !(next.is_ascii_alphabetic() || next == '/' || next == '!' || next == '?') {
        return None;
    }
    let mut quote: Option<char> = None;
    for (p, c) in rest.char_indices().skip(1) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => return Some(start + p + 1),
            (None, '<') => return None,
            _ => {}
        }
    }
    None
}

fn classify(raw: &str) -> Token<'_> {
    if raw.starts_with("<!") || raw.starts_with("<?") {
        return Token::Other(raw);
    }
    let close = raw.starts_with("</");
    let body = raw.trim_start_matches("</").trim_start_matches('<');
    let name: String = body
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == ':')
        .collect::<String>()
        .to_ascii_lowercase();
    let kind = if close {
        TagKind::Close
    } else if raw.ends_with("/>") || VOID.contains(&name.as_str()) {
        TagKind::SelfClosing
    } else {
        TagKind::Open
    };
    let lower = raw.to_ascii_lowercase();
    let no_translate =
        lower.contains("translate=\"no\"") || lower.contains("translate='no'") || lower.contains("notranslate");
    Token::Tag { raw, name, kind, no_translate }
}

/// A run of text and inline tags translated together: the plain text and, for each tag,
/// where it sits in it.
#[derive(Debug, Default)]
struct Block {
    text: String,
    /// (character offset in `text`, raw tag, kind, name)
    tags: Vec<(usize, String, TagKind, String)>,
    /// Characters written as entities in the source, with the entity.
    entities: HashMap<char, String>,
}

/// The output being built: verbatim pieces and blocks to translate.
enum Piece {
    Verbatim(String),
    Block(Block),
}

/// Splits a document into verbatim markup and translatable blocks.
fn pieces(html: &str) -> Vec<Piece> {
    let mut out: Vec<Piece> = Vec::new();
    let mut block = Block::default();
    // inside a verbatim element: its name and depth
    let mut verbatim: Option<(String, usize)> = None;
    let flush = |block: &mut Block, out: &mut Vec<Piece>| {
        if !block.text.is_empty() || !block.tags.is_empty() {
            out.push(Piece::Block(std::mem::take(block)));
        }
    };
    for token in tokenize(html) {
        if let Some((name, depth)) = &mut verbatim {
            let raw = match &token {
                Token::Text(t) | Token::Other(t) => *t,
                Token::Tag { raw, .. } => *raw,
            };
            if let Token::Tag { name: n, kind, .. } = &token {
                if n == name {
                    match kind {
                        TagKind::Open => *depth += 1,
                        TagKind::Close => *depth -= 1,
                        TagKind::SelfClosing => {}
                    }
                }
            }
            out.push(Piece::Verbatim(raw.to_string()));
            if *depth == 0 {
                verbatim = None;
            }
            continue;
        }
        match token {
            Token::Text(t) => {
                let decoded = decode_entities(t, &mut block.entities);
                block.text.push_str(&decoded);
            }
            Token::Tag { raw, name, kind, no_translate } => {
                let opens_verbatim = kind == TagKind::Open && (VERBATIM.contains(&name.as_str()) || no_translate);
                if INLINE.contains(&name.as_str()) && !opens_verbatim {
                    block.tags.push((block.text.chars().count(), raw.to_string(), kind, name));
                } else {
                    flush(&mut block, &mut out);
                    out.push(Piece::Verbatim(raw.to_string()));
                    if opens_verbatim {
                        verbatim = Some((name, 1));
                    }
                }
            }
            Token::Other(t) => {
                flush(&mut block, &mut out);
                out.push(Piece::Verbatim(t.to_string()));
            }
        }
    }
    flush(&mut block, &mut out);
    out
}

/// Decodes character references, remembering which characters were written as which entity.
fn decode_entities(text: &str, seen: &mut HashMap<char, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(p) = rest.find('&') {
        out.push_str(&rest[..p]);
        rest = &rest[p..];
        let end = rest[1..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '#')).map(|e| e + 1);
        let decoded = match end {
            Some(e) if rest[e..].starts_with(';') => {
                let entity = &rest[..=e];
                let d = html_escape::decode_html_entities(entity);
                let mut chars = d.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) if d != entity => Some((c, entity)),
                    _ => None,
                }
            }
            _ => None,
        };
        match decoded {
            Some((c, entity)) => {
                if !matches!(c, '&' | '<' | '>') {
                    seen.insert(c, entity.to_string());
                }
                out.push(c);
                rest = &rest[entity.len()..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Text for HTML: `&`, `<`, `>` escaped, and characters the source wrote as entities written
/// as those entities again.
fn encode(text: &str, entities: &HashMap<char, String>) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => match entities.get(&c) {
                Some(e) => out.push_str(e),
                None => out.push(c),
            },
        }
    }
    out
}

/// One sentence of a block: its character range in the block's text.
struct Unit {
    block: usize,
    chars: std::ops::Range<usize>,
}

/// The sentences of the blocks, each with where it lies in its block's text.
fn units(blocks: &[&Block], source: &str) -> Vec<Unit> {
    let mut units: Vec<Unit> = Vec::new();
    for (b, block) in blocks.iter().enumerate() {
        for r in sentences::split(&block.text, Some(source), Newlines::Join) {
            let start = block.text[..r.start].chars().count();
            let len = block.text[r].chars().count();
            units.push(Unit { block: b, chars: start..start + len });
        }
    }
    units
}

fn blocks(docs: &[Vec<Piece>]) -> Vec<&Block> {
    docs.iter().flatten().filter_map(|p| if let Piece::Block(b) = p { Some(b) } else { None }).collect()
}

fn sentence(blocks: &[&Block], unit: &Unit) -> String {
    blocks[unit.block].text.chars().skip(unit.chars.start).take(unit.chars.len()).collect()
}

/// The sentences an HTML text gives to translate, in order (entities decoded, inline tags
/// taken out, verbatim elements left out).
pub fn sentences_to_translate(html: &str, source: &str) -> Vec<String> {
    let docs = vec![pieces(html)];
    let blocks = blocks(&docs);
    units(&blocks, source).iter().map(|u| sentence(&blocks, u)).collect()
}

/// Translates each HTML text through `route`.
pub async fn translate_all(route: &[Hop<'_>], texts: &[String], base: &DecodeOptions) -> Result<Vec<String>, ApiError> {
    let docs: Vec<Vec<Piece>> = texts.iter().map(|t| pieces(t)).collect();
    let blocks = blocks(&docs);
    let units = units(&blocks, route[0].source);
    let mut lines: Vec<String> = units.iter().map(|u| sentence(&blocks, u)).collect();
    let mut last: Vec<Translation> = Vec::new();
    for (i, hop) in route.iter().enumerate() {
        let aligned = i + 1 == route.len() && route.len() == 1;
        let opts = DecodeOptions { alignment: if aligned { Alignment::LastLayer } else { Alignment::Off }, ..*base };
        let translations = translate(*hop, std::mem::take(&mut lines), opts).await?;
        if i + 1 == route.len() {
            last = translations;
        } else {
            lines = translations.iter().map(|t| t.text().to_string()).collect();
        }
    }
    // per block, its units' translations in order
    let mut per_block: Vec<Vec<(&Unit, &Translation)>> = vec![Vec::new(); blocks.len()];
    for (u, t) in units.iter().zip(&last) {
        per_block[u.block].push((u, t));
    }
    let mut rendered = per_block.iter().zip(&blocks).map(|(units, block)| render(block, units));
    Ok(docs
        .iter()
        .map(|doc| {
            doc.iter()
                .map(|p| match p {
                    Piece::Verbatim(v) => v.clone(),
                    Piece::Block(_) => rendered.next().unwrap_or_default(),
                })
                .collect()
        })
        .collect())
}

/// A block's HTML: text between sentences as it was, each sentence's translation with the
/// block's inline tags put where their words went.
fn render(block: &Block, units: &[(&Unit, &Translation)]) -> String {
    let chars: Vec<char> = block.text.chars().collect();
    let mut out = String::new();
    let mut at = 0;
    let mut tags = block.tags.iter().peekable();
    for (unit, translation) in units {
        // text and tags before the sentence, as they were
        while let Some((pos, raw, kind, _)) = tags.peek() {
            // an element opening where the sentence starts belongs to the sentence
            if *pos > unit.chars.start || (*pos == unit.chars.start && *kind == TagKind::Open) {
                break;
            }
            let upto = (*pos).max(at);
            out.push_str(&encode(&chars[at..upto].iter().collect::<String>(), &block.entities));
            at = upto;
            out.push_str(raw);
            tags.next();
        }
        out.push_str(&encode(&chars[at..unit.chars.start].iter().collect::<String>(), &block.entities));
        // tags strictly inside the sentence, or at its end
        let mut inside = Vec::new();
        while let Some((pos, ..)) = tags.peek() {
            let closes_at_end = *pos == unit.chars.end && matches!(tags.peek(), Some((_, _, TagKind::Close, _)));
            if *pos < unit.chars.end || closes_at_end {
                let (pos, raw, kind, name) = tags.next().expect("peeked");
                inside.push((pos - unit.chars.start, raw.as_str(), *kind, name.as_str()));
            } else {
                break;
            }
        }
        let source: String = chars[unit.chars.clone()].iter().collect();
        out.push_str(&place_tags(&source, &inside, translation, &block.entities));
        at = unit.chars.end;
    }
    for (pos, raw, _, _) in tags {
        let upto = (*pos).max(at).min(chars.len());
        out.push_str(&encode(&chars[at..upto].iter().collect::<String>(), &block.entities));
        at = upto;
        out.push_str(raw);
    }
    out.push_str(&encode(&chars[at..].iter().collect::<String>(), &block.entities));
    out
}

/// The translation of `source` with its inline `tags` (offsets in characters of `source`)
/// around the target words aligned to the source words they enclosed.
fn place_tags(
    source: &str,
    tags: &[(usize, &str, TagKind, &str)],
    translation: &Translation,
    entities: &HashMap<char, String>,
) -> String {
    let target: Vec<&str> = translation.text().split_whitespace().collect();
    let encode_words = |words: &[&str]| words.iter().map(|w| encode(w, entities)).collect::<Vec<_>>();
    if tags.is_empty() {
        return encode_words(&target).join(" ");
    }
    // the source word at each character offset (the word starting at or after it)
    let source_chars: Vec<char> = source.chars().collect();
    let word_at = |offset: usize| -> usize {
        let before: String = source_chars[..offset.min(source_chars.len())].iter().collect();
        let words = before.split_whitespace().count();
        // an offset inside a word belongs to that word
        if offset > 0
            && offset < source_chars.len()
            && !source_chars[offset - 1].is_whitespace()
            && !source_chars[offset].is_whitespace()
        {
            words.saturating_sub(1)
        } else {
            words
        }
    };
    let words_started = |offset: usize| -> usize {
        source_chars[..offset.min(source_chars.len())].iter().collect::<String>().split_whitespace().count()
    };
    let source_words = source.split_whitespace().count().max(1);
    let links = translation.best().alignment.clone().unwrap_or_default();
    let n = target.len();
    // target words aligned to source words [a, b); proportional when nothing is aligned
    let target_span = |a: usize, b: usize| -> (usize, usize) {
        let hits: Vec<usize> =
            links.iter().filter(|(s, _)| *s >= a && *s < b).map(|&(_, t)| t).filter(|&t| t < n).collect();
        match (hits.iter().min(), hits.iter().max()) {
            (Some(&lo), Some(&hi)) => (lo, hi + 1),
            _ => {
                let lo = a * n / source_words;
                (lo.min(n), (b * n).div_ceil(source_words).clamp(lo.min(n), n))
            }
        }
    };
    // pair opens with closes (a stack per name); unpaired tags stay where their word went
    let mut before: Vec<Vec<String>> = vec![Vec::new(); n + 1];
    let mut after: Vec<Vec<String>> = vec![Vec::new(); n + 2];
    let mut open: Vec<(usize, usize)> = Vec::new(); // (tag index, source word)
    let mut spans: Vec<(usize, usize)> = Vec::new(); // (open tag, close tag)
    let mut lone: Vec<usize> = Vec::new();
    for (i, (pos, _, kind, name)) in tags.iter().enumerate() {
        match kind {
            TagKind::Open => open.push((i, word_at(*pos))),
            TagKind::Close => match open.iter().rposition(|(j, _)| tags[*j].3 == *name) {
                Some(k) => {
                    let (j, _) = open.remove(k);
                    spans.push((j, i));
                }
                None => lone.push(i),
            },
            TagKind::SelfClosing => lone.push(i),
        }
    }
    lone.extend(open.iter().map(|(j, _)| *j));
    // outer elements first, so nested ones stay inside them
    spans.sort_by_key(|&(j, i)| (tags[j].0, std::cmp::Reverse(tags[i].0)));
    // (source words, target words) of the elements placed so far
    let mut placed: Vec<((usize, usize), (usize, usize))> = Vec::new();
    for (j, i) in spans {
        // from the word the element opens at to the last word that starts before it closes
        let a = word_at(tags[j].0);
        let b = words_started(tags[i].0).max(a + 1);
        let (mut lo, mut hi) = target_span(a, b);
        // keep inside the innermost enclosing element already placed
        if let Some(&(_, (plo, phi))) = placed.iter().rev().find(|((sa, sb), _)| *sa <= a && b <= *sb) {
            lo = lo.clamp(plo, phi);
            hi = hi.clamp(lo, phi.max(lo));
        }
        if hi == lo && lo < n {
            hi = lo + 1;
        }
        before[lo].push(tags[j].1.to_string());
        after[hi.min(n)].insert(0, tags[i].1.to_string());
        placed.push(((a, b), (lo, hi)));
    }
    for i in lone {
        let w = word_at(tags[i].0);
        let (t, _) = target_span(w, w + 1);
        before[t.min(n)].push(tags[i].1.to_string());
    }
    let words = encode_words(&target);
    let mut out = String::new();
    for k in 0..=n {
        if k < n {
            for open in &before[k] {
                out.push_str(open);
            }
            let word = &words[k];
            // an element closing after word k ends before the word's trailing punctuation
            let closing = &after[k + 1];
            let stem = match word.trim_end_matches(|c: char| ".,;:!?…".contains(c)).len() {
                _ if closing.is_empty() => word.len(),
                // all punctuation: the element keeps it
                0 => word.len(),
                stem => stem,
            };
            out.push_str(&word[..stem]);
            for close in closing {
                out.push_str(close);
            }
            out.push_str(&word[stem..]);
            if k + 1 < n {
                out.push(' ');
            }
        } else {
            // no words: the elements stay, empty
            let empty = if n == 0 { &after[0][..] } else { &[] };
            for tag in before[k].iter().chain(empty) {
                out.push_str(tag);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use transduce::Output;

    fn translation(text: &str, links: Vec<(usize, usize)>) -> Translation {
        Translation {
            outputs: vec![Output {
                text: text.into(),
                tokens: vec![],
                score: 0.0,
                token_scores: vec![],
                alignment: Some(links),
            }],
            truncated: false,
        }
    }

    #[test]
    fn tokenizing_keeps_every_byte_and_tolerates_malformed_markup() {
        for html in [
            "<p class=\"a>b\">Hi <b>there</b></p>",
            "a < b and <i>c",
            "<a href='x'>unclosed",
            "text </i> stray <br/> <!-- c --> <script>if (a<b) {}</script>",
            "<div <p>",
            "<",
            "&amp; &copy; & &unknown; &#233;",
        ] {
            let joined: String = tokenize(html)
                .iter()
                .map(|t| match t {
                    Token::Text(s) | Token::Other(s) => *s,
                    Token::Tag { raw, .. } => *raw,
                })
                .collect();
            assert_eq!(joined, html);
        }
        let kinds: Vec<_> = tokenize("<b>x</b><br><img src=a />")
            .iter()
            .filter_map(|t| match t {
                Token::Tag { kind, .. } => Some(*kind),
                _ => None,
            })
            .collect();
        assert_eq!(kinds, [TagKind::Open, TagKind::Close, TagKind::SelfClosing, TagKind::SelfClosing]);
    }

    #[test]
    fn blocks_break_at_block_tags_and_skip_verbatim_elements() {
        let p = pieces("<p>Un <b>chat</b> noir.</p><code>let x = 1;</code><div translate=\"no\">Nom</div>");
        let blocks: Vec<&Block> =
            p.iter().filter_map(|p| if let Piece::Block(b) = p { Some(b) } else { None }).collect();
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].text, "Un chat noir.");
        assert_eq!(blocks[0].tags.iter().map(|t| t.0).collect::<Vec<_>>(), [3, 7]);
    }

    #[test]
    fn entities_are_decoded_for_the_model_and_written_back() {
        let mut seen = HashMap::new();
        assert_eq!(decode_entities("a &amp; b &copy; &bogus; &#233;", &mut seen), "a & b © &bogus; é");
        assert_eq!(encode("x & © é <", &seen), "x &amp; &copy; &#233; &lt;");
    }

    #[test]
    fn inline_tags_follow_the_alignment() {
        // "Un chat noir" -> "A black cat": chat(1) -> cat(2), noir(2) -> black(1)
        let t = translation("A black cat", vec![(0, 0), (1, 2), (2, 1)]);
        let source = "Un chat noir";
        let tags = [(3, "<b>", TagKind::Open, "b"), (7, "</b>", TagKind::Close, "b")];
        assert_eq!(place_tags(source, &tags, &t, &HashMap::new()), "A black <b>cat</b>");
        let tags = [(0, "<a href=\"/x\">", TagKind::Open, "a"), (12, "</a>", TagKind::Close, "a")];
        assert_eq!(place_tags(source, &tags, &t, &HashMap::new()), "<a href=\"/x\">A black cat</a>");
        // a lone tag stays with its word; nothing is lost
        let tags = [(8, "<br>", TagKind::SelfClosing, "br")];
        assert_eq!(place_tags(source, &tags, &t, &HashMap::new()), "A <br>black cat");
        let tags = [(3, "<i>", TagKind::Open, "i")];
        assert!(place_tags(source, &tags, &t, &HashMap::new()).contains("<i>"));
    }
}
