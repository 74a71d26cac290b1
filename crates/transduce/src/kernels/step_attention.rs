//! Attention of one decoding step on the CPU: every row has a single query, and its keys and
//! values are read where they lie (the per-step self-attention cache through each row's beam
//! history, the source memory shared by a sentence's beams) instead of being gathered,
//! concatenated or split into heads first.

use rayon::prelude::*;

use std::sync::Arc;

use super::cpu::fast_exp;

/// Where the keys and values a row attends to are.
pub trait KeyValueSource: Sync {
    /// The keys and values of one row.
    type Row<'a>: RowKeyValues
    where
        Self: 'a;
    /// The most positions a row attends to (each row may attend to fewer: [`RowKeyValues::positions`]).
    fn positions(&self) -> usize;
    /// What `row` attends to (looked up once per row, not per position and head).
    fn row(&self, row: usize) -> Self::Row<'_>;
}

/// The keys and values one row attends to.
pub trait RowKeyValues {
    /// Positions this row attends to: `0 .. positions`.
    fn positions(&self) -> usize;
    /// Key and value at position `t` for head `h`: `head_dim` floats each.
    fn key_value(&self, head: usize, t: usize) -> (&[f32], &[f32]);
    /// Additive bias of position `t` for `head` (source padding, T5's position bias).
    fn bias(&self, _head: usize, _t: usize) -> f32 {
        0.0
    }
}

/// `softmax(q k^T * scale + bias) v` for queries `q` [rows, heads * head_dim] (heads side by
/// side, as the projection writes them) -> [rows, heads * head_dim]; with `probs`, also the
/// attention [rows, heads, positions].
pub fn attend(
    q: &[f32],
    heads: usize,
    head_dim: usize,
    scale: f32,
    source: &impl KeyValueSource,
    probs: Option<&mut Vec<f32>>,
) -> Vec<f32> {
    let d = heads * head_dim;
    let rows = q.len() / d.max(1);
    let len = source.positions();
    let mut out = vec![0f32; rows * d];
    let mut p = vec![0f32; rows * heads * len];
    let work = |(row, (out, p)): (usize, (&mut [f32], &mut [f32]))| {
        let kv = source.row(row);
        // a row that joined the batch later has a shorter history; the rest of `p` stays 0
        let own = kv.positions();
        for h in 0..heads {
            let q = &q[row * d + h * head_dim..][..head_dim];
            let p = &mut p[h * len..][..own];
            let out = &mut out[h * head_dim..(h + 1) * head_dim];
            match head_dim {
                64 => head::<64>(q, &kv, h, scale, p, out),
                32 => head::<32>(q, &kv, h, scale, p, out),
                _ => head_any(q, &kv, h, scale, p, out),
            }
        }
    };
    if rows * len * d >= 1 << 16 {
        // a row is a few microseconds of work: hand rows out in blocks, not one by one
        let block = rows.div_ceil(4 * rayon::current_num_threads().max(1)).max(1);
        out.par_chunks_mut(d.max(1))
            .zip(p.par_chunks_mut((heads * len).max(1)))
            .enumerate()
            .with_min_len(block)
            .for_each(work);
    } else {
        out.chunks_mut(d.max(1)).zip(p.chunks_mut((heads * len).max(1))).enumerate().for_each(work);
    }
    if let Some(probs) = probs {
        *probs = p;
    }
    out
}

/// One head of one row: scores into `p` (then the attention), `p · v` into `out` (zeros).
fn head_any(q: &[f32], kv: &impl RowKeyValues, h: usize, scale: f32, p: &mut [f32], out: &mut [f32]) {
    let inv = scores(q, kv, h, scale, p);
    for (t, s) in p.iter_mut().enumerate() {
        *s *= inv;
        let (_, v) = kv.key_value(h, t);
        out.iter_mut().zip(v).for_each(|(o, &v)| *o += *s * v);
    }
}

/// [`head_any`] for a head size known at compile time: the output stays in registers over
/// all positions (the same operations in the same order, so the same bits).
fn head<const HD: usize>(q: &[f32], kv: &impl RowKeyValues, h: usize, scale: f32, p: &mut [f32], out: &mut [f32]) {
    let inv = scores(q, kv, h, scale, p);
    let mut acc = [0f32; HD];
    for (t, s) in p.iter_mut().enumerate() {
        *s *= inv;
        let (_, v) = kv.key_value(h, t);
        let v: &[f32; HD] = v.try_into().expect("a value has head_dim floats");
        for i in 0..HD {
            acc[i] += *s * v[i];
        }
    }
    out.copy_from_slice(&acc);
}

