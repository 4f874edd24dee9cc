//! Samplers written in Python against the built-ins and the contract (`cargo test --features python`,
//! with `NSBENCH_PYTHON_SITE` naming a site-packages that holds torch 2.13, as scripts/setup-python.sh
//! makes it).

use std::io::Write;
use std::path::{Path, PathBuf};

use super::PythonConfig;
use crate::data::Dataset;
use crate::sampler::contract::{self, Claims, Harness, Promise};
use crate::sampler::{DnsConfig, NegativeItems, Negatives, SamplerConfig, SelfAdversarialConfig};
use rand::RngCore;

fn example(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/samplers")
        .join(file)
}

fn python(path: &Path, class: &str, params: toml::Table) -> SamplerConfig {
    let c = PythonConfig {
        path: path.to_path_buf(),
        class: class.into(),
        params,
        ..Default::default()
    };
    SamplerConfig::Python(c.resolved(Path::new(".")).unwrap())
}

/// A Python file holding `source`, kept as long as the returned guard.
fn source(source: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sampler.py");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(source.as_bytes())
        .unwrap();
    (dir, path)
}

fn rec() -> Dataset {
    crate::data::embedded().unwrap().remove(0)
}

/// `steps` batches of each sampler on the same model and stream; the Python one draws its generator's
/// seed first, so the built-in's stream skips that one draw.
fn side_by_side(
    built_in: &SamplerConfig,
    py: &SamplerConfig,
    k: usize,
) -> Vec<(Negatives, Negatives)> {
    let data = rec();
    let queries: Vec<i64> = (0..64).collect();
    let (mut ours, mut theirs) = (built_in.build(&data).unwrap(), py.build(&data).unwrap());
    let (mut a, mut b) = (Harness::new(&data, 3), Harness::new(&data, 3));
    (0..3)
        .map(|_| {
            a.rng.next_u64();
            let x = a.sample(ours.as_mut(), &data, &queries, None, k);
            let y = b.sample(theirs.as_mut(), &data, &queries, None, k);
            (x, y)
        })
        .collect()
}

fn ids(n: &Negatives) -> Vec<Vec<i64>> {
    let NegativeItems::Ids(ids) = &n.items else {
        panic!("expected ids")
    };
    Vec::<Vec<i64>>::try_from(ids).unwrap()
}

#[test]
fn the_python_dns_draws_exactly_what_the_built_in_draws() {
    let built_in = SamplerConfig::Dns(DnsConfig::default());
    let py = python(&example("dns.py"), "Dns", toml::Table::new());
    for (x, y) in side_by_side(&built_in, &py, 4) {
        assert_eq!(ids(&x), ids(&y));
    }
}

#[test]
fn the_python_self_adversarial_draws_and_weights_as_the_built_in() {
    let built_in = SamplerConfig::SelfAdversarial(SelfAdversarialConfig {
        alpha: 0.5,
        exclude_positives: true,
    });
    let params: toml::Table = toml::from_str("alpha = 0.5").unwrap();
    let py = python(&example("self_adversarial.py"), "SelfAdversarial", params);
    for (x, y) in side_by_side(&built_in, &py, 8) {
        assert_eq!(ids(&x), ids(&y));
        let (wx, wy) = (x.weights.unwrap(), y.weights.unwrap());
        let gap = f64::try_from((wx - wy).abs().max()).unwrap();
        assert!(gap < 1e-5, "weights differ by {gap}");
    }
}

/// The promises `class` of `path` breaks on the embedded rec data, with how.
fn broken(path: &Path, class: &str) -> Vec<Promise> {
    let config = python(path, class, toml::Table::new());
    contract::check_embedded(&config, &["rec"], 8)
        .unwrap()
        .into_iter()
        .map(|(_, p)| p)
        .filter(|p| p.broken.is_some())
        .collect()
}

#[test]
fn every_example_keeps_the_contract_and_each_planted_sampler_breaks_its_promise() {
    for (file, class) in [
        ("dns.py", "Dns"),
        ("dns_torch.py", "DnsTorch"),
        ("self_adversarial.py", "SelfAdversarial"),
        ("popularity_debiased_hard.py", "PopularityDebiasedHard"),
    ] {
        let config = python(&example(file), class, toml::Table::new());
        for (domain, p) in
            contract::check_embedded(&config, crate::sampler::declare::ALL_DOMAINS, 8).unwrap()
        {
            assert_eq!(p.broken, None, "{file} in {domain}: {}", p.name);
        }
    }
    let planted = example("broken.py");
    let names = |class| {
        broken(&planted, class)
            .into_iter()
            .map(|p| p.name)
            .collect::<Vec<_>>()
    };
    assert_eq!(names("ReturnsPositive"), [contract::NO_POSITIVE]);
    assert_eq!(names("IgnoresSeed"), [contract::OTHER_SEED]);
    let shape = broken(&planted, "WrongShape");
    assert_eq!(shape[0].name, contract::RUNS);
    assert!(shape[0]
        .broken
        .as_ref()
        .unwrap()
        .contains("ids of shape (8, 9), expected (B, k)"));
    let raises = broken(&planted, "Raises");
    let how = raises[0].broken.as_ref().unwrap();
    assert!(
        how.contains("Traceback") && how.contains("missing_method"),
        "{how}"
    );
}

