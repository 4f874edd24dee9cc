//! Top-K ranking metrics for one user, as pure functions of the ranked list and the relevant set.
//! Definitions (binary relevance, n = number of relevant items):
//! - Recall@K = hits in the top K / n (not min(K, n));
//! - Precision@K = hits in the top K / K;
//! - HR@K = 1 if any relevant item is in the top K;
//! - NDCG@K = Σ_{hit at rank r ≤ K} 1/log2(r + 1) / Σ_{r ≤ min(K, n)} 1/log2(r + 1);
//! - MRR = 1 / rank of the best-ranked relevant item in the full ranking.
//!
//! Tied scores (McSherry & Najork 2008, "Computing information retrieval performance measures
//! efficiently in the presence of tied scores", ECIR): a ranking is a sequence of tie groups, and every
//! metric is its expectation over a uniformly random order within each group (`expected_*`). A model
//! that scores everything equal thus scores what a random ranking scores, never what lowest-id
//! tie-breaking happens to give; without ties the values are the plain definitions above. The rank of
//! the best relevant item is its expected rank, `above + (tied + 1) / (tied_hits + 1)`: with one relevant
//! item in its group this is PyKEEN's "realistic" rank (the mean of the optimistic and pessimistic ones).

/// `hits[r]` is whether the item at rank r + 1 is relevant.
pub fn recall_at_k(hits: &[bool], k: usize, n_relevant: usize) -> f64 {
    if n_relevant == 0 {
        return 0.0;
    }
    count(hits, k) as f64 / n_relevant as f64
}

pub fn precision_at_k(hits: &[bool], k: usize) -> f64 {
    count(hits, k) as f64 / k as f64
}

pub fn hit_rate_at_k(hits: &[bool], k: usize) -> f64 {
    f64::from(u8::from(count(hits, k) > 0))
}

pub fn ndcg_at_k(hits: &[bool], k: usize, n_relevant: usize) -> f64 {
    let dcg: f64 = hits
        .iter()
        .take(k)
        .enumerate()
        .filter(|(_, h)| **h)
        .map(|(r, _)| discount(r))
        .sum();
    let ideal: f64 = (0..k.min(n_relevant)).map(discount).sum();
    if ideal == 0.0 {
        0.0
    } else {
        dcg / ideal
    }
}

/// `first_rank` is 1-based (an expected rank may be fractional).
pub fn reciprocal_rank(first_rank: f64) -> f64 {
    1.0 / first_rank
}

/// A run of equally scored items in a ranking: `len` items, `hits` of them relevant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TieGroup {
    pub len: usize,
    pub hits: usize,
}

/// The groups of `items` ranked by `scores` (best first, equal scores adjacent), `relevant(i)` saying
/// which count. Appends to `out`.
pub fn tie_groups<T: Copy>(
    ranked: impl IntoIterator<Item = (f32, T)>,
    relevant: impl Fn(T) -> bool,
    out: &mut Vec<TieGroup>,
) {
    let mut last: Option<f32> = None;
    for (score, item) in ranked {
        let hit = usize::from(relevant(item));
        match (out.last_mut(), last) {
            (Some(g), Some(s)) if s == score => {
                g.len += 1;
                g.hits += hit;
            }
            _ => out.push(TieGroup { len: 1, hits: hit }),
        }
        last = Some(score);
    }
}

/// Expected relevant items among the first `k` (every group's hits spread evenly over its places).
pub fn expected_hits(groups: &[TieGroup], k: usize) -> f64 {
    let mut start = 0;
    let mut sum = 0.0;
    for g in groups.iter().filter(|g| g.len > 0) {
        if start >= k {
            break;
        }
        let places = (k - start).min(g.len);
        sum += g.hits as f64 * places as f64 / g.len as f64;
        start += g.len;
    }
    sum
}

