//! What the sentinels must score under link prediction's filtered full ranking (kg, graph) and graph's
//! sampled AUC / AP. A ranked pair (query, answer) keeps n_f candidates: the pool less the query's other
//! known answers.

use super::chance::{self, Expected, Sum};
use super::{Expectations, Plan};
use crate::data::{Dataset, Interactions};
use crate::metrics::kg::HITS_AT;

pub fn plan(data: &Dataset) -> Plan {
    let (pairs, known) = match (&data.graph, &data.kg) {
        (Some(g), _) => {
            // Every held-out edge is ranked both ways.
            let mut both = Interactions::default();
            for (&a, &b) in data.test.queries.iter().zip(&data.test.items) {
                both.push(a, b);
                both.push(b, a);
            }
            (both, g.known.clone())
        }
        (None, Some(kg)) => (data.test.clone(), kg.known.clone()),
        (None, None) => unreachable!("link prediction data has a graph or a kg"),
    };
    let n = data.n_items;
    let (harmonic, harmonic2) = prefix_harmonics(n);
    let (mut rr, mut mr) = (Sums::default(), Sums::default());
    let mut hits = [Sums::default(); HITS_AT.len()];
    let mut filtered = 0usize;
    for (&q, &answer) in pairs.queries.iter().zip(&pairs.items) {
        let others = known
            .items(q as usize)
            .iter()
            .filter(|&&e| e != answer)
            .count();
        let n_f = n - others;
        filtered += others;
        let realistic = (n_f + 1) as f64 / 2.0;
        let mean_rr = harmonic[n_f] / n_f as f64;
        rr.add(
            1.0 / realistic,
            (mean_rr, harmonic2[n_f] / n_f as f64 - mean_rr * mean_rr),
        );
        mr.add(realistic, (realistic, ((n_f * n_f) as f64 - 1.0) / 12.0));
        for (s, &k) in hits.iter_mut().zip(&HITS_AT) {
            let p = k.min(n_f) as f64 / n_f as f64;
            s.add(
                f64::from(u8::from(realistic <= k as f64)),
                (p, p * (1.0 - p)),
            );
        }
    }
    let mut metrics: Vec<(String, Sums)> = vec![("mrr".into(), rr)];
    metrics.extend(HITS_AT.iter().map(|k| format!("hits@{k}")).zip(hits));
    metrics.push(("mr".into(), mr));
    let mut constant: Vec<(String, f64)> = metrics
        .iter()
        .map(|(m, s)| (m.clone(), s.constant.expected().mean))
        .collect();
    let mut random: Vec<(String, Expected)> = metrics
        .iter()
        .map(|(m, s)| (m.clone(), s.random.expected()))
        .collect();
    let mut oracle: Vec<(String, f64)> = metrics.iter().map(|(m, _)| (m.clone(), 1.0)).collect();
    let queries = pairs.len();
    let chance_mrr = random[0].1.mean;
    let mut facts = vec![
        (
            "ranked pairs".into(),
            format!("{queries} (each held-out {} both ways)", if data.graph.is_some() { "edge" } else { "triple" }),
        ),
        ("candidates".into(), n.to_string()),
        (
            "the ranking excludes".into(),
            format!(
                "every other known answer of the query from any split ({:.1} per ranked pair on average){}",
                filtered as f64 / queries.max(1) as f64,
                if data.graph.is_some() { ", and the query node itself" } else { "" }
            ),
        ),
        ("ties".into(), "realistic rank: the mean of the optimistic and pessimistic ranks".into()),
        ("a random ranker's expectation".into(), format!("mrr {chance_mrr:.4}")),
    ];
    if let Some(g) = &data.graph {
        let (p, q) = (data.test.len() as f64, g.test_non_edges.len() as f64);
        constant.extend([("auc".into(), 0.5), ("ap".into(), p / (p + q))]);
        random.push((
            "auc".into(),
            Expected {
                mean: 0.5,
                // Hanley & McNeil (1982): the AUC of no signal.
                se: ((p + q + 1.0) / (12.0 * p * q)).sqrt(),
            },
        ));
        oracle.extend([("auc".into(), 1.0), ("ap".into(), 1.0)]);
        facts.push((
            "sampled protocol".into(),
            format!("{p} held-out edges against {q} fixed non-edges (AUC of a random scorer: 0.5)"),
        ));
    }
    Plan {
        constant: Expectations {
            exact: constant,
            chance: Vec::new(),
        },
        random: Expectations {
            exact: Vec::new(),
            chance: random,
        },
        oracle: Expectations {
            exact: oracle,
            chance: Vec::new(),
        },
        oracle_embedding: None,
        // Every known answer: the filter removes all but the ranked one.
        oracle_relevant: known,
        facts,
        unchecked: if data.graph.is_some() {
            vec!["AP under the random scorer (no closed form for its spread)".into()]
        } else {
            Vec::new()
        },
    }
}

/// H(i) and H₂(i) for i = 0..=n.
fn prefix_harmonics(n: usize) -> (Vec<f64>, Vec<f64>) {
    let (mut h, mut h2) = (vec![0.0; n + 1], vec![0.0; n + 1]);
    for i in 1..=n {
        let x = 1.0 / i as f64;
        h[i] = h[i - 1] + x;
        h2[i] = h2[i - 1] + x * x;
    }
    debug_assert!((h[n.min(3)] - chance::harmonic(n.min(3)).0).abs() < 1e-12);
    (h, h2)
}

/// One metric's sums for the constant scorer and the random one.
#[derive(Default, Clone, Copy)]
struct Sums {
    constant: Sum,
    random: Sum,
}

impl Sums {
    fn add(&mut self, constant: f64, random: (f64, f64)) {
        self.constant.add(constant, 0.0);
        self.random.add(random.0, random.1);
    }
}
