//! Corpus BLEU exactly as sacrebleu 2.x computes it (`metrics/bleu.py`): 13a tokenization,
//! clipped n-gram counts with the maximum count over references, the closest reference length
//! (the shorter on ties), brevity penalty, and the `exp` smoothing of mteval-v13a.

use std::collections::HashMap;

use super::tokenize_13a::tokenize_13a;
use super::{py_lower, py_rstrip, py_split, Case};

pub const MAX_ORDER: usize = 4;

/// Sufficient statistics, summed over segments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BleuStats {
    pub hyp_len: usize,
    pub ref_len: usize,
    pub correct: [usize; MAX_ORDER],
    pub total: [usize; MAX_ORDER],
}

impl std::ops::AddAssign for BleuStats {
    fn add_assign(&mut self, o: Self) {
        self.hyp_len += o.hyp_len;
        self.ref_len += o.ref_len;
        for n in 0..MAX_ORDER {
            self.correct[n] += o.correct[n];
            self.total[n] += o.total[n];
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BleuScore {
    pub score: f64,
    /// Modified n-gram precisions, in percent.
    pub precisions: [f64; MAX_ORDER],
    pub brevity_penalty: f64,
    pub stats: BleuStats,
}

impl std::fmt::Display for BleuScore {
    /// sacrebleu's line: `BLEU = 34.21 65.2/40.1/27.3/19.0 (BP = 1.000 ratio = 1.012 hyp_len = 1234 ref_len = 1219)`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = self.precisions;
        let ratio = if self.stats.ref_len > 0 { self.stats.hyp_len as f64 / self.stats.ref_len as f64 } else { 0.0 };
        write!(
            f,
            "BLEU = {:.2} {:.1}/{:.1}/{:.1}/{:.1} (BP = {:.3} ratio = {:.3} hyp_len = {} ref_len = {})",
            self.score, p[0], p[1], p[2], p[3], self.brevity_penalty, ratio, self.stats.hyp_len, self.stats.ref_len
        )
    }
}

type Ngrams<'a> = HashMap<&'a [&'a str], usize>;

fn ngrams<'a>(tokens: &'a [&'a str]) -> Ngrams<'a> {
    let mut counts = HashMap::new();
    for n in 1..=MAX_ORDER {
        for w in tokens.windows(n) {
            *counts.entry(w).or_insert(0) += 1;
        }
    }
    counts
}

/// Corpus BLEU with sacrebleu's defaults.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bleu {
    pub case: Case,
}

impl Bleu {
    fn preprocess(&self, s: &str) -> String {
        let s = match self.case {
            Case::Lower => py_lower(s),
            Case::Sensitive => s.to_string(),
        };
        tokenize_13a(py_rstrip(&s))
    }

    /// Statistics of one hypothesis against its references.
    pub fn segment_stats(&self, hyp: &str, refs: &[&str]) -> BleuStats {
        let hyp = self.preprocess(hyp);
        let hyp_tokens: Vec<&str> = py_split(&hyp).collect();
        let refs: Vec<String> = refs.iter().map(|r| self.preprocess(r)).collect();
        let ref_tokens: Vec<Vec<&str>> = refs.iter().map(|r| py_split(r).collect()).collect();
        let mut ref_counts: Ngrams = HashMap::new();
        for toks in &ref_tokens {
            for (g, c) in ngrams(toks) {
                let e = ref_counts.entry(g).or_insert(0);
                *e = (*e).max(c);
            }
        }
        // closest reference length, the shorter one on ties
        let hyp_len = hyp_tokens.len();
        let mut closest: Option<(usize, usize)> = None;
        for len in ref_tokens.iter().map(Vec::len) {
            let diff = hyp_len.abs_diff(len);
            closest = match closest {
                Some((d, l)) if diff > d || (diff == d && len >= l) => Some((d, l)),
                _ => Some((diff, len)),
            };
        }
        let mut stats = BleuStats { hyp_len, ref_len: closest.map_or(0, |c| c.1), ..Default::default() };
        for (g, c) in ngrams(&hyp_tokens) {
            let n = g.len() - 1;
            stats.total[n] += c;
            if let Some(&r) = ref_counts.get(g) {
                stats.correct[n] += c.min(r);
            }
        }
        stats
    }

    /// Corpus BLEU of `hyps` against reference streams (`refs[k][i]` is reference k of segment i).
    pub fn corpus_score(&self, hyps: &[&str], refs: &[Vec<&str>]) -> BleuScore {
        let mut stats = BleuStats::default();
        for (i, hyp) in hyps.iter().enumerate() {
            let seg_refs: Vec<&str> = refs.iter().map(|stream| stream[i]).collect();
            stats += self.segment_stats(hyp, &seg_refs);
        }
        Self::score_from_stats(stats)
    }

    /// BLEU from summed statistics (`compute_bleu` with `smooth_method='exp'`).
    pub fn score_from_stats(stats: BleuStats) -> BleuScore {
        let (sys_len, ref_len) = (stats.hyp_len as f64, stats.ref_len as f64);
        let brevity_penalty = if sys_len < ref_len {
            if sys_len > 0.0 {
                (1.0 - ref_len / sys_len).exp()
            } else {
                0.0
            }
        } else {
            1.0
        };
        let mut precisions = [0.0; MAX_ORDER];
        if stats.correct.iter().all(|&c| c == 0) {
            return BleuScore { score: 0.0, precisions, brevity_penalty, stats };
        }
        let mut smooth = 1.0;
        for (p, (&correct, &total)) in precisions.iter_mut().zip(stats.correct.iter().zip(&stats.total)) {
            if total == 0 {
                break;
            }
            *p = if correct == 0 {
                smooth *= 2.0;
                100.0 / (smooth * total as f64)
            } else {
                100.0 * correct as f64 / total as f64
            };
        }
        let log = |p: f64| if p == 0.0 { -9999999999.0 } else { p.ln() };
        let score = brevity_penalty * (precisions.iter().map(|&p| log(p)).sum::<f64>() / MAX_ORDER as f64).exp();
        BleuScore { score, precisions, brevity_penalty, stats }
    }
}
