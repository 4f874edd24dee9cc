//! Full-ranking evaluation: every user with target items is scored against the whole item pool, the
//! items they already have (training, and validation when testing) are excluded, and the top K is
//! compared with the targets. Scoring runs in blocks of users, one matrix product per block, each block
//! sized so its score matrix and masks stay within `EVAL_BLOCK_BYTES` whatever the pool (a pool of a
//! million items is scored a few users at a time). A score that is not finite (a diverged model) is an
//! error, never a rank: NaN compares false with everything, which would rank a target first.
//!
//! Beside full ranking, the sampled protocol many published tables use (RecBole's `uni100`): each user's
//! targets ranked among `SAMPLED_NEGATIVES` items the user has in no split, drawn once per user from a
//! fixed stream (every cell of a data set meets the same ones), reported as `sampled-recall@K` and
//! `sampled-ndcg@K`. The report says how far the two protocols order samplers alike.

use tch::{Device, Kind, Tensor};

use super::ranking;
use crate::data::QueryItems;
use crate::model::ContrastiveModel;

/// (metric name, value) pairs in `metric_names` order, averaged over evaluated users.
pub type MetricValues = Vec<(String, f64)>;

/// A few metrics of every evaluated query, for comparisons paired by query (IR-style significance
/// tests): `queries[i]` is the query of row `i` of every column.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PerQuery {
    pub queries: Vec<u32>,
    pub columns: Vec<(String, Vec<f32>)>,
}

/// Negatives per user of the sampled protocol.
pub const SAMPLED_NEGATIVES: usize = 100;

/// Memory for one block of users' scores and masks.
pub const EVAL_BLOCK_BYTES: usize = 256 << 20;
/// Bytes per (user, item) entry of a block: the f32 score, its masked copy, and three boolean masks.
pub const BYTES_PER_SCORE: usize = 4 + 4 + 3;
/// More users per block gains nothing once the matrix product is large.
const MAX_BLOCK_USERS: usize = 4096;

/// Users scored at once for a pool of `n_items`.
pub fn block_users(n_items: usize) -> usize {
    (EVAL_BLOCK_BYTES / (n_items.max(1) * BYTES_PER_SCORE)).clamp(1, MAX_BLOCK_USERS)
}

/// The model scored some (user, item) pair as NaN or ±inf.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the model's scores are not finite (a NaN or infinite score for at least {bad} of the {users} users evaluated)")]
pub struct NonFiniteScores {
    pub bad: usize,
    pub users: usize,
}

/// Precomputed index tensors for one target split (validation or test).
pub struct Evaluator {
    ks: Vec<usize>,
    chunks: Vec<Chunk>,
    targets: QueryItems,
}

struct Chunk {
    users: Vec<usize>,
    users_t: Tensor,
    /// (row within chunk, item) of every excluded pair.
    excluded: (Tensor, Tensor),
    /// (row within chunk, item) of every target pair.
    target: (Tensor, Tensor),
    /// Sampled protocol: (rows, SAMPLED_NEGATIVES) negatives, and (rows, most targets of a row) targets
    /// padded with item 0 where `sampled_valid` is false.
    sampled_negatives: Tensor,
    sampled_targets: Tensor,
    sampled_valid: Tensor,
}

impl Evaluator {
    /// `exclude` are the item sets removed from each user's ranking, `targets` the items to find among
    /// `n_items`.
    pub fn new(
        ks: &[usize],
        exclude: &[&QueryItems],
        targets: &QueryItems,
        n_items: usize,
        device: Device,
    ) -> Evaluator {
        let users: Vec<usize> = (0..targets.n_queries())
            .filter(|&u| !targets.items(u).is_empty())
            .collect();
        let pairs = |sets: &[&QueryItems], group: &[usize]| {
            let (mut rows, mut cols) = (Vec::new(), Vec::new());
            for (row, &u) in group.iter().enumerate() {
                for set in sets {
                    for &i in set.items(u) {
                        rows.push(row as i64);
                        cols.push(i as i64);
                    }
                }
            }
            (
                Tensor::from_slice(&rows).to_device(device),
                Tensor::from_slice(&cols).to_device(device),
            )
        };
        let chunks = users
            .chunks(block_users(n_items))
            .map(|group| {
                let (negatives, padded, valid) =
                    sampled_candidates(exclude, targets, group, n_items);
                Chunk {
                    users: group.to_vec(),
                    users_t: Tensor::from_slice(
                        &group.iter().map(|&u| u as i64).collect::<Vec<_>>(),
                    )
                    .to_device(device),
                    excluded: pairs(exclude, group),
                    target: pairs(&[targets], group),
                    sampled_negatives: negatives.to_device(device),
                    sampled_targets: padded.to_device(device),
                    sampled_valid: valid.to_device(device),
                }
            })
            .collect();
        Evaluator {
            ks: ks.to_vec(),
            chunks,
            targets: targets.clone(),
        }
    }

