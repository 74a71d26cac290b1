//! The loop every strategy runs, one decoding step at a time over a batch of sentences that
//! may join and leave between steps: for a whole batch at once ([`decode`](super::decode)), or
//! for a scheduler that admits waiting sentences while others decode (continuous batching).
//! A sentence's output does not depend on when it joined or what it shared the batch with.

use candle_core::Result;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use super::constraints::{most_probable, rows_logp};
use super::hypothesis::{Hypothesis, Partial};
use super::options::{Alignment, BeamOptions, BeamRule, DecodeOptions, Scores, Strategy, Target};
use super::sampling::candidates;
use super::select::rows_top;
use super::step::{StepModel, StepOutput};
use crate::model::state::row_starts;

/// One sentence to decode: the caller's key, its limits and its random stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Sentence {
    /// The caller's name for the sentence, returned with its outputs.
    pub id: u64,
    /// Most output tokens (EOS excluded).
    pub max_len: usize,
    /// Tokens the output must start with.
    pub prefix: Vec<u32>,
    /// How many of them are tags (see [`Target::tags`]).
    pub tags: usize,
    /// The sentence's random stream for sampling (its position in the caller's input).
    pub stream: u64,
}

/// A sentence that finished: its hypotheses, best first.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub id: u64,
    pub hypotheses: Vec<Hypothesis>,
}

/// Sentences decoding together in one model state.
pub struct Decoding<S> {
    opts: DecodeOptions,
    /// Decoder rows per sentence.
    group: usize,
    state: Option<S>,
    /// In the order of the state's sentences.
    live: Vec<Live>,
    /// Per state row, the token it read last.
    last: Vec<u32>,
    /// Per live sentence, its rows in the state.
    rows: Vec<usize>,
    /// Whether a beam sentence holds one row per live hypothesis (the model can vary them)
    /// rather than `group` rows throughout: its first step then decodes one row, not `group`
    /// identical ones.
    rows_vary: bool,
}

/// A sentence being decoded.
struct Live {
    sentence: Sentence,
    search: Search,
}

/// One sentence's search progress.
enum Search {
    /// Beam search: the live hypotheses (one per row, the first row only at the start).
    Beam { active: Vec<Partial>, finished: Vec<Hypothesis>, registered: usize },
    /// One row: the most probable token (no generator) or a draw.
    OneRow { partial: Partial, rng: Option<Xoshiro256PlusPlus> },
}

impl<S> Decoding<S> {
    /// An empty batch decoding under `opts` (validated here).
    pub fn new(opts: &DecodeOptions) -> Result<Self> {
        opts.validate().map_err(candle_core::Error::wrap)?;
        match &opts.strategy {
            Strategy::Beam(beam) => beam.validate().map_err(candle_core::Error::wrap)?,
            Strategy::Sample(s) => s.validate().map_err(candle_core::Error::wrap)?,
            Strategy::Greedy => {}
        }
        Ok(Decoding {
            opts: *opts,
            group: opts.group(),
            state: None,
            live: Vec::new(),
            last: Vec::new(),
            rows: Vec::new(),
            rows_vary: false,
        })
    }

    /// Decoder rows per sentence: the state passed to [`Decoding::admit`] has this group.
    pub fn group(&self) -> usize {
        self.group
    }

