//! Hugging Face `T5Tokenizer` natively, from `spiece.model` alone (mT5 and other T5 directories
//! ship no `tokenizer.json`): SentencePiece (unigram) ids as they are, then `extra_ids` tokens
//! `<extra_id_N>` counted down from the end. The specials, the extra ids and the model's
//! user-defined pieces (MADLAD-400's `<2xx>`) are tokens of their own wherever they appear in
//! text; each stretch between them is segmented alone.

use std::path::Path;

use super::languages::{target_code, LanguageMarking, LanguageTokens};
use super::sentencepiece::{PieceType, SentencePieceModel, SPACE};
use crate::error::{Error, Result};

/// The specials `T5Tokenizer` declares.
pub const SPECIALS: [&str; 3] = ["<pad>", "</s>", "<unk>"];

/// A T5 vocabulary: SentencePiece model, extra ids, added tokens.
#[derive(Debug, Clone)]
pub struct T5Vocab {
    spm: SentencePieceModel,
    extra_ids: usize,
    /// Tokens matched whole in text (specials, extra ids, user-defined pieces) and their ids,
    /// longest first.
    added: Vec<(String, u32)>,
    /// Ids `decode` skips: the specials and the extra ids.
    skipped: Vec<u32>,
}

impl T5Vocab {
    /// `T5Tokenizer(spiece.model, extra_ids=extra_ids)`.
    pub fn load(spm: &Path, extra_ids: usize) -> Result<Self> {
        let model = SentencePieceModel::load(spm)?;
        let size = model.len() + extra_ids;
        let mut added: Vec<(String, u32)> = Vec::new();
        let mut skipped = Vec::new();
        for special in SPECIALS {
            let id = model
                .piece_to_id(special)
                .ok_or_else(|| Error::Input(format!("{}: no {special} piece", spm.display())))?;
            added.push((special.to_string(), id));
            skipped.push(id);
        }
        for n in 0..extra_ids {
            let id = (size - 1 - n) as u32;
            added.push((format!("<extra_id_{n}>"), id));
            skipped.push(id);
        }
        for (id, piece) in model.pieces.iter().enumerate() {
            if piece.kind == PieceType::UserDefined {
                added.push((piece.piece.clone(), id as u32));
            }
        }
        added.sort_by_key(|(token, _)| std::cmp::Reverse(token.len()));
        Ok(T5Vocab { spm: model, extra_ids, added, skipped })
    }

    /// Entries: pieces, then the extra ids.
    pub fn len(&self) -> usize {
        self.spm.len() + self.extra_ids
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// MADLAD-400's target-language tokens: the user-defined pieces `<2xx>`, by code.
    pub fn target_codes(&self) -> Vec<(String, u32)> {
        let mut codes: Vec<(String, u32)> =
            self.added.iter().filter_map(|(token, id)| target_code(token).map(|c| (c.to_string(), *id))).collect();
        codes.sort_by_key(|&(_, id)| id);
        codes
    }

    /// Token ids of `text` without `</s>`, as `T5Tokenizer` computes them.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            // the leftmost added token, the longest at that place
            let next = self
                .added
                .iter()
                .filter_map(|(t, id)| rest.find(t.as_str()).map(|i| (i, t, *id)))
                .min_by_key(|&(i, t, _)| (i, std::cmp::Reverse(t.len())));
            let (chunk, token) = match next {
                Some((i, t, id)) => (&rest[..i], Some((t.len(), id))),
                None => (rest, None),
            };
            if !chunk.is_empty() {
                ids.extend(self.spm.encode(chunk)?.iter().map(|(_, id)| *id));
            }
            rest = &rest[chunk.len()..];
            if let Some((len, id)) = token {
                ids.push(id);
                rest = &rest[len..];
            }
        }
        Ok(ids)
    }

    /// The token string of each id (`<unk>` for ids outside the vocabulary).
    pub fn id_pieces(&self, ids: &[u32]) -> Vec<String> {
        ids.iter()
            .map(|&i| match self.spm.pieces.get(i as usize) {
                Some(p) => p.piece.clone(),
                None if (i as usize) < self.len() => format!("<extra_id_{}>", self.len() - 1 - i as usize),
                None => SPECIALS[2].to_string(),
            })
            .collect()
    }

    /// Text of `ids`, specials and extra ids skipped: pieces joined, `▁` read as a space, the
    /// text's first space dropped (the Metaspace decoder `tokenizer.json` has).
    pub fn decode(&self, ids: &[u32]) -> String {
        let kept: Vec<u32> = ids.iter().copied().filter(|i| !self.skipped.contains(i)).collect();
        let text = self.id_pieces(&kept).concat().replace(SPACE, " ");
        text.strip_prefix(' ').map(str::to_string).unwrap_or(text)
    }

    /// The language tokens of a MADLAD-400 vocabulary (`None` without `<2xx>` pieces).
    pub fn languages(&self) -> Option<LanguageTokens> {
        let codes = self.target_codes();
        if codes.is_empty() {
            return None;
        }
        let tokens: Vec<String> = codes.iter().map(|(c, _)| format!("<2{c}>")).collect();
        Some(
            LanguageTokens::new(codes.iter().zip(&tokens).map(|((c, id), t)| (c.as_str(), t.as_str(), *id)))
                .with_marking(LanguageMarking::TargetPrefix),
        )
    }
}