/// `exp(q k_t * scale + bias_t - max)` into `p`; returns 1 / their sum.
#[inline(always)]
fn scores(q: &[f32], kv: &impl RowKeyValues, h: usize, scale: f32, p: &mut [f32]) -> f32 {
    let mut max = f32::NEG_INFINITY;
    for (t, s) in p.iter_mut().enumerate() {
        let (k, _) = kv.key_value(h, t);
        *s = dot(q, k) * scale + kv.bias(h, t);
        max = max.max(*s);
    }
    // the exponentials vectorise on their own; the sum keeps its order (and so its bits)
    p.iter_mut().for_each(|s| *s = fast_exp(*s - max));
    1.0 / p.iter().fold(0f32, |sum, &s| sum + s)
}

#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    // eight partial sums: vectorises, and does not wait on one long chain of additions
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + ra.iter().zip(rb).map(|(x, y)| x * y).sum::<f32>()
}

/// Self-attention keys and values of the steps decoded so far, kept per step and never
/// copied: each current row records which row of every step its history runs through, so
/// reordering beams or dropping finished sentences rewrites those indices only.
///
/// Rows may join later ([`StepCache::add_rows`]): a row's history then starts at the step it
/// joined, and it attends to its own steps only.
#[derive(Debug, Clone, Default)]
pub struct StepCache {
    /// Per step: keys and values of every row of that step, [rows at that step, d] each.
    steps: Vec<(Vec<f32>, Vec<f32>)>,
    /// Per current row: the step its history starts at, and its row at each step since.
    paths: Vec<RowPath>,
    d: usize,
    head_dim: usize,
    /// T5's position bias, by distance from the row's newest position.
    position_bias: Option<Arc<StepBias>>,
}

/// One current row's history in a [`StepCache`].
#[derive(Debug, Clone, Default)]
struct RowPath {
    /// The step the row's first position was written at.
    start: usize,
    /// Its row at steps `start ..`.
    rows: Vec<u32>,
}

impl StepCache {
    /// A cache of rows of `d` = heads * head_dim keys (and values) per step.
    pub fn new(d: usize, head_dim: usize) -> Self {
        StepCache { steps: Vec::new(), paths: Vec::new(), d, head_dim, position_bias: None }
    }

    /// Adds `bias` (by distance to the query) to every row's logits.
    pub fn with_position_bias(mut self, bias: Option<Arc<StepBias>>) -> Self {
        self.position_bias = bias;
        self
    }

    /// Steps held.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Appends a step: `k`, `v` [rows, d], row `i` continuing current row `i`.
    pub fn push(&mut self, k: Vec<f32>, v: Vec<f32>) {
        let rows = k.len() / self.d.max(1);
        if self.paths.is_empty() && self.steps.is_empty() {
            self.paths = vec![RowPath::default(); rows];
        }
        debug_assert_eq!(self.paths.len(), rows, "a step has one key per current row");
        for (i, path) in self.paths.iter_mut().enumerate() {
            path.rows.push(i as u32);
        }
        self.steps.push((k, v));
    }

    /// New row `i` continues old row `indices[i]` (beam reordering, or keeping a subset).
    pub fn select_rows(&mut self, indices: &[u32]) {
        if self.paths.is_empty() {
            return;
        }
        self.paths = indices.iter().map(|&j| self.paths[j as usize].clone()).collect();
        self.forget_unused_steps();
    }

    /// Appends `rows` rows with no history yet (sentences joining a batch mid-decoding): their
    /// first position is the next step. `current` is the number of rows now (the cache only
    /// knows it after its first step).
    pub fn add_rows(&mut self, current: usize, rows: usize) {
        if self.paths.is_empty() {
            self.paths = vec![RowPath { start: self.steps.len(), rows: Vec::new() }; current];
        }
        self.paths.extend((0..rows).map(|_| RowPath { start: self.steps.len(), rows: Vec::new() }));
    }

    /// Drops the steps before the oldest current row's first one, so a batch that sentences
    /// keep joining and leaving holds only the history its rows can read.
    fn forget_unused_steps(&mut self) {
        let Some(oldest) = self.paths.iter().map(|p| p.start).min() else {
            self.steps.clear();
            return;
        };
        if oldest > 0 {
            self.steps.drain(..oldest);
            self.paths.iter_mut().for_each(|p| p.start -= oldest);
        }
    }
}

