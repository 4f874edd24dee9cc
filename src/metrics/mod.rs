//! Effectiveness metrics: pure per-user functions (`ranking`) and the batched full-ranking evaluator.

mod evaluate;
pub mod graph;
pub mod kg;
pub mod ranking;
pub mod text;
pub mod vision;

pub use evaluate::{
    block_users, Evaluator, MetricValues, NonFiniteScores, PerQuery, BYTES_PER_SCORE,
    EVAL_BLOCK_BYTES, SAMPLED_NEGATIVES,
};
pub use graph::GraphEvaluator;
pub use kg::KgEvaluator;
pub use text::TextEvaluator;
pub use vision::VisionEvaluator;

use serde::{Deserialize, Serialize};

/// Behaviour version of a domain's evaluation protocol (enters the configuration hash): bump a
/// domain's when one of its metrics' definition or its ranking changes. Rec 2: tied scores count as
/// their expectation over a random order (`ranking`), no longer to the model's favour.
pub fn version(domain: &str) -> u32 {
    match domain {
        // Text 2: tied analogy answers and neighbours count their expectation, a collapsed model's ρ
        // is 0. Vision 2: the kNN vote counts ties likewise.
        "rec" | "text" | "vision" => 2,
        _ => 1,
    }
}

/// Effectiveness metrics where a smaller value is the better one: kg's mean rank, and vision's alignment
/// (mean distance of two views) and uniformity (log mean Gaussian potential). The rest: larger is better.
pub fn lower_is_better(metric: &str) -> bool {
    matches!(metric, "mr" | "alignment" | "uniformity")
}

/// Whether `value` of `metric` is strictly better than `than`.
pub fn better(metric: &str, value: f64, than: f64) -> bool {
    if lower_is_better(metric) {
        value < than
    } else {
        value > than
    }
}

/// The position of the first best of `values` of `metric` (the epoch early stopping selects, the peak
/// the stability table reports); `None` when empty or nothing is a number.
pub fn first_best(metric: &str, values: impl IntoIterator<Item = f64>) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, v) in values.into_iter().enumerate() {
        if v.is_nan() {
            continue;
        }
        if best.is_none_or(|(_, b)| better(metric, v, b)) {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i)
}

/// A domain's headline metric, the one its tables, figures, regression gate and (by default) early
/// stopping use, among the `metrics` its cells report: rec the NDCG at the largest cut-off; kg and graph
/// the filtered full-ranking MRR; text the generator's similarity (`truth-spearman`), else the first
/// similarity set, else analogies; vision the linear probe (the literature's). `None` when the domain's
/// metric is not among `metrics`.
pub fn headline<'a>(
    domain: &str,
    metrics: impl Iterator<Item = &'a str> + Clone,
) -> Option<String> {
    let has = |name: &str| metrics.clone().any(|m| m == name);
    let found = match domain {
        "kg" | "graph" => has("mrr").then(|| "mrr".to_string()),
        "vision" => has("linear-accuracy").then(|| "linear-accuracy".to_string()),
        "text" => {
            if has("truth-spearman") {
                Some("truth-spearman".into())
            } else {
                metrics
                    .clone()
                    .find(|m| m.ends_with("-spearman"))
                    .or_else(|| metrics.clone().find(|m| *m == "analogy-accuracy"))
                    .map(String::from)
            }
        }
        _ => metrics
            .clone()
            .filter_map(|m| m.strip_prefix("ndcg@")?.parse::<usize>().ok())
            .max()
            .map(|k| format!("ndcg@{k}")),
    };
    found
}

/// Names of every metric the rec evaluator reports for cut-offs `ks`, in a fixed order.
pub fn metric_names(ks: &[usize]) -> Vec<String> {
    let mut names = Vec::new();
    for prefix in ["recall", "ndcg", "hr", "precision"] {
        for k in ks {
            names.push(format!("{prefix}@{k}"));
        }
    }
    names.push("mrr".into());
    // The sampled protocol's counterparts (see `Evaluator`).
    for prefix in ["sampled-recall", "sampled-ndcg"] {
        for k in ks {
            names.push(format!("{prefix}@{k}"));
        }
    }
    names
}

/// Every effectiveness metric a cell on `data` reports, with rec cut-offs `ks`.
pub fn names_for(data: &crate::data::Dataset, ks: &[usize]) -> Vec<String> {
    match data.domain() {
        "text" => text::metric_names(data.text.as_ref().expect("a text data set")),
        "vision" => vision::metric_names(),
        "graph" => graph::metric_names(),
        "kg" => kg::metric_names(),
        _ => metric_names(ks),
    }
}