    /// Sentences still decoding.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// The ids of the sentences still decoding.
    pub fn ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.live.iter().map(|l| l.sentence.id)
    }

    /// Adds `sentences` to the batch: `state` is `model.start(self.group())` of their encoded
    /// sources, in order. Their first step is the next one.
    pub fn admit<M: StepModel<State = S>>(&mut self, model: &M, state: S, sentences: Vec<Sentence>) -> Result<()> {
        if sentences.len() != model.sources() {
            candle_core::bail!("{} sentences for {} encoded sources", sentences.len(), model.sources());
        }
        let mut state = state;
        let rows = match self.group > 1 && model.rows_can_vary(&state) {
            true => {
                // one row per sentence until its first step picks the beams
                let first_rows: Vec<u32> = (0..sentences.len()).map(|s| (s * self.group) as u32).collect();
                model.regroup(&mut state, &first_rows, &vec![1; sentences.len()])?;
                self.rows_vary = true;
                1
            }
            false => self.group,
        };
        match &mut self.state {
            Some(current) => model.append(current, state)?,
            None => self.state = Some(state),
        }
        for mut sentence in sentences {
            // at least the prefix, at most what the model can write
            sentence.max_len = sentence.max_len.max(sentence.prefix.len()).min(model.max_len());
            sentence.prefix.truncate(sentence.max_len);
            let search = match &self.opts.strategy {
                Strategy::Beam(_) => {
                    Search::Beam { active: vec![Partial::default()], finished: Vec::new(), registered: 0 }
                }
                Strategy::Greedy => Search::OneRow { partial: Partial::default(), rng: None },
                Strategy::Sample(s) => {
                    let seed = s.seed ^ sentence.stream.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                    Search::OneRow { partial: Partial::default(), rng: Some(Xoshiro256PlusPlus::seed_from_u64(seed)) }
                }
            };
            self.live.push(Live { sentence, search });
            self.rows.push(rows);
            self.last.extend(std::iter::repeat_n(model.start_token(), rows));
        }
        Ok(())
    }

    /// Decodes one position of every sentence; returns the sentences that finished (they have
    /// left the batch).
    pub fn step<M: StepModel<State = S>>(&mut self, model: &M) -> Result<Vec<Finished>> {
        if self.opts.strategy == Strategy::Greedy
            && self.opts.scores == Scores::Omit
            && self.opts.alignment == Alignment::Off
        {
            return self.step_unscored(model);
        }
        let Some(state) = self.state.as_mut() else {
            return Ok(Vec::new());
        };
        let out = model.step(&self.last, state, self.opts.alignment)?;
        let k = self.group;
        let mut done = vec![false; self.live.len()];
        match &self.opts.strategy {
            Strategy::Beam(beam) => {
                let starts = row_starts(&self.rows);
                let tops = {
                    let targets = targets(&self.live);
                    // rows without a hypothesis (the start of a group) are never read
                    let rows: Vec<Option<(&[u32], &Target)>> = self
                        .live
                        .iter()
                        .zip(&targets)
                        .zip(&self.rows)
                        .flat_map(|((l, t), &n)| (0..n).map(move |b| l.search.beam_history(b).map(|h| (h, t))))
                        .collect();
                    rows_top(&out.logits, &rows, &self.opts, model.search_tokens(), 2 * k)
                };
                // new row i continues old row indices[i]; each sentence's rows after the step
                let mut indices: Vec<u32> = Vec::with_capacity(self.last.len());
                let mut last: Vec<u32> = Vec::with_capacity(self.last.len());
                let mut rows_after: Vec<usize> = Vec::with_capacity(self.rows.len());
                for (pos, live) in self.live.iter_mut().enumerate() {
                    let (first, n, eos) = (starts[pos], self.rows[pos], model.eos());
                    let Search::Beam { active, finished, registered } = &mut live.search else {
                        unreachable!("a beam batch holds beam searches")
                    };
                    let max_len = live.sentence.max_len;
                    let tops = &tops[first..first + n];
                    let next = beam_step(active, finished, registered, tops, &out, first, eos, beam, max_len);
                    let kept = match next {
                        Some(next) => {
                            let keep = if self.rows_vary { next.len() } else { n };
                            let continued = next.iter().map(|(b, h)| {
                                ((first + b) as u32, *h.tokens.last().expect("live hypotheses end in a token"))
                            });
                            // without varying rows, rows past the hypotheses keep their history (never read)
                            let idle = (next.len()..keep).map(|i| ((first + i) as u32, self.last[first + i]));
                            for (from, token) in continued.chain(idle) {
                                indices.push(from);
                                last.push(token);
                            }
                            *active = next.into_iter().map(|(_, h)| h).collect();
                            keep
                        }
                        None => {
                            // leaves below; its rows stay as they are until then
                            done[pos] = true;
                            indices.extend((first..first + n).map(|r| r as u32));
                            last.extend_from_slice(&self.last[first..first + n]);
                            n
                        }
                    };
                    rows_after.push(kept);
                }
                let moved = rows_after != self.rows || indices.iter().enumerate().any(|(i, &j)| i as u32 != j);
                if moved {
                    match self.rows_vary {
                        true => model.regroup(state, &indices, &rows_after)?,
                        false => model.reorder(state, &indices)?,
                    }
                }
                self.last = last;
                self.rows = rows_after;
            }
            Strategy::Greedy | Strategy::Sample(_) => {
                let logp = {
                    let targets = targets(&self.live);
                    let rows: Vec<(&[u32], &Target)> =
                        self.live.iter().zip(&targets).map(|(l, t)| (l.search.history(0), t)).collect();
                    rows_logp(&out.logits, &rows, &self.opts, model.search_tokens())
                };
                let (eos, v) = (model.eos(), model.vocab());
                for (pos, live) in self.live.iter_mut().enumerate() {
                    let Search::OneRow { partial, rng } = &mut live.search else {
                        unreachable!("a one-row batch holds one-row searches")
                    };
                    let row = &logp[pos * v..(pos + 1) * v];
                    let token = match (rng, &self.opts.strategy) {
                        (Some(rng), Strategy::Sample(s)) => draw(row, s, rng, eos),
                        _ => most_probable(row, eos),
                    };
                    *partial = partial.extend(token, row[token as usize], &out, pos, eos);
                    if token == eos {
                        done[pos] = true;
                    } else {
                        self.last[pos] = token;
                    }
                }
            }
        }
        model.recycle(state, out.logits);
        self.leave(model, &done)
    }

    /// [`Decoding::step`] of greedy search without scores: the most probable tokens as the
    /// model finds them ([`StepModel::step_most_probable`]), the same as from the
    /// log-probabilities.
    fn step_unscored<M: StepModel<State = S>>(&mut self, model: &M) -> Result<Vec<Finished>> {
        let Some(state) = self.state.as_mut() else {
            return Ok(Vec::new());
        };
        let chosen = {
            let targets = targets(&self.live);
            let rows: Vec<(&[u32], &Target)> =
                self.live.iter().zip(&targets).map(|(l, t)| (l.search.history(0), t)).collect();
            model.step_most_probable(&self.last, state, &rows, &self.opts)?
        };
        let eos = model.eos();
        let mut done = vec![false; self.live.len()];
        for (pos, (live, &token)) in self.live.iter_mut().zip(&chosen).enumerate() {
            let Search::OneRow { partial, .. } = &mut live.search else {
                unreachable!("a greedy batch holds one-row searches")
            };
            *partial = partial.extend_unscored(token, eos);
            match token == eos {
                true => done[pos] = true,
                false => self.last[pos] = token,
            }
        }
        self.leave(model, &done)
    }

    /// Drops the finished sentences from the batch and returns their outputs.
    fn leave<M: StepModel<State = S>>(&mut self, model: &M, done: &[bool]) -> Result<Vec<Finished>> {
        if !done.iter().any(|&d| d) {
            return Ok(Vec::new());
        }
        let kept: Vec<u32> = (0..done.len() as u32).filter(|&p| !done[p as usize]).collect();
        match (kept.is_empty(), self.state.as_mut()) {
            (true, _) => self.state = None,
            (false, Some(state)) => model.retain(state, &kept)?,
            (false, None) => unreachable!("live sentences have a state"),
        }
        let starts = row_starts(&self.rows);
        let last = std::mem::take(&mut self.last);
        self.last = kept
            .iter()
            .flat_map(|&p| last[starts[p as usize]..starts[p as usize] + self.rows[p as usize]].iter().copied())
            .collect();
        self.rows = kept.iter().map(|&p| self.rows[p as usize]).collect();
        let n_best = match &self.opts.strategy {
            Strategy::Beam(beam) => beam.n_best,
            _ => 1,
        };
        let mut finished = Vec::new();
        let live = std::mem::take(&mut self.live);
        for (live, &done) in live.into_iter().zip(done) {
            if !done {
                self.live.push(live);
                continue;
            }
            let hypotheses = match live.search {
                Search::Beam { finished: mut f, .. } => {
                    f.truncate(n_best);
                    f
                }
                Search::OneRow { partial, .. } => {
                    let score = partial.logp;
                    vec![partial.finish(score)]
                }
            };
            finished.push(Finished { id: live.sentence.id, hypotheses });
        }
        Ok(finished)
    }
}

