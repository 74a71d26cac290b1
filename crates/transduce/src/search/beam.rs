//! Beam search over grouped decoder rows: `beam` rows per source sentence, reordered in place
//! after each step; finished hypotheses are scored with a length penalty; a sentence stops as
//! soon as no live hypothesis can beat its n-best, and then leaves the batch.

use candle_core::Result;

use super::hypothesis::{check, limits, Hypothesis, LiveSentences, Partial};
use super::options::{BeamOptions, BeamRule, DecodeOptions, Target};
use super::select::rows_top;
use super::step::StepModel;

/// Decodes every sentence of `model`; returns, per sentence, up to `beam.n_best` hypotheses,
/// best first.
pub fn beam_search<M: StepModel>(
    model: &M,
    targets: &[Target],
    opts: &DecodeOptions,
    beam: &BeamOptions,
) -> Result<Vec<Vec<Hypothesis>>> {
    check(model, targets)?;
    opts.validate().and_then(|()| beam.validate()).map_err(candle_core::Error::wrap)?;
    let targets = limits(model, targets);
    let (k, n_best) = (beam.beam, beam.n_best);
    // finished hypotheses kept per sentence
    let kept = match beam.rule {
        BeamRule::Exact => n_best,
        BeamRule::HuggingFace => k,
        BeamRule::CTranslate2 => usize::MAX,
    };

    let eos = model.eos();
    let sources = targets.len();
    let mut state = model.start(k)?;
    // only the first row of each group is live at the start, so the beam does not fill with copies
    let mut active: Vec<Vec<Partial>> = vec![vec![Partial::default()]; sources];
    let mut finished: Vec<Vec<Hypothesis>> = vec![Vec::new(); sources];
    let mut done = vec![false; sources];
    // finished hypotheses registered per sentence (CTranslate2 stops at `k`)
    let mut registered = vec![0usize; sources];
    let mut live = LiveSentences::new(sources);
    let mut last = vec![model.start_token(); sources * k];
    let mut step_no = 0;
    while !live.is_empty() {
        let out = model.step(&last, &mut state, opts.alignment)?;
        // rows without a hypothesis (the start of a group) get dummy histories; never read
        let (active_ref, targets_ref) = (&active, &targets);
        let rows: Vec<(&[u32], &Target)> = live
            .sentences
            .iter()
            .flat_map(|&s| {
                (0..k).map(move |b| (active_ref[s].get(b).map_or(&[][..], |h| &h.tokens[..]), &targets_ref[s]))
            })
            .collect();
        let tops = rows_top(&out.logits, &rows, opts, model.search_tokens(), 2 * k);
        let mut reorder: Vec<u32> = (0..(live.sentences.len() * k) as u32).collect();
        for (pos, &s) in live.sentences.iter().enumerate() {
            // the 2k best (score, beam row, token) over the group's live rows
            let mut cands: Vec<(f32, usize, u32)> = Vec::with_capacity(2 * k * active[s].len());
            for (b, hyp) in active[s].iter().enumerate() {
                cands.extend(tops[pos * k + b].iter().map(|&(lp, t)| (hyp.logp + lp, b, t)));
            }
            cands.sort_by(|a, b| b.0.total_cmp(&a.0));
            let mut next: Vec<(usize, Partial)> = Vec::with_capacity(k);
            for (rank, (total, b, t)) in cands.into_iter().enumerate() {
                if total == f32::NEG_INFINITY {
                    break;
                }
                let row = pos * k + b;
                if t == eos && beam.rule != BeamRule::Exact && rank >= k {
                    continue;
                }
                if t == eos {
                    let hyp = active[s][b].extend(t, total - active[s][b].logp, &out, row, eos);
                    let score = beam.length_penalty.score(hyp.logp, hyp.token_logp.len());
                    finished[s].push(hyp.finish(score));
                    registered[s] += 1;
                } else if next.len() < k {
                    next.push((b, active[s][b].extend(t, total - active[s][b].logp, &out, row, eos)));
                }
                if next.len() == k {
                    break;
                }
            }
            finished[s].sort_by(|a, b| b.score.total_cmp(&a.score));
            finished[s].truncate(kept);
            let worst_kept = finished[s].get(kept - 1).map(|h| h.score);
            let stop = match beam.rule {
                // once the n-best have finished and no live hypothesis can beat them, even with
                // no further cost, within the length limit
                BeamRule::Exact => {
                    let max_total = targets[s].max_len + 1;
                    let best_live = next
                        .iter()
                        .map(|(_, h)| beam.length_penalty.best_reachable(h.logp, max_total))
                        .fold(f32::NEG_INFINITY, f32::max);
                    worst_kept.is_some_and(|w| w >= best_live)
                }
                // once the best live hypothesis, as if it ended now, cannot beat the worst kept
                // (`next` is sorted best first)
                BeamRule::HuggingFace => {
                    let best_live = next
                        .first()
                        .map_or(f32::NEG_INFINITY, |(_, h)| beam.length_penalty.score(h.logp, h.token_logp.len()));
                    worst_kept.is_some_and(|w| w >= best_live)
                }
                BeamRule::CTranslate2 => registered[s] >= k,
            };
            if next.is_empty() || stop {
                done[s] = true;
                continue;
            }
            for (i, (b, h)) in next.iter().enumerate() {
                reorder[pos * k + i] = (pos * k + b) as u32;
                last[pos * k + i] = *h.tokens.last().expect("live hypotheses end in a token");
            }
            active[s] = next.into_iter().map(|(_, h)| h).collect();
        }
        if reorder.iter().enumerate().any(|(i, &j)| i as u32 != j) {
            model.reorder(&mut state, &reorder)?;
        }
        let kept = live.retain(model, &mut state, |s| !done[s])?;
        last = kept.iter().flat_map(|&p| last[p * k..(p + 1) * k].to_vec()).collect();
        step_no += 1;
        debug_assert!(step_no <= model.max_len() + 1, "every sentence stops at its length limit");
    }
    Ok(finished
        .into_iter()
        .map(|mut f| {
            f.truncate(n_best);
            f
        })
        .collect())
}
