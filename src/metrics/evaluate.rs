//! Full-ranking evaluation: every user with target items is scored against the whole item pool, the
//! items they already have (training, and validation when testing) are excluded, and the top K is
//! compared with the targets. Scoring runs in chunks of users as one matrix product per chunk.

use tch::{Device, Kind, Tensor};

use super::ranking;
use crate::data::UserItems;
use crate::model::ContrastiveModel;

/// (metric name, value) pairs in `metric_names` order, averaged over evaluated users.
pub type MetricValues = Vec<(String, f64)>;

const CHUNK_USERS: usize = 1024;

/// Precomputed index tensors for one target split (validation or test).
pub struct Evaluator {
    ks: Vec<usize>,
    chunks: Vec<Chunk>,
    targets: UserItems,
}

struct Chunk {
    users: Vec<usize>,
    users_t: Tensor,
    /// (row within chunk, item) of every excluded pair.
    excluded: (Tensor, Tensor),
    /// (row within chunk, item) of every target pair.
    target: (Tensor, Tensor),
}

impl Evaluator {
    /// `exclude` are the item sets removed from each user's ranking, `targets` the items to find.
    pub fn new(
        ks: &[usize],
        exclude: &[&UserItems],
        targets: &UserItems,
        device: Device,
    ) -> Evaluator {
        let users: Vec<usize> = (0..targets.n_users())
            .filter(|&u| !targets.items(u).is_empty())
            .collect();
        let pairs = |sets: &[&UserItems], group: &[usize]| {
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
            .chunks(CHUNK_USERS)
            .map(|group| Chunk {
                users: group.to_vec(),
                users_t: Tensor::from_slice(&group.iter().map(|&u| u as i64).collect::<Vec<_>>())
                    .to_device(device),
                excluded: pairs(exclude, group),
                target: pairs(&[targets], group),
            })
            .collect();
        Evaluator {
            ks: ks.to_vec(),
            chunks,
            targets: targets.clone(),
        }
    }

    pub fn n_users(&self) -> usize {
        self.chunks.iter().map(|c| c.users.len()).sum()
    }

    pub fn evaluate(&self, model: &dyn ContrastiveModel) -> MetricValues {
        let _no_grad = tch::no_grad_guard();
        let k_max = *self.ks.iter().max().unwrap_or(&1) as i64;
        let all_items = model.all_items();
        let k_max = k_max.min(all_items.size()[0]);
        let names = super::metric_names(&self.ks);
        let mut sums = vec![0.0; names.len()];
        let mut hits = Vec::with_capacity(k_max as usize);
        for chunk in &self.chunks {
            let mut scores = model.queries(&chunk.users_t).matmul(&all_items.tr());
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
            let first_rank =
                Vec::<i64>::try_from(first_rank.to_device(Device::Cpu)).expect("int64 ranks");
            let (_, top) = scores.topk(k_max, 1, true, true);
            let top =
                Vec::<i64>::try_from(top.to_device(Device::Cpu).reshape([-1])).expect("int64 ids");
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
                sums[j] += ranking::reciprocal_rank(first_rank[row] as usize);
            }
        }
        let n = self.n_users().max(1) as f64;
        names
            .into_iter()
            .zip(sums)
            .map(|(name, s)| (name, s / n))
            .collect()
    }
}
