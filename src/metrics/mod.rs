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

/// A domain's evaluation protocol on one split (built by `domain::protocol`): full ranking of held-out
/// items (rec), filtered link prediction on both sides (kg), sampled AUC / AP beside filtered full
/// ranking (graph), or word similarity and analogies (text, whose evaluation sets are its only split),
/// or kNN and linear-probe accuracy on held-out images (vision).
pub enum Protocol {
    Rec(Evaluator),
    Kg(KgEvaluator),
    Graph(GraphEvaluator),
    Text(TextEvaluator),
    Vision(VisionEvaluator),
}

impl Protocol {
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
