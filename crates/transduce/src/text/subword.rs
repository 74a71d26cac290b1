//! Subword tokenizers trained and run with Hugging Face `tokenizers`, saved as `tokenizer.json`.
//!
//! Text is NFKC-normalised and split SentencePiece-style (spaces become `▁` on the following
//! piece), so decoding restores the spacing. The special tokens take ids 0-3 in the order of
//! [`SPECIAL_TOKENS`], matching `SpecialIds::default()`.

use std::path::Path;

use tokenizers::decoders::metaspace::Metaspace as MetaspaceDecoder;
use tokenizers::models::bpe::{BpeTrainer, BPE};
use tokenizers::models::unigram::{Unigram, UnigramTrainer};
use tokenizers::models::TrainerWrapper;
use tokenizers::normalizers::unicode::NFKC;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::{AddedToken, Tokenizer};

use super::fairseq::FairseqVocab;
use super::languages::LanguageTokens;
use super::marian::MarianVocab;
use super::t5::T5Vocab;
use crate::error::{Error, Result};

/// `<pad>`, `<s>`, `</s>`, `<unk>`: ids 0, 1, 2, 3.
pub const SPECIAL_TOKENS: [&str; 4] = ["<pad>", "<s>", "</s>", "<unk>"];

/// Which subword model to learn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubwordModel {
    /// SentencePiece's unigram language model.
    Unigram,
    /// Byte-pair encoding merges.
    Bpe,
}

crate::choices!(SubwordModel, "subword model", { Unigram => "unigram", Bpe => "bpe" });

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SubwordTraining {
    pub model: SubwordModel,
    /// Including the special tokens.
    pub vocab_size: usize,
}

/// A subword tokenizer: trained here with Hugging Face `tokenizers`, a pretrained model's
/// `tokenizer.json` (NLLB-200), or imported from a Marian model (SentencePiece + `vocab.json`)
/// or an M2M-100 one (SentencePiece BPE + `vocab.json` + language tokens).
pub struct SubwordTokenizer {
    backend: Backend,
    /// The language tokens of a multilingual model.
    languages: Option<LanguageTokens>,
}

enum Backend {
    HuggingFace(Box<Tokenizer>),
    Marian(Box<MarianVocab>),
    Fairseq(Box<FairseqVocab>),
    T5(Box<T5Vocab>),
}

impl std::fmt::Debug for SubwordTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubwordTokenizer").field("vocab_size", &self.vocab_size()).finish()
    }
}

fn tk_err(what: &str) -> impl Fn(tokenizers::Error) -> Error + '_ {
    move |e| Error::Input(format!("{what}: {e}"))
}

impl SubwordTokenizer {
    /// Learns a vocabulary from `sentences`.
    pub fn train<I>(sentences: I, training: SubwordTraining) -> Result<Self>
    where
        I: Iterator<Item = String> + Send,
    {
        let specials: Vec<AddedToken> = SPECIAL_TOKENS.iter().map(|t| AddedToken::from(*t, true)).collect();
        let (mut inner, mut trainer) = match training.model {
            SubwordModel::Unigram => {
                let trainer = UnigramTrainer::builder()
                    .vocab_size(training.vocab_size as u32)
                    .special_tokens(specials)
                    .unk_token(Some(SPECIAL_TOKENS[3].to_string()))
                    .show_progress(false)
                    .build()
                    .map_err(|e| Error::Input(format!("unigram trainer: {e}")))?;
                (Tokenizer::new(Unigram::default()), TrainerWrapper::UnigramTrainer(trainer))
            }
            SubwordModel::Bpe => {
                let model = BPE::builder().unk_token(SPECIAL_TOKENS[3].to_string()).build().map_err(tk_err("BPE"))?;
                let trainer = BpeTrainer::builder()
                    .vocab_size(training.vocab_size)
                    .special_tokens(specials)
                    .show_progress(false)
                    .build();
                (Tokenizer::new(model), TrainerWrapper::BpeTrainer(trainer))
            }
        };
        inner.with_normalizer(Some(NFKC));
        inner.with_pre_tokenizer(Some(Metaspace::new('▁', PrependScheme::Always, true)));
        inner.with_decoder(Some(MetaspaceDecoder::new('▁', PrependScheme::Always, true)));
        inner.train(&mut trainer, sentences).map_err(tk_err("training the subword vocabulary"))?;
        let tokenizer = SubwordTokenizer { backend: Backend::HuggingFace(Box::new(inner)), languages: None };
        tokenizer.check_specials("trained tokenizer")?;
        Ok(tokenizer)
    }

    /// Reads a `tokenizer.json` written by transduce (its specials at ids 0-3).
    pub fn load(path: &Path) -> Result<Self> {
        let tokenizer = Self::load_pretrained(path)?;
        tokenizer.check_specials(&path.display().to_string())?;
        Ok(tokenizer)
    }

