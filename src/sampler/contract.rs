//! The sampler contract: what every sampler promises, checked on small data of each domain it runs in.
//! The unit tests hold every built-in to it; `nsbench check-sampler` runs it on one sampler and prints
//! the verdict. A sampler that breaks a promise never enters a grid.
//!
//! The promises: it runs; it returns k negatives per positive (ids (B, k), embeddings (B, k, D)), or,
//! ratio-free, a mask over the whole pool; every id names a candidate of the pool; it never draws a
//! known positive of the query when it claims to exclude them (`exclude_positives`, the default); the
//! same seed gives the same draws and another seed others; weights, log q and embeddings are finite.

use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;
use tch::{Device, Tensor};

use super::{Batch, NegativeItems, Negatives, SampleContext, Sampler, SamplerConfig};
use crate::data::Dataset;
use crate::error::{DataError, SamplerError};
use crate::model::{ContrastiveModel, Mf, MfConfig};

/// A fixed random model over a dataset, a seeded stream and a clock of epochs and steps: what a
/// sampler sees across calls, for tests of stateful samplers.
pub struct Harness {
    pub vs: tch::nn::VarStore,
    pub model: Box<dyn ContrastiveModel>,
    /// The loss samplers are told they feed (BPR unless a test sets another).
    pub loss: crate::loss::LossConfig,
    pub rng: Pcg64Mcg,
    pub epoch: u32,
    pub epochs: u32,
    pub step: u64,
}

impl Harness {
    pub fn new(data: &Dataset, seed: u64) -> Harness {
        let vs = tch::nn::VarStore::new(Device::Cpu);
        // Recommendation: MF (a dot product, with the host fast path); knowledge graphs: TransE
        // (a distance: every sampler must score through the model, not assume a dot product).
        let model: Box<dyn ContrastiveModel> = match &data.kg {
            // Graphs: LightGCN (an encoder without the host fast path: samplers score through the
            // propagated embeddings).
            None if data.graph.is_some() => Box::new(crate::model::LightGcn::new(
                &vs.root(),
                &crate::model::LightGcnConfig {
                    dim: 8,
                    layers: 2,
                    init_std: 1.0,
                },
                &data.train_by_query,
                data.n_items,
                true,
                0,
                Device::Cpu,
            )),
            // Images: the encoder, whose every call draws fresh augmented views.
            None if data.vision.is_some() => Box::new(crate::model::ImageEncoder::new(
                &vs.root(),
                &crate::model::ImageEncoderConfig {
                    hidden: 8,
                    dim: 8,
                    projection: 8,
                    ..Default::default()
                },
                data.vision.as_ref().expect("checked"),
                0,
            )),
            None => {
                let config = MfConfig {
                    dim: 8,
                    init_std: 1.0,
                };
                Box::new(Mf::new(
                    &vs.root(),
                    &config,
                    data.n_queries,
                    data.n_items,
                    0,
                ))
            }
            Some(kg) => Box::new(crate::model::KgModel::new(
                &vs.root(),
                crate::model::KgScore::TransE { norm: 1 },
                &crate::model::KgModelConfig { dim: 8, norm: None },
                &kg.queries,
                data.n_items,
                0,
            )),
        };
        Harness {
            vs,
            model,
            loss: crate::loss::LossConfig::Bpr,
            rng: Pcg64Mcg::seed_from_u64(seed),
            epoch: 1,
            epochs: 1,
            step: 0,
        }
    }

    /// Samples `k` negatives for `queries` with the given positives (by default each query's last
    /// training item); the step counter advances.
    pub fn sample(
        &mut self,
        sampler: &mut dyn Sampler,
        data: &Dataset,
        queries: &[i64],
        positives: Option<&[i64]>,
        k: usize,
    ) -> Negatives {
        self.try_sample(sampler, data, queries, positives, k)
            .unwrap()
    }

