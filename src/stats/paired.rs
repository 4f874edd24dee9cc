//! Paired comparisons of two systems over the same units (queries within a seed, or seeds), as IR
//! evaluation makes them (Smucker, Allan & Carterette 2007): the paired t-test, the Wilcoxon signed-rank
//! test and Fisher's randomization (sign-flip) test, each two-sided, with the effect size (Cohen's d_z =
//! mean difference / its standard deviation) beside the p-value; and Holm's step-down correction across
//! the comparisons of a table.

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

use super::descriptive::Summary;

/// One paired comparison: differences d = a − b.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairedTest {
    pub n: usize,
    pub mean_difference: f64,
    /// Cohen's d_z: mean(d) / sd(d) (0 when every difference is equal to the mean, and it is 0).
    pub effect_size: f64,
    /// Two-sided p-value.
    pub p: f64,
}

fn differences(a: &[f64], b: &[f64]) -> Vec<f64> {
    assert_eq!(a.len(), b.len(), "paired samples have equal lengths");
    a.iter().zip(b).map(|(x, y)| x - y).collect()
}

fn effect(d: &[f64]) -> (f64, f64) {
    let s = Summary::of(d);
    let dz = if s.std > 0.0 {
        s.mean / s.std
    } else if s.mean == 0.0 {
        0.0
    } else {
        s.mean.signum() * f64::INFINITY
    };
    (s.mean, dz)
}

/// The paired t-test: t = mean(d) / (sd(d) / √n) with n − 1 degrees of freedom.
pub fn paired_t(a: &[f64], b: &[f64]) -> PairedTest {
    let d = differences(a, b);
    let n = d.len();
    let (mean, dz) = effect(&d);
    let s = Summary::of(&d);
    let p = if n < 2 {
        1.0
    } else if s.std == 0.0 {
        if mean == 0.0 {
            1.0
        } else {
            0.0
        }
    } else {
        let t = mean / (s.std / (n as f64).sqrt());
        let dist = StudentsT::new(0.0, 1.0, (n - 1) as f64).expect("n >= 2");
        2.0 * (1.0 - dist.cdf(t.abs()))
    };
    PairedTest {
        n,
        mean_difference: mean,
        effect_size: dz,
        p: p.clamp(0.0, 1.0),
    }
}

/// The Wilcoxon signed-rank test: zero differences dropped, tied |d| given their mean rank; exact null
/// distribution up to 25 non-zero differences without ties, else the normal approximation with the tie
/// correction of the variance and a continuity correction.
pub fn wilcoxon_signed_rank(a: &[f64], b: &[f64]) -> PairedTest {
    let d = differences(a, b);
    let (mean, dz) = effect(&d);
    let nonzero: Vec<f64> = d.iter().copied().filter(|x| *x != 0.0).collect();
    let n = nonzero.len();
    let result = |p: f64| PairedTest {
        n: d.len(),
        mean_difference: mean,
        effect_size: dz,
        p: p.clamp(0.0, 1.0),
    };
    if n == 0 {
        return result(1.0);
    }
    let abs: Vec<f64> = nonzero.iter().map(|x| x.abs()).collect();
    let ranks = super::ranks::rank_ascending(&abs);
    let w_plus: f64 = nonzero
        .iter()
        .zip(&ranks)
        .filter(|(x, _)| **x > 0.0)
        .map(|(_, r)| r)
        .sum();
    let tied = ranks.iter().any(|r| r.fract() != 0.0) || has_duplicates(&abs);
    let total = (n * (n + 1)) as f64 / 2.0;
    if n <= 25 && !tied {
        // Number of subsets of {1..n} with each rank sum (the null: every sign equally likely).
        let max = n * (n + 1) / 2;
        let mut counts = vec![0f64; max + 1];
        counts[0] = 1.0;
        for r in 1..=n {
            for s in (r..=max).rev() {
                counts[s] += counts[s - r];
            }
        }
        let all: f64 = counts.iter().sum();
        let w = w_plus.min(total - w_plus).round() as usize;
        let tail: f64 = counts[..=w].iter().sum();
        return result(2.0 * tail / all);
    }
    let mut ties_term = 0.0;
    let mut sorted = abs.clone();
    sorted.sort_by(f64::total_cmp);
    let mut i = 0;
    while i < sorted.len() {
        let j = sorted[i..].iter().take_while(|x| **x == sorted[i]).count();
        ties_term += (j * j * j - j) as f64;
        i += j;
    }
    let nf = n as f64;
    let var = nf * (nf + 1.0) * (2.0 * nf + 1.0) / 24.0 - ties_term / 48.0;
    let z = ((w_plus - total / 2.0).abs() - 0.5).max(0.0) / var.sqrt();
    let normal = Normal::new(0.0, 1.0).expect("standard normal");
    result(2.0 * (1.0 - normal.cdf(z)))
}

fn has_duplicates(xs: &[f64]) -> bool {
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    s.windows(2).any(|w| w[0] == w[1])
}

