//! Link-prediction evaluation on a node graph, two protocols side by side:
//! - sampled (GAE's): every held-out edge and an equal number of fixed random non-edges are scored;
//!   AUC (the probability that an edge outscores a non-edge, ties half) and average precision (as
//!   scikit-learn's `average_precision_score`: precision at each distinct score threshold, weighted by
//!   the recall it adds);
//! - full ranking (OGB-style, filtered): each held-out edge (u, v) is ranked both ways, v among every node
//!   for query u and u among every node for query v, every other known neighbour and the query node
//!   itself removed; realistic ranks as in the knowledge-graph protocol, MRR, Hits@k and MR.
//!
//! Sampled metrics are known to order models differently from full ranking; reporting both shows when.

use tch::{Device, Kind, Tensor};

use super::kg::{KgEvaluator, HITS_AT};
use super::{MetricValues, NonFiniteScores, PerQuery};
use crate::data::{Interactions, QueryItems};
use crate::model::ContrastiveModel;

/// Names of the metrics `GraphEvaluator` reports, in order: the sampled protocol's, then full ranking's.
pub fn metric_names() -> Vec<String> {
    let mut names = vec!["auc".to_string(), "ap".into()];
    names.extend(super::kg::metric_names());
    names
}

/// AUC of `pos` against `neg` scores: P(pos > neg) + P(pos = neg) / 2, by sorting (O(n log n)).
pub fn auc(pos: &[f32], neg: &[f32]) -> f64 {
    let mut all: Vec<(f32, bool)> = pos
        .iter()
        .map(|&s| (s, true))
        .chain(neg.iter().map(|&s| (s, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Mann–Whitney: the sum of the positives' mid-ranks.
    let (mut rank_sum, mut i) = (0.0f64, 0usize);
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        let mid = (i + 1 + j) as f64 / 2.0;
        rank_sum += mid * all[i..j].iter().filter(|x| x.1).count() as f64;
        i = j;
    }
    let (p, n) = (pos.len() as f64, neg.len() as f64);
    (rank_sum - p * (p + 1.0) / 2.0) / (p * n)
}

/// Average precision of `pos` among `pos` ∪ `neg`: Σ over distinct thresholds (descending) of
/// (recall gained) × precision at that threshold.
pub fn average_precision(pos: &[f32], neg: &[f32]) -> f64 {
    let mut all: Vec<(f32, bool)> = pos
        .iter()
        .map(|&s| (s, true))
        .chain(neg.iter().map(|&s| (s, false)))
        .collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut tp, mut ap, mut i) = (0usize, 0.0f64, 0usize);
    while i < all.len() {
        let mut j = i;
        let mut gained = 0usize;
        while j < all.len() && all[j].0 == all[i].0 {
            gained += usize::from(all[j].1);
            j += 1;
        }
        tp += gained;
        ap += gained as f64 / pos.len() as f64 * (tp as f64 / j as f64);
        i = j;
    }
    ap
}

/// Both protocols on one split.
pub struct GraphEvaluator {
    edges: (Tensor, Tensor),
    non_edges: (Tensor, Tensor),
    full: KgEvaluator,
}

impl GraphEvaluator {
    /// `edges`: the held-out edges (each once); `non_edges`: the fixed non-edges; `known`: every known
    /// neighbour of each node and the node itself.
    pub fn new(
        edges: &Interactions,
        non_edges: &Interactions,
        known: &QueryItems,
        n_nodes: usize,
        device: Device,
    ) -> GraphEvaluator {
        let pair = |x: &Interactions| {
            let t = |v: &[u32]| {
                Tensor::from_slice(&v.iter().map(|&i| i as i64).collect::<Vec<_>>())
                    .to_device(device)
            };
            (t(&x.queries), t(&x.items))
        };
        let mut both = Interactions::default();
        for (&a, &b) in edges.queries.iter().zip(&edges.items) {
            both.push(a, b);
        }
        for (&a, &b) in edges.queries.iter().zip(&edges.items) {
            both.push(b, a);
        }
        GraphEvaluator {
            edges: pair(edges),
            non_edges: pair(non_edges),
            full: KgEvaluator::new(&both, known, n_nodes, device),
        }
    }

    fn pair_scores(
        model: &dyn ContrastiveModel,
        (a, b): &(Tensor, Tensor),
    ) -> Result<Vec<f32>, NonFiniteScores> {
        let s = model
            .score_candidates(a, &b.unsqueeze(1))
            .expect("node embeddings of one model fit together")
            .reshape([-1])
            .to_kind(Kind::Float)
            .to_device(Device::Cpu);
        let s = Vec::<f32>::try_from(s).expect("the evaluator's own f32 tensor");
        let bad = s.iter().filter(|v| !v.is_finite()).count();
        if bad > 0 {
            return Err(NonFiniteScores {
                bad,
                users: s.len(),
            });
        }
        Ok(s)
    }

    pub fn evaluate(&self, model: &dyn ContrastiveModel) -> Result<MetricValues, NonFiniteScores> {
        self.evaluate_per_query(model).map(|(m, _)| m)
    }

    /// The sampled metrics, then the full-ranking metrics (per ranked pair: reciprocal rank, Hits@10).
    pub fn evaluate_per_query(
        &self,
        model: &dyn ContrastiveModel,
    ) -> Result<(MetricValues, PerQuery), NonFiniteScores> {
        let _no_grad = tch::no_grad_guard();
        let pos = Self::pair_scores(model, &self.edges)?;
        let neg = Self::pair_scores(model, &self.non_edges)?;
        let (full, per_query) = self.full.evaluate_per_query(model)?;
        let mut out = vec![
            ("auc".to_string(), auc(&pos, &neg)),
            ("ap".to_string(), average_precision(&pos, &neg)),
        ];
        out.extend(full);
        debug_assert_eq!(out.len(), 2 + 2 + HITS_AT.len());
        Ok((out, per_query))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_and_ap_match_their_definitions() {
        assert_eq!(auc(&[3.0, 4.0], &[1.0, 2.0]), 1.0);
        assert_eq!(auc(&[1.0, 2.0], &[3.0, 4.0]), 0.0);
        // Every pair tied: one half.
        assert_eq!(auc(&[1.0, 1.0], &[1.0]), 0.5);
        // pos {0.9, 0.4}, neg {0.6, 0.1}: 3 of 4 pairs won.
        assert_eq!(auc(&[0.9, 0.4], &[0.6, 0.1]), 0.75);
        // Same lists: ranking 0.9 (+), 0.6 (−), 0.4 (+), 0.1 (−): AP = (1/2)(1) + (1/2)(2/3).
        let ap = average_precision(&[0.9, 0.4], &[0.6, 0.1]);
        assert!((ap - (0.5 + 1.0 / 3.0)).abs() < 1e-12, "{ap}");
        // Ties share a threshold (as scikit-learn): y = [1, 0, 1], s = [0.5, 0.5, 0.2]: threshold 0.5
        // adds recall 1/2 at precision 1/2, threshold 0.2 recall 1/2 at precision 2/3.
        let ap = average_precision(&[0.5, 0.2], &[0.5]);
        assert!((ap - (0.25 + 1.0 / 3.0)).abs() < 1e-12, "{ap}");
    }
}
