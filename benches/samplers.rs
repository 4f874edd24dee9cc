//! Sampler benchmarks (criterion): raw draw rates, every sampler's cost per negative, and the cost of a
//! training step with each sampler relative to uniform.
//!   cargo bench --bench samplers            (or scripts/bench-samplers.sh, which adds numpy and torch)
//! Run with OMP_WAIT_POLICY=PASSIVE; libtorch is held to one thread here so the numbers are per core.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use tch::{nn, Device, Tensor};

use nsbench::data::{self, DataConfig, Dataset, Interactions, SyntheticConfig};
use nsbench::model::{Mf, MfConfig};
use nsbench::sampler::{
    AliasTable, Batch, Negatives, PopularityConfig, SampleContext, Sampler, SamplerConfig,
    UniformConfig,
};
use nsbench::train::{optimizer, train_step, LossConfig, TrainConfig};

/// Draws per measured call of the raw-rate benchmarks: 4096 rows × 256.
const ROWS: usize = 4096;
const PER_ROW: usize = 256;

/// Rows of a pool with no interactions (so nothing is excluded), for raw draw rates.
fn empty_pool(items: usize) -> Dataset {
    Dataset::new(
        "pool".into(),
        ROWS,
        items,
        Interactions::default(),
        Interactions::default(),
        Interactions::default(),
        None,
    )
}

/// A data set of MovieLens-100K's shape: 943 users, 1682 items, ~100k interactions (80% train).
fn ml100k_shaped() -> Dataset {
    let c = SyntheticConfig {
        users: 943,
        items: 1682,
        interactions_per_user: 106.0,
        ..Default::default()
    };
    data::load("ml100k-shaped", &DataConfig::Synthetic(c), None, 0).expect("synthetic data")
}

struct Fixture {
    _vs: nn::VarStore,
    model: Mf,
    queries: Vec<i64>,
    positives: Vec<i64>,
    queries_t: Tensor,
    positives_t: Tensor,
}

impl Fixture {
    fn new(data: &Dataset, dim: i64, rows: usize) -> Fixture {
        let vs = nn::VarStore::new(Device::Cpu);
        let model = Mf::new(
            &vs.root(),
            &MfConfig { dim, init_std: 0.1 },
            data.n_queries,
            data.n_items,
            0,
        );
        let mut rng = Pcg64Mcg::seed_from_u64(1);
        let (mut queries, mut positives) = (Vec::new(), Vec::new());
        for _ in 0..rows {
            let j = rng.random_range(0..data.train.len().max(1));
            queries.push(
                *data
                    .train
                    .queries
                    .get(j)
                    .unwrap_or(&(rng.random_range(0..data.n_queries as u32)))
                    as i64,
            );
            positives.push(*data.train.items.get(j).unwrap_or(&0) as i64);
        }
        let (queries_t, positives_t) =
            (Tensor::from_slice(&queries), Tensor::from_slice(&positives));
        Fixture {
            _vs: vs,
            model,
            queries,
            positives,
            queries_t,
            positives_t,
        }
    }

    /// The id tensors of rows [start, start + len).
    fn tensors(&self, start: usize, len: usize) -> (Tensor, Tensor) {
        (
            self.queries_t.narrow(0, start as i64, len as i64),
            self.positives_t.narrow(0, start as i64, len as i64),
        )
    }
}

fn sample(s: &mut dyn Sampler, f: &Fixture, k: usize, rng: &mut Pcg64Mcg, step: u64) -> Negatives {
    let batch = Batch {
        queries: &f.queries,
        positives: &f.positives,
        queries_t: &f.queries_t,
        positives_t: &f.positives_t,
    };
    let mut cx = SampleContext {
        loss: &LossConfig::Bpr,
        rng,
        model: &f.model,
        device: Device::Cpu,
        epoch: 1,
        epochs: 1,
        step,
    };
    s.sample(&batch, k, &mut cx).expect("sample")
}

