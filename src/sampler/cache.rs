//! A per-query cache of high-scored negatives (Zhang et al., "NSCaching: Simple and Efficient Negative
//! Sampling for Knowledge Graph Embedding", ICDE 2019): each query keeps `cache_size` candidates; the k
//! negatives are drawn uniformly from its cache, then the cache is refreshed with `candidates` fresh
//! uniform ones by keeping the top-scored of the union. Fresh candidates are scored in one batched call;
//! cached ones keep the score they had when last seen (refreshed for free when drawn, from the training
//! step's own forward pass), so the refresh costs one score per fresh candidate. `refresh_every` > 1
//! steps is the paper's lazy update.

use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use super::{Batch, Negatives, SampleContext, Sampler, Uniform, UniformConfig};
use crate::data::Dataset;
use crate::error::SamplerError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// N1, candidates kept per query (the paper's 50).
    pub cache_size: usize,
    /// N2, fresh uniform candidates scored per refresh (the paper's 50).
    pub candidates: usize,
    /// Refresh the batch's caches every this many steps (1: every step, as the paper's default).
    pub refresh_every: u64,
    pub exclude_positives: bool,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            cache_size: 50,
            candidates: 50,
            refresh_every: 1,
            exclude_positives: true,
        }
    }
}

impl CacheConfig {
    pub fn tag(&self) -> String {
        format!("cache-{}-{}", self.cache_size, self.candidates)
    }

    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if self.cache_size == 0 {
            p.push(("cache_size", "must be >= 1".into()));
        }
        if self.refresh_every == 0 {
            p.push(("refresh_every", "must be >= 1".into()));
        }
        p
    }
}

pub struct Cache {
    config: CacheConfig,
    uniform: Uniform,
    /// (Q, N1) ids and their last seen scores; a query's row is filled on its first batch.
    ids: Vec<u32>,
    scores: Vec<f32>,
    filled: Vec<bool>,
    /// The cache slot each negative of the last batch came from, to take its score in `observe`.
    last_slots: Vec<usize>,
    /// Per item, the refresh that last put it in a union (duplicate check).
    seen: Vec<u64>,
    stamp: u64,
}

impl Cache {
    pub fn new(c: &CacheConfig, data: &Dataset) -> Cache {
        let n = data.n_users * c.cache_size;
        Cache {
            config: c.clone(),
            uniform: Uniform::new(
                &UniformConfig {
                    exclude_positives: c.exclude_positives,
                },
                data,
            ),
            ids: vec![0; n],
            scores: vec![f32::NEG_INFINITY; n],
            filled: vec![false; data.n_users],
            last_slots: Vec::new(),
            seen: vec![0; data.n_items],
            stamp: 0,
        }
    }

    /// The cached ids of query `q`, in slot order.
    pub fn cached(&self, q: usize) -> &[u32] {
        let n1 = self.config.cache_size;
        &self.ids[q * n1..(q + 1) * n1]
    }

    /// Fills the caches of the batch's new queries with uniform candidates (scored as unknown).
    fn fill_new(&mut self, batch: &Batch, cx: &mut SampleContext) {
        let n1 = self.config.cache_size;
        let fresh: Vec<usize> = (0..batch.len())
            .filter(|&r| !self.filled[batch.queries[r] as usize])
            .collect();
        if fresh.is_empty() {
            return;
        }
        let queries: Vec<i64> = fresh.iter().map(|&r| batch.queries[r]).collect();
        let ids = self.uniform.draw_for(&queries, n1, cx.rng);
        for (&q, row) in queries.iter().zip(ids.chunks(n1)) {
            let q = q as usize;
            if self.filled[q] {
                continue; // the same query twice in the batch
            }
            self.filled[q] = true;
            self.ids[q * n1..(q + 1) * n1].copy_from_slice(row);
        }
    }

