//! Subword regularisation (Kudo, 2018): a text segmented into pieces drawn from a unigram
//! model's distribution over all of its segmentations, sharpened by α — a segmentation `x` is
//! drawn with probability ∝ P(x)^α. This is SentencePiece's sampling (`enable_sampling`,
//! `nbest_size = -1`, `alpha`), fairseq's `--sentencepiece-alpha` and Marian's
//! `--sentencepiece-alphas`: training sees each sentence under another segmentation every epoch.
//!
//! Forward filtering, backward sampling on the lattice of pieces: `forward[p]` is the log of the
//! summed weights of every segmentation of the first `p` characters; walking back from the end,
//! each step picks one of the pieces ending there with probability
//! `exp(forward[start] + α·score − forward[end])`, which draws whole segmentations exactly.

use std::collections::HashMap;

use rand::Rng;
use tokenizers::models::unigram::Unigram;
use tokenizers::models::ModelWrapper;

use super::subword::{SubwordTokenizer, SPECIAL_TOKENS};
use crate::error::{Error, Result};

/// Draws segmentations from one unigram tokenizer's pieces.
#[derive(Debug, Clone)]
pub struct SubwordSampler {
    /// The exponent α (> 0): small α flattens the distribution towards every segmentation
    /// alike, large α concentrates it on the most likely one.
    alpha: f64,
    /// Piece → (id, log-probability), the special tokens left out.
    pieces: HashMap<String, (u32, f64)>,
    /// The piece of each id; `None` for the special tokens.
    by_id: Vec<Option<String>>,
    /// The longest piece, in characters.
    longest: usize,
}

/// One edge of the lattice: a piece from character `start` to the edge's end.
#[derive(Debug, Clone, Copy)]
struct Edge {
    start: usize,
    id: u32,
    /// α × the piece's log-probability.
    weight: f64,
}

impl SubwordSampler {
    /// The sampler of a tokenizer trained by transduce with the unigram model; any other
    /// tokenizer is an error naming the `subword_sampling` option.
    pub fn new(tok: &SubwordTokenizer, alpha: f64) -> Result<Self> {
        match tok.hugging_face().map(|t| t.get_model()) {
            Some(ModelWrapper::Unigram(unigram)) => Self::from_unigram(unigram, alpha),
            _ => Err(Error::option(
                "subword_sampling",
                "draws segmentations from a unigram tokenizer trained by transduce (--subword unigram, \
                 the default); this model's tokenizer is not one",
            )),
        }
    }

    /// The sampler of a unigram model whose first [`SPECIAL_TOKENS`] entries are the special
    /// tokens.
    pub fn from_unigram(unigram: &Unigram, alpha: f64) -> Result<Self> {
        if !(alpha.is_finite() && alpha > 0.0) {
            return Err(Error::option("subword_sampling", format!("{alpha} is not a positive number")));
        }
        let mut pieces = HashMap::new();
        let mut by_id = Vec::new();
        let mut longest = 0;
        for (id, (piece, score)) in unigram.iter().enumerate() {
            if id < SPECIAL_TOKENS.len() || piece.is_empty() {
                by_id.push(None);
                continue;
            }
            longest = longest.max(piece.chars().count());
            pieces.insert(piece.clone(), (id as u32, *score));
            by_id.push(Some(piece.clone()));
        }
        Ok(SubwordSampler { alpha, pieces, by_id, longest })
    }

    /// `ids` (the tokenizer's segmentation of a text) segmented afresh: each run of pieces
    /// between special tokens (or tokens outside the model, such as language tokens) becomes a
    /// segmentation of the same characters drawn from the model. The text the ids decode to
    /// does not change.
    pub fn resample(&self, ids: &[u32], rng: &mut impl Rng) -> Vec<u32> {
        let mut out = Vec::with_capacity(ids.len() + ids.len() / 2);
        let mut run = String::new();
        let mut run_ids = Vec::new();
        for &id in ids {
            match self.by_id.get(id as usize).and_then(Option::as_deref) {
                Some(piece) => {
                    run.push_str(piece);
                    run_ids.push(id);
                }
                None => {
                    self.draw_into(&run, &run_ids, rng, &mut out);
                    run.clear();
                    run_ids.clear();
                    out.push(id);
                }
            }
        }
        self.draw_into(&run, &run_ids, rng, &mut out);
        out
    }

