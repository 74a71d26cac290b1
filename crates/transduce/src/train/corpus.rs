//! The training corpus as the loop sees it: tokenizers trained on it where the model
//! directory has none, its examples tokenized and filtered one epoch at a time, and the
//! validation pairs.

use std::cell::Cell;
use std::path::Path;
use std::sync::Arc;

use candle_core::Device;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

use super::config::{TrainConfig, VocabSharing};
use crate::data::batching::Example;
use crate::data::corpus::{CorpusSource, FilterCounts, PairFilter, PairReader};
use crate::data::Batch;
use crate::error::{Error, Result};
use crate::model::config::SpecialIds;
use crate::model_dir::{ModelDir, JOINT_TOKENIZER, SOURCE_TOKENIZER, TARGET_TOKENIZER};
use crate::text::languages::Tags;
use crate::text::{SubwordSampler, SubwordTokenizer, SubwordTraining, Tokenizers};

/// Which texts of the corpus a tokenizer learns from.
#[derive(Clone, Copy)]
enum Side {
    Both,
    Source,
    Target,
}

/// Longest text the subword vocabulary learns from, in bytes: SentencePiece's
/// `max_sentence_length`. Longer lines (a 1 MB line of a broken corpus) would cost the unigram
/// trainer minutes; the length filter drops their pairs from training anyway, and counts them.
const MAX_SENTENCE_BYTES: usize = 4192;

/// Trains a tokenizer on one or both sides of the corpus, streamed pair by pair; the first read
/// error stops it and is returned.
fn train_tokenizer(cfg: &TrainConfig, side: Side, path: &Path) -> Result<SubwordTokenizer> {
    if path.exists() {
        return SubwordTokenizer::load(path);
    }
    let error: std::sync::Mutex<Option<Error>> = std::sync::Mutex::new(None);
    let texts = PairReader::open(&cfg.train)?
        .map_while(|pair| match pair {
            Ok(p) => Some(match side {
                Side::Both => vec![p.source, p.target],
                Side::Source => vec![p.source],
                Side::Target => vec![p.target],
            }),
            Err(e) => {
                *error.lock().expect("error slot") = Some(e);
                None
            }
        })
        .flatten()
        .filter(|text| text.len() <= MAX_SENTENCE_BYTES);
    let tok = SubwordTokenizer::train(texts, SubwordTraining { model: cfg.subword, vocab_size: cfg.vocab_size })?;
    if let Some(e) = error.into_inner().expect("error slot") {
        return Err(e);
    }
    crate::model_dir::replace_atomically(path, |tmp| tok.save(tmp))?;
    Ok(tok)
}

/// The model directory's tokenizers, trained on the corpus where absent.
pub fn tokenizers(cfg: &TrainConfig, dir: &ModelDir) -> Result<Tokenizers> {
    Ok(match cfg.vocab_sharing {
        VocabSharing::Joint => {
            let t = Arc::new(train_tokenizer(cfg, Side::Both, &dir.file(JOINT_TOKENIZER))?);
            Tokenizers { source: t.clone(), target: t }
        }
        VocabSharing::PerSide => Tokenizers {
            source: Arc::new(train_tokenizer(cfg, Side::Source, &dir.file(SOURCE_TOKENIZER))?),
            target: Arc::new(train_tokenizer(cfg, Side::Target, &dir.file(TARGET_TOKENIZER))?),
        },
    })
}

/// The segmentation samplers of a run with `subword_sampling` (one per side), and the seed
/// their draws follow.
pub struct SubwordSamplers {
    source: SubwordSampler,
    target: SubwordSampler,
    seed: u64,
}

impl SubwordSamplers {
    /// `None` where `cfg` samples no segmentations (`subword_sampling` 0); an error where a
    /// tokenizer cannot sample them (not a unigram one trained by transduce).
    pub fn new(cfg: &TrainConfig, tok: &Tokenizers) -> Result<Option<Self>> {
        if cfg.subword_sampling == 0.0 {
            return Ok(None);
        }
        Ok(Some(SubwordSamplers {
            source: SubwordSampler::new(&tok.source, cfg.subword_sampling)?,
            target: SubwordSampler::new(&tok.target, cfg.subword_sampling)?,
            seed: cfg.seed,
        }))
    }