    /// Scores `count` fresh candidates per row and keeps, per query, the top N1 of cache ∪ fresh.
    fn refresh(&mut self, batch: &Batch, cx: &mut SampleContext) {
        let (n1, n2) = (self.config.cache_size, self.config.candidates);
        if n2 == 0 {
            return;
        }
        // Each distinct query of the batch is refreshed once, however many rows it has.
        let mut queries = batch.queries.to_vec();
        queries.sort_unstable();
        queries.dedup();
        let fresh = self.uniform.draw_for(&queries, n2, cx.rng);
        let fresh_i64: Vec<i64> = fresh.iter().map(|&i| i as i64).collect();
        let fresh_t = Tensor::from_slice(&fresh_i64)
            .view([queries.len() as i64, n2 as i64])
            .to_device(cx.device);
        let scores = {
            let _no_grad = tch::no_grad_guard();
            let queries_t = Tensor::from_slice(&queries).to_device(cx.device);
            cx.model.score_candidates(&queries_t, &fresh_t)
        };
        let scores =
            Vec::<f32>::try_from(scores.reshape([-1]).to_device(Device::Cpu)).unwrap_or_default();
        let mut union: Vec<(f32, u32)> = Vec::with_capacity(n1 + n2);
        for (row, &q) in queries.iter().enumerate() {
            let q = q as usize;
            let slots = q * n1..(q + 1) * n1;
            // Stamp the items already in the union so a fresh duplicate is skipped in O(1).
            self.stamp += 1;
            union.clear();
            for slot in slots.clone() {
                let id = self.ids[slot];
                if self.seen[id as usize] != self.stamp {
                    self.seen[id as usize] = self.stamp;
                    union.push((self.scores[slot], id));
                }
            }
            for j in row * n2..(row + 1) * n2 {
                let id = fresh[j];
                if self.seen[id as usize] != self.stamp {
                    self.seen[id as usize] = self.stamp;
                    union.push((scores[j], id));
                }
            }
            if union.len() > n1 {
                union.select_nth_unstable_by(n1 - 1, |a, b| b.0.total_cmp(&a.0));
                union.truncate(n1);
            }
            // A union smaller than N1 (tiny pools) repeats its entries.
            for (slot, j) in slots.zip((0..union.len()).cycle()) {
                (self.scores[slot], self.ids[slot]) = union[j];
            }
        }
    }
}

impl Sampler for Cache {
    fn name(&self) -> &'static str {
        "cache"
    }

    fn sample(
        &mut self,
        batch: &Batch,
        k: usize,
        cx: &mut SampleContext,
    ) -> Result<Negatives, SamplerError> {
        self.fill_new(batch, cx);
        let n1 = self.config.cache_size;
        self.last_slots.clear();
        let mut ids = Vec::with_capacity(batch.len() * k);
        for &q in batch.queries {
            for _ in 0..k {
                let slot = q as usize * n1 + cx.rng.random_range(0..n1);
                self.last_slots.push(slot);
                ids.push(self.ids[slot] as i64);
            }
        }
        let ids = Tensor::from_slice(&ids)
            .view([batch.len() as i64, k as i64])
            .to_device(cx.device);
        if cx.step % self.config.refresh_every == 0 {
            self.refresh(batch, cx);
            // The refresh may have moved entries; the drawn ones' scores are not taken back.
            self.last_slots.clear();
        }
        Ok(Negatives::ids(ids))
    }

    fn observe(&mut self, _batch: &Batch, _negatives: &Negatives, scores: &Tensor) {
        if self.last_slots.is_empty() {
            return;
        }
        let scores =
            Vec::<f32>::try_from(scores.reshape([-1]).to_device(Device::Cpu)).unwrap_or_default();
        for (&slot, &s) in self.last_slots.iter().zip(&scores) {
            self.scores[slot] = s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::tests::{tiny_data, Harness};

    #[test]
    fn keeps_the_top_scored_candidates() {
        let data = tiny_data();
        let mut h = Harness::new(&data, 2);
        let mut s = Cache::new(
            &CacheConfig {
                cache_size: 3,
                candidates: 4,
                refresh_every: 1,
                exclude_positives: true,
            },
            &data,
        );
        // Fixed model: after enough refreshes user 1's cache is its three best non-positive items.
        for _ in 0..30 {
            h.sample(&mut s, &data, &[1, 2], None, 2);
        }
        for q in [1usize, 2] {
            let scores = &h.scores(&[q as i64])[0];
            let mut ranked: Vec<u32> = (0..10u32)
                .filter(|&i| !data.train_by_user.contains(q, i))
                .collect();
            ranked.sort_by(|&a, &b| scores[b as usize].total_cmp(&scores[a as usize]));
            let mut cached = s.cached(q).to_vec();
            cached.sort_by(|&a, &b| scores[b as usize].total_cmp(&scores[a as usize]));
            assert_eq!(cached, ranked[..3], "user {q}");
        }
        // And the draws come from the cache.
        let n = h.sample(&mut s, &data, &[1], None, 20);
        let drawn = Vec::<Vec<i64>>::try_from(n.drawn_ids().unwrap()).unwrap();
        assert!(drawn[0].iter().all(|&i| s.cached(1).contains(&(i as u32))));
    }
}