/// Expected DCG at `k`: each relevant item of a group takes the mean discount of the group's places.
pub fn expected_dcg(groups: &[TieGroup], k: usize) -> f64 {
    let mut start = 0;
    let mut sum = 0.0;
    for g in groups.iter().filter(|g| g.len > 0) {
        if start >= k {
            break;
        }
        if g.hits > 0 {
            let discounts: f64 = (start..(start + g.len).min(k)).map(discount).sum();
            sum += g.hits as f64 / g.len as f64 * discounts;
        }
        start += g.len;
    }
    sum
}

/// The probability that a relevant item is among the first `k` (hypergeometric in the group that
/// straddles `k`).
pub fn hit_probability(groups: &[TieGroup], k: usize) -> f64 {
    let mut start = 0;
    for g in groups.iter().filter(|g| g.len > 0) {
        if start >= k {
            break;
        }
        let places = k - start;
        if g.hits > 0 {
            if places >= g.len || places > g.len - g.hits {
                return 1.0;
            }
            // P(none of `places` draws without replacement is one of the `hits`).
            let none: f64 = (0..places)
                .map(|j| (g.len - g.hits - j) as f64 / (g.len - j) as f64)
                .product();
            return 1.0 - none;
        }
        start += g.len;
    }
    0.0
}

/// Recall@K, NDCG@K, HR@K and precision@K of a tied ranking, in expectation (see the module doc).
pub fn expected_recall(groups: &[TieGroup], k: usize, n_relevant: usize) -> f64 {
    if n_relevant == 0 {
        return 0.0;
    }
    expected_hits(groups, k) / n_relevant as f64
}

pub fn expected_precision(groups: &[TieGroup], k: usize) -> f64 {
    expected_hits(groups, k) / k as f64
}

pub fn expected_ndcg(groups: &[TieGroup], k: usize, n_relevant: usize) -> f64 {
    let ideal: f64 = (0..k.min(n_relevant)).map(discount).sum();
    if ideal == 0.0 {
        0.0
    } else {
        expected_dcg(groups, k) / ideal
    }
}

/// The expected 1-based rank of the best relevant item: `above` items outrank it, and it shares its
/// score with `tied` items (itself included), `tied_hits` of them relevant.
pub fn expected_first_rank(above: usize, tied: usize, tied_hits: usize) -> f64 {
    above as f64 + (tied.max(1) + 1) as f64 / (tied_hits.max(1) + 1) as f64
}

fn count(hits: &[bool], k: usize) -> usize {
    hits.iter().take(k).filter(|h| **h).count()
}

