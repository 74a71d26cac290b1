//! Word alignments from cross-attention: subword pieces merged into words, each target word
//! linked to the source word it attends to most, written as Pharaoh links (`0-0 1-2`).

/// The word index of each subword piece: a piece starting with `▁` (SentencePiece's word
/// boundary) opens a new word; the first piece always does.
pub fn word_of_pieces<S: AsRef<str>>(pieces: &[S]) -> Vec<usize> {
    let mut word = 0;
    pieces
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if i > 0 && p.as_ref().starts_with('\u{2581}') {
                word += 1;
            }
            word
        })
        .collect()
}

/// Hard links `(source word, target word)`, sorted. `attention[t][s]` is target token `t`'s
/// attention to source token `s`; rows beyond `target_words` (EOS) and columns beyond
/// `source_words` (EOS, padding) are ignored. A target word's attention to a source word is the
/// mean over its pieces of the sum over the source word's pieces.
pub fn hard_links(attention: &[Vec<f32>], source_words: &[usize], target_words: &[usize]) -> Vec<(usize, usize)> {
    let (Some(&last_s), Some(&last_t)) = (source_words.last(), target_words.last()) else {
        return Vec::new();
    };
    let (ns, nt) = (last_s + 1, last_t + 1);
    let mut mass = vec![vec![0f32; ns]; nt];
    let mut pieces = vec![0usize; nt];
    for (row, &tw) in attention.iter().zip(target_words) {
        pieces[tw] += 1;
        for (&a, &sw) in row.iter().zip(source_words) {
            mass[tw][sw] += a;
        }
    }
    let mut links: Vec<(usize, usize)> = mass
        .iter()
        .enumerate()
        .filter(|(tw, _)| pieces[*tw] > 0)
        .map(|(tw, row)| {
            let best =
                row.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (s, &m)| if m > b.1 { (s, m) } else { b });
            (best.0, tw)
        })
        .collect();
    links.sort_unstable();
    links
}

/// Pharaoh format: `source-target` pairs separated by spaces.
pub fn pharaoh(links: &[(usize, usize)]) -> String {
    links.iter().map(|(s, t)| format!("{s}-{t}")).collect::<Vec<_>>().join(" ")
}

/// Gold links of one sentence pair: sure ones, and further possible ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoldLinks {
    pub sure: Vec<(usize, usize)>,
    pub possible: Vec<(usize, usize)>,
}

/// Reads `0-0 1p2 3?4`: `i-j` is sure, `ipj` or `i?j` possible.
pub fn parse_gold(line: &str) -> Result<GoldLinks, String> {
    let mut gold = GoldLinks::default();
    for link in line.split_whitespace() {
        let (sep, list) = if let Some(at) = link.find('-') {
            (at, &mut gold.sure)
        } else if let Some(at) = link.find(['p', '?']) {
            (at, &mut gold.possible)
        } else {
            return Err(format!("`{link}`: expected i-j (sure) or ipj (possible)"));
        };
        let number = |s: &str| s.parse::<usize>().map_err(|_| format!("`{link}`: `{s}` is not a word index"));
        list.push((number(&link[..sep])?, number(&link[sep + 1..])?));
    }
    Ok(gold)
}

/// Counts for the alignment error rate (Och and Ney, 2003) over a corpus.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AerCounts {
    pub predicted: usize,
    pub sure: usize,
    /// Predicted links that are sure.
    pub sure_hits: usize,
    /// Predicted links that are sure or possible.
    pub possible_hits: usize,
}

impl AerCounts {
    pub fn add(&mut self, predicted: &[(usize, usize)], gold: &GoldLinks) {
        self.predicted += predicted.len();
        self.sure += gold.sure.len();
        for link in predicted {
            let sure = gold.sure.contains(link);
            self.sure_hits += usize::from(sure);
            self.possible_hits += usize::from(sure || gold.possible.contains(link));
        }
    }

    /// `1 - (|A∩S| + |A∩P|) / (|A| + |S|)`.
    pub fn aer(&self) -> f64 {
        1.0 - (self.sure_hits + self.possible_hits) as f64 / (self.predicted + self.sure).max(1) as f64
    }

