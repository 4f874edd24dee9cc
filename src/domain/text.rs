//! Word embeddings from a corpus (word2vec's SGNS): evaluated on word similarity and analogies.

use tch::Device;

use super::{Domain, DomainKind};
use crate::data::Dataset;
use crate::loss::LossConfig;
use crate::metrics::{self, Protocol, RankingExcludes, TextEvaluator};
use crate::model::ModelConfig;

pub struct Text;

impl Domain for Text {
    fn kind(&self) -> DomainKind {
        DomainKind::Text
    }
    fn models(&self) -> &'static str {
        "`sgns`"
    }
    fn formats(&self) -> &'static str {
        "`corpus` or `synthetic-text`"
    }
    fn default_model(&self) -> ModelConfig {
        ModelConfig::Sgns(Default::default())
    }
    /// word2vec's logistic loss (SGNS).
    fn default_loss(&self, _model: &ModelConfig) -> LossConfig {
        LossConfig::Bce
    }
    fn split_refused(&self) -> Option<&'static str> {
        Some("text is not split: the corpus trains, the similarity and analogy sets evaluate; remove `split`")
    }
    fn validates(&self) -> bool {
        false
    }
    fn metric_names(&self, data: &Dataset, _ks: &[usize]) -> Vec<String> {
        metrics::text::metric_names(data.text.as_ref().expect("a text data set"))
    }
    fn early_stopping_metrics(&self, _ks: &[usize]) -> Vec<String> {
        Vec::new()
    }
    /// The generator's similarity (`truth-spearman`), else the first similarity set, else analogies.
    fn headline(&self, metrics: &[&str]) -> Option<String> {
        if metrics.contains(&"truth-spearman") {
            return Some("truth-spearman".into());
        }
        metrics
            .iter()
            .find(|m| m.ends_with("-spearman"))
            .or_else(|| metrics.iter().find(|m| **m == "analogy-accuracy"))
            .map(|m| m.to_string())
    }
    /// The similarity and analogy sets (text's only split).
    fn protocol(
        &self,
        data: &Dataset,
        _ks: &[usize],
        _test: bool,
        _exclude: RankingExcludes,
        device: Device,
    ) -> Protocol {
        let text = data.text.as_ref().expect("a text data set");
        Protocol::Text(TextEvaluator::new(text, device))
    }
}