/// Times `draw` filling ROWS × PER_ROW slots from one generator: a raw draw rate.
fn bench_draw_loop<M: criterion::measurement::Measurement>(
    g: &mut criterion::BenchmarkGroup<'_, M>,
    name: &str,
    mut draw: impl FnMut(&mut Pcg64Mcg) -> i64,
) {
    g.bench_function(name, |b| {
        let mut rng = Pcg64Mcg::seed_from_u64(0);
        let mut out = vec![0i64; ROWS * PER_ROW];
        b.iter(|| {
            for slot in out.iter_mut() {
                *slot = draw(&mut rng);
            }
            black_box(&out);
        })
    });
}

/// Times the sampler `config` builds over `data`: `sample` for the fixture's rows × PER_ROW.
fn bench_sampler<M: criterion::measurement::Measurement>(
    g: &mut criterion::BenchmarkGroup<'_, M>,
    name: &str,
    config: SamplerConfig,
    data: &Dataset,
    f: &Fixture,
) {
    let mut s = config.build(data).expect("sampler");
    let mut rng = Pcg64Mcg::seed_from_u64(0);
    g.bench_function(name, |b| {
        b.iter(|| black_box(sample(s.as_mut(), f, PER_ROW, &mut rng, 0)))
    });
}

/// Uniform draws per second against a bare loop of the same generator over the same range.
fn uniform_rate(c: &mut Criterion) {
    let items = 1_000_000u32;
    let mut g = c.benchmark_group("uniform_draws");
    g.throughput(Throughput::Elements((ROWS * PER_ROW) as u64));
    bench_draw_loop(&mut g, "bare_rng_loop", |rng| {
        rng.random_range(0..items) as i64
    });
    let pool = empty_pool(items as usize);
    let f = Fixture::new(&pool, 4, ROWS);
    let config = SamplerConfig::Uniform(UniformConfig {
        exclude_positives: false,
    });
    bench_sampler(&mut g, "uniform_sampler", config, &pool, &f);
    g.finish();
}

/// Popularity (α = 0.75) over a 1M-item Zipf pool: the alias table alone and the whole sampler.
fn popularity_rate(c: &mut Criterion) {
    let items = 1_000_000usize;
    let mut g = c.benchmark_group("popularity_draws");
    g.throughput(Throughput::Elements((ROWS * PER_ROW) as u64));
    // Zipf counts: the item of rank r has ⌈10⁶ / r⌉ interactions.
    let counts: Vec<f64> = (1..=items).map(|r| (1e6 / r as f64).ceil()).collect();
    let weights: Vec<f64> = counts.iter().map(|c| c.powf(0.75)).collect();
    let table = AliasTable::new(&weights).expect("weights");
    bench_draw_loop(&mut g, "alias_table", |rng| table.sample(rng) as i64);
    // The sampler reads counts from training data: one query whose interactions follow the Zipf counts
    // would be 14M rows, so the pool's counts are given as interactions of many users, spread thinly.
    let mut train = Interactions::default();
    for (item, &count) in counts.iter().enumerate().take(20_000) {
        for u in 0..count.min(50.0) as u32 {
            train.push(u, item as u32);
        }
    }
    let pool = Dataset::new(
        "zipf".into(),
        ROWS,
        items,
        train,
        Interactions::default(),
        Interactions::default(),
        None,
    );
    let f = Fixture::new(&empty_pool(items), 4, ROWS);
    let config = SamplerConfig::Popularity(PopularityConfig {
        alpha: 0.75,
        smoothing: 1.0,
        exclude_positives: false,
    });
    bench_sampler(&mut g, "popularity_sampler", config, &pool, &f);
    g.finish();
}

/// The built-in samplers that run in the recommendation domain (the benchmarks' data; a Python sampler
/// needs a file and the python build).
fn rec_kinds() -> impl Iterator<Item = &'static str> {
    nsbench::sampler::REGISTRY
        .iter()
        .filter(|i| i.domains.contains(&"rec") && i.kind != "python")
        .map(|i| i.kind)
}

