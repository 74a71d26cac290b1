//! Subword tokenizers trained and run with Hugging Face `tokenizers`, saved as `tokenizer.json`.
//!
//! Text is NFKC-normalised and split SentencePiece-style (spaces become `▁` on the following
//! piece), so decoding restores the spacing. The special tokens take ids 0-3 in the order of
//! [`SPECIAL_TOKENS`], matching `SpecialIds::default()`.

use std::path::Path;

use tokenizers::decoders::metaspace::Metaspace as MetaspaceDecoder;
use tokenizers::models::bpe::{BpeTrainer, BPE};
use tokenizers::models::unigram::{Unigram, UnigramTrainer};
use tokenizers::models::{ModelWrapper, TrainerWrapper};
use tokenizers::normalizers::unicode::NFKC;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::{AddedToken, Tokenizer, Trainer};

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

/// The subword trainers, made reproducible: the same sentences give the same vocabulary in every
/// run.
///
/// `tokenizers`' unigram trainer is not: it collects words in a hash map seeded at random per
/// process and sums the EM statistics over chunks in parallel, so the order of the sentences and
/// of the floating-point sums (and with them the pruned pieces) change from run to run. Here the
/// words are counted in a sorted map and the trainer runs on one thread, so its chunks are summed
/// in one fixed order. The BPE trainer is deterministic already (integer counts, ties broken by
/// pair ids that follow the sorted alphabet) and runs as it is.
enum SubwordTrainer {
    Unigram {
        trainer: UnigramTrainer,
        /// (word, count), sorted by word.
        words: Vec<(String, u32)>,
    },
    Other(TrainerWrapper),
}

impl Trainer for SubwordTrainer {
    type Model = ModelWrapper;

    fn should_show_progress(&self) -> bool {
        false
    }

    fn train(&self, model: &mut ModelWrapper) -> tokenizers::Result<Vec<AddedToken>> {
        match (self, model) {
            (SubwordTrainer::Unigram { trainer, words }, ModelWrapper::Unigram(unigram)) => {
                let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
                let specials = one_thread.install(|| trainer.do_train(words.clone(), unigram))?;
                *unigram = canonical_pieces(unigram)?;
                Ok(specials)
            }
            (SubwordTrainer::Other(trainer), model) => trainer.train(model),
            (SubwordTrainer::Unigram { .. }, _) => Err("the unigram trainer needs a unigram model".into()),
        }
    }

    fn feed<I, S, F>(&mut self, iterator: I, process: F) -> tokenizers::Result<()>
    where
        I: Iterator<Item = S> + Send,
        S: AsRef<str> + Send,
        F: Fn(&str) -> tokenizers::Result<Vec<String>> + Sync,
    {
        match self {
            SubwordTrainer::Unigram { words, .. } => {
                let mut counts = std::collections::BTreeMap::<String, u32>::new();
                for sentence in iterator {
                    for word in process(sentence.as_ref())? {
                        *counts.entry(word).or_default() += 1;
                    }
                }
                *words = counts.into_iter().collect();
                Ok(())
            }
            SubwordTrainer::Other(trainer) => trainer.feed(iterator, process),
        }
    }
}

/// `tokenizers`' last unigram step in a fixed order. It adds every character of the corpus that
/// the pruning dropped, in the order of a randomly seeded hash set, with scores that climb from the
/// lowest score in steps of 0.0001; and it sorts by score keeping that order among equal scores.
/// Which character gets which score of that ladder, and the order of ties, so change from run to
/// run while the pieces and the scores do not. Here the single characters whose scores lie on the
/// ladder get its scores in the order of the characters, and ties are ordered by piece.
fn canonical_pieces(unigram: &Unigram) -> tokenizers::Result<Unigram> {
    const LADDER_STEP: f64 = 0.0001;
    let all: Vec<(String, f64)> = unigram.iter().cloned().collect();
    let (specials, pieces) = all.split_at(SPECIAL_TOKENS.len().min(all.len()));
    let (specials, mut pieces) = (specials.to_vec(), pieces.to_vec());
    let lowest = pieces.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let mut ladder = Vec::with_capacity(pieces.len());
    let mut penalty = 0.0;
    for _ in 0..pieces.len() {
        ladder.push(lowest + penalty);
        penalty += LADDER_STEP;
    }
    let on_ladder = |(piece, score): &(String, f64)| piece.chars().count() == 1 && ladder.contains(score);
    let mut chars: Vec<String> = pieces.iter().filter(|p| on_ladder(p)).map(|p| p.0.clone()).collect();
    let mut scores: Vec<f64> = pieces.iter().filter(|p| on_ladder(p)).map(|p| p.1).collect();
    chars.sort();
    scores.sort_by(f64::total_cmp);
    let reassigned: std::collections::HashMap<String, f64> = chars.into_iter().zip(scores).collect();
    for (piece, score) in &mut pieces {
        if let Some(s) = reassigned.get(piece) {
            *score = *s;
        }
    }
    pieces.sort_by(|(a, sa), (b, sb)| sb.total_cmp(sa).then_with(|| a.cmp(b)));
    let unk = SPECIAL_TOKENS.iter().position(|t| *t == "<unk>");
    Unigram::from(specials.into_iter().chain(pieces).collect(), unk, unigram.byte_fallback())
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
                let trainer = SubwordTrainer::Unigram { trainer, words: Vec::new() };
                (Tokenizer::new(Unigram::default()), trainer)
            }
            SubwordModel::Bpe => {
                let model = BPE::builder().unk_token(SPECIAL_TOKENS[3].to_string()).build().map_err(tk_err("BPE"))?;
                let trainer = BpeTrainer::builder()
                    .vocab_size(training.vocab_size)
                    .special_tokens(specials)
                    .show_progress(false)
                    .build();
                (Tokenizer::new(model), SubwordTrainer::Other(TrainerWrapper::BpeTrainer(trainer)))
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
        let what = format!("{}: not a readable tokenizer.json", path.display());
        let inner = crate::error::without_panics(&what, || {
            // as `Tokenizer::from_file`, the error naming the field at fault
            crate::error::read_json::<Tokenizer>(path)
        })?;
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
            // a malformed tokenizer.json can make `tokenizers` panic here (a corrupt precompiled
            // normaliser): an error instead
            Backend::HuggingFace(t) => crate::error::without_panics("tokenizer.json: encoding", || {
                Ok(t.encode_fast(text, false).map_err(tk_err("encoding"))?.get_ids().to_vec())
            }),
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
            Backend::HuggingFace(t) => crate::error::without_panics("tokenizer.json: decoding", || {
                t.decode(ids, true).map_err(tk_err("decoding"))
            }),
            Backend::Marian(v) => Ok(v.decode(ids)),
            Backend::Fairseq(v) => Ok(v.decode(ids)),
            Backend::T5(v) => Ok(v.decode(ids)),
        }
    }
}
