//! chrF exactly as sacrebleu 2.x computes it (`metrics/chrf.py`) with its defaults: character
//! n-grams of order 1 to 6 with whitespace removed, beta 2, precision and recall averaged over
//! the orders that occur, the best reference per segment by its own F-score.

use std::collections::HashMap;

use super::{py_isspace, py_lower, Case};

pub const CHAR_ORDER: usize = 6;
const BETA: f64 = 2.0;

/// [hyp, ref, match] counts per order.
pub type ChrfStats = [[usize; 3]; CHAR_ORDER];

#[derive(Debug, Clone, PartialEq)]
pub struct ChrfScore {
    pub score: f64,
    pub stats: ChrfStats,
}

impl std::fmt::Display for ChrfScore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "chrF2 = {:.2}", self.score)
    }
}

/// Character n-gram counts of orders 1..=6 over `chars`.
fn count_ngrams(chars: &[char]) -> Vec<HashMap<&[char], usize>> {
    (1..=CHAR_ORDER)
        .map(|n| {
            let mut m = HashMap::new();
            for w in chars.windows(n) {
                *m.entry(w).or_insert(0) += 1;
            }
            m
        })
        .collect()
}

/// F-score of summed statistics (`_compute_f_score` without eps smoothing).
pub fn f_score(stats: &ChrfStats) -> f64 {
    let eps = 1e-16;
    let factor = BETA * BETA;
    let (mut avg_prec, mut avg_rec, mut effective_order) = (0.0, 0.0, 0);
    for &[n_hyp, n_ref, n_match] in stats {
        let prec = if n_hyp > 0 { n_match as f64 / n_hyp as f64 } else { eps };
        let rec = if n_ref > 0 { n_match as f64 / n_ref as f64 } else { eps };
        if n_hyp > 0 && n_ref > 0 {
            avg_prec += prec;
            avg_rec += rec;
            effective_order += 1;
        }
    }
    if effective_order == 0 {
        return 0.0;
    }
    avg_prec /= effective_order as f64;
    avg_rec /= effective_order as f64;
    if avg_prec + avg_rec > 0.0 {
        100.0 * (1.0 + factor) * avg_prec * avg_rec / (factor * avg_prec + avg_rec)
    } else {
        0.0
    }
}

/// Corpus chrF2 with sacrebleu's defaults.
#[derive(Debug, Clone, Copy, Default)]
pub struct Chrf {
    pub case: Case,
}

impl Chrf {
    fn chars(&self, s: &str) -> Vec<char> {
        let s = match self.case {
            Case::Lower => py_lower(s),
            Case::Sensitive => s.to_string(),
        };
        s.chars().filter(|&c| !py_isspace(c)).collect()
    }

    /// Statistics of one hypothesis against its best reference.
    pub fn segment_stats(&self, hyp: &str, refs: &[&str]) -> ChrfStats {
        let hyp_chars = self.chars(hyp);
        let hyp_ngrams = count_ngrams(&hyp_chars);
        let mut best: Option<(f64, ChrfStats)> = None;
        for r in refs {
            let ref_chars = self.chars(r);
            let ref_ngrams = count_ngrams(&ref_chars);
            let mut stats = [[0usize; 3]; CHAR_ORDER];
            for (n, (h, r)) in hyp_ngrams.iter().zip(&ref_ngrams).enumerate() {
                let matched: usize = h.iter().filter_map(|(g, &c)| r.get(g).map(|&rc| c.min(rc))).sum();
                let hyp_count: usize = h.values().sum();
                // sacrebleu counts no hypothesis n-grams where the reference has none of that order
                stats[n] = [if r.is_empty() { 0 } else { hyp_count }, r.values().sum(), matched];
            }
            let f = f_score(&stats);
            if best.as_ref().is_none_or(|(bf, _)| f > *bf) {
                best = Some((f, stats));
            }
        }
        best.map_or([[0; 3]; CHAR_ORDER], |b| b.1)
    }

    /// Corpus chrF2 of `hyps` against reference streams (`refs[k][i]` is reference k of segment i).
    pub fn corpus_score(&self, hyps: &[&str], refs: &[Vec<&str>]) -> ChrfScore {
        let mut stats = [[0usize; 3]; CHAR_ORDER];
        for (i, hyp) in hyps.iter().enumerate() {
            let seg_refs: Vec<&str> = refs.iter().map(|stream| stream[i]).collect();
            for (acc, s) in stats.iter_mut().zip(self.segment_stats(hyp, &seg_refs)) {
                for k in 0..3 {
                    acc[k] += s[k];
                }
            }
        }
        ChrfScore { score: f_score(&stats), stats }
    }
}
