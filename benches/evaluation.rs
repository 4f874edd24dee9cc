//! Full-ranking evaluation benchmark (criterion), by the host scan (the CPU path) and by tensor
//! operations (the accelerator path, here on the CPU):
//! - recommendation: one whole evaluation of a Gowalla-shaped data set (29,858 users × 40,981 items, 27
//!   training and 7 test items per user, MF with 64 dimensions, top 20);
//! - link prediction (kg and graph): the filtered realistic ranks of an FB15k-237-shaped test split
//!   (14,541 entities, 237 relations, 20,466 triples ranked both ways, 16 known answers per query,
//!   DistMult with 64 dimensions).
//!
//! `cargo bench --bench evaluation` (or scripts/bench-evaluation.sh, which adds a plain PyTorch loop);
//! `-- gowalla` or `-- fb15k` runs one group. Run with OMP_WAIT_POLICY=PASSIVE; libtorch is held to NSBENCH_BENCH_THREADS threads (default 1).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use tch::{nn, Device};

use nsbench::data::KgQueryIndex;
use nsbench::data::{Interactions, QueryItems};
use nsbench::metrics::{Evaluator, KgEvaluator};
use nsbench::model::{KgModel, KgModelConfig, KgScore, Mf, MfConfig};

const USERS: usize = 29_858;
const ITEMS: usize = 40_981;
const TRAIN_PER_USER: usize = 27;
const TEST_PER_USER: usize = 7;

/// Each user's training and test items, distinct, uniformly drawn.
fn splits() -> (QueryItems, QueryItems) {
    let mut rng = Pcg64Mcg::seed_from_u64(0);
    let (mut train, mut test) = (Interactions::default(), Interactions::default());
    let mut picked = Vec::new();
    for u in 0..USERS as u32 {
        picked.clear();
        while picked.len() < TRAIN_PER_USER + TEST_PER_USER {
            let i = rng.random_range(0..ITEMS as u32);
            if !picked.contains(&i) {
                picked.push(i);
            }
        }
        for (j, &i) in picked.iter().enumerate() {
            if j < TRAIN_PER_USER {
                train.push(u, i);
            } else {
                test.push(u, i);
            }
        }
    }
    (
        QueryItems::from_interactions(USERS, &train),
        QueryItems::from_interactions(USERS, &test),
    )
}

const ENTITIES: usize = 14_541;
const RELATIONS: usize = 237;
const TEST_TRIPLES: usize = 20_466;
const KNOWN_PER_QUERY: usize = 16;

/// Libtorch's threads for the benchmark: NSBENCH_BENCH_THREADS, default 1.
fn threads() -> usize {
    let threads = std::env::var("NSBENCH_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(1);
    tch::set_num_threads(threads as i32);
    threads
}

fn evaluation(c: &mut Criterion) {
    let threads = threads();
    let (train, test) = splits();
    let vs = nn::VarStore::new(Device::Cpu);
    let model = Mf::new(
        &vs.root(),
        &MfConfig {
            dim: 64,
            init_std: 0.1,
        },
        USERS,
        ITEMS,
        0,
    );
    let host = Evaluator::new(&[20], &[&train], &test, ITEMS, Device::Cpu);
    let tensors = Evaluator::new(&[20], &[&train], &test, ITEMS, Device::Cpu)
        .on_device_path(ITEMS, Device::Cpu);
    let mut g = c.benchmark_group(format!("evaluation_gowalla_shaped_t{threads}"));
    g.sample_size(10).measurement_time(Duration::from_secs(30));
    g.bench_function("host_scan", |b| {
        b.iter(|| host.evaluate(&model).expect("finite scores"))
    });
    g.bench_function("tensor_ops", |b| {
        b.iter(|| tensors.evaluate(&model).expect("finite scores"))
    });
    g.finish();
}

/// Every test triple as a tail query and a head query (one query each), its answer and
/// KNOWN_PER_QUERY − 1 other known answers.
fn kg_split() -> (KgQueryIndex, Interactions, QueryItems) {
    let mut rng = Pcg64Mcg::seed_from_u64(1);
    let mut index = KgQueryIndex {
        n_relations: RELATIONS,
        ..KgQueryIndex::default()
    };
    let (mut pairs, mut known) = (Interactions::default(), Interactions::default());
    for _ in 0..TEST_TRIPLES {
        let (h, r, t) = (
            rng.random_range(0..ENTITIES as u32),
            rng.random_range(0..RELATIONS as u32),
            rng.random_range(0..ENTITIES as u32),
        );
        for (entity, answer, head_side) in [(h, t, false), (t, h, true)] {
            let q = index.len() as u32;
            index.entity.push(entity);
            index.relation.push(r);
            index.head_side.push(head_side);
            pairs.push(q, answer);
            known.push(q, answer);
            for _ in 1..KNOWN_PER_QUERY {
                known.push(q, rng.random_range(0..ENTITIES as u32));
            }
        }
    }
    let known = QueryItems::from_interactions(index.len(), &known);
    (index, pairs, known)
}

fn link_prediction(c: &mut Criterion) {
    let threads = threads();
    let (index, pairs, known) = kg_split();
    let vs = nn::VarStore::new(Device::Cpu);
    let model = KgModel::new(
        &vs.root(),
        KgScore::DistMult,
        &KgModelConfig {
            dim: 64,
            norm: None,
        },
        &index,
        ENTITIES,
        0,
    );
    let host = KgEvaluator::new(&pairs, &known, ENTITIES, Device::Cpu);
    let tensors = KgEvaluator::new(&pairs, &known, ENTITIES, Device::Cpu).on_device_path();
    let mut g = c.benchmark_group(format!("evaluation_fb15k237_shaped_t{threads}"));
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("host_scan", |b| {
        b.iter(|| host.ranks(&model).expect("finite scores"))
    });
    g.bench_function("tensor_ops", |b| {
        b.iter(|| tensors.ranks(&model).expect("finite scores"))
    });
    g.finish();
}

criterion_group!(benches, evaluation, link_prediction);
criterion_main!(benches);