    /// Reads a pretrained model's `tokenizer.json` as it is (its own special ids).
    pub fn load_pretrained(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Err(Error::io(path, std::io::Error::new(std::io::ErrorKind::NotFound, "no such file")));
        }
        let inner = Tokenizer::from_file(path)
            .map_err(|e| Error::Input(format!("{}: not a readable tokenizer.json: {e}", path.display())))?;
        Ok(SubwordTokenizer { backend: Backend::HuggingFace(Box::new(inner)), languages: None })
    }

    /// A Marian tokenizer side (SentencePiece model + `vocab.json`).
    pub fn marian(vocab: MarianVocab) -> Self {
        SubwordTokenizer { backend: Backend::Marian(Box::new(vocab)), languages: None }
    }

    /// An M2M-100 tokenizer (its language tokens included).
    pub fn fairseq(vocab: FairseqVocab) -> Self {
        let languages = Some(vocab.languages().clone());
        SubwordTokenizer { backend: Backend::Fairseq(Box::new(vocab)), languages }
    }

    /// A T5 tokenizer from `spiece.model` (MADLAD-400's `<2xx>` codes included).
    pub fn t5(vocab: T5Vocab) -> Self {
        let languages = vocab.languages();
        SubwordTokenizer { backend: Backend::T5(Box::new(vocab)), languages }
    }

    /// The tokenizer with these language tokens.
    pub fn with_languages(mut self, languages: LanguageTokens) -> Self {
        self.languages = Some(languages);
        self
    }

    /// The language tokens of a multilingual model's tokenizer.
    pub fn languages(&self) -> Option<&LanguageTokens> {
        self.languages.as_ref()
    }

    /// The Hugging Face tokenizer, for tokenizers trained by transduce.
    pub fn hugging_face(&self) -> Option<&Tokenizer> {
        match &self.backend {
            Backend::HuggingFace(t) => Some(t),
            Backend::Marian(_) | Backend::Fairseq(_) | Backend::T5(_) => None,
        }
    }

    /// The Marian vocabulary, for imported tokenizers.
    pub fn marian_vocab(&self) -> Option<&MarianVocab> {
        match &self.backend {
            Backend::HuggingFace(_) | Backend::Fairseq(_) | Backend::T5(_) => None,
            Backend::Marian(v) => Some(v),
        }
    }

    /// Writes `tokenizer.json` (tokenizers trained by transduce only).
    pub fn save(&self, path: &Path) -> Result<()> {
        match &self.backend {
            Backend::HuggingFace(t) => t.save(path, false).map_err(tk_err(&path.display().to_string())),
            Backend::Marian(_) | Backend::Fairseq(_) | Backend::T5(_) => Err(Error::Input(format!(
                "{}: an imported SentencePiece tokenizer is kept as its own files, not tokenizer.json",
                path.display()
            ))),
        }
    }

    fn check_specials(&self, what: &str) -> Result<()> {
        let Some(inner) = self.hugging_face() else { return Ok(()) };
        for (id, token) in SPECIAL_TOKENS.iter().enumerate() {
            if inner.token_to_id(token) != Some(id as u32) {
                return Err(Error::Input(format!("{what}: special token {token} must have id {id}")));
            }
        }
        Ok(())
    }

    pub fn vocab_size(&self) -> usize {
        match &self.backend {
            Backend::HuggingFace(t) => t.get_vocab_size(true),
            Backend::Marian(v) => v.len(),
            Backend::Fairseq(v) => v.len(),
            Backend::T5(v) => v.len(),
        }
    }

    /// Token ids of `text`, without special tokens.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        match &self.backend {
            Backend::HuggingFace(t) => Ok(t.encode_fast(text, false).map_err(tk_err("encoding"))?.get_ids().to_vec()),
            Backend::Marian(v) => v.encode(text),
            Backend::Fairseq(v) => v.encode(text),
            Backend::T5(v) => v.encode(text),
        }
    }

    /// The subword strings of `text` (for display).
    pub fn pieces(&self, text: &str) -> Result<Vec<String>> {
        // `encode_fast` leaves the token strings empty: look them up
        Ok(self.id_pieces(&self.encode(text)?))
    }

    /// The subword string of each id (`<unk>`'s for ids outside the vocabulary).
    pub fn id_pieces(&self, ids: &[u32]) -> Vec<String> {
        match &self.backend {
            Backend::HuggingFace(t) => {
                ids.iter().map(|&i| t.id_to_token(i).unwrap_or_else(|| "<unk>".into())).collect()
            }
            Backend::Marian(v) => v.id_pieces(ids),
            Backend::Fairseq(v) => v.id_pieces(ids),
            Backend::T5(v) => v.id_pieces(ids),
        }
    }

    /// Text of `ids`, special tokens skipped.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        match &self.backend {
            Backend::HuggingFace(t) => t.decode(ids, true).map_err(tk_err("decoding")),
            Backend::Marian(v) => Ok(v.decode(ids)),
            Backend::Fairseq(v) => Ok(v.decode(ids)),
            Backend::T5(v) => Ok(v.decode(ids)),
        }
    }
}
