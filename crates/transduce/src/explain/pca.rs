//! Principal components of a few vectors (the encoder's outputs), by power iteration.

/// Projects `rows` (each of the same length) on their first two principal components.
/// Returns the 2-D points and the share of variance each component explains.
pub fn project_2d(rows: &[Vec<f32>]) -> (Vec<[f32; 2]>, [f32; 2]) {
    let n = rows.len();
    let d = rows.first().map_or(0, Vec::len);
    if n == 0 || d == 0 {
        return (vec![[0.0; 2]; n], [0.0; 2]);
    }
    let mean: Vec<f64> = (0..d).map(|j| rows.iter().map(|r| r[j] as f64).sum::<f64>() / n as f64).collect();
    let centred: Vec<Vec<f64>> =
        rows.iter().map(|r| r.iter().zip(&mean).map(|(&x, m)| x as f64 - m).collect()).collect();
    // covariance [d, d]
    let mut cov = vec![vec![0f64; d]; d];
    for r in &centred {
        for i in 0..d {
            for j in 0..d {
                cov[i][j] += r[i] * r[j];
            }
        }
    }
    let total: f64 = (0..d).map(|i| cov[i][i]).sum();
    let mut components: Vec<Vec<f64>> = Vec::new();
    let mut variances = [0f32; 2];
    for (c, variance) in variances.iter_mut().enumerate() {
        // a fixed, deterministic start not orthogonal to anything in particular
        let mut v: Vec<f64> = (0..d).map(|i| 1.0 + ((i * 7 + c * 13) % 11) as f64 / 11.0).collect();
        let mut lambda = 0.0;
        for _ in 0..500 {
            let mut w: Vec<f64> = (0..d).map(|i| (0..d).map(|j| cov[i][j] * v[j]).sum()).collect();
            for u in &components {
                let dot: f64 = w.iter().zip(u).map(|(a, b)| a * b).sum();
                w.iter_mut().zip(u).for_each(|(a, b)| *a -= dot * b);
            }
            let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm < 1e-12 {
                break;
            }
            lambda = norm;
            v = w.into_iter().map(|x| x / norm).collect();
        }
        *variance = if total > 0.0 { (lambda / total) as f32 } else { 0.0 };
        components.push(v);
    }
    let points = centred
        .iter()
        .map(|r| {
            let p = |u: &Vec<f64>| r.iter().zip(u).map(|(a, b)| a * b).sum::<f64>() as f32;
            [p(&components[0]), p(&components[1])]
        })
        .collect();
    (points, variances)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_main_directions() {
        // points spread along (1, 1, 0) a lot and along (1, -1, 0) a little
        let rows: Vec<Vec<f32>> = (-5..=5)
            .flat_map(|a| [-1.0f32, 1.0].map(move |b| vec![a as f32 + 0.1 * b, a as f32 - 0.1 * b, 0.0]))
            .collect();
        let (points, var) = project_2d(&rows);
        assert!(var[0] > 0.99 && var[1] > 0.0 && var[0] + var[1] > 0.999, "{var:?}");
        // the first coordinate orders the points along the main direction (up to sign)
        let first: Vec<f32> = points.iter().map(|p| p[0].abs()).collect();
        assert!((first[0] - 5.0 * 2f32.sqrt()).abs() < 0.05, "{first:?}");
        assert!(points.iter().all(|p| p[1].abs() < 0.2));
    }
}
