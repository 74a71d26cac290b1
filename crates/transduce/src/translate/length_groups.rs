//! Encoding a batch in groups of similar length: a batch padded to its longest source spends
//! the encoder's products on padding rows (16 sources of 23 to 104 positions: 1,664 rows of
//! which 762 are tokens), so the translator encodes sources of similar length together and
//! pads only the finished memory. Each source's memory is the same either way: padding
//! positions are masked out of attention, and every other operation works row by row.

/// Rows a group costs beyond its padded rows (a product's fixed cost and small-`m`
/// inefficiency, measured in rows of work): more groups pay off only when they save more
/// padding than this.
pub const GROUP_COST_ROWS: usize = 64;

/// Partitions sources of lengths `lengths` into groups to encode one by one, minimising the
/// padded rows (group size × its longest source) plus `group_cost` per group. Each group
/// lists indices into `lengths`, in ascending length; every index is in exactly one group.
pub fn length_groups(lengths: &[usize], group_cost: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| (lengths[i], i));
    let n = order.len();
    // best[j]: the least cost of the first j sources in sorted order; cut[j]: where the last
    // group of that partition starts (the longest of a group is its last, in sorted order)
    let mut best = vec![0usize; n + 1];
    let mut cut = vec![0usize; n + 1];
    for j in 1..=n {
        let longest = lengths[order[j - 1]];
        (best[j], cut[j]) = (0..j).map(|i| (best[i] + (j - i) * longest + group_cost, i)).min().expect("j >= 1");
    }
    let mut groups = Vec::new();
    let mut end = n;
    while end > 0 {
        groups.push(order[cut[end]..end].to_vec());
        end = cut[end];
    }
    groups.reverse();
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every partition into contiguous runs of the sorted order, by brute force.
    fn least_cost(sorted: &[usize], cost: usize) -> usize {
        if sorted.is_empty() {
            return 0;
        }
        (1..=sorted.len()).map(|k| k * sorted[k - 1] + cost + least_cost(&sorted[k..], cost)).min().unwrap()
    }

    #[test]
    fn groups_cover_every_source_once_and_cost_the_least() {
        let cases: [&[usize]; 6] = [
            &[],
            &[5],
            &[7, 7, 7, 7],
            &[3, 100, 4, 98, 5],
            &[24, 51, 39, 74, 30, 104, 32, 85],
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        ];
        for lengths in cases {
            for cost in [0, 8, 64, 1000] {
                let groups = length_groups(lengths, cost);
                let mut seen: Vec<usize> = groups.iter().flatten().copied().collect();
                seen.sort();
                assert_eq!(seen, (0..lengths.len()).collect::<Vec<_>>(), "{lengths:?}");
                let cost_of = |g: &Vec<usize>| g.len() * g.iter().map(|&i| lengths[i]).max().unwrap() + cost;
                let mut sorted = lengths.to_vec();
                sorted.sort();
                assert_eq!(
                    groups.iter().map(cost_of).sum::<usize>(),
                    least_cost(&sorted, cost),
                    "{lengths:?} cost {cost}"
                );
                assert!(groups.iter().all(|g| !g.is_empty()));
            }
        }
    }

    #[test]
    fn equal_lengths_stay_one_group_and_a_large_cost_never_splits() {
        assert_eq!(length_groups(&[9, 9, 9], 1).len(), 1);
        assert_eq!(length_groups(&[3, 100, 4, 98], 10_000).len(), 1);
        assert_eq!(length_groups(&[3, 100, 4, 98], 0), vec![vec![0], vec![2], vec![3], vec![1]]);
    }
}