    /// `sample`, the sampler's error returned.
    pub fn try_sample(
        &mut self,
        sampler: &mut dyn Sampler,
        data: &Dataset,
        queries: &[i64],
        positives: Option<&[i64]>,
        k: usize,
    ) -> Result<Negatives, SamplerError> {
        let positives: Vec<i64> = match positives {
            Some(p) => p.to_vec(),
            None => queries
                .iter()
                .map(|&q| *data.train_by_query.items(q as usize).last().unwrap() as i64)
                .collect(),
        };
        let (q_t, p_t) = (Tensor::from_slice(queries), Tensor::from_slice(&positives));
        let batch = Batch {
            queries,
            positives: &positives,
            queries_t: &q_t,
            positives_t: &p_t,
        };
        let mut cx = SampleContext {
            rng: &mut self.rng,
            loss: &self.loss,
            model: self.model.as_ref(),
            device: Device::Cpu,
            epoch: self.epoch,
            epochs: self.epochs,
            step: self.step,
        };
        let negatives = sampler.sample(&batch, k, &mut cx)?;
        if sampler.wants_positives() {
            // What a training step passes: the positives' embeddings before its update.
            let keys = tch::no_grad(|| self.model.items(&p_t));
            sampler.observe_positives(&batch, &keys);
        }
        self.step += 1;
        Ok(negatives)
    }

    /// Every query's scores over the pool, (Q, N).
    pub fn scores(&self, queries: &[i64]) -> Vec<Vec<f32>> {
        let q = Tensor::from_slice(queries);
        let s = self.model.score_all(&q).unwrap();
        Vec::<Vec<f32>>::try_from(s.detach()).unwrap()
    }

    /// Moves every embedding by Gaussian noise of the given scale (the model "trains").
    pub fn perturb(&mut self, scale: f64) {
        use rand_distr::{Distribution, Normal};
        let normal = Normal::new(0.0f32, scale as f32).unwrap();
        let mut variables: Vec<_> = self.vs.variables().into_iter().collect();
        variables.sort_by(|a, b| a.0.cmp(&b.0));
        tch::no_grad(|| {
            for (_, mut v) in variables {
                let noise: Vec<f32> = (0..v.numel())
                    .map(|_| normal.sample(&mut self.rng))
                    .collect();
                let _ = v.f_add_(&Tensor::from_slice(&noise).view_as(&v)).unwrap();
            }
        });
    }
}

/// Builds a sampler for a data set (a config's `build`, or a test's broken sampler).
pub type Build<'a> = &'a dyn Fn(&Dataset) -> Result<Box<dyn Sampler>, SamplerError>;

/// One promise and, when broken, how.
#[derive(Debug, Clone, PartialEq)]
pub struct Promise {
    pub name: &'static str,
    pub broken: Option<String>,
}

pub const RUNS: &str = "runs without an error";
pub const K_PER_ROW: &str = "k negatives per positive";
pub const IN_POOL: &str = "every id names a candidate of the pool";
pub const NO_POSITIVE: &str = "never a known positive of the query";
pub const SAME_SEED: &str = "the same seed, the same draws";
pub const OTHER_SEED: &str = "another seed, other draws";
pub const FINITE: &str = "finite weights, log q and embeddings";

/// What the sampler claims: whether it takes a fixed set (ratio-free) and whether it excludes the
/// query's known positives.
#[derive(Debug, Clone, Copy)]
pub struct Claims {
    pub ratio_free: bool,
    pub excludes_positives: bool,
}

/// Checks the promises of the sampler `build` makes for `data`, at k = `k`, on `queries` (each with
/// its last training item as the positive).
pub fn check(
    build: Build,
    claims: Claims,
    data: &Dataset,
    queries: &[i64],
    k: usize,
) -> Vec<Promise> {
    let run = |seed: u64| -> Result<Negatives, String> {
        let mut sampler = build(data).map_err(|e| e.to_string())?;
        Harness::new(data, seed)
            .try_sample(sampler.as_mut(), data, queries, None, k)
            .map_err(|e| e.to_string())
    };
    let (a, b, other) = match (run(7), run(7), run(8)) {
        (Ok(a), Ok(b), Ok(other)) => (a, b, other),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            return vec![Promise {
                name: RUNS,
                broken: Some(e),
            }]
        }
    };
    let promise = |name, broken: Option<String>| Promise { name, broken };
    let shape = shape_problem(&a, queries.len(), k, claims.ratio_free);
    let rows = queries.len();
    let (da, db, dother) = (drawn(&a, rows), drawn(&b, rows), drawn(&other, rows));
    let mut out = vec![promise(RUNS, None), promise(K_PER_ROW, shape)];
    out.push(promise(IN_POOL, out_of_pool(&da, data.n_items)));
    out.push(promise(
        NO_POSITIVE,
        claims
            .excludes_positives
            .then(|| known_positive(&a, &da, data, queries))
            .flatten(),
    ));
    out.push(promise(
        SAME_SEED,
        (da != db).then(|| "seed 7 twice gave different draws".to_string()),
    ));
    out.push(promise(
        OTHER_SEED,
        (!claims.ratio_free && da == dother).then(|| {
            "seeds 7 and 8 gave the same draws: the sampler ignores its stream".to_string()
        }),
    ));
    out.push(promise(FINITE, non_finite(&a)));
    out
}

