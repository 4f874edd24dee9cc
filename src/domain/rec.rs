//! Implicit-feedback recommendation: users rank items; full ranking of held-out items.

use tch::Device;

use super::{Domain, DomainKind};
use crate::data::Dataset;
use crate::loss::LossConfig;
use crate::metrics::{self, Evaluator, Protocol, RankingExcludes};
use crate::model::ModelConfig;

pub struct Rec;

impl Domain for Rec {
    fn kind(&self) -> DomainKind {
        DomainKind::Rec
    }
    fn models(&self) -> &'static str {
        "`mf` or `lightgcn`"
    }
    fn formats(&self) -> &'static str {
        "`synthetic`, `movielens`, `delimited` or `adjacency`"
    }
    fn default_model(&self) -> ModelConfig {
        ModelConfig::default()
    }
    /// BPR (Rendle et al. 2009).
    fn default_loss(&self, _model: &ModelConfig) -> LossConfig {
        LossConfig::Bpr
    }
    fn split_refused(&self) -> Option<&'static str> {
        None
    }
    fn validates(&self) -> bool {
        true
    }
    fn metric_names(&self, _data: &Dataset, ks: &[usize]) -> Vec<String> {
        metrics::metric_names(ks)
    }
    fn early_stopping_metrics(&self, ks: &[usize]) -> Vec<String> {
        metrics::metric_names(ks)
    }
    /// The NDCG at the largest cut-off.
    fn headline(&self, metrics: &[&str]) -> Option<String> {
        metrics
            .iter()
            .filter_map(|m| m.strip_prefix("ndcg@")?.parse::<usize>().ok())
            .max()
            .map(|k| format!("ndcg@{k}"))
    }
    /// Full ranking of the held-out items; a validation ranking removes the training items, a test
    /// ranking the training (and by default the validation) items.
    fn protocol(
        &self,
        data: &Dataset,
        ks: &[usize],
        test: bool,
        exclude: RankingExcludes,
        device: Device,
    ) -> Protocol {
        let both = [&data.train_by_query, &data.valid_by_query];
        let known = if test && exclude == RankingExcludes::TrainAndValid {
            &both[..]
        } else {
            &both[..1]
        };
        let targets = if test {
            &data.test_by_query
        } else {
            &data.valid_by_query
        };
        Protocol::Rec(Evaluator::new(ks, known, targets, data.n_items, device))
    }
}
