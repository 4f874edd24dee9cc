//! Contrastive learning of image representations: kNN and linear-probe accuracy on held-out images.

use tch::Device;

use super::{Domain, DomainKind};
use crate::data::Dataset;
use crate::loss::LossConfig;
use crate::metrics::{self, Protocol, RankingExcludes, VisionEvaluator};
use crate::model::ModelConfig;

pub struct Vision;

impl Domain for Vision {
    fn kind(&self) -> DomainKind {
        DomainKind::Vision
    }
    fn models(&self) -> &'static str {
        "`image-encoder`"
    }
    fn formats(&self) -> &'static str {
        "`images` or `synthetic-images`"
    }
    fn default_model(&self) -> ModelConfig {
        ModelConfig::ImageEncoder(Default::default())
    }
    /// SimCLR's NT-Xent: softmax at temperature 0.5.
    fn default_loss(&self, _model: &ModelConfig) -> LossConfig {
        LossConfig::Softmax { temperature: 0.5 }
    }
    fn split_refused(&self) -> Option<&'static str> {
        Some("images are split by class with the data's `test` share: remove `split`")
    }
    fn validates(&self) -> bool {
        false
    }
    fn metric_names(&self, _data: &Dataset, _ks: &[usize]) -> Vec<String> {
        metrics::vision::metric_names()
    }
    fn early_stopping_metrics(&self, _ks: &[usize]) -> Vec<String> {
        Vec::new()
    }
    /// The linear probe (the literature's).
    fn headline(&self, metrics: &[&str]) -> Option<String> {
        metrics
            .contains(&"linear-accuracy")
            .then(|| "linear-accuracy".to_string())
    }
    /// kNN and linear-probe accuracy on the held-out images.
    fn protocol(
        &self,
        data: &Dataset,
        _ks: &[usize],
        _test: bool,
        _exclude: RankingExcludes,
        device: Device,
    ) -> Protocol {
        let images = data.vision.as_ref().expect("an image data set");
        Protocol::Vision(VisionEvaluator::new(images, device))
    }
}