/// Fisher's randomization test of the mean difference: every sign pattern of the differences for up to
/// 16 pairs, else `resamples` random ones from `seed` (p = (hits + 1) / (resamples + 1)).
pub fn fisher_randomization(a: &[f64], b: &[f64], resamples: usize, seed: u64) -> PairedTest {
    let d = differences(a, b);
    let n = d.len();
    let (mean, dz) = effect(&d);
    let observed = d.iter().sum::<f64>().abs();
    // A flipped sum at least as extreme, up to rounding.
    let extreme = |s: f64| s.abs() >= observed - 1e-12 * observed.max(1.0);
    let p = if n == 0 {
        1.0
    } else if n <= 16 {
        let patterns = 1u32 << n;
        let hits = (0..patterns)
            .filter(|m| {
                let s: f64 = d
                    .iter()
                    .enumerate()
                    .map(|(i, x)| if m >> i & 1 == 1 { -x } else { *x })
                    .sum();
                extreme(s)
            })
            .count();
        hits as f64 / patterns as f64
    } else {
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let hits = (0..resamples)
            .filter(|_| {
                let s: f64 = d
                    .iter()
                    .map(|x| if rng.random::<bool>() { -x } else { *x })
                    .sum();
                extreme(s)
            })
            .count();
        (hits + 1) as f64 / (resamples + 1) as f64
    };
    PairedTest {
        n,
        mean_difference: mean,
        effect_size: dz,
        p,
    }
}

/// Holm's step-down adjusted p-values (Holm 1979), in the input order: the i-th smallest p is
/// multiplied by (m − i + 1), made monotone, capped at 1.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&i, &j| p[i].total_cmp(&p[j]));
    let mut adjusted = vec![0.0; m];
    let mut running = 0.0f64;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p[i]).min(1.0));
        adjusted[i] = running;
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_values() {
        // d = (1, 2, 3, 4, 5) − 0: t = 3 / (√2.5 / √5) = 4.2426, df 4: p = 0.01324 (scipy.stats.ttest_rel).
        let a = [1.0, 2.0, 3.0, 4.0, 5.0];
        let b = [0.0; 5];
        let t = paired_t(&a, &b);
        assert!((t.p - 0.013_24).abs() < 1e-4, "{}", t.p);
        assert!((t.effect_size - 3.0 / 2.5f64.sqrt()).abs() < 1e-12);
        // All five differences positive: exact two-sided Wilcoxon p = 2 / 32 (scipy: 0.0625).
        assert!((wilcoxon_signed_rank(&a, &b).p - 0.0625).abs() < 1e-12);
        // Sign flips of five positive differences: only all-plus and all-minus are as extreme.
        assert!((fisher_randomization(&a, &b, 0, 0).p - 2.0 / 32.0).abs() < 1e-12);
        // Holm on (0.01, 0.04, 0.03): sorted 0.01·3, 0.03·2, 0.04·1 → 0.03, 0.06, 0.06 (monotone).
        assert_eq!(holm(&[0.01, 0.04, 0.03]), vec![0.03, 0.06, 0.06]);
    }

    proptest! {
        #[test]
        fn identical_samples_are_never_significant(xs in proptest::collection::vec(-10f64..10.0, 1..30), seed in any::<u64>()) {
            for t in [paired_t(&xs, &xs), wilcoxon_signed_rank(&xs, &xs), fisher_randomization(&xs, &xs, 200, seed)] {
                prop_assert!(t.p >= 0.99, "{:?}", t);
                prop_assert_eq!(t.mean_difference, 0.0);
            }
        }

        #[test]
        fn holm_is_monotone_bounded_and_never_below_the_raw_p(p in proptest::collection::vec(0f64..1.0, 0..20)) {
            let adj = holm(&p);
            for i in 0..p.len() {
                prop_assert!(adj[i] >= p[i] && adj[i] <= 1.0);
                for j in 0..p.len() {
                    if p[i] <= p[j] {
                        prop_assert!(adj[i] <= adj[j] + 1e-15, "order kept");
                    }
                }
            }
        }

        #[test]
        fn p_values_are_probabilities_and_swapping_sides_keeps_them(
            pairs in proptest::collection::vec((-5f64..5.0, -5f64..5.0), 2..40),
            seed in any::<u64>(),
        ) {
            let (a, b): (Vec<f64>, Vec<f64>) = pairs.into_iter().unzip();
            for (x, y) in [
                (paired_t(&a, &b), paired_t(&b, &a)),
                (wilcoxon_signed_rank(&a, &b), wilcoxon_signed_rank(&b, &a)),
                (fisher_randomization(&a, &b, 300, seed), fisher_randomization(&b, &a, 300, seed)),
            ] {
                prop_assert!((0.0..=1.0).contains(&x.p));
                prop_assert!((x.p - y.p).abs() < 1e-9, "{:?} {:?}", x, y);
                prop_assert!((x.mean_difference + y.mean_difference).abs() < 1e-9);
            }
        }
    }
}
