//! Effectiveness metrics: pure per-user functions (`ranking`) and the batched full-ranking evaluator.

mod evaluate;
pub mod graph;
pub mod kg;
pub mod ranking;
pub mod text;
pub mod vision;

pub use evaluate::{
    block_users, Evaluator, MetricValues, NonFiniteScores, PerQuery, BYTES_PER_SCORE,
    EVAL_BLOCK_BYTES,
};
pub use graph::GraphEvaluator;
pub use kg::KgEvaluator;
pub use text::TextEvaluator;
pub use vision::VisionEvaluator;

/// Behaviour version of a domain's evaluation protocol (enters the configuration hash): bump a
/// domain's when one of its metrics' definition or its ranking changes. Rec 2: tied scores count as
/// their expectation over a random order (`ranking`), no longer to the model's favour.
pub fn version(domain: &str) -> u32 {
    match domain {
        "rec" => 2,
        _ => 1,
    }
}

/// Names of every metric the evaluator reports for cut-offs `ks`, in a fixed order.
/// Effectiveness metrics where a smaller value is the better one: kg's mean rank, and vision's alignment
/// (mean distance of two views) and uniformity (log mean Gaussian potential). The rest: larger is better.
pub fn lower_is_better(metric: &str) -> bool {
    matches!(metric, "mr" | "alignment" | "uniformity")
}

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
        exclude: crate::train::RankingExcludes,
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
                &[&data.train_by_query, &data.valid_by_query][..if exclude
                    == crate::train::RankingExcludes::Train
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