    /// Appends a segmentation of `text` drawn from the model; `ids`, one segmentation of it,
    /// where the lattice has no path (it always has one when `ids` are the model's pieces).
    fn draw_into(&self, text: &str, ids: &[u32], rng: &mut impl Rng, out: &mut Vec<u32>) {
        if text.is_empty() {
            return;
        }
        // byte offset of each character boundary
        let bounds: Vec<usize> = text.char_indices().map(|(i, _)| i).chain([text.len()]).collect();
        let n = bounds.len() - 1;
        // the edges ending at character `end` are edges[first[end]..first[end + 1]]
        let mut edges: Vec<Edge> = Vec::new();
        let mut first = vec![0; n + 2];
        let mut forward = vec![f64::NEG_INFINITY; n + 1];
        forward[0] = 0.0;
        for end in 1..=n {
            first[end] = edges.len();
            for start in end.saturating_sub(self.longest)..end {
                if !forward[start].is_finite() {
                    continue;
                }
                if let Some(&(id, score)) = self.pieces.get(&text[bounds[start]..bounds[end]]) {
                    edges.push(Edge { start, id, weight: self.alpha * score });
                }
            }
            let reached = log_sum_exp(edges[first[end]..].iter().map(|e| forward[e.start] + e.weight));
            forward[end] = reached;
        }
        first[n + 1] = edges.len();
        if !forward[n].is_finite() {
            out.extend_from_slice(ids);
            return;
        }
        let mut drawn = Vec::new();
        let mut end = n;
        while end > 0 {
            let u: f64 = rng.gen();
            let mut cumulative = 0.0;
            let mut chosen = None;
            for e in &edges[first[end]..first[end + 1]] {
                let p = (forward[e.start] + e.weight - forward[end]).exp();
                if p > 0.0 {
                    chosen = Some(e);
                    cumulative += p;
                    if u < cumulative {
                        break;
                    }
                }
            }
            // forward[end] is finite, so some edge ending here has a positive probability
            let e = chosen.expect("an edge with positive probability ends at every reachable character");
            drawn.push(e.id);
            end = e.start;
        }
        out.extend(drawn.into_iter().rev());
    }
}

/// `log Σ exp(x)`, `-inf` for no terms.
fn log_sum_exp(xs: impl Iterator<Item = f64> + Clone) -> f64 {
    let max = xs.clone().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    max + xs.map(|x| (x - max).exp()).sum::<f64>().ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// Specials, then a, b, c and three longer pieces: "abc" has four segmentations.
    fn toy() -> Unigram {
        let mut vocab: Vec<(String, f64)> = SPECIAL_TOKENS.iter().map(|t| (t.to_string(), 0.0)).collect();
        for (piece, score) in [("a", -1.0), ("b", -2.0), ("c", -1.5), ("ab", -2.5), ("bc", -2.2), ("abc", -4.0)] {
            vocab.push((piece.to_string(), score));
        }
        Unigram::from(vocab, Some(3), false).unwrap()
    }

    fn id(unigram: &Unigram, piece: &str) -> u32 {
        unigram.iter().position(|(p, _)| p == piece).unwrap() as u32
    }

    #[test]
    fn draws_each_segmentation_with_its_probability_to_the_power_alpha() {
        let unigram = toy();
        let alpha = 0.5;
        let sampler = SubwordSampler::from_unigram(&unigram, alpha).unwrap();
        let ids = |pieces: &[&str]| pieces.iter().map(|p| id(&unigram, p)).collect::<Vec<u32>>();
        let segmentations = [ids(&["a", "b", "c"]), ids(&["ab", "c"]), ids(&["a", "bc"]), ids(&["abc"])];
        let scores = [-4.5, -4.0, -3.2, -4.0];
        let z: f64 = scores.iter().map(|s| (alpha * s).exp()).sum();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let draws = 40_000;
        let mut counts = [0usize; 4];
        for _ in 0..draws {
            let drawn = sampler.resample(&segmentations[0], &mut rng);
            let which = segmentations.iter().position(|s| *s == drawn).expect("a segmentation of abc");
            counts[which] += 1;
        }
        for (count, score) in counts.iter().zip(scores) {
            let expected = (alpha * score).exp() / z;
            let observed = *count as f64 / draws as f64;
            // four standard deviations of a frequency over 40,000 draws is at most 0.01
            assert!((observed - expected).abs() < 0.01, "{counts:?}: {observed} against {expected}");
        }
    }

    #[test]
    fn a_large_alpha_gives_the_most_likely_segmentation_and_specials_stay_in_place() {
        let unigram = toy();
        let sampler = SubwordSampler::from_unigram(&unigram, 50.0).unwrap();
        let (a, b, c, bc) = (id(&unigram, "a"), id(&unigram, "b"), id(&unigram, "c"), id(&unigram, "bc"));
        let unk = 3;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        // "abc", <unk>, "cab": the best of each run, the special token where it was
        let drawn = sampler.resample(&[a, b, c, unk, c, a, b], &mut rng);
        assert_eq!(drawn, vec![a, bc, unk, c, id(&unigram, "ab")]);
        // ids outside the model (a language token) are kept as they are too
        assert_eq!(sampler.resample(&[9_999, a, b, c], &mut rng), vec![9_999, a, bc]);
        assert_eq!(sampler.resample(&[], &mut rng), Vec::<u32>::new());
    }

    #[test]
    fn the_same_seed_draws_the_same_segmentations() {
        let unigram = toy();
        let sampler = SubwordSampler::from_unigram(&unigram, 0.2).unwrap();
        let text: Vec<u32> = ["a", "b", "c", "a", "b", "c", "c", "a"].iter().map(|p| id(&unigram, p)).collect();
        let draw = |seed| {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
            (0..20).map(|_| sampler.resample(&text, &mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
    }

    #[test]
    fn alpha_must_be_positive() {
        for alpha in [0.0, -0.1, f64::NAN, f64::INFINITY] {
            let err = SubwordSampler::from_unigram(&toy(), alpha).unwrap_err().to_string();
            assert!(err.contains("subword_sampling"), "{err}");
        }
    }
}