/// Checks `config`'s promises on nsbench's embedded data set of each domain in `domains` it runs in,
/// at k, each domain's first eight queries with training pairs: what `nsbench check-sampler` prints, and
/// what a sampler written in Python must keep to enter a grid.
pub fn check_embedded(
    config: &SamplerConfig,
    domains: &[&str],
    k: usize,
) -> Result<Vec<(&'static str, Promise)>, DataError> {
    let info = config.info();
    let mut out = Vec::new();
    for data in crate::data::embedded()? {
        let domain = data.domain();
        if !domains.contains(&domain) || !info.domains.contains(&domain) {
            continue;
        }
        let queries: Vec<i64> = (0..data.n_queries)
            .filter(|&q| !data.train_by_query.items(q).is_empty())
            .take(8)
            .map(|q| q as i64)
            .collect();
        let promises = check(&|d| config.build(d), config.claims(), &data, &queries, k);
        out.extend(promises.into_iter().map(|p| (domain, p)));
    }
    Ok(out)
}

/// Why the negatives are not k per row (or, embeddings, (B, k, D)), if they are not.
fn shape_problem(n: &Negatives, rows: usize, k: usize, ratio_free: bool) -> Option<String> {
    let size = match &n.items {
        NegativeItems::Ids(ids) => ids.size(),
        NegativeItems::Embeddings(e) => e.size(),
        _ => return None,
    };
    let want = [rows as i64, k as i64];
    let bad = size.len() < 2 || size[0] != want[0] || (!ratio_free && size[1] != want[1]);
    bad.then(|| format!("shape {size:?}, expected ({rows}, {k}, …)"))
}

/// Each row's drawn ids (or, for every-candidate negatives, the valid part of the pool; embeddings: the
/// ids they came from, if any).
fn drawn(n: &Negatives, rows: usize) -> Vec<Vec<i64>> {
    match &n.items {
        NegativeItems::All => Vec::<Vec<bool>>::try_from(n.valid.as_ref().expect("a mask"))
            .unwrap_or_default()
            .iter()
            .map(|row| (0..row.len() as i64).filter(|&i| row[i as usize]).collect())
            .collect(),
        _ => n
            .drawn_ids()
            .and_then(|ids| Vec::<Vec<i64>>::try_from(ids.reshape([rows as i64, -1])).ok())
            .unwrap_or_else(|| embedding_rows(n)),
    }
}

/// Embedding negatives without ids: their values, rounded, so seeds can be compared.
fn embedding_rows(n: &Negatives) -> Vec<Vec<i64>> {
    match &n.items {
        NegativeItems::Embeddings(e) => Vec::<Vec<f32>>::try_from(e.flatten(1, -1))
            .unwrap_or_default()
            .iter()
            .map(|row| row.iter().map(|x| (x * 1e4).round() as i64).collect())
            .collect(),
        _ => Vec::new(),
    }
}

fn out_of_pool(drawn: &[Vec<i64>], pool: usize) -> Option<String> {
    drawn
        .iter()
        .flatten()
        .find(|&&i| !(0..pool as i64).contains(&i))
        .map(|i| format!("id {i} outside the pool 0..{pool}"))
}

/// The first known positive drawn in a slot the mask keeps.
fn known_positive(
    n: &Negatives,
    drawn: &[Vec<i64>],
    data: &Dataset,
    queries: &[i64],
) -> Option<String> {
    if matches!(n.items, NegativeItems::Embeddings(_)) && n.drawn_ids().is_none() {
        return None;
    }
    let valid = n
        .valid
        .as_ref()
        .filter(|_| !matches!(n.items, NegativeItems::All))
        .and_then(|v| Vec::<Vec<bool>>::try_from(v).ok());
    for (row, (&q, ids)) in queries.iter().zip(drawn).enumerate() {
        for (j, &i) in ids.iter().enumerate() {
            let counted = valid.as_ref().is_none_or(|v| v[row].get(j) != Some(&false));
            if counted && i >= 0 && data.train_by_query.contains(q as usize, i as u32) {
                return Some(format!("query {q} got its positive {i} as a negative"));
            }
        }
    }
    None
}