    pub fn n_queries(&self) -> usize {
        self.chunks.iter().map(|c| c.users.len()).sum()
    }

    pub fn evaluate(&self, model: &dyn ContrastiveModel) -> Result<MetricValues, NonFiniteScores> {
        self.evaluate_per_query(model).map(|(means, _)| means)
    }

    /// The means and, per query, NDCG and recall at the largest cut-off and the reciprocal rank.
    pub fn evaluate_per_query(
        &self,
        model: &dyn ContrastiveModel,
    ) -> Result<(MetricValues, PerQuery), NonFiniteScores> {
        let _no_grad = tch::no_grad_guard();
        let k_max = *self.ks.iter().max().unwrap_or(&1) as i64;
        let all_items = model.all_items();
        let k_max = k_max.min(all_items.size()[0]);
        let names = super::metric_names(&self.ks);
        let mut sums = vec![0.0; names.len()];
        let mut hits = Vec::with_capacity(k_max as usize);
        let k_top = *self.ks.iter().max().unwrap_or(&1);
        let n = self.n_queries();
        let mut per_query = PerQuery {
            queries: Vec::with_capacity(n),
            columns: vec![
                (format!("ndcg@{k_top}"), Vec::with_capacity(n)),
                (format!("recall@{k_top}"), Vec::with_capacity(n)),
                ("mrr".into(), Vec::with_capacity(n)),
            ],
        };
        for chunk in &self.chunks {
            let mut scores = model
                .score_all(&chunk.users_t)
                .expect("query and item embeddings of one model fit together");
            let finite_rows = scores.isfinite().all_dim(1, false);
            let bad = finite_rows.logical_not().sum(Kind::Int64).int64_value(&[]) as usize;
            if bad > 0 {
                return Err(NonFiniteScores {
                    bad,
                    users: self.n_queries(),
                });
            }
            let neg_inf = Tensor::from(f32::NEG_INFINITY).to_device(scores.device());
            let _ = scores.index_put_(
                &[Some(&chunk.excluded.0), Some(&chunk.excluded.1)],
                &neg_inf,
                false,
            );
            // Rank of the best target in the full ranking: 1 + items scored strictly above it.
            let mut is_target = scores.zeros_like().to_kind(Kind::Bool);
            let yes = Tensor::from(true).to_device(scores.device());
            let _ =
                is_target.index_put_(&[Some(&chunk.target.0), Some(&chunk.target.1)], &yes, false);
            let best = scores.where_self(&is_target, &neg_inf).amax(1, false);
            let first_rank =
                scores
                    .gt_tensor(&best.unsqueeze(1))
                    .sum_dim_intlist(1, false, Kind::Int64)
                    + 1;
            let first_rank = host_i64(&first_rank);
            let (_, top) = scores.topk(k_max, 1, true, true);
            let top = host_i64(&top.reshape([-1]));
            // Sampled protocol: the targets among the sampled negatives, the top K of that short list.
            let n_neg = chunk.sampled_negatives.size()[1];
            let candidates = Tensor::cat(
                &[
                    scores.gather(1, &chunk.sampled_negatives, false),
                    scores
                        .gather(1, &chunk.sampled_targets, false)
                        .where_self(&chunk.sampled_valid, &neg_inf),
                ],
                1,
            );
            let k_sampled = k_max.min(candidates.size()[1]);
            let (_, sampled_top) = candidates.topk(k_sampled, 1, true, true);
            let sampled_hits = host_i64(&sampled_top.reshape([-1]));
            for (row, &u) in chunk.users.iter().enumerate() {
                let target = self.targets.items(u);
                hits.clear();
                hits.extend(
                    top[row * k_max as usize..(row + 1) * k_max as usize]
                        .iter()
                        .map(|&i| target.binary_search(&(i as u32)).is_ok()),
                );
                let mut j = 0;
                for f in [
                    ranking::recall_at_k as fn(&[bool], usize, usize) -> f64,
                    ranking::ndcg_at_k,
                ] {
                    for &k in &self.ks {
                        sums[j] += f(&hits, k, target.len());
                        j += 1;
                    }
                }
                for &k in &self.ks {
                    sums[j] += ranking::hit_rate_at_k(&hits, k);
                    j += 1;
                }
                for &k in &self.ks {
                    sums[j] += ranking::precision_at_k(&hits, k);
                    j += 1;
                }
                let rr = ranking::reciprocal_rank(first_rank[row] as usize);
                sums[j] += rr;
                j += 1;
                per_query.queries.push(u as u32);
                for (column, value) in per_query.columns.iter_mut().zip([
                    ranking::ndcg_at_k(&hits, k_top, target.len()),
                    ranking::recall_at_k(&hits, k_top, target.len()),
                    rr,
                ]) {
                    column.1.push(value as f32);
                }
                // A hit of the short list is one of the row's real targets (padding comes after them).
                let ks = k_sampled as usize;
                hits.clear();
                hits.extend(
                    sampled_hits[row * ks..(row + 1) * ks]
                        .iter()
                        .map(|&c| c >= n_neg && ((c - n_neg) as usize) < target.len()),
                );
                for f in [
                    ranking::recall_at_k as fn(&[bool], usize, usize) -> f64,
                    ranking::ndcg_at_k,
                ] {
                    for &k in &self.ks {
                        sums[j] += f(&hits, k, target.len());
                        j += 1;
                    }
                }
            }
        }
        let n = n.max(1) as f64;
        let means = names
            .into_iter()
            .zip(sums)
            .map(|(name, s)| (name, s / n))
            .collect();
        Ok((means, per_query))
    }
}

