//! Hugging Face `MarianTokenizer`, natively: SentencePiece pieces mapped to model ids
//! through `vocab.json`, a leading `>>lang<<` code kept as one token, and decoding that
//! skips the special tokens and joins the pieces back into text.

use std::collections::HashMap;
use std::path::Path;

use super::sentencepiece::SentencePieceModel;
use crate::error::{Error, Result};

/// The special tokens `MarianTokenizer` defines (skipped when decoding).
pub const EOS: &str = "</s>";
pub const UNK: &str = "<unk>";
pub const PAD: &str = "<pad>";

/// One side of a Marian tokenizer: SentencePiece models and the model's vocabulary.
#[derive(Debug, Clone)]
pub struct MarianVocab {
    spm: SentencePieceModel,
    /// The model that joins pieces back into text: `MarianTokenizer` decodes with the
    /// source model when the vocabulary is shared.
    decode_spm: SentencePieceModel,
    ids: HashMap<String, u32>,
    /// Piece of each id.
    pieces: Vec<String>,
    unk: u32,
    /// Ids of `</s>`, `<unk>` and `<pad>`.
    specials: Vec<u32>,
}

impl MarianVocab {
    /// Reads `spm` (the SentencePiece model that segments text), `decode_spm` (the one that
    /// joins pieces) and `vocab` (`vocab.json`: piece -> id).
    pub fn load(spm: &Path, decode_spm: &Path, vocab: &Path) -> Result<Self> {
        let model = SentencePieceModel::load(spm)?;
        let decode_model = if decode_spm == spm { model.clone() } else { SentencePieceModel::load(decode_spm)? };
        let ids: HashMap<String, u32> = crate::error::read_json(vocab)?;
        Self::new(model, decode_model, ids).map_err(|why| Error::Input(format!("{}: {why}", vocab.display())))
    }

    /// Checks that ids are `0..n` without gaps or repeats and that the special tokens exist.
    pub fn new(
        spm: SentencePieceModel,
        decode_spm: SentencePieceModel,
        ids: HashMap<String, u32>,
    ) -> std::result::Result<Self, String> {
        let mut pieces = vec![None; ids.len()];
        for (piece, &id) in &ids {
            let slot = pieces
                .get_mut(id as usize)
                .ok_or_else(|| format!("id {id} of {piece:?} is outside 0..{}: ids must be contiguous", ids.len()))?;
            if let Some(other) = slot.replace(piece.clone()) {
                return Err(format!("id {id} is given to both {other:?} and {piece:?}"));
            }
        }
        let pieces: Vec<String> = pieces.into_iter().map(|p| p.expect("ids are a permutation")).collect();
        let lookup = |t: &str| ids.get(t).copied().ok_or_else(|| format!("the vocabulary has no {t} token"));
        let unk = lookup(UNK)?;
        let specials = vec![lookup(EOS)?, unk, lookup(PAD)?];
        Ok(MarianVocab { spm, decode_spm, ids, pieces, unk, specials })
    }

    pub fn len(&self) -> usize {
        self.pieces.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    pub fn spm(&self) -> &SentencePieceModel {
        &self.spm
    }

    /// Id of a token string (`<unk>`'s for unknown strings).
    pub fn token_id(&self, token: &str) -> u32 {
        self.ids.get(token).copied().unwrap_or(self.unk)
    }

    /// Id of a token string, if the vocabulary has it.
    pub fn get(&self, token: &str) -> Option<u32> {
        self.ids.get(token).copied()
    }

    /// Token ids of `text` without `</s>`, as `MarianTokenizer` computes them: special-token
    /// strings in the text are those tokens, each stretch between them is segmented alone.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let next = [EOS, UNK, PAD].iter().filter_map(|t| rest.find(t).map(|i| (i, *t))).min();
            let (chunk, special) = match next {
                Some((i, t)) => (&rest[..i], Some(t)),
                None => (rest, None),
            };
            if !chunk.is_empty() {
                let (code, words) = split_language_code(chunk);
                ids.extend(code.map(|c| self.token_id(c)));
                ids.extend(self.spm.encode(words)?.iter().map(|(piece, _)| self.token_id(piece)));
            }
            rest = &rest[chunk.len()..];
            if let Some(t) = special {
                ids.push(self.token_id(t));
                rest = &rest[t.len()..];
            }
        }
        Ok(ids)
    }

    /// The token string of each id (`<unk>` for ids outside the vocabulary).
    pub fn id_pieces(&self, ids: &[u32]) -> Vec<String> {
        ids.iter().map(|&i| self.pieces.get(i as usize).cloned().unwrap_or_else(|| UNK.into())).collect()
    }

    /// Text of `ids` with special tokens skipped
    /// (`MarianTokenizer.decode(ids, skip_special_tokens=True)`).
    pub fn decode(&self, ids: &[u32]) -> String {
        let kept: Vec<u32> = ids.iter().copied().filter(|i| !self.specials.contains(i)).collect();
        let text = self.decode_spm.decode_pieces(&self.id_pieces(&kept));
        text.replace(super::sentencepiece::SPACE, " ").trim().to_string()
    }
}

/// A leading `>>xx<<` target-language code and the text after it, as
/// `MarianTokenizer.remove_language_code` splits them (up to the first `<<`).
fn split_language_code(text: &str) -> (Option<&str>, &str) {
    match text.find("<<").filter(|_| text.starts_with(">>")) {
        Some(i) => (Some(&text[..i + 2]), &text[i + 2..]),
        None => (None, text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_codes_are_split_off_like_marian_tokenizer() {
        assert_eq!(split_language_code(">>fra<< Bonjour <<"), (Some(">>fra<<"), " Bonjour <<"));
        assert_eq!(split_language_code("Bonjour >>fra<<"), (None, "Bonjour >>fra<<"));
        assert_eq!(split_language_code(">><< x"), (Some(">><<"), " x"));
    }
}