    /// The pair from corpus line `line` segmented afresh for `epoch`: the draws depend on the
    /// seed, the epoch and the line only, so a resumed run sees the batches it would have seen.
    fn resample(&self, epoch: usize, line: usize, source: &[u32], target: &[u32]) -> (Vec<u32>, Vec<u32>) {
        let key = [epoch as u64, line as u64]
            .iter()
            .fold(self.seed, |k, x| k.rotate_left(17) ^ x.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(key);
        (self.source.resample(source, &mut rng), self.target.resample(target, &mut rng))
    }
}

/// How the examples of an epoch are segmented into subwords.
#[derive(Clone, Copy)]
pub enum Segmentation<'a> {
    /// Each tokenizer's own segmentation (the most likely one).
    Best,
    /// Segmentations drawn afresh for each epoch and pair (subword regularisation).
    Sampled { samplers: &'a SubwordSamplers, epoch: usize },
}

impl<'a> Segmentation<'a> {
    /// Epoch `epoch`'s: drawn by `samplers` where the run has them, the best otherwise.
    pub fn of_epoch(samplers: Option<&'a SubwordSamplers>, epoch: usize) -> Self {
        samplers.map_or(Segmentation::Best, |samplers| Segmentation::Sampled { samplers, epoch })
    }
}

/// Streams the training examples of one epoch, tokenized and filtered.
pub struct ExampleStream<'a> {
    pairs: PairReader,
    tok: &'a Tokenizers,
    segmentation: Segmentation<'a>,
    /// Language tokens leading each side (a multilingual model's).
    tags: &'a Tags,
    filter: PairFilter,
    counts: &'a Cell<FilterCounts>,
    error: Option<Error>,
}

impl Iterator for ExampleStream<'_> {
    type Item = Example;

    fn next(&mut self) -> Option<Example> {
        loop {
            let pair = match self.pairs.next()? {
                Ok(p) => p,
                Err(e) => {
                    self.error = Some(e);
                    return None;
                }
            };
            let encoded =
                self.tok.source.encode(&pair.source).and_then(|s| Ok((s, self.tok.target.encode(&pair.target)?)));
            let (source, target) = match encoded {
                Ok(st) => st,
                Err(e) => {
                    self.error = Some(e);
                    return None;
                }
            };
            let (source, target) = match self.segmentation {
                Segmentation::Best => (source, target),
                Segmentation::Sampled { samplers, epoch } => samplers.resample(epoch, pair.line, &source, &target),
            };
            let tagged = |tags: &[u32], ids: Vec<u32>| tags.iter().copied().chain(ids).collect::<Vec<u32>>();
            let (source, target) = (tagged(&self.tags.source, source), tagged(&self.tags.target, target));
            let mut counts = self.counts.get();
            let kept = self.filter.count(source.len(), target.len(), &mut counts);
            self.counts.set(counts);
            if kept {
                return Some(Example { index: pair.line - 1, source, target });
            }
        }
    }
}

impl<'a> ExampleStream<'a> {
    /// The examples of `corpus` from its first line, segmented as `segmentation` says, `tags`
    /// leading each side, counting filtered pairs into `counts`.
    pub fn open(
        corpus: &CorpusSource,
        tok: &'a Tokenizers,
        segmentation: Segmentation<'a>,
        tags: &'a Tags,
        filter: PairFilter,
        counts: &'a Cell<FilterCounts>,
    ) -> Result<Self> {
        Ok(ExampleStream { pairs: PairReader::open(corpus)?, tok, segmentation, tags, filter, counts, error: None })
    }

    /// The read or tokenization error that ended the stream early, if one did.
    pub fn take_error(&mut self) -> Option<Error> {
        self.error.take()
    }
}

