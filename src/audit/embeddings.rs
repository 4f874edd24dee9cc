//! What the sentinels must score where the evaluation reads embeddings: text's word similarity, analogies
//! and neighbours, and vision's kNN and linear probe.

use super::chance::{Expected, Sum};
use super::{sentinel, Expectations, Plan};
use crate::data::{Dataset, Interactions, QueryItems};
use crate::metrics::text::NEIGHBOURS;

fn nothing(n: usize) -> QueryItems {
    QueryItems::from_interactions(n, &Interactions::default())
}

pub fn text_plan(data: &Dataset) -> Plan {
    let text = data.text.as_ref().expect("a text data set");
    let (mut constant, mut random, mut oracle) = (Vec::new(), Vec::new(), Vec::new());
    let mut facts = vec![("vocabulary".to_string(), text.words.len().to_string())];
    for set in &text.similarity {
        let m = set.pairs.len();
        // A constant model's ρ is 0 by the tie rule; independent vectors' ρ has mean 0, sd ≈ 1/√(m − 1).
        constant.push((format!("{}-spearman", set.name), 0.0));
        random.push((
            format!("{}-spearman", set.name),
            Expected {
                mean: 0.0,
                se: 1.0 / ((m.max(2) - 1) as f64).sqrt(),
            },
        ));
        let coverage = m as f64 / set.total.max(1) as f64;
        constant.push((format!("{}-coverage", set.name), coverage));
        facts.push((
            format!("similarity set {}", set.name),
            format!("{m} of {} pairs covered", set.total),
        ));
    }
    if let Some(a) = &text.analogies {
        let restrict = a.restrict.min(text.words.len());
        let mut sum = Sum::default();
        for q in &a.questions {
            let mut asked: Vec<u32> = q[..3].to_vec();
            asked.sort_unstable();
            asked.dedup();
            let p = if asked.contains(&q[3]) {
                0.0
            } else {
                1.0 / (restrict - asked.len()) as f64
            };
            sum.add(p, p * (1.0 - p));
        }
        constant.push(("analogy-accuracy".into(), sum.expected().mean));
        random.push(("analogy-accuracy".into(), sum.expected()));
        constant.push((
            "analogy-coverage".into(),
            a.questions.len() as f64 / a.total.max(1) as f64,
        ));
        facts.push((
            "analogies".into(),
            format!(
                "{} of {} questions covered; answers among the {restrict} most frequent words, the three question words excluded; tied nearest words share the credit",
                a.questions.len(),
                a.total
            ),
        ));
    }
    let mut oracle_embedding = None;
    if let Some(topics) = &text.topics {
        let n = topics.len();
        let k = NEIGHBOURS.min(n - 1);
        let mut size = std::collections::HashMap::new();
        for &t in topics {
            *size.entry(t).or_insert(0usize) += 1;
        }
        let (mut sum, mut best) = (Sum::default(), Sum::default());
        for t in topics {
            // Same-topic others among the n − 1 others; k of them drawn without replacement.
            let (m, others) = (size[t] - 1, (n - 1) as f64);
            let p = m as f64 / others;
            let var = k as f64 * p * (1.0 - p) * (others - k as f64) / (others - 1.0).max(1.0);
            sum.add(p, var / (k * k) as f64);
            best.add(m.min(k) as f64 / k as f64, 0.0);
        }
        let name = format!("nn-precision@{NEIGHBOURS}");
        constant.push((name.clone(), sum.expected().mean));
        random.push((name.clone(), sum.expected()));
        oracle.push((name, best.expected().mean));
        oracle_embedding = Some(sentinel::one_hot(topics));
    }
    facts.push((
        "a random ranker's expectation".into(),
        "ρ 0 on every similarity set".into(),
    ));
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
        oracle_embedding,
        oracle_relevant: nothing(data.n_queries),
        facts,
        unchecked: vec![
            "the oracle on human similarity sets and analogies (no embedding is known to reach 1)"
                .into(),
        ],
    }
}

pub fn vision_plan(data: &Dataset) -> Plan {
    let v = data.vision.as_ref().expect("an image data set");
    let (train, test) = v.labels.split_at(v.n_train);
    let mut counts = vec![0usize; v.n_classes];
    for &l in train {
        counts[l as usize] += 1;
    }
    let most = counts.iter().copied().max().unwrap_or(0);
    let leaders = counts.iter().filter(|&&c| c == most).count();
    // Constant features: every training image ties, the vote goes to the classes with most training
    // images (1 / their number each); the probe learns the class priors alike.
    let chance = test
        .iter()
        .map(|&l| f64::from(u8::from(counts[l as usize] == most)) / leaders as f64)
        .sum::<f64>()
        / test.len().max(1) as f64;
    // One-hot class features: every held-out image whose class has a training image is found.
    let reachable =
        test.iter().filter(|&&l| counts[l as usize] > 0).count() as f64 / test.len().max(1) as f64;
    let both = |x: f64| vec![("knn-accuracy".into(), x), ("linear-accuracy".into(), x)];
    Plan {
        constant: Expectations {
            exact: both(chance),
            chance: Vec::new(),
        },
        random: Expectations::default(),
        oracle: Expectations {
            exact: both(reachable),
            chance: Vec::new(),
        },
        oracle_embedding: Some(sentinel::one_hot(&v.labels)),
        oracle_relevant: nothing(data.n_queries),
        facts: vec![
            (
                "images".into(),
                format!(
                    "{} to train, {} held out, {} classes",
                    v.n_train,
                    test.len(),
                    v.n_classes
                ),
            ),
            (
                "ties".into(),
                "kNN neighbours tied with the k-th share its places; a tied vote earns 1 / m"
                    .into(),
            ),
            (
                "a constant representation's expectation".into(),
                format!("{chance:.4} (the training majority's share of the held-out images)"),
            ),
        ],
        unchecked: vec![
            "a random representation (a probe fitted on noise has no closed-form chance level)"
                .into(),
            "alignment and uniformity (they need an encoder's augmented views)".into(),
        ],
    }
}
