//! Negative samplers behind one trait.
//!
//! A sampler receives a batch of positives (query, item) and returns k negatives per positive. The
//! interface carries what every family in the literature needs:
//! - model-aware samplers (hard negatives) score candidates through `SampleContext::model` in one batched
//!   call;
//! - stateful samplers (caches, queues) keep state across steps and see the scores of what they drew
//!   (`observe`) and epoch boundaries (`end_epoch`);
//! - weighting samplers return per-negative loss weights, bias-corrected ones a log-proposal `log_q`;
//! - embedding-level samplers (mixing, queues) return negative embeddings instead of ids.
//!
//! Randomness comes only from the `rng` in the context, which derives from (suite, cell, seed).

mod alias;
mod bounded;
mod dns;
mod in_batch;
mod mixed;
mod popularity;
mod self_adversarial;
mod uniform;

pub use alias::AliasTable;
pub use bounded::{Bounded, BoundedConfig};
pub use dns::{Dns, DnsConfig};
pub use in_batch::{InBatch, InBatchConfig};
pub use mixed::{Mixed, MixedConfig};
pub use popularity::{Popularity, PopularityConfig};
pub use self_adversarial::{SelfAdversarial, SelfAdversarialConfig};
pub use uniform::{Uniform, UniformConfig};

use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use crate::data::{Dataset, UserItems};
use crate::error::SamplerError;
use crate::model::ContrastiveModel;

/// `[[sampler]]`, tagged by `kind`; the kind doubles as the registry name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SamplerConfig {
    Uniform(UniformConfig),
    Popularity(PopularityConfig),
    Dns(DnsConfig),
    SelfAdversarial(SelfAdversarialConfig),
    InBatch(InBatchConfig),
    Bounded(BoundedConfig),
    Mixed(MixedConfig),
}

/// Every registered sampler: (kind, one-line description).
pub const REGISTRY: &[(&str, &str)] = &[
    ("uniform", "uniform over the item pool (BPR); exclude_positives = true|false (default true)"),
    (
        "popularity",
        "P(c) ∝ (count(c) + smoothing)^alpha by an alias table (word2vec); alpha = 0.75, smoothing = 1, \
         exclude_positives = true",
    ),
    (
        "dns",
        "dynamic negative sampling (Zhang et al. 2013): best-scored of M uniform candidates per negative; \
         candidates = 10, exclude_positives = true",
    ),
    (
        "self-adversarial",
        "uniform negatives weighted by softmax(alpha · score) without gradient (RotatE); alpha = 1, \
         exclude_positives = true",
    ),
    (
        "in-batch",
        "the other positives of the batch (Yi et al. 2019); logq = false (score − log q correction), \
         exclude_positives = true (masked)",
    ),
    (
        "bounded",
        "hardest of M uniform candidates scored at most s(q, p) − margin (Qin et al. 2021); candidates = 10, \
         margin = 0, exclude_positives = true",
    ),
    (
        "mixed",
        "in-batch plus uniform negatives (Yang et al. 2020); uniform_share = 0.5, exclude_positives = true",
    ),
];

