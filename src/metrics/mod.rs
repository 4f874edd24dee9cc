//! Effectiveness metrics: pure per-user functions (`ranking`) and the batched full-ranking evaluator.

mod evaluate;
pub mod ranking;

pub use evaluate::{
    block_users, Evaluator, MetricValues, NonFiniteScores, BYTES_PER_SCORE, EVAL_BLOCK_BYTES,
};

/// Behaviour version of the evaluation protocol (enters the configuration hash): bump it when a metric's
/// definition or the ranking changes.
pub const VERSION: u32 = 1;

/// Names of every metric the evaluator reports for cut-offs `ks`, in a fixed order.
pub fn metric_names(ks: &[usize]) -> Vec<String> {
    let mut names = Vec::new();
    for prefix in ["recall", "ndcg", "hr", "precision"] {
        for k in ks {
            names.push(format!("{prefix}@{k}"));
        }
    }
    names.push("mrr".into());
    names
}
