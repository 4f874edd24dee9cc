//! Link prediction on a node graph: GAE's split, sampled AUC / AP beside filtered full ranking.

use tch::Device;

use super::{Domain, DomainKind};
use crate::data::Dataset;
use crate::loss::LossConfig;
use crate::metrics::{self, GraphEvaluator, Protocol, RankingExcludes};
use crate::model::ModelConfig;

pub struct Graph;

impl Domain for Graph {
    fn kind(&self) -> DomainKind {
        DomainKind::Graph
    }
    fn models(&self) -> &'static str {
        "`embedding`, `gcn` or `lightgcn`"
    }
    fn formats(&self) -> &'static str {
        "`edge-list` or `synthetic-graph`"
    }
    fn default_model(&self) -> ModelConfig {
        ModelConfig::Embedding(Default::default())
    }
    /// The logistic loss of GAE and of LINE / node2vec's negative sampling.
    fn default_loss(&self, _model: &ModelConfig) -> LossConfig {
        LossConfig::Bce
    }
    fn split_refused(&self) -> Option<&'static str> {
        Some("graphs are split by GAE's protocol: set the shares with `data.valid` and `data.test`, and remove `split`")
    }
    fn validates(&self) -> bool {
        true
    }
    fn metric_names(&self, _data: &Dataset, _ks: &[usize]) -> Vec<String> {
        metrics::graph::metric_names()
    }
    fn early_stopping_metrics(&self, _ks: &[usize]) -> Vec<String> {
        metrics::graph::metric_names()
    }
    /// The filtered MRR (AUC and AP saturate on easy graphs).
    fn headline(&self, metrics: &[&str]) -> Option<String> {
        metrics.contains(&"mrr").then(|| "mrr".to_string())
    }
    /// The held-out edges against as many sampled non-edges (AUC, AP), and their filtered ranking.
    fn protocol(
        &self,
        data: &Dataset,
        _ks: &[usize],
        test: bool,
        _exclude: RankingExcludes,
        device: Device,
    ) -> Protocol {
        let g = data.graph.as_ref().expect("a node graph");
        let (edges, non_edges) = if test {
            (&data.test, &g.test_non_edges)
        } else {
            (&data.valid, &g.valid_non_edges)
        };
        Protocol::Graph(GraphEvaluator::new(
            edges,
            non_edges,
            &g.known,
            data.n_items,
            device,
        ))
    }
}
