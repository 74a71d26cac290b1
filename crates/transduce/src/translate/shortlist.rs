//! A vocabulary shortlist: the target tokens a sentence may produce, looked up from its source
//! tokens, so that a decoding step scores those rows of the output projection and not the whole
//! vocabulary (256k rows for NLLB-200 and M2M-100, most of a step's work at small batches).
//!
//! The file is CTranslate2's vocabulary map (`vmap.txt`), one rule per line:
//!
//! ```text
//! <source n-gram>\t<target token> <target token> ...
//! ```
//!
//! tokens written as the model's subword pieces, n-gram pieces separated by spaces; a line
//! whose n-gram is empty lists tokens every sentence may produce. A sentence's candidates are
//! those tokens, the targets of every n-gram of its source, its forced target prefix, EOS and
//! `<unk>`. Each sentence is scored over its own candidates only, whatever shares its batch,
//! so an output does not depend on its batch.
//!
//! [`Shortlist::build`] measures one from parallel text: the `frequent` most frequent target
//! tokens, and per source token the `per_token` target tokens most associated with it (Dice
//! coefficient of the sentences they occur in).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};

/// Source n-grams to the target tokens they allow, and the tokens always allowed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shortlist {
    /// Target ids every sentence may produce (sorted, unique).
    always: Vec<u32>,
    /// Source n-gram (ids) -> target ids.
    rules: HashMap<Vec<u32>, Vec<u32>>,
    /// Longest source n-gram of `rules`.
    longest: usize,
}

/// The piece of each id and the id of each piece, of one side's vocabulary.
pub struct PieceIds {
    pieces: Vec<String>,
    ids: HashMap<String, u32>,
}

impl PieceIds {
    /// `pieces[i]` is id `i`'s piece (the first id of a piece wins).
    pub fn new(pieces: Vec<String>) -> Self {
        let mut ids = HashMap::with_capacity(pieces.len());
        for (i, p) in pieces.iter().enumerate() {
            ids.entry(p.clone()).or_insert(i as u32);
        }
        PieceIds { pieces, ids }
    }

    fn id(&self, piece: &str) -> Option<u32> {
        self.ids.get(piece).copied()
    }

    fn piece(&self, id: u32) -> &str {
        self.pieces.get(id as usize).map_or("<unk>", |p| p.as_str())
    }
}

impl Shortlist {
    /// Reads a vocabulary map; every token must be in its side's vocabulary (an error names the
    /// file, line and token).
    pub fn read(path: &Path, source: &PieceIds, target: &PieceIds) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text, &path.display().to_string(), source, target)
    }

    /// [`Shortlist::read`] of `text`, `name` naming it in errors.
    pub fn parse(text: &str, name: &str, source: &PieceIds, target: &PieceIds) -> Result<Self> {
        let mut list = Shortlist::default();
        for (n, line) in text.lines().enumerate() {
            let at = || format!("{name}: line {}", n + 1);
            if line.trim().is_empty() {
                continue;
            }
            let Some((key, values)) = line.split_once('\t') else {
                return Err(Error::Input(format!("{}: no tab between the source n-gram and its targets", at())));
            };
            let lookup = |side: &PieceIds, what: &str, piece: &str| {
                side.id(piece).ok_or_else(|| {
                    Error::Input(format!("{}: {what} token {piece:?} is not in the model's vocabulary", at()))
                })
            };
            let targets: Vec<u32> =
                values.split_whitespace().map(|p| lookup(target, "target", p)).collect::<Result<_>>()?;
            let gram: Vec<u32> = key.split_whitespace().map(|p| lookup(source, "source", p)).collect::<Result<_>>()?;
            if gram.is_empty() {
                list.always.extend(targets);
            } else {
                list.longest = list.longest.max(gram.len());
                list.rules.entry(gram).or_default().extend(targets);
            }
        }
        list.always.sort_unstable();
        list.always.dedup();
        for targets in list.rules.values_mut() {
            targets.sort_unstable();
            targets.dedup();
        }
        Ok(list)
    }

    /// Measures a shortlist from parallel sentences (source ids, target ids): the `frequent`
    /// target tokens in most sentences, and per source token the `per_token` target tokens of
    /// highest Dice coefficient `2 c(s, t) / (c(s) + c(t))` over sentence counts (ties: lower
    /// id first).
    pub fn build<'a>(
        pairs: impl IntoIterator<Item = (&'a [u32], &'a [u32])>,
        frequent: usize,
        per_token: usize,
    ) -> Self {
        let mut source_count: HashMap<u32, u32> = HashMap::new();
        let mut target_count: HashMap<u32, u32> = HashMap::new();
        let mut together: HashMap<(u32, u32), u32> = HashMap::new();
        for (src, tgt) in pairs {
            let (src, tgt) = (distinct(src), distinct(tgt));
            for &s in &src {
                *source_count.entry(s).or_default() += 1;
            }
            for &t in &tgt {
                *target_count.entry(t).or_default() += 1;
                for &s in &src {
                    *together.entry((s, t)).or_default() += 1;
                }
            }
        }
        let mut by_count: Vec<(u32, u32)> = target_count.iter().map(|(&t, &c)| (t, c)).collect();
        by_count.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut always: Vec<u32> = by_count.iter().take(frequent).map(|&(t, _)| t).collect();
        always.sort_unstable();

        let mut scored: HashMap<u32, Vec<(f64, u32)>> = HashMap::new();
        for (&(s, t), &c) in &together {
            let dice = 2.0 * c as f64 / (source_count[&s] + target_count[&t]) as f64;
            scored.entry(s).or_default().push((dice, t));
        }
        let mut rules = HashMap::with_capacity(scored.len());
        for (s, mut candidates) in scored {
            candidates.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let mut targets: Vec<u32> = candidates.into_iter().take(per_token).map(|(_, t)| t).collect();
            targets.sort_unstable();
            rules.insert(vec![s], targets);
        }
        Shortlist { always, rules, longest: 1 }
    }

    /// The file [`Shortlist::read`] reads back: the tokens always allowed, then one line per
    /// source n-gram (in id order).
    pub fn to_text(&self, source: &PieceIds, target: &PieceIds) -> String {
        let pieces = |ids: &[u32], side: &PieceIds| ids.iter().map(|&i| side.piece(i)).collect::<Vec<_>>().join(" ");
        let mut out = format!("\t{}\n", pieces(&self.always, target));
        let mut grams: Vec<&Vec<u32>> = self.rules.keys().collect();
        grams.sort_unstable();
        for gram in grams {
            let _ = writeln!(out, "{}\t{}", pieces(gram, source), pieces(&self.rules[gram], target));
        }
        out
    }

    /// The target ids (sorted, unique) a sentence of `source` ids may produce, with `extra`
    /// (EOS, `<unk>`, its forced prefix) among them.
    pub fn candidates(&self, source: &[u32], extra: &[u32]) -> Arc<[u32]> {
        let mut ids: Vec<u32> = self.always.iter().chain(extra).copied().collect();
        for n in 1..=self.longest.min(source.len()) {
            for gram in source.windows(n) {
                if let Some(targets) = self.rules.get(gram) {
                    ids.extend_from_slice(targets);
                }
            }
        }
        ids.sort_unstable();
        ids.dedup();
        ids.into()
    }

    /// Number of source n-grams with rules.
    pub fn rules(&self) -> usize {
        self.rules.len()
    }
}

