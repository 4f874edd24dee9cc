//! What the sentinels must score under rec's full ranking and its sampled protocol, user by user: n
//! candidates left after the exclusions, h of them test items, n_t test items in all (an excluded one
//! is ranked last, at −inf).

use super::chance::{self, Sum};
use super::{Expectations, Plan};
use crate::data::Dataset;
use crate::metrics::RankingExcludes;
use crate::metrics::SAMPLED_NEGATIVES;

/// One metric's sums over users for the three sentinels.
#[derive(Default, Clone, Copy)]
struct Sums {
    constant: Sum,
    random: Sum,
    oracle: Sum,
}

pub fn plan(data: &Dataset, ks: &[usize], exclude: RankingExcludes) -> Plan {
    let names = crate::metrics::metric_names(ks);
    let mut sums = vec![Sums::default(); names.len()];
    let (mut users, mut candidates, mut in_train, mut excluded_targets) = (0usize, 0usize, 0, 0);
    let per_user = SAMPLED_NEGATIVES.min(data.n_items);
    for u in 0..data.n_queries {
        let targets = data.test_by_query.items(u);
        if targets.is_empty() {
            continue;
        }
        let mut excluded: Vec<u32> = data.train_by_query.items(u).to_vec();
        if exclude == RankingExcludes::TrainAndValid {
            excluded.extend_from_slice(data.valid_by_query.items(u));
        }
        excluded.sort_unstable();
        excluded.dedup();
        let n = data.n_items - excluded.len();
        let h = targets
            .iter()
            .filter(|t| excluded.binary_search(t).is_err())
            .count();
        users += 1;
        candidates += n;
        in_train += targets
            .iter()
            .filter(|&&t| data.train_by_query.contains(u, t))
            .count();
        excluded_targets += targets.len() - h;
        let mut j = 0;
        let mut add = |c: f64, r: (f64, f64), o: f64| {
            sums[j].constant.add(c, 0.0);
            sums[j].random.add(r.0, r.1);
            sums[j].oracle.add(o, 0.0);
            j += 1;
        };
        user_metrics(n, h, targets.len(), per_user, ks, &mut add);
    }
    let pick = |f: fn(&Sums) -> Sum| -> Vec<(String, super::Expected)> {
        names
            .iter()
            .zip(&sums)
            .map(|(m, s)| (m.clone(), f(s).expected()))
            .collect()
    };
    let exact =
        |v: Vec<(String, super::Expected)>| v.into_iter().map(|(m, e)| (m, e.mean)).collect();
    let random: Vec<_> = pick(|s| s.random)
        .into_iter()
        .filter(|(m, _)| !m.starts_with("sampled-"))
        .collect();
    let headline = format!("ndcg@{}", ks.iter().max().unwrap_or(&10));
    let chance_of = |m: &str| {
        random
            .iter()
            .find(|(n, _)| n == m)
            .map_or(f64::NAN, |(_, e)| e.mean)
    };
    let facts = vec![
        ("queries evaluated".into(), users.to_string()),
        (
            "candidates per query".into(),
            format!(
                "{:.1} on average (the pool of {} less the excluded items)",
                candidates as f64 / users.max(1) as f64,
                data.n_items
            ),
        ),
        (
            "the test ranking excludes".into(),
            format!("{} items of the user", exclude.as_str()),
        ),
        (
            "test pairs that are training pairs".into(),
            in_train.to_string(),
        ),
        (
            "test items excluded from their ranking (ranked last)".into(),
            excluded_targets.to_string(),
        ),
        (
            "ties".into(),
            "expectation over a random order (top-K), expected rank (MRR)".into(),
        ),
        (
            "a random ranker's expectation".into(),
            format!(
                "{headline} {:.4}, mrr {:.4}",
                chance_of(&headline),
                chance_of("mrr")
            ),
        ),
    ];
    Plan {
        constant: Expectations {
            exact: exact(pick(|s| s.constant)),
            chance: Vec::new(),
        },
        random: Expectations {
            exact: Vec::new(),
            chance: random,
        },
        oracle: Expectations {
            exact: exact(pick(|s| s.oracle)),
            chance: Vec::new(),
        },
        oracle_embedding: None,
        oracle_relevant: data.test_by_query.clone(),
        facts,
        unchecked: vec![
            "the sampled protocol under the random scorer (its short lists are the evaluator's own)".into(),
        ],
    }
}

/// One user's (constant, random mean and variance, oracle) per metric, in `metric_names` order, from
/// `chance` alone (never from the evaluation's own tie code). The constant scorer ties every candidate,
/// so its top-K metrics are the random order's means and its rank (h + 1) / (n + 1)-th's reciprocal;
/// the oracle ranks the h test items first. The short list holds `per_user` negatives and every test
/// item, the excluded ones last.
fn user_metrics(
    n: usize,
    h: usize,
    n_t: usize,
    per_user: usize,
    ks: &[usize],
    add: &mut dyn FnMut(f64, (f64, f64), f64),
) {
    let nt = n_t as f64;
    for &k in ks {
        let (hits, var) = chance::hits(n, h, k);
        add(
            hits / nt,
            (hits / nt, var / (nt * nt)),
            k.min(h) as f64 / nt,
        );
    }
    for &k in ks {
        let (dcg, var) = chance::dcg(n, h, k);
        let ideal = chance::ideal_dcg(n_t, k);
        let oracle = chance::discounts(0, k.min(h)) / ideal;
        add(dcg / ideal, (dcg / ideal, var / (ideal * ideal)), oracle);
    }
    for &k in ks {
        let q = chance::hit_probability(n, h, k);
        add(q, (q, q * (1.0 - q)), f64::from(u8::from(h > 0 && k > 0)));
    }
    for &k in ks {
        let (hits, var) = chance::hits(n, h, k);
        let kf = k as f64;
        add(
            hits / kf,
            (hits / kf, var / (kf * kf)),
            k.min(h) as f64 / kf,
        );
    }
    // With every test item excluded, the best is ranked after all n.
    let (constant, oracle) = if h == 0 {
        (1.0 / (n + 1) as f64, 1.0 / (n + 1) as f64)
    } else {
        ((h + 1) as f64 / (n + 1) as f64, 1.0)
    };
    add(constant, chance::reciprocal_rank(n, h), oracle);
    // The short list: constant, the per_user + h tied first; oracle, the h test items, then the
    // negatives; the excluded test items last in both.
    let tied = per_user + h;
    let excluded = n_t - h;
    let last = |k: usize, from: usize| (k.saturating_sub(from)).min(excluded);
    for &k in ks {
        let constant = chance::hits(tied, h, k).0 + last(k, tied) as f64;
        let oracle = (k.min(h) + last(k, tied)) as f64;
        add(constant / nt, (0.0, 0.0), oracle / nt);
    }
    for &k in ks {
        let ideal = chance::ideal_dcg(n_t, k);
        let tail = chance::discounts(tied, tied + last(k, tied));
        let constant = chance::dcg(tied, h, k).0 + tail;
        let oracle = chance::discounts(0, k.min(h)) + tail;
        add(constant / ideal, (0.0, 0.0), oracle / ideal);
    }
}
