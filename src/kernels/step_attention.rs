//! Attention of one decoding step on the CPU: every row has a single query, and its keys and
//! values are read where they lie (the per-step self-attention cache through each row's beam
//! history, the source memory shared by a sentence's beams) instead of being gathered,
//! concatenated or split into heads first.

use rayon::prelude::*;

use super::cpu::fast_exp;

/// Where the keys and values a row attends to are.
pub trait KeyValueSource: Sync {
    /// Positions every row attends to.
    fn positions(&self) -> usize;
    /// Key and value of `row` at position `t` for head `h`: `head_dim` floats each.
    fn key_value(&self, row: usize, head: usize, t: usize) -> (&[f32], &[f32]);
    /// Additive bias of position `t` for `row` (source padding).
    fn bias(&self, _row: usize, _t: usize) -> f32 {
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
        for h in 0..heads {
            let q = &q[row * d + h * head_dim..][..head_dim];
            let p = &mut p[h * len..(h + 1) * len];
            let mut max = f32::NEG_INFINITY;
            for (t, s) in p.iter_mut().enumerate() {
                let (k, _) = source.key_value(row, h, t);
                *s = dot(q, k) * scale + source.bias(row, t);
                max = max.max(*s);
            }
            let mut sum = 0f32;
            for s in p.iter_mut() {
                *s = fast_exp(*s - max);
                sum += *s;
            }
            let inv = 1.0 / sum;
            let out = &mut out[h * head_dim..(h + 1) * head_dim];
            for (t, s) in p.iter_mut().enumerate() {
                *s *= inv;
                let (_, v) = source.key_value(row, h, t);
                out.iter_mut().zip(v).for_each(|(o, &v)| *o += *s * v);
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
#[derive(Debug, Clone, Default)]
pub struct StepCache {
    /// Per step: keys and values of every row of that step, [rows at that step, d] each.
    steps: Vec<(Vec<f32>, Vec<f32>)>,
    /// Per current row: its row at each step.
    paths: Vec<Vec<u32>>,
    d: usize,
    head_dim: usize,
}

impl StepCache {
    pub fn new(d: usize, head_dim: usize) -> Self {
        StepCache { steps: Vec::new(), paths: Vec::new(), d, head_dim }
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
        if self.paths.is_empty() {
            self.paths = vec![Vec::new(); rows];
        }
        debug_assert_eq!(self.paths.len(), rows, "a step has one key per current row");
        for (i, path) in self.paths.iter_mut().enumerate() {
            path.push(i as u32);
        }
        self.steps.push((k, v));
    }

    /// New row `i` continues old row `indices[i]` (beam reordering, or keeping a subset).
    pub fn select_rows(&mut self, indices: &[u32]) {
        if self.paths.is_empty() {
            return;
        }
        self.paths = indices.iter().map(|&j| self.paths[j as usize].clone()).collect();
    }
}

impl KeyValueSource for StepCache {
    fn positions(&self) -> usize {
        self.steps.len()
    }

    fn key_value(&self, row: usize, head: usize, t: usize) -> (&[f32], &[f32]) {
        let at = self.paths[row][t] as usize * self.d + head * self.head_dim;
        let (k, v) = &self.steps[t];
        (&k[at..at + self.head_dim], &v[at..at + self.head_dim])
    }
}

/// Source memory keys and values [sources, heads, s, head_dim] shared by `group` consecutive
/// rows, with an additive padding bias [sources, s].
pub struct SharedMemory<'a> {
    pub k: &'a [f32],
    pub v: &'a [f32],
    pub bias: &'a [f32],
    pub heads: usize,
    pub len: usize,
    pub head_dim: usize,
    pub group: usize,
}

impl KeyValueSource for SharedMemory<'_> {
    fn positions(&self) -> usize {
        self.len
    }

    fn key_value(&self, row: usize, head: usize, t: usize) -> (&[f32], &[f32]) {
        let at = ((row / self.group * self.heads + head) * self.len + t) * self.head_dim;
        (&self.k[at..at + self.head_dim], &self.v[at..at + self.head_dim])
    }

    fn bias(&self, row: usize, t: usize) -> f32 {
        self.bias[row / self.group * self.len + t]
    }
}
