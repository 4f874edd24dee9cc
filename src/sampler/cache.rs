//! A per-query cache of high-scored negatives (Zhang et al., "NSCaching: Simple and Efficient Negative
//! Sampling for Knowledge Graph Embedding", ICDE 2019): each query keeps `cache_size` (N1) candidates;
//! the k negatives are drawn uniformly from its cache, then the cache is refreshed: `candidates` (N2)
//! fresh uniform ones join it, the union is scored with the current model, and N1 of it stay: sampled
//! without replacement with probability softmax(score / `temperature`) (`update = "importance"`, the
//! paper's default and its reference code's temperature 2), or the N1 best-scored (`update = "top"`).
//! Duplicates in the union count once. Each distinct query of a batch is refreshed once, however many
//! rows it has; `refresh_every` > 1 refreshes only every that many steps (cheaper, staler caches).

use super::declare::{Cost, DeclaredSampler, SamplerInfo, Shape, ALL_DOMAINS};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::pool::{Keep, QueryPools};
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
    /// How a refresh chooses the N1 kept from cache ∪ fresh.
    pub update: CacheUpdate,
    /// Softmax temperature of the importance update (the reference code's 2).
    pub temperature: f64,
    pub exclude_positives: bool,
}

/// How a refresh chooses the entries that stay in a query's cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheUpdate {
    /// N1 sampled without replacement with probability softmax(score / temperature).
    Importance,
    /// The N1 best-scored.
    Top,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            cache_size: 50,
            candidates: 50,
            refresh_every: 1,
            update: CacheUpdate::Importance,
            temperature: 2.0,
            exclude_positives: true,
        }
    }
}

impl DeclaredSampler for CacheConfig {
    const INFO: SamplerInfo = SamplerInfo {
            kind: "cache",
            family: "efficient",
            needs: "model scores (a per-query cache refreshed each epoch)",
            description: "per-query cache of high-scored negatives refreshed with fresh uniform candidates (NSCaching); cache_size = 50, candidates = 50, refresh_every = 1, update = importance|top, temperature = 2, exclude_positives = true",
            version: 1,
            same_at_k1: None,
            ratio_free: false,
            domains: ALL_DOMAINS,
            own_loss: None,
            per_pair: true,
            cost: Cost {
                at_k1: 2.0,
                per_extra_negative: 0.15,
            },
    };

    fn tag(&self) -> String {
        let update = match self.update {
            CacheUpdate::Importance => format!("is{}", self.temperature),
            CacheUpdate::Top => "top".into(),
        };
        let lazy = match self.refresh_every {
            1 => String::new(),
            n => format!("-every{n}"),
        };
        format!(
            "cache-{}-{}-{update}{lazy}",
            self.cache_size, self.candidates
        )
    }

    fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if self.cache_size == 0 {
            p.push(("cache_size", "must be >= 1".into()));
        }
        if self.refresh_every == 0 {
            p.push(("refresh_every", "must be >= 1".into()));
        }
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            p.push(("temperature", "must be a finite number > 0".into()));
        }
        p
    }

    fn build(&self, data: &Dataset) -> Result<Box<dyn Sampler>, SamplerError> {
        Ok(Box::new(Cache::new(self, data)))
    }

    fn memory(&self, s: &Shape) -> Vec<(String, f64)> {
        vec![(
            "per-query caches".into(),
            s.queries * (self.cache_size + self.candidates) as f64 * 8.0,
        )]
    }
}

pub struct Cache {
    config: CacheConfig,
    uniform: Uniform,
    caches: QueryPools,
}

impl Cache {
    pub fn new(c: &CacheConfig, data: &Dataset) -> Cache {
        Cache {
            config: c.clone(),
            uniform: Uniform::new(
                &UniformConfig {
                    exclude_positives: c.exclude_positives,
                },
                data,
            ),
            caches: QueryPools::new(data.n_queries, data.n_items, c.cache_size),
        }
    }

    /// The cached ids of query `q`, in slot order.
    pub fn cached(&self, q: usize) -> &[u32] {
        self.caches.pool(q)
    }