fn discount(zero_based_rank: usize) -> f64 {
    1.0 / ((zero_based_rank + 2) as f64).log2()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HITS: [bool; 5] = [false, true, false, true, false]; // relevant at ranks 2 and 4

    #[test]
    fn hand_computed_cases() {
        // 3 relevant items, two of them at ranks 2 and 4.
        assert!((recall_at_k(&HITS, 5, 3) - 2.0 / 3.0).abs() < 1e-12);
        assert!((recall_at_k(&HITS, 2, 3) - 1.0 / 3.0).abs() < 1e-12);
        assert!((precision_at_k(&HITS, 4) - 0.5).abs() < 1e-12);
        assert_eq!(hit_rate_at_k(&HITS, 1), 0.0);
        assert_eq!(hit_rate_at_k(&HITS, 2), 1.0);
        let dcg = 1.0 / 3f64.log2() + 1.0 / 5f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2() + 0.5;
        assert!((ndcg_at_k(&HITS, 5, 3) - dcg / idcg).abs() < 1e-12);
        // Ideal DCG counts min(K, n) hits: with K = 1 only rank 1 matters.
        assert_eq!(ndcg_at_k(&HITS, 1, 3), 0.0);
        assert_eq!(ndcg_at_k(&[true], 1, 3), 1.0);
        assert_eq!(reciprocal_rank(4.0), 0.25);
    }

    fn singletons(hits: &[bool]) -> Vec<TieGroup> {
        let mut out = Vec::new();
        tie_groups(
            hits.iter().enumerate().map(|(i, &h)| (-(i as f32), h)),
            |h| h,
            &mut out,
        );
        out
    }

    #[test]
    fn without_ties_the_expectations_are_the_plain_metrics() {
        let g = singletons(&HITS);
        for k in 1..=5 {
            assert!((expected_recall(&g, k, 3) - recall_at_k(&HITS, k, 3)).abs() < 1e-12);
            assert!((expected_ndcg(&g, k, 3) - ndcg_at_k(&HITS, k, 3)).abs() < 1e-12);
            assert_eq!(hit_probability(&g, k), hit_rate_at_k(&HITS, k));
            assert!((expected_precision(&g, k) - precision_at_k(&HITS, k)).abs() < 1e-12);
        }
        assert_eq!(expected_first_rank(1, 1, 1), 2.0);
    }

    /// Every order of `groups`' ties, as hit lists.
    fn every_order(groups: &[TieGroup]) -> Vec<Vec<bool>> {
        let mut orders: Vec<Vec<bool>> = vec![Vec::new()];
        for g in groups {
            let mut next = Vec::new();
            for o in &orders {
                for mask in 0u32..(1 << g.len) {
                    if mask.count_ones() as usize == g.hits {
                        let mut o = o.clone();
                        o.extend((0..g.len).map(|j| mask >> j & 1 == 1));
                        next.push(o);
                    }
                }
            }
            orders = next;
        }
        orders
    }

    /// Every metric of a tied ranking is the mean over every order of its ties (enumerated here).
    #[test]
    fn tied_metrics_are_the_mean_over_every_order_of_the_ties() {
        for groups in [
            vec![
                TieGroup { len: 1, hits: 1 },
                TieGroup { len: 5, hits: 2 },
                TieGroup { len: 3, hits: 1 },
            ],
            vec![TieGroup { len: 4, hits: 0 }, TieGroup { len: 6, hits: 3 }],
        ] {
            let orders = every_order(&groups);
            let mean = |f: &dyn Fn(&[bool]) -> f64| {
                orders.iter().map(|o| f(o)).sum::<f64>() / orders.len() as f64
            };
            let n_relevant = 5; // one relevant item is outside the ranking
            for k in 1..=10 {
                let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-12, "k = {k}: {a} vs {b}");
                close(
                    expected_recall(&groups, k, n_relevant),
                    mean(&|o| recall_at_k(o, k, n_relevant)),
                );
                close(
                    expected_ndcg(&groups, k, n_relevant),
                    mean(&|o| ndcg_at_k(o, k, n_relevant)),
                );
                close(
                    expected_precision(&groups, k),
                    mean(&|o| precision_at_k(o, k)),
                );
                close(hit_probability(&groups, k), mean(&|o| hit_rate_at_k(o, k)));
            }
        }
        // The best relevant item among 5 tied with 2 relevant, after 3 others: the mean over orders.
        let orders = every_order(&[TieGroup { len: 5, hits: 2 }]);
        let mean_first = orders
            .iter()
            .map(|o| (3 + 1 + o.iter().position(|&h| h).unwrap()) as f64)
            .sum::<f64>()
            / orders.len() as f64;
        assert!((expected_first_rank(3, 5, 2) - mean_first).abs() < 1e-12);
    }

    #[test]
    fn a_ranking_of_all_ties_scores_chance_never_the_lowest_ids() {
        // 1000 items all tied, 10 relevant: recall@20 = 20 / 1000, MRR = 11 / 1001.
        let g = [TieGroup {
            len: 1000,
            hits: 10,
        }];
        assert!((expected_recall(&g, 20, 10) - 0.02).abs() < 1e-12);
        assert!((expected_precision(&g, 20) - 0.01).abs() < 1e-12);
        assert!((reciprocal_rank(expected_first_rank(0, 1000, 10)) - 11.0 / 1001.0).abs() < 1e-12);
        assert!(hit_probability(&g, 20) < 0.2);
    }

    #[test]
    fn a_perfect_ranking_scores_one() {
        let hits = [true, true, false];
        assert_eq!(ndcg_at_k(&hits, 3, 2), 1.0);
        assert_eq!(recall_at_k(&hits, 3, 2), 1.0);
    }
}