impl KeyValueSource for StepCache {
    type Row<'a> = StepRow<'a>;

    fn positions(&self) -> usize {
        self.steps.len()
    }

    fn row(&self, row: usize) -> StepRow<'_> {
        let path = &self.paths[row];
        StepRow {
            steps: &self.steps[path.start..],
            path: &path.rows,
            d: self.d,
            head_dim: self.head_dim,
            position_bias: self.position_bias.as_deref(),
        }
    }
}

/// One row's history in a [`StepCache`].
pub struct StepRow<'a> {
    /// The steps since the row's first one.
    steps: &'a [(Vec<f32>, Vec<f32>)],
    path: &'a [u32],
    d: usize,
    head_dim: usize,
    position_bias: Option<&'a StepBias>,
}

impl RowKeyValues for StepRow<'_> {
    fn positions(&self) -> usize {
        self.path.len()
    }

    /// The query is the row's newest position: key `t` is `positions - 1 - t` before it.
    #[inline(always)]
    fn bias(&self, head: usize, t: usize) -> f32 {
        match self.position_bias {
            Some(b) => b.at(head, self.path.len() - 1 - t),
            None => 0.0,
        }
    }

    #[inline(always)]
    fn key_value(&self, head: usize, t: usize) -> (&[f32], &[f32]) {
        let at = self.path[t] as usize * self.d + head * self.head_dim;
        let (k, v) = &self.steps[t];
        (&k[at..at + self.head_dim], &v[at..at + self.head_dim])
    }
}

/// Source memories read in place: row `r` attends to `rows[r]`, the memory of its source
/// over that source's own positions.
pub struct SourceMemories<'a> {
    pub rows: Vec<MemoryRow<'a>>,
}

impl KeyValueSource for SourceMemories<'_> {
    type Row<'a>
        = MemoryRow<'a>
    where
        Self: 'a;

    fn positions(&self) -> usize {
        self.rows.iter().map(|s| s.len).max().unwrap_or(0)
    }

    fn row(&self, row: usize) -> MemoryRow<'_> {
        self.rows[row]
    }
}

/// The memory of one source: keys and values \[heads, s, head_dim\], bias \[s\].
#[derive(Debug, Clone, Copy)]
pub struct MemoryRow<'a> {
    k: &'a [f32],
    v: &'a [f32],
    bias: &'a [f32],
    len: usize,
    head_dim: usize,
}

impl<'a> MemoryRow<'a> {
    /// Keys and values \[heads, s, head_dim\] with the additive bias \[s\].
    pub fn new(k: &'a [f32], v: &'a [f32], bias: &'a [f32], head_dim: usize) -> Self {
        let len = bias.len();
        assert!(
            k.len() == v.len() && k.len().is_multiple_of((len * head_dim).max(1)),
            "keys and values are [heads, s, head_dim]"
        );
        MemoryRow { k, v, bias, len, head_dim }
    }
}

impl RowKeyValues for MemoryRow<'_> {
    fn positions(&self) -> usize {
        self.len
    }

    #[inline(always)]
    fn key_value(&self, head: usize, t: usize) -> (&[f32], &[f32]) {
        let at = (head * self.len + t) * self.head_dim;
        (&self.k[at..at + self.head_dim], &self.v[at..at + self.head_dim])
    }

    #[inline(always)]
    fn bias(&self, _head: usize, t: usize) -> f32 {
        self.bias[t]
    }
}

/// A decoder's position bias by distance `query - key` (0 ..= max_distance, saturating):
/// `[distance][head]`.
#[derive(Debug, Clone, PartialEq)]
pub struct StepBias {
    heads: usize,
    by_distance: Vec<Vec<f32>>,
}

impl StepBias {
    /// `by_distance[n][head]`: the bias of a key `n` positions before the query (the last
    /// entry for every longer distance).
    pub fn new(heads: usize, by_distance: Vec<Vec<f32>>) -> Self {
        assert!(
            !by_distance.is_empty() && by_distance.iter().all(|b| b.len() == heads),
            "a bias per head and distance"
        );
        StepBias { heads, by_distance }
    }

    /// The bias of a key `distance` positions before the query, for `head`.
    #[inline(always)]
    pub fn at(&self, head: usize, distance: usize) -> f32 {
        let last = self.by_distance.len() - 1;
        self.by_distance[distance.min(last)][head]
    }

    pub fn heads(&self) -> usize {
        self.heads
    }
}
