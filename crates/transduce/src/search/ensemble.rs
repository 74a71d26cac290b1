//! Ensemble decoding: several models with one vocabulary score every step together, and the
//! search sees one next-token distribution, their combination (Sockeye's `--ensemble-mode`,
//! fairseq's `--path a.pt:b.pt`, Marian's `--models`). Members run one after another on each
//! step, so an ensemble of `n` costs about `n` times one model.

use candle_core::{bail, Result};

use super::options::Alignment;
use super::step::{StepModel, StepOutput};
use crate::kernels::cpu::{fast_exp, log_sum_exp, par_filled, rows_per_task};

/// How the members' next-token distributions combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Combination {
    /// The average of the members' probabilities, a mixture (Sockeye's `linear`, fairseq's
    /// ensemble).
    #[default]
    Linear,
    /// The average of their log-probabilities, renormalised: a product of experts (Sockeye's
    /// `log_linear`; Marian's with equal weights).
    LogLinear,
}

crate::choices!(Combination, "ensemble_mode", { Linear => "linear", LogLinear => "log-linear" });

/// Step models of one vocabulary decoding the same sources as one.
pub struct Ensemble<M> {
    members: Vec<M>,
    combination: Combination,
}

impl<M: StepModel> Ensemble<M> {
    /// Refuses members that disagree on the vocabulary size, the special tokens or the number
    /// of sources (the search could not read their steps as one).
    pub fn new(members: Vec<M>, combination: Combination) -> Result<Self> {
        let Some(first) = members.first() else { bail!("an ensemble needs at least one model") };
        let shape = |m: &M| (m.vocab(), m.start_token(), m.eos(), m.pad(), m.sources());
        for (i, m) in members.iter().enumerate().skip(1) {
            if shape(m) != shape(first) {
                bail!(
                    "ensemble member {i} has (vocabulary, start, EOS, padding, sources) {:?}, member 0 {:?}",
                    shape(m),
                    shape(first)
                );
            }
        }
        Ok(Ensemble { members, combination })
    }

    pub fn members(&self) -> &[M] {
        &self.members
    }
}

impl<M: StepModel> StepModel for Ensemble<M> {
    /// Each member's own state, in member order.
    type State = Vec<M::State>;

    fn start_token(&self) -> u32 {
        self.members[0].start_token()
    }
    fn eos(&self) -> u32 {
        self.members[0].eos()
    }
    fn max_len(&self) -> usize {
        self.members.iter().map(M::max_len).min().unwrap_or(0)
    }
    fn pad(&self) -> Option<u32> {
        self.members[0].pad()
    }
    fn vocab(&self) -> usize {
        self.members[0].vocab()
    }
    fn sources(&self) -> usize {
        self.members[0].sources()
    }
    fn start(&self, group: usize) -> Result<Self::State> {
        self.members.iter().map(|m| m.start(group)).collect()
    }
    /// The members' steps, combined into log-probabilities (which the search reads as logits:
    /// their log-softmax is themselves). Cross-attention, when asked for, is the members'
    /// average.
    fn step(&self, last: &[u32], state: &mut Self::State, alignment: Alignment) -> Result<StepOutput> {
        let mut outputs = Vec::with_capacity(self.members.len());
        for (m, s) in self.members.iter().zip(state.iter_mut()) {
            outputs.push(m.step(last, s, alignment)?);
        }
        let logits: Vec<Vec<f32>> = outputs.iter_mut().map(|o| std::mem::take(&mut o.logits)).collect();
        let combined = combine(&logits, self.vocab(), self.combination)?;
        for ((m, s), l) in self.members.iter().zip(state.iter_mut()).zip(logits) {
            m.recycle(s, l);
        }
        let source_len = outputs[0].source_len;
        let attention =
            outputs.iter().map(|o| o.attention.as_deref()).collect::<Option<Vec<&[f32]>>>().map(|rows| mean(&rows));
        let attention = attention.transpose()?;
        Ok(StepOutput { logits: combined, attention, source_len })
    }
    fn reorder(&self, state: &mut Self::State, indices: &[u32]) -> Result<()> {
        self.members.iter().zip(state.iter_mut()).try_for_each(|(m, s)| m.reorder(s, indices))
    }
    fn rows_can_vary(&self, state: &Self::State) -> bool {
        self.members.iter().zip(state).all(|(m, s)| m.rows_can_vary(s))
    }
    fn regroup(&self, state: &mut Self::State, indices: &[u32], rows: &[usize]) -> Result<()> {
        self.members.iter().zip(state.iter_mut()).try_for_each(|(m, s)| m.regroup(s, indices, rows))
    }
    fn retain(&self, state: &mut Self::State, sources: &[u32]) -> Result<()> {
        self.members.iter().zip(state.iter_mut()).try_for_each(|(m, s)| m.retain(s, sources))
    }
    fn append(&self, state: &mut Self::State, joining: Self::State) -> Result<()> {
        if joining.len() != state.len() {
            bail!("a state of {} members joins an ensemble of {}", joining.len(), state.len());
        }
        self.members.iter().zip(state.iter_mut()).zip(joining).try_for_each(|((m, s), j)| m.append(s, j))
    }
}