    /// `|A∩P| / |A|`.
    pub fn precision(&self) -> f64 {
        self.possible_hits as f64 / self.predicted.max(1) as f64
    }

    /// `|A∩S| / |S|`.
    pub fn recall(&self) -> f64 {
        self.sure_hits as f64 / self.sure.max(1) as f64
    }
}

/// Averages the chosen heads (all when `heads` is empty) of one layer's maps `[head][t][s]`.
pub fn average_heads(layer: &[Vec<Vec<f32>>], heads: &[usize]) -> Vec<Vec<f32>> {
    let chosen: Vec<&Vec<Vec<f32>>> =
        if heads.is_empty() { layer.iter().collect() } else { heads.iter().filter_map(|&h| layer.get(h)).collect() };
    let Some(first) = chosen.first() else { return Vec::new() };
    let n = chosen.len() as f32;
    (0..first.len())
        .map(|i| (0..first[i].len()).map(|j| chosen.iter().map(|m| m[i][j]).sum::<f32>() / n).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gold_links_and_error_rate() {
        let gold = parse_gold("0-0 1-1 1-2 2p3 4?4").unwrap();
        assert_eq!(gold.sure, vec![(0, 0), (1, 1), (1, 2)]);
        assert_eq!(gold.possible, vec![(2, 3), (4, 4)]);
        assert!(parse_gold("0-x").is_err() && parse_gold("01").is_err());
        let mut counts = AerCounts::default();
        // 4 predicted: 2 sure, 1 possible, 1 wrong; 3 sure gold links
        counts.add(&[(0, 0), (1, 1), (2, 3), (3, 0)], &gold);
        assert!((counts.aer() - (1.0 - (2.0 + 3.0) / (4.0 + 3.0))).abs() < 1e-12);
        assert!((counts.precision() - 0.75).abs() < 1e-12 && (counts.recall() - 2.0 / 3.0).abs() < 1e-12);
        let mut perfect = AerCounts::default();
        perfect.add(&gold.sure, &gold);
        assert_eq!(perfect.aer(), 0.0);
    }

    #[test]
    fn heads_average() {
        let layer = vec![vec![vec![1.0, 0.0]], vec![vec![0.0, 1.0]], vec![vec![0.5, 0.5]]];
        assert_eq!(average_heads(&layer, &[]), vec![vec![0.5, 0.5]]);
        assert_eq!(average_heads(&layer, &[0, 1]), vec![vec![0.5, 0.5]]);
        assert_eq!(average_heads(&layer, &[0]), vec![vec![1.0, 0.0]]);
    }

    #[test]
    fn pieces_merge_into_words() {
        let pieces = ["▁Je", "▁t", "'", "aime", "▁."];
        assert_eq!(word_of_pieces(&pieces), vec![0, 1, 1, 1, 2]);
        assert_eq!(word_of_pieces(&["ab", "▁c"]), vec![0, 1], "a first piece without ▁ is a word");
        assert!(word_of_pieces::<&str>(&[]).is_empty());
    }

    #[test]
    fn links_follow_the_most_attended_source_word() {
        // source words: [I] [lo ve] [you], then EOS; target words: [Je] [t' aime], then EOS
        let source_words = [0, 1, 1, 2];
        let target_words = [0, 1, 1];
        let attention = vec![
            vec![0.7, 0.1, 0.1, 0.05, 0.05],
            vec![0.1, 0.2, 0.2, 0.45, 0.05], // "t'" looks at "you"
            vec![0.05, 0.5, 0.4, 0.0, 0.05], // "aime" looks at "love"
            vec![0.0, 0.0, 0.0, 0.0, 1.0],   // EOS: ignored
        ];
        // word 1 of the target: mean of (0.4 love, 0.45 you) and (0.9 love, 0.0 you) -> love
        assert_eq!(hard_links(&attention, &source_words, &target_words), vec![(0, 0), (1, 1)]);
        assert_eq!(pharaoh(&[(0, 0), (2, 1)]), "0-0 2-1");
        assert!(hard_links(&attention, &[], &target_words).is_empty());
    }
}