    /// How a refresh keeps N1 of cache ∪ fresh.
    fn keep(&self) -> Keep {
        match self.config.update {
            CacheUpdate::Importance => Keep::Softmax {
                inverse_t: (1.0 / self.config.temperature) as f32,
            },
            CacheUpdate::Top => Keep::Top,
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
        self.caches
            .fill_new(batch.queries, &self.uniform, &mut *cx.rng);
        let n1 = self.config.cache_size;
        let mut ids = Vec::with_capacity(batch.len() * k);
        for &q in batch.queries {
            let cache = self.caches.pool(q as usize);
            for _ in 0..k {
                ids.push(cache[cx.rng.random_range(0..n1)] as i64);
            }
        }
        let ids = Tensor::from_slice(&ids)
            .view([batch.len() as i64, k as i64])
            .to_device(cx.device);
        if self.config.candidates > 0 && cx.step.is_multiple_of(self.config.refresh_every) {
            let keep = self.keep();
            let n2 = self.config.candidates;
            self.caches
                .refresh(batch.queries, n2, keep, &self.uniform, cx, |_, _| {})?;
        }
        Ok(Negatives::ids(ids))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::draws::gumbel::{largest, pack};
    use crate::sampler::tests::{tiny_data, Harness};

    #[test]
    fn the_importance_update_samples_softmax_without_replacement() {
        // Keep 2 of 3 entries scored 0, 2, 4 at temperature 2 (p ∝ e^0, e^1, e^2): each entry is kept
        // with its probability under successive sampling, p_i + Σ_j≠i p_j · p_i / (1 − p_j).
        let scores = [0f32, 2.0, 4.0];
        let w: Vec<f64> = scores.iter().map(|&s| (s as f64 / 2.0).exp()).collect();
        let p: Vec<f64> = w.iter().map(|x| x / w.iter().sum::<f64>()).collect();
        let expected: Vec<f64> = (0..3)
            .map(|i| {
                p[i] + (0..3)
                    .filter(|&j| j != i)
                    .map(|j| p[j] * p[i] / (1.0 - p[j]))
                    .sum::<f64>()
            })
            .collect();
        let mut rng = <rand_pcg::Pcg64Mcg as rand::SeedableRng>::seed_from_u64(5);
        let trials = 40_000;
        let mut kept = [0usize; 3];
        for _ in 0..trials {
            let mut keys = scores;
            Keep::Softmax { inverse_t: 0.5 }.keys(&mut keys, &mut rng, &mut Vec::new());
            let mut keys: Vec<u64> = (0..3u32).map(|id| pack(keys[id as usize], id)).collect();
            for &k in largest(&mut keys, 2) {
                kept[k as u32 as usize] += 1;
            }
        }
        for i in 0..3 {
            let f = kept[i] as f64 / trials as f64;
            let sd = (expected[i] * (1.0 - expected[i]) / trials as f64).sqrt();
            assert!(
                (f - expected[i]).abs() < 4.0 * sd,
                "entry {i}: kept {f:.4}, expected {:.4}",
                expected[i]
            );
        }
        // And "top" keeps the two best, always.
        let mut keys = scores;
        Keep::Top.keys(&mut keys, &mut rng, &mut Vec::new());
        let mut keys: Vec<u64> = (0..3u32).map(|id| pack(keys[id as usize], id)).collect();
        let mut top: Vec<u32> = largest(&mut keys, 2).iter().map(|&k| k as u32).collect();
        top.sort_unstable();
        assert_eq!(top, [1, 2]);
    }

    #[test]
    fn keeps_the_top_scored_candidates() {
        let data = tiny_data();
        let mut h = Harness::new(&data, 2);
        let mut s = Cache::new(
            &CacheConfig {
                cache_size: 3,
                candidates: 4,
                refresh_every: 1,
                update: CacheUpdate::Top,
                ..Default::default()
            },
            &data,
        );
        // Fixed model: after enough refreshes a user's cache is its three best non-positive items; after
        // the model moves, it follows the new model's ranking (the union is rescored at every refresh,
        // so an item that scored high once does not stay).
        let top_three = |h: &Harness, q: usize| {
            let scores = &h.scores(&[q as i64])[0];
            let mut ranked: Vec<u32> = (0..10u32)
                .filter(|&i| !data.train_by_query.contains(q, i))
                .collect();
            ranked.sort_by(|&a, &b| scores[b as usize].total_cmp(&scores[a as usize]));
            ranked.truncate(3);
            ranked.sort_unstable();
            ranked
        };
        let mut tops = Vec::new();
        for scale in [0.0, 1.0] {
            h.perturb(scale);
            for _ in 0..30 {
                h.sample(&mut s, &data, &[1, 2], None, 2);
            }
            for q in [1usize, 2] {
                let mut cached = s.cached(q).to_vec();
                cached.sort_unstable();
                assert_eq!(cached, top_three(&h, q), "user {q}, perturbed by {scale}");
                tops.push(cached);
            }
        }
        assert_ne!(tops[..2], tops[2..], "the perturbation changed a ranking");
        // And the draws come from the cache.
        let n = h.sample(&mut s, &data, &[1], None, 20);
        let drawn = Vec::<Vec<i64>>::try_from(n.drawn_ids().unwrap()).unwrap();
        assert!(drawn[0].iter().all(|&i| s.cached(1).contains(&(i as u32))));
    }
}