/// The members' `[rows][vocab]` logits (row-major, one vector each) combined row by row into
/// log-probabilities: `log(mean_m softmax(x_m))` ([`Combination::Linear`]) or
/// `log_softmax(mean_m log_softmax(x_m))` ([`Combination::LogLinear`]). `-inf` logits (a
/// shortlist's excluded tokens) stay `-inf` where every member has them so.
pub fn combine(members: &[Vec<f32>], vocab: usize, combination: Combination) -> Result<Vec<f32>> {
    let Some(first) = members.first() else { bail!("no members' logits to combine") };
    let len = first.len();
    if vocab == 0 || len % vocab != 0 || members.iter().any(|m| m.len() != len) {
        bail!(
            "members' logits of lengths {:?} are not the same whole number of rows of {vocab}",
            members.iter().map(Vec::len).collect::<Vec<_>>()
        );
    }
    let n = members.len() as f32;
    let rows_per_chunk = rows_per_task(len / vocab, vocab * members.len());
    Ok(par_filled(len, rows_per_chunk * vocab, |c, out| {
        for (r, row) in out.chunks_mut(vocab).enumerate() {
            let at = (c * rows_per_chunk + r) * vocab;
            let rows: Vec<&[f32]> = members.iter().map(|m| &m[at..at + vocab]).collect();
            match combination {
                Combination::Linear => {
                    for x in &rows {
                        let norm = log_sum_exp(x);
                        for (o, &v) in row.iter_mut().zip(x.iter()) {
                            *o += fast_exp(v - norm);
                        }
                    }
                    for o in row.iter_mut() {
                        *o = (*o / n).ln();
                    }
                }
                Combination::LogLinear => {
                    for x in &rows {
                        let norm = log_sum_exp(x);
                        for (o, &v) in row.iter_mut().zip(x.iter()) {
                            *o += (v - norm) / n;
                        }
                    }
                    let norm = log_sum_exp(row);
                    for o in row.iter_mut() {
                        *o -= norm;
                    }
                }
            }
        }
    }))
}

/// The element-wise mean of equally long vectors.
fn mean(parts: &[&[f32]]) -> Result<Vec<f32>> {
    let len = parts.first().map_or(0, |p| p.len());
    if parts.iter().any(|p| p.len() != len) {
        bail!("members' attention rows differ in length: {:?}", parts.iter().map(|p| p.len()).collect::<Vec<_>>());
    }
    let n = parts.len() as f32;
    Ok((0..len).map(|i| parts.iter().map(|p| p[i]).sum::<f32>() / n).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn softmax(x: &[f32]) -> Vec<f64> {
        let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
        let e: Vec<f64> = x.iter().map(|&v| (v as f64 - max).exp()).collect();
        let s: f64 = e.iter().sum();
        e.iter().map(|v| v / s).collect()
    }

    #[test]
    fn linear_is_the_log_of_the_mean_probability_and_log_linear_the_normalised_mean_log() {
        // two rows of four tokens, two members
        let a = vec![1.0f32, 2.0, 0.5, -1.0, 0.0, 0.0, 3.0, f32::NEG_INFINITY];
        let b = vec![-2.0f32, 0.3, 4.0, 1.0, 1.0, -1.0, 0.5, f32::NEG_INFINITY];
        let members = [a.clone(), b.clone()];
        let linear = combine(&members, 4, Combination::Linear).unwrap();
        let log_linear = combine(&members, 4, Combination::LogLinear).unwrap();
        for r in 0..2 {
            let (pa, pb) = (softmax(&a[r * 4..r * 4 + 4]), softmax(&b[r * 4..r * 4 + 4]));
            let geometric: Vec<f64> = pa.iter().zip(&pb).map(|(x, y)| (x * y).sqrt()).collect();
            let z: f64 = geometric.iter().sum();
            for j in 0..4 {
                let (got_linear, got_log_linear) = (linear[r * 4 + j] as f64, log_linear[r * 4 + j] as f64);
                let want_linear = ((pa[j] + pb[j]) / 2.0).ln();
                let want_log_linear = (geometric[j] / z).ln();
                if want_linear.is_infinite() {
                    assert!(got_linear == f64::NEG_INFINITY && got_log_linear == f64::NEG_INFINITY);
                    continue;
                }
                assert!((got_linear - want_linear).abs() < 1e-5, "row {r} token {j}: {got_linear} {want_linear}");
                assert!((got_log_linear - want_log_linear).abs() < 1e-5, "row {r} token {j}");
            }
        }
    }

    #[test]
    fn one_member_or_identical_members_give_its_log_softmax() {
        let x: Vec<f32> = (0..3000).map(|i| ((i * 7919) % 101) as f32 / 10.0 - 5.0).collect();
        let want: Vec<f32> = x
            .chunks(1000)
            .flat_map(|row| {
                let norm = log_sum_exp(row);
                row.iter().map(move |v| v - norm).collect::<Vec<_>>()
            })
            .collect();
        for combination in [Combination::Linear, Combination::LogLinear] {
            for members in [vec![x.clone()], vec![x.clone(), x.clone(), x.clone()]] {
                let got = combine(&members, 1000, combination).unwrap();
                let worst = got.iter().zip(&want).map(|(g, w)| (g - w).abs()).fold(0f32, f32::max);
                assert!(worst < 1e-4, "{combination:?}, {} members: {worst}", members.len());
            }
        }
    }

    #[test]
    fn mismatched_logits_are_refused() {
        assert!(combine(&[vec![0.0; 8], vec![0.0; 4]], 4, Combination::Linear).is_err());
        assert!(combine(&[vec![0.0; 6]], 4, Combination::Linear).is_err());
        assert!(combine(&[], 4, Combination::Linear).is_err());
    }
}
