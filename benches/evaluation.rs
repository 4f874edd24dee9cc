//! Full-ranking evaluation benchmark (criterion): one whole evaluation of a Gowalla-shaped data set
//! (29,858 users × 40,981 items, 27 training and 7 test items per user, MF with 64 dimensions, top 20),
//! by the host scan (the CPU path) and by tensor operations (the accelerator path, here on the CPU).
//!   cargo bench --bench evaluation        (or scripts/bench-evaluation.sh, which adds a plain PyTorch loop)
//! Run with OMP_WAIT_POLICY=PASSIVE; libtorch is held to NSBENCH_BENCH_THREADS threads (default 1).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use tch::{nn, Device};

use nsbench::data::{Interactions, QueryItems};
use nsbench::metrics::Evaluator;
use nsbench::model::{Mf, MfConfig};

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

fn evaluation(c: &mut Criterion) {
    let threads = std::env::var("NSBENCH_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(1);
    tch::set_num_threads(threads);
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

criterion_group!(benches, evaluation);
criterion_main!(benches);