/// A domain's evaluation protocol on one split: full ranking of held-out items (rec), filtered
/// link prediction on both sides (kg), sampled AUC / AP beside filtered full ranking (graph), or word
/// similarity and analogies (text, whose evaluation sets are its only split), or kNN and linear-probe
/// accuracy on held-out images (vision).
pub enum Protocol {
    Rec(Evaluator),
    Kg(KgEvaluator),
    Graph(GraphEvaluator),
    Text(TextEvaluator),
    Vision(VisionEvaluator),
}

impl Protocol {
    /// The protocol of `data`'s domain for the test split, or the validation split (`None` without one).
    /// `exclude`: what a recommendation test ranking removes besides the test items (validation
    /// rankings always remove the training items only).
    pub fn for_split(
        data: &crate::data::Dataset,
        ks: &[usize],
        test: bool,
        exclude: RankingExcludes,
        device: tch::Device,
    ) -> Option<Protocol> {
        if !test && !data.has_validation() {
            return None;
        }
        if let Some(text) = &data.text {
            return Some(Protocol::Text(TextEvaluator::new(text, device)));
        }
        if let Some(images) = &data.vision {
            return Some(Protocol::Vision(VisionEvaluator::new(images, device)));
        }
        if let Some(g) = &data.graph {
            let (edges, non_edges) = if test {
                (&data.test, &g.test_non_edges)
            } else {
                (&data.valid, &g.valid_non_edges)
            };
            return Some(Protocol::Graph(GraphEvaluator::new(
                edges,
                non_edges,
                &g.known,
                data.n_items,
                device,
            )));
        }
        Some(match &data.kg {
            Some(kg) => Protocol::Kg(KgEvaluator::new(
                if test { &data.test } else { &data.valid },
                &kg.known,
                data.n_items,
                device,
            )),
            None if test => Protocol::Rec(Evaluator::new(
                ks,
                &[&data.train_by_query, &data.valid_by_query][..if exclude == RankingExcludes::Train
                {
                    1
                } else {
                    2
                }],
                &data.test_by_query,
                data.n_items,
                device,
            )),
            None => Protocol::Rec(Evaluator::new(
                ks,
                &[&data.train_by_query],
                &data.valid_by_query,
                data.n_items,
                device,
            )),
        })
    }

    pub fn evaluate(
        &self,
        model: &dyn crate::model::ContrastiveModel,
    ) -> Result<MetricValues, NonFiniteScores> {
        match self {
            Protocol::Rec(e) => e.evaluate(model),
            Protocol::Kg(e) => e.evaluate(model),
            Protocol::Graph(e) => e.evaluate(model),
            Protocol::Text(e) => e.evaluate(model),
            Protocol::Vision(e) => e.evaluate(model),
        }
    }

    /// `evaluate`, and a few metrics of every query (see `PerQuery`).
    pub fn evaluate_per_query(
        &self,
        model: &dyn crate::model::ContrastiveModel,
    ) -> Result<(MetricValues, PerQuery), NonFiniteScores> {
        match self {
            Protocol::Rec(e) => e.evaluate_per_query(model),
            Protocol::Kg(e) => e.evaluate_per_query(model),
            Protocol::Graph(e) => e.evaluate_per_query(model),
            Protocol::Text(e) => e.evaluate_per_query(model),
            Protocol::Vision(e) => e.evaluate_per_query(model),
        }
    }
}

/// Which positives the test ranking of a recommendation cell removes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RankingExcludes {
    /// Training and validation items (a user's known positives other than the test ones).
    #[default]
    TrainAndValid,
    /// Training items only.
    Train,
}

impl RankingExcludes {
    pub fn is_default(&self) -> bool {
        *self == RankingExcludes::default()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RankingExcludes::TrainAndValid => "train-and-valid",
            RankingExcludes::Train => "train",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_domain_has_one_headline_metric() {
        let rec = metric_names(&[10, 20, 50]);
        let of =
            |domain: &str, names: &[String]| headline(domain, names.iter().map(String::as_str));
        assert_eq!(of("rec", &rec).as_deref(), Some("ndcg@50"));
        assert_eq!(of("kg", &kg::metric_names()).as_deref(), Some("mrr"));
        // Graph: the filtered full-ranking MRR, not the sampled AUC listed first.
        assert_eq!(of("graph", &graph::metric_names()).as_deref(), Some("mrr"));
        assert_eq!(
            of("vision", &vision::metric_names()).as_deref(),
            Some("linear-accuracy")
        );
        let text = ["ws-coverage", "ws-spearman", "analogy-accuracy"].map(String::from);
        assert_eq!(of("text", &text).as_deref(), Some("ws-spearman"));
        // A rec set next to a kg set keeps its own headline.
        let mut mixed = rec.clone();
        mixed.extend(kg::metric_names());
        assert_eq!(of("rec", &mixed).as_deref(), Some("ndcg@50"));
    }
}