#[test]
fn embedding_negatives_masks_and_weights_come_back_as_a_built_in_returns_them() {
    let (_dir, path) = source(
        r#"
import torch

class Mix:
    def __init__(self, n_items):
        pass

    def sample(self, queries, positives, k, generator, context):
        ids = context.uniform(k)
        items = context.item_embeddings
        alpha = torch.rand(ids.shape + (1,), generator=generator)
        mixed = alpha * items[positives].unsqueeze(1) + (1 - alpha) * items[ids]
        valid = torch.ones(ids.shape, dtype=torch.bool)
        valid[:, -1] = False
        return {"embeddings": mixed, "origin": ids, "valid": valid, "weights": torch.full(ids.shape, 0.5)}
"#,
    );
    let config = python(&path, "Mix", toml::Table::new());
    let data = rec();
    let mut sampler = config.build(&data).unwrap();
    let n = Harness::new(&data, 1).sample(sampler.as_mut(), &data, &[0, 1, 2], None, 4);
    let NegativeItems::Embeddings(e) = &n.items else {
        panic!("expected embeddings")
    };
    assert_eq!(e.size(), [3, 4, 8]);
    assert_eq!(n.origin.as_ref().unwrap().size(), [3, 4]);
    let valid = Vec::<Vec<bool>>::try_from(n.valid.as_ref().unwrap()).unwrap();
    assert!(valid.iter().all(|row| row == &[true, true, true, false]));
    assert_eq!(
        f64::try_from(n.weights.as_ref().unwrap().mean(tch::Kind::Float)).unwrap(),
        0.5
    );
    let claims = Claims {
        ratio_free: false,
        excludes_positives: true,
    };
    let promises = contract::check(&|d| config.build(d), claims, &data, &[0, 1, 2], 4);
    assert!(promises.iter().all(|p| p.broken.is_none()), "{promises:?}");
}

#[test]
fn a_wrong_answer_fails_the_cell_with_a_message_that_says_what_was_wrong() {
    let cases = [
        ("return {'ids': context.uniform(k), 'extra': 1}", "allowed: ['embeddings'"),
        ("return context.uniform(k).float()", "expected an integer dtype"),
        ("return context.uniform(k) + context.n_items", "outside the pool"),
        ("return {'embeddings': torch.zeros(queries.shape[0], k, 3)}", "width 3, the model's is 8"),
        ("return {'ids': context.uniform(k), 'weights': torch.full((queries.shape[0], k), float('nan'))}", "NaN or inf"),
        ("return context.score(torch.full((queries.shape[0], 2), -1))", "outside the pool"),
        ("return [1, 2]", "expected a torch.Tensor"),
    ];
    let data = rec();
    for (body, message) in cases {
        let (_dir, path) = source(&format!(
            "import torch\n\nclass S:\n    def __init__(self, n_items):\n        pass\n\n    \
             def sample(self, queries, positives, k, generator, context):\n        {body}\n"
        ));
        let mut sampler = python(&path, "S", toml::Table::new()).build(&data).unwrap();
        let error = Harness::new(&data, 1)
            .try_sample(sampler.as_mut(), &data, &[0, 1], None, 4)
            .err()
            .unwrap_or_else(|| panic!("{body}: no error"))
            .to_string();
        assert!(error.contains(message), "{body}: {error}");
    }
}

#[test]
fn the_context_serves_only_inside_a_call() {
    use pyo3::prelude::*;
    let data = rec();
    let SamplerConfig::Python(c) = python(&example("dns.py"), "Dns", toml::Table::new()) else {
        unreachable!()
    };
    let mut sampler = super::embedded::PythonSampler::new(&c, &data).unwrap();
    Harness::new(&data, 1).sample(&mut sampler, &data, &[0, 1], None, 4);
    let error = Python::attach(|py| {
        let context = sampler.context.bind(py);
        context
            .call_method1("uniform", (2,))
            .unwrap_err()
            .to_string()
    });
    assert!(error.contains("valid only inside sample()"), "{error}");
}
