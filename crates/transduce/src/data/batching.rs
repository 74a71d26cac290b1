//! Batches by token budget: sentences of similar length go together, a bounded window of
//! examples is sorted at a time (so a corpus larger than memory streams), and the batch order
//! is shuffled with a seed that changes each epoch.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// A tokenized training example and its position in the corpus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    pub index: usize,
    pub source: Vec<u32>,
    pub target: Vec<u32>,
}

impl Example {
    /// Padded cost of one row: the longer side plus the end-of-sentence (and start) token.
    pub(crate) fn cost(&self) -> usize {
        self.source.len().max(self.target.len()) + 1
    }
}

/// How batches are formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BatchPlan {
    /// Most padded tokens per batch: rows × longest row. A single longer example forms a
    /// batch of its own.
    pub max_tokens: usize,
    /// Examples sorted together at a time.
    pub window: usize,
    pub seed: u64,
}

impl BatchPlan {
    /// Splits `examples` (one window) into batches, shuffled for `epoch`.
    pub fn batches(&self, mut examples: Vec<Example>, epoch: usize) -> Vec<Vec<Example>> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(self.seed ^ (epoch as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        // shuffle first so equal lengths come in a new order each epoch, then sort stably
        examples.shuffle(&mut rng);
        examples.sort_by_key(|e| (e.source.len(), e.target.len()));
        let mut batches: Vec<Vec<Example>> = Vec::new();
        let mut current: Vec<Example> = Vec::new();
        let mut longest = 0;
        for e in examples {
            let cost = e.cost();
            let new_longest = longest.max(cost);
            if !current.is_empty() && new_longest * (current.len() + 1) > self.max_tokens {
                batches.push(std::mem::take(&mut current));
                longest = cost;
            } else {
                longest = new_longest;
            }
            current.push(e);
        }
        if !current.is_empty() {
            batches.push(current);
        }
        batches.shuffle(&mut rng);
        batches
    }

    /// Batches for a whole epoch over a stream of examples, one window at a time.
    pub fn epoch<I: Iterator<Item = Example>>(&self, examples: I, epoch: usize) -> EpochBatches<I> {
        EpochBatches { plan: *self, examples, epoch, window_index: 0, pending: Vec::new() }
    }
}

/// Iterator over an epoch's batches; holds at most one window of examples.
pub struct EpochBatches<I> {
    plan: BatchPlan,
    examples: I,
    epoch: usize,
    window_index: usize,
    pending: Vec<Vec<Example>>,
}

impl<I: Iterator<Item = Example>> Iterator for EpochBatches<I> {
    type Item = Vec<Example>;

    fn next(&mut self) -> Option<Vec<Example>> {
        if self.pending.is_empty() {
            let window: Vec<Example> = self.examples.by_ref().take(self.plan.window.max(1)).collect();
            if window.is_empty() {
                return None;
            }
            // each window gets its own stream, so windows differ and epochs differ
            let salt = self.epoch.wrapping_mul(1 << 20).wrapping_add(self.window_index);
            self.window_index += 1;
            self.pending = self.plan.batches(window, salt);
            self.pending.reverse();
        }
        self.pending.pop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn corpus(n: usize) -> Vec<Example> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        (0..n)
            .map(|index| Example {
                index,
                source: vec![7; rng.gen_range(1..40)],
                target: vec![8; rng.gen_range(1..40)],
            })
            .collect()
    }

    #[test]
    fn every_example_once_per_epoch_within_the_budget() {
        let plan = BatchPlan { max_tokens: 200, window: 300, seed: 1 };
        for epoch in 0..3 {
            let mut seen = vec![0; 1000];
            for batch in plan.epoch(corpus(1000).into_iter(), epoch) {
                let longest = batch.iter().map(Example::cost).max().unwrap();
                assert!(batch.len() == 1 || batch.len() * longest <= 200, "{} rows of {longest}", batch.len());
                for e in &batch {
                    seen[e.index] += 1;
                }
            }
            assert!(seen.iter().all(|&c| c == 1), "epoch {epoch}: {seen:?}");
        }
    }

    #[test]
    fn order_is_reproducible_and_changes_between_epochs() {
        let plan = BatchPlan { max_tokens: 300, window: 1000, seed: 9 };
        let order = |epoch| -> Vec<usize> {
            plan.epoch(corpus(500).into_iter(), epoch).flat_map(|b| b.into_iter().map(|e| e.index)).collect()
        };
        assert_eq!(order(0), order(0));
        assert_ne!(order(0), order(1));
    }

    #[test]
    fn holds_at_most_one_window_of_examples() {
        use std::cell::Cell;
        let pulled = Cell::new(0usize);
        let stream = corpus(10_000).into_iter().inspect(|_| pulled.set(pulled.get() + 1));
        let plan = BatchPlan { max_tokens: 400, window: 250, seed: 3 };
        let mut batches = plan.epoch(stream, 0);
        let first = batches.next().unwrap();
        assert!(!first.is_empty());
        assert_eq!(pulled.get(), 250, "the first batch needs exactly one window");
        let mut rows = first.len();
        for batch in batches.by_ref() {
            rows += batch.len();
            assert!(pulled.get() <= rows.div_ceil(250) * 250 + 250);
        }
        assert_eq!(rows, 10_000);
    }

    #[test]
    fn an_example_over_the_budget_gets_a_batch_of_its_own() {
        let plan = BatchPlan { max_tokens: 10, window: 10, seed: 0 };
        let long = Example { index: 0, source: vec![1; 50], target: vec![1; 3] };
        let batches = plan.batches(vec![long.clone()], 0);
        assert_eq!(batches, vec![vec![long]]);
    }
}
