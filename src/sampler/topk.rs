//! Exact top-scored negatives from a periodically rebuilt index (Xiong et al., "Approximate Nearest
//! Neighbor Negative Contrastive Learning for Dense Text Retrieval" (ANCE), ICLR 2021): every
//! `refresh_steps` steps the whole pool is scored for every query and each query's `top` best
//! non-positive candidates are stored; between refreshes the lists are stale, as ANCE's asynchronously
//! refreshed ANN index is. Negatives are drawn uniformly from the query's list. The index is exact (a
//! matrix product per block of queries), which is what an ANN index approximates.

use super::declare::{Cost, DeclaredSampler, SamplerInfo, Shape, ALL_DOMAINS};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::{Batch, Negatives, SampleContext, Sampler};
use crate::data::{Dataset, QueryItems};
use crate::error::SamplerError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopkConfig {
    /// Candidates kept per query (ANCE samples from the top 200).
    pub top: usize,
    /// Steps between index rebuilds (ANCE refreshes asynchronously every 10k steps on corpora of
    /// millions; 50 steps is a few epochs on MovieLens-100K).
    pub refresh_steps: u64,
    pub exclude_positives: bool,
}

impl Default for TopkConfig {
    fn default() -> Self {
        TopkConfig {
            top: 200,
            refresh_steps: 50,
            exclude_positives: true,
        }
    }
}

impl DeclaredSampler for TopkConfig {
    const INFO: SamplerInfo = SamplerInfo {
            kind: "topk",
            family: "hard",
            needs: "model scores of a candidate pool",
            description: "exact top-scored non-positives over the pool, index rebuilt every R steps, stale between (ANCE); top = 200, refresh_steps = 50, exclude_positives = true",
            version: 1,
            same_at_k1: None,
            ratio_free: false,
            domains: ALL_DOMAINS,
            own_loss: None,
            per_pair: true,
            cost: Cost {
                at_k1: 1.5,
                per_extra_negative: 0.15,
            },
    };

    fn tag(&self) -> String {
        format!("topk-{}-r{}", self.top, self.refresh_steps)
    }

    fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if self.top == 0 {
            p.push(("top", "must be >= 1".into()));
        }
        if self.refresh_steps == 0 {
            p.push(("refresh_steps", "must be >= 1".into()));
        }
        p
    }

    fn build(&self, data: &Dataset) -> Result<Box<dyn Sampler>, SamplerError> {
        Ok(Box::new(Topk::new(self, data)))
    }

    fn memory(&self, s: &Shape) -> Vec<(String, f64)> {
        vec![(
            "per-query top lists".into(),
            s.queries * self.top as f64 * 4.0
                + (crate::metrics::block_users(s.items as usize) as f64).min(s.queries)
                    * s.items
                    * 12.0,
        )]
    }
}

pub struct Topk {
    config: TopkConfig,
    known: Option<QueryItems>,
    n_queries: usize,
    /// (Q, top) candidate ids, rebuilt at `built_at + refresh_steps`.
    index: Vec<u32>,
    width: usize,
    built_at: Option<u64>,
}

impl Topk {
    pub fn new(c: &TopkConfig, data: &Dataset) -> Topk {
        Topk {
            config: c.clone(),
            known: c.exclude_positives.then(|| data.train_by_query.clone()),
            n_queries: data.n_queries,
            index: Vec::new(),
            width: 0,
            built_at: None,
        }
    }

    /// The current list of query `q`, best first.
    pub fn list(&self, q: usize) -> &[u32] {
        &self.index[q * self.width..(q + 1) * self.width]
    }

