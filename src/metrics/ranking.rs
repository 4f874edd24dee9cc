//! Top-K ranking metrics for one user, as pure functions of the ranked list and the relevant set.
//! Definitions (binary relevance, n = number of relevant items):
//! - Recall@K = hits in the top K / n (not min(K, n));
//! - Precision@K = hits in the top K / K;
//! - HR@K = 1 if any relevant item is in the top K;
//! - NDCG@K = Σ_{hit at rank r ≤ K} 1/log2(r + 1) / Σ_{r ≤ min(K, n)} 1/log2(r + 1);
//! - MRR = 1 / rank of the best-ranked relevant item in the full ranking.

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

/// `first_rank` is 1-based.
pub fn reciprocal_rank(first_rank: usize) -> f64 {
    1.0 / first_rank as f64
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
        assert_eq!(reciprocal_rank(4), 0.25);
    }

    #[test]
    fn a_perfect_ranking_scores_one() {
        let hits = [true, true, false];
        assert_eq!(ndcg_at_k(&hits, 3, 2), 1.0);
        assert_eq!(recall_at_k(&hits, 3, 2), 1.0);
    }
}
