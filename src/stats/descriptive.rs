//! Mean, sample standard deviation, coefficient of variation, and the percentile bootstrap interval of
//! the mean (Efron & Tibshirani 1993), resampled from a named, seeded generator so a report is
//! reproducible.

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

/// Summary of a sample (e.g. one metric of a cell group over seeds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n − 1); 0 for one value.
    pub std: f64,
    /// std / |mean| (NaN when the mean is 0).
    pub cv: f64,
}

impl Summary {
    pub fn of(xs: &[f64]) -> Summary {
        let n = xs.len();
        let mean = if n == 0 {
            f64::NAN
        } else {
            xs.iter().sum::<f64>() / n as f64
        };
        let std = if n < 2 {
            0.0
        } else {
            (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        };
        Summary {
            n,
            mean,
            std,
            cv: std / mean.abs(),
        }
    }
}

/// A two-sided interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub lower: f64,
    pub upper: f64,
}

/// Percentile bootstrap interval of the mean at `level` (e.g. 0.95) from `resamples` resamples drawn
/// with `seed`. One value gives the degenerate interval [x, x].
pub fn bootstrap_mean_ci(xs: &[f64], level: f64, resamples: usize, seed: u64) -> Interval {
    assert!(!xs.is_empty(), "a bootstrap needs data");
    assert!(level > 0.0 && level < 1.0, "level in (0, 1)");
    let n = xs.len();
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let mut means: Vec<f64> = (0..resamples.max(1))
        .map(|_| (0..n).map(|_| xs[rng.random_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let alpha = (1.0 - level) / 2.0;
    Interval {
        lower: quantile_sorted(&means, alpha),
        upper: quantile_sorted(&means, 1.0 - alpha),
    }
}

/// The p-quantile of sorted values, linear between order statistics.
pub fn quantile_sorted(sorted: &[f64], p: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * p.clamp(0.0, 1.0);
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hand_computed_summary() {
        let s = Summary::of(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(s.mean, 2.5);
        assert!((s.std - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert!((s.cv - s.std / 2.5).abs() < 1e-12);
        assert_eq!(Summary::of(&[7.0]).std, 0.0);
    }

    proptest! {
        #[test]
        fn the_interval_is_ordered_within_the_range_and_contains_the_mean(
            xs in proptest::collection::vec(-1e3f64..1e3, 1..12),
            seed in any::<u64>(),
        ) {
            let ci = bootstrap_mean_ci(&xs, 0.95, 500, seed);
            let mean = Summary::of(&xs).mean;
            let (min, max) = xs.iter().fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
            prop_assert!(ci.lower <= ci.upper);
            prop_assert!(ci.lower >= min - 1e-9 && ci.upper <= max + 1e-9);
            // The sample mean lies inside its own bootstrap interval (the resampled means straddle it).
            prop_assert!(ci.lower <= mean + 1e-9 && mean - 1e-9 <= ci.upper);
            prop_assert_eq!(ci, bootstrap_mean_ci(&xs, 0.95, 500, seed), "seeded: reproducible");
        }
    }
}
