//! The largest output of an output projection `x W^T + b`, exactly, from half its bytes.
//!
//! Greedy search at batch 1 reads the whole output projection for every token (NLLB's 256,206 ×
//! 1,024 f32: 1 GB a token, more than all its decoder layers) to keep one index. A matrix
//! packed in halves ([`PanelMatrix::pack_halves`]) keeps each weight's high 16 bits apart, and
//! those alone are the weight truncated to bfloat16. The products with them (half the bytes)
//! bound every exact output:
//!
//! `|L_j - (A_j + b_j)| <= (||x|| (r_j + 2 γ_k ||w_j||) + u |A_j + b_j|) (1 + 2^-10)`
//!
//! where `L_j` is the output every product path computes (fused multiply-adds in k order, then
//! the bias), `A_j` the same chain over the high halves, `r_j = ||w_j - high(w_j)||`,
//! `γ_k = k u / (1 - k u)` the bound on a k-term chain's rounding (u = 2^-24, each of the two
//! chains within `γ_k Σ|x_i||w_ji| <= γ_k ||x|| ||w_j||` of its exact sum, by Cauchy–Schwarz,
//! and truncation only shrinks a weight), one rounding of the bias add, and a margin for the
//! bound's own arithmetic. Only the outputs whose upper bound reaches the best lower bound are
//! computed exactly (a handful of rows of W), and the largest of them is the answer — unless
//! two allowed outputs lie so close that subtracting a log-softmax's normaliser could round
//! them to the same value, in which case the row is left to the full computation. So the token
//! found is the one the full log-probabilities would give, to the bit.

use super::panel::{PanelMatrix, Path};

/// The unit roundoff of f32.
const U: f64 = 1.0 / (1u64 << 24) as f64;
/// Above this many candidates, computing them exactly costs more than the full row saves.
const MAX_CANDIDATES: usize = 512;

/// What [`largest_outputs`] found for a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Largest {
    /// The index of the largest allowed output. Every other allowed output lies below it by more
    /// than the rounding of subtracting any number within `ln(n) + 1` above the largest output
    /// of all could close: the most probable allowed token of the row's log-softmax.
    At(u32),
    /// Not settled from the bounds (allowed outputs too close to tell apart after a log-softmax,
    /// a non-finite value, too many candidates, or no allowed output): compute the row in full.
    Unsettled,
}

/// Per row of `x` [m, k], the largest output of `x W^T + bias` among those not in
/// `banned[row]`, for `w` packed in halves ([`PanelMatrix::pack_halves`]); `None` for a matrix
/// that is not.
pub fn largest_outputs(w: &PanelMatrix, x: &[f32], m: usize, bias: &[f32], banned: &[&[u32]]) -> Option<Vec<Largest>> {
    let (n, k) = (w.rows(), w.cols());
    assert!(x.len() == m * k && bias.len() == n && banned.len() == m, "x is not [m, k], bias not [n] or bans not [m]");
    let (norms, residuals) = w.high_bounds()?;
    let approx = w.high_products(x, m, Path::detect())?;
    let bounds = Bounds { norms, residuals, bias, gamma: k as f64 * U / (1.0 - k as f64 * U) };
    Some((0..m).map(|i| settle(w, &x[i * k..(i + 1) * k], &approx[i * n..(i + 1) * n], &bounds, banned[i])).collect())
}

/// What bounds a row's outputs besides the row itself.
struct Bounds<'a> {
    norms: &'a [f32],
    residuals: &'a [f32],
    bias: &'a [f32],
    /// `γ_k` of the module doc.
    gamma: f64,
}

impl Bounds<'_> {
    /// `(A_j + b_j, bound)` for output j of a row with `||x||` = `norm_x` and high-half
    /// product `high`: the exact output lies within `bound` of the first.
    #[inline]
    fn around(&self, j: usize, high: f32, norm_x: f64) -> (f64, f64) {
        let centre = high as f64 + self.bias[j] as f64;
        let chains = norm_x * (self.residuals[j] as f64 + 2.0 * self.gamma * self.norms[j] as f64);
        (centre, (chains + U * centre.abs()) * (1.0 + 1.0 / 1024.0) + 1e-30)
    }
}