/// The sampled protocol's candidates of `group`: per user `SAMPLED_NEGATIVES` distinct items (fewer in a
/// small pool) in none of `exclude` nor `targets`, from a stream seeded by the user id alone; the user's
/// targets padded to the longest row, with a validity mask.
fn sampled_candidates(
    exclude: &[&QueryItems],
    targets: &QueryItems,
    group: &[usize],
    n_items: usize,
) -> (Tensor, Tensor, Tensor) {
    use rand::{Rng, SeedableRng};
    let known =
        |u: usize, i: u32| targets.contains(u, i) || exclude.iter().any(|set| set.contains(u, i));
    let longest = group
        .iter()
        .map(|&u| targets.items(u).len())
        .max()
        .unwrap_or(1);
    let mut negatives = Vec::with_capacity(group.len() * SAMPLED_NEGATIVES);
    let (mut padded, mut valid) = (Vec::new(), Vec::new());
    // Rejection draws; a user with fewer free items than asked (a tiny pool) repeats its last draw, and
    // one with none gets item 0: the short list is then padding, a known limit of the sampled protocol.
    let per_user = SAMPLED_NEGATIVES.min(n_items);
    for &u in group {
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(0x5a3d_0000 ^ u as u64);
        let mut row: Vec<i64> = Vec::with_capacity(per_user);
        let mut tries = 0;
        while row.len() < per_user && tries < 50 * per_user {
            tries += 1;
            let i = rng.random_range(0..n_items as u32);
            if !known(u, i) && !row.contains(&(i as i64)) {
                row.push(i as i64);
            }
        }
        let fill = row.last().copied().unwrap_or(0);
        row.resize(per_user, fill);
        negatives.extend(row);
        let t = targets.items(u);
        for j in 0..longest {
            padded.push(t.get(j).map_or(0, |&i| i as i64));
            valid.push(j < t.len());
        }
    }
    let rows = group.len() as i64;
    (
        Tensor::from_slice(&negatives).view([rows, per_user as i64]),
        Tensor::from_slice(&padded).view([rows, longest as i64]),
        Tensor::from_slice(&valid).view([rows, longest as i64]),
    )
}

