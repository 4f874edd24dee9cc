//! Knowledge-graph link prediction: (h, r, ?) and (?, r, t) queries; filtered ranking of every entity.

use tch::Device;

use super::{Domain, DomainKind};
use crate::data::Dataset;
use crate::loss::LossConfig;
use crate::metrics::{self, KgEvaluator, Protocol, RankingExcludes};
use crate::model::ModelConfig;

pub struct Kg;

impl Domain for Kg {
    fn kind(&self) -> DomainKind {
        DomainKind::Kg
    }
    fn models(&self) -> &'static str {
        "`transe`, `distmult`, `complex` or `rotate`"
    }
    fn formats(&self) -> &'static str {
        "`triples` (train/valid/test files) or `synthetic-kg`"
    }
    fn default_model(&self) -> ModelConfig {
        ModelConfig::Transe(Default::default())
    }
    /// The model's paper: TransE and DistMult the margin ranking loss, ComplEx the logistic loss,
    /// RotatE its self-adversarial loss.
    fn default_loss(&self, model: &ModelConfig) -> LossConfig {
        let kind = match model {
            ModelConfig::Complex(_) => "bce",
            ModelConfig::Rotate(_) => "nssa",
            _ => "margin",
        };
        LossConfig::default_of(kind).expect("a known loss")
    }
    fn split_refused(&self) -> Option<&'static str> {
        Some("knowledge graphs come split (train/valid/test files, or the generator's `valid` and `test` shares): remove `split`")
    }
    fn validates(&self) -> bool {
        true
    }
    fn metric_names(&self, _data: &Dataset, _ks: &[usize]) -> Vec<String> {
        metrics::kg::metric_names()
    }
    fn early_stopping_metrics(&self, _ks: &[usize]) -> Vec<String> {
        metrics::kg::metric_names()
    }
    /// The filtered MRR.
    fn headline(&self, metrics: &[&str]) -> Option<String> {
        metrics.contains(&"mrr").then(|| "mrr".to_string())
    }
    /// Filtered ranking of every entity on both sides of each held-out triple.
    fn protocol(
        &self,
        data: &Dataset,
        _ks: &[usize],
        test: bool,
        _exclude: RankingExcludes,
        device: Device,
    ) -> Protocol {
        let kg = data.kg.as_ref().expect("a knowledge graph");
        let held_out = if test { &data.test } else { &data.valid };
        Protocol::Kg(KgEvaluator::new(held_out, &kg.known, data.n_items, device))
    }
}