/// Every recommendation sampler with its defaults: one `sample` call for 4096 rows × k = 4 on the
/// MovieLens-100K-shaped data (MF, dim 64), apart from training. Throughput = negatives.
fn sampler_cost(c: &mut Criterion) {
    let data = ml100k_shaped();
    let f = Fixture::new(&data, 64, 4096);
    let k = 4;
    let mut g = c.benchmark_group("sample_4096x4");
    g.throughput(Throughput::Elements((4096 * k) as u64));
    for kind in rec_kinds() {
        let config: SamplerConfig =
            toml::from_str(&format!("kind = \"{kind}\"")).expect("registered kind with defaults");
        let mut s = config.build(&data).expect("sampler");
        let mut rng = Pcg64Mcg::seed_from_u64(0);
        let mut step = 0;
        g.bench_function(BenchmarkId::from_parameter(kind), |b| {
            b.iter(|| {
                step += 1;
                black_box(sample(s.as_mut(), &f, k, &mut rng, step))
            })
        });
    }
    g.finish();
}

/// One training step (sample, BPR + L2, Adam) of MF dim 64 with batch 4096 on the MovieLens-100K-shaped
/// data, with each sampler at k = 1 and k = 4. Compare each with `uniform` at the same k.
fn train_steps(c: &mut Criterion) {
    let data = ml100k_shaped();
    let f = Fixture::new(&data, 64, 4096 * 8);
    let cfg = TrainConfig {
        batch_size: 4096,
        lr: 5e-3,
        l2: 1e-2,
        ..Default::default()
    };
    for k in [1usize, 4] {
        let mut g = c.benchmark_group(format!("train_step_k{k}"));
        // Every kind with its defaults, and the cache refreshed every 4 steps instead of every step.
        let variants = rec_kinds()
            .map(|kind| (kind.to_string(), format!("kind = \"{kind}\"")))
            .chain([(
                "cache-every4".to_string(),
                "kind = \"cache\"\nrefresh_every = 4".to_string(),
            )]);
        for (kind, config) in variants {
            let config: SamplerConfig = toml::from_str(&config).expect("valid sampler config");
            let vs = nn::VarStore::new(Device::Cpu);
            let model = Mf::new(
                &vs.root(),
                &MfConfig {
                    dim: 64,
                    init_std: 0.1,
                },
                data.n_queries,
                data.n_items,
                0,
            );
            let mut opt = optimizer(&cfg, &vs, 0.0).expect("optimizer");
            let mut s = config.build(&data).expect("sampler");
            let mut rng = Pcg64Mcg::seed_from_u64(0);
            let mut step = 0u64;
            g.bench_function(BenchmarkId::from_parameter(kind), |b| {
                b.iter(|| {
                    let start = (step as usize % 8) * 4096;
                    let (q, p) = f.tensors(start, 4096);
                    let batch = Batch {
                        queries: &f.queries[start..start + 4096],
                        positives: &f.positives[start..start + 4096],
                        queries_t: &q,
                        positives_t: &p,
                    };
                    let mut cx = SampleContext {
                        loss: &LossConfig::Bpr,
                        rng: &mut rng,
                        model: &model,
                        device: Device::Cpu,
                        epoch: 1 + (step / 20) as u32,
                        epochs: 50,
                        step,
                    };
                    step += 1;
                    black_box(train_step(
                        &cfg,
                        &LossConfig::Bpr,
                        &model,
                        &mut opt,
                        s.as_mut(),
                        &batch,
                        k,
                        &mut cx,
                        |_| Ok(()),
                    ))
                })
            });
        }
        g.finish();
    }
}

fn config() -> Criterion {
    tch::set_num_threads(1);
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = uniform_rate, popularity_rate, sampler_cost, train_steps
}
criterion_main!(benches);