/// An int64 tensor's values on the host. The evaluator builds these tensors itself as int64, so a
/// failure here is a bug, not a data problem.
fn host_i64(t: &Tensor) -> Vec<i64> {
    Vec::<i64>::try_from(t.to_device(Device::Cpu)).expect("the evaluator's own int64 tensor")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Interactions;
    use crate::model::{Mf, MfConfig};

    #[test]
    fn a_nan_score_is_an_error_not_a_first_rank() {
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let model = Mf::new(
            &vs.root(),
            &MfConfig {
                dim: 4,
                init_std: 0.1,
            },
            2,
            6,
            0,
        );
        let mut x = Interactions::default();
        x.push(0, 3);
        x.push(1, 5);
        let targets = QueryItems::from_interactions(2, &x);
        let none = QueryItems::from_interactions(2, &Interactions::default());
        let eval = Evaluator::new(&[1], &[&none], &targets, 6, Device::Cpu);
        assert!(eval.evaluate(&model).is_ok());
        tch::no_grad(|| {
            let _ = model.all_items().get(3).fill_(f64::NAN);
        });
        let err = eval.evaluate(&model).unwrap_err();
        assert_eq!(err, NonFiniteScores { bad: 2, users: 2 });
    }

    #[test]
    fn a_pool_of_a_million_items_is_evaluated_a_block_at_a_time() {
        let n_items = 1_000_000;
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let model = Mf::new(
            &vs.root(),
            &MfConfig {
                dim: 4,
                init_std: 0.1,
            },
            50,
            n_items,
            0,
        );
        let mut x = Interactions::default();
        for u in 0..50u32 {
            x.push(u, u * 9973 % n_items as u32);
        }
        let targets = QueryItems::from_interactions(50, &x);
        let none = QueryItems::from_interactions(50, &Interactions::default());
        let eval = Evaluator::new(&[10], &[&none], &targets, n_items, Device::Cpu);
        assert!(
            eval.chunks.len() > 1,
            "{} users per block",
            block_users(n_items)
        );
        let metrics = eval.evaluate(&model).unwrap();
        assert!(metrics.iter().all(|(_, v)| v.is_finite() && *v >= 0.0));
    }

    #[test]
    fn the_sampled_protocol_never_ranks_a_target_lower_than_full_ranking() {
        // 40 users, 500 items, random MF: the short list is a subset of the full ranking holding every
        // target, so its recall and NDCG at every K are at least the full ones, and above them on average.
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let model = Mf::new(
            &vs.root(),
            &MfConfig {
                dim: 8,
                init_std: 1.0,
            },
            40,
            500,
            3,
        );
        let (mut train, mut test) = (Interactions::default(), Interactions::default());
        for u in 0..40u32 {
            for j in 0..5 {
                train.push(u, (u * 7 + j * 31) % 500);
                test.push(u, (u * 11 + j * 97 + 3) % 500);
            }
        }
        let train = QueryItems::from_interactions(40, &train);
        let test = QueryItems::from_interactions(40, &test);
        let eval = Evaluator::new(&[5, 20], &[&train], &test, 500, Device::Cpu);
        let m: std::collections::HashMap<String, f64> =
            eval.evaluate(&model).unwrap().into_iter().collect();
        for k in [5, 20] {
            for name in ["recall", "ndcg"] {
                let (full, sampled) =
                    (m[&format!("{name}@{k}")], m[&format!("sampled-{name}@{k}")]);
                assert!(
                    sampled > full,
                    "{name}@{k}: sampled {sampled} vs full {full}"
                );
            }
        }
        // Every user has 100 distinct negatives outside its known items.
        let c = &eval.chunks[0];
        let negatives = Vec::<Vec<i64>>::try_from(&c.sampled_negatives).unwrap();
        for (row, &u) in c.users.iter().enumerate() {
            let set: std::collections::HashSet<_> = negatives[row].iter().collect();
            assert_eq!(set.len(), SAMPLED_NEGATIVES);
            assert!(negatives[row]
                .iter()
                .all(|&i| !train.contains(u, i as u32) && !test.contains(u, i as u32)));
        }
    }

    #[test]
    fn blocks_shrink_with_the_pool_and_stay_within_memory() {
        assert_eq!(block_users(1000), MAX_BLOCK_USERS);
        let users = block_users(1_000_000);
        assert!(users >= 1 && users * 1_000_000 * BYTES_PER_SCORE <= EVAL_BLOCK_BYTES);
        assert_eq!(block_users(usize::MAX / 64), 1);
    }
}
