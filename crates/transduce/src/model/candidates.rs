//! Decoding over a vocabulary shortlist: each source sentence may produce only its own target
//! candidates, and a step scores the rows of the output projection for the union of the
//! batch's candidates, not the whole vocabulary.

use std::sync::Arc;

use candle_core::{Result, Tensor};

use super::context::Ctx;
use super::layers::Linear;
use super::seq2seq::Seq2Seq;

/// Per source sentence of a decoder state, the target ids it may produce, and the output
/// projection onto their union (built at the first step after the sentences change).
#[derive(Debug, Clone)]
pub struct Candidates {
    /// Per source sentence, in the state's order: sorted, unique target ids.
    per_source: Vec<Arc<[u32]>>,
    /// The union of `per_source` (sorted) and the output projection onto it.
    projection: Option<(Arc<[u32]>, Arc<Linear>)>,
}

impl Candidates {
    /// `per_source[s]`: the sorted, unique target ids source `s` may produce.
    pub fn new(per_source: Vec<Arc<[u32]>>) -> Self {
        Candidates { per_source, projection: None }
    }

    /// Number of source sentences.
    pub fn sources(&self) -> usize {
        self.per_source.len()
    }

    /// Keeps the listed sources (ascending positions).
    pub(crate) fn retain(&mut self, sources: &[u32]) {
        self.per_source = sources.iter().map(|&s| self.per_source[s as usize].clone()).collect();
        self.projection = None;
    }

    /// Adds `joining`'s sources after these.
    pub(crate) fn append(&mut self, joining: Candidates) {
        self.per_source.extend(joining.per_source);
        self.projection = None;
    }

    /// Next-token logits [rows, vocab], row-major, of `hidden` [rows, d] whose rows belong to
    /// the sources as `rows_of` counts them: a row's own candidates hold the values the full
    /// output projection gives them, every other token -inf (so a sentence's log-softmax runs
    /// over its own candidates, whatever shares the batch). Written into `out`'s memory.
    pub(crate) fn logits(
        &mut self,
        model: &Seq2Seq,
        hidden: &Tensor,
        rows_of: &[usize],
        ctx: &Ctx,
        out: Vec<f32>,
    ) -> Result<Vec<f32>> {
        if rows_of.len() != self.per_source.len() {
            candle_core::bail!("shortlist: {} sources in the state, candidates for {}", rows_of.len(), self.sources());
        }
        let (union, projection) = match &self.projection {
            Some(p) => p.clone(),
            None => {
                let union = union(&self.per_source);
                let projection = Arc::new(model.output_rows(&union)?);
                self.projection = Some((union.clone(), projection.clone()));
                (union, projection)
            }
        };
        let scored = model.logits_rows_with(hidden, &projection, ctx)?;
        let (u, vocab) = (union.len(), model.config.vocab.target());
        let rows: usize = rows_of.iter().sum();
        if scored.len() != rows * u {
            candle_core::bail!("shortlist: {} logits for {rows} rows of {u} candidates", scored.len());
        }
        let mut out = out;
        out.clear();
        out.resize(rows * vocab, f32::NEG_INFINITY);
        let mut row = 0;
        for (own, &n) in self.per_source.iter().zip(rows_of) {
            let columns = positions_in(&union, own);
            for _ in 0..n {
                let (from, to) = (&scored[row * u..(row + 1) * u], &mut out[row * vocab..(row + 1) * vocab]);
                for (&c, &id) in columns.iter().zip(own.iter()) {
                    to[id as usize] = from[c];
                }
                row += 1;
            }
        }
        Ok(out)
    }
}

/// The sorted union of sorted id lists.
fn union(lists: &[Arc<[u32]>]) -> Arc<[u32]> {
    let mut all: Vec<u32> = lists.iter().flat_map(|l| l.iter().copied()).collect();
    all.sort_unstable();
    all.dedup();
    all.into()
}

/// Where each id of `part` (sorted, a subset of `whole`) is in `whole` (sorted).
fn positions_in(whole: &[u32], part: &[u32]) -> Vec<usize> {
    let mut at = 0;
    part.iter()
        .map(|&id| {
            while whole[at] < id {
                at += 1;
            }
            at
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_is_found_in_its_union() {
        let lists: Vec<Arc<[u32]>> = vec![vec![1, 5, 9].into(), vec![0, 5, 7].into()];
        let all = union(&lists);
        assert_eq!(&*all, &[0, 1, 5, 7, 9]);
        assert_eq!(positions_in(&all, &lists[0]), vec![1, 2, 4]);
        assert_eq!(positions_in(&all, &lists[1]), vec![0, 2, 3]);
    }
}