fn non_finite(n: &Negatives) -> Option<String> {
    let finite = |t: &Tensor| bool::try_from(t.isfinite().all()).unwrap_or(false);
    let embeddings = match &n.items {
        NegativeItems::Embeddings(e) => Some(e),
        _ => None,
    };
    [
        ("weights", n.weights.as_ref()),
        ("log q", n.log_q.as_ref()),
        ("embeddings", embeddings),
    ]
    .into_iter()
    .find(|(_, t)| t.is_some_and(|t| !finite(t)))
    .map(|(what, _)| format!("its {what} hold NaN or inf"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::tests::tiny_data;
    use crate::sampler::{SamplerConfig, UniformConfig};

    /// A sampler broken in one way: `k` ids per row from `draw(row, slot, seed draw)`, with `extra`
    /// columns.
    struct Broken {
        draw: fn(i64, usize, u32) -> i64,
        extra: i64,
    }

    impl Sampler for Broken {
        fn name(&self) -> &'static str {
            "broken"
        }
        fn sample(
            &mut self,
            batch: &Batch,
            k: usize,
            cx: &mut SampleContext,
        ) -> Result<Negatives, SamplerError> {
            use rand::Rng;
            let rows: Vec<i64> = batch
                .queries
                .iter()
                .flat_map(|&q| {
                    let seed = cx.rng.random::<u32>();
                    (0..k + self.extra as usize).map(move |j| (q, j, seed))
                })
                .map(|(q, j, seed)| (self.draw)(q, j, seed))
                .collect();
            let ids = Tensor::from_slice(&rows).view([batch.len() as i64, k as i64 + self.extra]);
            Ok(Negatives::ids(ids))
        }
    }

    fn broken_promises(draw: fn(i64, usize, u32) -> i64, extra: i64) -> Vec<&'static str> {
        let data = tiny_data();
        let claims = Claims {
            ratio_free: false,
            excludes_positives: true,
        };
        let build = |_: &Dataset| -> Result<Box<dyn Sampler>, SamplerError> {
            Ok(Box::new(Broken { draw, extra }))
        };
        check(&build, claims, &data, &[1, 2, 1], 4)
            .into_iter()
            .filter(|p| p.broken.is_some())
            .map(|p| p.name)
            .collect()
    }

    #[test]
    fn a_planted_broken_sampler_breaks_exactly_the_promise_it_breaks() {
        // Item 8 or 9 (no query's positive), chosen by the stream: keeps every promise.
        let good = |_, j, seed: u32| 8 + ((seed >> j) % 2) as i64;
        assert_eq!(broken_promises(good, 0), Vec::<&str>::new());
        // Returns a positive: user 1's item 0.
        let positive = |_, j, seed: u32| {
            if j == 0 {
                0
            } else {
                8 + ((seed >> j) % 2) as i64
            }
        };
        assert_eq!(broken_promises(positive, 0), [NO_POSITIVE]);
        // Ignores the seed.
        let fixed = |_, _, _| 9;
        assert_eq!(broken_promises(fixed, 0), [OTHER_SEED]);
        // Wrong shape: k + 1 columns.
        assert_eq!(broken_promises(good, 1), [K_PER_ROW]);
        // Outside the pool.
        let outside = |_, j, seed: u32| 10 + ((seed >> j) % 2) as i64;
        assert_eq!(broken_promises(outside, 0), [IN_POOL]);
    }

    #[test]
    fn every_promise_of_a_built_in_is_checked_and_kept() {
        let data = tiny_data();
        let c = SamplerConfig::Uniform(UniformConfig::default());
        let promises = check(&|d| c.build(d), c.claims(), &data, &[0, 1, 2], 3);
        assert_eq!(promises.len(), 7);
        assert!(promises.iter().all(|p| p.broken.is_none()), "{promises:?}");
    }
}
