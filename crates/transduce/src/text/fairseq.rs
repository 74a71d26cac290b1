//! Hugging Face `M2M100Tokenizer`, natively: SentencePiece (BPE) pieces mapped to model ids
//! through `vocab.json` (a fairseq dictionary, in its own order), then the `__xx__` language
//! tokens and the made-up words that pad the embedding table.

use std::collections::HashMap;
use std::path::Path;

use super::languages::LanguageTokens;
use super::sentencepiece::SentencePieceModel;
use crate::error::{Error, Result};

/// The specials of a fairseq dictionary; text equal to one of them is that token.
pub const SPECIALS: [&str; 4] = ["<s>", "<pad>", "</s>", "<unk>"];

/// An M2M-100 vocabulary: SentencePiece model, `vocab.json`, language tokens.
#[derive(Debug, Clone)]
pub struct FairseqVocab {
    spm: SentencePieceModel,
    ids: HashMap<String, u32>,
    /// Token string of each id (pieces, language tokens, made-up words).
    tokens: Vec<String>,
    unk: u32,
    /// Ids of [`SPECIALS`].
    specials: Vec<u32>,
    languages: LanguageTokens,
}

impl FairseqVocab {
    /// `M2M100Tokenizer(vocab_file, spm_file, language_codes=...)`: language `codes[i]` is token
    /// `__code__` with id `len(vocab.json) + i`, followed by `madeup` words `<madeupwordNNNN>`.
    pub fn m2m100(spm: &Path, vocab: &Path, codes: &[&str], madeup: usize) -> Result<Self> {
        let model = SentencePieceModel::load(spm)?;
        let ids: HashMap<String, u32> = crate::error::read_json(vocab)?;
        let bad = |why: String| Error::Input(format!("{}: {why}", vocab.display()));
        let mut tokens = vec![None; ids.len()];
        for (piece, &id) in &ids {
            let slot = tokens.get_mut(id as usize).ok_or_else(|| {
                bad(format!("id {id} of {piece:?} is outside 0..{}: ids must be contiguous", ids.len()))
            })?;
            if let Some(other) = slot.replace(piece.clone()) {
                return Err(bad(format!("id {id} is given to both {other:?} and {piece:?}")));
            }
        }
        let mut tokens: Vec<String> = tokens.into_iter().map(|t| t.expect("ids are a permutation")).collect();
        let lookup = |t: &str| ids.get(t).copied().ok_or_else(|| bad(format!("no {t} entry")));
        let specials = SPECIALS.iter().map(|t| lookup(t)).collect::<Result<Vec<_>>>()?;
        let base = tokens.len() as u32;
        let language_tokens: Vec<String> = codes.iter().map(|c| format!("__{c}__")).collect();
        let languages = LanguageTokens::new(
            codes.iter().zip(&language_tokens).enumerate().map(|(i, (c, t))| (*c, t.as_str(), base + i as u32)),
        );
        tokens.extend(language_tokens);
        tokens.extend((0..madeup).map(|i| format!("<madeupword{i:04}>")));
        let unk = specials[3];
        Ok(FairseqVocab { spm: model, ids, tokens, unk, specials, languages })
    }

    /// Entries: pieces, language tokens and made-up words.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    pub fn languages(&self) -> &LanguageTokens {
        &self.languages
    }

    /// Token ids of `text` without language token or `</s>`, as `M2M100Tokenizer` computes
    /// them: a special token's text is that token, each stretch between them is segmented
    /// alone, pieces missing from `vocab.json` are `<unk>`.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let next = SPECIALS.iter().filter_map(|t| rest.find(t).map(|i| (i, *t))).min();
            let (chunk, special) = match next {
                Some((i, t)) => (&rest[..i], Some(t)),
                None => (rest, None),
            };
            if !chunk.is_empty() {
                ids.extend(
                    self.spm.encode(chunk)?.iter().map(|(piece, _)| self.ids.get(piece).copied().unwrap_or(self.unk)),
                );
            }
            rest = &rest[chunk.len()..];
            if let Some(t) = special {
                ids.push(self.ids[t]);
                rest = &rest[t.len()..];
            }
        }
        Ok(ids)
    }

    /// The token string of each id (`<unk>` for ids outside the vocabulary).
    pub fn id_pieces(&self, ids: &[u32]) -> Vec<String> {
        ids.iter().map(|&i| self.tokens.get(i as usize).cloned().unwrap_or_else(|| SPECIALS[3].into())).collect()
    }

    /// Text of `ids`, special tokens, language tokens and made-up words skipped.
    pub fn decode(&self, ids: &[u32]) -> String {
        let kept: Vec<u32> =
            ids.iter().copied().filter(|&i| (i as usize) < self.ids.len() && !self.specials.contains(&i)).collect();
        let text = self.spm.decode_pieces(&self.id_pieces(&kept));
        text.replace(super::sentencepiece::SPACE, " ").trim().to_string()
    }
}