/// Each live sentence's limits, in batch order.
fn targets(live: &[Live]) -> Vec<Target<'_>> {
    live.iter()
        .map(|l| Target { max_len: l.sentence.max_len, prefix: &l.sentence.prefix, tags: l.sentence.tags })
        .collect()
}

impl Search {
    /// The tokens of row `b`'s hypothesis (empty for a row without one).
    fn history(&self, b: usize) -> &[u32] {
        self.beam_history(b).unwrap_or(&[])
    }

    /// The tokens of row `b`'s hypothesis, `None` for a row without one.
    fn beam_history(&self, b: usize) -> Option<&[u32]> {
        match self {
            Search::Beam { active, .. } => active.get(b).map(|h| &h.tokens[..]),
            Search::OneRow { partial, .. } => (b == 0).then_some(&partial.tokens[..]),
        }
    }
}

/// A token drawn from a row of log-probabilities under the sampling options.
fn draw(row: &[f32], sampling: &super::options::SamplingOptions, rng: &mut Xoshiro256PlusPlus, eos: u32) -> u32 {
    let c = candidates(row, sampling);
    let mut u: f32 = rng.gen();
    c.iter()
        .find(|x| {
            u -= x.1;
            u <= 0.0
        })
        .or(c.last())
        .map_or(eos, |x| x.0)
}