/// The tensors of an update's batches (one per batch; several with gradient accumulation),
/// each batch cut into `shards` runs of consecutive examples of about equal cost (fewer where
/// it has fewer examples), in batch order: for a step with that many workers
/// ([`super::TrainStep::with_workers`]).
pub fn batch_tensors(group: &[Vec<Example>], special: SpecialIds, shards: usize) -> Result<Vec<Batch>> {
    let mut tensors = Vec::with_capacity(group.len() * shards.max(1));
    for batch in group {
        for range in shard_ranges(batch, shards) {
            let examples = &batch[range];
            let pairs: Vec<(&[u32], &[u32])> = examples.iter().map(|e| (&e.source[..], &e.target[..])).collect();
            tensors.push(Batch::new(&pairs, examples.iter().map(|e| e.index).collect(), special, &Device::Cpu)?);
        }
    }
    Ok(tensors)
}

/// `batch` cut into at most `n` runs of consecutive examples, each at least one: an example
/// opens run `k + 1` when its middle lies past `k / n` of the padded cost ([`Example::cost`]).
fn shard_ranges(batch: &[Example], n: usize) -> Vec<std::ops::Range<usize>> {
    let n = n.clamp(1, batch.len().max(1));
    let total: usize = batch.iter().map(Example::cost).sum();
    let mut ranges = Vec::with_capacity(n);
    let (mut start, mut before) = (0, 0);
    for (i, e) in batch.iter().enumerate() {
        let k = ranges.len() + 1;
        let past = (2 * before + e.cost()) * n > 2 * total * k;
        if k < n && start < i && past && batch.len() - i >= n - k {
            ranges.push(start..i);
            start = i;
        }
        before += e.cost();
    }
    ranges.push(start..batch.len());
    ranges
}

/// The validation pairs, as (sources, targets).
pub fn validation_pairs(corpus: &CorpusSource) -> Result<(Vec<String>, Vec<String>)> {
    let pairs = PairReader::open(corpus)?.collect::<Result<Vec<_>>>()?;
    Ok(pairs.into_iter().map(|p| (p.source, p.target)).unzip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn examples(target_lens: &[usize]) -> Vec<Example> {
        let example = |(index, &n): (usize, &usize)| Example { index, source: vec![5; 1], target: vec![6; n] };
        target_lens.iter().enumerate().map(example).collect()
    }

    #[test]
    fn shards_are_consecutive_non_empty_and_of_about_equal_cost() {
        for (lens, n, want) in [
            (vec![4, 4, 4, 4], 2, vec![(0, 2), (2, 4)]),
            (vec![1, 1, 1, 9], 2, vec![(0, 3), (3, 4)]),
            (vec![9, 1, 1, 1], 2, vec![(0, 1), (1, 4)]),
            (vec![3, 3, 3], 3, vec![(0, 1), (1, 2), (2, 3)]),
            (vec![3, 3], 4, vec![(0, 1), (1, 2)]),
            (vec![7], 2, vec![(0, 1)]),
            (vec![2, 2, 2, 2, 2], 1, vec![(0, 5)]),
            (vec![30, 30, 1, 1], 3, vec![(0, 1), (1, 2), (2, 4)]),
        ] {
            let got: Vec<(usize, usize)> = shard_ranges(&examples(&lens), n).iter().map(|r| (r.start, r.end)).collect();
            assert_eq!(got, want, "{lens:?} in {n}");
        }
    }

    #[test]
    fn sharded_batches_hold_every_example_once_in_order() {
        let special = SpecialIds::default();
        let group = vec![examples(&[3, 4, 5, 6, 7]), examples(&[2, 2])];
        let whole = batch_tensors(&group, special, 1).unwrap();
        let sharded = batch_tensors(&group, special, 2).unwrap();
        assert_eq!(whole.len(), 2);
        assert_eq!(sharded.len(), 4);
        let indices: Vec<usize> = sharded.iter().flat_map(|b| b.index.clone()).collect();
        assert_eq!(indices, vec![0, 1, 2, 3, 4, 0, 1]);
        let tokens = |b: &[Batch]| b.iter().map(|b| b.ntokens).sum::<usize>();
        assert_eq!(tokens(&whole), tokens(&sharded));
    }
}