impl SamplerConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            SamplerConfig::Uniform(_) => "uniform",
            SamplerConfig::Popularity(_) => "popularity",
            SamplerConfig::Dns(_) => "dns",
            SamplerConfig::SelfAdversarial(_) => "self-adversarial",
            SamplerConfig::InBatch(_) => "in-batch",
            SamplerConfig::Bounded(_) => "bounded",
            SamplerConfig::Mixed(_) => "mixed",
        }
    }

    /// A short tag of the non-default parameters, used to tell two samplers of one kind apart in run ids.
    pub fn params_tag(&self) -> String {
        match self {
            SamplerConfig::Uniform(c) => c.tag(),
            SamplerConfig::Popularity(c) => c.tag(),
            SamplerConfig::Dns(c) => c.tag(),
            SamplerConfig::SelfAdversarial(c) => c.tag(),
            SamplerConfig::InBatch(c) => c.tag(),
            SamplerConfig::Bounded(c) => c.tag(),
            SamplerConfig::Mixed(c) => c.tag(),
        }
    }

    /// Problems with the parameters, as (key, message).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        match self {
            SamplerConfig::Uniform(_) | SamplerConfig::InBatch(_) => Vec::new(),
            SamplerConfig::Popularity(c) => c.problems(),
            SamplerConfig::Dns(c) => c.problems(),
            SamplerConfig::SelfAdversarial(c) => c.problems(),
            SamplerConfig::Bounded(c) => c.problems(),
            SamplerConfig::Mixed(c) => c.problems(),
        }
    }

    /// The registry: one arm per sampler.
    pub fn build(&self, data: &Dataset) -> Result<Box<dyn Sampler>, SamplerError> {
        Ok(match self {
            SamplerConfig::Uniform(c) => Box::new(Uniform::new(c, data)),
            SamplerConfig::Popularity(c) => Box::new(Popularity::new(c, data)?),
            SamplerConfig::Dns(c) => Box::new(Dns::new(c, data)),
            SamplerConfig::SelfAdversarial(c) => Box::new(SelfAdversarial::new(c, data)),
            SamplerConfig::InBatch(c) => Box::new(InBatch::new(c, data)),
            SamplerConfig::Bounded(c) => Box::new(Bounded::new(c, data)),
            SamplerConfig::Mixed(c) => Box::new(Mixed::new(c, data)),
        })
    }
}

/// One training batch as a sampler sees it: ids on the host (for CPU-side samplers) and on the device.
pub struct Batch<'a> {
    pub queries: &'a [i64],
    pub positives: &'a [i64],
    /// (B) i64 on the training device.
    pub queries_t: &'a Tensor,
    /// (B) i64 on the training device.
    pub positives_t: &'a Tensor,
}

impl Batch<'_> {
    pub fn len(&self) -> usize {
        self.queries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }
}

/// What a sampler may use besides the batch.
pub struct SampleContext<'a> {
    pub rng: &'a mut Pcg64Mcg,
    pub model: &'a dyn ContrastiveModel,
    pub device: Device,
    pub epoch: u32,
    pub step: u64,
}

/// The negatives themselves.
pub enum NegativeItems {
    /// Candidate ids, (B, k) i64.
    Ids(Tensor),
    /// Synthesised or stored negative embeddings, (B, k, D).
    Embeddings(Tensor),
}

/// A sampler's answer for one batch. Shapes stay rectangular: rows are never dropped, `valid` masks.
pub struct Negatives {
    pub items: NegativeItems,
    /// Per-negative loss weights (B, k), no gradient; each row sums to 1 when given.
    pub weights: Option<Tensor>,
    /// log proposal probability of each negative (B, k), for logQ correction.
    pub log_q: Option<Tensor>,
    /// (B, k) bool: false marks a slot that must not count as a negative.
    pub valid: Option<Tensor>,
}

impl Negatives {
    pub fn ids(ids: Tensor) -> Negatives {
        Negatives {
            items: NegativeItems::Ids(ids),
            weights: None,
            log_q: None,
            valid: None,
        }
    }
}

/// Draws `k` negatives for every positive of a batch.
pub trait Sampler: Send {
    fn name(&self) -> &'static str;

    /// k negatives per positive of `batch`.
    fn sample(
        &mut self,
        batch: &Batch,
        k: usize,
        cx: &mut SampleContext,
    ) -> Result<Negatives, SamplerError>;

    /// Scores the model gave the drawn negatives (B, k), after the forward pass; for samplers that learn
    /// from them (caches, score memories, generators). Default: nothing.
    fn observe(&mut self, _batch: &Batch, _negatives: &Negatives, _scores: &Tensor) {}

    /// Called after every epoch. Default: nothing.
    fn end_epoch(&mut self, _epoch: u32) {}
}