    /// Scores the pool for every query, block by block, and keeps each query's top non-positives.
    fn rebuild(&mut self, cx: &SampleContext) -> Result<(), SamplerError> {
        let _no_grad = tch::no_grad_guard();
        let items = cx.model.all_items();
        let n_items = items.size()[0] as usize;
        let most_known = self.known.as_ref().map_or(0, |kn| {
            (0..self.n_queries)
                .map(|q| kn.items(q).len())
                .max()
                .unwrap_or(0)
        });
        // Ask for enough that `top` non-positives remain after dropping the known positives.
        let fetch = (self.config.top + most_known).min(n_items) as i64;
        self.width = self.config.top.min(n_items);
        self.index = vec![0; self.n_queries * self.width];
        // Users scored at once: as many as keep a block of scores within the evaluation's budget.
        let block = crate::metrics::block_users(n_items);
        for start in (0..self.n_queries).step_by(block) {
            let len = block.min(self.n_queries - start);
            let q =
                Tensor::arange_start(start as i64, (start + len) as i64, (Kind::Int64, cx.device));
            let scores = cx.model.score_all(&q)?;
            let (_, best) = scores.topk(fetch, 1, true, true);
            let best = Vec::<i64>::try_from(best.reshape([-1]).to_device(Device::Cpu))?;
            for (row, ranked) in best.chunks(fetch as usize).enumerate() {
                let user = start + row;
                let keep = ranked
                    .iter()
                    .map(|&i| i as u32)
                    .filter(|&i| self.known.as_ref().is_none_or(|kn| !kn.contains(user, i)));
                let slots = &mut self.index[user * self.width..(user + 1) * self.width];
                // A query with fewer non-positives than `top` repeats its list from the start.
                let kept: Vec<u32> = keep.take(self.width).collect();
                for (slot, &i) in slots.iter_mut().zip(kept.iter().cycle()) {
                    *slot = i;
                }
                if kept.is_empty() {
                    slots.copy_from_slice(&(0..self.width as u32).collect::<Vec<_>>());
                }
            }
        }
        Ok(())
    }
}

impl Sampler for Topk {
    fn name(&self) -> &'static str {
        "topk"
    }

    fn sample(
        &mut self,
        batch: &Batch,
        k: usize,
        cx: &mut SampleContext,
    ) -> Result<Negatives, SamplerError> {
        let due = self
            .built_at
            .is_none_or(|at| cx.step >= at + self.config.refresh_steps);
        if due {
            self.rebuild(cx)?;
            self.built_at = Some(cx.step);
        }
        let mut ids = Vec::with_capacity(batch.len() * k);
        for &q in batch.queries {
            let list = self.list(q as usize);
            for _ in 0..k {
                ids.push(list[cx.rng.random_range(0..list.len())] as i64);
            }
        }
        Ok(Negatives::ids(
            Tensor::from_slice(&ids)
                .view([batch.len() as i64, k as i64])
                .to_device(cx.device),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::tests::{tiny_data, Harness};

    fn top_non_positives(h: &Harness, data: &Dataset, q: usize, n: usize) -> Vec<u32> {
        let scores = &h.scores(&[q as i64])[0];
        let mut ranked: Vec<u32> = (0..10u32)
            .filter(|&i| !data.train_by_query.contains(q, i))
            .collect();
        ranked.sort_by(|&a, &b| scores[b as usize].total_cmp(&scores[a as usize]));
        ranked.truncate(n);
        ranked
    }

    #[test]
    fn draws_the_exact_top_and_stays_stale_until_the_refresh() {
        let data = tiny_data();
        let mut h = Harness::new(&data, 3);
        let c = TopkConfig {
            top: 3,
            refresh_steps: 4,
            exclude_positives: true,
        };
        let mut s = Topk::new(&c, &data);
        h.sample(&mut s, &data, &[1, 2], None, 10);
        let first: Vec<Vec<u32>> = [1, 2]
            .iter()
            .map(|&q| top_non_positives(&h, &data, q, 3))
            .collect();
        for (q, top) in [1usize, 2].iter().zip(&first) {
            assert_eq!(s.list(*q), &top[..], "exact top after a rebuild");
        }
        // The model moves; until step 4 the lists stay as they were.
        h.perturb(2.0);
        for _ in 1..4 {
            let n = h.sample(&mut s, &data, &[1], None, 10);
            let drawn = Vec::<Vec<i64>>::try_from(n.drawn_ids().unwrap()).unwrap();
            assert!(drawn[0].iter().all(|&i| first[0].contains(&(i as u32))));
        }
        assert_eq!(s.list(1), &first[0][..], "stale between refreshes");
        h.sample(&mut s, &data, &[1], None, 1);
        let now = top_non_positives(&h, &data, 1, 3);
        assert_eq!(s.list(1), &now[..], "rebuilt at step 4");
        assert_ne!(now, first[0], "the perturbation changed the ranking");
    }
}
