//! Comparisons across data sets by ranks (Demšar, "Statistical Comparisons of Classifiers over Multiple
//! Data Sets", JMLR 2006): average ranks, the Friedman test (with Iman and Davenport's F), the Nemenyi
//! critical difference, and Kendall's coefficient of concordance W (how far seeds, or data sets, agree
//! on the order of samplers).

use statrs::distribution::{ChiSquared, ContinuousCDF, FisherSnedecor};

/// Ranks of `xs` from 1 (smallest), ties at their mean rank.
pub fn rank_ascending(xs: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..xs.len()).collect();
    order.sort_by(|&i, &j| xs[i].total_cmp(&xs[j]));
    let mut ranks = vec![0.0; xs.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && xs[order[j + 1]] == xs[order[i]] {
            j += 1;
        }
        let mean = (i + j) as f64 / 2.0 + 1.0;
        for &o in &order[i..=j] {
            ranks[o] = mean;
        }
        i = j + 1;
    }
    ranks
}

/// Average rank of each column over the rows of `scores` (rows: data sets, columns: samplers; higher is
/// better, so the best gets rank 1), ties at their mean rank.
pub fn average_ranks(scores: &[Vec<f64>]) -> Vec<f64> {
    let k = scores.first().map_or(0, |r| r.len());
    let mut sum = vec![0.0; k];
    for row in scores {
        assert_eq!(row.len(), k, "every data set scores every sampler");
        let negated: Vec<f64> = row.iter().map(|x| -x).collect();
        for (s, r) in sum.iter_mut().zip(rank_ascending(&negated)) {
            *s += r;
        }
    }
    sum.iter().map(|s| s / scores.len().max(1) as f64).collect()
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Friedman {
    /// χ²_F with k − 1 degrees of freedom.
    pub chi2: f64,
    pub p_chi2: f64,
    /// Iman and Davenport's F_F with (k − 1, (k − 1)(N − 1)) degrees of freedom (less conservative).
    pub f: f64,
    pub p_f: f64,
}

/// The Friedman test from the average ranks of k samplers over `n` data sets.
pub fn friedman(average_ranks: &[f64], n: usize) -> Friedman {
    let k = average_ranks.len() as f64;
    let nf = n as f64;
    let sum_sq: f64 = average_ranks.iter().map(|r| r * r).sum();
    let chi2 = 12.0 * nf / (k * (k + 1.0)) * (sum_sq - k * (k + 1.0) * (k + 1.0) / 4.0);
    let f = (nf - 1.0) * chi2 / (nf * (k - 1.0) - chi2);
    let p_chi2 = ChiSquared::new(k - 1.0).map_or(f64::NAN, |d| 1.0 - d.cdf(chi2));
    let p_f =
        FisherSnedecor::new(k - 1.0, (k - 1.0) * (nf - 1.0)).map_or(f64::NAN, |d| 1.0 - d.cdf(f));
    Friedman {
        chi2,
        p_chi2,
        f,
        p_f,
    }
}

/// Critical values q_α of the two-tailed Nemenyi test for k = 2..=20 samplers (the studentized range
/// statistic with infinite degrees of freedom divided by √2): Demšar 2006, Table 5, for k ≤ 10, and
/// `scipy.stats.studentized_range.ppf(1 − α, k, ∞) / √2` for k = 11..=20.
const Q_05: [f64; 19] = [
    1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164, 3.219, 3.268, 3.313, 3.354,
    3.391, 3.426, 3.458, 3.489, 3.517, 3.544,
];
const Q_10: [f64; 19] = [
    1.645, 2.052, 2.291, 2.459, 2.589, 2.693, 2.780, 2.855, 2.920, 2.978, 3.030, 3.077, 3.120,
    3.159, 3.196, 3.230, 3.261, 3.291, 3.319,
];

/// The Nemenyi critical difference of average ranks for k ≥ 2 samplers over n data sets at level α:
/// CD = q_α √(k (k + 1) / (6 n)), with q_α from Demšar's table for k ≤ 20 at α = 0.05 or 0.10 and
/// computed (`nemenyi_q`) otherwise. None for k < 2 or α outside (0, 0.5].
pub fn nemenyi_cd(k: usize, n: usize, alpha: f64) -> Option<f64> {
    if k < 2 || n == 0 || !(alpha > 0.0 && alpha <= 0.5) {
        return None;
    }
    let table = if (alpha - 0.05).abs() < 1e-9 {
        Some(&Q_05)
    } else if (alpha - 0.10).abs() < 1e-9 {
        Some(&Q_10)
    } else {
        None
    };
    let q = table
        .and_then(|t| t.get(k - 2).copied())
        .unwrap_or_else(|| nemenyi_q(k, alpha));
    Some(q * ((k * (k + 1)) as f64 / (6.0 * n as f64)).sqrt())
}

/// q_α of the Nemenyi test for k samplers: the (1 − α) quantile of the range of k independent standard
/// normals (the studentized range with infinite degrees of freedom), divided by √2. The range's CDF,
/// P(W ≤ w) = k ∫ φ(z) (Φ(z + w) − Φ(z))^(k−1) dz, is integrated by Simpson's rule and inverted by
/// bisection.
pub fn nemenyi_q(k: usize, alpha: f64) -> f64 {
    use statrs::distribution::{Continuous, ContinuousCDF, Normal};
    let normal = Normal::new(0.0, 1.0).expect("the standard normal");
    let range_cdf = |w: f64| {
        let (lo, hi, steps) = (-9.0, 9.0, 1800);
        let h = (hi - lo) / steps as f64;
        let f = |z: f64| {
            normal.pdf(z)
                * (normal.cdf(z + w) - normal.cdf(z))
                    .max(0.0)
                    .powi(k as i32 - 1)
        };
        let mut sum = f(lo) + f(hi);
        for i in 1..steps {
            sum += f(lo + i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
        }
        k as f64 * sum * h / 3.0
    };
    let (mut lo, mut hi) = (0.0, 20.0);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if range_cdf(mid) < 1.0 - alpha {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi) / std::f64::consts::SQRT_2
}

/// Kendall's W of m rankings (rows: raters such as seeds; columns: the objects ranked, such as
/// samplers; higher score = better), with the correction for ties: 1 when every rater orders the
/// objects alike, near 0 when they agree no more than chance.
pub fn kendalls_w(scores: &[Vec<f64>]) -> f64 {
    let m = scores.len() as f64;
    let n = scores.first().map_or(0, |r| r.len()) as f64;
    if m < 1.0 || n < 2.0 {
        return f64::NAN;
    }
    let mut totals = vec![0.0; n as usize];
    let mut ties = 0.0;
    for row in scores {
        let negated: Vec<f64> = row.iter().map(|x| -x).collect();
        let ranks = rank_ascending(&negated);
        for (t, r) in totals.iter_mut().zip(&ranks) {
            *t += r;
        }
        let mut sorted = ranks.clone();
        sorted.sort_by(f64::total_cmp);
        let mut i = 0;
        while i < sorted.len() {
            let g = sorted[i..].iter().take_while(|x| **x == sorted[i]).count() as f64;
            ties += g * g * g - g;
            i += g as usize;
        }
    }
    let mean = totals.iter().sum::<f64>() / n;
    let s: f64 = totals.iter().map(|t| (t - mean).powi(2)).sum();
    let denominator = m * m * (n * n * n - n) - m * ties;
    if denominator <= 0.0 {
        // Every rater tied every object: nothing to agree on.
        return f64::NAN;
    }
    12.0 * s / denominator
}

/// The bars of a critical-difference diagram (Demšar 2006, Fig. 1): with `ranks` sorted ascending, the
/// maximal runs [first, last] (indices into the sorted order) whose ranks span less than `cd`, i.e. the
/// groups of samplers no pair of which differs significantly. A run inside another is left out; a
/// sampler in no run of two is a group of its own and gets no bar.
pub fn cd_groups(sorted_ranks: &[f64], cd: f64) -> Vec<(usize, usize)> {
    let mut groups: Vec<(usize, usize)> = Vec::new();
    for first in 0..sorted_ranks.len() {
        let last = (first..sorted_ranks.len())
            .take_while(|&j| sorted_ranks[j] - sorted_ranks[first] < cd)
            .last()
            .unwrap_or(first);
        if last > first && groups.last().is_none_or(|&(_, l)| last > l) {
            groups.push((first, last));
        }
    }
    groups
}

/// Spearman's rank correlation of two paired samples (ties share their mean rank): the Pearson
/// correlation of their ranks. NaN when either is constant.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let (ra, rb) = (rank_ascending(a), rank_ascending(b));
    let n = ra.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma).powi(2);
        sbb += (y - mb).powi(2);
    }
    sab / (saa * sbb).sqrt()
}