/// `ids` without repeats, in first-seen order.
fn distinct(ids: &[u32]) -> Vec<u32> {
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    ids.iter().copied().filter(|&i| seen.insert(i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab(pieces: &[&str]) -> PieceIds {
        PieceIds::new(pieces.iter().map(|p| p.to_string()).collect())
    }

    #[test]
    fn a_ctranslate2_map_reads_and_writes_back() {
        let (src, tgt) =
            (vocab(&["</s>", "▁chat", "▁noir", "▁le"]), vocab(&["</s>", "<unk>", "▁the", "▁cat", "▁black"]));
        let text = "\t▁the\n▁chat\t▁cat\n▁chat ▁noir\t▁black ▁cat\n▁le\t▁the ▁the\n";
        let list = Shortlist::parse(text, "vmap.txt", &src, &tgt).unwrap();
        assert_eq!(list.rules(), 3);
        // EOS and <unk> come from the caller; the bigram only where both words follow each other
        assert_eq!(&*list.candidates(&[3, 1], &[0, 1]), &[0, 1, 2, 3]);
        assert_eq!(&*list.candidates(&[1, 2], &[0, 1]), &[0, 1, 2, 3, 4]);
        assert_eq!(&*list.candidates(&[2], &[]), &[2]);
        let again = Shortlist::parse(&list.to_text(&src, &tgt), "again", &src, &tgt).unwrap();
        assert_eq!(again, list);
    }

    #[test]
    fn a_bad_map_names_its_line_and_token() {
        let (src, tgt) = (vocab(&["▁chat"]), vocab(&["▁cat"]));
        let e = Shortlist::parse("▁chat\t▁cat\n▁chien\t▁cat\n", "m.txt", &src, &tgt).unwrap_err().to_string();
        assert!(e.contains("m.txt: line 2") && e.contains("\"▁chien\""), "{e}");
        let e = Shortlist::parse("▁chat ▁cat\n", "m.txt", &src, &tgt).unwrap_err().to_string();
        assert!(e.contains("m.txt: line 1: no tab"), "{e}");
    }

    #[test]
    fn measured_lists_keep_frequent_tokens_and_each_words_translation() {
        // source 10 = "chat" (target 20 = "cat"), 11 = "chien" (21 = "dog"); 1 is "the" everywhere
        let pairs: Vec<(Vec<u32>, Vec<u32>)> = vec![
            (vec![12, 10], vec![1, 20]),
            (vec![12, 11], vec![1, 21]),
            (vec![12, 10, 10], vec![1, 20, 20]),
            (vec![12, 11], vec![1, 21, 1]),
        ];
        let list = Shortlist::build(pairs.iter().map(|(s, t)| (&s[..], &t[..])), 1, 1);
        assert_eq!(list.always, vec![1]);
        assert_eq!(&*list.candidates(&[10], &[]), &[1, 20]);
        assert_eq!(&*list.candidates(&[11], &[]), &[1, 21]);
        // 12 is in every sentence, as `the` (Dice 1) is
        assert_eq!(&*list.candidates(&[12], &[]), &[1]);
    }
}
