//! The domains, one file each: what a `[[domain]]` of a kind allows (data formats, models), its
//! literature's default model and loss, how it is split, the metrics it reports, its one headline
//! metric and its evaluation protocol. A new domain is its file here, its data loader, its model and
//! its evaluator, and one line in `DOMAINS`.
//!
//! `DomainKind` itself lives in `data/` (a data set knows its kind); this module says what each kind
//! means.

mod graph;
mod kg;
mod rec;
mod text;
mod vision;

use tch::Device;

use crate::data::Dataset;
pub use crate::data::DomainKind;
use crate::loss::LossConfig;
use crate::metrics::{Protocol, RankingExcludes};
use crate::model::ModelConfig;

/// What one kind of domain is.
pub trait Domain: Sync {
    fn kind(&self) -> DomainKind;
    /// The models it allows, for messages (`` `mf` or `lightgcn` ``).
    fn models(&self) -> &'static str;
    /// The data formats it allows, for messages.
    fn formats(&self) -> &'static str;
    /// The model when the domain names none.
    fn default_model(&self) -> ModelConfig;
    /// The loss when neither the domain nor `[train]` names one: its literature's, for `model` (one of
    /// the domain's models).
    fn default_loss(&self, model: &ModelConfig) -> LossConfig;
    /// Why `split` is refused, for the domains whose data come split or are not split.
    fn split_refused(&self) -> Option<&'static str>;
    /// Has a validation split to stop early on.
    fn validates(&self) -> bool;
    /// Every effectiveness metric a cell on `data` reports, with rec cut-offs `ks`.
    fn metric_names(&self, data: &Dataset, ks: &[usize]) -> Vec<String>;
    /// The metrics early stopping may watch (known before any data is read).
    fn early_stopping_metrics(&self, ks: &[usize]) -> Vec<String>;
    /// The headline metric among `metrics` (the one tables, figures, the gate and early stopping use),
    /// `None` when it is not among them.
    fn headline(&self, metrics: &[&str]) -> Option<String>;
    /// The evaluation protocol on the test split, or the validation split (`data` has one).
    /// `exclude`: what a recommendation test ranking removes besides the test items.
    fn protocol(
        &self,
        data: &Dataset,
        ks: &[usize],
        test: bool,
        exclude: RankingExcludes,
        device: Device,
    ) -> Protocol;
}

/// Every domain, one line each.
const DOMAINS: &[&dyn Domain] = &[
    &rec::Rec,
    &kg::Kg,
    &graph::Graph,
    &text::Text,
    &vision::Vision,
];

/// The domain of a kind.
pub fn of(kind: DomainKind) -> &'static dyn Domain {
    *DOMAINS
        .iter()
        .find(|d| d.kind() == kind)
        .expect("every kind has its domain (tested)")
}

/// A domain's headline metric by its name (`rec`, `kg`, …; an unknown name reads as rec), among
/// `metrics`.
pub fn headline<'a>(domain: &str, metrics: impl Iterator<Item = &'a str>) -> Option<String> {
    let metrics: Vec<&str> = metrics.collect();
    of(DomainKind::parse(domain).unwrap_or(DomainKind::Rec)).headline(&metrics)
}

/// Every effectiveness metric a cell on `data` reports, with rec cut-offs `ks`.
pub fn metric_names(data: &Dataset, ks: &[usize]) -> Vec<String> {
    of(data.kind()).metric_names(data, ks)
}

/// `data`'s evaluation protocol for the test split, or the validation split (`None` without one).
pub fn protocol(
    data: &Dataset,
    ks: &[usize],
    test: bool,
    exclude: RankingExcludes,
    device: Device,
) -> Option<Protocol> {
    (test || data.has_validation())
        .then(|| of(data.kind()).protocol(data, ks, test, exclude, device))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_domain() {
        for kind in DomainKind::ALL {
            assert_eq!(of(kind).kind(), kind);
            assert_eq!(DOMAINS.iter().filter(|d| d.kind() == kind).count(), 1);
            assert_eq!(DomainKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(DOMAINS.len(), DomainKind::ALL.len());
    }

    #[test]
    fn every_domain_has_one_headline_metric() {
        use crate::metrics::{graph, kg, metric_names, vision};
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
        assert_eq!(of("kg", &["auc".to_string()]), None);
    }
}