/// [`largest_outputs`] for one row: `approx` its high-half products.
fn settle(w: &PanelMatrix, x: &[f32], approx: &[f32], bounds: &Bounds, banned: &[u32]) -> Largest {
    let norm_x = x.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>().sqrt() * (1.0 + 1e-9);
    if !norm_x.is_finite() {
        return Largest::Unsettled;
    }
    let mut banned = banned.to_vec();
    banned.sort_unstable();
    let allowed = |j: usize| banned.binary_search(&(j as u32)).is_err();
    // the best lower bound among allowed outputs, and the highest upper bound of all
    let (mut floor, mut ceiling) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    for (j, &a) in approx.iter().enumerate() {
        let (centre, bound) = bounds.around(j, a, norm_x);
        if centre == f64::NEG_INFINITY {
            continue; // a -inf bias: -inf exactly, never the largest
        }
        if !(centre.is_finite() && bound.is_finite()) {
            return Largest::Unsettled;
        }
        ceiling = ceiling.max(centre + bound);
        if centre - bound > floor && allowed(j) {
            floor = centre - bound;
        }
    }
    if floor == f64::NEG_INFINITY {
        return Largest::Unsettled;
    }
    // a log-softmax subtracts a normaliser within ln(n) + 1 above the largest output: its
    // results near the best lie within `reach` of zero, where floats are `spacing` apart or
    // closer; outputs `separation` apart stay apart and in order after it
    let reach = (ceiling - floor).max(0.0) + (approx.len() as f64).ln() + 1.0;
    let spacing = 2f64.powi(reach.log2().floor() as i32 - 23);
    let separation = 4.0 * spacing;
    let mut candidates = Vec::new();
    for (j, &a) in approx.iter().enumerate() {
        let (centre, bound) = bounds.around(j, a, norm_x);
        if centre + bound >= floor - separation && allowed(j) {
            candidates.push(j);
            if candidates.len() > MAX_CANDIDATES {
                return Largest::Unsettled;
            }
        }
    }
    let exact: Vec<(usize, f32)> = candidates.iter().map(|&j| (j, w.output(x, j, bounds.bias[j]))).collect();
    if exact.iter().any(|(_, v)| !v.is_finite()) {
        return Largest::Unsettled;
    }
    let Some(&(best, top)) = exact.iter().fold(None, |b: Option<&(usize, f32)>, c| match b {
        Some(b) if b.1 >= c.1 => Some(b),
        _ => Some(c),
    }) else {
        return Largest::Unsettled;
    };
    let runner_up = exact.iter().filter(|(j, _)| *j != best).map(|&(_, v)| v as f64).fold(f64::NEG_INFINITY, f64::max);
    if top as f64 - runner_up < separation {
        return Largest::Unsettled;
    }
    Largest::At(best as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic stream of numbers in [-1, 1).
    fn data(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// The first largest allowed output of the full product.
    fn full_largest(full: &[f32], banned: &[u32]) -> Option<u32> {
        let mut best: Option<(u32, f32)> = None;
        for (j, &v) in full.iter().enumerate() {
            if banned.contains(&(j as u32)) || v == f32::NEG_INFINITY {
                continue;
            }
            if best.is_none_or(|b| v > b.1) {
                best = Some((j as u32, v));
            }
        }
        best.map(|b| b.0)
    }

    #[test]
    fn every_exact_output_lies_within_its_bound() {
        for (n, k, seed) in [(70, 5, 1), (300, 64, 2), (130, 257, 3)] {
            let (w, x, b) = (data(n * k, seed), data(3 * k, seed + 10), data(n, seed + 20));
            // large weights and inputs, so that rounding matters
            let x: Vec<f32> = x.iter().map(|v| v * 37.0).collect();
            let p = PanelMatrix::pack_halves(&w, n, k);
            let full = p.matmul(&x, 3, &b, crate::kernels::BiasActivation::Identity);
            let (norms, residuals) = p.high_bounds().unwrap();
            let bounds = Bounds { norms, residuals, bias: &b, gamma: k as f64 * U / (1.0 - k as f64 * U) };
            for path in [Path::Portable, Path::detect()] {
                let approx = p.high_products(&x, 3, path).unwrap();
                for i in 0..3 {
                    let row = &x[i * k..(i + 1) * k];
                    let norm_x = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt() * (1.0 + 1e-9);
                    for j in 0..n {
                        let (centre, bound) = bounds.around(j, approx[i * n + j], norm_x);
                        assert!(
                            (full[i * n + j] as f64 - centre).abs() <= bound,
                            "{n}x{k} row {i} output {j} {path:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_largest_output_is_the_full_products_or_left_unsettled() {
        let mut settled = 0;
        let mut rows = 0;
        for (n, k, m, seed) in [(1, 8, 1, 1), (70, 5, 2, 2), (1000, 64, 5, 3), (4000, 96, 7, 4), (513, 300, 1, 5)] {
            let (w, x, b) = (data(n * k, seed), data(m * k, seed + 10), data(n, seed + 20));
            let p = PanelMatrix::pack_halves(&w, n, k);
            let full = p.matmul(&x, m, &b, crate::kernels::BiasActivation::Identity);
            for bans in [vec![], vec![0u32, 3], (0..n as u32).step_by(2).collect()] {
                let banned: Vec<&[u32]> = vec![&bans[..]; m];
                let found = largest_outputs(&p, &x, m, &b, &banned).unwrap();
                for (i, f) in found.into_iter().enumerate() {
                    rows += 1;
                    let want = full_largest(&full[i * n..(i + 1) * n], &bans);
                    match f {
                        Largest::At(j) => {
                            settled += 1;
                            assert_eq!(Some(j), want, "{n}x{k} row {i} bans {}", bans.len());
                        }
                        Largest::Unsettled => {}
                    }
                }
            }
        }
        // unsettled only where there is nothing to choose or near-ties
        assert!(settled >= rows - 4, "{settled} of {rows} rows settled");
    }

    #[test]
    fn outputs_that_differ_only_below_the_high_halves_are_told_apart_or_left() {
        // rows 0 and 1 share their high halves; row 1's low bits are larger, so with a positive
        // x its output is larger by a margin the bounds cannot see
        let k = 32;
        let base: Vec<f32> = data(k, 7).iter().map(|v| v.abs() + 0.5).collect();
        let raised: Vec<f32> = base.iter().map(|v| f32::from_bits(v.to_bits() | 0xFFFF)).collect();
        let lowered: Vec<f32> = base.iter().map(|v| f32::from_bits(v.to_bits() & 0xFFFF_0000)).collect();
        let w: Vec<f32> = [lowered.clone(), raised.clone(), vec![0.0; k]].concat();
        let p = PanelMatrix::pack_halves(&w, 3, k);
        let x = vec![1.0f32; k];
        let b = vec![0f32; 3];
        assert_eq!(largest_outputs(&p, &x, 1, &b, &[&[]]).unwrap(), vec![Largest::At(1)]);
        // banned, the other
        assert_eq!(largest_outputs(&p, &x, 1, &b, &[&[1]]).unwrap(), vec![Largest::At(0)]);
        // an exact tie: both the same row
        let w: Vec<f32> = [raised.clone(), raised, vec![0.0; k]].concat();
        let p = PanelMatrix::pack_halves(&w, 3, k);
        assert_eq!(largest_outputs(&p, &x, 1, &b, &[&[]]).unwrap(), vec![Largest::Unsettled]);
    }

    #[test]
    fn minus_infinite_biases_never_win_and_other_non_finite_values_unsettle() {
        let (n, k) = (40, 16);
        let (w, x) = (data(n * k, 9), data(k, 10));
        let p = PanelMatrix::pack_halves(&w, n, k);
        let mut b = vec![0f32; n];
        let full = p.matmul(&x, 1, &b, crate::kernels::BiasActivation::Identity);
        let top = full_largest(&full, &[]).unwrap();
        b[top as usize] = f32::NEG_INFINITY;
        let full = p.matmul(&x, 1, &b, crate::kernels::BiasActivation::Identity);
        assert_eq!(
            largest_outputs(&p, &x, 1, &b, &[&[]]).unwrap(),
            vec![Largest::At(full_largest(&full, &[]).unwrap())]
        );
        b[0] = f32::NAN;
        assert_eq!(largest_outputs(&p, &x, 1, &b, &[&[]]).unwrap(), vec![Largest::Unsettled]);
        assert_eq!(largest_outputs(&p, &[f32::INFINITY; 16], 1, &[0.0; 40], &[&[]]).unwrap(), vec![Largest::Unsettled]);
        // every output banned
        let all: Vec<u32> = (0..n as u32).collect();
        assert_eq!(largest_outputs(&p, &x, 1, &[0.0; 40], &[&all]).unwrap(), vec![Largest::Unsettled]);
        // a matrix not packed in halves
        assert_eq!(largest_outputs(&PanelMatrix::pack(&w, n, k), &x, 1, &[0.0; 40], &[&[]]), None);
    }
}
