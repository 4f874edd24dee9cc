//! What a ranking of uniformly random order scores, exactly: the mean and variance of each metric for
//! one query with `n` candidates of which `h` are relevant. The audit compares the `Constant` sentinel
//! (one tie: the metrics' tie rule) and the `Hashed` one (a random order) with these. Written apart
//! from the evaluation's own code (`metrics::ranking`), so that a defect there cannot hide here.

/// A metric's expected value over the evaluated queries and the standard error of their mean.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Expected {
    pub mean: f64,
    pub se: f64,
}

/// Running sums over queries of one metric's mean and variance.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sum {
    mean: f64,
    var: f64,
    n: usize,
}

impl Sum {
    pub fn add(&mut self, mean: f64, var: f64) {
        self.mean += mean;
        self.var += var.max(0.0);
        self.n += 1;
    }

    pub fn expected(&self) -> Expected {
        let n = self.n.max(1) as f64;
        Expected {
            mean: self.mean / n,
            se: self.var.sqrt() / n,
        }
    }
}

/// Mean and variance of the reciprocal rank of the first of `h` relevant items among `n` in a random
/// order: P(R = r) = C(n − r, h − 1) / C(n, h).
pub fn reciprocal_rank(n: usize, h: usize) -> (f64, f64) {
    if h == 0 || n == 0 {
        return (0.0, 0.0);
    }
    let (mut p, mut m1, mut m2) = (h as f64 / n as f64, 0.0, 0.0);
    for r in 1..=(n - h + 1) {
        let inv = 1.0 / r as f64;
        m1 += p * inv;
        m2 += p * inv * inv;
        // P(r + 1) / P(r) = (n − r − h + 1) / (n − r).
        if r < n {
            p *= (n - r - h + 1) as f64 / (n - r) as f64;
        }
        if p < 1e-17 * m1 {
            break;
        }
    }
    (m1, m2 - m1 * m1)
}

/// Mean and variance of the number of relevant items among the first `k` (hypergeometric).
pub fn hits(n: usize, h: usize, k: usize) -> (f64, f64) {
    let m = k.min(n) as f64;
    let (n, h) = (n as f64, h as f64);
    if n < 1.0 {
        return (0.0, 0.0);
    }
    let p = h / n;
    let var = if n > 1.0 {
        m * p * (1.0 - p) * (n - m) / (n - 1.0)
    } else {
        0.0
    };
    (m * p, var)
}

/// Mean and variance of DCG at `k` (binary gains).
pub fn dcg(n: usize, h: usize, k: usize) -> (f64, f64) {
    let m = k.min(n);
    if n == 0 {
        return (0.0, 0.0);
    }
    let d: Vec<f64> = (0..m).map(|r| 1.0 / ((r + 2) as f64).log2()).collect();
    let (s1, s2) = (d.iter().sum::<f64>(), d.iter().map(|x| x * x).sum::<f64>());
    let p = h as f64 / n as f64;
    let same = if n > 1 {
        p * (h as f64 - 1.0) / (n as f64 - 1.0)
    } else {
        0.0
    };
    (p * s1, s2 * p * (1.0 - p) + (s1 * s1 - s2) * (same - p * p))
}

/// Σ of the DCG discounts of the 0-based positions `from..to`.
pub fn discounts(from: usize, to: usize) -> f64 {
    (from..to).map(|r| 1.0 / ((r + 2) as f64).log2()).sum()
}

/// The ideal DCG at `k` of `n_relevant` relevant items.
pub fn ideal_dcg(n_relevant: usize, k: usize) -> f64 {
    discounts(0, k.min(n_relevant))
}

/// The probability that one of `h` relevant items is among the first `k` of `n` (hypergeometric).
pub fn hit_probability(n: usize, h: usize, k: usize) -> f64 {
    let m = k.min(n);
    if h == 0 {
        return 0.0;
    }
    if m + h > n {
        return 1.0;
    }
    1.0 - (0..m)
        .map(|j| (n - h - j) as f64 / (n - j) as f64)
        .product::<f64>()
}

/// Harmonic sums H(n) = Σ 1/r and H₂(n) = Σ 1/r² for r = 1..n.
pub fn harmonic(n: usize) -> (f64, f64) {
    (1..=n).fold((0.0, 0.0), |(a, b), r| {
        let x = 1.0 / r as f64;
        (a + x, b + x * x)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every order of h relevant among n, enumerated.
    fn orders(n: usize, h: usize) -> Vec<Vec<bool>> {
        (0u32..1 << n)
            .filter(|m| m.count_ones() as usize == h)
            .map(|m| (0..n).map(|j| m >> j & 1 == 1).collect())
            .collect()
    }

    fn moments(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        (mean, xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n)
    }

    #[test]
    fn closed_forms_match_the_enumeration_of_every_order() {
        let close = |a: (f64, f64), b: (f64, f64), what: &str| {
            assert!(
                (a.0 - b.0).abs() < 1e-12 && (a.1 - b.1).abs() < 1e-12,
                "{what}: {a:?} vs {b:?}"
            )
        };
        for (n, h) in [(7, 1), (7, 3), (9, 4), (5, 5)] {
            let all = orders(n, h);
            let first = |o: &Vec<bool>| 1.0 / (1 + o.iter().position(|&x| x).unwrap()) as f64;
            close(
                reciprocal_rank(n, h),
                moments(&all.iter().map(first).collect::<Vec<_>>()),
                "rr",
            );
            for k in [1, 3, 6] {
                let count = |o: &Vec<bool>| o.iter().take(k).filter(|&&x| x).count() as f64;
                close(
                    hits(n, h, k),
                    moments(&all.iter().map(count).collect::<Vec<_>>()),
                    "hits",
                );
                let g = |o: &Vec<bool>| {
                    o.iter()
                        .take(k)
                        .enumerate()
                        .filter(|(_, &x)| x)
                        .map(|(r, _)| 1.0 / ((r + 2) as f64).log2())
                        .sum::<f64>()
                };
                close(
                    dcg(n, h, k),
                    moments(&all.iter().map(g).collect::<Vec<_>>()),
                    "dcg",
                );
                let any = |o: &Vec<bool>| f64::from(u8::from(o.iter().take(k).any(|&x| x)));
                close(
                    (hit_probability(n, h, k), 0.0),
                    (moments(&all.iter().map(any).collect::<Vec<_>>()).0, 0.0),
                    "hr",
                );
            }
        }
        let (h1, h2) = harmonic(3);
        assert!((h1 - 11.0 / 6.0).abs() < 1e-12 && (h2 - 49.0 / 36.0).abs() < 1e-12);
    }
}
