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

#[cfg(test)]
mod tests {
    use super::*;

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