/// Draws ids with `draw` into a (B, k) tensor, redrawing a candidate that is a known positive of the query
/// when `exclude` is given (up to `MAX_REJECTIONS` tries, after which the last draw stands: a user who has
/// interacted with nearly the whole pool cannot be served otherwise).
pub(crate) fn draw_ids(
    batch: &Batch,
    k: usize,
    exclude: Option<&UserItems>,
    device: Device,
    mut draw: impl FnMut() -> u32,
) -> Tensor {
    const MAX_REJECTIONS: usize = 64;
    let mut out = Vec::with_capacity(batch.len() * k);
    for &q in batch.queries {
        let known = exclude.map(|e| e.items(q as usize));
        for _ in 0..k {
            let mut c = draw();
            if let Some(known) = known {
                let mut tries = 0;
                while tries < MAX_REJECTIONS && known.binary_search(&c).is_ok() {
                    c = draw();
                    tries += 1;
                }
            }
            out.push(c as i64);
        }
    }
    Tensor::from_slice(&out)
        .view([batch.len() as i64, k as i64])
        .to_device(device)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::Interactions;
    use crate::model::{Mf, MfConfig};
    use rand::SeedableRng;

    /// 3 users over 10 items; user 0 has items 0..8 (all but 8 and 9).
    pub fn tiny_data() -> Dataset {
        let mut train = Interactions::default();
        for i in 0..8 {
            train.push(0, i);
        }
        for (u, i) in [(1, 0), (1, 0), (1, 1), (2, 5)] {
            train.push(u, i);
        }
        Dataset::new(
            "tiny".into(),
            3,
            10,
            train,
            Interactions::default(),
            Interactions::default(),
            None,
        )
    }

    /// Samples `k` negatives for each of `queries` (each with its last training item as the positive)
    /// with a fixed seed and a fixed model; returns the negatives and every query's scores over the pool.
    pub fn sample_with_model(
        sampler: &mut dyn Sampler,
        data: &Dataset,
        queries: &[i64],
        k: usize,
        seed: u64,
    ) -> (Negatives, Vec<Vec<f32>>) {
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let config = MfConfig {
            dim: 8,
            init_std: 1.0,
        };
        let model = Mf::new(&vs.root(), &config, data.n_users, data.n_items, 0);
        let positives: Vec<i64> = queries
            .iter()
            .map(|&q| *data.train_by_user.items(q as usize).last().unwrap() as i64)
            .collect();
        let (q_t, p_t) = (Tensor::from_slice(queries), Tensor::from_slice(&positives));
        let batch = Batch {
            queries,
            positives: &positives,
            queries_t: &q_t,
            positives_t: &p_t,
        };
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let mut cx = SampleContext {
            rng: &mut rng,
            model: &model,
            device: Device::Cpu,
            epoch: 1,
            step: 0,
        };
        let negatives = sampler.sample(&batch, k, &mut cx).unwrap();
        let scores = model.queries(&q_t).matmul(&model.all_items().tr()).detach();
        (negatives, Vec::<Vec<f32>>::try_from(scores).unwrap())
    }

    /// The ids `sample_with_model` draws, row by row, checked to be (B, k), with the scores.
    pub fn draw_with_model(
        sampler: &mut dyn Sampler,
        data: &Dataset,
        queries: &[i64],
        k: usize,
        seed: u64,
    ) -> (Vec<Vec<i64>>, Vec<Vec<f32>>) {
        let (negatives, scores) = sample_with_model(sampler, data, queries, k, seed);
        let NegativeItems::Ids(ids) = negatives.items else {
            panic!("expected ids")
        };
        assert_eq!(ids.size(), vec![queries.len() as i64, k as i64]);
        (Vec::<Vec<i64>>::try_from(ids).unwrap(), scores)
    }

    pub fn draw(
        sampler: &mut dyn Sampler,
        data: &Dataset,
        queries: &[i64],
        k: usize,
        seed: u64,
    ) -> Vec<Vec<i64>> {
        draw_with_model(sampler, data, queries, k, seed).0
    }

    #[test]
    fn every_registered_sampler_draws_in_bounds_reproducibly_and_never_a_known_positive() {
        let data = tiny_data();
        let configs = [
            SamplerConfig::Uniform(UniformConfig::default()),
            SamplerConfig::Popularity(PopularityConfig::default()),
            SamplerConfig::Popularity(PopularityConfig {
                alpha: -1.0,
                ..Default::default()
            }),
            SamplerConfig::Dns(DnsConfig::default()),
            SamplerConfig::SelfAdversarial(SelfAdversarialConfig::default()),
            SamplerConfig::InBatch(InBatchConfig {
                logq: true,
                exclude_positives: true,
            }),
            SamplerConfig::Bounded(BoundedConfig::default()),
            SamplerConfig::Mixed(MixedConfig::default()),
        ];
        let kinds: std::collections::BTreeSet<_> = configs.iter().map(|c| c.kind()).collect();
        assert_eq!(
            kinds.len(),
            REGISTRY.len(),
            "every registered sampler joins this contract test"
        );
        let queries = [0i64, 1, 2, 0];
        let run = |c: &SamplerConfig, seed| {
            sample_with_model(c.build(&data).unwrap().as_mut(), &data, &queries, 50, seed).0
        };
        let ids = |n: &Negatives| match &n.items {
            NegativeItems::Ids(t) => Vec::<Vec<i64>>::try_from(t).unwrap(),
            NegativeItems::Embeddings(_) => panic!("id samplers only so far"),
        };
        for c in &configs {
            let (a, b, other) = (run(c, 7), run(c, 7), run(c, 8));
            let kind = c.kind();
            assert_eq!(ids(&a), ids(&b), "{kind}: same seed, same draws");
            assert_ne!(ids(&a), ids(&other), "{kind}: another seed, other draws");
            let valid = a
                .valid
                .as_ref()
                .map(|v| Vec::<Vec<bool>>::try_from(v).unwrap());
            for (row, (q, drawn)) in queries.iter().zip(ids(&a)).enumerate() {
                assert_eq!(drawn.len(), 50, "{kind}: k per row");
                for (j, &i) in drawn.iter().enumerate() {
                    assert!((0..10).contains(&i), "{kind}: id {i} out of range");
                    let counted = valid.as_ref().is_none_or(|v| v[row][j]);
                    assert!(
                        !(counted && data.train_by_user.contains(*q as usize, i as u32)),
                        "{kind}: user {q} got its positive {i} as a negative"
                    );
                }
            }
            for t in [&a.weights, &a.log_q].into_iter().flatten() {
                let values = Vec::<Vec<f32>>::try_from(t).unwrap();
                assert!(
                    values.iter().flatten().all(|x| x.is_finite()),
                    "{kind}: NaN or inf"
                );
            }
        }
    }

    #[test]
    fn without_exclusion_uniform_draws_every_item() {
        let data = tiny_data();
        let mut s = Uniform::new(
            &UniformConfig {
                exclude_positives: false,
            },
            &data,
        );
        let rows = draw(&mut s, &data, &[0], 2000, 1);
        let mut counts = [0usize; 10];
        rows[0].iter().for_each(|&i| counts[i as usize] += 1);
        assert!(
            counts.iter().all(|&c| (140..260).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn popularity_follows_smoothed_counts_to_the_power_alpha() {
        let data = tiny_data();
        let c = PopularityConfig {
            alpha: 0.75,
            smoothing: 1.0,
            exclude_positives: false,
        };
        let mut s = Popularity::new(&c, &data).unwrap();
        let n = 200_000;
        let rows = draw(&mut s, &data, &[2], n, 3);
        let mut observed = [0f64; 10];
        rows[0].iter().for_each(|&i| observed[i as usize] += 1.0);
        let w = c.weights(&data.item_counts());
        let total: f64 = w.iter().sum();
        // Pearson chi-square with 9 degrees of freedom: 27.9 is the 0.999 quantile.
        let chi2: f64 = w
            .iter()
            .zip(&observed)
            .map(|(wi, o)| (o - n as f64 * wi / total).powi(2) / (n as f64 * wi / total))
            .sum();
        assert!(chi2 < 27.9, "chi2 = {chi2}, observed {observed:?}");
        // Item 0 (3 interactions) is drawn (4/1)^0.75 ≈ 2.8 times as often as item 9 (none).
        assert!((observed[0] / observed[9] - 4f64.powf(0.75)).abs() < 0.15);
    }
}
