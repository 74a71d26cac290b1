//! Random-sequence tasks (copy, reverse) for tests, benchmarks and the smoke-test training.

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// What the target is, given a random source sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyntheticTask {
    Copy,
    Reverse,
}

crate::choices!(SyntheticTask, "synthetic task", { Copy => "copy", Reverse => "reverse" });

/// Generates (source, target) pairs of ids in `first_id .. vocab`, lengths in `min_len ..= max_len`.
pub struct SyntheticData {
    pub task: SyntheticTask,
    pub vocab: usize,
    pub first_id: u32,
    pub min_len: usize,
    pub max_len: usize,
    rng: Xoshiro256PlusPlus,
}

impl SyntheticData {
    pub fn new(task: SyntheticTask, vocab: usize, first_id: u32, lengths: (usize, usize), seed: u64) -> Self {
        SyntheticData {
            task,
            vocab,
            first_id,
            min_len: lengths.0,
            max_len: lengths.1,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
        }
    }

    pub fn pair(&mut self) -> (Vec<u32>, Vec<u32>) {
        let len = self.rng.gen_range(self.min_len..=self.max_len);
        let src: Vec<u32> = (0..len).map(|_| self.rng.gen_range(self.first_id..self.vocab as u32)).collect();
        let tgt = match self.task {
            SyntheticTask::Copy => src.clone(),
            SyntheticTask::Reverse => src.iter().rev().copied().collect(),
        };
        (src, tgt)
    }

    pub fn pairs(&mut self, n: usize) -> Vec<(Vec<u32>, Vec<u32>)> {
        (0..n).map(|_| self.pair()).collect()
    }
}