/// One beam search step of one sentence, whose `k` rows start at `first` in `out`: the
/// `2k` best continuations (`tops`, per row) extend its hypotheses; finished ones are scored
/// and kept. Returns the next hypotheses with the row each continues, or `None` when the
/// sentence is done.
#[allow(clippy::too_many_arguments)]
fn beam_step(
    active: &[Partial],
    finished: &mut Vec<Hypothesis>,
    registered: &mut usize,
    tops: &[Vec<(f32, u32)>],
    out: &StepOutput,
    first: usize,
    eos: u32,
    beam: &BeamOptions,
    max_len: usize,
) -> Option<Vec<(usize, Partial)>> {
    let (k, n_best) = (beam.beam, beam.n_best);
    // finished hypotheses kept per sentence
    let kept = match beam.rule {
        BeamRule::Exact => n_best,
        BeamRule::Heuristic | BeamRule::HuggingFace => k,
        BeamRule::CTranslate2 => usize::MAX,
    };
    // the 2k best (score, beam row, token) over the group's live rows
    let mut cands: Vec<(f32, usize, u32)> = Vec::with_capacity(2 * k * active.len());
    for (b, hyp) in active.iter().enumerate() {
        cands.extend(tops[b].iter().map(|&(lp, t)| (hyp.logp + lp, b, t)));
    }
    cands.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut next: Vec<(usize, Partial)> = Vec::with_capacity(k);
    for (rank, (total, b, t)) in cands.into_iter().enumerate() {
        if total == f32::NEG_INFINITY {
            break;
        }
        let row = first + b;
        if t == eos && beam.rule != BeamRule::Exact && rank >= k {
            continue;
        }
        if t == eos {
            let hyp = active[b].extend(t, total - active[b].logp, out, row, eos);
            let score = beam.length_penalty.score(hyp.logp, hyp.token_logp.len());
            finished.push(hyp.finish(score));
            *registered += 1;
        } else if next.len() < k {
            next.push((b, active[b].extend(t, total - active[b].logp, out, row, eos)));
        }
        if next.len() == k {
            break;
        }
    }
    finished.sort_by(|a, b| b.score.total_cmp(&a.score));
    finished.truncate(kept);
    let worst_kept = finished.get(kept - 1).map(|h| h.score);
    let stop = match beam.rule {
        // once the n-best have finished and no live hypothesis can beat them, even with no
        // further cost, within the length limit
        BeamRule::Exact => {
            let max_total = max_len + 1;
            let best_live = next
                .iter()
                .map(|(_, h)| beam.length_penalty.best_reachable(h.logp, max_total))
                .fold(f32::NEG_INFINITY, f32::max);
            worst_kept.is_some_and(|w| w >= best_live)
        }
        // once the best live hypothesis, as if it ended now, cannot beat the worst kept
        // (`next` is sorted best first)
        BeamRule::Heuristic | BeamRule::HuggingFace => {
            let best_live =
                next.first().map_or(f32::NEG_INFINITY, |(_, h)| beam.length_penalty.score(h.logp, h.token_logp.len()));
            worst_kept.is_some_and(|w| w >= best_live)
        }
        BeamRule::CTranslate2 => *registered >= k,
    };
    (!next.is_empty() && !stop).then_some(next)
}

/// Decodes every sentence of `model` (a fresh batch) to the end; per sentence, its
/// hypotheses best first.
pub(crate) fn decode_all<M: StepModel>(
    model: &M,
    targets: &[Target],
    streams: &[u64],
    opts: &DecodeOptions,
) -> Result<Vec<Vec<Hypothesis>>> {
    if targets.len() != model.sources() {
        candle_core::bail!("{} targets for {} encoded sentences", targets.len(), model.sources());
    }
    if streams.len() != targets.len() {
        candle_core::bail!("{} random streams for {} sentences", streams.len(), targets.len());
    }
    let mut decoding = Decoding::new(opts)?;
    let sentences = targets
        .iter()
        .zip(streams)
        .enumerate()
        .map(|(i, (t, &stream))| Sentence {
            id: i as u64,
            max_len: t.max_len,
            prefix: t.prefix.to_vec(),
            tags: t.tags,
            stream,
        })
        .collect();
    decoding.admit(model, model.start(decoding.group())?, sentences)?;
    let mut out = vec![Vec::new(); targets.len()];
    while !decoding.is_empty() {
        for f in decoding.step(model)? {
            out[f.id as usize] = f.hypotheses;
        }
    }
    Ok(out)
}