/// Kendall's τ-b of two paired samples (ties in either are accounted for). NaN when either is constant.
pub fn kendall_tau(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (mut concordant, mut discordant, mut ties_a, mut ties_b) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for i in 0..n {
        for j in i + 1..n {
            let (da, db) = (a[i] - a[j], b[i] - b[j]);
            match (da == 0.0, db == 0.0) {
                (true, true) => {}
                (true, false) => ties_a += 1.0,
                (false, true) => ties_b += 1.0,
                (false, false) if (da > 0.0) == (db > 0.0) => concordant += 1.0,
                _ => discordant += 1.0,
            }
        }
    }
    (concordant - discordant)
        / ((concordant + discordant + ties_a) * (concordant + discordant + ties_b)).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn demsars_worked_example() {
        // Demšar 2006, §3.2.2: four algorithms on 14 data sets, average ranks 3.143, 2.000, 2.893,
        // 1.964: χ²_F = 9.28, F_F = 3.69, and at α = 0.05 the critical difference is 1.25 (q = 2.569).
        let f = friedman(&[3.143, 2.000, 2.893, 1.964], 14);
        assert!((f.chi2 - 9.28).abs() < 0.01, "{}", f.chi2);
        assert!((f.f - 3.69).abs() < 0.01, "{}", f.f);
        assert!(f.p_f < 0.05 && f.p_chi2 < 0.05);
        let cd = nemenyi_cd(4, 14, 0.05).unwrap();
        assert!((cd - 1.25).abs() < 0.005, "{cd}");
        assert!(nemenyi_cd(1, 14, 0.05).is_none() && nemenyi_cd(4, 14, 0.7).is_none());
    }

    #[test]
    fn computed_nemenyi_quantiles_match_the_published_table() {
        for (k, (q05, q10)) in (2..).zip(Q_05.iter().zip(&Q_10)) {
            assert!(
                (nemenyi_q(k, 0.05) - q05).abs() < 0.002,
                "k = {k}: {}",
                nemenyi_q(k, 0.05)
            );
            assert!(
                (nemenyi_q(k, 0.10) - q10).abs() < 0.002,
                "k = {k}: {}",
                nemenyi_q(k, 0.10)
            );
        }
        // Beyond the table: larger k, larger q; a smaller α, a larger q.
        assert!(nemenyi_q(23, 0.05) > Q_05[18] && nemenyi_q(23, 0.01) > nemenyi_q(23, 0.05));
    }

    #[test]
    fn demsars_cd_diagram_groups() {
        // The same example drawn as a CD diagram: sorted, C4.5+m+cf 1.964, C4.5+m 2.000, C4.5+cf 2.893,
        // C4.5 3.143. At α = 0.10 (CD = 1.12) Demšar finds C4.5+m+cf better than C4.5 and nothing else:
        // two bars, {m+cf, m, cf} and {cf, C4.5}. At α = 0.05 (CD = 1.25) one bar joins all four.
        let sorted = [1.964, 2.000, 2.893, 3.143];
        let cd10 = nemenyi_cd(4, 14, 0.10).unwrap();
        assert!((cd10 - 1.12).abs() < 0.005, "{cd10}");
        assert_eq!(cd_groups(&sorted, cd10), vec![(0, 2), (2, 3)]);
        assert_eq!(
            cd_groups(&sorted, nemenyi_cd(4, 14, 0.05).unwrap()),
            vec![(0, 3)]
        );
        assert_eq!(
            cd_groups(&[1.0, 3.0, 5.0], 1.0),
            vec![],
            "all apart: no bars"
        );
    }

    #[test]
    fn rank_correlations_of_known_orderings() {
        let a = [1.0, 2.0, 3.0, 4.0];
        assert!((spearman(&a, &[10.0, 20.0, 30.0, 40.0]) - 1.0).abs() < 1e-12);
        assert!((kendall_tau(&a, &[4.0, 3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        // One swapped pair out of six: τ = (5 − 1) / 6.
        assert!((kendall_tau(&a, &[1.0, 3.0, 2.0, 4.0]) - 4.0 / 6.0).abs() < 1e-12);
        // Spearman with ranks d² = 2: 1 − 6·2 / (4·15) = 0.8.
        assert!((spearman(&a, &[1.0, 3.0, 2.0, 4.0]) - 0.8).abs() < 1e-12);
        assert!(spearman(&a, &[1.0; 4]).is_nan());
    }

    #[test]
    fn ranks_average_ties_and_the_best_ranks_first() {
        assert_eq!(
            rank_ascending(&[3.0, 1.0, 3.0, 2.0]),
            vec![3.5, 1.0, 3.5, 2.0]
        );
        let r = average_ranks(&[vec![0.9, 0.5, 0.7], vec![0.8, 0.8, 0.1]]);
        assert_eq!(r, vec![1.25, 2.25, 2.5]);
    }

    proptest! {
        #[test]
        fn w_is_one_when_raters_agree_and_within_zero_and_one(
            base in proptest::collection::vec(0f64..1.0, 2..8),
            raters in 1usize..6,
            noise in proptest::collection::vec(proptest::collection::vec(0f64..1.0, 8), 1..6),
        ) {
            let agree: Vec<Vec<f64>> = (0..raters).map(|_| base.clone()).collect();
            let distinct = {
                let mut s = base.clone();
                s.sort_by(f64::total_cmp);
                s.windows(2).all(|w| w[0] != w[1])
            };
            if distinct {
                prop_assert!((kendalls_w(&agree) - 1.0).abs() < 1e-9);
            }
            let k = base.len();
            let random: Vec<Vec<f64>> = noise.iter().map(|r| r[..k].to_vec()).collect();
            let w = kendalls_w(&random);
            prop_assert!(w.is_nan() || (-1e-9..=1.0 + 1e-9).contains(&w), "{w}");
        }

        #[test]
        fn rank_correlations_are_within_minus_one_and_one_and_symmetric(
            pairs in proptest::collection::vec((0f64..1.0, 0f64..1.0), 3..12),
        ) {
            let (a, b): (Vec<f64>, Vec<f64>) = pairs.into_iter().unzip();
            for (x, y) in [(spearman(&a, &b), spearman(&b, &a)), (kendall_tau(&a, &b), kendall_tau(&b, &a))] {
                prop_assert!(x.is_nan() || (-1.0 - 1e-9..=1.0 + 1e-9).contains(&x), "{x}");
                prop_assert!(x.is_nan() && y.is_nan() || (x - y).abs() < 1e-12);
            }
            prop_assert!((kendall_tau(&a, &a) - 1.0).abs() < 1e-12 || kendall_tau(&a, &a).is_nan());
        }

        #[test]
        fn cd_groups_join_only_samplers_closer_than_the_cd(
            mut ranks in proptest::collection::vec(1f64..10.0, 2..12),
            cd in 0.1f64..4.0,
        ) {
            ranks.sort_by(f64::total_cmp);
            let groups = cd_groups(&ranks, cd);
            for &(first, last) in &groups {
                prop_assert!(first < last && ranks[last] - ranks[first] < cd);
            }
            // Every pair closer than the CD shares a bar; no bar lies inside another.
            for i in 0..ranks.len() {
                for j in i + 1..ranks.len() {
                    if ranks[j] - ranks[i] < cd {
                        prop_assert!(groups.iter().any(|&(f, l)| f <= i && j <= l), "{i} {j} {groups:?}");
                    }
                }
            }
            for w in groups.windows(2) {
                prop_assert!(w[0].0 < w[1].0 && w[0].1 < w[1].1);
            }
        }

        #[test]
        fn average_ranks_sum_to_k_k_plus_1_over_2(rows in proptest::collection::vec(proptest::collection::vec(0f64..1.0, 5), 1..10)) {
            let r = average_ranks(&rows);
            prop_assert!((r.iter().sum::<f64>() - 15.0).abs() < 1e-9);
        }
    }
}
